//! Step 4: one thread that sleeps in `poll(2)` until some socket is ready.
//!
//! # Design
//! The listener and every client socket are non-blocking and sit in one array of
//! `struct pollfd` (`poll_set.rs`); each round, one `poll` call sleeps until some of them are
//! ready, then the loop accepts every waiting connection, reads once from each client that
//! has input, and writes to each client that got output or can take more (`server.rs`). What
//! a line means, and flow control, are the room's business (`room.rs`), which knows nothing
//! of `poll`: the same room as step 1's.
//! The messages of one read are encoded once, into one shared batch (`Rc<[u8]>`): every
//! receiver's outbox is a queue of pointers to batches, plus how much of the first one is
//! written. A client's pending output leaves up to 64 KiB at a time, copied into one buffer
//! shared by all clients and sent with one `write(2)`.
//! `POLLOUT` is asked for only while some output is left.
//! The declarations of `poll`, `getrlimit`, `setrlimit`, `listen` and `setsockopt` are written
//! by hand in `sys.rs` (no `libc` crate): reading them is part of the lesson.
//!
//! Flow control (PROTOCOL.md): while some client in the room has more than `SOFT` lines
//! queued, the server reads from nobody. It does not even ask `poll` about their input, so a
//! paused round sleeps until a socket can take output, a newcomer knocks, or a deadline
//! comes.
//! The talkers' lines wait in the kernel, then TCP makes their writes wait: the talker
//! waits, at the pace of the slowest reader. Writing and accepting go on. A client that
//! catches up within `PATIENCE` loses nothing. One that stays more than `SOFT` behind for
//! longer than `PATIENCE` has stopped reading: it is cut, with `ERR too-slow` in one
//! non-blocking write (after the rest of a line half written, if any; what the socket does
//! not take is lost, so its last line may be torn), and closed at once with RST
//! (`SO_LINGER` 0), without the linger a leaving client gets: the kernel frees what it still
//! held for that peer at once, instead of trickling it to a client that does not read. The
//! count of clients behind is kept as they cross `SOFT`, so deciding whether to read is O(1).
//!
//! # Trade-off
//! With nothing to do the server sleeps in `poll`; at start it raises its soft
//! `RLIMIT_NOFILE` to the hard limit (every client costs a descriptor) and says how many
//! clients that allows. But it uses one core however many the machine has, and every round
//! costs O(n) in the number of connections even when one socket is ready: the kernel checks
//! all n descriptors inside `poll` (and hooks itself onto their wait queues), and the loop
//! scans all n entries and all n clients. `epoll` keeps the list of watched descriptors
//! inside the kernel and returns only the ready ones, so a round costs O(ready).
//! One thread handles one read at a time, so every receiver sees the same order for free, and
//! there are no locks.
//! Flow control is fair to readers and hard on talkers: one slow reader slows the whole room
//! down to its pace, and one that stopped reading freezes the room for up to `PATIENCE`
//! (several that fall behind one after the other freeze it once each).
//!
//! # Bounds
//! `SOFT` = 1024 lines, `PATIENCE` = 2 s, `LINGER` = 10 s (`room.rs`). A line is at most
//! `MAX_LINE` = 1024 bytes (longer: `ERR line-too-long`, closed). A round reads at most
//! 16 KiB from one client and 64 KiB from all together (`READ_CHUNK`, `ROUND_BUDGET`), and
//! stops reading as soon as some client is more than `SOFT` behind. So a client's outbox
//! holds at most `SOFT` + 2,731 lines, the output of one read on top of `SOFT`: a read of
//! 16 KiB ends at most one line begun before it and holds at most 2,730 more `MSG x` lines
//! (or, for the client that sent them, 8,191 more bad 2-byte lines: `SOFT` + 8,192 replies).
//! Memory per client: the socket, its unfinished line (at most `MAX_LINE` + 1 bytes), and
//! 24 bytes per queued batch (a pointer, a length, a count of lines); a broadcast batch's
//! bytes are stored once however many outboxes hold it. Only a reply to one client is its
//! own copy. A client that left (it closed, or got a fatal `ERR`) gets its last lines, then
//! FIN, and its input is discarded until it closes, for at most `LINGER`; then its socket is
//! reset. Out of file descriptors, a newcomer gets `ERR server-full` (`Server::turn_away`).
//!
//! # What to measure
//! CPU at idle with thousands of clients connected (`utime + stime` in `/proc/<pid>/stat`,
//! read twice 10 s apart). The largest number of registered clients while one message still
//! reaches all the others within a second. Delivered messages per second with 100 and 1,000
//! clients all sending (`loadgen fanout`). The cost of a round as idle connections are added
//! (`perf top -p <pid>`). Flow control: a 50,000-line paste to two readers (how long it
//! takes, whether both get every line); the peak RSS (`VmHWM` in `/proc/<pid>/status`) with
//! 1,000 registered clients that never read, each with a 4 KiB `SO_RCVBUF`, while one client
//! floods; how long the room freezes when one client reads a byte now and then. Then move
//! `SOFT` or `PATIENCE` and measure again.
//!
//! # Try it
//! `make step4 && ./target/release/step4_poll` (or `... 127.0.0.1:0` for any port), then in
//! two other terminals `nc 127.0.0.1 7878` and type `USER alice`, `MSG hi`. Paste a file into
//! the room from a third: `(echo "USER s"; seq 1 50000 | sed 's/^/MSG line /') | nc -N
//! 127.0.0.1 7878`.

mod client;
mod poll_set;
mod protocol;
mod room;
mod server;
mod sys;

use std::io::{self, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use server::Server;

const PROGRAM: &str = env!("CARGO_PKG_NAME");
const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// Connections the kernel may queue before we accept them. A burst of newcomers beyond the
/// queue, while a round over many clients runs, would have their SYN dropped and retried a
/// second later; std's default of 128 is small for that.
const BACKLOG: i32 = 4096;
/// Descriptors that are not clients: stdin, stdout, stderr, the listener and the spare
/// (more if the parent process leaked some to us, hence "about").
const OTHER_DESCRIPTORS: u64 = 5;

fn main() -> ExitCode {
    let listener = match listen_address().and_then(|addr| bind(&addr)) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    raise_open_files_limit();
    let e = Server::new(listener).run();
    eprintln!("{PROGRAM}: poll failed: {e}");
    ExitCode::from(1)
}

/// The only argument, if any: the address to listen on.
fn listen_address() -> Result<String, String> {
    let mut args = std::env::args_os().skip(1);
    let Some(arg) = args.next() else {
        return Ok(DEFAULT_ADDR.to_owned());
    };
    if let Some(extra) = args.next() {
        return Err(format!(
            "unexpected argument {extra:?}; usage: {PROGRAM} [ADDR] (default {DEFAULT_ADDR})"
        ));
    }
    arg.into_string()
        .map_err(|arg| format!("the address {arg:?} is not valid UTF-8"))
}

/// Listens on `addr`, non-blocking, and says where on stdout (the `listening on` line).
fn bind(addr: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot make the listener non-blocking: {e}"))?;
    if let Err(e) = sys::set_backlog(&listener, BACKLOG) {
        eprintln!("{PROGRAM}: cannot enlarge the listen backlog, keeping 128: {e}");
    }
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut stdout = io::stdout().lock();
    if let Err(e) = writeln!(stdout, "listening on {local}").and_then(|()| stdout.flush()) {
        eprintln!("{PROGRAM}: cannot print the address on stdout: {e}");
    }
    Ok(listener)
}

/// Every client costs one descriptor. Any process may raise its soft limit on open files
/// (often 1024) up to the hard limit, which only root can move.
fn raise_open_files_limit() {
    let mut limit = match sys::open_files_limit() {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot read the open files limit: {e}");
            return;
        }
    };
    if limit.rlim_cur < limit.rlim_max {
        let raised = sys::RLimit {
            rlim_cur: limit.rlim_max,
            ..limit
        };
        match sys::set_open_files_limit(raised) {
            Ok(()) => limit = raised,
            Err(e) => eprintln!("{PROGRAM}: cannot raise the open files limit: {e}"),
        }
    }
    let clients = (limit.rlim_cur as u64).saturating_sub(OTHER_DESCRIPTORS);
    eprintln!(
        "{PROGRAM}: open files limit {} (hard {}): room for about {clients} clients",
        limit.rlim_cur, limit.rlim_max
    );
}
