//! The room: every connection, the names in use, and the protocol (PROTOCOL.md).
//! It knows nothing of `poll`: the server tells it which client to read, flush or cut.
//! It also keeps count of the clients that are more than `SOFT` lines behind, so that the
//! server knows in O(1) whether it may read.

use std::collections::HashSet;
use std::io;
use std::net::TcpStream;
use std::time::Instant;

use crate::client::{Batch, Client, Lines, State};

/// Longest line a client may send, not counting CR/LF.
pub const MAX_LINE: usize = 1024;
const MAX_NAME: usize = 32;
/// How far a client in the room may fall behind: lines queued for it, not yet written. While
/// one is further behind than this, the server reads from nobody (see `server.rs`).
const SOFT: usize = 1024;

const UNKNOWN_COMMAND: &str = "ERR unknown-command expected USER <name> or MSG <text>\n";
const INVALID_NAME: &str = "ERR invalid-name 1 to 32 bytes, no spaces or control characters\n";
const NAME_TAKEN: &str = "ERR name-taken that name is in use\n";
const ALREADY_REGISTERED: &str = "ERR already-registered you already have a name\n";
const NOT_REGISTERED: &str = "ERR not-registered send USER <name> first\n";
const EMPTY_MESSAGE: &str = "ERR empty-message MSG needs some text\n";
const INVALID_TEXT: &str = "ERR invalid-text lines must be UTF-8 without control characters\n";
const LINE_TOO_LONG: &str = "ERR line-too-long a line is at most 1024 bytes\n";
const TOO_SLOW: &str = "ERR too-slow you stopped reading, the room could not wait\n";

pub struct Room {
    /// In the same order as the server's poll array; removing one moves the last into its slot.
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

    pub fn join(&mut self, stream: TcpStream) {
        self.clients.push(Client::new(stream));
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
                self.drop_client(i, "read", e);
                return 0;
            }
        };
        self.handle_bytes(i, &buf[..n]);
        self.broadcast(i);
        n
    }

    /// Handles every complete line in `bytes`, straight from the read buffer: only the start
    /// of an unfinished line is copied, into the client's inbox.
    fn handle_bytes(&mut self, i: usize, mut bytes: &[u8]) {
        if !self.clients[i].inbox.is_empty() {
            let Some(newline) = find_newline(bytes) else {
                self.keep_unfinished(i, bytes);
                return;
            };
            let mut line = std::mem::take(&mut self.clients[i].inbox);
            line.extend_from_slice(&bytes[..newline]);
            self.handle_line(i, &line);
            line.clear();
            self.clients[i].inbox = line;
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
        client.inbox.extend_from_slice(bytes);
        // No LF yet but already too long (a CR may still come before the LF: allow one more).
        if client.inbox.len() > MAX_LINE + 1 {
            self.fail(i, LINE_TOO_LONG);
        }
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
            self.drop_client(i, "write", e);
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

    /// Applies one line (without its LF) from client `i`, in the order of PROTOCOL.md.
    pub fn handle_line(&mut self, i: usize, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            self.fail(i, LINE_TOO_LONG);
            return;
        }
        if line.is_empty() {
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            self.reply(i, INVALID_TEXT);
            return;
        };
        if let Some(name) = line.strip_prefix("USER ") {
            self.register(i, name);
        } else if let Some(text) = line.strip_prefix("MSG ") {
            self.post(i, text);
        } else {
            self.reply(i, UNKNOWN_COMMAND);
        }
    }

    fn register(&mut self, i: usize, name: &str) {
        let refusal = if self.clients[i].name.is_some() {
            ALREADY_REGISTERED
        } else if !is_valid_name(name) {
            INVALID_NAME
        } else if self.names.contains(name) {
            NAME_TAKEN
        } else {
            self.names.insert(name.to_string());
            self.clients[i].name = Some(name.to_string());
            return;
        };
        self.reply(i, refusal);
    }

    fn post(&mut self, i: usize, text: &str) {
        let Some(name) = &self.clients[i].name else {
            self.reply(i, NOT_REGISTERED);
            return;
        };
        if text.is_empty() {
            self.reply(i, EMPTY_MESSAGE);
            return;
        }
        if !is_valid_text(text) {
            self.reply(i, INVALID_TEXT);
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
                self.send(j, Batch { bytes, lines });
            }
        }
    }

    /// Queues `batch` for client `i`. Never refused: the server stops reading while a client
    /// is more than `SOFT` behind, so an outbox grows past `SOFT` by one read at most.
    fn send(&mut self, i: usize, batch: Batch) {
        self.clients[i].queue(batch);
        self.note_lag(i);
    }

    /// Queues a reply for client `i` alone.
    fn reply(&mut self, i: usize, text: &str) {
        let bytes = Lines::from(text.as_bytes());
        self.send(i, Batch { bytes, lines: 1 });
    }

    /// Client `i` stayed more than `SOFT` behind for longer than the server's patience: out
    /// of the room, last word `ERR too-slow` (best effort), and closed at the end of this
    /// round, with no linger.
    pub fn cut(&mut self, i: usize) {
        eprintln!("a client stopped reading; cutting it (too-slow)");
        self.leave(i);
        let bytes = Lines::from(TOO_SLOW.as_bytes());
        self.clients[i].cut(Batch { bytes, lines: 1 }, &mut self.scratch);
    }

    /// A fatal ERR: it goes out after what is queued, then the connection closes.
    fn fail(&mut self, i: usize, err: &str) {
        self.reply(i, err);
        self.leave(i);
    }

    /// Takes client `i` out of the room at once (its name is free again) and lets its
    /// pending output drain before the connection closes.
    fn leave(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if let Some(name) = client.name.take() {
            self.names.remove(&name);
        }
        client.inbox.clear();
        client.state = State::Closing;
        client.left_at = Some(Instant::now());
        // Closing with nothing queued goes straight to FIN at the end of the round.
        client.dirty = true;
        // Out of the room, it gets nothing more: its backlog no longer holds the room back.
        self.note_lag(i);
    }

    /// The connection failed (reset, broken pipe): nothing more can be sent, close it now.
    fn drop_client(&mut self, i: usize, what: &str, e: io::Error) {
        eprintln!("{what} failed, dropping a client: {e}");
        self.leave(i);
        self.clients[i].state = State::Gone;
    }
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_valid_text(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::{is_valid_name, is_valid_text};

    #[test]
    fn names() {
        assert!(is_valid_name("alice"));
        assert!(is_valid_name("é"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a\tb"));
        assert!(!is_valid_name("a\u{7f}"));
    }

    #[test]
    fn texts() {
        assert!(is_valid_text("hello, world"));
        assert!(!is_valid_text("tab\there"));
        assert!(!is_valid_text("bell\u{7}"));
    }
}
