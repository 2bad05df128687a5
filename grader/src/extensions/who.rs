//! Extension `who`: `WHO` answers `USERS <n> <name>...`, the names of every registered client
//! in byte order, to the client that asked.

use super::{retry_until, start};
use crate::Client;

const EXT: &str = "who";

/// The list holds every registered client, the asker too, sorted by bytes (`Zed` before
/// `alice`, `élodie` last); the reply goes to the asker alone; a client that closed drops out.
pub fn ext_who_lists_registered_names_in_byte_order(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut lurker = server.connect();
    let mut clients: Vec<Client> = ["bob", "Zed", "élodie", "alice"]
        .iter()
        .map(|name| server.registered(name))
        .collect();
    clients[3].send_line("WHO");
    clients[3].expect_line("USERS 4 Zed alice bob élodie");
    for client in &mut clients {
        client.expect_nothing_pending();
    }
    lurker.expect_nothing_pending();

    drop(clients.remove(0));
    let alice = &mut clients[2];
    retry_until(
        "`WHO` to answer \"USERS 3 Zed alice élodie\" once bob has closed",
        || {
            alice.send_line("WHO");
            alice.next_line()
        },
        |line| line == "USERS 3 Zed alice élodie",
    );
    server.assert_serving();
}

/// `WHO` needs a name first and takes no argument.
pub fn ext_who_refusals(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut lurker = server.connect();
    lurker.send_line("WHO");
    lurker.expect_err("not-registered");
    alice.send_line("WHO is there");
    alice.expect_err("unknown-command");
    alice.send_line("WHO");
    alice.expect_line("USERS 1 alice");
    lurker.register("bob");
    lurker.send_line("WHO");
    lurker.expect_line("USERS 2 alice bob");
    alice.expect_nothing_pending();
    server.assert_serving();
}
