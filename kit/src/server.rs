//! The server fixture: starts a server binary, waits for its `listening on <ip>:<port>` line,
//! keeps draining its output, and kills it on drop.
//!
//! Starting is two calls, so that a server that does not listen can still be asked what
//! happened to it (its exit status, its last lines on stderr) before it is dropped:
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//!
//! let mut command = Command::new("./target/release/step1_naive");
//! command.arg("127.0.0.1:0");
//! let server = kit::Server::spawn(command, 20).expect("start the server");
//! let addr = server.listening(Duration::from_secs(10)).expect("a `listening on` line");
//! ```

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A running server process. Dropping it kills the process and waits for it.
pub struct Server {
    child: Child,
    /// Gets the first line of stdout, once; disconnects if stdout closes before one.
    first_line: mpsc::Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// Why a server gave no address.
#[derive(Debug, PartialEq, Eq)]
pub enum NotListening {
    /// No line within the time given.
    Silent,
    /// Stdout closed before its first line ended: the server has most likely exited.
    Closed,
    /// The first line, without its line ending, which is not `listening on <ip>:<port>`.
    Wrong(String),
}

impl Server {
    /// Runs `command` with stdin from `/dev/null` and stdout and stderr piped to threads of
    /// ours: one hands over the first stdout line, then both drain what follows (a server
    /// blocked on a full pipe would serve no one) and keep the last `tail_lines` of stderr.
    pub fn spawn(mut command: Command, tail_lines: usize) -> io::Result<Server> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (line_tx, first_line) = mpsc::channel();
        let server = Server {
            child,
            first_line,
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
        };
        // From here on, an error drops `server`, which kills the child.
        if let Some(stderr) = stderr {
            keep_tail(stderr, tail_lines, Arc::clone(&server.stderr_tail))?;
        }
        if let Some(stdout) = stdout {
            first_line_then_drain(stdout, line_tx)?;
        }
        Ok(server)
    }

    /// Waits up to `timeout` for the first line of stdout and reads the address in it. Call
    /// it once: the first line comes only once.
    pub fn listening(&self, timeout: Duration) -> Result<SocketAddr, NotListening> {
        let line = match self.first_line.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => return Err(NotListening::Silent),
            Err(RecvTimeoutError::Disconnected) => return Err(NotListening::Closed),
        };
        match parse_listening(&line) {
            Some(addr) => Ok(addr),
            None => Err(NotListening::Wrong(
                line.trim_end_matches(['\r', '\n']).to_string(),
            )),
        }
    }

    /// The server's process id, to read it in `/proc/<pid>/` (see [`crate::proc`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the server has exited, `None` while it runs.
    pub fn exit_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// The last lines the server wrote on stderr, oldest first, without their line endings.
    pub fn stderr_tail(&self) -> Vec<String> {
        match self.stderr_tail.lock() {
            Ok(tail) => tail.iter().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Both fail only if the server is gone already, which is what they are for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `listening on 127.0.0.1:4242` (with `\n` or `\r\n` or nothing after it) -> the address.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim_end_matches(['\r', '\n'])
        .strip_prefix("listening on ")?
        .parse()
        .ok()
}

/// Sends the first line of `stdout` on `tx` (nothing if it closes first), then reads the
/// rest into nothing.
fn first_line_then_drain(
    stdout: impl Read + Send + 'static,
    tx: mpsc::Sender<String>,
) -> io::Result<()> {
    thread::Builder::new().spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        if let Ok(n) = reader.read_until(b'\n', &mut line)
            && n > 0
        {
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        }
        drop(tx);
        let _ = io::copy(&mut reader, &mut io::sink());
    })?;
    Ok(())
}

/// Reads `stderr` to its end, keeping its last `lines` lines in `tail`.
fn keep_tail(
    stderr: impl Read + Send + 'static,
    lines: usize,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> io::Result<()> {
    thread::Builder::new().spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                return;
            }
            let Ok(mut tail) = tail.lock() else { return };
            if tail.len() == lines {
                tail.pop_front();
            }
            if lines > 0 {
                tail.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            line.clear();
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(5);

    /// A stand-in server: `sh -c script`.
    fn sh(script: &str, tail_lines: usize) -> Server {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        Server::spawn(command, tail_lines).expect("start sh")
    }

    /// Waits until `check` holds, for at most `WAIT`.
    fn eventually(mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        check()
    }

    #[test]
    fn listening_lines_parse() {
        let addr = |text: &str| text.parse::<SocketAddr>().ok();
        assert_eq!(
            parse_listening("listening on 127.0.0.1:4242\n"),
            addr("127.0.0.1:4242")
        );
        assert_eq!(
            parse_listening("listening on 127.0.0.1:4242\r\n"),
            addr("127.0.0.1:4242")
        );
        assert_eq!(
            parse_listening("listening on [::1]:4242"),
            addr("[::1]:4242")
        );
        assert_eq!(parse_listening("Listening on 127.0.0.1:4242"), None);
        assert_eq!(parse_listening("listening on 127.0.0.1:4242 "), None);
        assert_eq!(parse_listening("listening on 127.0.0.1"), None);
    }

    #[test]
    fn the_address_is_read_and_drop_kills_the_server() {
        let mut server = sh("echo listening on 127.0.0.1:1; exec sleep 30", 5);
        assert_eq!(
            server.listening(WAIT),
            Ok(SocketAddr::from(([127, 0, 0, 1], 1)))
        );
        assert!(matches!(server.exit_status(), Ok(None)), "still running");
        let proc_dir = format!("/proc/{}", server.pid());
        assert!(Path::new(&proc_dir).exists());
        drop(server);
        // Killed and reaped: the pid is gone, long before the 30 s sleep would end.
        assert!(!Path::new(&proc_dir).exists(), "{proc_dir} still exists");
    }

    #[test]
    fn a_silent_an_exited_and_a_wrong_server_are_told_apart() {
        let silent = sh("exec sleep 30", 5);
        let started = Instant::now();
        assert_eq!(
            silent.listening(Duration::from_millis(200)),
            Err(NotListening::Silent)
        );
        assert!(started.elapsed() < WAIT);

        let mut exited = sh("echo not today >&2; exit 3", 5);
        assert_eq!(exited.listening(WAIT), Err(NotListening::Closed));
        assert!(eventually(
            || matches!(exited.exit_status(), Ok(Some(s)) if s.code() == Some(3))
        ));
        assert!(eventually(|| exited.stderr_tail() == ["not today"]));

        let wrong = sh("echo hello there; exec sleep 30", 5);
        assert_eq!(
            wrong.listening(WAIT),
            Err(NotListening::Wrong("hello there".into()))
        );

        let missing = Server::spawn(Command::new("/nonexistent/server"), 5);
        assert!(missing.is_err());
    }

    #[test]
    fn stderr_keeps_its_last_lines_and_stdout_keeps_draining() {
        // 200 kB after the first line, more than a pipe holds: the server must not block.
        let script = "echo listening on 127.0.0.1:2
            for i in 1 2 3 4 5; do echo \"line $i \" >&2; done
            head -c 200000 /dev/zero
            echo done >&2
            exec sleep 30";
        let server = sh(script, 3);
        assert!(server.listening(WAIT).is_ok());
        let expected = ["line 4", "line 5", "done"];
        assert!(
            eventually(|| server.stderr_tail() == expected),
            "{:?}",
            server.stderr_tail()
        );
    }
}
