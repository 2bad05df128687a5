//! The five C functions step 4 needs, declared by hand instead of taken from the `libc` crate.
//!
//! Reading these declarations is part of the lesson: a C prototype from the man page becomes a
//! Rust item, a C struct becomes a `#[repr(C)]` struct with the same fields in the same order,
//! and the C convention "returns -1 and sets `errno`" becomes an `io::Result`. The types and
//! constants below are those of Linux (x86-64 and aarch64 alike); macOS differs in a few of them,
//! marked where it does. Every other system call (socket, accept, read, write, close) goes
//! through `std`, which already wraps them safely.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_short, c_ulong, c_void};

/// `struct pollfd` from poll(2): the descriptor to watch, the events wanted, the events that
/// happened (filled in by the kernel).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: c_int,
    pub events: c_short,
    pub revents: c_short,
}

// Event bits, poll(2). POLLERR, POLLHUP and POLLNVAL are only ever reported, never requested.
/// There is data to read (or a connection to accept, or the end of the stream).
pub const POLLIN: c_short = 0x001;
/// Writing now would not block.
pub const POLLOUT: c_short = 0x004;
/// An error is pending on the socket (e.g. the peer reset it).
pub const POLLERR: c_short = 0x008;
/// The peer hung up; data it sent before may still be waiting to be read.
pub const POLLHUP: c_short = 0x010;
/// `fd` is not an open descriptor.
pub const POLLNVAL: c_short = 0x020;

/// `nfds_t` from poll(2): the type of the array length (`unsigned long` on Linux).
#[cfg(not(target_os = "macos"))]
#[allow(non_camel_case_types)]
pub type nfds_t = c_ulong;
/// `nfds_t` is `unsigned int` on macOS.
#[cfg(target_os = "macos")]
#[allow(non_camel_case_types)]
pub type nfds_t = std::os::raw::c_uint;

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

/// `SOL_SOCKET` and `SO_LINGER` from socket(7): 1 and 13 on Linux, 0xffff and 0x80 on macOS.
#[cfg(not(target_os = "macos"))]
const SOL_SOCKET: c_int = 1;
#[cfg(not(target_os = "macos"))]
const SO_LINGER: c_int = 13;
#[cfg(target_os = "macos")]
const SOL_SOCKET: c_int = 0xffff;
#[cfg(target_os = "macos")]
const SO_LINGER: c_int = 0x80;

/// `struct linger` from socket(7): with `l_onoff` 1 and `l_linger` 0, close(2) sends RST and
/// throws away whatever the kernel still holds for the peer.
#[repr(C)]
struct Linger {
    l_onoff: c_int,
    l_linger: c_int,
}

unsafe extern "C" {
    /// poll(2): `int poll(struct pollfd *fds, nfds_t nfds, int timeout);`
    fn poll(fds: *mut PollFd, nfds: nfds_t, timeout: c_int) -> c_int;
    /// getrlimit(2): `int getrlimit(int resource, struct rlimit *rlim);`
    fn getrlimit(resource: c_int, rlim: *mut RLimit) -> c_int;
    /// setrlimit(2): `int setrlimit(int resource, const struct rlimit *rlim);`
    fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;
    /// listen(2): `int listen(int sockfd, int backlog);`
    fn listen(sockfd: c_int, backlog: c_int) -> c_int;
    /// setsockopt(2): `int setsockopt(int sockfd, int level, int optname,
    /// const void *optval, socklen_t optlen);` (`socklen_t` is a 32-bit unsigned integer)
    fn setsockopt(
        sockfd: c_int,
        level: c_int,
        optname: c_int,
        optval: *const c_void,
        optlen: u32,
    ) -> c_int;
}

/// Turns the C convention (-1 and `errno`) into an `io::Result`, like std's own `cvt`.
fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Calls `f` again as long as it fails with `EINTR` (a signal arrived while it waited).
fn cvt_r(mut f: impl FnMut() -> c_int) -> io::Result<c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` passes (-1: wait for ever); returns
/// how many entries have a non-zero `revents`.
pub fn wait(fds: &mut [PollFd], timeout_ms: c_int) -> io::Result<usize> {
    // SAFETY: the pointer and length describe one live, exclusively borrowed slice of
    // `#[repr(C)]` structs laid out as `struct pollfd`; the kernel writes only `revents`
    // inside it and keeps no reference after returning.
    let ready = cvt_r(|| unsafe { poll(fds.as_mut_ptr(), fds.len() as nfds_t, timeout_ms) })?;
    Ok(ready as usize)
}

/// Sets how many connections the kernel may hold for `listener` before we accept them. std's
/// `TcpListener::bind` asks for 128; calling listen(2) again on a listening socket changes
/// it. The kernel silently caps it at `net.core.somaxconn` (4096 by default on Linux).
pub fn set_backlog(listener: &TcpListener, backlog: c_int) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `listener`, which is borrowed for the whole call,
    // so it is open; listen(2) takes no pointer.
    cvt(unsafe { listen(listener.as_raw_fd(), backlog) })?;
    Ok(())
}

/// Makes closing `stream` reset the connection at once: the peer reads what it already
/// received, then "connection reset", and our kernel keeps nothing for it.
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor belongs to `stream`, borrowed for the whole call; the pointer
    // and length describe `linger`, a live `#[repr(C)]` `struct linger` the kernel only reads.
    cvt(unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&linger as *const Linger).cast(),
            size_of::<Linger>() as u32,
        )
    })?;
    Ok(())
}

/// The current limit on open descriptors.
pub fn open_files_limit() -> io::Result<RLimit> {
    let mut limit = RLimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit` that outlives the call.
    cvt(unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) })?;
    Ok(limit)
}

/// Sets the limit on open descriptors; fails with `EPERM` above the hard limit.
pub fn set_open_files_limit(limit: RLimit) -> io::Result<()> {
    // SAFETY: `limit` is a valid `struct rlimit`; the kernel only reads it.
    cvt(unsafe { setrlimit(RLIMIT_NOFILE, &limit) })?;
    Ok(())
}
