//! A swarm: many client connections driven by one thread with `poll(2)`.
//!
//! Each connection is non-blocking. One call to `Swarm::turn` polls them all, finishes
//! connects, writes what is queued and reads whatever arrived, in big reads into one shared
//! buffer; the received lines go to the swarm's `Tally` (delivery checker and latencies).
//! Source addresses are chosen by `next_source` (127.0.x.y, ports below the kernel's ephemeral
//! range) so the kernel never searches for a free port.

use crate::check::Checker;
use crate::stats::Histogram;
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLOUT, PollFd};
use crate::wire::{self, CHURN, CLIENT, DATA, Encoder, Line, SYNC};
use std::io::ErrorKind::{self, AddrInUse, AddrNotAvailable};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Size of the shared read buffer: big reads keep the syscall count per line low.
const READ_BUF: usize = 1 << 20;
/// Source addresses to try when one is still taken (e.g. in TIME_WAIT from an earlier run).
const SOURCE_TRIES: usize = 64;

/// Loopback addresses to take source ports from: 127.0.0.2 and the next 65,000.
const SOURCE_IPS: u64 = 65_000;

/// Source addresses handed out so far.
static HANDED_OUT: AtomicU64 = AtomicU64::new(0);

/// The source ports loadgen binds: outside the kernel's ephemeral range. A port loadgen
/// binds stays taken for everyone while its connection sits in TIME_WAIT (a minute), and
/// the kernel picks ports for ordinary `connect` calls from that range: overlapping it would
/// leave other programs on the machine without a port to connect from.
fn source_ports() -> Range<u32> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut bounds = text.split_whitespace().filter_map(|n| n.parse().ok());
    let low = bounds.next().unwrap_or(32_768);
    let high = bounds.next().unwrap_or(60_999);
    if low >= 20_000 {
        10_000..low
    } else {
        (high + 1).max(1024)..65_536
    }
}

/// A source address never handed out before by this process: every port of
/// `source_ports()` on one loopback address, then the next address. Each process starts at an
/// address picked from its pid and the clock, so a rerun does not meet the previous run's
/// connections still in TIME_WAIT (a SYN that hits one waits a second).
pub fn next_source() -> SocketAddrV4 {
    // The ports, read once, and the number of the address this process starts at.
    static START: OnceLock<(Range<u32>, u64)> = OnceLock::new();
    let (ports, first) = START.get_or_init(|| {
        let ports = source_ports();
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let pid = std::process::id() as u64;
        let first = (clock ^ pid.wrapping_mul(0x9E37_79B9)) % SOURCE_IPS * ports.len() as u64;
        (ports, first)
    });
    let per_ip = ports.len() as u64;
    let i = (first + HANDED_OUT.fetch_add(1, Ordering::Relaxed)) % (SOURCE_IPS * per_ip);
    let ip = u32::from(Ipv4Addr::new(127, 0, 0, 2)) + (i / per_ip) as u32;
    SocketAddrV4::new(Ipv4Addr::from(ip), (ports.start as u64 + i % per_ip) as u16)
}

/// Starts a non-blocking connection to `dst` from a fresh loopback source address.
pub fn open(dst: SocketAddrV4) -> io::Result<TcpStream> {
    let mut last = io::Error::from(AddrNotAvailable);
    for _ in 0..SOURCE_TRIES {
        match sys::connect_from(next_source(), dst) {
            Err(e) if matches!(e.kind(), AddrInUse | AddrNotAvailable) => last = e,
            other => return other,
        }
    }
    Err(last)
}

/// A short name for why a connection failed, as the reports show it.
pub fn failure_of(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused".into(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => "reset".into(),
        ErrorKind::TimedOut => "timeout".into(),
        _ => format!("error: {e}"),
    }
}

pub fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Connecting,
    Open,
    /// Closed by us or by the server; the reason is in `Conn::failure` when it was not us.
    Closed,
}

pub struct Conn {
    stream: Option<TcpStream>,
    /// Client id: the digits of its name, and its sender id.
    pub id: u32,
    /// When its connect started.
    pub opened: Instant,
    pub state: State,
    /// Why the connection ended, if it ended badly.
    pub failure: Option<String>,
    /// The number of the last sync probe it received (0: none yet). Once it got one, the
    /// server has surely registered it.
    pub last_sync: u32,
    /// Its receiver number in the swarm's checker, if it is checked.
    pub receiver: Option<usize>,
    /// Data messages sent so far (the last sequence number used).
    pub sent: u32,
    /// Shut down writing once the queue is written; the server's end of file then is the
    /// normal end, not a failure.
    pub hang_up: bool,
    /// Bytes the next turns may still read from it (`None`: no limit). A paced reader reads
    /// a little at a time, as a slow terminal would.
    pub read_cap: Option<usize>,
    shut: bool,
    /// Bytes of a line still arriving.
    partial: Vec<u8>,
    /// Bytes waiting to be written.
    out: Vec<u8>,
}

impl Conn {
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The bytes queued for the next turn to write.
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Queues its next data message, stamped `sent_ns`.
    pub fn send(&mut self, encoder: &Encoder, sent_ns: u64) {
        self.sent += 1;
        encoder.put(&mut self.out, DATA, self.sent, sent_ns);
    }

    pub fn pending_out(&self) -> usize {
        self.out.len()
    }

    /// The socket's descriptor, while it is open (to set a socket option on it).
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.stream.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Closes it, failed for `reason` unless it already failed for another.
    pub fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
        self.close();
    }

    /// Closes the socket, dropping anything queued.
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.stream = None;
        self.out = Vec::new();
        self.partial = Vec::new();
    }

    /// Writes as much of the queue as the socket takes (nothing if it is closed).
    fn flush(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        while !self.out.is_empty() {
            match stream.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(failure_of(&e)),
            }
        }
        if self.hang_up && !self.shut {
            self.shut = true;
            if let Err(e) = stream.shutdown(Shutdown::Write) {
                self.fail(failure_of(&e));
            }
        }
    }

    /// Reads everything the connection has, partial line first, then big reads into `buf`,
    /// and hands the lines to `tally`.
    fn receive(&mut self, buf: &mut [u8], encoder: &Encoder, tally: &mut Tally, epoch: Instant) {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let kept = self.partial.len();
            let cap = self.read_cap.unwrap_or(usize::MAX);
            let end = buf.len().min(kept.saturating_add(cap));
            if end == kept {
                return; // its read budget is spent
            }
            buf[..kept].copy_from_slice(&self.partial);
            let n = match stream.read(&mut buf[kept..end]) {
                Ok(0) if self.shut => return self.close(),
                Ok(0) => return self.fail("closed".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(failure_of(&e)),
            };
            // Without this the server's side of the connection waits for our delayed ACKs
            // (40 ms) whenever its congestion window, counted in packets, is used up.
            let _ = sys::quick_ack(stream.as_raw_fd());
            self.read_cap = self.read_cap.map(|cap| cap - n);
            let now = now_ns(epoch);
            let filled = &buf[..kept + n];
            let used = wire::scan(filled, encoder, |line| tally.take(self, line, now));
            self.partial.clear();
            self.partial.extend_from_slice(&filled[used..]);
            if self.partial.len() > wire::MAX_PARTIAL {
                return self.fail("line without newline from server".into());
            }
            if kept + n < end {
                return; // a short read: the socket is drained
            }
        }
    }
}

/// What the lines a swarm received add up to.
pub struct Tally {
    pub checker: Checker,
    /// Delivery latency of data messages, in nanoseconds.
    pub latency: Histogram,
    /// Churn messages seen, by churn id (1 = once; more is a duplicate).
    pub churn_seen: Vec<u8>,
    /// When the last checked message arrived (nanoseconds since the epoch).
    pub last_ns: u64,
}

impl Tally {
    #[inline(always)]
    fn take(&mut self, conn: &mut Conn, line: Line, now: u64) {
        match line {
            Line::Ours(msg) if msg.origin == CLIENT && msg.kind == DATA => {
                if let Some(receiver) = conn.receiver {
                    self.checker.deliver(receiver, msg.sender, msg.seq);
                    self.latency.record(now.saturating_sub(msg.sent_ns));
                    self.last_ns = now;
                }
            }
            Line::Ours(msg) if msg.origin == CLIENT && msg.kind == SYNC => conn.last_sync = msg.seq,
            Line::Ours(msg) if msg.origin == CHURN && conn.receiver.is_some() => {
                let id = msg.sender as usize;
                if self.churn_seen.len() <= id {
                    self.churn_seen.resize(id + 1, 0);
                }
                self.churn_seen[id] = self.churn_seen[id].saturating_add(1);
                self.latency.record(now.saturating_sub(msg.sent_ns));
                self.last_ns = now;
            }
            Line::Err(code) => {
                let code = String::from_utf8_lossy(code);
                conn.failure.get_or_insert_with(|| format!("ERR {code}"));
            }
            // Someone else in the room, or not protocol at all.
            Line::Ours(_) | Line::Other => {}
        }
    }
}

/// Starts connecting client `id` to `dst`, its `USER` line queued if it is `named`; a
/// connection that fails at once comes back closed, with its failure.
pub fn connect(id: u32, prefix: u8, named: bool, dst: SocketAddrV4) -> Conn {
    let user = format!("USER {}\n", wire::name(prefix, id));
    let mut conn = Conn {
        stream: None,
        id,
        opened: Instant::now(),
        state: State::Connecting,
        failure: None,
        last_sync: 0,
        receiver: None,
        sent: 0,
        hang_up: false,
        read_cap: None,
        shut: false,
        partial: Vec::new(),
        out: if named { user.into_bytes() } else { Vec::new() },
    };
    match open(dst) {
        Ok(stream) => conn.stream = Some(stream),
        Err(e) => conn.fail(failure_of(&e)),
    }
    conn
}

pub struct Swarm {
    pub conns: Vec<Conn>,
    fds: Vec<PollFd>,
    /// `fds[k]` is the descriptor of `conns[polled[k]]`.
    polled: Vec<usize>,
    buf: Vec<u8>,
    pub encoder: Encoder,
    pub tally: Tally,
    pub epoch: Instant,
}

impl Swarm {
    /// An empty swarm whose messages have `size` bytes of text, checked by `checker`.
    pub fn new(size: usize, checker: Checker) -> Self {
        Swarm {
            conns: Vec::new(),
            fds: Vec::new(),
            polled: Vec::new(),
            buf: vec![0; READ_BUF],
            encoder: Encoder::new(size),
            tally: Tally {
                checker,
                latency: Histogram::new(),
                churn_seen: Vec::new(),
                last_ns: 0,
            },
            epoch: Instant::now(),
        }
    }

    /// Moves the connections from `at` on into a swarm of their own (for another thread).
    pub fn split_off(&mut self, at: usize, checker: Checker) -> Swarm {
        let mut other = Swarm::new(0, checker);
        other.conns = self.conns.split_off(at);
        other.encoder = self.encoder.clone();
        other.epoch = self.epoch;
        other
    }

    /// One round: poll every connection (at most `timeout_ms`), then connect, write and read
    /// whatever is ready. Returns the number of connections that had events.
    pub fn turn(&mut self, timeout_ms: i32) -> Result<usize, String> {
        self.turn_some(timeout_ms, |_| true)
    }

    /// `turn` over only the connections `wanted` picks. `poll` costs the kernel time for every
    /// descriptor it is given, so while thousands of clients sit idle, a phase that waits for a
    /// few of them (connecting, say) asks only about those.
    pub fn turn_some(
        &mut self,
        timeout_ms: i32,
        wanted: impl Fn(&Conn) -> bool,
    ) -> Result<usize, String> {
        self.fds.clear();
        self.polled.clear();
        for (i, conn) in self.conns.iter().enumerate() {
            let Some(stream) = conn.stream.as_ref().filter(|_| wanted(conn)) else {
                continue;
            };
            let wants_out = conn.state == State::Connecting || !conn.out.is_empty();
            let events = if wants_out { POLLIN | POLLOUT } else { POLLIN };
            self.fds.push(PollFd {
                fd: stream.as_raw_fd(),
                events,
                revents: 0,
            });
            self.polled.push(i);
        }
        let ready =
            sys::poll_fds(&mut self.fds, timeout_ms).map_err(|e| format!("poll failed: {e}"))?;
        if ready == 0 {
            return Ok(0);
        }
        for k in 0..self.fds.len() {
            let revents = self.fds[k].revents;
            if revents != 0 {
                self.service(self.polled[k], revents);
            }
        }
        Ok(ready)
    }

    fn service(&mut self, i: usize, revents: i16) {
        let conn = &mut self.conns[i];
        if let (State::Connecting, Some(stream)) = (&conn.state, &conn.stream) {
            match stream.take_error() {
                Ok(None) => {
                    let _ = stream.set_nodelay(true);
                    conn.state = State::Open;
                }
                Ok(Some(e)) | Err(e) => return conn.fail(failure_of(&e)),
            }
        }
        if revents & (POLLIN | POLLHUP | POLLERR) != 0 {
            conn.receive(&mut self.buf, &self.encoder, &mut self.tally, self.epoch);
        }
        conn.flush();
    }

    /// Half-closes every open connection and closes them all.
    pub fn close_all(&mut self) {
        for conn in &mut self.conns {
            if let Some(stream) = conn.stream.as_ref() {
                let _ = stream.shutdown(Shutdown::Write);
            }
            conn.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_are_loopback_fresh_and_outside_the_ephemeral_range() {
        let text =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let bounds: Vec<u16> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..30_000 {
            let source = next_source();
            assert!(
                source.ip().is_loopback() && *source.ip() != Ipv4Addr::LOCALHOST,
                "{source}"
            );
            if let [low, high] = bounds[..] {
                assert!(
                    !(low..=high).contains(&source.port()),
                    "{source} is in the ephemeral range"
                );
            }
            assert!(seen.insert(source), "{source} handed out twice");
        }
    }
}
