//! Extension `pool-grows` (step 3): started with `--workers 2 --max-workers 24`, the pool
//! starts 2 workers and adds one whenever a job finds none idle, up to 24 in all.

use super::{all_expect, start};
use crate::client::scenario;
use crate::{Client, REPLY_TIMEOUT, Server};
use std::thread;
use std::time::{Duration, Instant};

const EXT: &str = "pool-grows";
const WORKERS: usize = 2;
const MAX_WORKERS: usize = 24;
/// Each client holds two workers (its reader and its writer).
const MAX_CLIENTS: usize = MAX_WORKERS / 2;
/// Threads that are no workers: the main (accepting) thread and the room thread, and a little
/// slack for a design that adds one.
const OTHER_THREADS: usize = 3;

/// At start only `--workers` threads wait; 12 clients (24 workers) all get in and chat; the
/// 13th hears `ERR server-full`; once a client leaves, a newcomer gets its workers.
pub fn ext_pool_grows_from_workers_up_to_max_workers(bin: &str) {
    let (workers, max) = (WORKERS.to_string(), MAX_WORKERS.to_string());
    let args = ["--workers", workers.as_str(), "--max-workers", max.as_str()];
    let mut server = start(bin, EXT, &args);
    let at_start = threads(&server);
    assert!(
        at_start <= WORKERS + OTHER_THREADS,
        "\n[{}] at start the server runs {at_start} threads: with --workers {WORKERS} the pool \
         must start {WORKERS} workers and grow only when clients come\n",
        scenario()
    );

    let mut clients: Vec<Client> = (0..MAX_CLIENTS)
        .map(|i| server.registered(&format!("c{i:02}")))
        .collect();
    clients[0].send_line("MSG all of you got in");
    let mut others: Vec<&mut Client> = clients.iter_mut().skip(1).collect();
    all_expect(&mut others, "MSG c00 all of you got in");
    let grown = threads(&server);
    assert!(
        (MAX_WORKERS..=MAX_WORKERS + OTHER_THREADS).contains(&grown),
        "\n[{}] with {MAX_CLIENTS} clients in, the server runs {grown} threads: expected the \
         pool to hold {MAX_WORKERS} workers (--max-workers), plus a few other threads\n",
        scenario()
    );

    let mut one_too_many = server.connect();
    one_too_many.expect_err_then_closed("server-full");
    drop(clients.pop());
    let mut newcomer = register_when_room(&server, "newcomer");
    clients[0].send_line("MSG welcome");
    newcomer.expect_line("MSG c00 welcome");
    server.assert_alive();
}

/// The number of threads of the server process, from `/proc/<pid>/status`.
fn threads(server: &Server) -> usize {
    let pid = server.pid();
    let status = kit::proc::status(pid).unwrap_or_else(|e| {
        panic!(
            "\n[{}] cannot read /proc/{pid}/status (this extension needs Linux): {e}\n",
            scenario()
        )
    });
    match status.threads {
        Some(count) => count as usize,
        None => panic!(
            "\n[{}] no Threads: line in /proc/{pid}/status\n",
            scenario()
        ),
    }
}

/// Connects until a client gets in: a leaver's workers come back once its reader and writer
/// have seen the close, which takes a moment.
fn register_when_room(server: &Server, name: &str) -> Client {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let mut client = server.connect();
        match client.try_register(name) {
            Ok(()) => return client,
            Err(got) if got.contains("ERR server-full ") && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(got) => panic!(
                "\n[{}] a client left, yet within {REPLY_TIMEOUT:?} a newcomer still got {got} \
                 instead of a place\n",
                scenario()
            ),
        }
    }
}
