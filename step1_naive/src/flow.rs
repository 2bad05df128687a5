//! Flow control (PROTOCOL.md, "Flow control"): how far a receiver may fall behind, for how
//! long, and the queue of lines waiting for it.
//!
//! A line broadcast to n receivers is stored once, as an `Arc<[u8]>`, and each receiver's
//! queue holds a reference to it (16 bytes) plus, for the line at the front, how much of it
//! is already written. The bytes are freed when the last receiver has written them.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far a receiver may fall behind: lines queued for it and not yet written. Counted in
/// lines, not bytes, because each queued line costs the receiver one reference whatever its
/// length; the bytes are shared. 1024 lines are at most 1 MiB of text (the longest line we
/// send is 1058 bytes).
pub const SOFT: usize = 1024;
/// How long a receiver may stay more than `SOFT` behind before it is cut as too slow.
/// While it is behind, nobody is read: this is also the longest the room can be paused.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// Lines handled in one turn of the loop, from all clients together. Each handled line adds
/// at most one line to each queue, so no queue in the room ever holds more than
/// `SOFT + TURN_LINES` lines: the check runs once per turn, before the reads.
pub const TURN_LINES: usize = 256;
/// How long a client that left may take to read its last bytes and close before we close.
pub const LINGER: Duration = Duration::from_secs(10);
/// Lines offered to one `writev`: enough to fill a socket buffer in one call, and a fixed
/// array on the stack.
const MAX_SLICES: usize = 64;

/// One line as it is sent, LF included, shared by every queue that holds it.
pub type Line = Arc<[u8]>;

/// The lines waiting for one client.
#[derive(Default)]
pub struct Outbox {
    lines: VecDeque<Line>,
    /// Bytes of the front line already written.
    written: usize,
}

impl Outbox {
    /// Lines queued, the half-written one included.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn push(&mut self, line: Line) {
        self.lines.push_back(line);
    }

    /// Writes as much as the socket takes now, `MAX_SLICES` lines per `writev`. `Ok` also
    /// when it would block: the rest stays queued for the next turn of the loop.
    pub fn write_to(&mut self, stream: &TcpStream) -> io::Result<()> {
        while !self.lines.is_empty() {
            let (written, offered) = match self.write_some(stream) {
                Ok(counts) => counts,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.consume(written);
            // A short write means the socket buffer is full: trying again now would only
            // return `WouldBlock`.
            if written < offered {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The last words to a client that is cut: the rest of a half-written line, then `line`,
    /// in one non-blocking attempt. If the socket takes only part of it, the peer sees a torn
    /// line before the connection closes; we do not wait for it.
    pub fn write_last(&self, stream: &TcpStream, line: &[u8]) {
        let rest = match self.lines.front() {
            Some(front) => &front[self.written..],
            None => &[],
        };
        let mut stream = stream;
        let _ = stream.write_vectored(&[IoSlice::new(rest), IoSlice::new(line)]);
    }

    /// One `writev` of the first lines: (bytes written, bytes offered).
    fn write_some(&self, stream: &TcpStream) -> io::Result<(usize, usize)> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        let mut offered = 0;
        for (k, line) in self.lines.iter().take(MAX_SLICES).enumerate() {
            let skip = if k == 0 { self.written } else { 0 };
            slices[k] = IoSlice::new(&line[skip..]);
            offered += line.len() - skip;
            count = k + 1;
        }
        let mut stream = stream;
        let written = stream.write_vectored(&slices[..count])?;
        Ok((written, offered))
    }

    /// Forgets the `n` bytes just written, dropping the lines finished.
    fn consume(&mut self, mut n: usize) {
        while let Some(front) = self.lines.front() {
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.lines.pop_front();
            self.written = 0;
        }
    }
}

/// Where a receiver stands against `SOFT` and `PATIENCE`, checked once per turn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Standing {
    /// At most `SOFT` behind.
    Keeping,
    /// More than `SOFT` behind, for at most `PATIENCE` so far: the room waits for it.
    Behind,
    /// More than `SOFT` behind for longer than `PATIENCE`: it stopped reading.
    TooSlow,
}

/// Since when a receiver has been more than `SOFT` behind, without a break.
#[derive(Default)]
pub struct Lag {
    since: Option<Instant>,
}

impl Lag {
    pub fn check(&mut self, backlog: usize, now: Instant) -> Standing {
        if backlog <= SOFT {
            self.since = None;
            return Standing::Keeping;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) > PATIENCE {
            Standing::TooSlow
        } else {
            Standing::Behind
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Lag, Line, Outbox, PATIENCE, SOFT, Standing};
    use std::time::{Duration, Instant};

    fn line(text: &str) -> Line {
        Line::from(text.as_bytes())
    }

    #[test]
    fn consume_walks_across_lines() {
        let mut outbox = Outbox::default();
        outbox.push(line("MSG a hi\n"));
        outbox.push(line("MSG b yo\n"));
        outbox.consume(4);
        assert_eq!((outbox.len(), outbox.written), (2, 4));
        outbox.consume(5 + 3);
        assert_eq!((outbox.len(), outbox.written), (1, 3));
        outbox.consume(6);
        assert!(outbox.is_empty());
        assert_eq!(outbox.written, 0);
    }

    #[test]
    fn lag_counts_only_an_unbroken_stretch() {
        let start = Instant::now();
        let mut lag = Lag::default();
        assert_eq!(lag.check(SOFT, start), Standing::Keeping);
        assert_eq!(lag.check(SOFT + 1, start), Standing::Behind);
        assert_eq!(lag.check(SOFT + 1, start + PATIENCE), Standing::Behind);
        // Caught up once: the clock starts again.
        assert_eq!(lag.check(0, start + PATIENCE), Standing::Keeping);
        let later = start + PATIENCE + Duration::from_millis(1);
        assert_eq!(lag.check(SOFT + 1, later), Standing::Behind);
        assert_eq!(lag.check(SOFT + 1, later + PATIENCE * 2), Standing::TooSlow);
    }
}
