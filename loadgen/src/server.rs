//! Starting the server under test and reading its resource use from `/proc`.
//!
//! `Server::start` runs `PATH 127.0.0.1:0 [ARGS]`, waits for its `listening on <ip>:<port>`
//! line and keeps draining its output (a server blocked on a full stderr pipe would measure
//! nothing). `Usage::of` reads CPU time (`/proc/<pid>/stat`: utime + stime), resident memory
//! and threads (`/proc/<pid>/status`: VmRSS, VmHWM, Threads), and the server's memory mappings
//! (`/proc/<pid>/maps`).

use crate::sys;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the server's stderr kept to explain a crash.
const TAIL_LINES: usize = 5;

pub struct Server {
    child: Child,
    pub addr: SocketAddrV4,
    pub name: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts `path` on an address the OS picks; `args` follow the address.
    pub fn start(path: &Path, args: &[String]) -> Result<Server, String> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut command = Command::new(path);
        command
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec; it only calls prctl,
        // which is async-signal-safe, and touches no memory shared with the parent.
        unsafe { command.pre_exec(sys::die_with_parent) };
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start server {}: {e}", path.display()))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let readers = (child.stderr.take(), child.stdout.take());
        let mut server = Server {
            child,
            addr: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            name,
            stderr_tail,
        };
        let no_thread =
            |e: std::io::Error| format!("cannot start a thread to read the server's output: {e}");
        if let Some(stderr) = readers.0 {
            keep_tail(stderr, Arc::clone(&server.stderr_tail)).map_err(no_thread)?;
        }
        let first_line = readers
            .1
            .map(first_line_then_drain)
            .transpose()
            .map_err(no_thread)?;
        let line = match first_line.map(|rx| rx.recv_timeout(START_TIMEOUT)) {
            Some(Ok(line)) => line,
            Some(Err(mpsc::RecvTimeoutError::Timeout)) => {
                return Err(format!(
                    "{} printed no `listening on` line within {START_TIMEOUT:?}",
                    server.name
                ));
            }
            _ => {
                let how = server.explain_exit();
                return Err(format!("{} exited before listening{how}", server.name));
            }
        };
        server.addr = parse_listening(&line).ok_or_else(|| {
            format!(
                "{} printed {line:?}, expected `listening on <ip>:<port>`",
                server.name
            )
        })?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} {status}{}", self.name, self.stderr_tail())),
            _ => None,
        }
    }

    fn explain_exit(&mut self) -> String {
        // Give the exit and the last stderr lines a moment to arrive.
        thread::sleep(Duration::from_millis(100));
        match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status}){}", self.stderr_tail()),
            _ => self.stderr_tail(),
        }
    }

    /// The server's last stderr lines, as `: line | line`, or nothing.
    pub fn stderr_tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "));
        match tail {
            Ok(text) if !text.is_empty() => format!("; its stderr ends: {text}"),
            _ => String::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `listening on 127.0.0.1:4242` -> the address.
pub fn parse_listening(line: &str) -> Option<SocketAddrV4> {
    match line
        .trim_end()
        .strip_prefix("listening on ")?
        .parse()
        .ok()?
    {
        SocketAddr::V4(addr) => Some(addr),
        SocketAddr::V6(_) => None,
    }
}

fn first_line_then_drain(stdout: impl Read + Send + 'static) -> io::Result<mpsc::Receiver<String>> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new().spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        drop(tx);
        for _ in lines.map_while(Result::ok) {}
    })?;
    Ok(rx)
}

fn keep_tail(
    stderr: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> io::Result<()> {
    thread::Builder::new().spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.chars().take(200).collect());
            }
        }
    })?;
    Ok(())
}

/// A process's resource use at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kib: u64,
    /// Peak resident set size.
    pub hwm_kib: u64,
    pub threads: u64,
}

impl Usage {
    /// Reads the usage of `pid`, or of loadgen itself for `None`.
    pub fn of(pid: Option<u32>) -> Option<Usage> {
        let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        Some(Usage {
            at: Instant::now(),
            cpu_ticks: ticks(11)? + ticks(12)?, // utime, stime: fields 14 and 15 of stat
            rss_kib: status_field(&status, "VmRSS:").unwrap_or(0),
            hwm_kib: status_field(&status, "VmHWM:").unwrap_or(0),
            threads: status_field(&status, "Threads:").unwrap_or(0),
        })
    }

    /// CPU used between `earlier` and `self`, in % of one core.
    pub fn cpu_percent_since(&self, earlier: &Usage) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let cpu = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64
            / sys::clock_ticks_per_second() as f64;
        100.0 * cpu / wall
    }
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU of the server (if any) and of loadgen over a stretch of time.
pub struct CpuMeter {
    server: Option<(u32, Usage)>,
    own: Option<Usage>,
}

/// What a `CpuMeter` measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuReading {
    pub server_cpu: Option<f64>,
    pub loadgen_cpu: Option<f64>,
    pub server_rss_kib: Option<u64>,
    pub server_hwm_kib: Option<u64>,
    pub server_threads: Option<u64>,
    /// Memory mappings (lines of `/proc/<pid>/maps`): each thread's stack adds some.
    pub server_maps: Option<u64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        let server = server_pid.and_then(|pid| Some((pid, Usage::of(Some(pid))?)));
        CpuMeter {
            server,
            own: Usage::of(None),
        }
    }

    pub fn read(&self) -> CpuReading {
        let mut reading = CpuReading::default();
        if let Some((pid, before)) = self.server
            && let Some(now) = Usage::of(Some(pid))
        {
            reading.server_cpu = Some(now.cpu_percent_since(&before));
            reading.server_rss_kib = Some(now.rss_kib);
            reading.server_hwm_kib = Some(now.hwm_kib);
            reading.server_threads = Some(now.threads);
            reading.server_maps = std::fs::read(format!("/proc/{pid}/maps"))
                .ok()
                .map(|maps| maps.iter().filter(|&&b| b == b'\n').count() as u64);
        }
        if let (Some(before), Some(now)) = (self.own, Usage::of(None)) {
            reading.loadgen_cpu = Some(now.cpu_percent_since(&before));
        }
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_parse() {
        assert_eq!(
            parse_listening("listening on 127.0.0.1:4242\n"),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(parse_listening("Listening on 127.0.0.1:4242"), None);
        assert_eq!(parse_listening("listening on [::1]:4242"), None);
    }

    #[test]
    fn own_usage_is_readable_and_counts_busy_time() {
        let before = Usage::of(None).expect("own /proc entry");
        assert!(before.threads >= 1 && before.rss_kib > 0);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = Usage::of(None).expect("own /proc entry");
        let cpu = after.cpu_percent_since(&before);
        assert!(cpu > 30.0, "a busy loop used only {cpu:.0} % CPU");
    }

    #[test]
    fn a_missing_or_silent_server_is_reported() {
        let err = Server::start(Path::new("/nonexistent/server"), &[])
            .err()
            .expect("must fail");
        assert!(err.contains("cannot start"), "{err}");
        let err = Server::start(Path::new("/bin/true"), &[])
            .err()
            .expect("must fail");
        assert!(err.contains("exited before listening"), "{err}");
        let err = Server::start(Path::new("/bin/echo"), &[])
            .err()
            .expect("must fail");
        assert!(err.contains("expected `listening on"), "{err}");
    }
}
