//! loadgen end to end: each scenario briefly against the real `step4_poll`, the delivery
//! checker against small servers that lose or reorder messages on purpose, and the one-line
//! errors for bad arguments and for a dead or wrong server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// No loadgen run in these tests may take longer.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs loadgen with `args`, killing it if it outlives `RUN_LIMIT`.
fn loadgen(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let start = Instant::now();
    while child.try_wait().expect("wait for loadgen").is_none() {
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("loadgen {args:?} ran longer than {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect loadgen output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CSV row loadgen printed, as (header, value) pairs.
fn csv(out: &Output) -> Vec<(String, String)> {
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no CSV; stderr: {}", text(&out.stderr)));
    let row = lines
        .next()
        .unwrap_or_else(|| panic!("no CSV row; stderr: {}", text(&out.stderr)));
    header
        .split(',')
        .map(String::from)
        .zip(row.split(',').map(String::from))
        .collect()
}

fn field(row: &[(String, String)], name: &str) -> f64 {
    let value = &row
        .iter()
        .find(|(h, _)| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
        .1;
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name} = {value:?} is not a number"))
}

/// `target/<profile>/step4_poll`, next to this test's own directory; built once if missing.
fn step4() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir: PathBuf = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>")
            .to_path_buf();
        let path = profile_dir.join("step4_poll");
        if !path.is_file() {
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "-p", "step4_poll"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            assert!(
                build.status().expect("run cargo build").success(),
                "cannot build step4_poll"
            );
        }
        path.to_string_lossy().into_owned()
    })
}

#[test]
fn capacity_steps_up_against_step4() {
    let out = loadgen(&[
        "capacity",
        "--server",
        step4(),
        "--steps",
        "10,60",
        "--probes",
        "3",
        "--interval-ms",
        "10",
        "--idle-ms",
        "200",
        "--csv",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let row = csv(&out);
    assert_eq!(field(&row, "held"), 60.0);
    assert!(field(&row, "threads_held") >= 1.0);
}

#[test]
fn fanout_delivers_everything_against_step4() {
    let out = loadgen(&[
        "fanout",
        "--server",
        step4(),
        "--clients",
        "20",
        "--duration",
        "0.5",
        "--csv",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let row = csv(&out);
    assert!(field(&row, "delivered_per_s") > 1000.0, "{row:?}");
    assert_eq!(
        (
            field(&row, "lost"),
            field(&row, "duplicated"),
            field(&row, "misordered")
        ),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn fanout_at_a_rate_next_to_idle_connections() {
    let out = loadgen(&[
        "fanout",
        "--server",
        step4(),
        "--clients",
        "5",
        "--rate",
        "50",
        "--idle",
        "30",
        "--duration",
        "0.6",
        "--threads",
        "2",
        "--csv",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let row = csv(&out);
    assert_eq!(field(&row, "idle"), 30.0);
    // 5 senders x 50 msg/s x 0.6 s, give or take the last one due.
    let sent = field(&row, "sent_per_s") * 0.6;
    assert!((140.0..=160.0).contains(&sent), "{row:?}");
    assert_eq!(field(&row, "lost"), 0.0);
}

#[test]
fn churn_registers_every_connection_against_step4() {
    let out = loadgen(&[
        "churn",
        "--server",
        step4(),
        "--workers",
        "4",
        "--duration",
        "0.5",
        "--csv",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let row = csv(&out);
    assert!(field(&row, "connections") > 10.0, "{row:?}");
    assert_eq!((field(&row, "failed"), field(&row, "lost")), (0.0, 0.0));
    assert!(field(&row, "register_p99_ms") > 0.0);
}

#[test]
fn flood_loses_nothing_against_step4() {
    // Enough lines that the non-readers fall more than step 4's `SOFT` behind and are cut
    // after its `PATIENCE`; a fast pace keeps the run short.
    let out = loadgen(&[
        "flood",
        "--server",
        step4(),
        "--messages",
        "20000",
        "--non-readers",
        "5",
        "--reader-rate",
        "20000000",
        "--csv",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let row = csv(&out);
    assert_eq!(
        (field(&row, "lost"), field(&row, "misordered")),
        (0.0, 0.0),
        "{row:?}"
    );
    assert_eq!((field(&row, "readers"), field(&row, "paced")), (2.0, 1.0));
    assert!(field(&row, "sent_msg_per_s") > 1000.0, "{row:?}");
    assert!(field(&row, "peak_rss_mib") > 0.0, "{row:?}");
    let fates = field(&row, "too_slow") + field(&row, "closed") + field(&row, "open");
    assert_eq!(fates, 5.0, "every non-reader has a fate: {row:?}");
    for column in [
        "freeze_ms",
        "sent_mib_per_s",
        "freed_s",
        "duplicated",
        "lost_max",
    ] {
        assert!(
            row.iter().any(|(h, _)| h == column),
            "no {column} in {row:?}"
        );
    }
}

/// How the faulty server breaks the protocol.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Every fifth test message is not relayed at all.
    Lose,
    /// Each sender's test messages go out in pairs, the second one first.
    Swap,
}

/// A small thread-per-connection chat server that keeps the protocol except for `fault`
/// (which touches only loadgen's data messages, `MSG d ...`, so registration still works).
fn faulty_server(fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let room: Arc<Mutex<Room>> = Arc::default();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let room = Arc::clone(&room);
            thread::spawn(move || serve(stream, room, fault));
        }
    });
    addr
}

#[derive(Default)]
struct Room {
    clients: Vec<(u64, TcpStream)>,
    data_seen: u64,
    /// For `Swap`: the message each sender has waiting, by sender.
    held: Vec<(u64, String)>,
}

impl Room {
    fn broadcast(&mut self, from: u64, line: &str) {
        for (id, out) in &mut self.clients {
            if *id != from {
                let _ = out.write_all(line.as_bytes());
            }
        }
    }
}

fn serve(stream: TcpStream, room: Arc<Mutex<Room>>, fault: Fault) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut name = None;
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("USER ") {
            name = Some(n.to_string());
            if let (Ok(w), Ok(mut room)) = (writer.try_clone(), room.lock()) {
                room.clients.push((id, w));
            }
        } else if let (Some(text), Some(n)) = (line.strip_prefix("MSG "), &name) {
            let out = format!("MSG {n} {text}\n");
            let Ok(mut room) = room.lock() else { return };
            if !text.starts_with("d ") {
                room.broadcast(id, &out);
                continue;
            }
            room.data_seen += 1;
            match fault {
                Fault::Lose if room.data_seen % 5 == 0 => {}
                Fault::Lose => room.broadcast(id, &out),
                Fault::Swap => match room.held.iter().position(|(from, _)| *from == id) {
                    None => room.held.push((id, out)),
                    Some(i) => {
                        let (_, first) = room.held.swap_remove(i);
                        room.broadcast(id, &out);
                        room.broadcast(id, &first);
                    }
                },
            }
        }
    }
    if let Ok(mut room) = room.lock() {
        room.clients.retain(|(other, _)| *other != id);
    }
}

/// A short `fanout` against a faulty server: loadgen must fail the run (status 1).
fn fanout_against(fault: Fault) -> Output {
    let addr = faulty_server(fault).to_string();
    let out = loadgen(&[
        "fanout",
        "--addr",
        &addr,
        "--clients",
        "3",
        "--rate",
        "100",
        "--duration",
        "0.5",
        "--csv",
    ]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    out
}

#[test]
fn the_checker_flags_a_server_that_loses_messages() {
    let out = fanout_against(Fault::Lose);
    assert!(
        text(&out.stderr).contains("delivery check failed"),
        "{}",
        text(&out.stderr)
    );
    let row = csv(&out);
    assert!(
        field(&row, "lost") > 0.0 && field(&row, "misordered") > 0.0,
        "{row:?}"
    );
}

#[test]
fn the_checker_flags_a_server_that_reorders_messages() {
    let out = fanout_against(Fault::Swap);
    let row = csv(&out);
    assert!(field(&row, "misordered") > 0.0, "{row:?}");
}

/// One line on stderr, and the status.
fn assert_one_line_error(out: &Output, status: i32, words: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "stderr: {stderr}");
    assert!(
        stderr.lines().next().is_some_and(|l| l.contains(words)),
        "expected {words:?} in {stderr:?}"
    );
}

#[test]
fn bad_arguments_are_refused_with_status_2() {
    assert_one_line_error(
        &loadgen(&["fanout", "--clients", "many"]),
        2,
        "not a number",
    );
    assert_one_line_error(&loadgen(&["capacity", "--bogus"]), 2, "unknown argument");
    assert_one_line_error(&loadgen(&["stampede"]), 2, "unknown scenario");
    assert_one_line_error(
        &loadgen(&["churn", "--addr", "10.1.2.3:80"]),
        2,
        "only loopback",
    );
    assert_one_line_error(
        &loadgen(&["fanout", "--server", "x", "--addr", "127.0.0.1:1"]),
        2,
        "not both",
    );
    assert_one_line_error(&loadgen(&[]), 2, "no scenario");
}

#[test]
fn a_dead_server_is_one_clear_line() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = loadgen(&["fanout", "--addr", &format!("127.0.0.1:{port}")]);
    assert_one_line_error(&out, 1, "cannot connect");
    let out = loadgen(&["churn", "--server", "/nonexistent/step9"]);
    assert_one_line_error(&out, 1, "cannot start server");
}

#[test]
fn a_server_that_relays_nothing_is_not_a_chat_server() {
    // An echo server: it answers, but never relays anything to anyone else.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    let _ = stream.write_all(&buf[..n]);
                }
            });
        }
    });
    let start = Instant::now();
    let out = loadgen(&[
        "fanout",
        "--addr",
        &addr,
        "--clients",
        "3",
        "--duration",
        "0.5",
    ]);
    assert_one_line_error(&out, 1, "a chat server?");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}
