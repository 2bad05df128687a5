//! The room: every connection, the names in use, and the protocol (PROTOCOL.md).

use std::collections::HashSet;
use std::io;
use std::net::TcpStream;
use std::time::Instant;

use crate::client::{Client, State, split_lines};
use crate::flow::{Line, PATIENCE, SOFT, Standing, TURN_LINES};

/// Longest line a client may send, not counting CR/LF.
pub const MAX_LINE: usize = 1024;
const MAX_NAME: usize = 32;
/// Bytes asked of one client per read; at most one read per client per turn keeps turns fair.
const READ_CHUNK: usize = 16 * 1024;

const UNKNOWN_COMMAND: &str = "ERR unknown-command expected USER <name> or MSG <text>\n";
const INVALID_NAME: &str = "ERR invalid-name 1 to 32 bytes, no spaces or control characters\n";
const NAME_TAKEN: &str = "ERR name-taken that name is in use\n";
const ALREADY_REGISTERED: &str = "ERR already-registered you already have a name\n";
const NOT_REGISTERED: &str = "ERR not-registered send USER <name> first\n";
const EMPTY_MESSAGE: &str = "ERR empty-message MSG needs some text\n";
const INVALID_TEXT: &str = "ERR invalid-text lines must be UTF-8 without control characters\n";
const LINE_TOO_LONG: &str = "ERR line-too-long a line is at most 1024 bytes\n";

pub struct Room {
    clients: Vec<Client>,
    names: HashSet<String>,
    /// Some client in the room was more than `SOFT` behind at the end of the last turn:
    /// read nobody until it catches up or is cut.
    someone_behind: bool,
    /// The client the next turn starts reading from, when the budget ran out.
    next_reader: usize,
}

impl Room {
    pub fn new() -> Room {
        Room {
            clients: Vec::new(),
            names: HashSet::new(),
            someone_behind: false,
            next_reader: 0,
        }
    }

    pub fn join(&mut self, stream: TcpStream) {
        // A blocking socket would freeze the whole loop on its first read: refuse it.
        if let Err(e) = stream.set_nonblocking(true) {
            eprintln!("cannot make a new connection non-blocking: {e}");
            return;
        }
        // Without this, Nagle's algorithm holds back small messages waiting for an ACK.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("cannot disable Nagle on a new connection: {e}");
        }
        self.clients.push(Client::new(stream));
    }

    /// Handles at most `TURN_LINES` lines from the clients, in turn from where the last turn
    /// stopped, reading a client only when it has no whole line waiting. While someone is
    /// behind, talkers are not read at all: their lines wait in the kernel, and TCP makes
    /// their writes wait (back-pressure).
    pub fn read_all(&mut self) {
        let mut buf = [0; READ_CHUNK];
        let mut budget = if self.someone_behind { 0 } else { TURN_LINES };
        let count = self.clients.len();
        let start = self.next_reader.min(count);
        for i in (start..count).chain(0..start) {
            match self.clients[i].state {
                State::Open if budget > 0 => {
                    budget -= self.read_lines(i, &mut buf, budget);
                    if budget == 0 {
                        self.next_reader = i + 1;
                    }
                }
                State::Draining => self.discard_input(i, &mut buf),
                State::Open | State::Closing | State::Gone => {}
            }
        }
    }

    /// Tries to write every client's pending output; finishes the ones that are leaving.
    pub fn flush_all(&mut self) {
        for i in 0..self.clients.len() {
            let client = &mut self.clients[i];
            if client.state == State::Gone || client.state == State::Draining {
                continue;
            }
            if let Err(e) = client.flush() {
                self.drop_client(i, "write", e);
                continue;
            }
            if client.state == State::Closing && client.outbox.is_empty() {
                client.state = match client.shut_down() {
                    Ok(()) => State::Draining,
                    Err(_) => State::Gone,
                };
            }
        }
    }

    /// The rule of PROTOCOL.md, once per turn after the writes: notes whether someone in the
    /// room is more than `SOFT` behind (then the next turn reads nobody), and cuts those that
    /// have been behind for longer than `PATIENCE`.
    pub fn apply_flow_control(&mut self, now: Instant) {
        self.someone_behind = false;
        for i in 0..self.clients.len() {
            let client = &mut self.clients[i];
            if client.state != State::Open {
                continue;
            }
            match client.lag.check(client.outbox.len(), now) {
                Standing::Keeping => {}
                Standing::Behind => self.someone_behind = true,
                Standing::TooSlow => self.cut(i),
            }
        }
    }

    /// Closes the sockets of finished clients, and of those that left more than `LINGER`
    /// ago without reading their last bytes or closing (dropping a `TcpStream` closes it).
    pub fn remove_gone(&mut self, now: Instant) {
        self.clients
            .retain(|client| client.state != State::Gone && !client.has_lingered(now));
    }

    /// Reads client `i` once, unless a whole line already waits, and handles at most `budget`
    /// of its lines. Returns how many it handled.
    fn read_lines(&mut self, i: usize, buf: &mut [u8], budget: usize) -> usize {
        if !self.clients[i].has_line() {
            match self.clients[i].read_once(buf) {
                // Every line it sent before closing was handled on earlier turns: nothing is
                // lost.
                Ok(0) => {
                    self.leave(i);
                    return 0;
                }
                Ok(n) => self.clients[i].inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) => {
                    self.drop_client(i, "read", e);
                    return 0;
                }
            }
        }
        let lines = split_lines(&mut self.clients[i].inbox, budget);
        for line in &lines {
            if self.clients[i].state != State::Open {
                break;
            }
            self.handle_line(i, line);
        }
        // No LF yet but already too long (a CR may still come before the LF: allow one more).
        let client = &self.clients[i];
        if client.state == State::Open && !client.has_line() && client.inbox.len() > MAX_LINE + 1 {
            self.fail(i, LINE_TOO_LONG);
        }
        lines.len()
    }

    /// After our FIN: read what the peer still sends, until it closes too.
    fn discard_input(&mut self, i: usize, buf: &mut [u8]) {
        match self.clients[i].read_once(buf) {
            Ok(0) => self.clients[i].state = State::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.clients[i].state = State::Gone,
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
        let line = Line::from(format!("MSG {name} {text}\n").as_bytes());
        self.broadcast(i, &line);
    }

    /// Queues `line` for every registered client but the sender: one copy of the bytes, one
    /// reference per receiver. One thread handles one line at a time, so every receiver gets
    /// the same order.
    pub fn broadcast(&mut self, sender: usize, line: &Line) {
        for j in 0..self.clients.len() {
            if j != sender && self.clients[j].name.is_some() {
                self.clients[j].queue(Line::clone(line));
            }
        }
    }

    /// Queues a reply (an ERR) for client `i` alone.
    fn reply(&mut self, i: usize, text: &str) {
        self.clients[i].queue(Line::from(text.as_bytes()));
    }

    /// A fatal ERR: it goes out after what is queued, then the connection closes.
    fn fail(&mut self, i: usize, err: &str) {
        self.reply(i, err);
        self.leave(i);
    }

    /// Client `i` stayed too far behind for too long: one last attempt to tell it, then its
    /// socket and its backlog go at the end of this turn, without waiting for it.
    fn cut(&mut self, i: usize) {
        eprintln!("a client stayed over {SOFT} lines behind for {PATIENCE:?}; cutting it");
        let too_slow = format!(
            "ERR too-slow you stayed over {SOFT} lines behind for {} s\n",
            PATIENCE.as_secs()
        );
        let client = &self.clients[i];
        client
            .outbox
            .write_last(&client.stream, too_slow.as_bytes());
        self.leave(i);
        self.clients[i].state = State::Gone;
    }

    /// Takes client `i` out of the room at once (its name is free again) and lets its
    /// pending output drain, for at most `LINGER`, before the connection closes.
    fn leave(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if let Some(name) = client.name.take() {
            self.names.remove(&name);
        }
        client.inbox.clear();
        client.state = State::Closing;
        client.left_at = Some(Instant::now());
    }

    /// The connection failed (reset, broken pipe): nothing more can be sent, close it now.
    fn drop_client(&mut self, i: usize, what: &str, e: io::Error) {
        eprintln!("{what} failed, dropping a client: {e}");
        self.leave(i);
        self.clients[i].state = State::Gone;
    }
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
