//! The terminal: its size through `ioctl`, the escape sequences that split the screen, and
//! the signal and panic handlers that put it back the way it was.
//!
//! Escape sequences used (ESC is the byte 0x1b; `r` rows, counted from 1):
//!
//! | bytes              | name    | meaning                                                      |
//! | ------------------ | ------- | ------------------------------------------------------------ |
//! | `ESC [ ? 1049 h`   |         | switch to the alternate screen, saving the cursor            |
//! | `ESC [ ? 1049 l`   |         | back to the normal screen: the shell's text and cursor return |
//! | `ESC [ H`          | CUP     | cursor to row 1, column 1                                    |
//! | `ESC [ 2 J`        | ED      | erase the whole screen                                       |
//! | `ESC [ 1 ; r-1 r`  | DECSTBM | scroll region = rows 1..r-1; the last row stays out of it    |
//! | `ESC [ r`          | DECSTBM | scroll region = the whole screen again                      |
//! | `ESC [ y ; 1 H`    | CUP     | cursor to row y, column 1                                    |
//! | `ESC [ 2 K`        | EL      | erase the whole current row                                  |
//! | `ESC [ K`          | EL      | erase from the cursor to the end of the row                  |
//! | `ESC 7`, `ESC 8`   | DECSC, DECRC | save, restore the cursor position (and colours)         |
//! | `ESC [ 1 m`        | SGR     | bold (a sender's name)                                       |
//! | `ESC [ 31 m`       | SGR     | red text (a server error)                                    |
//! | `ESC [ 0 m`        | SGR     | normal text again                                            |
//! | CR                 |         | cursor to column 1                                           |
//! | `ESC D`            | IND     | cursor down one row; on the bottom row of the scroll region, |
//! |                    |         | scrolls the region (and only the region) up one row instead |
//!
//! Every function here only builds bytes; the caller writes them with one `write` under a lock,
//! so the two threads never interleave. The other writer is the kernel, echoing keys as they
//! are pressed: it sends our bytes on in pieces, cut at each LF (which it turns into CR LF),
//! and a pending echo can slip in between two pieces, landing in the conversation. Hence IND
//! instead of LF: a redraw holds no LF, so it reaches the terminal in one piece.

use std::ffi::{c_int, c_ulong, c_void};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

unsafe extern "C" {
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
}

/// `struct winsize` from `<sys/ioctl.h>`: what `TIOCGWINSZ` fills in.
#[repr(C)]
#[derive(Default)]
struct WinSize {
    ws_row: u16,
    ws_col: u16,
    ws_xpixel: u16,
    ws_ypixel: u16,
}

#[cfg(target_os = "linux")]
const TIOCGWINSZ: c_ulong = 0x5413;
#[cfg(target_os = "macos")]
const TIOCGWINSZ: c_ulong = 0x4008_7468;

const STDOUT: c_int = 1;
const SIGINT: c_int = 2;
const SIGQUIT: c_int = 3;
const SIGTERM: c_int = 15;
/// What `signal` returns when it fails.
const SIG_ERR: usize = usize::MAX;

/// Used when the size cannot be read (some terminals answer 0 rows).
const DEFAULT_ROWS: u16 = 24;
/// A scroll region needs at least two rows above the input row to be worth its name.
const MIN_ROWS: u16 = 3;

/// Leaves the split screen: normal colours, a full-screen scroll region, the normal screen.
pub const RESET: &[u8] = b"\x1b[0m\x1b[r\x1b[?1049l";
/// After Enter the cursor is back at column 1 of the input row (see `Ui::input_done`).
pub const CLEAR_TO_END_OF_ROW: &[u8] = b"\x1b[K";
pub const BOLD: &str = "\x1b[1m";
pub const RED: &str = "\x1b[31m";
pub const NORMAL: &str = "\x1b[0m";

/// True while the screen is split, so exactly one of the ways out writes `RESET`.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The number of rows of the terminal on standard output, asked anew on every call so that a
/// resized window is followed at the next redraw.
pub fn rows() -> u16 {
    let mut size = WinSize::default();
    // SAFETY: TIOCGWINSZ writes one `struct winsize`, which `WinSize` mirrors with #[repr(C)];
    // the pointer is to a live local. On failure it returns -1 and writes nothing.
    let result = unsafe { ioctl(STDOUT, TIOCGWINSZ, &mut size as *mut WinSize) };
    if result == -1 || size.ws_row == 0 {
        return DEFAULT_ROWS;
    }
    size.ws_row.max(MIN_ROWS)
}

/// Switches to the alternate screen and splits it: an empty conversation and the input row.
pub fn enter(rows: u16) -> Vec<u8> {
    let mut out = b"\x1b[?1049h".to_vec();
    out.extend(redraw_all(rows, &[]));
    out
}

/// Prints one line at the bottom of the conversation, which scrolls up by one, and puts the
/// cursor back where it was: in the middle of what the user is typing.
pub fn show_line(rows: u16, line: &str) -> Vec<u8> {
    let mut out = b"\x1b7".to_vec();
    push_lines(&mut out, rows, &[line]);
    out.extend(b"\x1b8");
    out
}

/// Erases everything, splits the screen, paints the conversation from `lines` and leaves the
/// cursor at the start of an empty input row.
pub fn redraw_all(rows: u16, lines: &[&str]) -> Vec<u8> {
    let mut out = b"\x1b[H\x1b[2J".to_vec();
    out.extend(set_region(rows));
    push_lines(&mut out, rows, lines);
    out.extend(format!("\x1b[{rows};1H").as_bytes());
    out
}

fn set_region(rows: u16) -> Vec<u8> {
    format!("\x1b[1;{}r", rows - 1).into_bytes()
}

/// Goes to the bottom row of the scroll region and prints each line after CR IND, which
/// scrolls the region up by one row. A line wider than the screen wraps, still inside it.
fn push_lines(out: &mut Vec<u8>, rows: u16, lines: &[&str]) {
    out.extend(format!("\x1b[{};1H", rows - 1).as_bytes());
    for line in lines {
        out.extend(b"\r\x1bD");
        out.extend(line.as_bytes());
    }
}

/// Marks the screen as split: from now on every way out must write `RESET`.
pub fn set_active() {
    ACTIVE.store(true, Ordering::SeqCst);
}

/// Writes `RESET` once, whichever way out gets here first. Safe inside a signal handler: an
/// atomic swap and `write(2)` are async-signal-safe; nothing allocates or takes a lock.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // SAFETY: RESET is a valid buffer of RESET.len() bytes for the whole call. A failed or
        // short write cannot be reported from here and leaves nothing else to do.
        unsafe { write(STDOUT, RESET.as_ptr().cast(), RESET.len()) };
    }
}

/// Ctrl-C (SIGINT), Ctrl-\ (SIGQUIT) and `kill` (SIGTERM) end the client with the terminal
/// put back.
pub fn restore_on_signals() -> io::Result<()> {
    for signum in [SIGINT, SIGQUIT, SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that lives for the whole program
        // and only does async-signal-safe work.
        if unsafe { signal(signum, on_signal) } == SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_signal(signum: c_int) {
    restore();
    // SAFETY: _exit ends the process at once without running anything that could take a lock
    // the interrupted code holds; 128 + signal number is the shell's convention.
    unsafe { _exit(128 + signum) }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap().replace('\x1b', "ESC")
    }

    #[test]
    fn enter_splits_an_80x24_screen() {
        assert_eq!(
            text(enter(24)),
            "ESC[?1049hESC[HESC[2JESC[1;23rESC[23;1HESC[24;1H"
        );
    }

    #[test]
    fn a_message_goes_to_the_bottom_of_the_region_and_the_cursor_comes_back() {
        assert_eq!(
            text(show_line(24, "bob: hi")),
            "ESC7ESC[23;1H\rESCDbob: hiESC8"
        );
        assert_eq!(text(show_line(50, "x")), "ESC7ESC[49;1H\rESCDxESC8");
    }

    #[test]
    fn a_full_redraw_ends_on_an_empty_input_row() {
        assert_eq!(
            text(redraw_all(5, &["a", "b"])),
            "ESC[HESC[2JESC[1;4rESC[4;1H\rESCDa\rESCDbESC[5;1H"
        );
    }

    #[test]
    fn reset_undoes_what_enter_did() {
        assert_eq!(text(RESET.to_vec()), "ESC[0mESC[rESC[?1049l");
    }
}
