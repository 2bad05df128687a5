//! Starting the server under test and reading its resource use from `/proc`, both through
//! the workspace's `kit` crate, which the grader shares.
//!
//! `Server::start` runs `PATH 127.0.0.1:0 [ARGS]`, waits for its `listening on <ip>:<port>`
//! line and keeps draining its output (a server blocked on a full stderr pipe would measure
//! nothing); it dies with loadgen. `Usage::of` reads CPU time (`/proc/<pid>/stat`: utime +
//! stime), resident memory and threads (`/proc/<pid>/status`: VmRSS, VmHWM, Threads), and
//! `CpuMeter` the server's memory mappings (`/proc/<pid>/maps`).

use crate::sys;
use kit::NotListening;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the server's stderr kept to explain a crash.
const TAIL_LINES: usize = 5;
/// Characters of each such line shown.
const TAIL_CHARS: usize = 200;

pub struct Server {
    process: kit::Server,
    pub addr: SocketAddrV4,
    pub name: String,
}

impl Server {
    /// Starts `path` on an address the OS picks; `args` follow the address.
    pub fn start(path: &Path, args: &[String]) -> Result<Server, String> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut command = Command::new(path);
        command.arg("127.0.0.1:0").args(args);
        // SAFETY: the closure runs in the child between fork and exec; it only calls prctl,
        // which is async-signal-safe, and touches no memory shared with the parent.
        unsafe { command.pre_exec(sys::die_with_parent) };
        let process = kit::Server::spawn(command, TAIL_LINES)
            .map_err(|e| format!("cannot start server {}: {e}", path.display()))?;
        let listening = process.listening(START_TIMEOUT);
        let mut server = Server {
            process,
            addr: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            name,
        };
        server.addr = match listening {
            Ok(SocketAddr::V4(addr)) => addr,
            Ok(SocketAddr::V6(addr)) => {
                let line = format!("listening on {addr}");
                return Err(server.wrong_line(&line));
            }
            Err(NotListening::Wrong(line)) => return Err(server.wrong_line(&line)),
            Err(NotListening::Silent) => {
                return Err(format!(
                    "{} printed no `listening on` line within {START_TIMEOUT:?}",
                    server.name
                ));
            }
            Err(NotListening::Closed) => {
                let how = server.explain_exit();
                return Err(format!("{} exited before listening{how}", server.name));
            }
        };
        Ok(server)
    }

    fn wrong_line(&self, line: &str) -> String {
        format!(
            "{} printed {line:?}, expected `listening on <ip>:<port>`",
            self.name
        )
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `Some(description)` once the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.process.exit_status() {
            Ok(Some(status)) => Some(format!("{} {status}{}", self.name, self.stderr_tail())),
            _ => None,
        }
    }

    fn explain_exit(&mut self) -> String {
        // Give the exit and the last stderr lines a moment to arrive.
        thread::sleep(Duration::from_millis(100));
        match self.process.exit_status() {
            Ok(Some(status)) => format!(" ({status}){}", self.stderr_tail()),
            _ => self.stderr_tail(),
        }
    }

    /// The server's last stderr lines, as `: line | line`, or nothing.
    pub fn stderr_tail(&self) -> String {
        let lines: Vec<String> = self
            .process
            .stderr_tail()
            .iter()
            .map(|line| line.chars().take(TAIL_CHARS).collect())
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        format!("; its stderr ends: {}", lines.join(" | "))
    }
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
        let pid = pid.unwrap_or_else(std::process::id);
        let stat = kit::proc::stat(pid).ok()?;
        let status = kit::proc::status(pid).ok()?;
        Some(Usage {
            at: Instant::now(),
            cpu_ticks: stat.cpu_ticks(),
            rss_kib: status.rss_kib.unwrap_or(0),
            hwm_kib: status.hwm_kib.unwrap_or(0),
            threads: status.threads.unwrap_or(0),
        })
    }

    /// CPU used between `earlier` and `self`, in % of one core.
    pub fn cpu_percent_since(&self, earlier: &Usage) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let cpu = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64
            / kit::sys::clock_ticks_per_second() as f64;
        100.0 * cpu / wall
    }
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
            reading.server_maps = kit::proc::maps_count(pid).ok();
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
    fn own_usage_is_readable_and_counts_busy_time() {
        let before = Usage::of(None).expect("own /proc entry");
        assert!(before.threads >= 1 && before.rss_kib > 0);
        // Busy until 20 ticks (0.2 s at 100 per second) are counted, however long a loaded
        // machine makes that take, up to 10 s.
        let start = Instant::now();
        let mut after = before;
        let mut x = 0u64;
        while after.cpu_ticks < before.cpu_ticks + 20 && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            after = Usage::of(None).expect("own /proc entry");
        }
        let used = after.cpu_ticks - before.cpu_ticks;
        assert!(used >= 20, "10 s of a busy loop counted {used} ticks");
        // Other tests run threads of this process too, but no more than one per core.
        let cores = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu = after.cpu_percent_since(&before);
        assert!(cpu > 0.0 && cpu <= 100.0 * cores + 10.0, "{cpu:.0} % CPU");
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
