//! Extension scenarios: the machine-graded tasks of `exercises.md`, off by default.
//!
//! Each file grades one extension, as `grader/EXTENSIONS.md` defines it. A step's
//! `tests/extensions.rs` expands them with `extension_tests!`, which marks every one
//! `#[ignore]`: `make test` skips them, and `make grade EX=who STEP=step4` runs the scenarios
//! of one extension, the tests whose names start with `ext_who_`.
//!
//! An extension adds to the protocol, so the conformance scenarios must still pass once it is
//! done: new commands only answer those who use them, and a change that would send lines
//! nobody asked for (join and leave notices) or refuse lines the contract allows (a rate
//! limit) is switched on by a command-line option.

mod idle_cpu;
mod join_leave;
mod nick;
mod pool_grows;
mod private_messages;
mod rate_limit;
mod who;

pub use idle_cpu::*;
pub use join_leave::*;
pub use nick::*;
pub use pool_grows::*;
pub use private_messages::*;
pub use rate_limit::*;
pub use who::*;

use crate::client::scenario;
use crate::{Client, REPLY_TIMEOUT, Server};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `<bin> 127.0.0.1:0 <args...>` for extension `ext`, after one line saying so: a failing
/// test shows it above the failure, with the option the server may have refused.
fn start(bin: &str, ext: &str, args: &[&str]) -> Server {
    let options: String = args.iter().map(|arg| format!(" {arg}")).collect();
    eprintln!(
        "extension `{ext}` (see grader/EXTENSIONS.md), server started as \
         `{bin} 127.0.0.1:0{options}`"
    );
    Server::start_with_args(bin, args)
}

/// Every client in `clients` must receive `line` next.
fn all_expect(clients: &mut [&mut Client], line: &str) {
    for client in clients {
        client.expect_line(line);
    }
}

/// Sends `line` from a registered client, then a second `USER`, which must be refused with
/// `ERR already-registered`. Returns the reply to `line`, or `None` if the probe's refusal came
/// first (the server took `line` in silence). The probe's own reply is consumed either way.
fn reply_or_silence(client: &mut Client, line: &str) -> Option<String> {
    client.send(format!("{line}\nUSER probe\n").as_bytes());
    let first = client.next_line();
    if first.starts_with("ERR already-registered ") {
        return None;
    }
    client.expect_err("already-registered");
    Some(first)
}

/// Repeats `ask` until `done` accepts its result, for at most `REPLY_TIMEOUT`: a client that
/// closed leaves the room a moment later, not at once.
fn retry_until<T: std::fmt::Debug>(
    what: &str,
    mut ask: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let got = ask();
        if done(&got) {
            return got;
        }
        if Instant::now() > deadline {
            panic!(
                "\n[{}] expected {what} within {REPLY_TIMEOUT:?}; the last answer was {got:?}\n",
                scenario()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
