//! The array of `struct pollfd` that `poll(2)` reads, and which entry is whose.
//!
//! The listener's entry comes first, then one entry per client, in the order of
//! `Room::clients`: entry `i + 1` is client `i`. This file is the only place that knows it;
//! the server speaks of "the listener" and "client `i`". The array is never rebuilt: an entry
//! is added when a client joins and removed the way `Room::remove` removes the client.

use std::io;
use std::os::fd::RawFd;

use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};

pub struct PollSet {
    entries: Vec<PollFd>,
}

impl PollSet {
    pub fn new(listener: RawFd) -> PollSet {
        PollSet {
            entries: vec![PollFd {
                fd: listener,
                events: POLLIN,
                revents: 0,
            }],
        }
    }

    /// Sleeps until some entry is ready or `timeout_ms` passes (-1: no limit).
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        sys::wait(&mut self.entries, timeout_ms)
    }

    /// A newcomer waits to be accepted (or accepting fails).
    pub fn listener_ready(&self) -> bool {
        self.entries[0].revents != 0
    }

    /// Watches the listener, or stops watching it while `accept` keeps failing.
    pub fn watch_listener(&mut self, on: bool) {
        self.entries[0].events = if on { POLLIN } else { 0 };
    }

    /// The entry of a client that just joined: it is the last client.
    pub fn add_client(&mut self, fd: RawFd) {
        self.entries.push(PollFd {
            fd,
            events: POLLIN,
            revents: 0,
        });
    }

    /// Client `i` has input, or hung up, or has an error: all of them are learnt by reading,
    /// and data sent before a hang-up comes first.
    pub fn has_input(&self, i: usize) -> bool {
        self.entries[i + 1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0
    }

    /// Client `i`'s socket can take output again (or has an error, learnt by writing).
    pub fn can_write(&self, i: usize) -> bool {
        self.entries[i + 1].revents & (POLLOUT | POLLERR) != 0
    }

    /// What to watch for client `i` next round. With neither, the entry is switched off with a
    /// negative descriptor: `poll` reports a hang-up or an error even when no event is asked
    /// for, and each would wake the loop at once, again and again.
    pub fn watch_client(&mut self, i: usize, fd: RawFd, input: bool, output: bool) {
        let entry = &mut self.entries[i + 1];
        entry.events = if input { POLLIN } else { 0 } | if output { POLLOUT } else { 0 };
        entry.fd = if input || output { fd } else { -1 };
    }

    /// Removes client `i`'s entry as `Room::remove` removes the client: the last one moves
    /// into its slot.
    pub fn remove_client(&mut self, i: usize) {
        self.entries.swap_remove(i + 1);
    }
}
