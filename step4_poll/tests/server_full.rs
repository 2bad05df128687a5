//! Step 4 out of file descriptors: started under a low hard limit, the server fills up, turns
//! newcomers away with `ERR server-full` without spinning, keeps serving its clients, and
//! takes newcomers again as soon as a client leaves.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use grader::Client;

const BIN: &str = env!("CARGO_BIN_EXE_step4_poll");
/// Hard and soft limit on open files for the server: a few dozen clients at most.
const FILE_LIMIT: usize = 32;

/// The server process, killed on drop so that a failing test leaves nothing behind.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server through `sh`, whose `ulimit -n` lowers the hard limit as well as
    /// the soft one, so the server cannot raise it back.
    fn start_with_file_limit(limit: usize) -> Server {
        let script = format!("ulimit -n {limit} && exec \"$0\" 127.0.0.1:0");
        let mut child = Command::new("sh")
            .args(["-c", &script, BIN])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("could not start sh");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no `listening on` line within 10 s");
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("expected `listening on <ip>:<port>`, got {line:?}"));
        server
    }

    /// CPU time used so far (user + system), in clock ticks of 1/100 s.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server is running");
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = |index: usize| fields[index].parse::<u64>().unwrap_or(0);
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        ticks(11) + ticks(12)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers new clients until the server says it is full; returns the ones it took.
fn fill(server: &Server) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..FILE_LIMIT {
        let mut client = Client::connect(server.addr);
        match client.try_register(&format!("c{i}")) {
            Ok(()) => clients.push(client),
            Err(got) if got.contains("ERR server-full") => return clients,
            Err(got) => panic!("client c{i}: expected to be registered or refused, got {got}"),
        }
    }
    panic!("the server took {FILE_LIMIT} clients with only {FILE_LIMIT} descriptors");
}

#[test]
fn out_of_descriptors_refuses_politely_and_recovers() {
    let server = Server::start_with_file_limit(FILE_LIMIT);
    let mut clients = fill(&server);
    assert!(
        clients.len() >= FILE_LIMIT - 8,
        "only {} clients with {FILE_LIMIT} descriptors",
        clients.len()
    );

    // Full: every newcomer is refused and closed, and the refusals leave nothing pending.
    for _ in 0..3 {
        Client::connect(server.addr).expect_err_then_closed("server-full");
    }
    #[cfg(target_os = "linux")]
    {
        let before = server.cpu_ticks();
        thread::sleep(Duration::from_secs(1));
        let used = server.cpu_ticks() - before;
        assert!(
            used < 30,
            "full and idle, the server still used {used}/100 s of CPU in 1 s"
        );
    }

    // The clients it holds still chat.
    let mut last = clients.pop().expect("at least one client");
    clients[0].send_line("MSG still here");
    last.expect_line("MSG c0 still here");

    // One leaves: its descriptor comes free and a newcomer gets in.
    drop(last);
    let mut newcomer = None;
    for _ in 0..50 {
        let mut client = Client::connect(server.addr);
        if client.try_register("newcomer").is_ok() {
            newcomer = Some(client);
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut newcomer = newcomer.expect("no newcomer got in within 5 s after a client left");
    clients[1].send_line("MSG welcome");
    newcomer.expect_line("MSG c1 welcome");
}
