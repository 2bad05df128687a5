//! What the user sees, and what the user types in a terminal. One `Ui` is the only writer of
//! standard output, under its lock: the reader thread shows what arrives, the main thread
//! shows what the user typed, the signal thread repaints after a resize or `fg`.
//!
//! - Plain mode (a pipe or a file on either side): one line of text per event, no escape
//!   sequence, so scripts and tests can read the conversation.
//! - Terminal mode: the conversation scrolls in the upper rows, each line after the local time
//!   (`HH:MM`); the user types on the last row, in raw mode. The line editor (`editor.rs`)
//!   lives here, under the same lock, so that every update can paint the input row from what
//!   it holds (`term.rs` explains why, and what the other way of doing it costs).

use std::collections::VecDeque;
use std::ffi::c_int;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::editor::{Editor, Names, Outcome};
use crate::keys::Key;
use crate::protocol::sanitize;
use crate::sys;
use crate::term::{self, Size};

/// Lines kept to repaint the conversation after a resize: more than any screen is tall...
const KEPT_LINES: usize = 500;
/// ...and at most this many bytes of them, so that long lines cannot make it a lot of memory.
const KEPT_BYTES: usize = 1 << 20;

/// The signals the signal thread waits for. They are blocked in every thread (the others
/// inherit the mask of the main thread, which blocks them before starting any), so none of
/// them ever interrupts anything: each waits, pending, until `sigwait` takes it, and is then
/// handled by ordinary code that may take locks and allocate, which a signal handler may not.
const SIGNALS: [c_int; 7] = [
    sys::SIGINT,
    sys::SIGQUIT,
    sys::SIGTERM,
    sys::SIGHUP,
    sys::SIGTSTP,
    sys::SIGCONT,
    sys::SIGWINCH,
];

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

/// What the keys typed in a terminal finished.
pub enum Typed {
    /// Enter: the line, as typed.
    Line(String),
    /// Ctrl-D on an empty line.
    End,
}

/// The screen, shared by all threads (`Arc<Ui>`); every method takes the lock for one whole
/// update, which it sends with one `write`.
pub struct Ui {
    output: Mutex<Output>,
}

enum Output {
    Plain(io::Stdout),
    Terminal(Box<Screen>),
}

/// The split screen and the line being typed.
struct Screen {
    /// Standard output, unbuffered: each `write_all` of an update is one `write(2)`.
    tty: File,
    /// The size the screen was last painted for.
    size: Size,
    /// The conversation so far, rendered, newest last.
    conversation: Conversation,
    editor: Editor,
    /// Who spoke, for Tab.
    names: Names,
}

impl Ui {
    pub fn plain() -> Ui {
        Ui {
            output: Mutex::new(Output::Plain(io::stdout())),
        }
    }

    /// Takes over the terminal: raw mode, the split screen. From here on, every way out (even
    /// a signal or a panic) restores it. Must be called before any other thread is started,
    /// so that they all inherit the blocked signals; `watch_signals` then handles them.
    pub fn terminal() -> io::Result<Ui> {
        if !sys::SUPPORTED {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "raw mode is declared for Linux only (sys.rs)",
            ));
        }
        sys::block_signals(&SIGNALS)?;
        match Screen::take_over() {
            Ok(screen) => Ok(Ui {
                output: Mutex::new(Output::Terminal(Box::new(screen))),
            }),
            Err(e) => {
                // Plain mode follows, where the signals keep their default actions.
                let _ = sys::unblock_signals(&SIGNALS);
                Err(e)
            }
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(*self.lock(), Output::Terminal(_))
    }

    /// Adds one line to the conversation, without disturbing what the user is typing.
    pub fn show(&self, line: &Line) {
        self.show_all(std::slice::from_ref(line));
    }

    /// Adds lines to the conversation, all in one update.
    pub fn show_all(&self, lines: &[Line]) {
        let result = match &mut *self.lock() {
            Output::Plain(stdout) => lines
                .iter()
                .try_for_each(|line| writeln!(stdout, "{}", line.render(false))),
            Output::Terminal(screen) => {
                let rendered = screen.render(lines);
                screen.update(rendered, false)
            }
        };
        if let Err(e) = result {
            self.leave(1, &format!("cannot write to the screen: {e}"));
        }
    }

    /// Applies keys to the line editor and paints the result once; returns what they finished
    /// (lines, and Ctrl-D on an empty line), in the order typed. Terminal mode only.
    pub fn edit(&self, keys: Vec<Key>) -> Vec<Typed> {
        let result = match &mut *self.lock() {
            Output::Plain(_) => Ok(Vec::new()),
            Output::Terminal(screen) => screen.edit(keys),
        };
        result.unwrap_or_else(|e| self.leave(1, &format!("cannot write to the screen: {e}")))
    }

    /// Ends the client: puts the terminal back, says why on standard error (if there is
    /// anything to say), and exits with `status`. The lock is held to the end, so no other
    /// thread can draw on the restored screen.
    pub fn leave(&self, status: i32, why: &str) -> ! {
        let _output = self.lock();
        term::restore();
        if !why.is_empty() {
            // Not `eprintln!`, which panics when it cannot write (a terminal that hung up).
            let _ = writeln!(io::stderr(), "{why}");
        }
        process::exit(status);
    }

    /// One signal, taken by the signal thread.
    fn on_signal(&self, signal: c_int) {
        if matches!(
            signal,
            sys::SIGINT | sys::SIGQUIT | sys::SIGTERM | sys::SIGHUP
        ) {
            // 128 + the signal number is the shell's convention for "ended by a signal".
            self.leave(128 + signal, "");
        }
        let result = match &mut *self.lock() {
            Output::Plain(_) => Ok(()),
            Output::Terminal(screen) => match signal {
                sys::SIGWINCH => screen.follow_resize(),
                sys::SIGTSTP => screen.suspend(),
                _ => screen.resume(),
            },
        };
        if let Err(e) = result {
            self.leave(1, &format!("cannot take the terminal back: {e}"));
        }
    }

    /// A thread that panicked while drawing ended the process (see `term::restore_on_panic`),
    /// so a poisoned lock is never met; taking it over anyway is harmless.
    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// In terminal mode, starts the thread that waits for the signals of `SIGNALS` and handles
/// them. In plain mode there is nothing to do: the signals keep their default actions.
pub fn watch_signals(ui: &Arc<Ui>) -> io::Result<()> {
    if !ui.is_terminal() {
        return Ok(());
    }
    let ui = Arc::clone(ui);
    thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            loop {
                match sys::wait_for_signal(&SIGNALS) {
                    Ok(signal) => ui.on_signal(signal),
                    Err(e) => ui.leave(1, &format!("cannot wait for signals: {e}")),
                }
            }
        })?;
    Ok(())
}

impl Screen {
    /// Raw mode, the alternate screen, split and painted.
    fn take_over() -> io::Result<Screen> {
        sys::init_time_zone();
        // A duplicate of descriptor 1 as a `File`: `Stdout` is line-buffered and would send an
        // update in several writes, one per newline in it.
        let tty = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let mut screen = Screen {
            tty,
            size: term::size(),
            conversation: Conversation::default(),
            editor: Editor::default(),
            names: Names::default(),
        };
        term::take_over()?;
        if let Err(e) = screen.enter() {
            term::restore();
            return Err(e);
        }
        Ok(screen)
    }

    /// The alternate screen, split, painted.
    fn enter(&mut self) -> io::Result<()> {
        let mut out = term::ENTER.to_vec();
        out.extend(self.paint_all());
        self.tty.write_all(&out)
    }

    /// The whole screen: conversation and input row.
    fn paint_all(&self) -> Vec<u8> {
        let region = usize::from(self.size.rows - 1);
        let lines = self.conversation.last(region);
        let view = self.editor.view(usize::from(self.size.cols));
        term::paint_all(self.size, &lines, &view.text, view.cursor)
    }

    /// Lines as the conversation shows them: the time, then the line with its colours. The
    /// names of the people who spoke are remembered for Tab.
    fn render(&mut self, lines: &[Line]) -> Vec<String> {
        let (hour, minute) = sys::local_hour_minute();
        let mut rendered = Vec::with_capacity(lines.len());
        for line in lines {
            if let Line::Chat { name, .. } = line {
                self.names.seen(name);
            }
            rendered.push(format!("{hour:02}:{minute:02} {}", line.render(true)));
        }
        rendered
    }

    /// Adds `rendered` lines to the conversation and paints them, then the input row, in one
    /// write. The whole screen is painted instead when `full` asks for it, or when its size
    /// changed since the last update (a SIGWINCH on its way).
    fn update(&mut self, rendered: Vec<String>, full: bool) -> io::Result<()> {
        let size = term::size();
        let out = if full || size != self.size {
            self.size = size;
            self.conversation.extend(rendered);
            self.paint_all()
        } else {
            let view = self.editor.view(usize::from(size.cols));
            let shown: Vec<&str> = rendered.iter().map(String::as_str).collect();
            let out = term::add_lines(size, &shown, &view.text, view.cursor);
            self.conversation.extend(rendered);
            out
        };
        self.tty.write_all(&out)
    }

    fn edit(&mut self, keys: Vec<Key>) -> io::Result<Vec<Typed>> {
        let mut typed = Vec::new();
        let mut notices = Vec::new();
        let mut full = false;
        for key in keys {
            match self.editor.apply(key, &self.names) {
                Outcome::Unchanged | Outcome::Edited => {}
                Outcome::Submit(line) => typed.push(Typed::Line(line)),
                Outcome::Leave => {
                    typed.push(Typed::End);
                    break;
                }
                Outcome::Candidates(names) => notices.push(format!("names: {}", names.join(" "))),
                Outcome::Redraw => full = true,
            }
        }
        let lines: Vec<Line> = notices.iter().map(|text| Line::Notice(text)).collect();
        let rendered = self.render(&lines);
        self.update(rendered, full)?;
        Ok(typed)
    }

    /// SIGWINCH: paints the whole screen for its new size at once, draft and cursor intact.
    fn follow_resize(&mut self) -> io::Result<()> {
        let size = term::size();
        if size == self.size {
            return Ok(());
        }
        self.size = size;
        self.tty.write_all(&self.paint_all())
    }

    /// SIGTSTP (Ctrl-Z): gives the terminal back as the shell left it, stops the process, and
    /// once `fg` continues it, takes the terminal again and paints everything, draft included.
    /// The lock is held throughout, so no other thread draws on the shell's screen meanwhile.
    fn suspend(&mut self) -> io::Result<()> {
        term::restore();
        sys::stop_self()?;
        term::take_over()?;
        self.size = term::size();
        self.enter()
    }

    /// SIGCONT: the process was stopped and continued. After our own Ctrl-Z, `suspend` has
    /// painted already and this paints once more; after a `kill -STOP` from elsewhere, the
    /// shell may have changed the terminal's settings meanwhile. Either way, the settings and
    /// the screen are made ours again.
    fn resume(&mut self) -> io::Result<()> {
        term::take_over()?;
        self.size = term::size();
        self.tty.write_all(&self.paint_all())
    }
}

/// The last lines shown, bounded both in number and in bytes.
#[derive(Default)]
struct Conversation {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Conversation {
    fn extend(&mut self, lines: Vec<String>) {
        for line in lines {
            self.bytes += line.len();
            self.lines.push_back(line);
            while self.lines.len() > KEPT_LINES || (self.bytes > KEPT_BYTES && self.lines.len() > 1)
            {
                if let Some(oldest) = self.lines.pop_front() {
                    self.bytes -= oldest.len();
                }
            }
        }
    }

    /// The newest `count` lines, oldest first.
    fn last(&self, count: usize) -> Vec<&str> {
        let skip = self.lines.len().saturating_sub(count);
        self.lines.iter().skip(skip).map(String::as_str).collect()
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
