//! Step 4 out of file descriptors: started under a low hard limit, the server fills up, turns
//! newcomers away with `ERR server-full` without spinning, keeps serving its clients, and
//! takes newcomers again as soon as a client leaves.

use std::thread;
use std::time::Duration;

use grader::{Client, Server};

const BIN: &str = env!("CARGO_BIN_EXE_step4_poll");
/// Hard and soft limit on open files for the server: a few dozen clients at most.
const FILE_LIMIT: usize = 32;

/// Registers new clients until the server says it is full; returns the ones it took.
fn fill(server: &Server) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..FILE_LIMIT {
        let mut client = server.connect();
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
    let mut server = Server::start_with_file_limit(BIN, FILE_LIMIT);
    let mut clients = fill(&server);
    assert!(
        clients.len() >= FILE_LIMIT - 8,
        "only {} clients with {FILE_LIMIT} descriptors",
        clients.len()
    );

    // Full: every newcomer is refused and closed, and the refusals leave nothing pending.
    for _ in 0..3 {
        server.connect().expect_err_then_closed("server-full");
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
        let mut client = server.connect();
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
