//! The server fixture: spawns the binary under test on a port the OS picks, kills it on drop.

use crate::{Client, STARTUP_TIMEOUT};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

/// How many of the server's last stderr lines a failure message shows.
const STDERR_TAIL: usize = 20;

/// A running server under test. Dropping it kills the process.
pub struct Server {
    bin: String,
    child: Child,
    addr: SocketAddr,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Set once a failure message has told the server's side, so `drop` does not repeat it.
    reported: bool,
}

impl Server {
    /// Runs `<bin> 127.0.0.1:0` and waits for its `listening on <ip>:<port>` line.
    pub fn start(bin: &str) -> Server {
        Server::start_with_args(bin, &[])
    }

    /// Runs `<bin> 127.0.0.1:0 <args...>` and waits for its `listening on <ip>:<port>` line.
    pub fn start_with_args(bin: &str, args: &[&str]) -> Server {
        let mut command = Command::new(bin);
        command.arg("127.0.0.1:0").args(args);
        Server::spawn(bin, command)
    }

    /// Runs `<bin> 127.0.0.1:0` through `sh`, whose `ulimit -n <limit>` lowers the hard limit
    /// on open files as well as the soft one, so the server cannot raise it back. `sh` then
    /// `exec`s the server, so [`Server::pid`] is the server's own.
    pub fn start_with_file_limit(bin: &str, limit: usize) -> Server {
        let script = format!("ulimit -n {limit} && exec \"$0\" 127.0.0.1:0");
        let mut command = Command::new("sh");
        command.args(["-c", &script, bin]);
        Server::spawn(bin, command)
    }

    fn spawn(bin: &str, mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the server `{bin}`: {e}"));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            keep_tail(stderr, Arc::clone(&stderr_tail));
        }
        let first_line = read_first_stdout_line(&mut child);
        let mut server = Server {
            bin: bin.to_string(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr_tail,
            reported: false,
        };
        server.addr = match first_line {
            Some(line) => server.parse_listening_line(&line),
            None => server.fail(&format!(
                "the server printed no `listening on <ip>:<port>` line within {STARTUP_TIMEOUT:?}"
            )),
        };
        server
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id, to read its CPU time or threads in `/proc/<pid>/`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many sockets the server process holds open right now: the entries of
    /// `/proc/<pid>/fd` that are links to `socket:[...]` (Linux only).
    pub fn socket_count(&mut self) -> usize {
        let dir = format!("/proc/{}/fd", self.pid());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => self.fail(&format!("could not list {dir}: {e}")),
        };
        let is_socket = |entry: std::io::Result<std::fs::DirEntry>| {
            let target = std::fs::read_link(entry.ok()?.path()).ok()?;
            Some(target.to_string_lossy().starts_with("socket:"))
        };
        entries
            .filter_map(is_socket)
            .filter(|&socket| socket)
            .count()
    }

    /// A new connection to the server.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new connection, registered as `name`.
    pub fn registered(&self, name: &str) -> Client {
        let mut client = self.connect();
        client.register(name);
        client
    }

    /// Fails unless the server process is still running (a server never exits on its own).
    pub fn assert_alive(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(_)) => self.fail("the server is no longer running (a server never exits)"),
            Err(e) => self.fail(&format!("could not ask whether the server runs: {e}")),
        }
    }

    /// Fails unless the server is alive and two fresh clients can still chat.
    pub fn assert_serving(&mut self) {
        self.assert_alive();
        let mut first = self.registered("fresh1");
        let mut second = self.registered("fresh2");
        first.send_line("MSG still serving?");
        second.expect_line("MSG fresh1 still serving?");
        second.send_line("MSG yes");
        first.expect_line("MSG fresh2 yes");
    }

    fn parse_listening_line(&mut self, line: &str) -> SocketAddr {
        let parsed = line
            .trim_end_matches(['\r', '\n'])
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok());
        match parsed {
            Some(addr) => addr,
            None => self.fail(&format!(
                "the first line on stdout must be `listening on <ip>:<port>`, got {line:?}"
            )),
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        self.reported = true;
        let report = self.report();
        panic!(
            "\n[{}] server `{}`: {what}\n{report}",
            crate::client::scenario(),
            self.bin
        );
    }

    /// The server's side of a failure: whether it still runs, and its last stderr lines.
    fn report(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => {
                // Give the stderr thread a moment to collect the dying words.
                thread::sleep(Duration::from_millis(100));
                format!("the server process has exited ({status})")
            }
            _ => "the server process is still running".to_string(),
        };
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        if tail.is_empty() {
            return format!("{status}; it wrote nothing on stderr");
        }
        let lines: Vec<String> = tail.iter().map(|l| format!("  | {l}")).collect();
        format!("{status}; its last lines on stderr:\n{}", lines.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing scenario is easier to understand with the server's side of the story.
        if thread::panicking() && !self.reported {
            let report = self.report();
            eprintln!("server `{}` at the failure: {report}", self.bin);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's first stdout line on a thread, so that a silent server cannot hang the
/// test, then keeps draining stdout so the server never blocks on a full pipe.
fn read_first_stdout_line(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(reader.read_line(&mut line).map(|_| line));
        let _ = io::copy(&mut reader, &mut io::sink());
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(Ok(line)) if !line.is_empty() => Some(line),
        _ => None,
    }
}

/// Drains the child's stderr on a thread, keeping its last lines for failure messages.
fn keep_tail(stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                return;
            }
            let Ok(mut tail) = tail.lock() else { return };
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
            line.clear();
        }
    });
}
