//! The event loop: one `poll` call per round over the listener and every client.
//!
//! Flow control happens here. While some client is more than `SOFT` lines behind, no client
//! is read: `poll` is not even asked about their input, so a paused round sleeps until some
//! socket can take output, a newcomer knocks, or the next deadline comes. The deadlines are
//! those of the clients behind (cut once behind for longer than `PATIENCE`) and of the
//! clients that left (let go after `LINGER`).

use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::State;
use crate::room::Room;
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};

/// Bytes asked of one client per read: one read per client per round keeps rounds fair.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from all clients together in one round, so that one round's work stays short
/// however many talk. Input beyond it waits in the kernel (TCP slows the senders down) and
/// is read in the next rounds, starting where this round stopped.
const ROUND_BUDGET: usize = 64 * 1024;
/// How long a client in the room may stay more than `SOFT` lines behind, the room paused
/// for it, before it is cut as too slow.
const PATIENCE: Duration = Duration::from_secs(2);
/// How long a client that left may take to read its last bytes and close.
const LINGER: Duration = Duration::from_secs(10);
/// How long the listener rests after `accept` kept failing.
const LISTENER_REST: Duration = Duration::from_secs(1);

const SERVER_FULL: &[u8] = b"ERR server-full out of file descriptors, try again later\n";
const SPARE_PATH: &str = "/dev/null";
// Linux errno values for "too many open files" (this process, and the whole system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

pub struct Server {
    listener: TcpListener,
    /// What `poll` watches: `pollfds[0]` is the listener, `pollfds[i + 1]` is
    /// `room.clients[i]`. Both vectors change together, so this array is never rebuilt.
    pollfds: Vec<PollFd>,
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
        let listener_fd = PollFd {
            fd: listener.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        };
        Server {
            listener,
            pollfds: vec![listener_fd],
            room: Room::new(),
            spare: File::open(SPARE_PATH).ok(),
            read_buf: vec![0; READ_CHUNK],
            next_reader: 0,
            gone: Vec::new(),
            next_deadline: None,
            listener_rest_until: None,
        }
    }

    /// Serves for ever; returns only if `poll` itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            let timeout = self.poll_timeout();
            sys::wait(&mut self.pollfds, timeout)?;
            let rested = self
                .listener_rest_until
                .is_some_and(|until| Instant::now() >= until);
            if self.pollfds[0].revents != 0 || rested {
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
        self.pollfds[0].events = POLLIN;
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
        self.pollfds[0].events = 0;
        self.listener_rest_until = Some(Instant::now() + LISTENER_REST);
    }

    fn join(&mut self, stream: TcpStream) {
        // A blocking socket would freeze the whole loop on its first read: refuse it.
        if let Err(e) = stream.set_nonblocking(true) {
            eprintln!("cannot make a new connection non-blocking: {e}");
            return;
        }
        // Without this, Nagle's algorithm holds back small messages waiting for an ACK.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("cannot disable Nagle on a new connection: {e}");
        }
        self.pollfds.push(PollFd {
            fd: stream.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        });
        self.room.join(stream);
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
            // A hang-up or an error is learnt by reading: data sent before it comes first.
            if self.pollfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL) == 0 {
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
    /// writes to the clients that got output or became writable, cuts those behind for too
    /// long, lets go of those that lingered too long, and finds the next deadline. Only then
    /// is it known whether the room stays paused, so the second pass says what `poll` must
    /// watch next round and collects the clients that are gone.
    fn finish_round(&mut self) {
        let now = Instant::now();
        let mut next_deadline = self.listener_rest_until;
        for i in 0..self.room.clients.len() {
            let client = &mut self.room.clients[i];
            if client.dirty || self.pollfds[i + 1].revents & (POLLOUT | POLLERR) != 0 {
                client.dirty = false;
                self.room.flush(i);
            }
            if let Some(deadline) = self.deadline(i, now) {
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

    /// Cuts client `i` if it has been behind for longer than `PATIENCE`, lets it go if it
    /// lingered longer than `LINGER`; otherwise returns when one of those will happen.
    fn deadline(&mut self, i: usize, now: Instant) -> Option<Instant> {
        let client = &mut self.room.clients[i];
        if let Some(since) = client.behind_since {
            let deadline = since + PATIENCE;
            if now < deadline {
                return Some(deadline);
            }
            self.room.cut(i);
            return None;
        }
        let deadline = client.left_at? + LINGER;
        if now < deadline && client.state != State::Gone {
            return Some(deadline);
        }
        client.state = State::Gone;
        None
    }

    /// What `poll` watches for client `i` next round. While the room is paused, a client in
    /// the room is not asked for input; if it has no output either, its entry is switched
    /// off with a negative descriptor, because `poll` reports a hang-up or an error even when
    /// no event is asked for, and each would wake the paused loop at once, again and again.
    fn watch(&mut self, i: usize, paused: bool) {
        let client = &self.room.clients[i];
        let output = if client.outbox.is_empty() { 0 } else { POLLOUT };
        let events = match client.state {
            State::Open if paused => output,
            State::Open => POLLIN | output,
            State::Closing => POLLOUT,
            State::Draining => POLLIN,
            State::Gone => 0,
        };
        let pollfd = &mut self.pollfds[i + 1];
        pollfd.events = events;
        pollfd.fd = if events == 0 {
            -1
        } else {
            client.stream.as_raw_fd()
        };
    }

    /// Removes finished clients, highest slot first: the client moved into a freed slot
    /// always comes from a higher slot that has been dealt with, so no slot is skipped.
    /// Each removal is O(1); dropping the `TcpStream` closes the socket.
    fn remove_gone(&mut self) {
        if self.gone.is_empty() {
            return;
        }
        while let Some(i) = self.gone.pop() {
            self.pollfds.swap_remove(i + 1);
            self.room.remove(i);
        }
        // A descriptor came free: take the spare back if it was lost, and listen again.
        if self.spare.is_none() {
            self.spare = File::open(SPARE_PATH).ok();
        }
        self.pollfds[0].events = POLLIN;
        self.listener_rest_until = None;
    }
}

/// Tells a newcomer there is no room, then closes. Best effort: a fresh socket takes a short
/// line at once; if not, it closes anyway.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(SERVER_FULL);
    let _ = stream.shutdown(Shutdown::Write);
}
