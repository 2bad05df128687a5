//! The main thread: choose a name, then send every line the user types. What the server sends
//! is shown by the reader thread (`receive.rs`).

use std::io::{self, BufRead, BufReader, StdinLock, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use crate::protocol::{check_name, check_text, strip_line_end};
use crate::receive::{closed, receive};
use crate::ui::{Line, Ui};

/// How long the answer to a name may take before the user is told that we are still waiting.
const ANSWER_PATIENCE: Duration = Duration::from_secs(5);

/// Runs the whole session; never returns: the process ends when the user leaves or the
/// server closes.
pub fn run(ui: Ui, stream: TcpStream, addr: &str) -> ! {
    let ui = Arc::new(ui);
    let from_server = match stream.try_clone() {
        Ok(clone) => BufReader::new(clone),
        Err(e) => ui.leave(1, &format!("cannot use the connection: {e}")),
    };
    let mut to_server = stream;
    // The reader runs from the start, so that a server that turns us away at once
    // (`ERR server-full`) is heard before the user has typed a name.
    let (answers_to_names, answers) = mpsc::channel();
    let reader_ui = Arc::clone(&ui);
    let spawned = thread::Builder::new()
        .name("receive".to_string())
        .spawn(move || receive(&reader_ui, from_server, answers_to_names));
    if let Err(e) = spawned {
        ui.leave(1, &format!("cannot start the reader thread: {e}"));
    }
    ui.show(&Line::Notice(&format!("connected to {addr}")));
    let mut input = io::stdin().lock();
    let Some(name) = register(&ui, &mut to_server, &answers, &mut input) else {
        ui.leave(0, "");
    };
    talk(&ui, &mut to_server, &mut input, &name);
    ui.leave(0, "")
}

/// Asks for a name until the server takes one. `None`: the input ended first.
///
/// The contract has no reply to a good `USER`, only an `ERR` to a bad one, so silence is
/// ambiguous: was the name taken, or is the answer still on its way? Waiting for a quiet
/// moment would be slow on a good day and wrong on a busy one. Instead each `USER` is followed
/// by `MSG ` with an empty text, whose answer settles it: a server answers one client's lines
/// in order, and refuses an empty message with `ERR empty-message` from a registered client
/// but `ERR not-registered` from one that is not. The reader thread passes that answer on
/// (`answers`) instead of showing it; an `ERR name-taken` before it is shown as usual.
fn register(
    ui: &Ui,
    to_server: &mut TcpStream,
    answers: &Receiver<bool>,
    input: &mut StdinLock,
) -> Option<String> {
    ui.show(&Line::Notice(
        "choose a name (1-32 bytes, no spaces) and press Enter",
    ));
    loop {
        let name = match read_input(input) {
            Input::End => return None,
            Input::NotText => {
                ui.input_done(Some(&Line::Notice("that is not valid UTF-8; try another")));
                continue;
            }
            Input::Line(line) => line.trim().to_string(),
        };
        if let Err(why) = check_name(&name) {
            ui.input_done(Some(&Line::Notice(&format!("{why}; try another"))));
            continue;
        }
        ui.input_done(None);
        send(ui, to_server, &format!("USER {name}\nMSG \n"));
        if await_answer(ui, answers) {
            let welcome = format!("you are {name}: type and press Enter; /quit or Ctrl-D leaves");
            ui.show(&Line::Notice(&welcome));
            return Some(name);
        }
        ui.show(&Line::Notice("choose another name"));
    }
}

/// Waits for the reader thread to pass on the answer to a name: `true` if it was taken.
/// Without an answer the wait goes on (saying so): guessing would be wrong one way or the
/// other, and if the server closes, the reader thread ends the client.
fn await_answer(ui: &Ui, answers: &Receiver<bool>) -> bool {
    match answers.recv_timeout(ANSWER_PATIENCE) {
        Ok(accepted) => return accepted,
        Err(RecvTimeoutError::Timeout) => {
            ui.show(&Line::Notice(
                "no answer from the server yet; Ctrl-C gives up",
            ));
        }
        Err(RecvTimeoutError::Disconnected) => {}
    }
    match answers.recv() {
        Ok(accepted) => accepted,
        // The reader thread is gone, which only happens as the process ends.
        Err(_) => ui.leave(1, "connection closed by server"),
    }
}

/// Sends every line the user types as a message, until `/quit` or the end of the input.
fn talk(ui: &Ui, to_server: &mut TcpStream, input: &mut StdinLock, name: &str) {
    loop {
        let text = match read_input(input) {
            Input::End => return,
            Input::NotText => {
                ui.input_done(Some(&Line::Notice("not sent: the line is not valid UTF-8")));
                continue;
            }
            Input::Line(text) => text,
        };
        if text.trim() == "/quit" {
            return;
        }
        if text.is_empty() {
            ui.input_done(None);
            continue;
        }
        if let Err(why) = check_text(&text) {
            ui.input_done(Some(&Line::Notice(&why)));
            continue;
        }
        send(ui, to_server, &format!("MSG {text}\n"));
        ui.input_done(Some(&Line::Own { name, text: &text }));
    }
}

fn send(ui: &Ui, to_server: &mut TcpStream, lines: &str) {
    if let Err(e) = to_server.write_all(lines.as_bytes()) {
        closed(ui, "", Some(e));
    }
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
