//! Step 1, the naive server: one thread that never sleeps.
//!
//! **Design.** The listener and every client socket are non-blocking, so no call ever waits.
//! One loop tries `accept` until nothing is waiting, reads the clients and handles their
//! complete lines, tries to write every client's pending output, then applies the flow
//! control rule (below) and closes the clients that are finished.
//! Each client keeps a read buffer (a line may arrive in pieces, or many in one read) and a
//! queue of lines to write, so a write that would block loses nothing and waits for a later
//! turn. A broadcast line is stored once (`Arc<[u8]>`) and each receiver's queue holds a
//! reference to it; a queue is written with `writev`, many lines per call (see `flow.rs`).
//!
//! **Flow control** (PROTOCOL.md): `SOFT` = 1024 lines, `PATIENCE` = 2 s (`flow.rs`).
//! After the writes, each turn checks every client in the room. While one has more than
//! `SOFT` lines queued, the next turn reads nobody: the talkers' lines wait in the kernel,
//! then TCP makes the talkers' writes wait, so a paste goes out at the pace of the slowest
//! reader. Accepting and writing go on. A client more than `SOFT` behind for longer than
//! `PATIENCE` without a break has stopped reading: it gets `ERR too-slow` in one
//! non-blocking attempt (after the rest of a half-written line; if the socket takes only part
//! of that, the peer sees a torn line) and its socket and queue are dropped in the same turn.
//! So no client can pause the room for longer than `PATIENCE`. A turn handles at most
//! `TURN_LINES` = 256 lines from all clients together, starting where the last turn stopped,
//! and each line adds at most one line to each queue: no queue in the room ever holds more
//! than `SOFT + TURN_LINES` = 1280 lines.
//!
//! **Trade-off.** The loop spins: with nobody connected, or everybody silent, it still burns
//! one core at 100%, asking the kernel "anything yet?" hundreds of thousands of times a
//! second. Latency is excellent (a line is seen within one turn of the loop), but it is bought
//! with CPU, and each turn costs one read syscall per client, ready or not: O(n) work per
//! spin, so a turn gets slower as clients join (ten times the clients, a tenth of the turns).
//! Sleeping between turns would save CPU and cost latency; step 4 fixes both by asking the
//! kernel to wake us only when a socket is ready (`poll`).
//! On the plus side, one thread handles one line at a time, so every receiver sees the same
//! order for free, and there are no locks. Flow control makes everybody wait for the
//! slowest reader, for up to `PATIENCE`: one client that stops reading pauses the room for
//! 2 s before it is cut. A smaller `SOFT` pauses the room sooner and more often; a larger one
//! costs more memory per client that does not read.
//!
//! **Bounds.** A line is at most `MAX_LINE` = 1024 bytes (longer: `ERR line-too-long`, closed).
//! A client's queue is at most 1280 lines (over 1.3 MB if all were of the longest, 1058
//! bytes), plus the one fatal `ERR` of a client that leaves. Memory per client: about 200
//! bytes fixed (the `Client` itself, its name twice); its read buffer, which holds at most
//! `READ_CHUNK` + `MAX_LINE` + 1 bytes and keeps its largest capacity (at most 32 KiB); and
//! 16 bytes per queued line (the queue keeps its largest capacity, at most 2048 references:
//! 32 KiB). The text of a broadcast line (at most 1058 bytes, plus 16 of `Arc` counts) is
//! stored once for all its receivers and freed when the last one has written it; an `ERR`
//! reply is its own small allocation. A client that left (it closed, or got a fatal `ERR`)
//! gets its last lines, then FIN, and its input is discarded until it closes, for at most
//! `LINGER` = 10 s; then its socket is closed. The kernel's socket buffers come on top of
//! all this, and are not in the process's RSS.
//!
//! **What to measure.** CPU at idle: `top -p <pid>`, or `utime + stime` in `/proc/<pid>/stat`
//! read twice 5 s apart (expect about one core). Latency from `MSG` sent to `MSG` received
//! (loadgen). How many clients it holds before a turn of the loop gets slow. How long a paste
//! of 50,000 lines takes to reach two readers, and how long the room stays paused while a
//! client does not read. Peak RSS (`VmHWM` in `/proc/<pid>/status`) with 1,000 clients that
//! never read while one floods.
//!
//! **Try it.** `make step1 && ./target/release/step1_naive` (or `... 127.0.0.1:0` for any
//! port), then in two other terminals `nc 127.0.0.1 7878` and type `USER alice`, `MSG hi`.
//! Paste a file from a third: `(echo "USER s"; seq 1 50000 | sed 's/^/MSG line /') | nc -N
//! 127.0.0.1 7878`.

mod client;
mod flow;
mod room;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpListener;
use std::process;
use std::time::Instant;

use room::Room;

const DEFAULT_ADDR: &str = "127.0.0.1:7878";
const SERVER_FULL: &[u8] = b"ERR server-full out of file descriptors, try again later\n";
// Linux errno values for "too many open files" (this process, and the whole system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

fn main() {
    let listener = listen(std::env::args_os().skip(1).collect());
    // Held in reserve so that, out of descriptors, we can still accept and refuse politely.
    let mut spare = File::open("/dev/null").ok();
    let mut room = Room::new();
    loop {
        accept_all(&listener, &mut room, &mut spare);
        room.read_all();
        room.flush_all();
        let now = Instant::now();
        room.apply_flow_control(now);
        room.remove_gone(now);
    }
}

/// Binds the address given as the only argument (or the default), non-blocking, and says
/// where on stdout. Any failure here ends the program with status 2.
fn listen(args: Vec<OsString>) -> TcpListener {
    let addr = match args.as_slice() {
        [] => DEFAULT_ADDR,
        [arg] => arg
            .to_str()
            .unwrap_or_else(|| exit_with("the address is not valid text")),
        _ => exit_with("usage: step1_naive [ADDR]   (default 127.0.0.1:7878)"),
    };
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => exit_with(&format!("cannot listen on {addr}: {e}")),
    };
    if let Err(e) = listener.set_nonblocking(true) {
        exit_with(&format!("cannot make the listener non-blocking: {e}"));
    }
    let local = match listener.local_addr() {
        Ok(local) => local,
        Err(e) => exit_with(&format!("cannot read the bound address: {e}")),
    };
    let mut stdout = io::stdout().lock();
    if let Err(e) = writeln!(stdout, "listening on {local}").and_then(|()| stdout.flush()) {
        eprintln!("cannot print the address on stdout: {e}");
    }
    listener
}

fn exit_with(message: &str) -> ! {
    eprintln!("step1_naive: {message}");
    process::exit(2);
}

/// Accepts every waiting connection, until the listener would block.
fn accept_all(listener: &TcpListener, room: &mut Room, spare: &mut Option<File>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => room.join(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The peer gave up while waiting in the queue: just take the next one.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            // Out of descriptors: every accept fails, whether or not someone is waiting.
            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                turn_away(listener, spare);
                return;
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                return;
            }
        }
    }
}

/// Out of descriptors, a waiting newcomer would make `accept` fail on every turn forever.
/// Free the spare descriptor, accept the newcomer, tell it `ERR server-full`, close it.
fn turn_away(listener: &TcpListener, spare: &mut Option<File>) {
    drop(spare.take());
    if let Ok((mut stream, peer)) = listener.accept() {
        eprintln!("out of file descriptors: turning {peer} away");
        // Best effort, and never blocking: the room must not wait for a client it refuses.
        if stream.set_nonblocking(true).is_ok() {
            let _ = stream.write(SERVER_FULL);
        }
    }
    *spare = File::open("/dev/null").ok();
}
