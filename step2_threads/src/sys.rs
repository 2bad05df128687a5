//! The C functions this step calls that std does not wrap, declared by hand (no `libc` crate):
//! getrlimit(2) and setrlimit(2), to raise the limit on open descriptors at start, and
//! setsockopt(2) for `SO_LINGER`, to let a client that is cut go at once, and prctl(2) to size
//! the process's futex hash for the threads it will run.
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

// The futex hash. A thread that sleeps on a lock, a condition variable or a channel (std uses
// futexes for all of them) sleeps in the kernel in `futex_wait`, queued in one bucket of a
// hash table chosen by the address it waits on. `futex_wake` locks the bucket of its address
// and walks that bucket's queue, comparing addresses, until it finds a waiter of its own (all
// of the queue if none is there). So a wake-up costs as much as the sleepers that share its
// bucket: every thread asleep in the process, on whatever address, can make some other
// thread's wake-up slower. Here every idle writer sleeps in `recv` on its outbox, and so does
// every idle worker of a pool on its job queue.
//
// Since Linux 6.16 (the futex "private hash" change), a multithreaded process no longer uses
// the system's big shared table: it gets a private one of 4 x min(threads, CPUs) buckets (at
// least 16), grown as threads are created. It follows the CPUs, not the threads: on a 2-core
// machine it stays at 16 buckets however many threads sleep. The same kernel lets a process
// choose the size: `prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, n)`, with n a power of two
// of at least 2 (anything else is refused with `EINVAL`; 0 asks for the shared table again).
// A size chosen this way is kept: the kernel no longer resizes the table as threads come and
// go.

/// prctl(2) options from `<linux/prctl.h>`: the futex hash (Linux 6.16 and later).
const PR_FUTEX_HASH: c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: c_ulong = 1;
#[cfg(test)]
const PR_FUTEX_HASH_GET_SLOTS: c_ulong = 2;

/// Buckets asked for per thread: the kernel's own ratio, applied to the threads rather than to
/// the CPUs, so that a chain holds about one sleeper.
const FUTEX_SLOTS_PER_THREAD: usize = 4;

/// The kernel's own smallest table: a few threads keep at least this.
const MIN_FUTEX_SLOTS: usize = 16;

/// What goes in the arguments of prctl(2) that an option does not use.
const UNUSED: c_ulong = 0;

/// `EINVAL`: a kernel before 6.16 does not know `PR_FUTEX_HASH`; one built without
/// `CONFIG_FUTEX_PRIVATE_HASH` refuses it the same way.
const EINVAL: i32 = 22;

unsafe extern "C" {
    /// prctl(2): `int prctl(int option, ...);` Variadic in C, but the kernel reads four
    /// `unsigned long` arguments after `option`, used or not, so we pass all four: it refuses
    /// `PR_FUTEX_HASH_SET_SLOTS` unless the unused third one is 0.
    fn prctl(option: c_int, ...) -> c_int;
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

/// How many futex hash buckets `threads` sleeping threads ask for: a power of two, as the
/// kernel requires, at least `FUTEX_SLOTS_PER_THREAD` per thread.
fn futex_slots_for(threads: usize) -> usize {
    (FUTEX_SLOTS_PER_THREAD * threads)
        .next_power_of_two()
        .max(MIN_FUTEX_SLOTS)
}

/// Asks the kernel for a private futex hash of `futex_slots_for(threads)` buckets. Quietly
/// does nothing where the kernel does not know the option (`EINVAL`, before Linux 6.16).
pub fn size_futex_hash(threads: usize) -> io::Result<()> {
    let slots = futex_slots_for(threads) as c_ulong;
    // SAFETY: PR_FUTEX_HASH_SET_SLOTS takes integers only, no pointer: no memory of ours is
    // read or written. Each variadic argument is an `unsigned long`, as prctl(2) reads them.
    let ret = unsafe {
        prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_SET_SLOTS,
            slots,
            UNUSED,
            UNUSED,
        )
    };
    match cvt(ret) {
        Err(e) if e.raw_os_error() == Some(EINVAL) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// The buckets of this process's private futex hash, as the kernel reports them: 0 while it
/// uses the shared table, `EINVAL` before Linux 6.16.
#[cfg(test)]
fn futex_hash_slots() -> io::Result<usize> {
    // SAFETY: PR_FUTEX_HASH_GET_SLOTS takes integers only, no pointer: no memory of ours is
    // read or written. Each variadic argument is an `unsigned long`, as prctl(2) reads them.
    let ret = unsafe {
        prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_GET_SLOTS,
            UNUSED,
            UNUSED,
            UNUSED,
        )
    };
    Ok(cvt(ret)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_slots_are_a_power_of_two_at_least_four_per_thread() {
        assert_eq!(futex_slots_for(1), 16);
        assert_eq!(futex_slots_for(4), 16);
        assert_eq!(futex_slots_for(5), 32);
        assert_eq!(futex_slots_for(512), 2048);
        assert_eq!(futex_slots_for(513), 4096);
        assert_eq!(futex_slots_for(16_000), 65_536);
    }

    /// The kernel took the size asked for (where it knows the option at all). The only test
    /// that sizes this process's table.
    #[test]
    fn the_kernel_sizes_the_futex_hash_for_the_threads() {
        size_futex_hash(100).expect("prctl(PR_FUTEX_HASH_SET_SLOTS)");
        match futex_hash_slots() {
            Ok(slots) if slots > 0 => assert_eq!(slots, futex_slots_for(100)),
            // No private hash: before Linux 6.16 (`EINVAL`), or built without it (0).
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(EINVAL) => {}
            Err(e) => panic!("prctl(PR_FUTEX_HASH_GET_SLOTS) failed: {e}"),
        }
    }
}
