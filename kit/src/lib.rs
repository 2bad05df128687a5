//! What the grader and the load generator both need, written once: starting a server under
//! test, reading a process from `/proc`, and turning C's `-1` into an `io::Error`.
//!
//! - [`Server`]: runs a server binary, waits for its `listening on <ip>:<port>` line, keeps
//!   draining its output and kills it on drop.
//! - [`proc`]: `/proc/<pid>/stat` (CPU time, command name, parent), `/proc/<pid>/status`
//!   (memory, threads), and the counts of `/proc/<pid>/fd` sockets and `/proc/<pid>/maps`.
//! - [`sys`]: `cvt`, `cvt_r` and `setsockopt`, the small FFI layer both tools call through.
//! - [`sockopt`]: the socket options std lacks: `SO_LINGER` 0 (close with a reset) and
//!   `SO_RCVBUF` (a small receive buffer for a client that does not read).
//!
//! Std only, like every crate of the workspace. The servers themselves never use it: a
//! student reads one step's folder and finds all of that step in it.

pub mod proc;
mod server;
pub mod sockopt;
pub mod sys;

pub use server::{NotListening, Server, parse_listening};
