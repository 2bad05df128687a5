//! The room thread: it alone owns the names and every client's outbox, and it takes the
//! readers' events one at a time from one channel, so every client sees one and the same order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use crate::connection::{Connection, Line};
use crate::protocol::{
    ERR_ALREADY_REGISTERED, ERR_EMPTY_MESSAGE, ERR_INVALID_NAME, ERR_INVALID_TEXT,
    ERR_LINE_TOO_LONG, ERR_NAME_TAKEN, ERR_NOT_REGISTERED, ERR_UNKNOWN_COMMAND, is_valid_name,
    is_valid_text,
};

/// Numbers connections in accept order; never reused, so a late event cannot hit a newcomer.
pub type ClientId = u64;

/// What a connection's reader tells the room.
pub enum Event {
    /// A new connection: from now on the room answers it through `outbox`.
    Joined {
        id: ClientId,
        conn: Arc<Connection>,
        outbox: SyncSender<Line>,
    },
    /// One line, without its CR/LF.
    Line { id: ClientId, line: Vec<u8> },
    /// The client sent a line longer than `MAX_LINE`: answer, then close.
    LineTooLong { id: ClientId },
    /// The connection closed; its name is free again.
    Left { id: ClientId },
}

/// What the room keeps about one connection.
struct Client {
    /// `None` until a successful `USER`.
    name: Option<String>,
    /// The bounded queue drained by the client's writer thread.
    outbox: SyncSender<Line>,
    conn: Arc<Connection>,
}

/// Everything the room thread owns; no other thread can see it, so it needs no lock.
#[derive(Default)]
struct Room {
    clients: HashMap<ClientId, Client>,
    names: HashSet<String>,
}

/// The room thread's body: handles events until every sender is gone.
pub fn run(events: Receiver<Event>) {
    let mut room = Room::default();
    for event in events {
        match event {
            Event::Joined { id, conn, outbox } => room.join(id, conn, outbox),
            Event::Line { id, line } => room.handle_line(id, &line),
            Event::LineTooLong { id } => {
                room.reply(id, ERR_LINE_TOO_LONG);
                room.leave(id); // the writer sends what is queued, the ERR last, then closes
            }
            Event::Left { id } => room.leave(id),
        }
    }
}

impl Room {
    fn join(&mut self, id: ClientId, conn: Arc<Connection>, outbox: SyncSender<Line>) {
        let client = Client {
            name: None,
            outbox,
            conn,
        };
        self.clients.insert(id, client);
    }

    /// Checks one line in the protocol's order and acts on it.
    fn handle_line(&mut self, id: ClientId, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            return self.reply(id, ERR_INVALID_TEXT);
        };
        if let Some(name) = line.strip_prefix("USER ") {
            self.register(id, name);
        } else if let Some(text) = line.strip_prefix("MSG ") {
            self.post(id, text);
        } else {
            self.reply(id, ERR_UNKNOWN_COMMAND);
        }
    }

    fn register(&mut self, id: ClientId, name: &str) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let refusal = if client.name.is_some() {
            ERR_ALREADY_REGISTERED
        } else if !is_valid_name(name) {
            ERR_INVALID_NAME
        } else if self.names.contains(name) {
            ERR_NAME_TAKEN
        } else {
            client.name = Some(name.to_owned());
            self.names.insert(name.to_owned());
            return;
        };
        self.reply(id, refusal);
    }

    fn post(&mut self, id: ClientId, text: &str) {
        let Some(name) = self
            .clients
            .get(&id)
            .and_then(|client| client.name.as_deref())
        else {
            return self.reply(id, ERR_NOT_REGISTERED);
        };
        if text.is_empty() {
            return self.reply(id, ERR_EMPTY_MESSAGE);
        }
        if !is_valid_text(text) {
            return self.reply(id, ERR_INVALID_TEXT);
        }
        let line: Line = format!("MSG {name} {text}\n").into();
        self.broadcast(id, line);
    }

    /// Queues `line` for every registered client but its sender. Never blocks: a client whose
    /// outbox is full has stopped reading and is cut.
    fn broadcast(&mut self, from: ClientId, line: Line) {
        let mut too_slow = Vec::new();
        for (&id, client) in &self.clients {
            if id == from || client.name.is_none() {
                continue;
            }
            if client.outbox.try_send(Arc::clone(&line)).is_err() {
                too_slow.push(id);
            }
        }
        for id in too_slow {
            self.cut(id);
        }
    }

    /// Queues an ERR line for one client only.
    fn reply(&mut self, id: ClientId, err: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.outbox.try_send(err.into()).is_err() {
            self.cut(id);
        }
    }

    /// Forgets a client. Dropping its outbox ends its writer once the queue is written.
    fn leave(&mut self, id: ClientId) {
        self.remove(id);
    }

    /// Forgets a client whose outbox is full (or whose writer has died), and wakes its reader.
    fn cut(&mut self, id: ClientId) {
        if let Some(client) = self.remove(id) {
            client.conn.cut_too_slow();
        }
    }

    /// Takes a client out of the room and frees its name.
    fn remove(&mut self, id: ClientId) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        if let Some(name) = &client.name {
            self.names.remove(name);
        }
        Some(client)
    }
}
