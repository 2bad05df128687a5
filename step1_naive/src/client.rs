//! One connection: its socket, its name, the bytes read but not yet handled (`inbox`)
//! and the bytes waiting to be written (`outbox`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// Most bytes waiting for one client. The longest line we ever send is 1058 bytes
/// (`MSG ` + 32-byte name + space + 1020-byte text + LF), so 2 MiB holds over 1900 of them.
pub const MAX_OUTBOX: usize = 2 * 1024 * 1024;

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
    /// Finished: removed at the end of this turn of the loop.
    Gone,
}

pub struct Client {
    pub stream: TcpStream,
    /// `None` until a successful `USER`, and again once the client leaves the room.
    pub name: Option<String>,
    pub inbox: Vec<u8>,
    pub outbox: VecDeque<u8>,
    pub state: State,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            name: None,
            inbox: Vec::new(),
            outbox: VecDeque::new(),
            state: State::Open,
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
        self.outbox.extend(bytes);
    }

    /// Forgets the backlog of a client that stopped reading, but keeps the rest of the line
    /// that may be half written, so the peer never sees a torn line.
    pub fn drop_backlog(&mut self) {
        let keep = match self.outbox.iter().position(|&b| b == b'\n') {
            Some(newline) => newline + 1,
            None => 0,
        };
        self.outbox.truncate(keep);
    }

    /// Writes as much of the outbox as the socket takes now. `Ok` also when it would block:
    /// the rest stays queued for the next turn of the loop.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            let (front, _) = self.outbox.as_slices();
            match self.stream.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outbox.drain(..n);
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

/// Takes every complete line (without its LF) out of `inbox`; a partial line stays for later.
pub fn split_lines(inbox: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(len) = inbox[start..].iter().position(|&b| b == b'\n') {
        lines.push(inbox[start..start + len].to_vec());
        start += len + 1;
    }
    // One drain at the end: removing each line as found would move the rest every time.
    inbox.drain(..start);
    lines
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn keeps_the_partial_line() {
        let mut inbox = b"USER a\nMSG hi\r\nMSG pa".to_vec();
        let lines = split_lines(&mut inbox);
        assert_eq!(lines, vec![b"USER a".to_vec(), b"MSG hi\r".to_vec()]);
        assert_eq!(inbox, b"MSG pa");
    }

    #[test]
    fn empty_lines_are_lines() {
        let mut inbox = b"\n\nx".to_vec();
        assert_eq!(split_lines(&mut inbox), vec![Vec::new(), Vec::new()]);
        assert_eq!(inbox, b"x");
    }
}
