//! The chat client: type on the last row while the conversation scrolls above it.
//!
//! **Design.** Two threads share one connection: the main thread reads what the user types,
//! a line at a time, and sends it; a reader thread prints whatever the server sends, whenever
//! it arrives. In a terminal, the screen is split with a scroll region: messages scroll in the
//! upper rows, and each is printed with one write that saves the cursor, prints at the bottom
//! of the region and puts the cursor back, so a half-typed line is never clobbered
//! (`term.rs` lists every escape sequence). Anywhere else (a pipe, a file) it prints one plain
//! line per event, which is what scripts and tests read.
//!
//! **Trade-off.** The terminal stays in its normal line mode: the kernel echoes keys and
//! handles backspace, which keeps the client small and std-only, but the client never sees a
//! line before Enter. So it cannot redraw a half-typed line itself: after a window resize
//! the screen is redrawn and the line is hidden (still there: Enter sends it, Ctrl-R shows
//! it), and a line wider than the window overwrites itself on the last row (it is still sent
//! whole). A raw-mode line editor would fix both, at the cost of reimplementing editing.
//!
//! **Safety.** Names and texts come from other people: every control character and escape
//! sequence in them is shown as text (`ESC` as `^[`), never obeyed (`protocol::sanitize`).
//!
//! **Try it.** `make step1 client && ./target/release/step1_naive`, then in two other
//! terminals `./target/release/client` (or `client 127.0.0.1:7878`), a name each, and chat.
//! `/quit` or Ctrl-D leaves. `printf 'alice\nhello\n' | ./target/release/client` sends
//! `hello` as alice from a script.

mod chat;
mod protocol;
mod receive;
mod term;
mod ui;

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::net::{TcpStream, ToSocketAddrs};
use std::process;
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
