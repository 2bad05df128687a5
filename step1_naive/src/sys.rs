//! The one C function step 1 needs that `std` does not wrap on stable Rust: `setsockopt(2)`,
//! for `SO_LINGER`. Declared by hand instead of taken from the `libc` crate, as step 4 does
//! for `poll`. The constants differ between Linux and macOS (and the BSDs).

use std::ffi::{c_int, c_void};
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

#[cfg(target_os = "linux")]
const SOL_SOCKET: c_int = 1;
#[cfg(target_os = "linux")]
const SO_LINGER: c_int = 13;
#[cfg(not(target_os = "linux"))]
const SOL_SOCKET: c_int = 0xffff;
#[cfg(not(target_os = "linux"))]
const SO_LINGER: c_int = 0x0080;

/// `struct linger` from `<sys/socket.h>`: the same fields, in the same order.
#[repr(C)]
struct Linger {
    l_onoff: c_int,
    l_linger: c_int,
}

unsafe extern "C" {
    /// `int setsockopt(int fd, int level, int name, const void *value, socklen_t len)`;
    /// `socklen_t` is 32 bits unsigned. Returns -1 and sets `errno` on failure.
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
}

/// Makes the coming close of `stream` abortive: the kernel sends RST and frees at once what
/// it still holds for the peer, instead of trickling it out after we have closed (to a peer
/// that does not read, that can take minutes, and megabytes of kernel memory meanwhile).
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor stays open while `stream` is borrowed; `value` points to a live
    // `struct linger` and `len` is its exact size, so the kernel reads only that.
    let result = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&raw const linger).cast(),
            size_of::<Linger>() as u32,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
