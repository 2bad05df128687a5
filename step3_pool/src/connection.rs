//! One connection's two threads: the reader cuts the socket's bytes into lines for the room,
//! the writer empties the connection's outbox into the socket.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use crate::outbox::{Batch, Outbox, WriterEnd};
use crate::protocol::{ERR_TOO_SLOW, MAX_LINE};
use crate::room::{ClientId, Event, PATIENCE};
use crate::sys;

/// A line for the client, shared by every outbox it is queued in (one allocation per message).
pub type Line = Arc<str>;

/// After a line too long, how long the reader may keep discarding input while the client
/// reads its ERR, before the socket closes.
const LINGER: Duration = Duration::from_secs(1);

/// The most bytes the writer hands the kernel in one `write`: lines waiting in the outbox are
/// copied into one buffer of at most this size, so a batch leaves in a few system calls.
const WRITE_CHUNK: usize = 64 * 1024;

/// The socket's write timeout. A `write` the client does not make room for returns after this
/// long, so the writer can check whether the room cut its client (then it stops at once) or
/// whether the client took nothing for `PATIENCE` (then it gives up on its own).
const WRITE_TICK: Duration = Duration::from_millis(200);

/// What the reader, the writer and the room share about one connection.
pub struct Connection {
    stream: TcpStream,
    /// Set when the client is cut for being too slow, by the room or by the writer.
    too_slow: AtomicBool,
    /// Set when the room cut the client: it has forgotten it, the reader need not say `Left`.
    forgotten: AtomicBool,
}

impl Connection {
    /// Wraps a new connection's socket. Nagle's algorithm is off: the writer sends whole
    /// batches already, and a lone line must not wait for the ACK of the previous one.
    pub fn new(stream: TcpStream) -> io::Result<Connection> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TICK))?;
        Ok(Connection {
            stream,
            too_slow: AtomicBool::new(false),
            forgotten: AtomicBool::new(false),
        })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The room's `cut`, once it has forgotten the client (it stayed `SOFT` behind for
    /// `PATIENCE`). The writer sees it within `WRITE_TICK` and ends the connection.
    pub fn cut(&self) {
        self.forgotten.store(true, Ordering::Release);
        self.mark_too_slow();
    }

    /// Marks the client too slow and wakes its reader: shutting the read side makes the
    /// reader's blocked `read` return.
    fn mark_too_slow(&self) {
        self.too_slow.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Read);
    }

    fn is_too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Acquire)
    }
}

/// The reader thread: hands the outbox to the room, then sends it every line, then `Left`.
/// All on one channel, so the room sees the lines before the departure: nothing is lost. The
/// channel is bounded: while the room waits for a client that is behind, `send` blocks, this
/// thread stops reading its socket, and TCP makes the talker wait. That is the back-pressure.
pub fn read_lines(conn: Arc<Connection>, id: ClientId, outbox: Outbox, room: SyncSender<Event>) {
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
                if room.send(Event::Line { id, line }).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(LineTooLong) => {
                let _ = room.send(Event::LineTooLong { id });
                linger(&mut reader);
                break;
            }
        }
    }
    // A client the room cut is already forgotten: its reader must not wait for the room
    // (which may be waiting for somebody else) just to say so.
    if !conn.forgotten.load(Ordering::Acquire) {
        let _ = room.send(Event::Left { id });
    }
}

/// The next line without its LF (a CR before it is `protocol::parse`'s business). `Ok(None)`:
/// the client closed (a last line without LF is dropped) or the socket failed. `Err`: the line
/// is longer than `MAX_LINE`; noticed as soon as `MAX_LINE` + 2 bytes came without LF, so a
/// client cannot make us buffer more.
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
    if line.strip_suffix(b"\r").unwrap_or(&line).len() > MAX_LINE {
        return Err(LineTooLong);
    }
    Ok(Some(line))
}

struct LineTooLong;

/// Discards what the client still sends, for at most `LINGER`, so that closing the socket
/// with unread input does not send a reset that could destroy the ERR line on its way.
fn linger(reader: &mut BufReader<&TcpStream>) {
    let deadline = Instant::now() + LINGER;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || reader.get_ref().set_read_timeout(Some(left)).is_err() {
            return;
        }
        let n = match reader.fill_buf() {
            Ok([]) | Err(_) => return, // closed, failed, or quiet for the rest of `LINGER`
            Ok(bytes) => bytes.len(),
        };
        reader.consume(n);
    }
}

/// Why the writer stopped writing.
enum Stop {
    /// The room dropped the outbox (the client left) and everything queued was written.
    Done,
    /// The client is cut for being too slow; `at_line_end` tells whether the bytes written so
    /// far end with a whole line, so that an `ERR too-slow` would not land in the middle of one.
    TooSlow { at_line_end: bool },
    /// The socket failed (the client reset it, or it is gone).
    Failed,
}

/// The writer thread: the only one that writes to this socket. It sleeps until the room hands
/// it a batch, then copies every line waiting (this batch and any that came meanwhile) into
/// one buffer and gives it to the kernel in as few `write` calls as it can.
pub fn write_lines(conn: Arc<Connection>, outbox: WriterEnd) {
    let mut out = Output::new();
    let stop = loop {
        let batch = match outbox.try_recv() {
            Ok(batch) => batch,
            Err(disconnected_or_empty) => {
                // Nothing more is waiting: send what the buffer holds, then sleep.
                if let Err(stop) = out.send(&conn, &outbox) {
                    break stop;
                }
                if disconnected_or_empty == TryRecvError::Disconnected {
                    break Stop::Done;
                }
                match outbox.recv() {
                    Ok(batch) => batch,
                    Err(_) => break Stop::Done,
                }
            }
        };
        if let Err(stop) = out.append(batch, &conn, &outbox) {
            break stop;
        }
    };
    finish(&conn, stop);
}

/// Ends the connection's output. A client that left gets the end of the stream after its last
/// line. A client cut for being too slow gets one non-blocking attempt at `ERR too-slow` (its
/// buffers are most likely full, so it rarely gets through), then the connection is reset
/// when its descriptor closes, a moment later, once the reader has ended too.
fn finish(conn: &Connection, stop: Stop) {
    // The room may cut a client while its writer sleeps with nothing left to write.
    let stop = match stop {
        Stop::Done if conn.is_too_slow() => Stop::TooSlow { at_line_end: true },
        other => other,
    };
    match stop {
        Stop::Done => {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        Stop::TooSlow { at_line_end } => {
            conn.mark_too_slow();
            if at_line_end && conn.stream.set_nonblocking(true).is_ok() {
                let _ = (&conn.stream).write(ERR_TOO_SLOW.as_bytes());
            }
            let _ = sys::reset_on_close(&conn.stream);
        }
        Stop::Failed => {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

/// The writer's buffer: whole lines, and how many of them, not yet given to the kernel.
struct Output {
    bytes: Vec<u8>,
    lines: usize,
}

impl Output {
    fn new() -> Output {
        Output {
            bytes: Vec::with_capacity(WRITE_CHUNK),
            lines: 0,
        }
    }

    /// Copies the lines of `batch` into the buffer, sending it each time it is full. Each
    /// line's `Arc` is dropped as soon as it is copied.
    fn append(&mut self, batch: Batch, conn: &Connection, outbox: &WriterEnd) -> Result<(), Stop> {
        for line in batch {
            if self.bytes.len() + line.len() > WRITE_CHUNK {
                self.send(conn, outbox)?;
            }
            self.bytes.extend_from_slice(line.as_bytes());
            self.lines += 1;
        }
        Ok(())
    }

    /// Writes the whole buffer, then tells the outbox how many lines left. Gives up if the
    /// room cut the client, or if the client took no byte for `PATIENCE`.
    fn send(&mut self, conn: &Connection, outbox: &WriterEnd) -> Result<(), Stop> {
        let mut sent = 0;
        let mut progress = Instant::now();
        while sent < self.bytes.len() {
            if conn.is_too_slow() {
                return Err(self.too_slow(sent));
            }
            match (&conn.stream).write(&self.bytes[sent..]) {
                Ok(0) => return Err(Stop::Failed),
                Ok(n) => {
                    sent += n;
                    progress = Instant::now();
                }
                Err(e) if is_timeout(&e) => {
                    if progress.elapsed() >= PATIENCE {
                        return Err(self.too_slow(sent));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Failed),
            }
        }
        outbox.written(self.lines);
        self.bytes.clear();
        self.lines = 0;
        Ok(())
    }

    fn too_slow(&self, sent: usize) -> Stop {
        let at_line_end = sent == 0 || self.bytes[sent - 1] == b'\n';
        Stop::TooSlow { at_line_end }
    }
}

/// A blocking `write` that hit the socket's write timeout.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
