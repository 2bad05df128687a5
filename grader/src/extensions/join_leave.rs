//! Extension `join-leave`: started with `--join-leave`, the server tells the other registered
//! clients `JOIN <name>` when a client registers and `LEAVE <name>` when it leaves the room.

use super::{all_expect, start};
use crate::{Client, Server};
use std::thread;
use std::time::Duration;

const EXT: &str = "join-leave";
const OPTION: &str = "--join-leave";

/// Notices go to the other registered clients only: never to the client itself, never to a
/// connection without a name, and nothing for a connection that never registered.
pub fn ext_join_leave_notices_when_clients_come_and_go(bin: &str) {
    let mut server = start(bin, EXT, &[OPTION]);
    let mut alice = server.registered("alice");
    let mut lurker = server.connect();
    let mut bob = server.registered("bob");
    alice.expect_line("JOIN bob");
    // No notice about itself, and none about those who were there before it.
    bob.expect_nothing_pending();
    lurker.expect_nothing_pending();

    // Refused names are no arrivals.
    lurker.send_line("USER not valid");
    lurker.expect_err("invalid-name");
    lurker.send_line("USER alice");
    lurker.expect_err("name-taken");
    let mut carol = server.registered("carol");
    all_expect(&mut [&mut alice, &mut bob], "JOIN carol");
    carol.send_line("MSG hello");
    all_expect(&mut [&mut alice, &mut bob], "MSG carol hello");

    drop(bob);
    all_expect(&mut [&mut alice, &mut carol], "LEAVE bob");
    // A connection that never registered leaves without a notice.
    drop(lurker);
    thread::sleep(Duration::from_millis(100));
    alice.expect_nothing_pending();
    carol.expect_nothing_pending();
    still_chatting(&mut server, alice, carol);
}

/// Lines a client sent before closing come before its `LEAVE`, and a client that the server
/// closes (line too long) or that resets its connection leaves the room all the same.
pub fn ext_join_leave_leave_comes_after_the_last_message(bin: &str) {
    let mut server = start(bin, EXT, &[OPTION]);
    let mut alice = server.registered("alice");

    let mut quick = server.connect();
    quick.send(b"USER dave\nMSG hi\nMSG bye\n");
    drop(quick);
    for line in ["JOIN dave", "MSG dave hi", "MSG dave bye", "LEAVE dave"] {
        alice.expect_line(line);
    }

    let mut eve = server.registered("eve");
    alice.expect_line("JOIN eve");
    eve.send(format!("MSG {}", "x".repeat(1100)).as_bytes());
    eve.expect_err_then_closed("line-too-long");
    alice.expect_line("LEAVE eve");

    let frank = server.registered("frank");
    alice.expect_line("JOIN frank");
    frank.reset();
    alice.expect_line("LEAVE frank");
    alice.expect_nothing_pending();

    let carol = server.registered("carol");
    alice.expect_line("JOIN carol");
    still_chatting(&mut server, alice, carol);
}

/// Ends a scenario: the server runs, and the last two clients still chat. (The grader's
/// usual `assert_serving` would trip over the `JOIN` notice of its second fresh client.)
fn still_chatting(server: &mut Server, mut first: Client, mut second: Client) {
    server.assert_alive();
    first.send_line("MSG still serving?");
    second.expect_line(&format!("MSG {} still serving?", first.label()));
    second.send_line("MSG yes");
    first.expect_line(&format!("MSG {} yes", second.label()));
}
