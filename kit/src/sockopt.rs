//! The two socket options std does not offer on stable Rust, set through `setsockopt(2)`
//! ([`crate::sys::set_option`]) on a socket's descriptor: the grader sets both, loadgen the
//! receive buffer of its clients that never read.

use std::ffi::c_int;
use std::io;
use std::os::fd::RawFd;

#[cfg(target_os = "linux")]
mod consts {
    pub const SOL_SOCKET: i32 = 1;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_LINGER: i32 = 13;
}

#[cfg(not(target_os = "linux"))] // macOS and the BSDs
mod consts {
    pub const SOL_SOCKET: i32 = 0xffff;
    pub const SO_RCVBUF: i32 = 0x1002;
    pub const SO_LINGER: i32 = 0x0080;
}

/// `struct linger` from `<sys/socket.h>`.
#[repr(C)]
struct Linger {
    l_onoff: c_int,
    l_linger: c_int,
}

/// Makes `close` send RST instead of FIN: the peer sees "connection reset".
pub fn set_linger_zero(fd: RawFd) -> io::Result<()> {
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set(fd, consts::SO_LINGER, &linger)
}

/// Caps the kernel's receive buffer, so a client that does not read fills up quickly instead
/// of soaking up megabytes (Linux grows it up to `tcp_rmem`'s maximum otherwise).
pub fn set_recv_buffer(fd: RawFd, bytes: c_int) -> io::Result<()> {
    set(fd, consts::SO_RCVBUF, &bytes)
}

fn set<T>(fd: RawFd, name: c_int, value: &T) -> io::Result<()> {
    crate::sys::set_option(fd, consts::SOL_SOCKET, name, value)
}
