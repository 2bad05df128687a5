//! The client in a real terminal: tmux runs it in an 80x24 window, `send-keys` types, and
//! `capture-pane` shows what a user would see, cursor included. Without tmux these tests say
//! loudly that they skipped (CI installs it: `.ci/run`).

mod common;

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{TIMEOUT, start_server};

const WELCOME: &str = "-- you are alice: type and press Enter; /quit or Ctrl-D leaves";
const ROWS: usize = 24;

/// A tmux server of our own (its own socket), with one 80x24 window running the client under
/// `sh`, which prints a marker before and the exit status after. Killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// `None` (after saying so on stderr) when tmux is not installed.
    fn start(addr: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            // Not `eprintln!`: the test harness swallows that for a passing test.
            let warning =
                "\n!!! SKIPPED: tmux is not installed; the terminal test did not run !!!\n";
            let _ = io::stderr().write_all(warning.as_bytes());
            return None;
        }
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let name = format!("client-test-{}-{n}.tmux", std::process::id());
        let tmux = Tmux {
            socket: env::temp_dir().join(name),
        };
        // The shell ignores Ctrl-C, so that only the client sees it and the shell can say how
        // the client ended; `sleep` keeps the window open to look at the restored screen.
        let script = format!(
            "trap '' INT; echo BEFORE-CLIENT; '{}' {addr}; echo \"exit=$?\"; sleep 600",
            common::client_bin()
        );
        tmux.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            &script,
        ]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(output)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = self
            .run(args)
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types keys: names like `Enter` and `C-c` are keys, other words are typed as they are.
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Types `text` literally, key names and all.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// The 24 rows of the window, trailing spaces trimmed.
    fn screen(&self) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-t", "t"]);
        let mut rows: Vec<String> = text.lines().map(|row| row.trim_end().to_string()).collect();
        rows.resize(ROWS, String::new());
        rows
    }

    fn show(&self, format: &str) -> String {
        self.tmux(&["display", "-p", "-t", "t", format])
            .trim()
            .to_string()
    }

    /// Column and row of the cursor, from 0.
    fn cursor(&self) -> (usize, usize) {
        let text = self.show("#{cursor_x} #{cursor_y}");
        let (x, y) = text.split_once(' ').expect("x y");
        (x.parse().expect("x"), y.parse().expect("y"))
    }

    /// "alternate screen on?, first and last row of the scroll region"
    fn modes(&self) -> String {
        self.show("#{alternate_on} #{scroll_region_upper}-#{scroll_region_lower}")
    }

    /// Waits until `ready` holds for the screen; returns that screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; screen:\n{}",
                screen.join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_row(&self, row: usize, text: &str) -> Vec<String> {
        self.wait_for(&format!("row {row} = {text:?}"), |screen| {
            screen[row] == text
        })
    }

    /// Registers as alice and waits for the welcome line at the bottom of the conversation.
    fn register_alice(&self) -> Vec<String> {
        self.wait_for("the name prompt", |screen| {
            screen.iter().any(|r| r.contains("choose a name"))
        });
        self.keys(&["alice", "Enter"]);
        self.wait_for_row(ROWS - 2, WELCOME)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = fs::remove_file(&self.socket);
    }
}

/// The heart of the client: a message arriving while the user types lands above the input
/// row, and the half-typed line and the cursor stay where they were; Enter then sends the
/// whole line, and /quit gives the shell its screen back.
#[test]
fn typing_survives_incoming_messages() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    let before = tmux.register_alice();
    assert_eq!(
        tmux.modes(),
        "1 0-22",
        "alternate screen, scroll region = rows 1..23"
    );
    assert_eq!(before[ROWS - 1], "");
    assert_eq!(tmux.cursor(), (0, 23));

    let mut bob = server.registered("bob");
    tmux.type_text("hello wor");
    tmux.wait_for_row(23, "hello wor");
    bob.send_line("MSG from bob");
    let screen = tmux.wait_for_row(22, "bob: from bob");
    assert_eq!(screen[23], "hello wor", "the half-typed line is intact");
    assert_eq!(tmux.cursor(), (9, 23), "the cursor is still after it");
    // The conversation scrolled up by exactly one row.
    assert_eq!(screen[..22], before[1..23]);

    tmux.keys(&["ld", "Enter"]);
    bob.expect_line("MSG alice hello world");
    let screen = tmux.wait_for_row(22, "alice: hello world");
    assert_eq!(screen[21], "bob: from bob");
    assert_eq!(
        screen[..21],
        before[2..23],
        "Enter scrolled only the conversation"
    );
    assert_eq!(screen[23], "", "the input row is empty again");
    assert_eq!(tmux.cursor(), (0, 23));

    // An empty line sends nothing and changes nothing.
    tmux.keys(&["Enter"]);
    bob.send_line("MSG again");
    let screen = tmux.wait_for_row(22, "bob: again");
    assert_eq!(screen[21], "alice: hello world");
    assert_eq!(tmux.cursor(), (0, 23));

    tmux.keys(&["/quit", "Enter"]);
    let screen = tmux.wait_for_row(1, "exit=0");
    assert_eq!(screen[0], "BEFORE-CLIENT", "the shell's screen is back");
    assert!(screen[2..].iter().all(String::is_empty), "{screen:?}");
    assert_eq!(
        tmux.modes(),
        "0 0-23",
        "normal screen, whole-screen scroll region"
    );
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    tmux.type_text("half a line");
    tmux.wait_for_row(23, "half a line");
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for_row(1, "exit=130");
    assert_eq!(screen[0], "BEFORE-CLIENT");
    assert_eq!(tmux.modes(), "0 0-23");
}

#[test]
fn ctrl_d_leaves_cleanly() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    tmux.keys(&["C-d"]);
    tmux.wait_for_row(1, "exit=0");
    assert_eq!(tmux.modes(), "0 0-23");
}

#[test]
fn the_server_closing_restores_the_terminal() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    drop(server);
    let screen = tmux.wait_for_row(2, "exit=1");
    assert_eq!(
        screen[..2],
        ["BEFORE-CLIENT", "connection closed by server"]
    );
    assert_eq!(tmux.modes(), "0 0-23");
}

/// A message that tries to clear the screen, move the cursor and retitle the window is shown
/// as text, and does none of it.
#[test]
fn escape_sequences_from_the_network_are_not_obeyed() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let Some(tmux) = Tmux::start(&addr) else {
        return;
    };
    let (stream, _) = listener.accept().expect("accept");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    tmux.wait_for("the name prompt", |screen| {
        screen.iter().any(|r| r.contains("choose a name"))
    });
    tmux.keys(&["alice", "Enter"]);
    let mut line = String::new();
    for expected in ["USER alice\n", "MSG \n"] {
        line.clear();
        reader.read_line(&mut line).expect("read");
        assert_eq!(line, expected);
    }
    stream
        .write_all(b"ERR empty-message welcome\n")
        .expect("write");
    let before = tmux.wait_for_row(22, WELCOME);
    tmux.type_text("typing");
    tmux.wait_for_row(23, "typing");
    let title = tmux.show("#{pane_title}");

    let evil = "MSG mallory \x1b[2J\x1b[H\x1b]0;pwned\x07\u{9b}2J\x1b[1;1r\n";
    stream.write_all(evil.as_bytes()).expect("write");
    let screen = tmux.wait_for_row(22, "mallory: ^[[2J^[[H^[]0;pwned^G<U+009B>2J^[[1;1r");
    assert_eq!(screen[..22], before[1..23], "nothing was cleared");
    assert_eq!(screen[23], "typing");
    assert_eq!(tmux.cursor(), (6, 23));
    assert_eq!(tmux.modes(), "1 0-22");
    assert_eq!(
        tmux.show("#{pane_title}"),
        title,
        "the title did not change"
    );
}
