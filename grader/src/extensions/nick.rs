//! Extension `nick`: `NICK <name>` renames a registered client; the others receive
//! `NICK <old> <new>`, and the old name is free at once.

use super::{all_expect, start};

const EXT: &str = "nick";

/// A rename is announced to the others, later messages carry the new name, the old name can
/// be taken and the new one cannot.
pub fn ext_nick_renames_and_tells_the_others(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let mut carol = server.registered("carol");
    alice.send_line("NICK alicia");
    all_expect(&mut [&mut bob, &mut carol], "NICK alice alicia");
    alice.expect_nothing_pending();
    alice.send_line("MSG it is still me");
    all_expect(&mut [&mut bob, &mut carol], "MSG alicia it is still me");

    let mut other = server.connect();
    other.send_line("USER alicia");
    other.expect_err("name-taken");
    let mut newcomer = server.registered("alice");
    newcomer.send_line("MSG I am the new alice");
    all_expect(
        &mut [&mut alice, &mut bob, &mut carol],
        "MSG alice I am the new alice",
    );
    server.assert_serving();
}

/// Refusals: no name yet, an invalid name, a name in use (its own too). A refused `NICK`
/// changes nothing and tells nobody.
pub fn ext_nick_refusals(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let mut lurker = server.connect();
    lurker.send_line("NICK zoe");
    lurker.expect_err("not-registered");
    let too_long = format!("NICK {}", "n".repeat(33));
    for (line, code) in [
        ("NICK bob", "name-taken"),
        ("NICK alice", "name-taken"),
        ("NICK two words", "invalid-name"),
        ("NICK ", "invalid-name"),
        (too_long.as_str(), "invalid-name"),
        ("NICK", "unknown-command"),
    ] {
        alice.send_line(line);
        alice.expect_err(code);
    }
    bob.expect_nothing_pending();
    alice.send_line("MSG still alice");
    bob.expect_line("MSG alice still alice");
    lurker.register("zoe");
    server.assert_serving();
}
