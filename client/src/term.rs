//! The terminal: its modes, the escape sequences that split the screen, and the way back to
//! how the shell left it.
//!
//! **Two answers to the same question.** Messages arrive at any moment while the user types:
//! how can they be printed without clobbering the line being typed?
//!
//! 1. *Canonical mode and save/restore-cursor redraws* (the client's first version, in the
//!    history of this file). The terminal stays in its normal line mode: the kernel's line
//!    discipline echoes each key, handles Backspace and Ctrl-U, and hands the program a whole
//!    line on Enter. To print a message, the program saves the cursor, prints at the bottom
//!    of the scroll region, and restores the cursor; the half-typed line, which only the
//!    kernel knows, is left alone. One message is
//!    `ESC 7` `ESC [ r-1 ; 1 H` CR `ESC D` *text* `ESC 8`.
//!    It costs almost no code, but the program never sees the line before Enter, so it cannot
//!    redraw it: a resize hides it, a line wider than the row overwrites itself, arrow keys
//!    insert `^[[D`, there is no history, and whatever is half-typed when the program exits
//!    stays in the kernel's queue, where the shell reads it as a command. The kernel is also
//!    a second writer to the screen (the echo), so every redraw must reach the terminal in one
//!    piece: no LF, which the kernel cuts output at.
//! 2. *Raw mode and a line editor* (this client, like readline, linenoise, irssi). `ICANON`
//!    and `ECHO` are off (`raw` below): every key reaches the program as it is pressed, and
//!    nothing is echoed. The program keeps the line itself (`editor.rs`) and is the only
//!    writer to the screen, so each update paints the new messages and then the whole input
//!    row from what it knows. One message is
//!    `ESC [ r-1 ; 1 H` CR `ESC D` *text* `ESC [ r ; 1 H` *input row* `ESC [ K` `ESC [ r ; x H`,
//!    and a batch of messages is the same with more *CR `ESC D` text* in the middle.
//!    Resizes, long lines, arrows and history all follow. The cost is the code: decoding keys
//!    (`keys.rs`), editing, display widths (`width.rs`), and the duty to give the terminal
//!    back on every way out (a client that dies in raw mode leaves a shell that does not
//!    echo; `restore` below), on Ctrl-Z, and to take it again and repaint on `fg`.
//!
//! Escape sequences (ESC is the byte 0x1b; `r` rows, counted from 1):
//!
//! | bytes              | name    | meaning                                                      |
//! | ------------------ | ------- | ------------------------------------------------------------ |
//! | `ESC [ ? 1049 h`   |         | switch to the alternate screen, saving the cursor            |
//! | `ESC [ ? 1049 l`   |         | back to the normal screen: the shell's text and cursor return |
//! | `ESC [ H`          | CUP     | cursor to row 1, column 1                                    |
//! | `ESC [ 2 J`        | ED      | erase the whole screen                                       |
//! | `ESC [ 1 ; r-1 r`  | DECSTBM | scroll region = rows 1..r-1; the last row stays out of it    |
//! | `ESC [ r`          | DECSTBM | scroll region = the whole screen again                      |
//! | `ESC [ y ; x H`    | CUP     | cursor to row y, column x                                    |
//! | `ESC [ K`          | EL      | erase from the cursor to the end of the row                  |
//! | `ESC [ 1 m`        | SGR     | bold (a sender's name)                                       |
//! | `ESC [ 31 m`       | SGR     | red text (a server error)                                    |
//! | `ESC [ 0 m`        | SGR     | normal text again                                            |
//! | CR                 |         | cursor to column 1                                           |
//! | `ESC D`            | IND     | cursor down one row; on the bottom row of the scroll region, |
//! |                    |         | scrolls the region (and only the region) up one row instead |
//! | `ESC 7`, `ESC 8`   | DECSC, DECRC | save, restore the cursor: answer 1 only; answer 2 always |
//! |                    |         | knows where the cursor belongs, and puts it there with CUP   |
//!
//! Every function here that draws only builds bytes; the caller writes them with one `write`
//! under the screen's lock, so the threads never interleave. With `ECHO` off, the kernel
//! writes nothing of its own in between.

use std::fmt::Write as _;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::{self, Termios};

/// Used when the size cannot be read.
const DEFAULT_SIZE: Size = Size { rows: 24, cols: 80 };
/// A scroll region needs at least two rows above the input row to be worth its name.
const MIN_ROWS: u16 = 3;
/// The input row needs a column for a character and one for the cursor.
const MIN_COLS: u16 = 2;

/// Leaves the split screen: normal colours, a full-screen scroll region, the normal screen.
pub const RESET: &[u8] = b"\x1b[0m\x1b[r\x1b[?1049l";
/// Switches to the alternate screen; written once on the way in (and after `fg`), as a second
/// one would save the cursor again, and the way out would then restore the wrong one.
pub const ENTER: &[u8] = b"\x1b[?1049h";
pub const BOLD: &str = "\x1b[1m";
pub const RED: &str = "\x1b[31m";
pub const NORMAL: &str = "\x1b[0m";

/// The settings the terminal had before the client changed them, to put back on the way out.
static ORIGINAL: OnceLock<Termios> = OnceLock::new();
/// True while the terminal is ours (raw and split), so exactly one way out restores it.
static ACTIVE: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

/// The size of the terminal on standard output, asked anew on every call.
pub fn size() -> Size {
    match sys::window_size() {
        Some((rows, cols)) => Size {
            rows: rows.max(MIN_ROWS),
            cols: cols.max(MIN_COLS),
        },
        None => DEFAULT_SIZE,
    }
}

/// Raw mode, as far as this client needs it:
/// - `ICANON` off: each key is handed over as it is pressed, not a line at a time, and the
///   kernel's own editing (Backspace, Ctrl-U, Ctrl-W) is off, the editor does it;
/// - `ECHO` off: the kernel prints nothing, the client paints the input row;
/// - `IEXTEN` off: Ctrl-V and Ctrl-O reach the client instead of being acted on;
/// - `IXON` off: Ctrl-S would freeze the output, and with it every thread that draws;
/// - `ICRNL` off: Enter arrives as the CR it is;
/// - `VMIN` 1, `VTIME` 0: `read` waits for at least one byte, for as long as it takes.
///
/// `ISIG` stays on (or is turned on): Ctrl-C, Ctrl-\ and Ctrl-Z make the kernel send SIGINT,
/// SIGQUIT and SIGTSTP, which `ui::watch_signals` handles even while the main thread is busy.
fn raw(original: &Termios) -> Termios {
    let mut mode = *original;
    mode.c_lflag &= !(sys::ICANON | sys::ECHO | sys::IEXTEN);
    mode.c_lflag |= sys::ISIG;
    mode.c_iflag &= !(sys::IXON | sys::ICRNL);
    mode.c_cc[sys::VMIN] = 1;
    mode.c_cc[sys::VTIME] = 0;
    mode
}

/// Puts the terminal in raw mode and marks it as ours: from here on, every way out must call
/// `restore`. The first call remembers the settings to go back to.
pub fn take_over() -> io::Result<()> {
    let original = match ORIGINAL.get() {
        Some(original) => *original,
        None => {
            let original = sys::get_mode()?;
            *ORIGINAL.get_or_init(|| original)
        }
    };
    sys::set_mode(&raw(&original))?;
    ACTIVE.store(true, Ordering::SeqCst);
    Ok(())
}

/// Gives the terminal back, once, whichever way out gets here first: the normal screen, the
/// original settings, and nothing left of what was typed for the shell to read. It takes no
/// lock and allocates nothing, so a panicking thread can call it while another one holds the
/// screen.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    sys::write_stdout(RESET);
    if let Some(original) = ORIGINAL.get() {
        // Nothing can be done about a failure on the way out; the shell's `reset` fixes it.
        let _ = sys::set_mode(original);
    }
    let _ = sys::discard_typed_input();
}

/// A panic anywhere puts the terminal back before its message is printed, then ends the
/// client: a half-dead client with a broken screen helps nobody.
pub fn restore_on_panic() {
    let print_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        print_panic(info);
        std::process::exit(101);
    }));
}

/// Erases the screen, splits it, paints the conversation from `lines` (oldest first; only the
/// last ones fit) and the input row.
pub fn paint_all(size: Size, lines: &[&str], input: &str, cursor: usize) -> Vec<u8> {
    let mut out = format!("\x1b[H\x1b[2J\x1b[1;{}r", size.rows - 1).into_bytes();
    push_lines(&mut out, size, lines);
    out.extend(input_row(size, input, cursor));
    out
}

/// Adds `lines` at the bottom of the conversation, which scrolls up, then paints the input
/// row again, cursor included: one update, for one `write`. Lines that would scroll out of
/// sight at once (a flood brings more than the screen holds) are not sent at all.
pub fn add_lines(size: Size, lines: &[&str], input: &str, cursor: usize) -> Vec<u8> {
    let mut out = Vec::new();
    push_lines(&mut out, size, lines);
    out.extend(input_row(size, input, cursor));
    out
}

/// Goes to the bottom row of the scroll region and prints each line after CR IND, which
/// scrolls the region up by one row. A line wider than the screen wraps, still inside it.
fn push_lines(out: &mut Vec<u8>, size: Size, lines: &[&str]) {
    let region = usize::from(size.rows - 1);
    let visible = &lines[lines.len().saturating_sub(region)..];
    if visible.is_empty() {
        return;
    }
    out.extend(format!("\x1b[{};1H", size.rows - 1).as_bytes());
    for line in visible {
        out.extend(b"\r\x1bD");
        out.extend(line.as_bytes());
    }
}

/// Paints the input row: `text` (which fits, see `Editor::view`), the rest of the row erased,
/// and the cursor `cursor` columns from the left edge.
pub fn input_row(size: Size, text: &str, cursor: usize) -> Vec<u8> {
    let mut out = String::new();
    let _ = write!(
        out,
        "\x1b[{rows};1H{text}\x1b[K\x1b[{rows};{}H",
        cursor + 1,
        rows = size.rows
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Size = Size { rows: 24, cols: 80 };

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap().replace('\x1b', "ESC")
    }

    #[test]
    fn painting_splits_an_80x24_screen() {
        assert_eq!(
            text(paint_all(SCREEN, &[], "", 0)),
            "ESC[HESC[2JESC[1;23rESC[24;1HESC[KESC[24;1H"
        );
    }

    #[test]
    fn a_full_paint_shows_the_conversation_and_the_input_row() {
        let small = Size { rows: 5, cols: 80 };
        assert_eq!(
            text(paint_all(small, &["a", "b"], "typing", 3)),
            "ESC[HESC[2JESC[1;4rESC[4;1H\rESCDa\rESCDbESC[5;1HtypingESC[KESC[5;4H"
        );
    }

    #[test]
    fn new_lines_go_to_the_bottom_of_the_region_then_the_input_row_is_painted() {
        assert_eq!(
            text(add_lines(SCREEN, &["bob: hi"], "hello wor", 9)),
            "ESC[23;1H\rESCDbob: hiESC[24;1Hhello worESC[KESC[24;10H"
        );
        assert_eq!(
            text(add_lines(SCREEN, &[], "ab", 1)),
            "ESC[24;1HabESC[KESC[24;2H"
        );
    }

    #[test]
    fn a_flood_sends_only_what_stays_on_screen() {
        let small = Size { rows: 4, cols: 80 };
        assert_eq!(
            text(add_lines(small, &["1", "2", "3", "4", "5"], "", 0)),
            "ESC[3;1H\rESCD3\rESCD4\rESCD5ESC[4;1HESC[KESC[4;1H"
        );
    }

    #[test]
    fn raw_mode_turns_off_line_editing_and_echo_but_not_signals() {
        let mut cooked = Termios::blank();
        cooked.c_lflag |= sys::ICANON | sys::ECHO | sys::ISIG | sys::IEXTEN;
        cooked.c_iflag |= sys::IXON | sys::ICRNL;
        let mode = raw(&cooked);
        assert_eq!(mode.c_lflag & (sys::ICANON | sys::ECHO | sys::IEXTEN), 0);
        assert_eq!(mode.c_iflag & (sys::IXON | sys::ICRNL), 0);
        assert_eq!(mode.c_lflag & sys::ISIG, sys::ISIG);
        assert_eq!((mode.c_cc[sys::VMIN], mode.c_cc[sys::VTIME]), (1, 0));
    }

    #[test]
    fn reset_undoes_what_painting_did() {
        assert_eq!(text(ENTER.to_vec()), "ESC[?1049h");
        assert_eq!(text(RESET.to_vec()), "ESC[0mESC[rESC[?1049l");
    }
}
