//! Connections that end: names are freed, nothing sent before a close is lost, a reset harms
//! no one else.

use super::{expect_nothing_pending, register_when_free, registered_all, say};
use crate::{SILENCE_WINDOW, Server};
use std::thread;
use std::time::Duration;

/// A name is free again once its connection closes.
pub fn name_freed_when_connection_closes(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    drop(clients.remove(0));
    clients.push(register_when_free(&server, "alice"));
    say(&mut clients, 1, "alice again, on a new connection");
    say(&mut clients, 0, "welcome back");
    server.assert_serving();
}

/// `USER a`, two messages, and an immediate close, all in one go: the others still receive
/// both messages, and the name is freed.
pub fn send_then_close_at_once(bin: &str) {
    let mut server = Server::start(bin);
    let mut bob = server.registered("bob");
    let mut quick = server.connect();
    quick.send(b"USER a\nMSG hi\nMSG bye\n");
    drop(quick);
    bob.expect_line("MSG a hi");
    bob.expect_line("MSG a bye");
    let mut clients = vec![bob, register_when_free(&server, "a")];
    say(&mut clients, 1, "a is back");
    expect_nothing_pending(&mut clients);
    server.assert_serving();
}

/// A client that has unread messages and half a line sent resets its connection (RST, not
/// FIN): the half line is never delivered, the others chat on, its name is freed.
pub fn reset_mid_line_leaves_others_unaffected(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    let mut carol = server.registered("carol");
    say(&mut clients, 0, "carol will not read this");
    carol.send(b"MSG half a li");
    // Let the half line reach the server before the reset throws it away.
    thread::sleep(Duration::from_millis(50));
    carol.reset();
    say(&mut clients, 0, "right after the reset");
    say(&mut clients, 1, "still fine here");
    expect_nothing_pending(&mut clients);
    clients[1].expect_silence(SILENCE_WINDOW);
    clients.push(register_when_free(&server, "carol"));
    say(&mut clients, 2, "carol is back");
    server.assert_serving();
}
