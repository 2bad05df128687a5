//! Extension `priv`: `PRIV <name> <text>` sends a text to one client, who receives
//! `PRIV <from> <text>`; an unknown name gets `ERR no-such-user`.

use super::{reply_or_silence, retry_until, start};

const EXT: &str = "priv";

/// The named client gets the text and nobody else does, not even its sender; private and
/// public messages keep the room's one order.
pub fn ext_priv_reaches_only_the_named_client(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let mut carol = server.registered("carol");
    alice.send_line("PRIV bob hello bob, this is for you");
    bob.expect_line("PRIV alice hello bob, this is for you");
    alice.expect_nothing_pending();
    carol.expect_nothing_pending();

    alice.send(b"MSG one\nPRIV bob two\nMSG three\n");
    for line in ["MSG alice one", "PRIV alice two", "MSG alice three"] {
        bob.expect_line(line);
    }
    carol.expect_line("MSG alice one");
    carol.expect_line("MSG alice three");

    carol.send_line("PRIV bob ça va ?  très bien");
    bob.expect_line("PRIV carol ça va ?  très bien");
    for client in [&mut alice, &mut bob, &mut carol] {
        client.expect_nothing_pending();
    }
    server.assert_serving();
}

/// Refusals, checked in this order: no name yet, no such user (names are case-sensitive), no
/// text, a control character in the text. `PRIV` alone is no command.
pub fn ext_priv_refusals(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let mut lurker = server.connect();
    lurker.send_line("PRIV bob hi");
    lurker.expect_err("not-registered");
    for (line, code) in [
        ("PRIV nobody hi", "no-such-user"),
        ("PRIV Bob hi", "no-such-user"),
        ("PRIV nobody", "no-such-user"),
        ("PRIV bob", "empty-message"),
        ("PRIV bob ", "empty-message"),
        ("PRIV bob bell\u{7}", "invalid-text"),
        ("PRIV", "unknown-command"),
    ] {
        alice.send_line(line);
        alice.expect_err(code);
    }
    bob.expect_nothing_pending();

    let carol = server.registered("carol");
    drop(carol);
    retry_until(
        "`PRIV carol ...` to be refused with ERR no-such-user once carol has closed",
        || reply_or_silence(&mut alice, "PRIV carol are you there?"),
        |reply| {
            reply
                .as_deref()
                .is_some_and(|r| r.starts_with("ERR no-such-user "))
        },
    );
    server.assert_serving();
}
