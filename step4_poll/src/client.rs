//! One connection: its socket, its name, the start of a line not finished yet (`inbox`)
//! and the bytes waiting to be written (`outbox`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

/// Most bytes waiting for one client. The longest line we ever send is 1058 bytes
/// (`MSG ` + 32-byte name + space + 1020-byte text + LF), so 2 MiB holds over 1900 of them.
pub const MAX_OUTBOX: usize = 2 * 1024 * 1024;

/// Capacity an emptied outbox keeps for the next burst; memory beyond it goes back.
const KEEP_CAPACITY: usize = 64 * 1024;

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
    pub inbox: Vec<u8>,
    pub outbox: Outbox,
    pub state: State,
    /// Something was queued this round: try a write at the end of the round.
    pub dirty: bool,
    /// When it left the room: a peer that never reads or never closes is let go after a while.
    pub left_at: Option<Instant>,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            name: None,
            inbox: Vec::new(),
            outbox: Outbox::default(),
            state: State::Open,
            dirty: false,
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

    pub fn has_room_for(&self, len: usize) -> bool {
        self.outbox.len() + len <= MAX_OUTBOX
    }

    pub fn queue(&mut self, bytes: &[u8]) {
        self.outbox.push(bytes);
        self.dirty = true;
    }

    /// Writes as much of the outbox as the socket takes now, the whole backlog in one
    /// write(2). `Ok` also when it would block: the rest waits for `POLLOUT`.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            match self.stream.write(self.outbox.pending()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // A short write means the socket buffer is full: trying again now would only
                // return `WouldBlock`.
                Ok(n) => {
                    self.outbox.consume(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Called once the outbox is empty: send FIN so the peer reads everything, then EOF.
    pub fn shut_down(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

/// The bytes waiting for one client, in one contiguous buffer so that a backlog of many
/// messages leaves in a single write(2). Written bytes are skipped with an offset and only
/// moved once they are the larger half, so each byte is moved at most once on average.
#[derive(Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// How many bytes at the front of `bytes` are already written.
    written: usize,
    /// The last write stopped in the middle of a line.
    mid_line: bool,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.bytes.len() - self.written
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.written..]
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Forgets the first `n` pending bytes: they were written.
    pub fn consume(&mut self, n: usize) {
        self.written += n;
        self.mid_line = self.bytes[self.written - 1] != b'\n';
        if self.written == self.bytes.len() {
            self.bytes.clear();
            self.written = 0;
            self.bytes.shrink_to(KEEP_CAPACITY);
        } else if self.written > self.bytes.len() / 2 {
            self.bytes.drain(..self.written);
            self.written = 0;
        }
    }

    /// Forgets the backlog of a client that stopped reading, but keeps the rest of the line
    /// that may be half written, so the peer never sees a torn line.
    pub fn drop_backlog(&mut self) {
        let mut keep = 0;
        if self.mid_line {
            keep = match self.pending().iter().position(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None => self.len(),
            };
        }
        self.bytes.truncate(self.written + keep);
    }
}

#[cfg(test)]
mod tests {
    use super::Outbox;

    #[test]
    fn consume_keeps_the_rest_in_order() {
        let mut outbox = Outbox::default();
        outbox.push(b"MSG a one\n");
        outbox.push(b"MSG a two\n");
        outbox.consume(3);
        assert_eq!(outbox.pending(), b" a one\nMSG a two\n");
        outbox.consume(7);
        assert_eq!(outbox.pending(), b"MSG a two\n");
        outbox.consume(10);
        assert!(outbox.is_empty());
    }

    #[test]
    fn drop_backlog_finishes_a_torn_line() {
        let mut outbox = Outbox::default();
        outbox.push(b"MSG a one\nMSG a two\nMSG a three\n");
        outbox.consume(14);
        outbox.drop_backlog();
        assert_eq!(outbox.pending(), b"a two\n");
    }

    #[test]
    fn drop_backlog_after_whole_lines_keeps_nothing() {
        let mut outbox = Outbox::default();
        outbox.push(b"MSG a one\nMSG a two\n");
        outbox.consume(10);
        outbox.drop_backlog();
        assert!(outbox.is_empty());
    }
}
