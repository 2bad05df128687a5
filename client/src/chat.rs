//! The main thread: choose a name, then send every line the user types. In a terminal the
//! keys go through the line editor (`Ui::edit`); from a pipe, whole lines are read. What the
//! server sends is shown by the reader thread (`receive.rs`).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, StdinLock, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use crate::keys::Decoder;
use crate::protocol::{check_name, check_text, strip_line_end};
use crate::receive::{closed, receive};
use crate::ui::{Line, Typed, Ui};

/// How long the answer to a name may take before the user is told that we are still waiting.
const ANSWER_PATIENCE: Duration = Duration::from_secs(5);
/// The longest line kept from a pipe, in bytes; the rest of a longer one is read and dropped,
/// so that a file without line ends cannot fill the memory. Such a line is refused.
const MAX_PIPED_LINE: usize = 4096;
/// Bytes of keys taken from the terminal at a time. A paste of several lines may come in one
/// read; the lines it finishes wait in `Keyboard::Keys::finished`, at most one per byte.
const KEYS_READ: usize = 4096;

/// Runs the whole session; never returns: the process ends when the user leaves or the
/// server closes.
pub fn run(ui: Arc<Ui>, stream: TcpStream, addr: &str) -> ! {
    let from_server = match stream.try_clone() {
        Ok(clone) => clone,
        Err(e) => ui.leave(1, &format!("cannot use the connection: {e}")),
    };
    let mut to_server = stream;
    // The reader runs from the start, so that a server that turns us away at once
    // (`ERR server-full`) is heard before the user has typed a name. One answer at a time is
    // all the main thread waits for: a bounded channel of one, so a server that sends answers
    // no one asked for cannot fill the memory with them.
    let (answers_to_names, answers) = mpsc::sync_channel(1);
    let reader_ui = Arc::clone(&ui);
    let spawned = thread::Builder::new()
        .name("receive".to_string())
        .spawn(move || receive(&reader_ui, from_server, answers_to_names));
    if let Err(e) = spawned {
        ui.leave(1, &format!("cannot start the reader thread: {e}"));
    }
    ui.show(&Line::Notice(&format!("connected to {addr}")));
    let mut keyboard = Keyboard::new(ui.is_terminal());
    let Some(name) = register(&ui, &mut to_server, &answers, &mut keyboard) else {
        ui.leave(0, "");
    };
    talk(&ui, &mut to_server, &mut keyboard, &name);
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
    keyboard: &mut Keyboard,
) -> Option<String> {
    ui.show(&Line::Notice(
        "choose a name (1-32 bytes, no spaces) and press Enter",
    ));
    loop {
        let name = match keyboard.next(ui) {
            Input::End => return None,
            Input::NotText => {
                ui.show(&Line::Notice("that is not valid UTF-8; try another"));
                continue;
            }
            Input::TooLong => {
                ui.show(&Line::Notice(
                    "that is far too long for a name; try another",
                ));
                continue;
            }
            Input::Line(line) => line.trim().to_string(),
        };
        if let Err(why) = check_name(&name) {
            ui.show(&Line::Notice(&format!("{why}; try another")));
            continue;
        }
        // An answer that came before we asked is not the answer to this name.
        while answers.try_recv().is_ok() {}
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
fn talk(ui: &Ui, to_server: &mut TcpStream, keyboard: &mut Keyboard, name: &str) {
    loop {
        let text = match keyboard.next(ui) {
            Input::End => return,
            Input::NotText => {
                ui.show(&Line::Notice("not sent: the line is not valid UTF-8"));
                continue;
            }
            Input::TooLong => {
                ui.show(&Line::Notice(&format!(
                    "not sent: the line is longer than {MAX_PIPED_LINE} bytes"
                )));
                continue;
            }
            Input::Line(text) => text,
        };
        if text.trim() == "/quit" {
            return;
        }
        if text.is_empty() {
            continue;
        }
        if let Err(why) = check_text(&text) {
            ui.show(&Line::Notice(&why));
            continue;
        }
        send(ui, to_server, &format!("MSG {text}\n"));
        ui.show(&Line::Own { name, text: &text });
    }
}

fn send(ui: &Ui, to_server: &mut TcpStream, lines: &str) {
    if let Err(e) = to_server.write_all(lines.as_bytes()) {
        closed(ui, "", Some(e));
    }
}

/// One thing the user typed.
enum Input {
    /// A line, without its line end.
    Line(String),
    /// A line from a pipe that is not UTF-8.
    NotText,
    /// A line from a pipe longer than `MAX_PIPED_LINE`.
    TooLong,
    /// Ctrl-D on an empty line, or the end of the pipe.
    End,
}

/// Where typed lines come from.
enum Keyboard {
    /// Plain mode: whole lines, as a pipe or a file gives them.
    Lines(StdinLock<'static>),
    /// Terminal mode, in raw mode: keys as they are pressed, turned into lines by the editor.
    Keys {
        stdin: StdinLock<'static>,
        decoder: Decoder,
        /// What the last read finished and was not handled yet, oldest first.
        finished: VecDeque<Input>,
    },
}

impl Keyboard {
    fn new(terminal: bool) -> Keyboard {
        let stdin = io::stdin().lock();
        if terminal {
            Keyboard::Keys {
                stdin,
                decoder: Decoder::default(),
                finished: VecDeque::new(),
            }
        } else {
            Keyboard::Lines(stdin)
        }
    }

    /// The next thing typed, waiting for it. A read error counts as the end of the input:
    /// there is no other way to go on.
    fn next(&mut self, ui: &Ui) -> Input {
        match self {
            Keyboard::Lines(stdin) => read_line(stdin),
            Keyboard::Keys {
                stdin,
                decoder,
                finished,
            } => loop {
                if let Some(input) = finished.pop_front() {
                    return input;
                }
                let mut bytes = [0; KEYS_READ];
                let count = match stdin.read(&mut bytes) {
                    // The terminal hung up.
                    Ok(0) => return Input::End,
                    Ok(count) => count,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return Input::End,
                };
                let keys = decoder.feed(&bytes[..count]);
                finished.extend(ui.edit(keys).into_iter().map(|typed| match typed {
                    Typed::Line(line) => Input::Line(line),
                    Typed::End => Input::End,
                }));
            },
        }
    }
}

/// One line from a pipe or a file, without its LF or CR LF.
fn read_line(stdin: &mut StdinLock) -> Input {
    let mut bytes = Vec::new();
    let limit = MAX_PIPED_LINE as u64 + 1;
    match stdin.by_ref().take(limit).read_until(b'\n', &mut bytes) {
        Ok(0) | Err(_) => return Input::End,
        Ok(_) => {}
    }
    if bytes.len() > MAX_PIPED_LINE && bytes.last() != Some(&b'\n') {
        return match skip_line(stdin) {
            Ok(()) => Input::TooLong,
            Err(_) => Input::End,
        };
    }
    strip_line_end(&mut bytes);
    match String::from_utf8(bytes) {
        Ok(line) => Input::Line(line),
        Err(_) => Input::NotText,
    }
}

/// Reads and drops the rest of a line, a buffer at a time.
fn skip_line(stdin: &mut StdinLock) -> io::Result<()> {
    loop {
        let buffer = stdin.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                stdin.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                stdin.consume(all);
            }
        }
    }
}
