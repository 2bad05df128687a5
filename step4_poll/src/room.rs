//! The room: every client, the names in use, what a line means (PROTOCOL.md) and flow
//! control. The server decides when to read, write or check a client; the room decides what
//! that means for everybody. It keeps count of the clients that are more than `SOFT` lines
//! behind, so that the server knows in O(1) whether it may read.

use std::collections::HashSet;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::client::{Batch, Client, Lines, State};
use crate::protocol::{
    self, Command, ERR_ALREADY_REGISTERED, ERR_INVALID_NAME, ERR_INVALID_TEXT, ERR_LINE_TOO_LONG,
    ERR_NAME_TAKEN, ERR_NOT_REGISTERED, ERR_TOO_SLOW, ERR_UNKNOWN_COMMAND, MAX_LINE,
};

/// How far a client in the room may fall behind: lines queued for it, not yet written. While
/// one is further behind than this, the server reads from nobody.
pub const SOFT: usize = 1024;
/// How long a client may stay more than `SOFT` lines behind, the room paused for it, before
/// it is cut as too slow.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// How long a client that left may take to read its last bytes and close.
pub const LINGER: Duration = Duration::from_secs(10);

pub struct Room {
    /// Removing one moves the last into its slot (`remove`).
    pub clients: Vec<Client>,
    names: HashSet<String>,
    /// How many clients have `behind_since` set: more than `SOFT` lines behind.
    behind: usize,
    /// Where a client's next lines are gathered before one write(2); shared by all clients.
    scratch: Vec<u8>,
    /// The messages of the read being handled, encoded, not yet shared with the receivers.
    batch: Vec<u8>,
    batch_lines: usize,
}

impl Room {
    pub fn new() -> Room {
        Room {
            clients: Vec::new(),
            names: HashSet::new(),
            behind: 0,
            scratch: Vec::new(),
            batch: Vec::new(),
            batch_lines: 0,
        }
    }

    /// A new connection enters the room, as the last client. Returns false if its socket
    /// cannot be made non-blocking: it is refused (dropped, so closed).
    pub fn join(&mut self, stream: TcpStream) -> bool {
        // A blocking socket would freeze the whole loop on its first read.
        if let Err(e) = stream.set_nonblocking(true) {
            eprintln!("cannot make a new connection non-blocking: {e}");
            return false;
        }
        // Without this, Nagle's algorithm holds back small messages waiting for an ACK.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("cannot disable Nagle on a new connection: {e}");
        }
        self.clients.push(Client::new(stream));
        true
    }

    /// Takes client `i` out in O(1): the last client moves into slot `i`.
    pub fn remove(&mut self, i: usize) -> Client {
        debug_assert!(self.clients[i].behind_since.is_none());
        self.clients.swap_remove(i)
    }

    /// Some client in the room is more than `SOFT` lines behind: nobody may talk.
    pub fn is_paused(&self) -> bool {
        self.behind > 0
    }

    /// One read from client `i` into `buf`, then its complete lines. Returns the bytes read.
    pub fn read_lines(&mut self, i: usize, buf: &mut [u8]) -> usize {
        let n = match self.clients[i].read_once(buf) {
            // Every line it sent before closing was handled on earlier reads: nothing is lost.
            Ok(0) => {
                self.leave(i);
                return 0;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
            Err(e) => {
                self.close_on_error(i, "read", e);
                return 0;
            }
        };
        self.handle_bytes(i, &buf[..n]);
        self.broadcast(i);
        n
    }

    /// After our FIN: read what the peer still sends, until it closes too.
    pub fn discard_input(&mut self, i: usize, buf: &mut [u8]) {
        match self.clients[i].read_once(buf) {
            Ok(0) => self.clients[i].state = State::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.clients[i].state = State::Gone,
        }
    }

    /// Writes client `i`'s pending output; a leaving client whose output is all written
    /// sends FIN and starts draining.
    pub fn flush(&mut self, i: usize) {
        if let Err(e) = self.clients[i].flush(&mut self.scratch) {
            self.close_on_error(i, "write", e);
            return;
        }
        self.note_lag(i);
        let client = &mut self.clients[i];
        if client.state == State::Closing && client.outbox.is_empty() {
            client.state = match client.shut_down() {
                Ok(()) => State::Draining,
                Err(_) => State::Gone,
            };
        }
    }

    /// Cuts client `i` if it has been more than `SOFT` behind for longer than `PATIENCE`,
    /// and lets it go (with RST) if it left more than `LINGER` ago and is still there;
    /// otherwise returns when one of those will be due.
    pub fn check_deadlines(&mut self, i: usize, now: Instant) -> Option<Instant> {
        let client = &mut self.clients[i];
        if let Some(since) = client.behind_since {
            let deadline = since + PATIENCE;
            if now < deadline {
                return Some(deadline);
            }
            self.cut(i);
            return None;
        }
        if client.state == State::Gone {
            return None;
        }
        let deadline = client.left_at? + LINGER;
        if now < deadline {
            return Some(deadline);
        }
        client.reset_on_close();
        client.state = State::Gone;
        None
    }

    /// Handles every complete line in `bytes`, straight from the read buffer: only the start
    /// of an unfinished line is copied, into the client's `unfinished`.
    fn handle_bytes(&mut self, i: usize, mut bytes: &[u8]) {
        if !self.clients[i].unfinished.is_empty() {
            let Some(newline) = find_newline(bytes) else {
                self.keep_unfinished(i, bytes);
                return;
            };
            let mut line = std::mem::take(&mut self.clients[i].unfinished);
            line.extend_from_slice(&bytes[..newline]);
            self.handle_line(i, &line);
            line.clear();
            self.clients[i].unfinished = line;
            bytes = &bytes[newline + 1..];
        }
        while let Some(newline) = find_newline(bytes) {
            if self.clients[i].state != State::Open {
                return;
            }
            self.handle_line(i, &bytes[..newline]);
            bytes = &bytes[newline + 1..];
        }
        self.keep_unfinished(i, bytes);
    }

    fn keep_unfinished(&mut self, i: usize, bytes: &[u8]) {
        let client = &mut self.clients[i];
        if client.state != State::Open {
            return;
        }
        client.unfinished.extend_from_slice(bytes);
        // No LF yet but already too long (a CR may still come before the LF: allow one more).
        if client.unfinished.len() > MAX_LINE + 1 {
            self.reply(i, ERR_LINE_TOO_LONG);
            self.leave(i);
        }
    }

    /// Applies one line (without its LF) from client `i`, in the order of PROTOCOL.md.
    pub fn handle_line(&mut self, i: usize, line: &[u8]) {
        if line.strip_suffix(b"\r").unwrap_or(line).len() > MAX_LINE {
            self.reply(i, ERR_LINE_TOO_LONG);
            self.leave(i);
            return;
        }
        match protocol::parse(line) {
            Command::Empty => {}
            Command::User(name) => self.register(i, name),
            Command::Msg(text) => self.post(i, text),
            Command::NotUtf8 => self.reply(i, ERR_INVALID_TEXT),
            Command::Unknown => self.reply(i, ERR_UNKNOWN_COMMAND),
        }
    }

    fn register(&mut self, i: usize, name: &str) {
        let refusal = if self.clients[i].name.is_some() {
            ERR_ALREADY_REGISTERED
        } else if !protocol::is_valid_name(name) {
            ERR_INVALID_NAME
        } else if self.names.contains(name) {
            ERR_NAME_TAKEN
        } else {
            self.names.insert(name.to_string());
            self.clients[i].name = Some(name.to_string());
            return;
        };
        self.reply(i, refusal);
    }

    fn post(&mut self, i: usize, text: &str) {
        let Some(name) = &self.clients[i].name else {
            self.reply(i, ERR_NOT_REGISTERED);
            return;
        };
        if let Err(refusal) = protocol::check_text(text) {
            self.reply(i, refusal);
            return;
        }
        // Encoded once, straight into the batch of this read.
        for part in [b"MSG ", name.as_bytes(), b" ", text.as_bytes(), b"\n"] {
            self.batch.extend_from_slice(part);
        }
        self.batch_lines += 1;
    }

    /// Queues the messages of the read just handled for every registered client but their
    /// sender: copied once into a shared batch, which every receiver's outbox points to.
    /// During one read only the sender changes (it may register, get replies, or leave),
    /// and it is not among the receivers, so a batch reaches each of them exactly as its
    /// lines one by one would. One thread handles one read at a time, so every receiver
    /// gets the same order.
    fn broadcast(&mut self, sender: usize) {
        if self.batch.is_empty() {
            return;
        }
        let bytes = Lines::from(&self.batch[..]);
        let lines = self.batch_lines;
        self.batch.clear();
        self.batch_lines = 0;
        for j in 0..self.clients.len() {
            if j != sender && self.clients[j].name.is_some() {
                let bytes = Lines::clone(&bytes);
                self.queue(j, Batch { bytes, lines });
            }
        }
    }

    /// Queues `batch` for client `i`. Never refused: the server stops reading while a client
    /// is more than `SOFT` behind, so an outbox grows past `SOFT` by one read at most.
    fn queue(&mut self, i: usize, batch: Batch) {
        self.clients[i].queue(batch);
        self.note_lag(i);
    }

    /// Queues one line (an `ERR`) for client `i` alone; it stays open.
    fn reply(&mut self, i: usize, err: &str) {
        let bytes = Lines::from(err.as_bytes());
        self.queue(i, Batch { bytes, lines: 1 });
    }

    /// Client `i` stayed more than `SOFT` behind for longer than `PATIENCE`: out of the
    /// room, last word `ERR too-slow` (best effort), and closed at the end of this round with
    /// RST, without the linger a leaving client gets.
    pub fn cut(&mut self, i: usize) {
        eprintln!("a client stayed over {SOFT} lines behind for {PATIENCE:?}; cutting it");
        self.leave(i);
        let bytes = Lines::from(ERR_TOO_SLOW.as_bytes());
        self.clients[i].cut(Batch { bytes, lines: 1 }, &mut self.scratch);
    }

    /// Client `i` is done (it closed, or got a fatal `ERR`): out of the room at once, its
    /// name free again; what is queued for it still goes out, then it closes.
    fn leave(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if let Some(name) = client.name.take() {
            self.names.remove(&name);
        }
        client.start_closing();
        // Out of the room, it gets nothing more: its backlog no longer holds the room back.
        self.note_lag(i);
    }

    /// The connection failed (reset, broken pipe): log it, and close at once, since nothing
    /// more can be sent.
    fn close_on_error(&mut self, i: usize, what: &str, e: io::Error) {
        eprintln!("{what} failed, closing a connection: {e}");
        self.leave(i);
        self.clients[i].state = State::Gone;
    }

    /// Keeps `behind` right after client `i`'s outbox grew or shrank, or it left the room:
    /// only a client in the room counts, and only when it crosses `SOFT`, so this is O(1).
    fn note_lag(&mut self, i: usize) {
        let client = &mut self.clients[i];
        let over = client.state == State::Open && client.outbox.lines() > SOFT;
        match (over, client.behind_since.is_some()) {
            (true, false) => {
                client.behind_since = Some(Instant::now());
                self.behind += 1;
            }
            (false, true) => {
                client.behind_since = None;
                self.behind -= 1;
            }
            _ => {}
        }
    }
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}
