//! The chat client: type on the last row while the conversation scrolls above it.
//!
//! **The question.** Messages arrive at any moment, also while the user is half-way through a
//! line. How can one terminal show them without mixing them into the line being typed? There
//! are two classic answers, and `term.rs` shows both side by side:
//! - *Line mode* (canonical mode): the kernel's line discipline echoes the keys, handles
//!   Backspace, and hands the program a whole line on Enter. The program prints each message
//!   with "save the cursor, print above, restore the cursor", and never touches the line.
//!   Almost no code, but the program never sees the line before Enter, so it cannot redraw it
//!   (after a resize, or when it is wider than the row), arrows insert `^[[D`, there is no
//!   history, and what is half-typed when the program exits is left in the kernel's queue,
//!   where the shell reads it as a command. The client's first version did this.
//! - *Raw mode* (irssi, WeeChat, readline, linenoise, and this client): the kernel hands over
//!   every key as it is pressed and echoes nothing. The program keeps the line itself
//!   (`editor.rs`), and paints the messages and the input row from what it knows, so
//!   resizes, long lines, arrows, history and completion all follow. It costs the code to
//!   decode keys (`keys.rs`), to measure characters (`width.rs`), to edit, and a duty: the
//!   terminal must be given back as it was on every way out (`/quit`, Ctrl-D, Ctrl-C, the
//!   server closing, `ERR too-slow`, `kill`, a hang-up, a panic), or the shell is left
//!   without echo; and Ctrl-Z must give it back too, and `fg` take it again. Nothing typed is
//!   left for the shell: every key was read by the client, and `tcflush` throws away what
//!   arrived after the last read.
//!
//! **Design.** Three threads share one `Ui` (`ui.rs`), the only writer of the screen, under
//! one lock: the main thread reads keys, edits the line and sends what Enter finishes
//! (`chat.rs`); the reader thread shows what the server sends, a batch of lines at a time
//! (`receive.rs`); the signal thread waits for Ctrl-C, Ctrl-Z, `fg`, a resize, `kill` and a
//! hang-up, and handles them with ordinary code (`ui::watch_signals`). Each update of the
//! screen (new lines and the input row, or the whole screen) is built first and sent with
//! one `write`. In a pipe or a file the client prints one plain line per event instead, with
//! no escape sequence, which is what scripts and tests read.
//!
//! **Bounds.** Whatever the server sends, memory stays bounded: a server line is read in
//! pieces of at most 4 KiB, a batch holds at most 1000 lines, the screen keeps the last 500
//! lines (1 MiB at most) to repaint, the line being typed holds at most 4096 characters (a
//! piped line 4096 bytes), the history 100 lines, Tab 200 names, and the answer to a name
//! waits in a channel of one. A flood costs one update per batch, not one per line,
//! and only the lines that stay on screen are sent to the terminal.
//!
//! **Safety.** Names and texts come from other people: every control character and escape
//! sequence in them is shown as text (`ESC` as `^[`), never obeyed, and invisible characters
//! (zero-width space, bidi controls) are shown as `<U+200B>` (`protocol::sanitize`).
//!
//! **Measure.** `strace -f -e trace=write ./target/release/client` shows one `write` per
//! update; `grep -E 'VmHWM|VmRSS' /proc/$(pgrep -n -x client)/status` its memory during a
//! flood. The terminal tests (`tests/terminal.rs`) drive it in `tmux` and print both figures
//! for a flood of 100,000 lines.
//!
//! **Try it.** `make step1 client && ./target/release/step1_naive`, then in two other
//! terminals `./target/release/client` (or `client 127.0.0.1:7878`), a name each, and chat.
//! Arrows, Home/End, Ctrl-A/E/U/K/W, Up/Down and Tab work as in a shell; `/quit` or Ctrl-D
//! on an empty line leaves; Ctrl-Z and `fg` work too. `printf 'alice\nhello\n' |
//! ./target/release/client` sends `hello` as alice from a script.

mod chat;
mod editor;
mod keys;
mod protocol;
mod receive;
mod sys;
mod term;
mod ui;
mod width;

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::net::{TcpStream, ToSocketAddrs};
use std::process;
use std::sync::Arc;
use std::time::Duration;

use ui::Ui;

const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// A server on another machine that does not answer should not hang the client for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let addr = address(std::env::args_os().skip(1).collect());
    let stream = match connect(&addr) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("cannot connect to {addr}: {}", describe(&e));
            process::exit(1);
        }
    };
    term::restore_on_panic();
    // `is_terminal` is isatty(3): both sides must be a terminal for the split screen.
    let ui = if io::stdin().is_terminal() && io::stdout().is_terminal() {
        Ui::terminal().unwrap_or_else(|e| {
            eprintln!("cannot set up the terminal ({e}); going on in plain mode");
            Ui::plain()
        })
    } else {
        Ui::plain()
    };
    let ui = Arc::new(ui);
    if let Err(e) = ui::watch_signals(&ui) {
        ui.leave(1, &format!("cannot start the signal thread: {e}"));
    }
    chat::run(ui, stream, &addr)
}

/// The address given as the only argument, or the default.
fn address(args: Vec<OsString>) -> String {
    match args.as_slice() {
        [] => DEFAULT_ADDR.to_string(),
        [arg] if arg.to_str().is_some_and(|arg| !arg.starts_with('-')) => {
            arg.to_string_lossy().into_owned()
        }
        _ => {
            eprintln!("usage: client [ADDR]   (default {DEFAULT_ADDR})");
            process::exit(2);
        }
    }
}

/// Tries every address the name resolves to, in order; the last error says why none worked.
fn connect(addr: &str) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for socket_addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket_addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// An error as a person reads it: "Connection refused", without "(os error 111)".
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}
