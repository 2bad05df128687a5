//! The room: every connection, the names in use, and the protocol (PROTOCOL.md).

use std::collections::HashSet;
use std::io;
use std::net::TcpStream;

use crate::client::{Client, State, split_lines};

/// Longest line a client may send, not counting CR/LF.
pub const MAX_LINE: usize = 1024;
const MAX_NAME: usize = 32;
/// Bytes asked of one client per read; one read per client per turn keeps turns fair.
const READ_CHUNK: usize = 16 * 1024;

const UNKNOWN_COMMAND: &str = "ERR unknown-command expected USER <name> or MSG <text>\n";
const INVALID_NAME: &str = "ERR invalid-name 1 to 32 bytes, no spaces or control characters\n";
const NAME_TAKEN: &str = "ERR name-taken that name is in use\n";
const ALREADY_REGISTERED: &str = "ERR already-registered you already have a name\n";
const NOT_REGISTERED: &str = "ERR not-registered send USER <name> first\n";
const EMPTY_MESSAGE: &str = "ERR empty-message MSG needs some text\n";
const INVALID_TEXT: &str = "ERR invalid-text lines must be UTF-8 without control characters\n";
const LINE_TOO_LONG: &str = "ERR line-too-long a line is at most 1024 bytes\n";
const TOO_SLOW: &str = "ERR too-slow you stopped reading and 2 MiB piled up\n";

pub struct Room {
    clients: Vec<Client>,
    names: HashSet<String>,
}

impl Room {
    pub fn new() -> Room {
        Room {
            clients: Vec::new(),
            names: HashSet::new(),
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

    /// Tries one read on every client and handles the complete lines that arrived.
    pub fn read_all(&mut self) {
        let mut buf = [0; READ_CHUNK];
        for i in 0..self.clients.len() {
            match self.clients[i].state {
                State::Open => self.read_lines(i, &mut buf),
                State::Draining => self.discard_input(i, &mut buf),
                State::Closing | State::Gone => {}
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

    /// Closes the sockets of finished clients (dropping a `TcpStream` closes it).
    pub fn remove_gone(&mut self) {
        self.clients.retain(|client| client.state != State::Gone);
    }

    fn read_lines(&mut self, i: usize, buf: &mut [u8]) {
        let n = match self.clients[i].read_once(buf) {
            // Every line it sent before closing was handled on earlier reads: nothing is lost.
            Ok(0) => {
                self.leave(i);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                self.drop_client(i, "read", e);
                return;
            }
        };
        self.clients[i].inbox.extend_from_slice(&buf[..n]);
        for line in split_lines(&mut self.clients[i].inbox) {
            if self.clients[i].state != State::Open {
                return;
            }
            self.handle_line(i, &line);
        }
        // No LF yet but already too long (a CR may still come before the LF: allow one more).
        if self.clients[i].state == State::Open && self.clients[i].inbox.len() > MAX_LINE + 1 {
            self.fail(i, LINE_TOO_LONG);
        }
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
            self.send(i, INVALID_TEXT.as_bytes());
            return;
        };
        if let Some(name) = line.strip_prefix("USER ") {
            self.register(i, name);
        } else if let Some(text) = line.strip_prefix("MSG ") {
            self.post(i, text);
        } else {
            self.send(i, UNKNOWN_COMMAND.as_bytes());
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
        self.send(i, refusal.as_bytes());
    }

    fn post(&mut self, i: usize, text: &str) {
        let Some(name) = &self.clients[i].name else {
            self.send(i, NOT_REGISTERED.as_bytes());
            return;
        };
        if text.is_empty() {
            self.send(i, EMPTY_MESSAGE.as_bytes());
            return;
        }
        if !is_valid_text(text) {
            self.send(i, INVALID_TEXT.as_bytes());
            return;
        }
        let line = format!("MSG {name} {text}\n");
        self.broadcast(i, line.as_bytes());
    }

    /// Queues `line` for every registered client but the sender. One thread handles one line
    /// at a time, so every receiver gets the same order.
    pub fn broadcast(&mut self, sender: usize, line: &[u8]) {
        for j in 0..self.clients.len() {
            if j != sender && self.clients[j].name.is_some() {
                self.send(j, line);
            }
        }
    }

    /// Queues `line` for client `i`, or cuts the client if its backlog would pass the bound.
    fn send(&mut self, i: usize, line: &[u8]) {
        if self.clients[i].has_room_for(line.len()) {
            self.clients[i].queue(line);
            return;
        }
        eprintln!("a client stopped reading; cutting it (too-slow)");
        self.clients[i].drop_backlog();
        self.fail(i, TOO_SLOW);
    }

    /// A fatal ERR: it goes out after what is queued, then the connection closes.
    fn fail(&mut self, i: usize, err: &str) {
        self.clients[i].queue(err.as_bytes());
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
