//! Start-up errors: a bad argument or an address in use gives a one-line error on stderr and
//! exit status 2, not a panic.

use crate::client::scenario;
use crate::{STARTUP_TIMEOUT, Server};
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// An address that does not parse: exit status 2 with a one-line error.
pub fn bad_address_exits_with_status_2(bin: &str) {
    expect_exit_2(bin, "not-an-address");
}

/// The address of a running server: exit status 2 with a one-line error; the running server
/// is unaffected.
pub fn address_in_use_exits_with_status_2(bin: &str) {
    let mut server = Server::start(bin);
    expect_exit_2(bin, &server.addr().to_string());
    server.assert_serving();
}

/// Runs `<bin> <address>` and expects it to exit with status 2 and one line on stderr.
fn expect_exit_2(bin: &str, address: &str) {
    let complain = |what: String| -> ! {
        panic!("\n[{}] `{bin} {address}`: {what}\n", scenario());
    };
    let mut child = Command::new(bin)
        .arg(address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| complain(format!("could not start it: {e}")));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                complain(format!(
                    "still running after {STARTUP_TIMEOUT:?}; it must exit"
                ));
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let said = format!("it wrote on stderr: {stderr:?}");
    if status.code() != Some(2) {
        complain(format!("expected exit status 2, got {status}; {said}"));
    }
    if stderr.trim_end().lines().count() != 1 || stderr.contains("panicked") {
        complain(format!(
            "expected exactly one line of error on stderr, no panic; {said}"
        ));
    }
}
