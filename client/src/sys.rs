//! The C functions the terminal mode needs, declared by hand instead of taken from a crate,
//! with a safe wrapper each (like step 4's `sys.rs`).
//!
//! A C prototype from the man page becomes a Rust item, a C struct becomes a `#[repr(C)]`
//! struct with the same fields in the same order, and "returns -1 and sets `errno`" becomes an
//! `io::Result`. The structs and constants are those of glibc on Linux, x86-64 and aarch64
//! alike (`<bits/termios-struct.h>`, `<bits/types/struct_tm.h>`, `<bits/sigset.h>`); other
//! systems lay them out differently, so `SUPPORTED` keeps the terminal mode to Linux and the
//! client falls back to plain mode elsewhere.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether the declarations below match the system the client was built for.
pub const SUPPORTED: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

pub const STDIN: c_int = 0;
pub const STDOUT: c_int = 1;

/// `struct winsize` from `<sys/ioctl.h>`: what `TIOCGWINSZ` fills in.
#[repr(C)]
#[derive(Default)]
struct WinSize {
    ws_row: u16,
    ws_col: u16,
    ws_xpixel: u16,
    ws_ypixel: u16,
}

/// ioctl_tty(2): "get window size".
const TIOCGWINSZ: c_ulong = 0x5413;

#[allow(non_camel_case_types)]
type tcflag_t = c_uint;
#[allow(non_camel_case_types)]
type cc_t = u8;
#[allow(non_camel_case_types)]
type speed_t = c_uint;
/// Size of `c_cc` in glibc (the kernel's own `struct termios` has 19; glibc converts).
const NCCS: usize = 32;

/// `struct termios` from termios(3), as glibc declares it: 60 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Termios {
    pub c_iflag: tcflag_t,
    pub c_oflag: tcflag_t,
    pub c_cflag: tcflag_t,
    pub c_lflag: tcflag_t,
    c_line: cc_t,
    pub c_cc: [cc_t; NCCS],
    c_ispeed: speed_t,
    c_ospeed: speed_t,
}

// Flags and indices from termios(3), the values of `<bits/termios-c_*.h>` (octal, as there).
/// c_iflag: Ctrl-S and Ctrl-Q stop and restart the output.
pub const IXON: tcflag_t = 0o2000;
/// c_iflag: a CR typed becomes LF.
pub const ICRNL: tcflag_t = 0o400;
/// c_lflag: Ctrl-C, Ctrl-\ and Ctrl-Z send SIGINT, SIGQUIT, SIGTSTP.
pub const ISIG: tcflag_t = 0o1;
/// c_lflag: canonical mode, the kernel's line editing (see `term.rs`).
pub const ICANON: tcflag_t = 0o2;
/// c_lflag: the kernel echoes each key typed.
pub const ECHO: tcflag_t = 0o10;
/// c_lflag: Ctrl-V (insert the next key literally) and Ctrl-O (discard output).
pub const IEXTEN: tcflag_t = 0o100000;
/// c_cc index: with ICANON off, `read` waits for at least this many bytes...
pub const VMIN: usize = 6;
/// c_cc index: ...or this many tenths of a second (0: wait for ever).
pub const VTIME: usize = 5;

/// tcsetattr(3): change the settings at once.
const TCSANOW: c_int = 0;
/// tcflush(3): discard what was typed but not read yet.
const TCIFLUSH: c_int = 0;

/// `struct tm` from ctime(3), as glibc declares it (with the BSD fields at the end).
#[repr(C)]
struct Tm {
    tm_sec: c_int,
    tm_min: c_int,
    tm_hour: c_int,
    tm_mday: c_int,
    tm_mon: c_int,
    tm_year: c_int,
    tm_wday: c_int,
    tm_yday: c_int,
    tm_isdst: c_int,
    tm_gmtoff: c_long,
    tm_zone: *const c_char,
}

/// `time_t` is a `long` on 64-bit Linux.
#[allow(non_camel_case_types)]
type time_t = c_long;

/// `sigset_t` from glibc: a bit set of 1024 signals, only ever touched through
/// `sigemptyset` and `sigaddset`.
#[repr(C)]
pub struct SigSet {
    bits: [c_ulong; 16],
}

// Signal numbers from signal(7), the same on x86-64 and aarch64.
pub const SIGHUP: c_int = 1;
pub const SIGINT: c_int = 2;
pub const SIGQUIT: c_int = 3;
pub const SIGTERM: c_int = 15;
pub const SIGCONT: c_int = 18;
pub const SIGTSTP: c_int = 20;
pub const SIGWINCH: c_int = 28;

/// pthread_sigmask(3) `how`.
const SIG_BLOCK: c_int = 0;
const SIG_UNBLOCK: c_int = 1;

unsafe extern "C" {
    /// ioctl(2): `int ioctl(int fd, unsigned long request, ...);`
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    /// write(2): `ssize_t write(int fd, const void *buf, size_t count);`
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    /// termios(3): `int tcgetattr(int fd, struct termios *termios_p);`
    fn tcgetattr(fd: c_int, termios: *mut Termios) -> c_int;
    /// termios(3): `int tcsetattr(int fd, int optional_actions, const struct termios *p);`
    fn tcsetattr(fd: c_int, optional_actions: c_int, termios: *const Termios) -> c_int;
    /// termios(3): `int tcflush(int fd, int queue_selector);`
    fn tcflush(fd: c_int, queue_selector: c_int) -> c_int;
    /// ctime(3): `void tzset(void);`
    fn tzset();
    /// ctime(3): `struct tm *localtime_r(const time_t *timep, struct tm *result);`
    fn localtime_r(timep: *const time_t, result: *mut Tm) -> *mut Tm;
    /// sigsetops(3): `int sigemptyset(sigset_t *set);`
    fn sigemptyset(set: *mut SigSet) -> c_int;
    /// sigsetops(3): `int sigaddset(sigset_t *set, int signum);`
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    /// pthread_sigmask(3): `int pthread_sigmask(int how, const sigset_t *set, sigset_t
    /// *oldset);` returns an error number, not -1.
    fn pthread_sigmask(how: c_int, set: *const SigSet, oldset: *mut SigSet) -> c_int;
    /// sigwait(3): `int sigwait(const sigset_t *set, int *sig);` returns an error number.
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    /// raise(3): `int raise(int sig);` sends `sig` to the calling thread.
    fn raise(sig: c_int) -> c_int;
}

/// The C convention (-1 and `errno`) as an `io::Result`.
fn cvt(ret: c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The pthread convention (0, or the error number) as an `io::Result`.
fn cvt_errno(ret: c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Rows and columns of the terminal on standard output; `None` when it cannot tell.
pub fn window_size() -> Option<(u16, u16)> {
    let mut size = WinSize::default();
    // SAFETY: TIOCGWINSZ writes one `struct winsize`, which `WinSize` mirrors with #[repr(C)];
    // the pointer is to a live local. On failure it returns -1 and writes nothing.
    let result = unsafe { ioctl(STDOUT, TIOCGWINSZ, &mut size as *mut WinSize) };
    if result == -1 || size.ws_row == 0 || size.ws_col == 0 {
        return None;
    }
    Some((size.ws_row, size.ws_col))
}

/// Writes `bytes` to standard output with plain `write(2)` calls: no lock, no allocation,
/// so it works even while another thread holds the screen (see `term::restore`).
pub fn write_stdout(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes for the whole call.
        let written = unsafe { write(STDOUT, rest.as_ptr().cast(), rest.len()) };
        if written <= 0 {
            // An error here cannot be reported (we are on the way out) and a retry could loop.
            return;
        }
        rest = &rest[written as usize..];
    }
}

impl Termios {
    /// All flags off, to be filled in by `tcgetattr`.
    pub fn blank() -> Termios {
        Termios {
            c_iflag: 0,
            c_oflag: 0,
            c_cflag: 0,
            c_lflag: 0,
            c_line: 0,
            c_cc: [0; NCCS],
            c_ispeed: 0,
            c_ospeed: 0,
        }
    }
}

/// The terminal settings of standard input.
pub fn get_mode() -> io::Result<Termios> {
    let mut mode = Termios::blank();
    // SAFETY: tcgetattr fills in one `struct termios`, which `Termios` mirrors; the pointer is
    // to a live local.
    cvt(unsafe { tcgetattr(STDIN, &mut mode) })?;
    Ok(mode)
}

/// Changes the terminal settings of standard input, at once.
pub fn set_mode(mode: &Termios) -> io::Result<()> {
    // SAFETY: tcsetattr only reads the `struct termios` behind the pointer, which is live.
    cvt(unsafe { tcsetattr(STDIN, TCSANOW, mode) })
}

/// Throws away whatever was typed and not read yet, so the shell never reads it.
pub fn discard_typed_input() -> io::Result<()> {
    // SAFETY: tcflush takes no pointer; a bad descriptor is reported as an error.
    cvt(unsafe { tcflush(STDIN, TCIFLUSH) })
}

/// Reads the time zone (`TZ`, `/etc/localtime`) once, before any thread asks for the time.
pub fn init_time_zone() {
    // SAFETY: tzset takes no argument; it only sets the C library's time zone variables.
    unsafe { tzset() }
}

/// The local time as hours and minutes.
pub fn local_hour_minute() -> (u32, u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let now = time_t::try_from(now).unwrap_or(0);
    // SAFETY: all-zero bytes are a valid `Tm` (integers and a null pointer).
    let mut tm: Tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r (unlike localtime) writes only to
    // `tm`, so threads may call it at once. It returns null when the time cannot be converted.
    let result = unsafe { localtime_r(&now, &mut tm) };
    if result.is_null() {
        return (0, 0);
    }
    (tm.tm_hour as u32, tm.tm_min as u32)
}

fn signal_set(signals: &[c_int]) -> io::Result<SigSet> {
    let mut set = SigSet { bits: [0; 16] };
    // SAFETY: the pointer is to a live `SigSet`, which is exactly glibc's `sigset_t`.
    cvt(unsafe { sigemptyset(&mut set) })?;
    for &signal in signals {
        // SAFETY: as above; an invalid signal number is reported as an error.
        cvt(unsafe { sigaddset(&mut set, signal) })?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread and every thread it starts afterwards, so that they
/// wait, pending, until `wait_for_signal` takes them.
pub fn block_signals(signals: &[c_int]) -> io::Result<()> {
    let set = signal_set(signals)?;
    // SAFETY: `set` is live; a null `oldset` is allowed and means "do not report".
    cvt_errno(unsafe { pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut()) })
}

/// Undoes `block_signals`: the signals get their default actions back.
pub fn unblock_signals(signals: &[c_int]) -> io::Result<()> {
    let set = signal_set(signals)?;
    // SAFETY: `set` is live; a null `oldset` is allowed.
    cvt_errno(unsafe { pthread_sigmask(SIG_UNBLOCK, &set, std::ptr::null_mut()) })
}

/// Waits until one of `signals` (blocked beforehand) is pending, takes it, returns it.
pub fn wait_for_signal(signals: &[c_int]) -> io::Result<c_int> {
    let set = signal_set(signals)?;
    let mut signal: c_int = 0;
    // SAFETY: both pointers are to live locals.
    cvt_errno(unsafe { sigwait(&set, &mut signal) })?;
    Ok(signal)
}

/// Stops the whole process the way Ctrl-Z does in a program that does not catch it: raises
/// SIGTSTP with its default action. Returns once a SIGCONT (`fg`) has continued the process,
/// or at once if the kernel discards the signal (a process group with no shell to come back
/// to, an "orphaned" one, is never stopped).
pub fn stop_self() -> io::Result<()> {
    unblock_signals(&[SIGTSTP])?;
    // SAFETY: raise takes no pointer. SIGTSTP is unblocked in this thread only, so it is this
    // thread that takes it on the way back from the call, and the default action stops the
    // process before `raise` returns.
    let raised = cvt(unsafe { raise(SIGTSTP) });
    let blocked = block_signals(&[SIGTSTP]);
    raised.and(blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes glibc's headers give (`sizeof` in C, on x86-64 and aarch64).
    #[test]
    fn the_structs_have_the_sizes_of_glibc() {
        assert_eq!(std::mem::size_of::<Termios>(), 60);
        assert_eq!(std::mem::offset_of!(Termios, c_cc), 17);
        assert_eq!(std::mem::offset_of!(Termios, c_ispeed), 52);
        assert_eq!(std::mem::size_of::<Tm>(), 56);
        assert_eq!(std::mem::offset_of!(Tm, tm_gmtoff), 40);
        assert_eq!(std::mem::size_of::<SigSet>(), 128);
    }

    #[test]
    fn the_local_time_is_a_time_of_day() {
        init_time_zone();
        let (hour, minute) = local_hour_minute();
        assert!(hour < 24 && minute < 60, "{hour}:{minute}");
    }
}
