//! The server under test, and the steps every scenario starts with: connect and register
//! many clients, then make sure the server really registered them.
//!
//! The protocol has no reply to a good `USER`, so registration is proved by delivery: client 0
//! sends sync probes, one at a time and at least `SYNC_EVERY` apart, and a client that
//! receives one is registered. Test messages start only after every client got a probe, so
//! each of them must reach everyone.

use crate::server::Server;
use crate::swarm::{Conn, State, Swarm, connect, now_ns};
use crate::wire::{CLIENT, SYNC};
use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

/// Connections in progress at once.
const MAX_CONNECTING: usize = 100;
/// On loopback a handshake takes microseconds: a connect still pending after this long lost
/// its SYN to a full listen queue (128 connections the server has not accepted yet, with
/// std's default) and the kernel would resend it only after a second, then two, four...
/// loadgen starts it again at once instead.
const DROPPED_AFTER: Duration = Duration::from_millis(200);
const SYNC_EVERY: Duration = Duration::from_millis(100);
/// A chat server relays a message in microseconds; one that relayed nothing for this long
/// is not one.
const NOTHING_RELAYED: Duration = Duration::from_secs(3);
/// The client that sends the sync probes.
const PROBER: usize = 0;

/// Where the server is: started by us (`--server`) or already running (`--addr`).
pub struct Target {
    pub addr: SocketAddrV4,
    pub server: Option<Server>,
}

impl Target {
    pub fn start(path: &Path, args: &[String]) -> Result<Target, String> {
        let server = Server::start(path, args)?;
        Ok(Target {
            addr: server.addr,
            server: Some(server),
        })
    }

    /// A server someone else runs (on loopback: main checks that); checks that something
    /// accepts connections there.
    pub fn at(addr: SocketAddrV4) -> Result<Target, String> {
        TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2))
            .map_err(|e| format!("cannot connect to the server at {addr}: {e}"))?;
        Ok(Target { addr, server: None })
    }

    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Server::pid)
    }

    /// An error once the server we started has exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.server.as_mut().and_then(Server::exited) {
            Some(how) => Err(format!("server exited: {how}")),
            None => Ok(()),
        }
    }

    pub fn name(&self) -> String {
        self.server
            .as_ref()
            .map_or_else(|| self.addr.to_string(), |s| s.name.clone())
    }
}

/// Connection failures by reason, e.g. `{"ERR server-full": 12, "refused": 3}`.
pub type Failures = BTreeMap<String, u64>;

/// `"ERR server-full x12, refused x3"`, most frequent first.
pub fn describe(failures: &Failures) -> String {
    let mut list: Vec<_> = failures.iter().collect();
    list.sort_by(|a, b| b.1.cmp(a.1));
    let parts: Vec<String> = list.iter().map(|(why, n)| format!("{why} x{n}")).collect();
    parts.join(", ")
}

/// Failures of the connections `range` of the swarm.
pub fn failures_in(swarm: &Swarm, range: Range<usize>) -> Failures {
    let mut failures = Failures::new();
    for conn in &swarm.conns[range] {
        let reason = match (&conn.failure, &conn.state) {
            (Some(why), _) => why.clone(),
            (None, State::Closed) => "closed".to_string(),
            (None, _) => continue,
        };
        *failures.entry(reason).or_insert(0) += 1;
    }
    failures
}

/// Adds clients with ids `ids` to the swarm, each sending `USER` if `register`, and turns the
/// swarm until every one is connected with its `USER` line written, or failed, or `deadline`
/// passed (then the stragglers fail with `timeout` and the rest are not tried). Returns the
/// failures.
pub fn connect_clients(
    swarm: &mut Swarm,
    mut ids: Range<u32>,
    register: bool,
    target: &mut Target,
    deadline: Instant,
) -> Result<Failures, String> {
    let first = swarm.conns.len();
    loop {
        let now = Instant::now();
        let mut connecting = 0;
        for conn in &mut swarm.conns[first..] {
            if conn.state != State::Connecting {
                continue;
            }
            if now.duration_since(conn.opened) > DROPPED_AFTER {
                // Its SYN was dropped: the same client again, on a new connection.
                *conn = connect(conn.id, CLIENT, register, target.addr);
            }
            connecting += 1;
        }
        for id in ids.by_ref().take(MAX_CONNECTING.saturating_sub(connecting)) {
            swarm.conns.push(connect(id, CLIENT, register, target.addr));
        }
        // Still on its way: connecting, or its `USER` line not yet written.
        let on_its_way = |c: &Conn| c.state == State::Connecting || c.pending_out() > 0;
        let busy = swarm.conns[first..].iter().any(on_its_way);
        if (ids.is_empty() && !busy) || now > deadline {
            // Done, or out of time: then the stragglers fail.
            for conn in &mut swarm.conns[first..] {
                if conn.state == State::Connecting {
                    conn.fail("timeout".into());
                }
            }
            let mut failures = failures_in(swarm, first..swarm.conns.len());
            if !ids.is_empty() {
                failures.insert("not tried (timeout)".into(), ids.len() as u64);
            }
            return Ok(failures);
        }
        // Only the connections still on their way: the others wait for nothing now.
        swarm.turn_some(1, on_its_way)?;
        target.alive()?;
    }
}

/// Connects the clients `ids` and proves that the server registered them all (see `sync`);
/// `scenario` names the scenario in the errors.
pub fn connect_and_register(
    swarm: &mut Swarm,
    ids: Range<u32>,
    target: &mut Target,
    deadline: Instant,
    scenario: &str,
) -> Result<(), String> {
    let n = ids.len();
    let failures = connect_clients(swarm, ids, true, target, deadline)?;
    if !failures.is_empty() {
        let why = describe(&failures);
        return Err(format!("{scenario}: could not connect {n} clients: {why}"));
    }
    let unconfirmed = sync(swarm, target, deadline)?;
    if unconfirmed > 0 {
        let addr = target.addr;
        return Err(format!(
            "{scenario}: {unconfirmed} clients never received a message: is {addr} a chat server?"
        ));
    }
    let failures = failures_in(swarm, 0..swarm.conns.len());
    if !failures.is_empty() {
        let why = describe(&failures);
        return Err(format!("{scenario}: could not register {n} clients: {why}"));
    }
    Ok(())
}

/// Client 0 (`PROBER`) sends sync probes until every other open client got one (or was
/// refused with an `ERR`), or `deadline`; if nobody got any within `NOTHING_RELAYED`, the
/// server relays nothing and it gives up early. Returns how many clients are still
/// unconfirmed (0 on success).
///
/// One probe at a time: the next leaves only once every client that got the previous one got
/// this one too, so the server never has a queue of probes to work through, and when `sync`
/// returns it is idle (which `capacity` samples next). Every client of the swarm sent `USER`:
/// connections that never register join only after the last `sync`.
pub fn sync(swarm: &mut Swarm, target: &mut Target, deadline: Instant) -> Result<usize, String> {
    let start = Instant::now();
    // Probe numbers keep rising over the calls, so an old probe never answers a new one.
    let mut seq = swarm.conns.iter().map(|c| c.last_sync).max().unwrap_or(0);
    let mut next_probe = start;
    loop {
        let mut waiting = 0;
        let mut anyone = false;
        let mut answered = true;
        for (i, c) in swarm.conns.iter().enumerate() {
            let candidate = i != PROBER && c.is_open() && c.failure.is_none();
            anyone |= c.last_sync > 0;
            waiting += usize::from(candidate && c.last_sync == 0);
            answered &= !candidate || c.last_sync == 0 || c.last_sync >= seq;
        }
        let now = Instant::now();
        let done = waiting == 0 && answered;
        let relays_nothing = !anyone && now.duration_since(start) > NOTHING_RELAYED;
        if done || relays_nothing || now > deadline {
            return Ok(waiting);
        }
        if let Some(why) = &swarm.conns[PROBER].failure {
            let name = crate::wire::name(CLIENT, swarm.conns[PROBER].id);
            return Err(format!("the probing client {name} failed: {why}"));
        }
        if answered && now >= next_probe {
            seq += 1;
            let sent_ns = now_ns(swarm.epoch);
            let Swarm { conns, encoder, .. } = swarm;
            encoder.put(conns[PROBER].out_mut(), SYNC, seq, sent_ns);
            next_probe = now + SYNC_EVERY;
        }
        swarm.turn(10)?;
        target.alive()?;
    }
}
