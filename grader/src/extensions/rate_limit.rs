//! Extension `rate-limit`: started with `--rate-limit N`, the server accepts at most N `MSG`
//! lines from one client per second; the others get `ERR rate-limited` and are dropped.

use super::{all_expect, start};
use std::thread;
use std::time::Duration;

const EXT: &str = "rate-limit";
/// The limit the scenario sets: messages per client per second.
const LIMIT: usize = 5;
/// The burst: sent in one write, so it all arrives within the same second.
const BURST: usize = 3 * LIMIT;

/// A burst of 15 messages: the first 5 are delivered in order, each of the 10 others is
/// refused, the connection stays open, other clients are not limited, and a second later the
/// flooder may speak again.
pub fn ext_rate_limit_flood_is_refused_and_the_connection_stays(bin: &str) {
    let limit = LIMIT.to_string();
    let mut server = start(bin, EXT, &["--rate-limit", &limit]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let mut carol = server.registered("carol");

    let burst: String = (0..BURST).map(|i| format!("MSG flood {i}\n")).collect();
    alice.send(burst.as_bytes());
    for _ in LIMIT..BURST {
        alice.expect_err("rate-limited");
    }
    alice.expect_nothing_pending();
    carol.send_line("MSG I am not limited");
    for i in 0..LIMIT {
        all_expect(&mut [&mut bob, &mut carol], &format!("MSG alice flood {i}"));
    }
    bob.expect_line("MSG carol I am not limited");
    bob.expect_nothing_pending();
    carol.expect_nothing_pending();

    // Every accepted message is now more than a second old.
    thread::sleep(Duration::from_millis(1100));
    alice.send_line("MSG a second later");
    all_expect(&mut [&mut bob, &mut carol], "MSG alice a second later");
    server.assert_serving();
}
