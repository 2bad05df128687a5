//! The few libc calls std does not offer, declared by hand (Linux, x86_64 and aarch64).
//!
//! - `poll(2)`: wait on thousands of sockets from one thread.
//! - `socket`/`setsockopt`/`bind`/`connect`: std's `TcpStream::connect` cannot choose the source
//!   address, and letting the kernel search for a free ephemeral port gets slow with thousands of
//!   sockets (48 s for 19,900 here). Binding `127.0.0.x:port` ourselves takes well under a second.
//! - `getrlimit`/`setrlimit`: raise the soft limit on open files to the hard one.
//! - `prctl(PR_SET_PDEATHSIG)`: a server loadgen started dies with it.
//!
//! Every call goes through `kit::sys::cvt`, which turns C's `-1` into
//! `io::Error::last_os_error()`, or `cvt_r`, which also retries on `EINTR`; `setsockopt` is
//! `kit::sys::set_option`, shared with the grader.

use kit::sys::{cvt, cvt_r, set_option};
use std::io;
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::os::raw::{c_int, c_short, c_uint, c_ulong};

pub const POLLIN: c_short = 0x001;
pub const POLLOUT: c_short = 0x004;
pub const POLLERR: c_short = 0x008;
pub const POLLHUP: c_short = 0x010;

const AF_INET: c_int = 2;
const SOCK_STREAM: c_int = 1;
const SOCK_NONBLOCK: c_int = 0o4000;
const SOCK_CLOEXEC: c_int = 0o2000000;
const SOL_SOCKET: c_int = 1;
const IPPROTO_TCP: c_int = 6;
const TCP_QUICKACK: c_int = 12;
const SO_REUSEADDR: c_int = 2;
pub const RLIMIT_NPROC: c_int = 6;
pub const RLIMIT_NOFILE: c_int = 7;
const PR_SET_PDEATHSIG: c_int = 1;
const SIGKILL: c_ulong = 9;
const EINPROGRESS: i32 = 115;

/// One entry of the array handed to `poll(2)`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: c_int,
    pub events: c_short,
    pub revents: c_short,
}

#[repr(C)]
struct SockAddrIn {
    sin_family: u16,
    /// Network byte order.
    sin_port: u16,
    /// Network byte order.
    sin_addr: u32,
    sin_zero: [u8; 8],
}

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

unsafe extern "C" {
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockAddrIn, len: c_uint) -> c_int;
    fn connect(fd: c_int, addr: *const SockAddrIn, len: c_uint) -> c_int;
    fn getrlimit(resource: c_int, limit: *mut RLimit) -> c_int;
    fn setrlimit(resource: c_int, limit: *const RLimit) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
}

/// Waits until one of `fds` is ready or `timeout_ms` passed (-1: no limit); returns how many
/// entries have `revents` set.
pub fn poll_fds(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, exclusively borrowed slice of `#[repr(C)]`
    // pollfd structs; the kernel writes only their `revents` fields.
    let n = cvt_r(|| unsafe { poll(fds.as_mut_ptr(), fds.len() as c_ulong, timeout_ms) })?;
    Ok(n as usize)
}

fn sockaddr(addr: SocketAddrV4) -> SockAddrIn {
    SockAddrIn {
        sin_family: AF_INET as u16,
        sin_port: addr.port().to_be(),
        sin_addr: u32::from(*addr.ip()).to_be(),
        sin_zero: [0; 8],
    }
}

/// Starts a non-blocking TCP connection from `src` to `dst`. The stream is returned at once:
/// wait for it to be writable, then `take_error()` tells whether the connection succeeded.
pub fn connect_from(src: SocketAddrV4, dst: SocketAddrV4) -> io::Result<TcpStream> {
    // SAFETY: plain syscall with constant arguments; the result is checked by cvt.
    let fd = cvt(unsafe { socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a socket we just created and nobody else owns; the stream now closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    set_option(fd, SOL_SOCKET, SO_REUSEADDR, &1)?;
    let (src, dst) = (sockaddr(src), sockaddr(dst));
    let len = size_of::<SockAddrIn>() as c_uint;
    // SAFETY: `src` is a valid sockaddr_in that outlives the call; `len` is its size.
    cvt(unsafe { bind(fd, &src, len) })?;
    // SAFETY: as above, for `dst`.
    match cvt_r(|| unsafe { connect(fd, &dst, len) }) {
        Ok(_) => Ok(stream),
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => Ok(stream),
        Err(e) => Err(e),
    }
}

/// Asks the kernel to acknowledge what this socket received at once rather than after the
/// delayed-ACK timer (40 ms). The setting lasts only until the kernel next decides by itself,
/// so it is renewed after every read.
pub fn quick_ack(fd: c_int) -> io::Result<()> {
    set_option(fd, IPPROTO_TCP, TCP_QUICKACK, &1)
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let (soft, max) = limits(RLIMIT_NOFILE)?;
    if soft < max {
        // SAFETY: the rlimit struct is valid for the call; the kernel only reads it.
        cvt(unsafe { setrlimit(RLIMIT_NOFILE, &RLimit { cur: max, max }) })?;
    }
    Ok(max)
}

/// The soft and hard limits of `resource` (`RLIMIT_NOFILE`, `RLIMIT_NPROC`).
pub fn limits(resource: c_int) -> io::Result<(u64, u64)> {
    let mut limit = RLimit { cur: 0, max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit struct.
    cvt(unsafe { getrlimit(resource, &mut limit) })?;
    Ok((limit.cur, limit.max))
}

/// Asks the kernel to kill this process when the thread that started it ends. Run in a
/// server's process between fork and exec, so a server never outlives a loadgen that was
/// interrupted.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) reads only its integer arguments and is
    // async-signal-safe, as code between fork and exec must be.
    cvt(unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL) }).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn connect_from_binds_the_chosen_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind listener");
        let dst = match listener.local_addr().expect("addr") {
            std::net::SocketAddr::V4(v4) => v4,
            other => panic!("unexpected {other}"),
        };
        let src = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 9), 0);
        let stream = connect_from(src, dst).expect("connect");
        let (_peer, peer_addr) = listener.accept().expect("accept");
        assert_eq!(
            peer_addr.ip(),
            std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))
        );
        let mut fds = [PollFd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&stream),
            events: POLLOUT,
            revents: 0,
        }];
        assert_eq!(poll_fds(&mut fds, 1000).expect("poll"), 1);
        assert!(stream.take_error().expect("so_error").is_none());
    }

    #[test]
    fn fd_limit_can_be_raised_to_the_hard_limit() {
        let now = raise_fd_limit().expect("raise");
        let (soft, hard) = limits(RLIMIT_NOFILE).expect("limits");
        assert_eq!((now, soft), (hard, hard));
    }
}
