//! Framing: lines split anywhere, many lines at once, CRLF, empty lines, the length limit.

use super::{expect_nothing_pending, register_when_free, registered_all, say};
use crate::{Client, MAX_LINE, Server};

/// Runs `talk` between `alice`, connected but not yet registered, and `bob`, registered; then
/// neither may have anything left waiting, and the server must still serve.
fn alice_and_bob(bin: &str, talk: impl FnOnce(&mut Client, &mut Client)) {
    let mut server = Server::start(bin);
    let mut pair = [server.connect(), server.registered("bob")];
    let [alice, bob] = &mut pair;
    talk(alice, bob);
    expect_nothing_pending(&mut pair);
    server.assert_serving();
}

/// Every byte in its own write, even inside a multi-byte character: the server reassembles
/// the lines.
pub fn one_byte_per_write(bin: &str) {
    alice_and_bob(bin, |alice, bob| {
        alice.send_byte_by_byte("USER alice\nMSG ça coûte 5 €, byte by byte\n".as_bytes());
        bob.expect_line("MSG alice ça coûte 5 €, byte by byte");
        bob.send_byte_by_byte(b"MSG got it\r\n");
        alice.expect_line("MSG bob got it");
    });
}

/// A hundred lines in one write: all are handled, in order.
pub fn hundred_lines_in_one_write(bin: &str) {
    alice_and_bob(bin, |alice, bob| {
        let lines: String = (0..100).map(|i| format!("MSG line {i}\n")).collect();
        alice.send(format!("USER alice\n{lines}").as_bytes());
        for i in 0..100 {
            bob.expect_line(&format!("MSG alice line {i}"));
        }
    });
}

/// CRLF line endings: the CR is dropped, for commands and texts alike.
pub fn crlf_line_endings(bin: &str) {
    alice_and_bob(bin, |alice, bob| {
        alice.send(b"USER alice\r\nMSG hello from a terminal\r\n");
        bob.expect_line("MSG alice hello from a terminal");
        alice.send(b"USER alice\r\n");
        alice.expect_err("already-registered");
        alice.send(b"MSG \r\n");
        alice.expect_err("empty-message");
    });
}

/// Empty lines (`\n`, `\r\n`) get no reply, before and after `USER`.
pub fn empty_lines_ignored(bin: &str) {
    alice_and_bob(bin, |alice, bob| {
        alice.send(b"\n\r\n\n");
        alice.expect_nothing_pending();
        alice.register("alice");
        alice.send(b"\r\n\nMSG after empty lines\n\n");
        bob.expect_line("MSG alice after empty lines");
    });
}

/// A line of exactly `MAX_LINE` bytes is accepted, with LF or CRLF after it.
pub fn line_of_1024_bytes_accepted(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    let text = text_of(MAX_LINE - "MSG ".len());
    say(&mut clients, 0, &text);
    clients[0].send(format!("MSG {text}\r\n").as_bytes());
    clients[1].expect_line(&format!("MSG alice {text}"));
    expect_nothing_pending(&mut clients);
    server.assert_serving();
}

/// A line of `MAX_LINE + 1` bytes: `ERR line-too-long`, then the server closes the connection;
/// the others are unaffected and the name is free again.
pub fn line_of_1025_bytes_refused_and_closed(bin: &str) {
    let text = text_of(MAX_LINE + 1 - "MSG ".len());
    too_long_then_closed(bin, format!("MSG {text}\n").as_bytes());
}

/// More than `MAX_LINE` bytes and no LF yet: the server must not wait for the end of the
/// line (it might never come) but refuse it at once and close.
pub fn long_line_without_newline_refused_and_closed(bin: &str) {
    let text = text_of(MAX_LINE + 76);
    too_long_then_closed(bin, format!("MSG {text}").as_bytes());
}

fn too_long_then_closed(bin: &str, line: &[u8]) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["alice", "bob"]);
    let mut long = server.registered("long");
    long.send(line);
    long.expect_err_then_closed("line-too-long");
    say(&mut clients, 0, "after the long line");
    expect_nothing_pending(&mut clients);
    clients.push(register_when_free(&server, "long"));
    say(&mut clients, 2, "the name long is mine now");
    server.assert_serving();
}

/// Text of exactly `len` bytes, varied so that a lost or shifted chunk shows.
fn text_of(len: usize) -> String {
    let digits = "0123456789abcdefghijklmnopqrstuvwxyz";
    digits.chars().cycle().take(len).collect()
}

/// UTF-8 texts and names pass through byte for byte.
pub fn utf8_text_delivered_intact(bin: &str) {
    let mut server = Server::start(bin);
    let mut clients = registered_all(&server, &["zoë", "李雷"]);
    say(&mut clients, 0, "héllo wörld, 日本語, emoji 🦀, math ∑");
    say(&mut clients, 1, "¡olé! — “quotes” and ½");
    expect_nothing_pending(&mut clients);
    server.assert_serving();
}
