//! Step 1, the naive server: one thread that never sleeps.
//!
//! # Design
//! The listener and every client socket are non-blocking, so no call ever waits. One loop
//! (`server.rs`) tries `accept` until nobody is waiting, reads once from every client, and
//! tries to write every client's pending output; then it starts again at once. What a line
//! means, and flow control, are the room's business (`room.rs`).
//! Each client keeps the start of a line not finished yet (a line may arrive in pieces, or
//! many in one read) and an outbox, so a write that would block loses nothing and waits for
//! a later round.
//! The messages of one read are encoded once, into one shared batch (`Rc<[u8]>`): every
//! receiver's outbox is a queue of pointers to batches, plus how much of the first one is
//! written. A client's pending output leaves up to 64 KiB at a time, copied into one buffer
//! shared by all clients and sent with one `write(2)`.
//! The declaration of `setsockopt` is written by hand in `sys.rs` (no `libc` crate), for the
//! reset below.
//!
//! Flow control (PROTOCOL.md): while some client in the room has more than `SOFT` lines
//! queued, the server reads from nobody.
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
//! The loop never waits: with nobody connected, or everybody silent, it still asks the
//! kernel "anything yet?" for the listener and for every client, round after round. A line
//! is seen within one round, and that is bought with CPU. Each round costs one read system
//! call per client, ready or not, and one write per client with output queued: O(n) work
//! per round. Sleeping between rounds would save CPU and cost latency; step 4 gets both by
//! asking the kernel to wake it only when a socket is ready (`poll`).
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
//! CPU at idle: `top -p <pid>`, or `utime + stime` in `/proc/<pid>/stat` read twice 5 s
//! apart. Latency from `MSG` sent to `MSG` received (`loadgen`), as silent clients are
//! added: how many clients it holds before a round of the loop gets slow. System calls per
//! second (`strace -c -f -p <pid>`). Flow control: how long a paste of 50,000 lines takes to
//! reach two readers, and how long the room stays paused while a client does not read; the
//! peak RSS (`VmHWM` in `/proc/<pid>/status`) with 1,000 clients that never read while one
//! floods. Then move `SOFT` or `PATIENCE` and measure again.
//!
//! # Try it
//! `make step1 && ./target/release/step1_naive` (or `... 127.0.0.1:0` for any port), then in
//! two other terminals `nc 127.0.0.1 7878` and type `USER alice`, `MSG hi`. Paste a file into
//! the room from a third: `(echo "USER s"; seq 1 50000 | sed 's/^/MSG line /') | nc -N
//! 127.0.0.1 7878`.

mod client;
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

fn main() -> ExitCode {
    let listener = match listen_address().and_then(|addr| bind(&addr)) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    Server::new(listener).run()
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
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut stdout = io::stdout().lock();
    if let Err(e) = writeln!(stdout, "listening on {local}").and_then(|()| stdout.flush()) {
        eprintln!("{PROGRAM}: cannot print the address on stdout: {e}");
    }
    Ok(listener)
}
