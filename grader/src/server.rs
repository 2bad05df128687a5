//! The server fixture: spawns the binary under test on a port the OS picks, kills it on drop.

use crate::{Client, STARTUP_TIMEOUT};
use kit::NotListening;
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::Duration;

/// How many of the server's last stderr lines a failure message shows.
const STDERR_TAIL: usize = 20;

/// A running server under test. Dropping it kills the process.
pub struct Server {
    bin: String,
    process: kit::Server,
    addr: SocketAddr,
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

    fn spawn(bin: &str, command: Command) -> Server {
        let process = kit::Server::spawn(command, STDERR_TAIL)
            .unwrap_or_else(|e| panic!("could not start the server `{bin}`: {e}"));
        let listening = process.listening(STARTUP_TIMEOUT);
        let mut server = Server {
            bin: bin.to_string(),
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            reported: false,
        };
        server.addr = match listening {
            Ok(addr) => addr,
            Err(NotListening::Wrong(line)) => server.fail(&format!(
                "the first line on stdout must be `listening on <ip>:<port>`, got {line:?}"
            )),
            Err(NotListening::Silent | NotListening::Closed) => server.fail(&format!(
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
        self.process.pid()
    }

    /// CPU time the server has used so far, user and system, in clock ticks
    /// (`kit::sys::clock_ticks_per_second()` a second), from `/proc/<pid>/stat`.
    pub fn cpu_ticks(&mut self) -> u64 {
        match kit::proc::stat(self.pid()) {
            Ok(stat) => stat.cpu_ticks(),
            Err(e) => self.fail(&format!("could not read /proc/{}/stat: {e}", self.pid())),
        }
    }

    /// How many sockets the server process holds open right now: the entries of
    /// `/proc/<pid>/fd` that are links to `socket:[...]` (Linux only).
    pub fn socket_count(&mut self) -> usize {
        match kit::proc::socket_count(self.pid()) {
            Ok(count) => count,
            Err(e) => self.fail(&format!("could not list /proc/{}/fd: {e}", self.pid())),
        }
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
        match self.process.exit_status() {
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
        let status = match self.process.exit_status() {
            Ok(Some(status)) => {
                // Give the stderr thread a moment to collect the dying words.
                thread::sleep(Duration::from_millis(100));
                format!("the server process has exited ({status})")
            }
            _ => "the server process is still running".to_string(),
        };
        let tail = self.process.stderr_tail();
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
        // Then `process` drops, which kills the server.
    }
}
