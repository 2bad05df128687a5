//! The FFI both tools share, declared by hand.
//!
//! As in std (`library/std/src/sys/pal/unix`), every call goes through `cvt`, which turns C's
//! "-1, see errno" into `io::Error::last_os_error()`, or `cvt_r`, which also retries a call a
//! signal interrupted: no errno juggling at the call sites.

use std::ffi::{c_int, c_long, c_void};
use std::io;

unsafe extern "C" {
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn sysconf(name: c_int) -> c_long;
}

/// `_SC_CLK_TCK` on Linux: the unit of the CPU times in `/proc/<pid>/stat`.
const SC_CLK_TCK: c_int = 2;

/// C's "-1 means failure, see errno" into a `Result`.
pub fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `cvt`, retrying calls a signal interrupted.
pub fn cvt_r(mut call: impl FnMut() -> c_int) -> io::Result<c_int> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `setsockopt(fd, level, name, &value, sizeof value)`: sets one socket option to `value`,
/// a `c_int` or a `#[repr(C)]` struct such as `struct linger`.
pub fn set_option<T>(fd: c_int, level: c_int, name: c_int, value: &T) -> io::Result<()> {
    let len = u32::try_from(size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` points to a live, initialised `T` of exactly `len` bytes that the
    // kernel only reads; a descriptor that is not a socket gives an error, not a crash.
    cvt(unsafe { setsockopt(fd, level, name, (value as *const T).cast(), len) }).map(|_| ())
}

/// Clock ticks per second: the unit of utime and stime in `/proc/<pid>/stat`. Linux fixes it
/// at 100 for user space (`USER_HZ`), which is also the answer should `sysconf` fail.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads its integer argument.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    #[test]
    fn cvt_keeps_results_and_turns_minus_one_into_errno() {
        assert_eq!(cvt(7).ok(), Some(7));
        // An option set on a descriptor that is not open fails with EBADF (9).
        let err = set_option(-1, 1, 2, &1).expect_err("fd -1 is not a socket");
        assert_eq!(err.raw_os_error(), Some(9));
    }

    #[test]
    fn cvt_r_retries_an_interrupted_call() {
        let mut calls = 0;
        let result = cvt_r(|| {
            calls += 1;
            if calls < 3 {
                // What a syscall a signal interrupted leaves: -1 and errno EINTR.
                set_errno_eintr();
                -1
            } else {
                5
            }
        });
        assert_eq!((result.ok(), calls), (Some(5), 3));
    }

    #[test]
    fn an_option_is_set_on_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        // SOL_SOCKET, SO_REUSEADDR on Linux.
        set_option(listener.as_raw_fd(), 1, 2, &1).expect("setsockopt");
    }

    #[test]
    fn clock_ticks_are_a_plausible_rate() {
        let ticks = clock_ticks_per_second();
        assert!((10..=10_000).contains(&ticks), "{ticks} ticks per second");
    }

    /// Leaves errno at EINTR, the way an interrupted syscall does.
    fn set_errno_eintr() {
        unsafe extern "C" {
            fn __errno_location() -> *mut c_int;
        }
        // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
        unsafe { *__errno_location() = 4 };
    }
}
