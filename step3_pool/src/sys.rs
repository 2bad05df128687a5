//! The C functions this step calls that std does not wrap, declared by hand (no `libc` crate):
//! getrlimit(2) and setrlimit(2), to raise the limit on open descriptors at start, and
//! setsockopt(2) for `SO_LINGER`, to let a client that is cut go at once.
//!
//! A C struct becomes a `#[repr(C)]` struct with the same fields in the same order, and the C
//! convention "returns -1 and sets `errno`" becomes an `io::Result`. The types and constants
//! are those of Linux (x86-64 and aarch64 alike); macOS differs where marked.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_uint, c_ulong, c_void};

/// `rlim_t` from getrlimit(2): `unsigned long` on 64-bit Linux (and 64 bits on macOS).
#[allow(non_camel_case_types)]
pub type rlim_t = c_ulong;

/// `struct rlimit` from getrlimit(2): the soft limit (what is enforced) and the hard limit
/// (the ceiling an unprivileged process may raise its soft limit to).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RLimit {
    pub rlim_cur: rlim_t,
    pub rlim_max: rlim_t,
}

/// `RLIMIT_NOFILE` from getrlimit(2): one more than the highest descriptor number the
/// process may open. 7 on Linux, 8 on macOS.
#[cfg(not(target_os = "macos"))]
const RLIMIT_NOFILE: c_int = 7;
#[cfg(target_os = "macos")]
const RLIMIT_NOFILE: c_int = 8;

/// `struct linger` from socket(7): whether `close` lingers, and for how many seconds.
#[repr(C)]
struct Linger {
    l_onoff: c_int,
    l_linger: c_int,
}

/// `socklen_t`: the size of an option's value.
#[allow(non_camel_case_types)]
type socklen_t = c_uint;

// Socket-level options, socket(7). macOS uses other numbers.
#[cfg(not(target_os = "macos"))]
const SOL_SOCKET: c_int = 1;
#[cfg(not(target_os = "macos"))]
const SO_LINGER: c_int = 13;
#[cfg(target_os = "macos")]
const SOL_SOCKET: c_int = 0xffff;
#[cfg(target_os = "macos")]
const SO_LINGER: c_int = 0x80;

unsafe extern "C" {
    /// getrlimit(2): `int getrlimit(int resource, struct rlimit *rlim);`
    fn getrlimit(resource: c_int, rlim: *mut RLimit) -> c_int;
    /// setrlimit(2): `int setrlimit(int resource, const struct rlimit *rlim);`
    fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;
    /// setsockopt(2): `int setsockopt(int sockfd, int level, int optname,
    /// const void *optval, socklen_t optlen);`
    fn setsockopt(
        sockfd: c_int,
        level: c_int,
        optname: c_int,
        optval: *const c_void,
        optlen: socklen_t,
    ) -> c_int;
}

/// Turns the C convention (-1 and `errno`) into an `io::Result`.
fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The current limit on open descriptors.
fn open_files_limit() -> io::Result<RLimit> {
    let mut limit = RLimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit` that outlives the call.
    cvt(unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) })?;
    Ok(limit)
}

/// Sets the limit on open descriptors; fails with `EPERM` above the hard limit.
fn set_open_files_limit(limit: RLimit) -> io::Result<()> {
    // SAFETY: `limit` is a valid `struct rlimit`; the kernel only reads it.
    cvt(unsafe { setrlimit(RLIMIT_NOFILE, &limit) })?;
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit. Every client holds one
/// descriptor, and the soft limit is 1024 on most systems; any process may raise it up to the
/// hard limit, which only root can move. Returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<rlim_t> {
    let mut limit = open_files_limit()?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        set_open_files_limit(limit)?;
    }
    Ok(limit.rlim_cur)
}

/// Makes the last `close` of `stream` reset the connection (`SO_LINGER` on, 0 seconds): the
/// kernel drops whatever the client has not taken yet and sends RST, instead of keeping the
/// socket and its unsent bytes until a client that does not read lets them through. What
/// the client has already received stays readable on its side.
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let size = std::mem::size_of::<Linger>() as socklen_t;
    // SAFETY: the descriptor belongs to `stream`, borrowed for the whole call, so it is open;
    // `optval` points to a live `struct linger` of `optlen` bytes, which the kernel only reads.
    let ret = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&raw const linger).cast(),
            size,
        )
    };
    cvt(ret)?;
    Ok(())
}
