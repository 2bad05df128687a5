//! The contract's bad-input table, row by row: the `ERR` code, and whether the connection
//! stays open. "Stays open" is checked by doing something valid afterwards.

use super::{expect_nothing_pending, registered_all, say};
use crate::Server;

/// Whether the refused lines come before or after the connection registers.
#[derive(Clone, Copy, PartialEq)]
enum When {
    Unregistered,
    Registered,
}

/// Sends each of `lines` (LF appended) on one connection and expects `ERR <code> ...` for each;
/// then the same connection must still register (if it was not yet) and chat both ways.
fn refused_then_still_open(bin: &str, when: When, lines: &[&[u8]], code: &str) {
    let mut server = Server::start(bin);
    let peer = server.registered("peer");
    let mut client = server.connect();
    if when == When::Registered {
        client.register("tester");
    }
    for line in lines {
        client.send(&[line, &b"\n"[..]].concat());
        client.expect_err(code);
    }
    if when == When::Unregistered {
        client.register("tester");
    }
    let mut both = [client, peer];
    say(&mut both, 0, "still here");
    say(&mut both, 1, "welcome back");
    expect_nothing_pending(&mut both);
    server.assert_serving();
}

/// Unknown command words: `ERR unknown-command`, and the connection stays open.
pub fn unknown_command_stays_open(bin: &str) {
    let lines: [&[u8]; 6] = [
        b"HELLO",
        b"QUIT",
        b"GET / HTTP/1.1",
        b"USERalice",
        b"USER\talice",
        b" USER alice",
    ];
    refused_then_still_open(bin, When::Unregistered, &lines, "unknown-command");
}

/// Commands are case-sensitive: `user x` and `msg hi` are unknown commands.
pub fn wrong_case_command_stays_open(bin: &str) {
    let lines: [&[u8]; 4] = [b"user alice", b"User alice", b"msg hi", b"Msg hi"];
    refused_then_still_open(bin, When::Registered, &lines, "unknown-command");
}

/// `USER` and `MSG` without their space and argument are unknown commands.
pub fn missing_argument_stays_open(bin: &str) {
    let lines: [&[u8]; 3] = [b"USER", b"MSG", b"MSGhello"];
    refused_then_still_open(bin, When::Registered, &lines, "unknown-command");
}

/// Empty names and names with whitespace or control characters: `ERR invalid-name`; the
/// client may retry with a valid name.
pub fn invalid_name_then_retry(bin: &str) {
    let lines: [&[u8]; 6] = [
        b"USER ",
        b"USER two words",
        b"USER tab\tname",
        b"USER bell\x07",
        b"USER esc\x1b[1m",
        b"USER del\x7f",
    ];
    refused_then_still_open(bin, When::Unregistered, &lines, "invalid-name");
}

/// A name is 1 to 32 *bytes*: 32 bytes (even as 16 two-byte characters) are accepted,
/// 33 bytes (even as 11 three-byte characters) are refused.
pub fn name_of_32_bytes_accepted_33_refused(bin: &str) {
    let mut server = Server::start(bin);
    let mut client = server.connect();
    for name in ["n".repeat(33), "€".repeat(11)] {
        client.send_line(&format!("USER {name}"));
        client.expect_err("invalid-name");
    }
    client.register(&"é".repeat(16));
    let mut clients = vec![client, server.registered(&"n".repeat(32))];
    say(&mut clients, 0, "my name is 32 bytes long");
    say(&mut clients, 1, "so is mine");
    server.assert_serving();
}

/// `MSG` before `USER`: `ERR not-registered`, and the client may still register.
pub fn msg_before_user_not_registered(bin: &str) {
    let lines: [&[u8]; 2] = [b"MSG hello", b"MSG hello again"];
    refused_then_still_open(bin, When::Unregistered, &lines, "not-registered");
}

/// `MSG ` with nothing after the space: `ERR empty-message`.
pub fn empty_message_refused(bin: &str) {
    refused_then_still_open(bin, When::Registered, &[b"MSG "], "empty-message");
}

/// A text that is not UTF-8 (stray bytes, a cut character, an overlong form, a surrogate):
/// `ERR invalid-text`.
pub fn invalid_utf8_refused(bin: &str) {
    let lines: [&[u8]; 4] = [
        b"MSG \xff\xfe",
        b"MSG caf\xc3",
        b"MSG overlong \xc0\xaf",
        b"MSG surrogate \xed\xa0\x80",
    ];
    refused_then_still_open(bin, When::Registered, &lines, "invalid-text");
}

/// Control characters in a text: `ERR invalid-text`. Only one CR right before the LF is
/// framing; any other CR is a control character.
pub fn control_character_in_text_refused(bin: &str) {
    let lines: [&[u8]; 7] = [
        b"MSG a\x01b",
        b"MSG tab\there",
        b"MSG clear \x1b[2J",
        b"MSG del\x7f",
        b"MSG nul\x00",
        b"MSG carriage\rreturn",
        b"MSG two CRs\r\r",
    ];
    refused_then_still_open(bin, When::Registered, &lines, "invalid-text");
}

/// A name in use: `ERR name-taken`; the client may retry with another name, and the name
/// still belongs to its owner.
pub fn name_taken_then_retry(bin: &str) {
    let mut server = Server::start(bin);
    let alice = server.registered("alice");
    let mut second = server.connect();
    second.send_line("USER alice");
    second.expect_err("name-taken");
    second.register("bob");
    let mut clients = [alice, second];
    say(&mut clients, 0, "alice is still me");
    say(&mut clients, 1, "and I am bob");
    server.assert_serving();
}

/// `USER` after a successful `USER`: `ERR already-registered`; the first name stays, and the
/// refused one is not taken.
pub fn already_registered_keeps_first_name(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    clients[0].send_line("USER carol");
    clients[0].expect_err("already-registered");
    say(&mut clients, 0, "still alice");
    clients.push(server.registered("carol"));
    say(&mut clients, 2, "carol here");
    server.assert_serving();
}
