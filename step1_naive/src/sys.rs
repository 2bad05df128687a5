//! The one C function step 1 needs that `std` does not wrap: `setsockopt(2)`, for
//! `SO_LINGER`, declared by hand instead of taken from the `libc` crate, as step 4 does for
//! `poll`.
//!
//! A C prototype from the man page becomes a Rust item, a C struct becomes a `#[repr(C)]`
//! struct with the same fields in the same order, and the C convention "returns -1 and sets
//! `errno`" becomes an `io::Result`. The constants below are those of Linux; macOS differs,
//! marked where it does. Every other system call (socket, accept, read, write, close) goes
//! through `std`, which already wraps them safely.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};

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
