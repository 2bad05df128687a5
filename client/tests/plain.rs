//! The client through pipes (plain mode) against a real server: one line per event, no escape
//! sequences, and every rule of the issue that a script can see.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

use common::{Client, start_server};

const WELCOME: &str = "-- you are alice: type and press Enter; /quit or Ctrl-D leaves";

#[test]
fn piped_lines_are_sent_and_the_end_of_input_leaves() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut bob = server.registered("bob");
    let mut alice = Client::start(&addr);
    alice.type_line("alice");
    alice.type_line("hello");
    alice.type_line("");
    alice.type_line("  spaced out  ");
    alice.close_input();
    let (status, output, stderr) = alice.finish();

    bob.expect_line("MSG alice hello");
    bob.expect_line("MSG alice   spaced out  ");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let expected = [
        format!("-- connected to {addr}"),
        "-- choose a name (1-32 bytes, no spaces) and press Enter".to_string(),
        WELCOME.to_string(),
        "alice: hello".to_string(),
        "alice:   spaced out  ".to_string(),
    ];
    assert_eq!(output, expected);
    assert_eq!(stderr, "");
}

#[test]
fn messages_from_others_show_while_waiting_and_quit_leaves() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut alice = Client::start(&addr);
    alice.type_line("alice");
    alice.expect(WELCOME);
    let mut bob = server.registered("bob");
    bob.send_line("MSG hi there");
    alice.expect("bob: hi there");
    alice.type_line("hi bob");
    bob.expect_line("MSG alice hi bob");
    alice.type_line("/quit");
    bob.send_line("MSG still there?");
    let (status, output, _) = alice.finish();
    assert_eq!(status.code(), Some(0));
    assert!(
        output.iter().all(|line| !line.contains('\x1b')),
        "{output:?}"
    );
}

#[test]
fn a_taken_or_invalid_name_is_asked_again() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut bob = server.registered("bob");
    let mut alice = Client::start(&addr);
    alice.type_line("bob");
    alice.type_line("al ice");
    alice.type_line(&"a".repeat(33));
    alice.type_line("alice");
    alice.type_line("hi");
    alice.close_input();
    let (status, output, _) = alice.finish();

    bob.expect_line("MSG alice hi");
    assert_eq!(status.code(), Some(0));
    // The server's refusal is shown (its reason is the server's own words), then the prompt.
    let taken = output
        .iter()
        .position(|line| line.starts_with("[server] name-taken"));
    let taken = taken.unwrap_or_else(|| panic!("no name-taken line: {output:?}"));
    assert_eq!(output[taken + 1], "-- choose another name");
    assert_eq!(
        output[taken + 2],
        "-- a name cannot contain spaces; try another"
    );
    assert_eq!(
        output[taken + 3],
        "-- a name is at most 32 bytes; that one is 33; try another"
    );
    assert_eq!(output[taken + 4], WELCOME);
    // The client's probe after each USER (see `register`) is answered but never shown.
    assert!(
        !output.iter().any(|line| line.contains("empty-message")),
        "{output:?}"
    );
    assert!(
        !output.iter().any(|line| line.contains("not-registered")),
        "{output:?}"
    );
}

#[test]
fn overlong_and_control_lines_are_refused_locally() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut bob = server.registered("bob");
    let mut alice = Client::start(&addr);
    let longest = "x".repeat(1020); // "MSG " + 1020 bytes = 1024, the limit
    alice.type_line("alice");
    alice.type_line(&"y".repeat(1021));
    alice.type_line("tab\there");
    alice.type_line("arrow \x1b[A");
    alice.type_line("ok");
    alice.type_line(&longest);
    alice.close_input();
    let (status, output, _) = alice.finish();

    bob.expect_line("MSG alice ok");
    bob.expect_line(&format!("MSG alice {longest}"));
    assert_eq!(status.code(), Some(0));
    let refusals: Vec<&String> = output
        .iter()
        .filter(|line| line.contains("not sent"))
        .collect();
    assert_eq!(refusals.len(), 3, "{output:?}");
    assert_eq!(
        refusals[0],
        "-- not sent: the line is 1021 bytes, the limit is 1020"
    );
}

#[test]
fn the_server_closing_is_reported_with_status_1() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut alice = Client::start(&addr);
    alice.type_line("alice");
    alice.expect(WELCOME);
    drop(server);
    let (status, _, stderr) = alice.finish();
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr, "connection closed by server\n");
}

#[test]
fn a_refused_connection_is_one_line_and_status_1() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    drop(listener);
    let output = Command::new(common::client_bin())
        .arg(&addr)
        .output()
        .expect("run client");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("cannot connect to {addr}: Connection refused\n")
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_bad_argument_is_a_usage_line_and_status_2() {
    let output = Command::new(common::client_bin())
        .args(["a", "b"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("usage: client [ADDR]"));
}

/// A hostile server (any server can be one) sends escape sequences in names and texts, and a
/// line of its own; none of them may reach the terminal as a command.
#[test]
fn escape_sequences_from_the_network_are_made_visible() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let evil = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        for expected in ["USER alice\n", "MSG \n"] {
            line.clear();
            reader.read_line(&mut line).expect("read");
            assert_eq!(line, expected);
        }
        let mut stream = stream;
        let lines = concat!(
            "ERR empty-message welcome\n",
            "MSG e\x1b[2Jve \x1b]0;pwned\x07 \u{9b}31m red \u{202e}desrever\n",
            "\x1b[H\x1b[2J\r\n",
            "ERR too-slow \x1b[5mbye\n",
        );
        stream.write_all(lines.as_bytes()).expect("write");
    });
    let mut alice = Client::start(&addr);
    alice.type_line("alice");
    let (status, output, stderr) = alice.finish();
    evil.join().expect("the fake server");

    assert_eq!(status.code(), Some(1));
    // The client's own lines (`-- ...`) aside: the welcome may come before or after the first
    // message, which the reader thread shows as soon as it arrives.
    let received: Vec<&String> = output
        .iter()
        .filter(|line| !line.starts_with("-- "))
        .collect();
    assert_eq!(
        received,
        [
            "e^[[2Jve: ^[]0;pwned^G <U+009B>31m red <U+202E>desrever",
            "^[[H^[[2J",
            "[server] too-slow: ^[[5mbye",
        ]
    );
    assert_eq!(
        stderr,
        "connection closed by server; its last line: ERR too-slow ^[[5mbye\n"
    );
}

/// A server at capacity turns a newcomer away at once: the client says so before the user has
/// typed a name.
#[test]
fn a_server_that_turns_us_away_at_once_is_heard_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let full = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .write_all(b"ERR server-full try later\n")
            .expect("write");
    });
    let alice = Client::start(&addr);
    let (status, output, stderr) = alice.finish();
    full.join().expect("the fake server");
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains(&"[server] server-full: try later".to_string()),
        "{output:?}"
    );
    assert_eq!(
        stderr,
        "connection closed by server; its last line: ERR server-full try later\n"
    );
}

/// A piped line far longer than any message (a file without line ends, say) is refused
/// without being kept whole: the client reads past it and goes on with the next line.
#[test]
fn a_piped_line_of_any_length_is_refused_and_the_next_one_sent() {
    let server = start_server();
    let addr = server.addr().to_string();
    let mut bob = server.registered("bob");
    let mut alice = Client::start(&addr);
    alice.type_line("alice");
    alice.type_line(&"z".repeat(1_000_000));
    alice.type_line("after it");
    alice.close_input();
    let (status, output, _) = alice.finish();
    bob.expect_line("MSG alice after it");
    assert_eq!(status.code(), Some(0));
    assert!(
        output.contains(&"-- not sent: the line is longer than 4096 bytes".to_string()),
        "{output:?}"
    );
}
