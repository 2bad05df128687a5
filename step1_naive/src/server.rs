//! The loop: round after round, without ever waiting, it accepts whoever is waiting, reads
//! once from every client, and writes to every client that has output queued. Every call
//! asks the kernel "anything yet?" and returns at once, whatever the answer.
//!
//! While some client is more than `SOFT` lines behind (`Room::is_paused`), no client in the
//! room is read; accepting and writing go on. The deadlines (`PATIENCE` for a client behind,
//! `LINGER` for one that left) are checked at the end of every round.

use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

use crate::client::State;
use crate::protocol::ERR_SERVER_FULL;
use crate::room::Room;

/// Bytes asked of one client per read: one read per client per round keeps rounds fair.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from all clients together in one round, so that one round's work stays short
/// however many talk. Input beyond it waits in the kernel (TCP slows the senders down) and
/// is read in the next rounds, starting where this round stopped.
const ROUND_BUDGET: usize = 64 * 1024;

const SPARE_PATH: &str = "/dev/null";
// Linux errno values for "too many open files" (this process, and the whole system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

pub struct Server {
    listener: TcpListener,
    room: Room,
    /// A descriptor held in reserve to refuse newcomers politely when none is left.
    spare: Option<File>,
    read_buf: Vec<u8>,
    /// The client the next round starts reading from, when the budget ran out.
    next_reader: usize,
    /// Slots of clients to remove at the end of the round, in increasing order.
    gone: Vec<usize>,
}

impl Server {
    pub fn new(listener: TcpListener) -> Server {
        Server {
            listener,
            room: Room::new(),
            spare: File::open(SPARE_PATH).ok(),
            read_buf: vec![0; READ_CHUNK],
            next_reader: 0,
            gone: Vec::new(),
        }
    }

    /// Serves for ever.
    pub fn run(&mut self) -> ! {
        loop {
            self.accept_all();
            self.read_all();
            self.flush_all();
            // No sleep, no wait: the next round starts at once (see Trade-off in main.rs).
        }
    }

    /// Accepts every waiting connection, until the listener would block.
    fn accept_all(&mut self) {
        loop {
            let accepted = match self.listener.accept() {
                Ok((stream, _)) => {
                    // A connection the room refuses is closed (dropped) there.
                    self.room.join(stream);
                    Ok(())
                }
                Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => self.turn_away(),
                Err(e) => Err(e),
            };
            match accepted {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer gave up while waiting in the queue: just take the next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of descriptors, the waiting connection would make `accept` fail on every round
    /// for ever. So: free the spare descriptor, accept the newcomer, tell it
    /// `ERR server-full`, close it, take the spare back. Without a spare (the whole system
    /// is out of files), the next round tries again; `WouldBlock` means nobody was waiting
    /// after all.
    fn turn_away(&mut self) -> io::Result<()> {
        let Some(spare) = self.spare.take() else {
            return Ok(());
        };
        drop(spare);
        // `refuse` closes the newcomer before the spare takes its descriptor back.
        let refused = self.listener.accept().map(|(stream, _)| refuse(stream));
        self.spare = File::open(SPARE_PATH).ok();
        refused
    }

    /// Reads once from every client, ready or not, within the round's budget, taking the
    /// clients in turn from where the previous round stopped. Reads no client in the room
    /// once some client is more than `SOFT` behind, even in the middle of a round: so an
    /// outbox passes `SOFT` by the lines of one read at most.
    fn read_all(&mut self) {
        let count = self.room.clients.len();
        let start = self.next_reader.min(count);
        let mut budget = ROUND_BUDGET;
        let mut resume_at = None;
        for i in (start..count).chain(0..start) {
            match self.room.clients[i].state {
                State::Open if budget == 0 || self.room.is_paused() => {
                    resume_at.get_or_insert(i);
                }
                State::Open => {
                    let buf = &mut self.read_buf[..budget.min(READ_CHUNK)];
                    budget -= self.room.read_lines(i, buf);
                }
                // A client that left talks to nobody: its input is thrown away even while
                // the room is paused, so that it can close.
                State::Draining => self.room.discard_input(i, &mut self.read_buf),
                State::Closing | State::Gone => {}
            }
        }
        if let Some(i) = resume_at {
            self.next_reader = i;
        }
    }

    /// Writes as much of every client's output as its socket takes now, then, out of the
    /// loop's way, applies the deadlines (`Room::check_deadlines`: this loop never waits, so
    /// when the next one falls does not matter) and removes the clients that are gone.
    fn flush_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.room.clients.len() {
            self.room.flush(i);
            self.room.check_deadlines(i, now);
            if self.room.clients[i].state == State::Gone {
                self.gone.push(i);
            }
        }
        self.remove_gone();
    }

    /// Removes finished clients, highest slot first: the client moved into a freed slot
    /// always comes from a higher slot that has been dealt with, so no slot is skipped.
    /// Each removal is O(1); dropping the `TcpStream` closes the socket.
    fn remove_gone(&mut self) {
        if self.gone.is_empty() {
            return;
        }
        while let Some(i) = self.gone.pop() {
            self.room.remove(i);
        }
        // A descriptor came free: take the spare back if it was lost.
        if self.spare.is_none() {
            self.spare = File::open(SPARE_PATH).ok();
        }
    }
}

/// Tells a newcomer there is no room, then closes. Best effort: a fresh socket takes a short
/// line at once; if not, it closes anyway.
fn refuse(mut stream: TcpStream) {
    eprintln!("out of file descriptors: turning a newcomer away");
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(ERR_SERVER_FULL.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}
