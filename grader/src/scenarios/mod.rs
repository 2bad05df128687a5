//! The scenarios, one public function each, and the helpers they share.
//!
//! Every scenario starts its own server, so scenarios run in parallel without meeting, and
//! ends with `Server::assert_serving`: whatever happened, the server must still be alive and
//! still chat.

mod bad_input;
mod broadcast;
mod connections;
mod flow_control;
mod framing;
mod slow_reader;
mod startup;

pub use bad_input::*;
pub use broadcast::*;
pub use connections::*;
pub use flow_control::{
    client_reading_a_byte_now_and_then_is_cut_and_the_room_moves_on,
    cut_client_that_never_closes_is_let_go, flood_reaches_a_fast_and_a_paced_reader,
    out_of_descriptors_refused, sixteen_clients_flood_and_each_gets_everything,
};
pub use framing::*;
pub use slow_reader::*;
pub use startup::*;

use crate::client::scenario;
use crate::{Client, REPLY_TIMEOUT, Server};
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

/// One registered client per name, in order.
fn registered_all(server: &Server, names: &[&str]) -> Vec<Client> {
    names.iter().map(|name| server.registered(name)).collect()
}

/// `clients[from]` sends `text`; every other client must receive it next.
fn say(clients: &mut [Client], from: usize, text: &str) {
    clients[from].send_line(&format!("MSG {text}"));
    let expected = format!("MSG {} {text}", clients[from].label());
    for (i, client) in clients.iter_mut().enumerate() {
        if i != from {
            client.expect_line(&expected);
        }
    }
}

/// Each client proves nothing is waiting for it (see `Client::expect_nothing_pending`).
fn expect_nothing_pending(clients: &mut [Client]) {
    for client in clients {
        client.expect_nothing_pending();
    }
}

/// Registers `name` on a fresh connection, retrying while the server still holds the name for
/// a connection that is closing (closing is asynchronous, so the name frees a moment later).
fn register_when_free(server: &Server, name: &str) -> Client {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let mut client = server.connect();
        match client.try_register(name) {
            Ok(()) => return client,
            Err(got) if got.contains("ERR name-taken ") && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(got) => panic!(
                "\n[{}] the name {name:?} was never freed: its connection closed, yet after \
                 {REPLY_TIMEOUT:?} of retries `USER {name}` still got {got}\n",
                scenario()
            ),
        }
    }
}

/// Spawns a scoped thread named after the scenario and its `role`, so that a failure inside
/// it says where it happened.
fn spawn_in<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    role: &str,
    work: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    thread::Builder::new()
        .name(format!("{}: {role}", scenario()))
        .spawn_scoped(scope, work)
        .unwrap_or_else(|e| panic!("could not spawn a thread: {e}"))
}

/// The lines one client received.
struct Receipt {
    name: String,
    lines: Vec<String>,
}

impl Receipt {
    /// Reads `count` lines from `client`.
    fn read(client: &mut Client, count: usize) -> Receipt {
        let lines = (0..count).map(|_| client.next_line()).collect();
        let name = client.label().to_string();
        Receipt { name, lines }
    }
}

/// A sender's name with the lines the others must receive when it sends each of `texts`.
fn sent_by(name: &str, texts: &[String]) -> (String, Vec<String>) {
    let lines = texts
        .iter()
        .map(|text| format!("MSG {name} {text}"))
        .collect();
    (name.to_string(), lines)
}

/// Checks the order rule: every client saw one and the same sequence (less its own
/// messages), which holds each sender's messages in the order sent. `sent` lists each sender's
/// name with the lines the others must receive from it; at least one receipt must come from a
/// client that sent nothing: its sequence is the reference. Receipts hold exactly as many lines
/// as were due, so a stray or doubled line shows up as a missing one.
fn assert_one_order(receipts: &[Receipt], sent: &[(String, Vec<String>)]) {
    let is_sender = |name: &str| sent.iter().any(|(sender, _)| sender == name);
    let Some(reference) = receipts.iter().find(|r| !is_sender(&r.name)) else {
        panic!("assert_one_order needs a receipt from a client that sent nothing");
    };
    for (sender, lines) in sent {
        let from_sender = lines_from(&reference.lines, sender, true);
        if from_sender != *lines {
            fail_order(
                reference,
                &format!("the messages of `{sender}`"),
                lines,
                &from_sender,
            );
        }
    }
    for receipt in receipts {
        let expected = lines_from(&reference.lines, &receipt.name, false);
        if receipt.lines != expected {
            let what = format!("the same sequence as `{}`", reference.name);
            fail_order(receipt, &what, &expected, &receipt.lines);
        }
    }
}

/// The lines of `lines` sent by `name` (`from == true`) or by anyone else (`from == false`).
fn lines_from(lines: &[String], name: &str, from: bool) -> Vec<String> {
    let prefix = format!("MSG {name} ");
    let keep = |line: &&String| line.starts_with(&prefix) == from;
    lines.iter().filter(keep).cloned().collect()
}

fn fail_order(receipt: &Receipt, what: &str, expected: &[String], got: &[String]) -> ! {
    let at = expected.iter().zip(got).take_while(|(e, g)| e == g).count();
    panic!(
        "\n[{}] client `{}` did not receive {what} in order.\n  expected {} lines, got {}; \
         they first differ at line {at}: expected {:?}, got {:?}\n",
        scenario(),
        receipt.name,
        expected.len(),
        got.len(),
        expected.get(at),
        got.get(at)
    );
}
