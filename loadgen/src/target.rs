//! The server under test, and the steps every scenario starts with: connect and register
//! many clients, then make sure the server really registered them.
//!
//! The protocol has no reply to a good `USER`, so registration is proved by delivery: client 0
//! sends a sync probe every `SYNC_EVERY`, and a client that receives one is registered. Test
//! messages start only after every client got a probe, so each of them must reach everyone.

use crate::server::Server;
use crate::swarm::{State, Swarm, now_ns};
use crate::wire::{CLIENT, SYNC};
use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Connections in progress at once: more would overflow the server's listen backlog.
const MAX_CONNECTING: usize = 256;
const SYNC_EVERY: Duration = Duration::from_millis(100);

/// Where the server is: started by us (`--server`) or already running (`--addr`).
pub struct Target {
    pub addr: SocketAddrV4,
    pub server: Option<Server>,
}

impl Target {
    pub fn start(path: &PathBuf, args: &[String]) -> Result<Target, String> {
        let server = Server::start(path, args)?;
        Ok(Target { addr: server.addr, server: Some(server) })
    }

    /// A server someone else runs; checks that something accepts connections there.
    pub fn at(addr: SocketAddrV4) -> Result<Target, String> {
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address: loadgen only loads this machine"));
        }
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
        self.server.as_ref().map_or_else(|| self.addr.to_string(), |s| s.name.clone())
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
pub fn connect_clients(swarm: &mut Swarm, ids: Range<u32>, register: bool, target: &mut Target, deadline: Instant) -> Result<Failures, String> {
    let first = swarm.conns.len();
    let mut next = ids.start;
    loop {
        let mut connecting = swarm.conns[first..].iter().filter(|c| c.state == State::Connecting).count();
        while next < ids.end && connecting < MAX_CONNECTING {
            let i = swarm.add(next, CLIENT, target.addr);
            if !register {
                swarm.conns[i].out_mut().clear();
            }
            next += 1;
            connecting += 1;
        }
        let busy = swarm.conns[first..].iter().any(|c| c.state == State::Connecting || (c.is_open() && c.pending_out() > 0));
        if next == ids.end && !busy {
            return Ok(failures_in(swarm, first..swarm.conns.len()));
        }
        if Instant::now() > deadline {
            for conn in &mut swarm.conns[first..] {
                if conn.state == State::Connecting {
                    conn.failure = Some("timeout".into());
                    conn.close();
                }
            }
            let mut failures = failures_in(swarm, first..swarm.conns.len());
            if next < ids.end {
                failures.insert("not tried (timeout)".into(), (ids.end - next) as u64);
            }
            return Ok(failures);
        }
        swarm.turn(10).map_err(|e| format!("poll failed: {e}"))?;
        target.alive()?;
    }
}

/// Client `prober` sends sync probes until every other open client got one, or `deadline`.
/// Returns how many open clients are still unconfirmed (0 on success).
pub fn sync(swarm: &mut Swarm, prober: usize, target: &mut Target, deadline: Instant) -> Result<usize, String> {
    let mut seq = 0;
    let mut next_probe = Instant::now();
    loop {
        let waiting = swarm.conns.iter().enumerate().filter(|&(i, c)| i != prober && c.is_open() && !c.synced).count();
        if waiting == 0 || Instant::now() > deadline {
            return Ok(waiting);
        }
        if Instant::now() >= next_probe && swarm.conns[prober].is_open() {
            seq += 1;
            let now = now_ns(swarm.epoch);
            let Swarm { conns, encoder, .. } = swarm;
            encoder.put(conns[prober].out_mut(), SYNC, seq, now);
            next_probe += SYNC_EVERY;
        }
        if !swarm.conns[prober].is_open() {
            let why = swarm.conns[prober].failure.clone().unwrap_or_else(|| "closed".into());
            return Err(format!("the probing client was disconnected ({why})"));
        }
        swarm.turn(10).map_err(|e| format!("poll failed: {e}"))?;
        target.alive()?;
    }
}
