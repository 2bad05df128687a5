//! The conversation: choose a name, then send what the user types while a reader thread shows
//! what arrives.

use std::io::{self, BufRead, BufReader, Read, StdinLock, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::protocol::{MAX_LINE, ServerLine, check_name, check_text, parse_server_line, sanitize};
use crate::ui::{Line, Ui, leave};

/// A server line longer than this (the contract's are at most about 1060 bytes) is shown in
/// pieces, so a broken server cannot make us buffer without end.
const MAX_RECEIVED: u64 = 4 * MAX_LINE as u64;
/// How long to wait for the answer to a name before going on without it (see `register`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the whole session; never returns: the process ends when the user leaves or the
/// server closes.
pub fn run(ui: Ui, stream: TcpStream, addr: &str) -> ! {
    let ui = Arc::new(Mutex::new(ui));
    let mut from_server = match stream.try_clone() {
        Ok(clone) => BufReader::new(clone),
        Err(e) => leave(&ui, 1, &format!("cannot use the connection: {e}")),
    };
    let mut to_server = stream;
    let mut input = io::stdin().lock();
    show(&ui, &Line::Notice(&format!("connected to {addr}")));

    let Some(name) = register(&ui, &mut to_server, &mut from_server, &mut input) else {
        leave(&ui, 0, "");
    };
    if let Err(e) = from_server.get_ref().set_read_timeout(None) {
        leave(&ui, 1, &format!("cannot use the connection: {e}"));
    }
    let reader_ui = Arc::clone(&ui);
    let spawned = thread::Builder::new()
        .name("receive".to_string())
        .spawn(move || receive(&reader_ui, from_server));
    if let Err(e) = spawned {
        leave(&ui, 1, &format!("cannot start the reader thread: {e}"));
    }
    talk(&ui, &mut to_server, &mut input, &name);
    leave(&ui, 0, "")
}

/// Asks for a name until the server takes one. `None`: the input ended first.
///
/// The contract has no reply to a good `USER`, only an `ERR` to a bad one, so silence is
/// ambiguous: was the name taken, or is the answer still on its way? Waiting for a quiet
/// moment would be slow on a good day and wrong on a busy one. Instead each `USER` is followed
/// by `MSG ` with an empty text, whose answer settles it: a server answers one client's lines
/// in order, and refuses an empty message with `ERR empty-message` from a registered client
/// but `ERR not-registered` from one that is not. So the answer comes one round trip after
/// the name was sent, and is not shown; an `ERR name-taken` before it is.
fn register(
    ui: &Mutex<Ui>,
    to_server: &mut TcpStream,
    from_server: &mut BufReader<TcpStream>,
    input: &mut StdinLock,
) -> Option<String> {
    show(ui, &Line::Notice("choose a name (1-32 bytes, no spaces) and press Enter"));
    if let Err(e) = from_server.get_ref().set_read_timeout(Some(ANSWER_TIMEOUT)) {
        leave(ui, 1, &format!("cannot use the connection: {e}"));
    }
    loop {
        let name = match read_input(input) {
            Input::End => return None,
            Input::NotText => {
                input_done(ui, Some(&Line::Notice("that is not valid UTF-8; try another")));
                continue;
            }
            Input::Line(line) => line.trim().to_string(),
        };
        if let Err(why) = check_name(&name) {
            input_done(ui, Some(&Line::Notice(&format!("{why}; try another"))));
            continue;
        }
        input_done(ui, None);
        send(ui, to_server, &format!("USER {name}\nMSG \n"));
        if name_accepted(ui, from_server) {
            let welcome = format!("you are {name}: type and press Enter; /quit or Ctrl-D leaves");
            show(ui, &Line::Notice(&welcome));
            return Some(name);
        }
        show(ui, &Line::Notice("choose another name"));
    }
}

/// Reads the server's lines up to the answer to the `MSG ` that followed a `USER` (see
/// `register`), showing the others, such as the reason a name was refused.
fn name_accepted(ui: &Mutex<Ui>, from_server: &mut BufReader<TcpStream>) -> bool {
    let mut refused = false;
    loop {
        let line = match read_server_line(from_server) {
            Ok(Some(line)) => line,
            Ok(None) => closed(ui, "", None),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                // A server that breaks the contract: go on with what we know.
                show(ui, &Line::Notice("the server did not answer in time"));
                return !refused;
            }
            Err(e) => closed(ui, "", Some(e)),
        };
        let parsed = parse_server_line(&line);
        match &parsed {
            ServerLine::Err { code, .. } if code == "empty-message" => return true,
            ServerLine::Err { code, .. } if code == "not-registered" => return false,
            ServerLine::Err { .. } => refused = true,
            _ => {}
        }
        show(ui, &shown(&parsed));
    }
}

/// Sends every line the user types as a message, until `/quit` or the end of the input.
fn talk(ui: &Mutex<Ui>, to_server: &mut TcpStream, input: &mut StdinLock, name: &str) {
    loop {
        let text = match read_input(input) {
            Input::End => return,
            Input::NotText => {
                input_done(ui, Some(&Line::Notice("not sent: the line is not valid UTF-8")));
                continue;
            }
            Input::Line(text) => text,
        };
        if text.trim() == "/quit" {
            return;
        }
        if text.is_empty() {
            input_done(ui, None);
            continue;
        }
        if let Err(why) = check_text(&text) {
            input_done(ui, Some(&Line::Notice(&why)));
            continue;
        }
        send(ui, to_server, &format!("MSG {text}\n"));
        input_done(ui, Some(&Line::Own { name, text: &text }));
    }
}

/// The reader thread: shows each line from the server as it arrives, until the connection ends.
fn receive(ui: &Mutex<Ui>, mut from_server: BufReader<TcpStream>) -> ! {
    let mut last = String::new();
    loop {
        match read_server_line(&mut from_server) {
            Ok(Some(line)) => {
                show(ui, &shown(&parse_server_line(&line)));
                last = line;
            }
            Ok(None) => closed(ui, &last, None),
            Err(e) => closed(ui, &last, Some(e)),
        }
    }
}

/// The server ended the connection (or it broke). A server that closes on purpose says why in
/// its last line (`ERR too-slow ...`); in a terminal that line vanishes with the split screen,
/// so it is repeated on standard error.
fn closed(ui: &Mutex<Ui>, last: &str, error: Option<io::Error>) -> ! {
    let mut why = "connection closed by server".to_string();
    if let Some(e) = error {
        why.push_str(&format!(" ({e})"));
    }
    if last.starts_with("ERR ") {
        why.push_str(&format!("; its last line: {}", sanitize(last)));
    }
    leave(ui, 1, &why)
}

fn shown(line: &ServerLine) -> Line<'_> {
    match line {
        ServerLine::Msg { name, text } => Line::Chat { name, text },
        ServerLine::Err { code, reason } => Line::ServerError { code, reason },
        ServerLine::Other(line) => Line::Other(line),
    }
}

fn send(ui: &Mutex<Ui>, to_server: &mut TcpStream, lines: &str) {
    if let Err(e) = to_server.write_all(lines.as_bytes()) {
        closed(ui, "", Some(e));
    }
}

/// Shows a line; if standard output is gone there is nobody left to talk to.
fn show(ui: &Mutex<Ui>, line: &Line) {
    let result = lock(ui).show(line);
    if let Err(e) = result {
        leave(ui, 1, &format!("cannot write to the screen: {e}"));
    }
}

fn input_done(ui: &Mutex<Ui>, line: Option<&Line>) {
    let result = lock(ui).input_done(line);
    if let Err(e) = result {
        leave(ui, 1, &format!("cannot write to the screen: {e}"));
    }
}

/// A thread that panicked while drawing ended the process (see `term::restore_on_panic`), so
/// a poisoned lock cannot be met; taking it over anyway is harmless.
fn lock(ui: &Mutex<Ui>) -> std::sync::MutexGuard<'_, Ui> {
    ui.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Input {
    Line(String),
    NotText,
    End,
}

/// One line typed by the user (or read from a pipe), without its LF or CR LF.
/// A read error counts as the end of the input: there is no other way to go on.
fn read_input(input: &mut StdinLock) -> Input {
    let mut bytes = Vec::new();
    match input.read_until(b'\n', &mut bytes) {
        Ok(0) | Err(_) => return Input::End,
        Ok(_) => {}
    }
    strip_line_end(&mut bytes);
    match String::from_utf8(bytes) {
        Ok(line) => Input::Line(line),
        Err(_) => Input::NotText,
    }
}

/// One line from the server without its line end; `None` when the server closed. A line that
/// is not UTF-8 is shown with U+FFFD in place of the bad bytes.
fn read_server_line(from_server: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if from_server.by_ref().take(MAX_RECEIVED).read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    strip_line_end(&mut bytes);
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn strip_line_end(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}
