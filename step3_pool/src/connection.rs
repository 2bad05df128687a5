//! One connection's two threads: the reader cuts the socket's bytes into lines for the room,
//! the writer drains the connection's outbox into the socket.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::Duration;

use crate::protocol::{ERR_TOO_SLOW, MAX_LINE};
use crate::room::{ClientId, Event};

/// A line for the client, shared by every outbox it is queued in (one allocation per message).
pub type Line = Arc<str>;

/// After a line too long, how long the reader keeps discarding input while the client reads
/// its ERR, and how much input it discards at most.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_LIMIT: u64 = 64 * 1024;

/// What the reader, the writer and the room share about one connection.
pub struct Connection {
    pub stream: TcpStream,
    /// Set by the room when it cuts the client, read by the writer once its outbox is closed.
    too_slow: AtomicBool,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            too_slow: AtomicBool::new(false),
        }
    }

    /// Called by the room when the client's outbox was full, just before it drops the outbox.
    /// Shutting the read side wakes the reader blocked in `read`.
    pub fn cut_too_slow(&self) {
        self.too_slow.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Read);
    }
}

/// The reader thread: hands the outbox to the room, then sends it every line, then `Left`.
/// All on one channel, so the room sees the lines before the departure: nothing is lost.
pub fn read_lines(
    conn: Arc<Connection>,
    id: ClientId,
    outbox: SyncSender<Line>,
    room: Sender<Event>,
) {
    let joined = Event::Joined {
        id,
        conn: Arc::clone(&conn),
        outbox,
    };
    if room.send(joined).is_err() {
        return; // the room is gone: the server is stopping
    }
    let mut reader = BufReader::new(&conn.stream);
    loop {
        match read_line(&mut reader) {
            Ok(Some(line)) => {
                let _ = room.send(Event::Line { id, line });
            }
            Ok(None) => break,
            Err(LineTooLong) => {
                let _ = room.send(Event::LineTooLong { id });
                drain(&mut reader);
                break;
            }
        }
    }
    let _ = room.send(Event::Left { id });
}

/// The next line without its LF and CR. `Ok(None)`: the client closed (a last line without
/// LF is dropped) or the socket failed. `Err`: the line is longer than `MAX_LINE`; noticed as
/// soon as `MAX_LINE` + 2 bytes came without LF, so a client cannot make us buffer more.
fn read_line(reader: &mut BufReader<&TcpStream>) -> Result<Option<Vec<u8>>, LineTooLong> {
    let limit = MAX_LINE as u64 + 2; // the line, a CR, and one byte too many
    let mut line = Vec::new();
    let Ok(n) = reader.take(limit).read_until(b'\n', &mut line) else {
        return Ok(None);
    };
    if line.last() != Some(&b'\n') {
        return if n as u64 == limit {
            Err(LineTooLong)
        } else {
            Ok(None)
        };
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > MAX_LINE {
        return Err(LineTooLong);
    }
    Ok(Some(line))
}

struct LineTooLong;

/// Discards what the client still sends, for a while, so that closing the socket with unread
/// input does not send a reset that could destroy the ERR line on its way.
fn drain(reader: &mut BufReader<&TcpStream>) {
    if reader
        .get_ref()
        .set_read_timeout(Some(DRAIN_TIMEOUT))
        .is_err()
    {
        return;
    }
    let _ = io::copy(&mut reader.take(DRAIN_LIMIT), &mut io::sink());
}

/// The writer thread: the only one that writes to this socket. Ends when the room drops the
/// outbox (the client left or was cut) or when the socket fails.
pub fn write_lines(conn: Arc<Connection>, inbox: Receiver<Line>) {
    let mut out = BufWriter::new(&conn.stream);
    loop {
        let line = match inbox.try_recv() {
            Ok(line) => line,
            Err(TryRecvError::Disconnected) => break,
            // Flush only when the outbox is empty: a burst leaves in a few large writes.
            Err(TryRecvError::Empty) => {
                if out.flush().is_err() {
                    return;
                }
                match inbox.recv() {
                    Ok(line) => line,
                    Err(_) => break,
                }
            }
        };
        if out.write_all(line.as_bytes()).is_err() {
            return;
        }
    }
    // Reached only if the client reads again: it gets its backlog, then the reason for the cut.
    if conn.too_slow.load(Ordering::Acquire) {
        let _ = out.write_all(ERR_TOO_SLOW.as_bytes());
    }
    if out.flush().is_ok() {
        let _ = conn.stream.shutdown(Shutdown::Write);
    }
}
