//! Step 3's own scenario: the pool's size bounds the clients. With 4 workers (2 per client),
//! two clients chat and a third hears `ERR server-full` at once, then a departure makes room.

use grader::Server;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_step3_pool");

/// How long the workers of a client that left may take to become idle again.
const FREED_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn a_full_pool_answers_server_full_and_a_departure_makes_room() {
    let mut server = Server::start_with_args(BIN, &["--workers", "4"]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");

    let mut third = server.connect();
    third.expect_err_then_closed("server-full");
    alice.send_line("MSG still chatting");
    bob.expect_line("MSG alice still chatting");

    drop(bob);
    let mut carol = register_when_room(&server, "carol");
    carol.send_line("MSG hello alice");
    alice.expect_line("MSG carol hello alice");
    server.assert_alive();
}

/// Connects until a client gets in: the leaver's workers come back once its reader and writer
/// have seen the close, which takes a moment.
fn register_when_room(server: &Server, name: &str) -> grader::Client {
    let deadline = Instant::now() + FREED_WITHIN;
    loop {
        let mut client = server.connect();
        match client.try_register(name) {
            Ok(()) => return client,
            Err(got) if Instant::now() < deadline => {
                assert!(
                    got.contains("server-full"),
                    "expected ERR server-full, got {got}"
                );
                thread::sleep(Duration::from_millis(20));
            }
            Err(got) => panic!("no room for {name} within {FREED_WITHIN:?}: {got}"),
        }
    }
}
