//! The client in a real terminal: tmux runs it in an 80x24 window, `send-keys` types, and
//! `capture-pane` shows what a user would see, cursor included. Without tmux these tests say
//! loudly that they skipped (CI installs it: `.ci/run`).
//!
//! The client runs under `sh`, which prints what happened after it: its exit status, whether
//! the terminal's settings are back as they were (`stty -g` before and after), and then reads
//! one line and runs it, as a shell at its prompt would. So a test can press Enter after the
//! client has gone and see whether anything typed into the client reached the shell.

mod common;

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{TIMEOUT, start_server};

const WELCOME: &str = "-- you are alice: type and press Enter; /quit or Ctrl-D leaves";
const ROWS: usize = 24;
const INPUT: usize = ROWS - 1;
const LAST_MESSAGE: usize = ROWS - 2;
/// What the tests type to see whether it ever reaches the shell.
const SHELL_BAIT: &str = "echo I-was-run-by-the-shell";

/// A tmux server of our own (its own socket), with one 80x24 window running the client under
/// `sh`. Killed when dropped.
struct Tmux {
    socket: PathBuf,
    /// Whether the script reports the terminal's settings after the client (`tty-...`).
    reports_tty: bool,
}

impl Tmux {
    /// The client under a plain `sh` script (see the top of this file). `None` (after saying
    /// so on stderr) when tmux is not installed.
    fn start(addr: &str) -> Option<Tmux> {
        // The shell ignores Ctrl-C, so that only the client sees it and the shell can say how
        // the client ended; `sleep` keeps the window open to look at the restored screen.
        let script = format!(
            "trap '' INT; echo BEFORE-CLIENT; saved=$(stty -g); '{}' {addr}; echo \"exit=$?\"; \
             if [ \"$(stty -g)\" = \"$saved\" ]; then echo tty-restored; else echo tty-changed; fi; \
             read -r line; echo \"the shell read [$line]\"; eval \"$line\"; sleep 600",
            common::client_bin()
        );
        Tmux::start_script(&script, true)
    }

    /// The client under a shell with job control (`set -m`), as in an interactive shell:
    /// Ctrl-Z stops it and gives the terminal to the shell, which reads one line, shows it,
    /// and brings the client back with `fg` after one more Enter.
    fn start_with_job_control(addr: &str) -> Option<Tmux> {
        let script = format!(
            "set -m; trap '' INT; echo BEFORE-CLIENT; '{}' {addr}; echo \"suspended=$?\"; \
             read -r line; echo \"the shell read [$line]\"; read -r go; fg >/dev/null; echo \"exit=$?\"; \
             sleep 600",
            common::client_bin()
        );
        Tmux::start_script(&script, false)
    }

    fn start_script(script: &str, reports_tty: bool) -> Option<Tmux> {
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
            reports_tty,
        };
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
            script,
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

    /// Types keys: names like `Enter`, `Left` and `C-c` are keys, other words are typed as
    /// they are.
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Types `text` literally, key names and all.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Pastes `text` the way a terminal does: all of it at once, each LF sent as CR (Enter).
    fn paste(&self, text: &str) {
        self.tmux(&["set-buffer", "-b", "test", text]);
        self.tmux(&["paste-buffer", "-d", "-b", "test", "-t", "t"]);
    }

    fn resize(&self, cols: usize, rows: usize) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.tmux(&["resize-window", "-t", "t", "-x", &cols, "-y", &rows]);
    }

    /// The rows of the window, trailing spaces trimmed.
    fn screen(&self) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-t", "t"]);
        let mut rows: Vec<String> = text.lines().map(|row| row.trim_end().to_string()).collect();
        let height: usize = self.show("#{pane_height}").parse().expect("height");
        rows.resize(height, String::new());
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
            screen.get(row).is_some_and(|shown| shown == text)
        })
    }

    /// Waits for a line of the conversation, shown after its time (`HH:MM `).
    fn wait_for_line(&self, row: usize, text: &str) -> Vec<String> {
        self.wait_for(&format!("row {row} = \"HH:MM {text}\""), |screen| {
            screen.get(row).and_then(|shown| untimed(shown)) == Some(text)
        })
    }

    /// Waits for the input row to show `text` with the cursor at column `x`.
    fn wait_for_input(&self, text: &str, x: usize) -> Vec<String> {
        let row = self.input_row();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let screen = self.screen();
            let cursor = self.cursor();
            if screen[row] == text && cursor == (x, row) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for the input row {text:?} with the cursor at ({x}, {row}); cursor at \
                 {cursor:?}, screen:\n{}",
                screen.join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn input_row(&self) -> usize {
        let height: usize = self.show("#{pane_height}").parse().expect("height");
        height - 1
    }

    /// Registers as alice and waits for the welcome line at the bottom of the conversation.
    fn register_alice(&self) -> Vec<String> {
        self.wait_for("the name prompt", |screen| {
            screen.iter().any(|r| r.contains("choose a name"))
        });
        self.keys(&["alice", "Enter"]);
        self.wait_for_line(LAST_MESSAGE, WELCOME)
    }

    /// Waits for the client to end and the shell to report it (and the terminal's settings,
    /// which the shell prints next); the screen then.
    fn wait_for_exit(&self, status: &str) -> Vec<String> {
        let wanted = format!("exit={status}");
        self.wait_for(&wanted, |screen| {
            let Some(at) = screen.iter().position(|row| *row == wanted) else {
                return false;
            };
            !self.reports_tty
                || screen
                    .get(at + 1)
                    .is_some_and(|row| row.starts_with("tty-"))
        })
    }

    fn wait_for_modes(&self, wanted: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let modes = self.modes();
            if modes == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for the modes {wanted:?}; they are {modes:?}, screen:\n{}",
                self.screen().join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses Enter at the shell, after the client has gone, and checks that the shell read
    /// an empty line: nothing typed into the client was left for it.
    fn expect_nothing_left_for_the_shell(&self) {
        self.keys(&["Enter"]);
        let screen = self.wait_for("the shell to read a line", |screen| {
            screen.iter().any(|row| row.starts_with("the shell read ["))
        });
        assert!(
            screen.iter().any(|row| row == "the shell read []"),
            "the shell read what was typed into the client:\n{}",
            screen.join("\n")
        );
        assert!(
            !screen.iter().any(|row| row == "I-was-run-by-the-shell"),
            "{}",
            screen.join("\n")
        );
    }

    /// The process id of the client: the child of the pane's shell.
    fn client_pid(&self) -> u32 {
        let shell: u32 = self.show("#{pane_pid}").parse().expect("pane pid");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pid) = child_named(shell, "client") {
                return pid;
            }
            assert!(Instant::now() < deadline, "no client under the shell");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = fs::remove_file(&self.socket);
    }
}

/// A row of the conversation without its time, `None` if it does not start with `HH:MM `.
fn untimed(row: &str) -> Option<&str> {
    let bytes = row.as_bytes();
    if bytes.len() < 6 || bytes[2] != b':' || bytes[5] != b' ' {
        return None;
    }
    let digits = [0, 1, 3, 4].iter().all(|&at| bytes[at].is_ascii_digit());
    let hour: u32 = row[..2].parse().ok()?;
    let minute: u32 = row[3..5].parse().ok()?;
    (digits && hour < 24 && minute < 60).then(|| &row[6..])
}

/// The first child of `parent` whose command name is `name`, from `/proc/<pid>/stat`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = kit::proc::stat(pid) else {
            continue;
        };
        if stat.comm == name && stat.ppid == parent {
            return Some(pid);
        }
    }
    None
}

/// A field of `/proc/<pid>/<file>` such as `VmHWM:  2048 kB` or `syscw: 17`, as a number.
fn proc_field(pid: u32, file: &str, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/{file}: {e}"));
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/{file}"));
    let number = line.split_whitespace().next().expect("a number");
    number.parse().expect("a number")
}

/// Sends `signal` with the shell's own `kill`, which needs no package of its own.
fn kill(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill {signal} {pid}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// A fake server that takes the name alice and then does what the test says.
struct FakeServer {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl FakeServer {
    /// Accepts the client, reads its `USER alice` and probe, and says the name is taken.
    fn accept(listener: &TcpListener, tmux: &Tmux) -> FakeServer {
        let stream = accept_within(listener, TIMEOUT);
        // Every read and write of the fake server is bounded too.
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
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
        let mut server = FakeServer { stream, reader };
        server.send(b"ERR empty-message welcome\n");
        tmux.wait_for_line(LAST_MESSAGE, WELCOME);
        server
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the client");
    }

    fn expect_line(&mut self, wanted: &str) {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        assert_eq!(line, format!("{wanted}\n"));
    }
}

/// The first connection to `listener`, waited for at most `timeout`.
fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("non-blocking");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking");
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the client did not connect");
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn fake_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    (listener, addr)
}

/// The heart of the client: a message arriving while the user types lands above the input
/// row, after its time, and the half-typed line and the cursor stay where they were; Enter
/// then sends the whole line, and /quit gives the shell its screen back.
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
    assert_eq!(before[INPUT], "");
    assert_eq!(tmux.cursor(), (0, 23));

    let mut bob = server.registered("bob");
    tmux.type_text("hello wor");
    tmux.wait_for_input("hello wor", 9);
    bob.send_line("MSG from bob");
    let screen = tmux.wait_for_line(LAST_MESSAGE, "bob: from bob");
    assert_eq!(screen[INPUT], "hello wor", "the half-typed line is intact");
    assert_eq!(tmux.cursor(), (9, 23), "the cursor is still after it");
    // The conversation scrolled up by exactly one row.
    assert_eq!(screen[..22], before[1..23]);

    tmux.keys(&["ld", "Enter"]);
    bob.expect_line("MSG alice hello world");
    let screen = tmux.wait_for_line(LAST_MESSAGE, "alice: hello world");
    assert_eq!(untimed(&screen[21]), Some("bob: from bob"));
    assert_eq!(
        screen[..21],
        before[2..23],
        "Enter scrolled only the conversation"
    );
    assert_eq!(screen[INPUT], "", "the input row is empty again");
    assert_eq!(tmux.cursor(), (0, 23));

    // An empty line sends nothing and changes nothing.
    tmux.keys(&["Enter"]);
    bob.send_line("MSG again");
    let screen = tmux.wait_for_line(LAST_MESSAGE, "bob: again");
    assert_eq!(untimed(&screen[21]), Some("alice: hello world"));
    assert_eq!(tmux.cursor(), (0, 23));

    tmux.keys(&["/quit", "Enter"]);
    let screen = tmux.wait_for_exit("0");
    assert_eq!(screen[1], "exit=0");
    assert_eq!(screen[0], "BEFORE-CLIENT", "the shell's screen is back");
    assert_eq!(screen[2], "tty-restored");
    assert!(screen[3..].iter().all(String::is_empty), "{screen:?}");
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
    tmux.wait_for_input("half a line", 11);
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for_exit("130");
    assert_eq!(screen[..2], ["BEFORE-CLIENT", "exit=130"]);
    assert_eq!(screen[2], "tty-restored");
    assert_eq!(tmux.modes(), "0 0-23");
    tmux.expect_nothing_left_for_the_shell();
}

#[test]
fn ctrl_d_leaves_cleanly() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    tmux.keys(&["C-d"]);
    let screen = tmux.wait_for_exit("0");
    assert_eq!(screen[1..3], ["exit=0", "tty-restored"]);
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
    let screen = tmux.wait_for_exit("1");
    assert_eq!(
        screen[..3],
        ["BEFORE-CLIENT", "connection closed by server", "exit=1"]
    );
    assert_eq!(screen[3], "tty-restored");
    assert_eq!(tmux.modes(), "0 0-23");
}

/// The safety bug of issue 12: a half-typed line must never become a shell command when the
/// client exits, here because the server stopped.
#[test]
fn a_half_typed_line_is_not_run_by_the_shell_after_the_server_stops() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    tmux.type_text(SHELL_BAIT);
    tmux.wait_for_input(SHELL_BAIT, SHELL_BAIT.len());
    drop(server);
    let screen = tmux.wait_for_exit("1");
    assert!(screen.contains(&"tty-restored".to_string()), "{screen:?}");
    tmux.expect_nothing_left_for_the_shell();
}

/// `ERR too-slow` ends the client too: the terminal is restored, the reason is repeated on
/// standard error, and the half-typed line is gone with the client.
#[test]
fn too_slow_restores_the_terminal_and_leaves_nothing_for_the_shell() {
    let (listener, addr) = fake_server();
    let Some(tmux) = Tmux::start(&addr) else {
        return;
    };
    let mut server = FakeServer::accept(&listener, &tmux);
    tmux.type_text(SHELL_BAIT);
    tmux.wait_for_input(SHELL_BAIT, SHELL_BAIT.len());
    server.send(b"ERR too-slow you fell behind\n");
    drop(server);
    let screen = tmux.wait_for_exit("1");
    assert_eq!(
        screen[..4],
        [
            "BEFORE-CLIENT",
            "connection closed by server; its last line: ERR too-slow you fell behind",
            "exit=1",
            "tty-restored",
        ]
    );
    assert_eq!(tmux.modes(), "0 0-23");
    tmux.expect_nothing_left_for_the_shell();
}

/// `kill` (SIGTERM) and a hang-up (SIGHUP) restore the terminal as well.
#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    for (signal, status) in [("-TERM", "143"), ("-HUP", "129")] {
        let server = start_server();
        let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
            return;
        };
        tmux.register_alice();
        tmux.type_text(SHELL_BAIT);
        tmux.wait_for_input(SHELL_BAIT, SHELL_BAIT.len());
        kill(tmux.client_pid(), signal);
        let screen = tmux.wait_for_exit(status);
        assert_eq!(
            screen[..3],
            ["BEFORE-CLIENT", &format!("exit={status}"), "tty-restored"]
        );
        assert_eq!(tmux.modes(), "0 0-23", "after kill {signal}");
        tmux.expect_nothing_left_for_the_shell();
    }
}

/// A typo fixed in the middle of the line, with the arrows, Home, End and Backspace, is sent
/// as fixed.
#[test]
fn an_edit_in_the_middle_of_the_line_is_sent_as_edited() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("helo wrld!");
    tmux.keys(&["BSpace", "Left", "Left", "Left"]);
    tmux.wait_for_input("helo wrld", 6);
    tmux.type_text("o");
    tmux.keys(&["Home", "Right", "Right", "Right"]);
    tmux.type_text("l");
    tmux.wait_for_input("hello world", 4);
    tmux.keys(&["End"]);
    tmux.type_text("?");
    tmux.wait_for_input("hello world?", 12);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice hello world?");
    tmux.wait_for_line(LAST_MESSAGE, "alice: hello world?");
    tmux.wait_for_input("", 0);
}

/// The other keys of readline and linenoise: Ctrl-A, Ctrl-E, Delete, Ctrl-W, Ctrl-K, Ctrl-U.
#[test]
fn the_readline_keys_edit_the_line() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("one two three");
    tmux.keys(&["C-w"]);
    tmux.wait_for_input("one two", 8);
    tmux.keys(&["C-a", "DC"]);
    tmux.wait_for_input("ne two", 0);
    tmux.keys(&["C-e"]);
    tmux.type_text("four");
    tmux.wait_for_input("ne two four", 11);
    tmux.keys(&["C-a", "C-k"]);
    tmux.wait_for_input("", 0);
    tmux.type_text("keep this cut this");
    tmux.keys(&[
        "Left", "Left", "Left", "Left", "Left", "Left", "Left", "Left",
    ]);
    tmux.keys(&["C-u"]);
    tmux.wait_for_input("cut this", 0);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice cut this");
}

/// Up and Down go through the lines sent before; an earlier line can be sent again, edited.
#[test]
fn up_brings_back_an_earlier_line() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.keys(&["first", "Enter"]);
    bob.expect_line("MSG alice first");
    tmux.keys(&["second", "Enter"]);
    bob.expect_line("MSG alice second");
    tmux.type_text("draft");
    tmux.keys(&["Up"]);
    tmux.wait_for_input("second", 6);
    tmux.keys(&["Up"]);
    tmux.wait_for_input("first", 5);
    // Before "first" comes the name, which was typed too; and nothing before it.
    tmux.keys(&["Up", "Up"]);
    tmux.wait_for_input("alice", 5);
    tmux.keys(&["Down", "Down"]);
    tmux.wait_for_input("second", 6);
    tmux.keys(&["Down"]);
    tmux.wait_for_input("draft", 5);
    tmux.keys(&["Up", "Up"]);
    tmux.type_text(" again");
    tmux.wait_for_input("first again", 11);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice first again");
}

/// Ctrl-D deletes under the cursor on a line being typed, and does nothing at its end: it
/// neither sends the draft nor leaves.
#[test]
fn ctrl_d_on_a_draft_keeps_it() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("xdraft");
    tmux.wait_for_input("xdraft", 6);
    // At the end of the line: nothing to delete, nothing sent, and the client stays.
    tmux.keys(&["C-d", "C-d"]);
    tmux.type_text("!");
    tmux.wait_for_input("xdraft!", 7);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice xdraft!");
    // Under the cursor: it deletes.
    tmux.type_text("xdraft");
    tmux.keys(&["Home", "C-d"]);
    tmux.wait_for_input("draft", 0);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice draft");
}

/// A line wider than the window scrolls within the bottom row: the row shows the part around
/// the cursor, nothing spills onto the conversation, and the line is sent whole.
#[test]
fn a_long_line_scrolls_within_the_bottom_row_and_arrives_whole() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    let before = tmux.register_alice();
    let mut bob = server.registered("bob");
    let line: String = (0..200)
        .map(|n| char::from(b'a' + (n % 26) as u8))
        .collect();
    tmux.type_text(&line);
    // 79 characters: the last column stays free for the cursor.
    let screen = tmux.wait_for_input(&line[121..], 79);
    assert_eq!(
        screen[..INPUT],
        before[..INPUT],
        "the conversation is untouched"
    );
    tmux.keys(&["Home"]);
    tmux.wait_for_input(&line[..79], 0);
    tmux.keys(&["Enter"]);
    bob.expect_line(&format!("MSG alice {line}"));
}

/// Wide characters take two columns: the cursor moves by character, and a long line of them
/// is never cut in the middle of one.
#[test]
fn wide_characters_take_two_columns() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("日本語");
    tmux.wait_for_input("日本語", 6);
    tmux.keys(&["Left"]);
    tmux.type_text("x");
    tmux.wait_for_input("日本x語", 5);
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice 日本x語");
    // 50 wide characters are 100 columns: the row holds the last 39 (78 columns).
    let wide = "語".repeat(50);
    tmux.type_text(&wide);
    tmux.wait_for_input(&"語".repeat(39), 78);
    tmux.keys(&["Enter"]);
    bob.expect_line(&format!("MSG alice {wide}"));
}

/// Tab completes the name of someone seen in the room; with several, it lists them.
#[test]
fn tab_completes_the_names_seen() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    let mut bobby = server.registered("bobby");
    bob.send_line("MSG hi");
    tmux.wait_for_line(LAST_MESSAGE, "bob: hi");
    bobby.send_line("MSG hello");
    tmux.wait_for_line(LAST_MESSAGE, "bobby: hello");
    tmux.type_text("bo");
    tmux.keys(&["Tab"]);
    tmux.wait_for_line(LAST_MESSAGE, "-- names: bob bobby");
    tmux.wait_for_input("bo", 2);
    tmux.type_text("bb");
    tmux.keys(&["Tab"]);
    // "bobby: ", its space trimmed by `screen`.
    tmux.wait_for_input("bobby:", 7);
    tmux.type_text("hi");
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG bobby hello");
    bob.expect_line("MSG alice bobby: hi");
}

/// A paste of several lines sends each line in order, the first one after what was typed
/// before the paste; each goes into the history, in order.
#[test]
fn a_paste_of_several_lines_sends_each_in_order() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("zero ");
    tmux.wait_for_input("zero", 5);
    tmux.paste("one\ntwo\nthree\nfour");
    for line in ["zero one", "two", "three"] {
        bob.expect_line(&format!("MSG alice {line}"));
    }
    let screen = tmux.wait_for_input("four", 4);
    let shown: Vec<Option<&str>> = screen[20..23].iter().map(|row| untimed(row)).collect();
    assert_eq!(
        shown,
        [
            Some("alice: zero one"),
            Some("alice: two"),
            Some("alice: three")
        ]
    );
    tmux.keys(&["C-u", "Up"]);
    tmux.wait_for_input("three", 5);
    tmux.keys(&["Up"]);
    tmux.wait_for_input("two", 3);
}

/// A resize repaints at once: the scroll region follows the new size, and the draft and the
/// cursor are on the new bottom row, before the next message and after it.
#[test]
fn a_resize_redraws_the_draft_on_the_bottom_row() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("resize me");
    tmux.wait_for_input("resize me", 9);
    // 72 columns still hold the welcome line (68), so it stays on one row.
    tmux.resize(72, 15);
    // tmux itself keeps the bottom row at the bottom: the scroll region says that the client
    // has painted.
    tmux.wait_for_modes("1 0-13");
    let screen = tmux.wait_for_input("resize me", 9);
    assert_eq!(tmux.cursor(), (9, 14));
    assert_eq!(untimed(&screen[13]), Some(WELCOME), "{screen:?}");
    bob.send_line("MSG after the resize");
    let screen = tmux.wait_for_line(13, "bob: after the resize");
    assert_eq!(screen[14], "resize me");
    assert_eq!(tmux.cursor(), (9, 14));
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice resize me");
}

/// Ctrl-Z gives the shell a normal terminal (the normal screen, the line discipline, echo);
/// `fg` brings back the split screen, the conversation and the draft, cursor included.
#[test]
fn ctrl_z_gives_the_terminal_back_and_fg_restores_the_split_screen() {
    let server = start_server();
    let Some(tmux) = Tmux::start_with_job_control(&server.addr().to_string()) else {
        return;
    };
    let before = tmux.register_alice();
    let mut bob = server.registered("bob");
    tmux.type_text("a draft");
    tmux.wait_for_input("a draft", 7);
    tmux.keys(&["C-z"]);
    let screen = tmux.wait_for_row(1, "suspended=148");
    assert_eq!(screen[0], "BEFORE-CLIENT");
    assert_eq!(tmux.modes(), "0 0-23", "the normal screen");
    // The shell reads a line, with the kernel's echo: the terminal is in line mode again.
    tmux.type_text("typed at the shell");
    tmux.wait_for_row(2, "typed at the shell");
    tmux.keys(&["Enter"]);
    tmux.wait_for_row(3, "the shell read [typed at the shell]");
    // Then `fg`.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for_input("a draft", 7);
    assert_eq!(tmux.modes(), "1 0-22");
    assert_eq!(screen[..INPUT], before[..INPUT], "the conversation is back");
    bob.send_line("MSG welcome back");
    tmux.wait_for_line(LAST_MESSAGE, "bob: welcome back");
    tmux.keys(&["Enter"]);
    bob.expect_line("MSG alice a draft");
    tmux.keys(&["/quit", "Enter"]);
    tmux.wait_for_exit("0");
}

/// What the server sends is shown as text: a message that tries to clear the screen, move the
/// cursor and retitle the window does none of it, and an invisible character is shown.
#[test]
fn escape_sequences_from_the_network_are_not_obeyed() {
    let (listener, addr) = fake_server();
    let Some(tmux) = Tmux::start(&addr) else {
        return;
    };
    let mut server = FakeServer::accept(&listener, &tmux);
    let before = tmux.screen();
    tmux.type_text("typing");
    tmux.wait_for_input("typing", 6);
    let title = tmux.show("#{pane_title}");

    let evil = "MSG mallory \x1b[2J\x1b[H\x1b]0;pwned\x07\u{9b}2J\x1b[1;1r\n";
    server.send(evil.as_bytes());
    let screen = tmux.wait_for_line(
        LAST_MESSAGE,
        "mallory: ^[[2J^[[H^[]0;pwned^G<U+009B>2J^[[1;1r",
    );
    assert_eq!(screen[..22], before[1..23], "nothing was cleared");
    assert_eq!(screen[INPUT], "typing");
    assert_eq!(tmux.cursor(), (6, 23));
    assert_eq!(tmux.modes(), "1 0-22");
    assert_eq!(
        tmux.show("#{pane_title}"),
        title,
        "the title did not change"
    );
}

/// Invisible characters (zero-width space, word joiner, byte order mark, bidi controls) are
/// shown, so that `a<U+200B>b` cannot pass for `ab`, in a message or in the line typed.
#[test]
fn invisible_characters_are_shown() {
    let server = start_server();
    let Some(tmux) = Tmux::start(&server.addr().to_string()) else {
        return;
    };
    tmux.register_alice();
    let mut bob = server.registered("bob");
    bob.send_line("MSG a\u{200b}b c\u{2060}d \u{feff}e \u{202e}fed");
    tmux.wait_for_line(
        LAST_MESSAGE,
        "bob: a<U+200B>b c<U+2060>d <U+FEFF>e <U+202E>fed",
    );
    tmux.type_text("x\u{200b}y");
    tmux.wait_for_input("x<U+200B>y", 10);
}

/// A flood from a hostile server: 100,000 lines at once, half of them the `ERR empty-message`
/// that the old client queued without end. The client's memory stays small, the screen is
/// updated once per batch rather than once per line, and the line being typed is intact.
#[test]
fn a_flood_keeps_memory_bounded_and_the_typed_line_intact() {
    const LINES: usize = 100_000;
    let (listener, addr) = fake_server();
    let Some(tmux) = Tmux::start(&addr) else {
        return;
    };
    let mut server = FakeServer::accept(&listener, &tmux);
    let pid = tmux.client_pid();
    tmux.type_text("typed before");
    tmux.wait_for_input("typed before", 12);

    let mut flood = Vec::new();
    for n in 0..LINES - 1 {
        if n % 2 == 0 {
            flood.extend(format!("MSG bob line {n}\n").as_bytes());
        } else {
            flood.extend(b"ERR empty-message flood\n");
        }
    }
    flood.extend(b"MSG bob the last line\n");
    let writes_before = proc_field(pid, "io", "syscw");
    let mut stream = server.stream.try_clone().expect("clone");
    let flooder = thread::spawn(move || stream.write_all(&flood).expect("flood"));
    tmux.type_text(" and during");
    tmux.wait_for_line(LAST_MESSAGE, "bob: the last line");
    flooder.join().expect("the flood");
    let screen = tmux.wait_for_input("typed before and during", 23);
    let writes = proc_field(pid, "io", "syscw") - writes_before;
    let peak_kib = proc_field(pid, "status", "VmHWM");
    let rss_kib = proc_field(pid, "status", "VmRSS");
    let figures = format!(
        "\nflood of {LINES} lines: {writes} write calls, VmHWM {peak_kib} KiB, VmRSS {rss_kib} KiB\n"
    );
    let _ = io::stderr().write_all(figures.as_bytes());
    assert!(
        peak_kib < 20 * 1024,
        "the client grew to {peak_kib} KiB{figures}"
    );
    assert!(
        writes < (LINES / 10) as u64,
        "{writes} writes for {LINES} lines: not batched{figures}"
    );
    assert_eq!(untimed(&screen[21]), Some("bob: line 99998"));
    assert_eq!(untimed(&screen[20]), Some("[server] empty-message: flood"));
    tmux.keys(&["Enter"]);
    server.expect_line("MSG typed before and during");
}
