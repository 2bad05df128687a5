//! Flow control (PROTOCOL.md, "Flow control"): floods from senders the grader never paces.
//! A client that keeps reading, at whatever pace, loses nothing; a client that stopped
//! reading is cut within `PATIENCE` and its socket freed; nobody freezes the room for long.
//!
//! Every sender here is a thread that `write_all`s large chunks as fast as TCP takes them:
//! when the server stops reading it, TCP makes the write wait, and that is the back-pressure
//! under test.

use super::spawn_in;
use crate::client::{Received, scenario};
use crate::{Client, STALL_TIMEOUT, Server};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

/// The longest `PATIENCE` the contract allows a server.
const PATIENCE_MAX: Duration = Duration::from_secs(5);
/// Bytes per `write` of a flooding sender: as big as a paste through `nc`.
const WRITE_CHUNK: usize = 64 * 1024;
/// Length of every flood line as the receivers see it, LF included.
const FLOOD_LINE_LEN: usize = 200;
/// Length of the lines of the flood that leaves a client that never reads behind: long, so
/// that the backlog a server may queue for it (`SOFT` lines) is more than the kernel takes.
const LONG_LINE_LEN: usize = 1000;
/// The kernel receive buffer of a client that reads little or nothing: small, so the
/// server's bound, not the kernel, decides when it is behind.
const SMALL_RCVBUF: i32 = 4 * 1024;

/// The text of flood message `i`: its number, then one letter repeated, so that the line
/// `MSG sender <text>` is `FLOOD_LINE_LEN` bytes long.
fn flood_text(i: usize) -> String {
    sized_text(i, FLOOD_LINE_LEN)
}

/// The text of message `i` such that `MSG sender <text>` and LF take `line_len` bytes.
fn sized_text(i: usize, line_len: usize) -> String {
    let fill = char::from(b'a' + (i % 26) as u8);
    let letters: String = std::iter::repeat_n(fill, line_len - 18).collect();
    format!("{i:05} {letters}")
}

/// Flood message `i` as the others receive it from `sender`.
fn flood_line(sender: &str, i: usize) -> String {
    format!("MSG {sender} {}", flood_text(i))
}

/// Every `MSG` line of a flood of `count` messages, as one byte string.
fn flood_bytes(count: usize, text: impl Fn(usize) -> String) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..count {
        bytes.extend_from_slice(format!("MSG {}\n", text(i)).as_bytes());
    }
    bytes
}

/// Sends `bytes` in `WRITE_CHUNK` writes, each as fast as TCP takes it; returns when the last
/// write returned. A write that blocks longer than `STALL_TIMEOUT` fails inside `Client::send`.
fn send_unpaced(sender: &mut Client, bytes: &[u8]) -> Instant {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        sender.send(chunk);
    }
    Instant::now()
}

/// What one reader of a flood received.
struct FloodReceipt {
    /// The reader, as the failure message names it.
    who: String,
    /// How many messages arrived, in order, before the first problem.
    in_order: usize,
    /// The first problem: a wrong line, the end of the connection, or a silence.
    problem: Option<String>,
    /// Whether the server told this reader `ERR too-slow`.
    too_slow: bool,
    /// When each message arrived.
    arrivals: Vec<Instant>,
}

impl FloodReceipt {
    /// Fails, telling what the reader got, unless it received all `count` messages.
    fn assert_complete(&self, count: usize) {
        let Some(problem) = &self.problem else { return };
        let cut = if self.too_slow {
            "; the server cut it with `ERR too-slow`, although it kept reading"
        } else {
            ""
        };
        panic!(
            "\n[{}] {} received {} of the {count} messages in order, then {problem}{cut}. A \
             client that keeps reading must get every message, however fast the sender talks: \
             while a receiver is behind, the server must stop reading the sender (TCP then \
             makes it wait), not drop the receiver\n",
            scenario(),
            self.who,
            self.in_order,
        );
    }

    /// The longest time between the start of the flood and the first message, or between two
    /// successive messages, counting only the waits that began before `sent`, while the
    /// sender still had data to send.
    fn longest_wait_before(&self, start: Instant, sent: Instant) -> Duration {
        let mut longest = Duration::ZERO;
        let mut previous = start;
        for &arrival in &self.arrivals {
            if previous < sent {
                longest = longest.max(arrival.duration_since(previous));
            }
            previous = arrival;
        }
        longest
    }
}

/// Reads the `count` messages `line(i)` of a flood, each within `STALL_TIMEOUT`, stopping
/// at the first line that is not the expected one. Never fails: the caller tells the story.
fn read_flood(
    reader: &mut Client,
    who: String,
    count: usize,
    line: impl Fn(usize) -> String,
) -> FloodReceipt {
    let mut receipt = FloodReceipt {
        who,
        in_order: 0,
        problem: None,
        too_slow: false,
        arrivals: Vec::with_capacity(count),
    };
    for i in 0..count {
        let expected = line(i);
        let problem = match reader.receive(STALL_TIMEOUT) {
            Received::Line(got) if got == expected => {
                receipt.in_order += 1;
                receipt.arrivals.push(Instant::now());
                continue;
            }
            Received::Line(got) => {
                receipt.too_slow = got.starts_with("ERR too-slow ");
                let got = Received::Line(got).describe();
                format!(
                    "message {i} should have been {:?}, got {got}",
                    shorten(&expected)
                )
            }
            other => format!("waiting for message {i}, got {}", other.describe()),
        };
        receipt.problem = Some(problem);
        break;
    }
    receipt
}

/// The start of `line`, for failure messages.
fn shorten(line: &str) -> String {
    line.chars().take(40).collect::<String>() + "..."
}

/// Messages of the two-reader flood: 50,000 lines of 200 bytes, some 10 MB.
const TWO_READERS_MESSAGES: usize = 50_000;
/// How fast the paced reader reads: a steady pace, far below what the sender can send.
const PACED_BYTES_PER_SEC: f64 = 2_000_000.0;
/// The most the paced reader takes in one read.
const PACED_MAX_READ: usize = 16 * 1024;

/// One sender pastes 50,000 messages of 200 bytes as fast as TCP takes them; one reader
/// reads at full speed, another at a steady 2 MB/s. Both must get every message, in order:
/// the server has to make the sender wait for the slower reader instead of cutting it.
pub fn flood_reaches_a_fast_and_a_paced_reader(bin: &str) {
    let mut server = Server::start(bin);
    let mut fast = server.registered("fast");
    let mut paced = server.registered("paced");
    paced.pace_reads(Some((PACED_BYTES_PER_SEC, PACED_MAX_READ)));
    let mut sender = server.registered("sender");
    let bytes = flood_bytes(TWO_READERS_MESSAGES, flood_text);
    let line = |i| flood_line("sender", i);
    let receipts = thread::scope(|scope| {
        let readers = [
            (&mut fast, "the full-speed reader `fast`"),
            (&mut paced, "the reader `paced` (2 MB/s)"),
        ];
        let handles: Vec<_> = readers
            .into_iter()
            .map(|(reader, who)| {
                spawn_in(scope, who, move || {
                    read_flood(reader, who.to_string(), TWO_READERS_MESSAGES, line)
                })
            })
            .collect();
        spawn_in(scope, "sender", || send_unpaced(&mut sender, &bytes));
        handles.into_iter().map(join).collect::<Vec<_>>()
    });
    for receipt in &receipts {
        receipt.assert_complete(TWO_READERS_MESSAGES);
    }
    server.assert_serving();
}

/// Clients of the everyone-floods scenario, and how many messages each sends.
const CROWD: usize = 16;
const CROWD_MESSAGES: usize = 10_000;

/// The text of message `i` of a crowd client: numbered, 200 bytes in all as received.
fn crowd_text(i: usize) -> String {
    sized_text(i, FLOOD_LINE_LEN)
}

/// 16 clients each paste 10,000 messages, unpaced, while each of them reads at full speed:
/// each must get all the messages of the other 15, each sender's in the order sent.
pub fn sixteen_clients_flood_and_each_gets_everything(bin: &str) {
    let mut server = Server::start(bin);
    let names: Vec<String> = (0..CROWD).map(|i| format!("c{i:02}")).collect();
    let mut clients: Vec<Client> = names.iter().map(|n| server.registered(n)).collect();
    let bytes = flood_bytes(CROWD_MESSAGES, crowd_text);
    let (readers, senders) = thread::scope(|scope| {
        let mut readers = Vec::new();
        let mut senders = Vec::new();
        for client in &mut clients {
            let mut half = client.sending_half();
            let role = format!("{} sending", client.label());
            let bytes = &bytes;
            senders.push(spawn_in(scope, &role, move || send_crowd(&mut half, bytes)));
            let role = format!("{} reading", client.label());
            let names = &names;
            readers.push(spawn_in(scope, &role, move || read_crowd(client, names)));
        }
        let readers: Vec<String> = readers.into_iter().filter_map(join).collect();
        let senders: Vec<String> = senders.into_iter().filter_map(join).collect();
        (readers, senders)
    });
    if !readers.is_empty() || !senders.is_empty() {
        let senders = if senders.is_empty() {
            String::new()
        } else {
            format!(
                "\n  and {} of the senders failed:\n  {}",
                senders.len(),
                senders.join("\n  ")
            )
        };
        panic!(
            "\n[{}] {} of the {CROWD} clients, each sending {CROWD_MESSAGES} messages as fast \
             as TCP allows while reading at full speed, did not get everything:\n  {}{senders}\n  \
             A client that keeps reading must get every message: while a receiver is behind, \
             the server must stop reading the senders, not drop the receiver\n",
            scenario(),
            readers.len(),
            readers.join("\n  ")
        );
    }
    server.assert_serving();
}

/// Sends `bytes` like `send_unpaced`; returns what went wrong, if anything: a client the
/// server cut cannot send, and its reader tells why.
fn send_crowd(sender: &mut Client, bytes: &[u8]) -> Option<String> {
    for (i, chunk) in bytes.chunks(WRITE_CHUNK).enumerate() {
        if let Err(e) = sender.try_send(chunk) {
            let at = i * WRITE_CHUNK;
            return Some(format!(
                "`{}` sending: {e} after {at} bytes",
                sender.label()
            ));
        }
    }
    None
}

/// Reads every message of the other crowd clients, checking each sender's order; returns
/// what went wrong, if anything.
fn read_crowd(client: &mut Client, names: &[String]) -> Option<String> {
    let me = client.label().to_string();
    let mut next: HashMap<&str, usize> = names
        .iter()
        .filter(|n| **n != me)
        .map(|n| (n.as_str(), 0))
        .collect();
    let due = (CROWD - 1) * CROWD_MESSAGES;
    for received in 0..due {
        let got = match client.receive(STALL_TIMEOUT) {
            Received::Line(got) => got,
            other => {
                return Some(format!(
                    "`{me}` received {received} of {due} messages, then {}",
                    other.describe()
                ));
            }
        };
        let from = got
            .strip_prefix("MSG ")
            .and_then(|rest| rest.split(' ').next());
        let expected = from.and_then(|from| {
            let i = next.get_mut(from)?;
            let line = format!("MSG {from} {}", crowd_text(*i));
            *i += 1;
            Some(line)
        });
        if expected.as_deref() != Some(got.as_str()) {
            let cut = if got.starts_with("ERR too-slow ") {
                " (the server cut it, although it kept reading)"
            } else {
                ""
            };
            let wanted = match expected {
                Some(line) => format!("{:?} next from that sender", shorten(&line)),
                None => "a message from one of the other clients".to_string(),
            };
            return Some(format!(
                "`{me}` received {received} of {due} messages in order, then {}{cut}, \
                 expected {wanted}",
                Received::Line(got).describe()
            ));
        }
    }
    None
}

/// Messages of the floods that leave a client behind: 30,000 lines of 200 bytes, some 6 MB,
/// far more than any server may queue for one receiver, so the room cannot pass them all on
/// before it has cut the client that does not keep up.
const BEHIND_MESSAGES: usize = 30_000;
/// How long after the flood began the client that reads a byte now and then must be cut: it
/// falls behind at once, so `PATIENCE_MAX` plus a margin for a loaded machine.
const CUT_WITHIN: Duration = Duration::from_secs(5 + 3);
/// The longest the room may freeze: `PATIENCE_MAX` plus a margin.
const FROZEN_AT_MOST: Duration = Duration::from_secs(5 + 1);
/// How the nibbling client reads: one byte per read, ten a second.
const NIBBLE_BYTES_PER_SEC: f64 = 10.0;

/// While `sender` pastes 6 MB, a client reads one byte every 100 ms (its kernel buffer
/// 4 KiB): it must be cut (EOF or reset, maybe after `ERR too-slow`) within `PATIENCE_MAX`
/// plus 3 s of the flood's start, having received a prefix of the messages; the full-speed
/// reader must lose nothing, and the room must never freeze for more than `PATIENCE_MAX`
/// plus 1 s while the sender still has data to send.
///
/// A client reading 10 bytes a second would take minutes to reach the end of a closed
/// connection (a close waits behind the data in flight), so the grader sees the cut from
/// outside as well: the server's side of the connection in `/proc/net/tcp` leaves the
/// ESTABLISHED state when the server closes it (or shuts down its writing side), and goes
/// away when the server resets it.
pub fn client_reading_a_byte_now_and_then_is_cut_and_the_room_moves_on(bin: &str) {
    let mut server = Server::start(bin);
    let mut nibbler = server.connect();
    nibbler.set_recv_buffer(SMALL_RCVBUF);
    nibbler.register("nibbler");
    let connection = (server.addr(), nibbler.local_addr());
    assert_established(connection, "nibbler");
    let mut fast = server.registered("fast");
    let mut sender = server.registered("sender");
    let bytes = flood_bytes(BEHIND_MESSAGES, flood_text);
    let start = Instant::now();
    let (receipt, sent, nibbled) = thread::scope(|scope| {
        let reader = spawn_in(scope, "fast", || {
            let who = "the full-speed reader `fast`".to_string();
            read_flood(&mut fast, who, BEHIND_MESSAGES, |i| flood_line("sender", i))
        });
        let sender = spawn_in(scope, "sender", || send_unpaced(&mut sender, &bytes));
        let nibbled = nibble_until_cut(&mut nibbler, connection, start + CUT_WITHIN);
        (join(reader), join(sender), nibbled)
    });
    receipt.assert_complete(BEHIND_MESSAGES);
    let frozen = receipt.longest_wait_before(start, sent);
    assert!(
        frozen <= FROZEN_AT_MOST,
        "\n[{}] the room froze for {frozen:?}: the full-speed reader `fast` waited that long \
         for the next message while the sender still had data to send. A client that does \
         not keep up may pause the room for `PATIENCE` (at most {PATIENCE_MAX:?}), then it \
         is cut and the room goes on\n",
        scenario()
    );
    check_nibbler(&nibbled);
    server.assert_serving();
}

/// What the nibbling client got: its lines, and how its connection ended, if it did.
struct Nibbled {
    lines: Vec<String>,
    cut: Option<String>,
}

/// Reads a byte every 100 ms until the server cuts the connection or `deadline` passes.
fn nibble_until_cut(
    nibbler: &mut Client,
    connection: (SocketAddr, SocketAddr),
    deadline: Instant,
) -> Nibbled {
    nibbler.pace_reads(Some((NIBBLE_BYTES_PER_SEC, 1)));
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        if let Some(how) = server_side_closed(connection) {
            return Nibbled {
                lines,
                cut: Some(how),
            };
        }
        match nibbler.receive(Duration::from_millis(100)) {
            Received::Line(line) => lines.push(line),
            Received::Closed(how) => {
                return Nibbled {
                    lines,
                    cut: Some(how),
                };
            }
            Received::Nothing(_) => {}
        }
    }
    Nibbled { lines, cut: None }
}

/// The nibbling client must have been cut, with no gap in what it received before.
fn check_nibbler(nibbled: &Nibbled) {
    if nibbled.cut.is_none() {
        panic!(
            "\n[{}] the client `nibbler` that reads one byte every 100 ms (4 KiB receive \
             buffer) was not cut: {CUT_WITHIN:?} after the flood began it was still connected \
             (the server's side of its connection still ESTABLISHED in /proc/net/tcp), having \
             received {} lines. A receiver more than `SOFT` behind for longer than `PATIENCE` \
             (at most {PATIENCE_MAX:?}) must be cut\n",
            scenario(),
            nibbled.lines.len()
        );
    }
    let line = |i| flood_line("sender", i);
    if let Err(what) = check_cut_prefix(&nibbled.lines, BEHIND_MESSAGES, line) {
        panic!(
            "\n[{}] the client `nibbler` that reads one byte every 100 ms: {what}\n",
            scenario()
        );
    }
}

/// The state of the server's side of the connection `(server, client)` in `/proc/net/tcp`:
/// `None` while the server holds it ESTABLISHED, else what became of it.
fn server_side_closed((server, client): (SocketAddr, SocketAddr)) -> Option<String> {
    match server_side_state(server, client) {
        Some(state) if state == "01" => None,
        Some(state) => Some(format!(
            "the server closed it (TCP state {state:?} on its side)"
        )),
        None => Some("the server reset it (its side is gone)".to_string()),
    }
}

/// The hexadecimal TCP state (`01` ESTABLISHED, `04` FIN_WAIT1, ...) of the socket whose
/// local address is `local` and remote address `remote`, from `/proc/net/tcp`.
fn server_side_state(local: SocketAddr, remote: SocketAddr) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (local, remote) = (proc_net_addr(local), proc_net_addr(remote));
    table.lines().skip(1).find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let matches =
            fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str());
        matches
            .then(|| fields.get(3).map(|s| s.to_string()))
            .flatten()
    })
}

/// An address as `/proc/net/tcp` writes it: the IPv4 address as a native-endian 32-bit
/// number, then the port, both in upper-case hexadecimal.
fn proc_net_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => u32::from_ne_bytes(ip.octets()),
        IpAddr::V6(_) => 0,
    };
    format!("{ip:08X}:{:04X}", addr.port())
}

/// Fails unless the grader sees the server's side of `who`'s connection in `/proc/net/tcp`.
fn assert_established(connection: (SocketAddr, SocketAddr), who: &str) {
    if let Some(how) = server_side_closed(connection) {
        panic!(
            "\n[{}] the grader looks for the server's side of the connection of `{who}` in \
             /proc/net/tcp ({} to {}), registered a moment ago, but found: {how}\n",
            scenario(),
            connection.0,
            connection.1
        );
    }
}

/// What a client that was cut may have received: the first messages, in order with no gap,
/// and not all `count` of them; maybe `ERR too-slow` last. The cut is best effort, so the
/// last line may also begin with the start of the next message, cut short, just before
/// `ERR too-slow`.
pub(crate) fn check_cut_prefix(
    lines: &[String],
    count: usize,
    line: impl Fn(usize) -> String,
) -> Result<(), String> {
    let mut messages = lines;
    if let Some((last, before)) = lines.split_last()
        && let Some(at) = last.find("ERR too-slow ")
    {
        if !line(before.len()).starts_with(&last[..at]) {
            return Err(format!(
                "its last line {:?} should be the start of message {} then `ERR too-slow`",
                shorten(last),
                before.len()
            ));
        }
        messages = before;
    }
    if messages.len() >= count {
        return Err(format!(
            "it received all {count} messages, so the server queued them all for it: a \
             client that stopped reading must be cut"
        ));
    }
    for (i, got) in messages.iter().enumerate() {
        if *got != line(i) {
            return Err(format!(
                "line {i} should be message {i} (messages may not be skipped), got {:?}",
                shorten(got)
            ));
        }
    }
    Ok(())
}

/// How long after the cut the server may still hold the socket of the client it cut.
const FREED_WITHIN: Duration = Duration::from_secs(2);
/// Messages of the flood that leaves the client that never reads behind: 6,000 lines of
/// 1000 bytes, some 6 MB.
const LONG_MESSAGES: usize = 6_000;

/// A client with a 4 KiB receive buffer that never reads and never closes falls behind at
/// once while `sender` pastes 6 MB: within 2 s of its cut the server must hold its socket no
/// more (no descriptor kept, no thread blocked in `write` on it).
///
/// The grader sees both from outside. The cut: the server's side of the connection in
/// `/proc/net/tcp` leaves the ESTABLISHED state (close, shutdown) or goes away (reset); if
/// that is never seen, the cut is due at the latest `PATIENCE_MAX` after the flood began,
/// since the sleeper falls behind as it begins. The socket: the server's sockets are the
/// entries of `/proc/<pid>/fd` that link to `socket:[...]`; counted before the sleeper
/// connects, the count must come back there.
pub fn cut_client_that_never_closes_is_let_go(bin: &str) {
    let mut server = Server::start(bin);
    let mut sender = server.registered("sender");
    let before = server.socket_count();
    let mut sleeper = server.connect();
    sleeper.set_recv_buffer(SMALL_RCVBUF);
    sleeper.register("sleeper");
    let connection = (server.addr(), sleeper.local_addr());
    assert_established(connection, "sleeper");
    let with_sleeper = server.socket_count();
    assert!(
        with_sleeper > before,
        "\n[{}] the grader counts the server's sockets in /proc/{}/fd: {before} before the \
         client `sleeper` connected, yet {with_sleeper} once it was registered\n",
        scenario(),
        server.pid()
    );
    let bytes = flood_bytes(LONG_MESSAGES, |i| sized_text(i, LONG_LINE_LEN));
    let start = Instant::now();
    let latest = start + PATIENCE_MAX + FREED_WITHIN;
    let (held, cut_seen) = thread::scope(|scope| {
        spawn_in(scope, "sender", || send_unpaced(&mut sender, &bytes));
        let mut cut_seen = None;
        loop {
            let count = server.socket_count();
            if cut_seen.is_none() && server_side_closed(connection).is_some() {
                cut_seen = Some(Instant::now());
            }
            let deadline = cut_seen.map_or(latest, |cut| latest.min(cut + FREED_WITHIN));
            if count <= before || Instant::now() >= deadline {
                return (count, cut_seen);
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    if held > before {
        let cut = match cut_seen {
            Some(cut) => format!(
                "It was cut {:?} after the flood began (its connection left ESTABLISHED in \
                 /proc/net/tcp), yet {FREED_WITHIN:?} later",
                cut.duration_since(start)
            ),
            None => format!(
                "It should have been cut by {PATIENCE_MAX:?} after the flood began (its \
                 connection never left ESTABLISHED in /proc/net/tcp), yet {FREED_WITHIN:?} \
                 later"
            ),
        };
        panic!(
            "\n[{}] the client `sleeper` (4 KiB receive buffer) never reads nor closes while \
             `sender` floods, so it falls behind at once and must be cut within `PATIENCE` \
             (at most {PATIENCE_MAX:?}), then let go: its socket freed within \
             {FREED_WITHIN:?}. {cut} the server held {held} sockets in /proc/{}/fd, \
             {before} before `sleeper` connected\n",
            scenario(),
            server.pid()
        );
    }
    drop(sleeper);
    server.assert_serving();
}

/// The soft and hard limit on open files of the server in `out_of_descriptors_refused`.
const FILE_LIMIT: usize = 64;

/// Under `ulimit -n 64`, the server takes clients until it runs out of descriptors; then a
/// newcomer gets `ERR server-full` and is closed, the clients it holds still chat, and once
/// one leaves a newcomer gets in. Not in `conformance_tests!`: a step's own test calls it.
pub fn out_of_descriptors_refused(bin: &str) {
    let mut server = Server::start_with_file_limit(bin, FILE_LIMIT);
    let mut clients = fill_up(&server);
    if clients.len() < 2 {
        panic!(
            "\n[{}] under `ulimit -n {FILE_LIMIT}` the server took only {} clients before \
             answering `ERR server-full`\n",
            scenario(),
            clients.len()
        );
    }
    for _ in 0..3 {
        server.connect().expect_err_then_closed("server-full");
    }
    let mut last = clients.pop().unwrap_or_else(|| unreachable!());
    clients[0].send_line("MSG still here");
    last.expect_line(&format!("MSG {} still here", clients[0].label()));
    last.send_line("MSG me too");
    clients[0].expect_line(&format!("MSG {} me too", last.label()));
    drop(last);
    let mut newcomer = register_when_room(&server);
    clients[1].send_line("MSG welcome");
    newcomer.expect_line(&format!("MSG {} welcome", clients[1].label()));
    server.assert_alive();
}

/// Registers clients until the server answers `ERR server-full`; returns the ones it took.
fn fill_up(server: &Server) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..FILE_LIMIT {
        let mut client = server.connect();
        match client.try_register(&format!("c{i}")) {
            Ok(()) => clients.push(client),
            Err(got) if got.contains("ERR server-full ") => return clients,
            Err(got) => panic!(
                "\n[{}] connection {} to a server under `ulimit -n {FILE_LIMIT}`, with {} \
                 clients registered: expected `USER c{i}` to be accepted or refused with \
                 `ERR server-full` then a close, got {got}. Out of descriptors, a server must \
                 still answer newcomers (keep a spare descriptor for it)\n",
                scenario(),
                i + 1,
                clients.len()
            ),
        }
    }
    panic!(
        "\n[{}] the server took {FILE_LIMIT} clients under `ulimit -n {FILE_LIMIT}`\n",
        scenario()
    );
}

/// Connects until a newcomer gets in: the descriptor of a client that left comes free once
/// the server has seen the close.
fn register_when_room(server: &Server) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = server.connect();
        match client.try_register("newcomer") {
            Ok(()) => return client,
            Err(got) if got.contains("ERR server-full ") && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50));
            }
            Err(got) => panic!(
                "\n[{}] a client left a full server (under `ulimit -n {FILE_LIMIT}`), yet a \
                 newcomer's `USER newcomer` got {got}: the descriptor of a client that leaves \
                 must come free\n",
                scenario()
            ),
        }
    }
}

/// Waits for a scoped thread, passing its panic on.
fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::check_cut_prefix;

    fn line(i: usize) -> String {
        format!("MSG s {i:03} abcdef")
    }

    fn lines(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_prefix_then_too_slow_is_a_cut() {
        let got = lines(&["MSG s 000 abcdef", "MSG s 001 abcdef", "ERR too-slow bye"]);
        assert_eq!(check_cut_prefix(&got, 10, line), Ok(()));
    }

    #[test]
    fn a_message_cut_short_before_too_slow_is_a_cut() {
        let got = lines(&["MSG s 000 abcdef", "MSG s 001 abERR too-slow bye"]);
        assert_eq!(check_cut_prefix(&got, 10, line), Ok(()));
        assert_eq!(check_cut_prefix(&lines(&[]), 10, line), Ok(()));
    }

    #[test]
    fn a_gap_a_wrong_start_or_everything_is_refused() {
        let gap = lines(&["MSG s 000 abcdef", "MSG s 002 abcdef"]);
        assert!(check_cut_prefix(&gap, 10, line).is_err());
        let wrong = lines(&["MSG s 000 abcdef", "MSG s 002 aERR too-slow bye"]);
        assert!(check_cut_prefix(&wrong, 10, line).is_err());
        let all = lines(&["MSG s 000 abcdef", "MSG s 001 abcdef"]);
        assert!(check_cut_prefix(&all, 2, line).is_err());
    }
}
