//! The event loop: one `poll` call per round over the listener and every client, then the
//! accepts, the reads and the writes that `poll` said would not block.
//!
//! While some client is more than `SOFT` lines behind (`Room::is_paused`), no client in the
//! room is read: `poll` is not even asked about their input, so a paused round sleeps until
//! some socket can take output, a newcomer knocks, or the next deadline comes (`PATIENCE`
//! for a client behind, `LINGER` for one that left, the listener's rest).

use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::State;
use crate::poll_set::PollSet;
use crate::protocol::ERR_SERVER_FULL;
use crate::room::Room;

/// Bytes asked of one client per read: one read per client per round keeps rounds fair.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from all clients together in one round, so that one round's work stays short
/// however many talk. Input beyond it waits in the kernel (TCP slows the senders down) and
/// is read in the next rounds, starting where this round stopped.
const ROUND_BUDGET: usize = 64 * 1024;
/// How long the listener rests after `accept` kept failing.
const LISTENER_REST: Duration = Duration::from_secs(1);

const SPARE_PATH: &str = "/dev/null";
// Linux errno values for "too many open files" (this process, and the whole system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

pub struct Server {
    listener: TcpListener,
    /// What `poll` watches: the listener and every client of `room`.
    poll_set: PollSet,
    room: Room,
    /// A descriptor held in reserve to refuse newcomers politely when none is left.
    spare: Option<File>,
    read_buf: Vec<u8>,
    /// The client the next round starts reading from, when the budget ran out.
    next_reader: usize,
    /// Slots of clients to remove at the end of the round, in increasing order.
    gone: Vec<usize>,
    /// The earliest deadline: a client behind, a client lingering, the listener resting.
    /// `None`: `poll` may wait for ever.
    next_deadline: Option<Instant>,
    /// When the paused listener is tried again.
    listener_rest_until: Option<Instant>,
}

impl Server {
    pub fn new(listener: TcpListener) -> Server {
        Server {
            poll_set: PollSet::new(listener.as_raw_fd()),
            listener,
            room: Room::new(),
            spare: File::open(SPARE_PATH).ok(),
            read_buf: vec![0; READ_CHUNK],
            next_reader: 0,
            gone: Vec::new(),
            next_deadline: None,
            listener_rest_until: None,
        }
    }

    /// Serves for ever; returns only if `poll` itself fails, with its error.
    pub fn run(&mut self) -> io::Error {
        loop {
            if let Err(e) = self.poll_set.wait(self.poll_timeout()) {
                return e;
            }
            let rested = self
                .listener_rest_until
                .is_some_and(|until| Instant::now() >= until);
            if self.poll_set.listener_ready() || rested {
                self.accept_all();
            }
            self.read_ready();
            self.finish_round();
        }
    }

    /// Milliseconds until the next deadline, rounded up so that `poll` never returns just
    /// before it (and the loop spins); -1 when there is none, so an idle server uses no CPU.
    fn poll_timeout(&self) -> i32 {
        let Some(deadline) = self.next_deadline else {
            return -1;
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        let ms = wait.as_nanos().div_ceil(1_000_000);
        i32::try_from(ms).unwrap_or(i32::MAX)
    }

    /// Accepts every waiting connection, until the listener would block.
    fn accept_all(&mut self) {
        self.poll_set.watch_listener(true);
        self.listener_rest_until = None;
        loop {
            let accepted = match self.listener.accept() {
                Ok((stream, _)) => {
                    self.join(stream);
                    Ok(())
                }
                Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => self.turn_away(e),
                Err(e) => Err(e),
            };
            match accepted {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer gave up while waiting in the queue: just take the next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return self.pause_listener(e),
            }
        }
    }

    /// Out of descriptors (`out_of_files`), the waiting connection would make `poll` report
    /// the listener ready on every round, and the loop would spin. So: free the spare
    /// descriptor, accept the newcomer, tell it `ERR server-full`, close it, take the spare
    /// back. Fails (and the listener pauses) if the spare is gone or the whole system is out
    /// of files; `WouldBlock` means nobody was waiting after all.
    fn turn_away(&mut self, out_of_files: io::Error) -> io::Result<()> {
        let Some(spare) = self.spare.take() else {
            return Err(out_of_files);
        };
        drop(spare);
        // `refuse` closes the newcomer before the spare takes its descriptor back.
        let refused = self.listener.accept().map(|(stream, _)| refuse(stream));
        self.spare = File::open(SPARE_PATH).ok();
        refused
    }

    /// `accept` keeps failing: stop watching the listener (so `poll` cannot spin on it)
    /// and try again when a client leaves or after `LISTENER_REST`.
    fn pause_listener(&mut self, e: io::Error) {
        eprintln!("accept failed: {e}; pausing new connections");
        self.poll_set.watch_listener(false);
        self.listener_rest_until = Some(Instant::now() + LISTENER_REST);
    }

    fn join(&mut self, stream: TcpStream) {
        let fd = stream.as_raw_fd();
        if self.room.join(stream) {
            self.poll_set.add_client(fd);
        }
    }

    /// Reads once from every client that `poll` reported, within the round's budget,
    /// taking the clients in turn from where the previous round stopped. Reads no client in
    /// the room once some client is more than `SOFT` behind, even in the middle of a round:
    /// so an outbox passes `SOFT` by the lines of one read at most.
    fn read_ready(&mut self) {
        let count = self.room.clients.len();
        let start = self.next_reader.min(count);
        let mut budget = ROUND_BUDGET;
        let mut resume_at = None;
        for i in (start..count).chain(0..start) {
            if !self.poll_set.has_input(i) {
                continue;
            }
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

    /// Ends the round in two passes over every client, O(n) like `poll` itself. The first
    /// writes to the clients that got output or became writable, applies the deadlines
    /// (`Room::check_deadlines`) and finds the next one. Only then is it known whether the
    /// room stays paused, so the second pass says what `poll` must watch next round and
    /// collects the clients that are gone.
    fn finish_round(&mut self) {
        let now = Instant::now();
        let mut next_deadline = self.listener_rest_until;
        for i in 0..self.room.clients.len() {
            let client = &mut self.room.clients[i];
            if client.dirty || self.poll_set.can_write(i) {
                client.dirty = false;
                self.room.flush(i);
            }
            if let Some(deadline) = self.room.check_deadlines(i, now) {
                next_deadline = Some(next_deadline.map_or(deadline, |d| d.min(deadline)));
            }
        }
        self.next_deadline = next_deadline;
        let paused = self.room.is_paused();
        for i in 0..self.room.clients.len() {
            self.watch(i, paused);
            if self.room.clients[i].state == State::Gone {
                self.gone.push(i);
            }
        }
        self.remove_gone();
    }

    /// What `poll` watches for client `i` next round: input while it may talk (in the room
    /// and the room not paused) or while it drains, output while some is queued.
    fn watch(&mut self, i: usize, paused: bool) {
        let client = &self.room.clients[i];
        let output = !client.outbox.is_empty();
        let (input, output) = match client.state {
            State::Open => (!paused, output),
            State::Closing => (false, true),
            State::Draining => (true, false),
            State::Gone => (false, false),
        };
        let fd = client.stream.as_raw_fd();
        self.poll_set.watch_client(i, fd, input, output);
    }

    /// Removes finished clients, highest slot first: the client moved into a freed slot
    /// always comes from a higher slot that has been dealt with, so no slot is skipped.
    /// Each removal is O(1); dropping the `TcpStream` closes the socket.
    fn remove_gone(&mut self) {
        if self.gone.is_empty() {
            return;
        }
        while let Some(i) = self.gone.pop() {
            self.poll_set.remove_client(i);
            self.room.remove(i);
        }
        // A descriptor came free: take the spare back if it was lost, and listen again.
        if self.spare.is_none() {
            self.spare = File::open(SPARE_PATH).ok();
        }
        self.poll_set.watch_listener(true);
        self.listener_rest_until = None;
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
