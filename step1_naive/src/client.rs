//! One connection: its socket, its name, the start of a line not finished yet
//! (`unfinished`) and the lines waiting to be written (`outbox`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use crate::sys;

/// Lines of output, encoded once and shared by every outbox that holds them. `Rc`, not
/// `Arc`: one thread owns every outbox, so the count needs no atomic instruction (and the
/// compiler would refuse to send an `Rc` to another thread).
pub type Lines = Rc<[u8]>;

/// Bytes gathered for one write(2): many short lines copied into one buffer go out in one
/// system call, and the kernel copies one large piece instead of many small ones.
pub const GATHER: usize = 64 * 1024;

/// Batches an emptied outbox keeps room for (24 bytes each); memory beyond it goes back.
const KEEP_CAPACITY: usize = 256;

/// Where a connection is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// In the room: its lines are read and handled.
    Open,
    /// Out of the room (it closed, or got a fatal ERR): flush what is queued, then shut down.
    Closing,
    /// We sent FIN; read and discard until the peer closes too, so no RST destroys our last
    /// bytes in flight.
    Draining,
    /// Finished: removed at the end of this round.
    Gone,
}

pub struct Client {
    pub stream: TcpStream,
    /// `None` until a successful `USER`, and again once the client leaves the room.
    pub name: Option<String>,
    /// The start of a line whose LF has not arrived yet (complete lines are never copied).
    pub unfinished: Vec<u8>,
    pub outbox: Outbox,
    pub state: State,
    /// Since when its outbox has held more than `SOFT` lines, while it is in the room.
    pub behind_since: Option<Instant>,
    /// When it left the room: a peer that never reads or never closes is let go after
    /// `LINGER`.
    pub left_at: Option<Instant>,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            name: None,
            unfinished: Vec::new(),
            outbox: Outbox::default(),
            state: State::Open,
            behind_since: None,
            left_at: None,
        }
    }

    /// One read that never blocks: `Ok(0)` means the peer closed, `WouldBlock` means
    /// nothing has arrived yet.
    pub fn read_once(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }

    pub fn queue(&mut self, batch: Batch) {
        self.outbox.push(batch);
    }

    /// Writes as much of the outbox as the socket takes now, up to `GATHER` bytes per
    /// write(2), gathered in `scratch`. `Ok` also when it would block: the rest waits for the
    /// next round.
    pub fn flush(&mut self, scratch: &mut Vec<u8>) -> io::Result<()> {
        while !self.outbox.is_empty() {
            match self.write_some(scratch) {
                Ok(Written::All) => {}
                // A short write means the socket buffer is full: trying again now would only
                // return `WouldBlock`.
                Ok(Written::Part) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One write(2) of the first `GATHER` bytes or so of the outbox, copied into `scratch`.
    fn write_some(&mut self, scratch: &mut Vec<u8>) -> io::Result<Written> {
        scratch.clear();
        self.outbox.gather(scratch, GATHER);
        let n = self.stream.write(scratch)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.outbox.consume(n);
        Ok(if n == scratch.len() {
            Written::All
        } else {
            Written::Part
        })
    }

    /// The last word to a client that stopped reading: its backlog is dropped but for the
    /// rest of a line half written, then that rest and `err` go out in one non-blocking
    /// attempt. Whatever the socket does not take is lost, so the peer may see a torn last
    /// line. Then it is closed at once, with RST (see `reset_on_close`).
    pub fn cut(&mut self, err: Batch, scratch: &mut Vec<u8>) {
        self.outbox.drop_backlog();
        self.outbox.push(err);
        let _ = self.write_some(scratch);
        self.reset_on_close();
        self.outbox.clear();
        self.state = State::Gone;
    }

    /// Out of the room: what is queued still goes out, then FIN, for at most `LINGER`.
    pub fn start_closing(&mut self) {
        self.unfinished.clear();
        self.state = State::Closing;
        self.left_at = Some(Instant::now());
    }

    /// We stop waiting for this peer: when the socket closes, send RST and let the kernel
    /// drop what it still holds for it, instead of keeping it for minutes after we close.
    pub fn reset_on_close(&self) {
        if let Err(e) = sys::reset_on_close(&self.stream) {
            eprintln!("cannot set SO_LINGER on a connection, closing it with FIN: {e}");
        }
    }

    /// Called once the outbox is empty: send FIN so the peer reads everything, then EOF.
    pub fn shut_down(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

/// What one write did with the bytes it was offered.
enum Written {
    All,
    Part,
}

/// Whole lines queued together: the messages of one read from one sender (or one reply),
/// and how many lines that is.
pub struct Batch {
    pub bytes: Lines,
    pub lines: usize,
}

/// The lines waiting for one client: a queue of shared batches, and how much of the first is
/// already written. It costs 24 bytes (a pointer, a length, a count) per batch it holds; the
/// bytes of a batch are stored once for all the outboxes that hold it, and freed when the
/// last one has written it.
#[derive(Default)]
pub struct Outbox {
    batches: VecDeque<Batch>,
    /// How many bytes of `batches[0]` are already written.
    written: usize,
    /// Lines in all the batches; a batch counts whole until its last byte is written.
    lines: usize,
}

impl Outbox {
    /// How many lines wait, counting whole the batch partly written.
    pub fn lines(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn push(&mut self, batch: Batch) {
        self.lines += batch.lines;
        self.batches.push_back(batch);
    }

    /// Appends up to `max` pending bytes to `buf`, from where the last write stopped.
    fn gather(&self, buf: &mut Vec<u8>, max: usize) {
        let mut skip = self.written;
        for batch in &self.batches {
            let room = max - buf.len();
            if room == 0 {
                return;
            }
            let rest = &batch.bytes[skip..];
            buf.extend_from_slice(&rest[..rest.len().min(room)]);
            skip = 0;
        }
    }

    /// Forgets the first `n` pending bytes: they were written.
    pub fn consume(&mut self, mut n: usize) {
        while let Some(front) = self.batches.front() {
            let rest = front.bytes.len() - self.written;
            if n < rest {
                self.written += n;
                return;
            }
            n -= rest;
            self.written = 0;
            self.lines -= front.lines;
            self.batches.pop_front();
        }
        if self.batches.capacity() > KEEP_CAPACITY {
            self.batches.shrink_to(KEEP_CAPACITY);
        }
    }

    /// Forgets the backlog of a client that stopped reading, but keeps the rest of the line
    /// that may be half written, so that it can still be finished.
    pub fn drop_backlog(&mut self) {
        let torn = match self.batches.front() {
            Some(front) if self.written > 0 => {
                let rest = &front.bytes[self.written..];
                let end = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |lf| lf + 1);
                Some(Lines::from(&rest[..end]))
            }
            _ => None,
        };
        self.clear();
        if let Some(bytes) = torn {
            self.push(Batch { bytes, lines: 1 });
        }
    }

    /// Forgets everything, the memory too.
    pub fn clear(&mut self) {
        self.batches = VecDeque::new();
        self.written = 0;
        self.lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, Lines, Outbox};

    fn batch(text: &str) -> Batch {
        Batch {
            bytes: Lines::from(text.as_bytes()),
            lines: text.matches('\n').count(),
        }
    }

    fn pending(outbox: &Outbox) -> Vec<u8> {
        let mut buf = Vec::new();
        outbox.gather(&mut buf, usize::MAX);
        buf
    }

    #[test]
    fn consume_keeps_the_rest_in_order() {
        let mut outbox = Outbox::default();
        outbox.push(batch("MSG a one\nMSG a two\n"));
        outbox.push(batch("MSG b three\n"));
        assert_eq!(outbox.lines(), 3);
        outbox.consume(3);
        assert_eq!(pending(&outbox), b" a one\nMSG a two\nMSG b three\n");
        outbox.consume(17);
        assert_eq!(pending(&outbox), b"MSG b three\n");
        assert_eq!(outbox.lines(), 1);
        outbox.consume(12);
        assert!(outbox.is_empty());
        assert_eq!(outbox.lines(), 0);
    }

    #[test]
    fn gather_stops_at_the_limit() {
        let mut outbox = Outbox::default();
        outbox.push(batch("MSG a x\nMSG a y\n"));
        outbox.push(batch("MSG a z\n"));
        outbox.consume(2);
        let mut buf = Vec::new();
        outbox.gather(&mut buf, 19);
        assert_eq!(buf, b"G a x\nMSG a y\nMSG a");
    }

    #[test]
    fn a_shared_batch_is_stored_once() {
        let shared = Lines::from(&b"MSG a one\n"[..]);
        let mut first = Outbox::default();
        let mut second = Outbox::default();
        for outbox in [&mut first, &mut second] {
            outbox.push(Batch {
                bytes: Lines::clone(&shared),
                lines: 1,
            });
        }
        assert_eq!(Lines::strong_count(&shared), 3);
        first.consume(10);
        assert_eq!(Lines::strong_count(&shared), 2);
    }

    #[test]
    fn drop_backlog_keeps_a_torn_line() {
        let mut outbox = Outbox::default();
        outbox.push(batch("MSG a one\nMSG a two\nMSG a three\n"));
        outbox.push(batch("MSG b four\n"));
        outbox.consume(14);
        outbox.drop_backlog();
        assert_eq!(pending(&outbox), b"a two\n");
        assert_eq!(outbox.lines(), 1);
    }

    #[test]
    fn drop_backlog_after_whole_lines_keeps_nothing() {
        let mut outbox = Outbox::default();
        outbox.push(batch("MSG a one\n"));
        outbox.push(batch("MSG a two\n"));
        outbox.consume(10);
        outbox.drop_backlog();
        assert!(outbox.is_empty());
        assert_eq!(outbox.lines(), 0);
    }
}
