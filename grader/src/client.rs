//! The client helper: one TCP connection to the server under test, with a deadline on every
//! read and failure messages that tell a student what was sent, expected and received.

use crate::{CLOSE_TIMEOUT, REPLY_TIMEOUT, STALL_TIMEOUT};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

/// How many bytes one `read` asks for.
const READ_CHUNK: usize = 64 * 1024;
/// How many of the last sends a failure message recalls.
const SENT_HISTORY: usize = 4;
/// The line `expect_nothing_pending` sends: not a command, so the server must refuse it.
const PROBE: &str = "PING";

/// One connection to the server under test.
pub struct Client {
    stream: TcpStream,
    /// Who this is in failure messages: the registered name, or "unregistered".
    label: String,
    /// Bytes received; the first `consumed` of them have already been handed out as lines.
    inbox: Vec<u8>,
    consumed: usize,
    /// How the connection ended, once it has.
    closed: Option<String>,
    /// The last few sends, shown in failure messages.
    sent: VecDeque<String>,
    /// When set, reads are paced by this token bucket instead of taking all that has arrived.
    pace: Option<Pace>,
}

/// A token bucket for reads: a client that reads `bytes_per_sec` on average, at most
/// `max_read` bytes at a time, like a slow terminal or a reader that has other work to do.
struct Pace {
    bytes_per_sec: f64,
    max_read: usize,
    tokens: f64,
    refilled: Instant,
}

impl Pace {
    /// How long until a whole `max_read` may be read.
    fn wait(&mut self) -> Duration {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * self.bytes_per_sec;
        self.tokens = (self.tokens + earned).min(self.max_read as f64);
        self.refilled = now;
        let missing = self.max_read as f64 - self.tokens;
        Duration::from_secs_f64(missing.max(0.0) / self.bytes_per_sec)
    }
}

/// What one attempt to read a line found.
pub(crate) enum Received {
    Line(String),
    Closed(String),
    Nothing(Duration),
}

impl Received {
    pub(crate) fn describe(&self) -> String {
        match self {
            Received::Line(line) => format!("the line {}", shorten(line)),
            Received::Closed(how) => format!("the connection {how}"),
            Received::Nothing(waited) => format!("nothing within {waited:?}"),
        }
    }
}

impl Client {
    /// Connects to `addr`; fails the test if that takes longer than `REPLY_TIMEOUT`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("\n[{}] could not connect to {addr}: {e}", scenario()));
        // Small writes go out at once (the one-byte-per-write scenario relies on it), and no
        // write may block forever.
        let configured = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_write_timeout(Some(STALL_TIMEOUT)));
        if let Err(e) = configured {
            panic!("\n[{}] could not configure the socket: {e}", scenario());
        }
        Client::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            label: "unregistered".to_string(),
            inbox: Vec::new(),
            consumed: 0,
            closed: None,
            sent: VecDeque::new(),
            pace: None,
        }
    }

    /// A second handle on the same connection, for a thread that only sends while another
    /// reads (a client that talks and listens at once).
    pub(crate) fn sending_half(&self) -> Client {
        let stream = self
            .stream
            .try_clone()
            .unwrap_or_else(|e| panic!("\n[{}] could not clone the socket: {e}", scenario()));
        let mut half = Client::from_stream(stream);
        half.label = self.label.clone();
        half
    }

    /// From now on, reads take at most `max_read` bytes at a time and `bytes_per_sec` on
    /// average (`None`: as fast as the data comes).
    pub(crate) fn pace_reads(&mut self, rate: Option<(f64, usize)>) {
        self.pace = rate.map(|(bytes_per_sec, max_read)| Pace {
            bytes_per_sec,
            max_read,
            tokens: 0.0,
            refilled: Instant::now(),
        });
    }

    /// Who this client is in failure messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends raw bytes in one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.remember(bytes);
        if let Err(e) = self.stream.write_all(bytes) {
            self.fail_write(e);
        }
    }

    /// Like [`Client::send`], but says what went wrong instead of failing the test.
    pub(crate) fn try_send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream.write_all(bytes).map_err(|e| {
            if is_transient(&e) {
                format!("a write blocked for more than {STALL_TIMEOUT:?}")
            } else {
                format!("a write failed: {e}")
            }
        })
    }

    /// This end's address, to find the connection in `/proc/net/tcp`.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .unwrap_or_else(|e| panic!("\n[{}] no local address: {e}", scenario()))
    }

    /// Sends `line` followed by LF.
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Sends one byte per write with a short pause between them, so the server sees many
    /// tiny segments (Nagle is off on every grader socket).
    pub fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        self.remember(bytes);
        for byte in bytes {
            if let Err(e) = self.stream.write_all(&[*byte]) {
                self.fail_write(e);
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Registers as `name`. The protocol has no positive answer to `USER`, so the grader sends
    /// the line twice: the second must be refused with `ERR already-registered`, which proves
    /// the first was accepted and has been processed.
    pub fn register(&mut self, name: &str) {
        if let Err(got) = self.try_register(name) {
            self.fail(
                &format!(
                    "`USER {name}` to be accepted (the grader sends it twice: the second must \
                     get \"ERR already-registered ...\")"
                ),
                &got,
            );
        }
    }

    /// Like [`Client::register`], but returns what came instead of the proof of success. After
    /// a refusal the second `USER` may still be pending: use a fresh connection to retry.
    pub fn try_register(&mut self, name: &str) -> Result<(), String> {
        self.send(format!("USER {name}\nUSER {name}\n").as_bytes());
        match self.receive(REPLY_TIMEOUT) {
            Received::Line(line) if line.starts_with("ERR already-registered ") => {
                self.label = name.to_string();
                Ok(())
            }
            other => Err(other.describe()),
        }
    }

    /// The next line, which must arrive within `REPLY_TIMEOUT`.
    pub fn next_line(&mut self) -> String {
        self.next_line_within(REPLY_TIMEOUT, "one more line")
    }

    /// Fails unless the next line is exactly `expected`.
    pub fn expect_line(&mut self, expected: &str) {
        self.expect_line_within(expected, REPLY_TIMEOUT);
    }

    /// Fails unless the next line is exactly `expected` and arrives within `within`.
    pub fn expect_line_within(&mut self, expected: &str, within: Duration) {
        let wanted = format!("the line {}", shorten(expected));
        self.expect_next(within, &wanted, |line| line == expected);
    }

    /// Fails unless the next line starts with `ERR <code> `.
    pub fn expect_err(&mut self, code: &str) {
        let prefix = format!("ERR {code} ");
        let wanted = format!("a line starting with {prefix:?} (then a reason)");
        self.expect_next(REPLY_TIMEOUT, &wanted, |line| line.starts_with(&prefix));
    }

    /// Fails if anything arrives, or the connection closes, within `window`.
    pub fn expect_silence(&mut self, window: Duration) {
        match self.receive(window) {
            Received::Nothing(_) => {}
            other => self.fail(
                &format!("nothing at all for {window:?}, and the connection still open"),
                &other.describe(),
            ),
        }
    }

    /// Sends a line that is no command and fails unless its `ERR unknown-command` is the very
    /// next line: everything this client sent before has been processed, and nothing else
    /// was waiting for it (no echo of its own message, no message meant for others).
    pub fn expect_nothing_pending(&mut self) {
        self.send_line(PROBE);
        let wanted = format!("nothing more, then \"ERR unknown-command ...\" in reply to {PROBE}");
        self.expect_next(REPLY_TIMEOUT, &wanted, |line| {
            line.starts_with("ERR unknown-command ")
        });
    }

    /// Fails unless the server closes the connection (EOF or reset) within `CLOSE_TIMEOUT`
    /// without sending any more lines.
    pub fn expect_closed(&mut self) {
        match self.receive(CLOSE_TIMEOUT) {
            Received::Closed(_) => {}
            other => self.fail(
                &format!("the server to close the connection within {CLOSE_TIMEOUT:?}"),
                &other.describe(),
            ),
        }
    }

    /// Fails unless the next line is `ERR <code> ...` and the server then closes.
    pub fn expect_err_then_closed(&mut self, code: &str) {
        self.expect_err(code);
        self.expect_closed();
    }

    /// Reads every line until the server closes the connection, which must happen within
    /// `within`; returns the lines (a last line cut short by the close is dropped).
    pub fn read_until_closed(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        loop {
            match self.receive(deadline.saturating_duration_since(Instant::now())) {
                Received::Line(line) => lines.push(line),
                Received::Closed(_) => return lines,
                Received::Nothing(_) => self.fail(
                    &format!("the server to close this connection within {within:?}"),
                    &format!("{} lines, and the connection still open", lines.len()),
                ),
            }
        }
    }

    /// Closes with RST instead of FIN (SO_LINGER 0): the server sees "connection reset".
    pub fn reset(self) {
        self.set_linger_zero();
    }

    /// Makes the eventual close send RST (SO_LINGER with a zero timeout).
    pub fn set_linger_zero(&self) {
        if let Err(e) = kit::sockopt::set_linger_zero(self.stream.as_raw_fd()) {
            panic!("\n[{}] could not set SO_LINGER: {e}", scenario());
        }
    }

    /// Caps the kernel's receive buffer of this connection at about `bytes`.
    pub fn set_recv_buffer(&self, bytes: i32) {
        if let Err(e) = kit::sockopt::set_recv_buffer(self.stream.as_raw_fd(), bytes) {
            panic!("\n[{}] could not set SO_RCVBUF: {e}", scenario());
        }
    }

    /// Fails unless the next line arrives within `within` and passes `accept`.
    fn expect_next(&mut self, within: Duration, wanted: &str, accept: impl Fn(&str) -> bool) {
        let line = self.next_line_within(within, wanted);
        if !accept(&line) {
            self.fail(wanted, &Received::Line(line).describe());
        }
    }

    fn next_line_within(&mut self, within: Duration, wanted: &str) -> String {
        match self.receive(within) {
            Received::Line(line) => line,
            other => self.fail(wanted, &other.describe()),
        }
    }

    /// The next line, or the end of the connection, or nothing within `within`.
    pub(crate) fn receive(&mut self, within: Duration) -> Received {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.take_line() {
                return Received::Line(line);
            }
            if let Some(how) = &self.closed {
                return Received::Closed(how.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Nothing(within);
            }
            self.fill(left);
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let pending = &self.inbox[self.consumed..];
        let end = pending.iter().position(|&b| b == b'\n')?;
        let line = String::from_utf8_lossy(&pending[..end]).into_owned();
        self.consumed += end + 1;
        Some(line)
    }

    /// One `read` of at most `within`; records EOF or an error as the end of the connection.
    fn fill(&mut self, within: Duration) {
        self.inbox.drain(..self.consumed);
        self.consumed = 0;
        let mut chunk = READ_CHUNK;
        if let Some(pace) = &mut self.pace {
            let wait = pace.wait();
            if wait >= within {
                thread::sleep(within);
                return;
            }
            thread::sleep(wait);
            chunk = pace.max_read;
        }
        let timeout = within.max(Duration::from_millis(1));
        if let Err(e) = self.stream.set_read_timeout(Some(timeout)) {
            self.closed = Some(format!("could not be read ({e})"));
            return;
        }
        let start = self.inbox.len();
        self.inbox.resize(start + chunk, 0);
        let result = self.stream.read(&mut self.inbox[start..]);
        let got = result.as_ref().map_or(0, |n| *n);
        self.inbox.truncate(start + got);
        if let Some(pace) = &mut self.pace {
            pace.tokens -= got as f64;
        }
        match result {
            Ok(0) => self.closed = Some(self.ending("was closed by the server (EOF)")),
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => self.closed = Some(self.ending(&format!("was reset ({e})"))),
        }
    }

    /// How the connection ended, with the unfinished line it left behind, if any.
    fn ending(&self, how: &str) -> String {
        let partial = &self.inbox[self.consumed..];
        if partial.is_empty() {
            return how.to_string();
        }
        let partial = String::from_utf8_lossy(partial);
        format!("{how} after an unfinished line {}", shorten(&partial))
    }

    fn remember(&mut self, bytes: &[u8]) {
        if self.sent.len() == SENT_HISTORY {
            self.sent.pop_front();
        }
        self.sent
            .push_back(shorten(&String::from_utf8_lossy(bytes)));
    }

    fn fail_write(&self, e: std::io::Error) -> ! {
        let got = if is_transient(&e) {
            format!("the write blocked for more than {STALL_TIMEOUT:?}")
        } else {
            format!("the write failed: {e}")
        };
        self.fail("the server to take the bytes", &got);
    }

    fn fail(&self, expected: &str, got: &str) -> ! {
        let sent: Vec<&str> = self.sent.iter().map(String::as_str).collect();
        panic!(
            "\n[{}] client `{}`\n  last sent: {}\n  expected:  {expected}\n  got:       {got}\n",
            scenario(),
            self.label,
            if sent.is_empty() {
                "nothing".to_string()
            } else {
                sent.join(", then ")
            }
        );
    }
}

/// A read or write timed out or was interrupted: not an end of the connection.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Quotes `text` for a failure message, cutting it short when it is long.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 80;
    let count = text.chars().count();
    if count <= SHOWN {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("{head:?}... ({} bytes in all)", text.len())
}

/// The scenario being run: the test harness names each test's thread after the test, and the
/// grader names the threads it spawns after their scenario too.
pub(crate) fn scenario() -> String {
    thread::current().name().unwrap_or("scenario").to_string()
}
