//! Step 2: a thread per connection, messages passed through `std::sync::mpsc` channels.
//!
//! Design. Each connection gets a reader thread, which cuts its bytes into lines and sends them
//! to the room over one shared channel, and a writer thread, which drains the connection's own
//! bounded outbox into its socket. One room thread owns the names and the outboxes; it handles
//! the events one at a time, so every client sees the messages in the same order. It never
//! blocks: a client whose outbox is full has stopped reading and is cut with `ERR too-slow`.
//!
//! Trade-off. The code reads top to bottom like the blocking I/O it is, but every client costs
//! two threads: two kernel tasks (a pid each), two stacks (`STACK_SIZE` reserved, a few pages
//! touched), a spawn per thread at connect time, and the system's thread limits cap the clients.
//! Each outbox holds at most `OUTBOX_BOUND` = 1024 lines of at most 1,058 bytes
//! (`MSG ` + 32-byte name + ` ` + 1,020-byte text + LF), about 1.1 MB per client; lines are
//! shared (`Arc<str>`), so a message queued for many clients is stored once.
//!
//! Measure. Concurrent registered clients until the first `ERR server-full`, and which limit
//! ends it (`kernel.pid_max`, `kernel.threads-max`, `vm.max_map_count`: a stack and its guard
//! page are two mappings, open files); resident memory per client (`VmRSS` in
//! `/proc/PID/status`); connections per second under churn, against step 3's pool.
//!
//! Try it: `make step2 && ./target/release/step2_threads`, then `nc 127.0.0.1 7878` in two
//! terminals, type `USER alice` in one and `USER bob` in the other, then `MSG hello`.

mod connection;
mod protocol;
mod room;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use connection::{Connection, Line};
use protocol::ERR_SERVER_FULL;
use room::{ClientId, Event};

const PROGRAM: &str = env!("CARGO_PKG_NAME");
const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// Lines queued for one client before it counts as too slow (see the top comment).
const OUTBOX_BOUND: usize = 1024;

/// Stack reserved for each thread instead of std's 2 MiB. Our threads never recurse and keep
/// their buffers on the heap; the deepest stack measured (pages touched, `/proc/PID/smaps`)
/// was XX KiB. Smaller stacks mean less address space and fewer page tables, not fewer threads.
const STACK_SIZE: usize = 64 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}\nusage: {PROGRAM} [ADDR]");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = announce(&listener) {
        eprintln!("{PROGRAM}: {e}");
        return ExitCode::from(1);
    }
    let (events, room_events) = mpsc::channel();
    if let Err(e) = start("room", move || room::run(room_events)) {
        eprintln!("{PROGRAM}: cannot start the room thread: {e}");
        return ExitCode::from(1);
    }
    accept_loop(&listener, &events);
    ExitCode::SUCCESS
}

/// The only argument is the address to listen on.
fn parse_args() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(addr)
}

/// Prints the one line tests wait for, with the port the OS picked.
fn announce(listener: &TcpListener) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let mut stdout = io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}

fn accept_loop(listener: &TcpListener, events: &Sender<Event>) {
    let mut next_id: ClientId = 0;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                next_id += 1;
                serve(stream, next_id, events);
            }
            Err(e) => {
                eprintln!("{PROGRAM}: accept failed: {e}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Starts the writer, then the reader, of a new connection. If either cannot start, the client
/// hears `ERR server-full` and the server goes on serving the others.
fn serve(stream: TcpStream, id: ClientId, events: &Sender<Event>) {
    let conn = Arc::new(Connection::new(stream));
    let (outbox, inbox) = mpsc::sync_channel::<Line>(OUTBOX_BOUND);
    let writer_conn = Arc::clone(&conn);
    let writer = move || connection::write_lines(writer_conn, inbox);
    if let Err(e) = start("writer", writer) {
        eprintln!("{PROGRAM}: cannot start a writer: {e}");
        return refuse(&conn.stream);
    }
    // Kept to reach the writer if the reader cannot start; dropped on return either way.
    let fallback = outbox.clone();
    let events = events.clone();
    let reader = move || connection::read_lines(conn, id, outbox, events);
    if let Err(e) = start("reader", reader) {
        eprintln!("{PROGRAM}: cannot start a reader: {e}");
        let _ = fallback.try_send(ERR_SERVER_FULL.into());
    }
}

/// Spawns a named thread with our small stack.
fn start(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(STACK_SIZE)
        .spawn(body)?;
    Ok(())
}

/// Answers a connection that no thread will serve, then closes it. Input that has already
/// arrived is read first: closing with unread input would send a reset instead of the ERR.
fn refuse(mut stream: &TcpStream) {
    let _ = stream.write_all(ERR_SERVER_FULL.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let _ = io::copy(&mut stream.take(64 * 1024), &mut io::sink());
    }
}
