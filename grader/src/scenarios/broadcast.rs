//! Delivery: who receives a message, and in which order.

use super::{
    Receipt, assert_one_order, expect_nothing_pending, registered_all, say, sent_by, spawn_in,
};
use crate::{SILENCE_WINDOW, Server};
use std::thread;

/// A message reaches the other registered client, never its sender, and never a connection
/// that has not sent `USER`.
pub fn two_clients_broadcast(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    let mut lurker = server.connect();
    say(&mut clients, 0, "hello bob");
    say(&mut clients, 1, "hello alice, how are you?");
    expect_nothing_pending(&mut clients);
    lurker.expect_nothing_pending();
    server.assert_serving();
}

/// With ten clients, each message reaches the nine others and never comes back to its sender.
pub fn ten_clients_broadcast(bin: &str) {
    let mut server = Server::start(bin);
    let names: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut clients = registered_all(&server, &names);
    let mut lurker = server.connect();
    for from in 0..clients.len() {
        say(&mut clients, from, &format!("message number {from}"));
    }
    expect_nothing_pending(&mut clients);
    lurker.expect_nothing_pending();
    server.assert_serving();
}

/// A connection that has not registered, or whose `USER` was refused, receives nothing, and
/// receives nothing sent before it registered.
pub fn unregistered_connection_receives_nothing(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    let mut silent = server.connect();
    let mut refused = server.connect();
    refused.send_line("USER not valid");
    refused.expect_err("invalid-name");
    say(&mut clients, 0, "only for registered clients");
    silent.expect_nothing_pending();
    refused.expect_nothing_pending();
    // Registering now must not bring the earlier message: the reply to the grader's second
    // `USER` has to come first.
    silent.register("latecomer");
    clients.push(silent);
    say(&mut clients, 1, "now for three");
    refused.expect_silence(SILENCE_WINDOW);
    server.assert_serving();
}

/// 200 clients connected at once: each receives every message of the five that send.
pub fn two_hundred_clients_each_receive_every_message(bin: &str) {
    const CLIENTS: usize = 200;
    const SENDERS: usize = 5;
    const MESSAGES: usize = 3;
    let mut server = Server::start(bin);
    let mut clients: Vec<_> = (0..CLIENTS)
        .map(|i| server.registered(&format!("c{i:03}")))
        .collect();
    let texts: Vec<String> = (0..MESSAGES).map(|i| format!("number {i}")).collect();
    let batch: String = texts.iter().map(|text| format!("MSG {text}\n")).collect();
    let mut sent = Vec::new();
    for sender in &mut clients[..SENDERS] {
        sender.send(batch.as_bytes());
        sent.push(sent_by(sender.label(), &texts));
    }
    let receipts: Vec<Receipt> = clients
        .iter_mut()
        .enumerate()
        .map(|(i, client)| {
            let due = if i < SENDERS { SENDERS - 1 } else { SENDERS };
            Receipt::read(client, due * MESSAGES)
        })
        .collect();
    assert_one_order(&receipts, &sent);
    drop(clients);
    server.assert_serving();
}

/// Three clients send 200 messages each at the same time: all six clients see one and the
/// same sequence (less their own messages), with each sender's messages in the order sent.
pub fn order_three_senders_three_receivers(bin: &str) {
    const MESSAGES: usize = 200;
    let mut server = Server::start(bin);
    let mut senders = registered_all(&server, &["s0", "s1", "s2"]);
    let mut receivers = registered_all(&server, &["r0", "r1", "r2"]);
    let texts: Vec<String> = (0..MESSAGES).map(|i| i.to_string()).collect();
    thread::scope(|scope| {
        for sender in &mut senders {
            let role = sender.label().to_string();
            let texts = &texts;
            spawn_in(scope, &role, move || {
                for text in texts {
                    sender.send_line(&format!("MSG {text}"));
                }
            });
        }
    });
    let sent: Vec<_> = senders.iter().map(|s| sent_by(s.label(), &texts)).collect();
    let total = senders.len() * MESSAGES;
    let mut receipts: Vec<Receipt> = receivers
        .iter_mut()
        .map(|r| Receipt::read(r, total))
        .collect();
    receipts.extend(
        senders
            .iter_mut()
            .map(|s| Receipt::read(s, total - MESSAGES)),
    );
    assert_one_order(&receipts, &sent);
    server.assert_serving();
}
