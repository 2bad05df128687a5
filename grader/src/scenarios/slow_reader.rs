//! A client that never reads while another sends about 20 MB: the room must not wait for it,
//! and its backlog must stay bounded.

use super::flow_control::check_cut_prefix;
use super::spawn_in;
use crate::client::scenario;
use crate::{Client, STALL_TIMEOUT, Server};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Messages the sender sends: 20,000 of about 1000 bytes, some 20 MB.
const MESSAGES: usize = 20_000;
const TEXT_LEN: usize = 1000;
/// Messages per write.
const BATCH: usize = 10;
/// How far the sender may run ahead of the slowest *reading* client. The grader paces itself
/// so that a server with the smallest allowed backlog (1000 messages) never cuts a client that
/// does read; the client that does not read falls behind without limit.
const AHEAD: usize = 500;
/// The whole send must end within this, even on a loaded machine.
const SEND_BOUND: Duration = Duration::from_secs(60);
/// The kernel receive buffer of the client that never reads. Kept small so that the server's
/// own bound, not the kernel, decides when it is cut; but several times the loopback MSS
/// (64 KiB), or the window never reopens by a full segment and the last bytes crawl in on
/// zero-window probes minutes apart.
const SLEEPER_RCVBUF: i32 = 256 * 1024;

/// One client never reads while `sender` sends ~20 MB: both reading clients get every message
/// in order, the sender's writes never stall for long, and the sleeper is cut (`ERR too-slow`
/// best effort, then closed) having received only part of the messages, with no gap.
pub fn slow_reader_is_cut_and_others_get_everything(bin: &str) {
    let mut server = Server::start(bin);
    let mut sleeper = server.connect();
    sleeper.set_recv_buffer(SLEEPER_RCVBUF);
    sleeper.register("sleeper");
    let mut readers = [server.registered("reader1"), server.registered("reader2")];
    let mut sender = server.registered("sender");
    let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
    thread::scope(|scope| {
        for (reader, received) in readers.iter_mut().zip(&progress) {
            let role = reader.label().to_string();
            spawn_in(scope, &role, move || read_everything(reader, received));
        }
        send_everything(&mut sender, &progress);
    });
    let lines = sleeper.read_until_closed(STALL_TIMEOUT);
    check_sleeper(&lines);
    server.assert_serving();
}

/// The text of the `i`th message: its number, then one letter repeated.
fn bulk_text(i: usize) -> String {
    let fill = char::from(b'a' + (i % 26) as u8);
    let letters: String = std::iter::repeat_n(fill, TEXT_LEN).collect();
    format!("{i:05} {letters}")
}

/// The `i`th message as the others receive it.
fn bulk_line(i: usize) -> String {
    format!("MSG sender {}", bulk_text(i))
}

/// Expects every message in order, counting them in `received` for the sender's pacing.
fn read_everything(reader: &mut Client, received: &AtomicUsize) {
    for i in 0..MESSAGES {
        reader.expect_line_within(&bulk_line(i), STALL_TIMEOUT);
        received.store(i + 1, Ordering::Relaxed);
    }
}

/// Sends every message in batches, never more than `AHEAD` messages in front of the slowest
/// reader. A write that blocks longer than `STALL_TIMEOUT` fails inside `Client::send`.
fn send_everything(sender: &mut Client, progress: &[AtomicUsize]) {
    let start = Instant::now();
    for first in (0..MESSAGES).step_by(BATCH) {
        wait_for_readers(progress, first.saturating_sub(AHEAD), first);
        let batch: String = (first..first + BATCH)
            .map(|i| format!("MSG {}\n", bulk_text(i)))
            .collect();
        sender.send(batch.as_bytes());
    }
    let took = start.elapsed();
    assert!(
        took < SEND_BOUND,
        "\n[{}] sending {MESSAGES} messages took {took:?}, more than {SEND_BOUND:?}: \
         the room is too slow while one client does not read\n",
        scenario()
    );
}

/// Waits until every reader has received `target` messages; fails if they stop progressing.
fn wait_for_readers(progress: &[AtomicUsize], target: usize, sent: usize) {
    let slowest = || {
        progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .min()
            .unwrap_or(target)
    };
    let mut last = slowest();
    let mut since = Instant::now();
    while slowest() < target {
        if slowest() != last {
            last = slowest();
            since = Instant::now();
        }
        if since.elapsed() > STALL_TIMEOUT {
            panic!(
                "\n[{}] the reading clients stopped receiving: after {sent} messages sent, \
                 the slowest had received {last} for {STALL_TIMEOUT:?}. Is the server waiting for \
                 the client that does not read?\n",
                scenario()
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// What the sleeper finally reads: some messages from the start of the sequence, with no gap,
/// maybe `ERR too-slow` last (after the start of a message cut short, since the cut is best
/// effort), and not all of them.
fn check_sleeper(lines: &[String]) {
    if let Err(what) = check_cut_prefix(lines, MESSAGES, bulk_line) {
        panic!("\n[{}] the client that never read: {what}\n", scenario());
    }
}
