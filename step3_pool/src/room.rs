//! The room thread: it alone owns the names and every client's outbox, and it takes the
//! readers' events from one bounded channel, in rounds, so every client sees one and the same
//! order.
//!
//! A round takes every event already waiting (at most `ROUND_EVENTS`), handles them in order,
//! then hands each client *one* batch with all the lines the round produced for it. If more
//! events came in meanwhile, the room may first run more rounds into the same batches, for at
//! most `HOLD` since the last hand-over: a busy room wakes each writer at most once per `HOLD`,
//! with bigger batches, and a quiet one hands every line over at once. Each event
//! adds at most one line to each client's backlog, so a round takes no more events than the
//! fullest backlog has room for, and no backlog ever passes `SOFT`. When some client has no
//! room at all, the room takes no events: the channel fills, the readers block, and the
//! talkers wait. That client gets `PATIENCE` to make room, counted from when the room first
//! found it full; then it is cut.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::{Connection, Line};
use crate::outbox::Outbox;
use crate::protocol::{
    Command, ERR_ALREADY_REGISTERED, ERR_INVALID_NAME, ERR_INVALID_TEXT, ERR_LINE_TOO_LONG,
    ERR_NAME_TAKEN, ERR_NOT_REGISTERED, ERR_UNKNOWN_COMMAND, check_text, is_valid_name, parse,
};

/// How many lines the server holds for one client at most: queued in its outbox, or in its
/// writer's buffer not yet taken by the kernel. A client this far behind stops the room.
pub const SOFT: usize = 2048;

/// How long a client may stay `SOFT` behind before it is cut with `ERR too-slow`; also how long
/// a writer waits for a client that takes no byte at all.
pub const PATIENCE: Duration = Duration::from_secs(2);

/// Events a round takes at most. The more a round takes, the more lines each writer gets per
/// wake-up; 1 (with `HOLD` = 0) hands every message to every writer on its own, one wake-up
/// each.
const ROUND_EVENTS: usize = 256;

/// How long a busy room may keep gathering lines before it hands them over: while events keep
/// coming, a writer is woken at most once per `HOLD`, and a line waits in the room for its
/// batch at most this long and the round under way. 0 hands over after every round.
const HOLD: Duration = Duration::from_millis(5);

/// Events waiting for the room at most: readers block beyond this.
const EVENTS: usize = 1024;

/// How often the room looks again at an outbox it could not hand its lines to. The room never
/// blocks on one client (`SyncSender::send_timeout` is not stable, and a plain `send` would
/// let one client freeze the room for ever), so it retries, this often.
const RETRY: Duration = Duration::from_millis(1);

/// Numbers connections in accept order; never reused, so a late event cannot hit a newcomer.
pub type ClientId = u64;

/// What a connection's reader tells the room.
pub enum Event {
    /// A new connection: from now on the room answers it through `outbox`.
    Joined {
        id: ClientId,
        conn: Arc<Connection>,
        outbox: Outbox,
    },
    /// One line, without its LF (`protocol::parse` drops a CR before it).
    Line { id: ClientId, line: Vec<u8> },
    /// The client sent a line longer than `MAX_LINE`: answer, then close.
    LineTooLong { id: ClientId },
    /// The connection closed; its name is free again.
    Left { id: ClientId },
}

/// The channel every reader sends its events on, bounded by `EVENTS`.
pub fn channel() -> (SyncSender<Event>, Receiver<Event>) {
    mpsc::sync_channel(EVENTS)
}

/// What the room keeps about one connection.
struct Client {
    /// `None` until a successful `USER`, and again once the client left.
    name: Option<String>,
    outbox: Outbox,
    conn: Arc<Connection>,
    /// When the room first found this client's backlog at `SOFT`; `None` while it has room.
    behind_since: Option<Instant>,
    /// Its reader is done: it gets no more lines, and leaves the room once the lines it
    /// already has are handed to its writer (which writes them, then closes).
    leaving: bool,
}

/// Everything the room thread owns; no other thread can see it, so it needs no lock.
#[derive(Default)]
struct Room {
    clients: HashMap<ClientId, Client>,
    names: HashSet<String>,
}

/// The room thread's body: handles events, round after round, until every sender is gone.
pub fn run(events: Receiver<Event>) {
    let mut room = Room::default();
    let mut round = Vec::with_capacity(ROUND_EVENTS);
    let mut handed_over = Instant::now();
    loop {
        let room_for = room.pace(Instant::now());
        if room_for == 0 {
            // Someone is `SOFT` behind: take no events, so the readers block.
            thread::sleep(RETRY);
        } else {
            let wait = if room.is_flushed() { None } else { Some(RETRY) };
            let most = room_for.min(ROUND_EVENTS);
            if !take_round(&events, wait, most, &mut round) {
                return;
            }
            for event in round.drain(..) {
                room.handle(event);
            }
            // An event came while we worked: it opens the next round, and the batches wait
            // for it unless the writers have waited `HOLD` already.
            if let Ok(event) = events.try_recv() {
                round.push(event);
                if handed_over.elapsed() < HOLD {
                    continue;
                }
            }
        }
        room.flush();
        handed_over = Instant::now();
    }
}

/// Waits for one event (for ever, or at most `wait`) unless `round` already holds one, then
/// takes those already waiting, up to `most` in all. False when every reader and the acceptor
/// are gone.
fn take_round(
    events: &Receiver<Event>,
    wait: Option<Duration>,
    most: usize,
    round: &mut Vec<Event>,
) -> bool {
    if round.is_empty() {
        let first = match wait {
            None => events.recv().ok(),
            Some(timeout) => match events.recv_timeout(timeout) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(first) = first else {
            return false;
        };
        round.push(first);
    }
    while round.len() < most {
        match events.try_recv() {
            Ok(event) => round.push(event),
            Err(_) => break,
        }
    }
    true
}

impl Room {
    fn handle(&mut self, event: Event) {
        match event {
            Event::Joined { id, conn, outbox } => self.join(id, conn, outbox),
            Event::Line { id, line } => self.handle_line(id, &line),
            Event::LineTooLong { id } => {
                self.reply(id, ERR_LINE_TOO_LONG);
                self.leave(id); // the writer sends what is queued, the ERR last, then closes
            }
            Event::Left { id } => self.leave(id),
        }
    }

    fn join(&mut self, id: ClientId, conn: Arc<Connection>, outbox: Outbox) {
        let client = Client {
            name: None,
            outbox,
            conn,
            behind_since: None,
            leaving: false,
        };
        self.clients.insert(id, client);
    }

    /// Acts on one line, read as the protocol says (`protocol::parse`).
    fn handle_line(&mut self, id: ClientId, line: &[u8]) {
        match parse(line) {
            Command::Empty => {}
            Command::User(name) => self.register(id, name),
            Command::Msg(text) => self.post(id, text),
            Command::NotUtf8 => self.reply(id, ERR_INVALID_TEXT),
            Command::Unknown => self.reply(id, ERR_UNKNOWN_COMMAND),
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
        if let Err(err) = check_text(text) {
            return self.reply(id, err);
        }
        let line: Line = format!("MSG {name} {text}\n").into();
        self.broadcast(id, line);
    }

    /// Queues `line` for every registered client but its sender. Never blocks, and never
    /// overfills: `pace` sized the round so that every backlog has room for it.
    fn broadcast(&mut self, from: ClientId, line: Line) {
        for (&id, client) in &mut self.clients {
            if id != from && client.name.is_some() {
                client.outbox.push(Arc::clone(&line));
            }
        }
    }

    /// Queues an ERR line for one client only.
    fn reply(&mut self, id: ClientId, err: &str) {
        if let Some(client) = self.clients.get_mut(&id)
            && !client.leaving
        {
            client.outbox.push(err.into());
        }
    }

    /// Frees the name of a client whose reader is done. It stays until its lines are handed
    /// over (`flush`), so nothing queued for it is lost.
    fn leave(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if let Some(name) = client.name.take() {
            self.names.remove(&name);
        }
        client.leaving = true;
    }

    /// Cuts every client that stayed `SOFT` behind for `PATIENCE`, and returns how many more
    /// lines every other client can take (0: somebody has no room left). Each client's
    /// patience runs from when the room first found it full, so clients that fill up together
    /// are cut together, and the room waits about `PATIENCE` for all of them.
    fn pace(&mut self, now: Instant) -> usize {
        let mut room_for = SOFT;
        let mut overdue = Vec::new();
        for (&id, client) in &mut self.clients {
            if client.leaving {
                continue; // it gets no more lines
            }
            let backlog = client.outbox.backlog();
            if backlog < SOFT {
                client.behind_since = None;
                room_for = room_for.min(SOFT - backlog);
                continue;
            }
            let since = *client.behind_since.get_or_insert(now);
            if now.duration_since(since) >= PATIENCE {
                overdue.push(id);
            } else {
                room_for = 0;
            }
        }
        for id in overdue {
            self.cut(id);
        }
        room_for
    }

    /// Every client's lines are in its writer's hands.
    fn is_flushed(&self) -> bool {
        self.clients
            .values()
            .all(|client| client.outbox.is_flushed())
    }

    /// Hands every client its lines as one batch, where its outbox has room. Forgets clients
    /// that left once their lines are handed over, and cuts those whose writer is gone.
    fn flush(&mut self) {
        let mut done = Vec::new();
        let mut gone = Vec::new();
        for (&id, client) in &mut self.clients {
            if client.outbox.flush().is_err() {
                gone.push(id);
            } else if client.leaving && client.outbox.is_flushed() {
                done.push(id);
            }
        }
        for id in done {
            self.clients.remove(&id);
        }
        for id in gone {
            self.cut(id);
        }
    }

    /// Forgets a client that has fallen too far behind (or whose writer has died), and wakes
    /// its reader and writer so they end and its socket closes.
    fn cut(&mut self, id: ClientId) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        if let Some(name) = &client.name {
            self.names.remove(name);
        }
        client.conn.cut();
    }
}
