//! What the user sees. One `Ui` is the only writer of standard output, under its lock: the
//! reader thread shows what arrives, the main thread shows what the user sent.
//!
//! - Plain mode (a pipe or a file on either side): one line of text per event, no escape
//!   sequence, so scripts and tests can read the conversation.
//! - Terminal mode: the conversation scrolls in the upper rows, the user types on the last row
//!   (see `term`). The terminal stays in its normal line mode: the kernel echoes the keys and
//!   handles backspace, and hands us a whole line when Enter is pressed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::protocol::sanitize;
use crate::term;

/// Lines kept to repaint the conversation after a resize: more than any screen is tall.
const HISTORY: usize = 500;

/// One event of the conversation.
pub enum Line<'a> {
    /// Someone else's message, as the server sent it (untrusted).
    Chat { name: &'a str, text: &'a str },
    /// The user's own message, as it was sent.
    Own { name: &'a str, text: &'a str },
    /// `ERR <code> <reason>` from the server (untrusted).
    ServerError { code: &'a str, reason: &'a str },
    /// A server line we do not know, shown as it is (untrusted).
    Other(&'a str),
    /// The client talking to the user: prompts, local refusals.
    Notice(&'a str),
}

impl Line<'_> {
    /// The line as text; with `styled`, with colours for a terminal. Everything that came from
    /// the network (or the keyboard) goes through `sanitize` first; only our own escape
    /// sequences are added around it.
    fn render(&self, styled: bool) -> String {
        let (bold, red, normal) = if styled {
            (term::BOLD, term::RED, term::NORMAL)
        } else {
            ("", "", "")
        };
        match self {
            Line::Chat { name, text } | Line::Own { name, text } => {
                format!("{bold}{}{normal}: {}", sanitize(name), sanitize(text))
            }
            Line::ServerError { code, reason: "" } => {
                format!("{red}[server] {}{normal}", sanitize(code))
            }
            Line::ServerError { code, reason } => {
                format!(
                    "{red}[server] {}: {}{normal}",
                    sanitize(code),
                    sanitize(reason)
                )
            }
            Line::Other(line) => sanitize(line),
            Line::Notice(text) => format!("-- {}", sanitize(text)),
        }
    }
}

/// The screen, shared by both threads (`Arc<Ui>`); every method takes the lock for one
/// whole update.
pub struct Ui {
    output: Mutex<Output>,
}

enum Output {
    Plain(io::Stdout),
    Terminal(Screen),
}

/// The split screen: where the rows are, and what to paint when they move.
struct Screen {
    /// Standard output, unbuffered: each `write_all` of a redraw is one `write(2)`.
    tty: File,
    /// The size the screen was last split for.
    rows: u16,
    /// The conversation so far, rendered, newest last.
    history: VecDeque<String>,
}

impl Ui {
    pub fn plain() -> Ui {
        Ui {
            output: Mutex::new(Output::Plain(io::stdout())),
        }
    }

    /// Splits the screen. From here on, every way out (even a signal or a panic) restores it.
    pub fn terminal() -> io::Result<Ui> {
        // A duplicate of descriptor 1 as a `File`: `Stdout` is line-buffered and would send a
        // redraw in several writes, one per newline in it.
        let tty = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        term::restore_on_signals()?;
        let mut screen = Screen {
            tty,
            rows: term::rows(),
            history: VecDeque::new(),
        };
        term::set_active();
        screen.tty.write_all(&term::enter(screen.rows))?;
        Ok(Ui {
            output: Mutex::new(Output::Terminal(screen)),
        })
    }

    /// Adds one line to the conversation, without disturbing what the user is typing.
    pub fn show(&self, line: &Line) {
        let result = self.lock().draw(Some(line), false);
        if let Err(e) = result {
            self.leave(1, &format!("cannot write to the screen: {e}"));
        }
    }

    /// Called after each line the user entered, with what to show for it (if anything).
    pub fn input_done(&self, shown: Option<&Line>) {
        let result = self.lock().draw(shown, true);
        if let Err(e) = result {
            self.leave(1, &format!("cannot write to the screen: {e}"));
        }
    }

    /// Ends the client: puts the terminal back, says why on standard error (if there is
    /// anything to say), and exits with `status`. The lock is held to the end, so no other
    /// thread can draw on the restored screen.
    pub fn leave(&self, status: i32, why: &str) -> ! {
        let _output = self.lock();
        term::restore();
        if !why.is_empty() {
            eprintln!("{why}");
        }
        process::exit(status);
    }

    /// A thread that panicked while drawing ended the process (see `term::restore_on_panic`),
    /// so a poisoned lock is never met; taking it over anyway is harmless.
    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Output {
    fn draw(&mut self, line: Option<&Line>, after_enter: bool) -> io::Result<()> {
        match self {
            Output::Plain(stdout) => match line {
                Some(line) => writeln!(stdout, "{}", line.render(false)),
                None => Ok(()),
            },
            Output::Terminal(screen) => {
                screen.draw(line.map(|line| line.render(true)), after_enter)
            }
        }
    }
}

impl Screen {
    /// Adds `line` (if any) to the conversation and draws it, in one write.
    ///
    /// With `after_enter`, the user just pressed Enter. That left the typed text on the input
    /// row, with the cursor back at its column 1: the kernel echoed CR LF, and a line feed on
    /// the last row of the screen, below the scroll region, moves nothing (a terminal scrolls
    /// only when the cursor is on the region's bottom margin). So erasing from the cursor to
    /// the end of the row empties the input row and leaves the conversation alone. Erasing
    /// from the cursor, not the whole row, keeps a key typed in the meantime, which the kernel
    /// has already echoed.
    ///
    /// The size is asked anew on every draw, rather than caught with a SIGWINCH handler: it is
    /// the simplest scheme that is always right, since nothing needs drawing between draws.
    /// After a resize, terminals differ in where they leave the rows and the cursor, so the
    /// whole screen is redrawn from `history` and the input row starts empty. A half-typed
    /// line is still in the kernel's line buffer: Enter sends it, Ctrl-R (the terminal's
    /// "reprint" key) shows it again.
    fn draw(&mut self, line: Option<String>, after_enter: bool) -> io::Result<()> {
        let is_new_line = line.is_some();
        if let Some(line) = line {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(line);
        }
        let rows = term::rows();
        let mut out = Vec::new();
        if rows != self.rows {
            self.rows = rows;
            let skip = self.history.len().saturating_sub(usize::from(rows) - 1);
            let lines: Vec<&str> = self.history.iter().skip(skip).map(String::as_str).collect();
            out = term::redraw_all(rows, &lines);
        } else {
            if after_enter {
                out.extend(term::CLEAR_TO_END_OF_ROW);
            }
            if is_new_line && let Some(newest) = self.history.back() {
                out.extend(term::show_line(rows, newest));
            }
        }
        self.tty.write_all(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_have_no_escape_sequences() {
        let chat = Line::Chat {
            name: "bob",
            text: "hi \u{1b}[2J",
        };
        assert_eq!(chat.render(false), "bob: hi ^[[2J");
        let own = Line::Own {
            name: "alice",
            text: "hello",
        };
        assert_eq!(own.render(false), "alice: hello");
        let refusal = Line::ServerError {
            code: "name-taken",
            reason: "in use",
        };
        assert_eq!(refusal.render(false), "[server] name-taken: in use");
        let bare = Line::ServerError {
            code: "too-slow",
            reason: "",
        };
        assert_eq!(bare.render(false), "[server] too-slow");
        assert_eq!(Line::Other("HELLO\u{7}").render(false), "HELLO^G");
        assert_eq!(
            Line::Notice("choose a name").render(false),
            "-- choose a name"
        );
    }

    #[test]
    fn terminal_lines_add_only_our_own_styles() {
        let chat = Line::Chat {
            name: "b\u{1b}[31mob",
            text: "hi",
        };
        assert_eq!(chat.render(true), "\u{1b}[1mb^[[31mob\u{1b}[0m: hi");
        let refusal = Line::ServerError {
            code: "name-taken",
            reason: "in use",
        };
        assert_eq!(
            refusal.render(true),
            "\u{1b}[31m[server] name-taken: in use\u{1b}[0m"
        );
    }
}
