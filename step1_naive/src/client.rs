//! One connection: its socket, its name, the bytes read but not yet handled (`inbox`)
//! and the lines waiting to be written (`outbox`).

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use crate::flow::{LINGER, Lag, Line, Outbox};

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
    /// Bytes read and not handled yet: a partial line, or whole lines left for the next turn
    /// when the turn's budget ran out.
    pub inbox: Vec<u8>,
    pub outbox: Outbox,
    pub state: State,
    /// How long it has been too far behind (see `flow.rs`).
    pub lag: Lag,
    /// When it left the room: a peer that never reads or never closes is let go after
    /// `LINGER`.
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
            lag: Lag::default(),
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

    /// A whole line is waiting in the inbox, from a turn whose budget ran out.
    pub fn has_line(&self) -> bool {
        self.inbox.contains(&b'\n')
    }

    pub fn queue(&mut self, line: Line) {
        self.outbox.push(line);
    }

    /// Writes as much of the outbox as the socket takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        self.outbox.write_to(&self.stream)
    }

    /// Called once the outbox is empty: send FIN so the peer reads everything, then EOF.
    pub fn shut_down(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// It left more than `LINGER` ago and still has not read its last bytes, or not closed.
    pub fn has_lingered(&self, now: Instant) -> bool {
        self.left_at
            .is_some_and(|left| now.duration_since(left) > LINGER)
    }
}

/// Takes at most `max` complete lines (without their LF) out of `inbox`; the rest stays for
/// later.
pub fn split_lines(inbox: &mut Vec<u8>, max: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while lines.len() < max {
        let Some(len) = inbox[start..].iter().position(|&b| b == b'\n') else {
            break;
        };
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
        let lines = split_lines(&mut inbox, 10);
        assert_eq!(lines, vec![b"USER a".to_vec(), b"MSG hi\r".to_vec()]);
        assert_eq!(inbox, b"MSG pa");
    }

    #[test]
    fn empty_lines_are_lines() {
        let mut inbox = b"\n\nx".to_vec();
        assert_eq!(split_lines(&mut inbox, 10), vec![Vec::new(), Vec::new()]);
        assert_eq!(inbox, b"x");
    }

    #[test]
    fn stops_at_the_budget() {
        let mut inbox = b"a\nb\nc\n".to_vec();
        assert_eq!(
            split_lines(&mut inbox, 2),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(inbox, b"c\n");
    }
}
