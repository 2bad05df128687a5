//! Starting the server under test and reading its resource use from `/proc`, both through
//! the workspace's `kit` crate, which the grader shares.
//!
//! `Server::start` runs `PATH 127.0.0.1:0 [ARGS]`, waits for its `listening on <ip>:<port>`
//! line and keeps draining its output (a server blocked on a full stderr pipe would measure
//! nothing); it dies with loadgen. `CpuMeter` reads CPU time (`/proc/<pid>/stat`: utime +
//! stime), resident memory and threads (`/proc/<pid>/status`: VmRSS, Threads) and memory
//! mappings (`/proc/<pid>/maps`); `peak_rss_kib` reads VmHWM.

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
        let name = path.file_name().unwrap_or(path.as_os_str());
        let name = name.to_string_lossy().into_owned();
        let mut command = Command::new(path);
        command.arg("127.0.0.1:0").args(args);
        // SAFETY: the closure runs in the child between fork and exec; it only calls prctl,
        // which is async-signal-safe, and touches no memory shared with the parent.
        unsafe { command.pre_exec(sys::die_with_parent) };
        let mut process = kit::Server::spawn(command, TAIL_LINES)
            .map_err(|e| format!("cannot start server {}: {e}", path.display()))?;
        let wrong = |line: String| format!("printed {line:?}, expected `listening on <ip>:<port>`");
        let why = match process.listening(START_TIMEOUT) {
            Ok(SocketAddr::V4(addr)) => {
                return Ok(Server {
                    process,
                    addr,
                    name,
                });
            }
            Ok(SocketAddr::V6(addr)) => wrong(format!("listening on {addr}")),
            Err(NotListening::Wrong(line)) => wrong(line),
            Err(NotListening::Silent) => {
                format!("printed no `listening on` line within {START_TIMEOUT:?}")
            }
            Err(NotListening::Closed) => {
                // Give the exit and the last stderr lines a moment to arrive.
                thread::sleep(Duration::from_millis(100));
                let status = process.exit_status().ok().flatten();
                let status = status.map_or(String::new(), |s| format!(" ({s})"));
                format!("exited before listening{status}{}", stderr_tail(&process))
            }
        };
        Err(format!("{name} {why}"))
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `Some(description)` once the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.process.exit_status().ok().flatten()?;
        let tail = stderr_tail(&self.process);
        Some(format!("{} {status}{tail}", self.name))
    }
}

/// The server's last stderr lines, as `; its stderr ends: line | line`, or nothing.
fn stderr_tail(process: &kit::Server) -> String {
    let tail = process.stderr_tail();
    let lines: Vec<String> = tail
        .iter()
        .map(|l| l.chars().take(TAIL_CHARS).collect())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("; its stderr ends: {}", lines.join(" | "))
}

/// A process's CPU time so far (user and system, in clock ticks) and when it was read.
#[derive(Clone, Copy, Debug)]
struct CpuMark {
    at: Instant,
    ticks: u64,
}

/// The CPU mark of `pid`, or of loadgen itself for `None`.
fn cpu_mark(pid: Option<u32>) -> Option<CpuMark> {
    let stat = kit::proc::stat(pid.unwrap_or_else(std::process::id)).ok()?;
    Some(CpuMark {
        at: Instant::now(),
        ticks: stat.cpu_ticks(),
    })
}

/// CPU used between two marks, in % of one core.
fn cpu_percent(earlier: CpuMark, later: CpuMark) -> f64 {
    let wall = later.at.duration_since(earlier.at).as_secs_f64();
    let ticks = later.ticks.saturating_sub(earlier.ticks) as f64;
    100.0 * ticks / kit::sys::clock_ticks_per_second() as f64 / wall.max(1e-9)
}

/// CPU of the server (if any) and of loadgen over a stretch of time.
pub struct CpuMeter {
    server: Option<(u32, CpuMark)>,
    own: Option<CpuMark>,
}

/// What a `CpuMeter` measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuReading {
    pub server_cpu: Option<f64>,
    pub loadgen_cpu: Option<f64>,
    pub server_rss_kib: Option<u64>,
    pub server_threads: Option<u64>,
    /// Memory mappings (lines of `/proc/<pid>/maps`): each thread's stack adds some.
    pub server_maps: Option<u64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            server: server_pid.and_then(|pid| Some((pid, cpu_mark(Some(pid))?))),
            own: cpu_mark(None),
        }
    }

    pub fn read(&self) -> CpuReading {
        let mut reading = CpuReading::default();
        if let Some((pid, before)) = self.server
            && let (Some(now), Ok(status)) = (cpu_mark(Some(pid)), kit::proc::status(pid))
        {
            reading.server_cpu = Some(cpu_percent(before, now));
            reading.server_rss_kib = status.rss_kib;
            reading.server_threads = status.threads;
            reading.server_maps = kit::proc::maps_count(pid).ok();
        }
        if let (Some(before), Some(now)) = (self.own, cpu_mark(None)) {
            reading.loadgen_cpu = Some(cpu_percent(before, now));
        }
        reading
    }
}

/// The peak resident memory (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    kit::proc::status(pid?).ok()?.hwm_kib
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_is_readable_and_counts_busy_time() {
        let before = cpu_mark(None).expect("own /proc entry");
        // Busy until 20 ticks (0.2 s at 100 per second) are counted, however long a loaded
        // machine makes that take, up to 10 s.
        let start = Instant::now();
        let mut after = before;
        let mut x = 0u64;
        while after.ticks < before.ticks + 20 && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            after = cpu_mark(None).expect("own /proc entry");
        }
        let used = after.ticks - before.ticks;
        assert!(used >= 20, "10 s of a busy loop counted {used} ticks");
        // Other tests run threads of this process too, but no more than one per core.
        let cores = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu = cpu_percent(before, after);
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
