//! The event loop: one `poll` call per round over the listener and every client.

use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::client::{MAX_OUTBOX, State};
use crate::room::Room;
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};

/// Bytes asked of one client per read: one read per client per round keeps rounds fair.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from all clients together in one round. Every byte read may come back out
/// multiplied by the number of receivers, so this caps how much one round adds to each
/// outbox: far below `MAX_OUTBOX`, so a client that keeps reading is never cut just because
/// everybody talked at once. Input beyond it waits in the kernel (TCP slows the senders
/// down) and is read in the next rounds, starting where this round stopped.
const ROUND_BUDGET: usize = 64 * 1024;
/// A client with more output pending than this is not read until it catches up: a client
/// must read before it may talk more. When everybody sends faster than they read, this slows
/// the senders down (TCP pushes back on them) instead of cutting every reader as too slow.
const LISTEN_BEFORE_TALKING: usize = MAX_OUTBOX / 4;
/// How long a client that left may take to read its last bytes and close.
const LINGER: Duration = Duration::from_secs(10);
/// How often `poll` wakes up while some timer runs (a lingering client, a paused listener).
const TICK_MS: i32 = 1000;

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
    /// A timer is running: `poll` must wake up now and then instead of waiting for ever.
    ticking: bool,
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
            ticking: false,
        }
    }

    /// Serves for ever; returns only if `poll` itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            // Nothing to time: sleep until a socket is ready, so an idle server uses no CPU.
            let timeout = if self.ticking { TICK_MS } else { -1 };
            sys::wait(&mut self.pollfds, timeout)?;
            if self.pollfds[0].revents != 0 || self.pollfds[0].events == 0 {
                self.accept_all();
            }
            self.read_ready();
            self.finish_round();
        }
    }

    /// Accepts every waiting connection, until the listener would block.
    fn accept_all(&mut self) {
        self.pollfds[0].events = POLLIN;
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
    /// and try again when a client leaves or at the next tick.
    fn pause_listener(&mut self, e: io::Error) {
        eprintln!("accept failed: {e}; pausing new connections");
        self.pollfds[0].events = 0;
        self.ticking = true;
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
    /// taking the clients in turn from where the previous round stopped.
    fn read_ready(&mut self) {
        let count = self.room.clients.len();
        let start = self.next_reader.min(count);
        let mut budget = ROUND_BUDGET;
        for i in (start..count).chain(0..start) {
            // A hang-up or an error is learnt by reading: data sent before it comes first.
            if self.pollfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL) == 0 {
                continue;
            }
            if budget == 0 {
                self.next_reader = i;
                return;
            }
            let buf = &mut self.read_buf[..budget.min(READ_CHUNK)];
            match self.room.clients[i].state {
                State::Open => budget -= self.room.read_lines(i, buf),
                State::Draining => self.room.discard_input(i, buf),
                State::Closing | State::Gone => {}
            }
        }
    }

    /// Ends the round in one pass over every client, O(n) like `poll` itself: writes to
    /// the clients that got output or became writable, asks `POLLOUT` only of those
    /// still holding output, and removes the clients that are gone.
    fn finish_round(&mut self) {
        let mut lingering = false;
        for i in 0..self.room.clients.len() {
            let client = &mut self.room.clients[i];
            if client.dirty || self.pollfds[i + 1].revents & (POLLOUT | POLLERR) != 0 {
                client.dirty = false;
                self.room.flush(i);
            }
            let client = &mut self.room.clients[i];
            if client.left_at.is_some_and(|t| t.elapsed() > LINGER) {
                client.state = State::Gone;
            }
            self.pollfds[i + 1].events = match client.state {
                State::Open if client.outbox.is_empty() => POLLIN,
                // It does not read what it gets: stop reading what it says until it catches up.
                State::Open if client.outbox.len() > LISTEN_BEFORE_TALKING => POLLOUT,
                State::Open => POLLIN | POLLOUT,
                State::Closing => POLLOUT,
                State::Draining => POLLIN,
                State::Gone => 0,
            };
            lingering |= matches!(client.state, State::Closing | State::Draining);
            if client.state == State::Gone {
                self.gone.push(i);
            }
        }
        self.remove_gone();
        self.ticking = lingering || self.pollfds[0].events == 0;
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
    }
}

/// Tells a newcomer there is no room, then closes. Best effort: a fresh socket takes a short
/// line at once; if not, it closes anyway.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(SERVER_FULL);
    let _ = stream.shutdown(Shutdown::Write);
}
