//! What the client's tests share: a server to talk to (the grader's fixture runs it, and its
//! `grader::Client` plays the other users), and the client itself run through pipes. Each
//! test file uses only part of it.
#![allow(dead_code)]

use std::env;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The client under test: this crate's, or any client binary named by the environment
/// variable `CLIENT_TEST_CLIENT` (to see which tests an older build fails).
pub fn client_bin() -> String {
    match env::var("CLIENT_TEST_CLIENT") {
        Ok(path) => path,
        Err(_) => env!("CARGO_BIN_EXE_client").to_string(),
    }
}

/// The server the tests talk to: `step1_naive`, or any server binary named by the environment
/// variable `CLIENT_TEST_SERVER` (to try the client against another step).
///
/// `step1_naive` is another package, so cargo does not build it for this crate's tests, nor
/// tell us where it is. It lands next to this test's own directory (`target/<profile>/`), so
/// build it there, once per test binary: cheap when it is up to date, and never stale.
pub fn server_bin() -> PathBuf {
    if let Some(path) = env::var_os("CLIENT_TEST_SERVER") {
        return PathBuf::from(path);
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_step1).clone()
}

fn build_step1() -> PathBuf {
    let exe = env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<this test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "-p", "step1_naive", "--target-dir"]);
    cargo
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(other) => {
            cargo.args(["--profile", other]);
        }
        None => panic!("no profile directory in {}", exe.display()),
    }
    let status = cargo.status().expect("run cargo build -p step1_naive");
    assert!(status.success(), "cargo build -p step1_naive failed");
    profile_dir.join("step1_naive")
}

/// The server under test, from the grader: on a port the OS picked, killed when dropped.
pub fn start_server() -> grader::Server {
    grader::Server::start(&server_bin().to_string_lossy())
}

/// The client run through pipes (plain mode); killed when dropped.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line of standard output read so far.
    pub seen: Vec<String>,
}

impl Client {
    pub fn start(addr: &str) -> Client {
        let mut child = Command::new(client_bin())
            .arg(addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the client");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Types a line (LF added).
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("input still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("client reads its input");
    }

    /// Ctrl-D: the end of the input.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Waits for a line of output equal to `wanted`.
    pub fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.seen.iter().any(|line| line == wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no line {wanted:?} in the output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the client to exit: its status, all of its output, its standard error.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit:\n{}",
                self.seen.join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        (status, std::mem::take(&mut self.seen), stderr)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
