//! Reading a process from `/proc` (Linux, see proc(5)): its CPU time, name and parent, its
//! memory and threads, its open sockets and its memory mappings.
//!
//! Each reader takes a pid; `std::process::id()` is the caller's own. A file that cannot be
//! read gives its `io::Error`; a `stat` line that does not parse gives `InvalidData`.

use std::fs;
use std::io;

/// The fields of `/proc/<pid>/stat` the tools use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The command name (`comm`): at most 15 bytes, set by the program, so it may hold
    /// spaces and parentheses.
    pub comm: String,
    /// `R` running, `S` sleeping, `Z` zombie... (field 3).
    pub state: char,
    /// The parent's pid (field 4).
    pub ppid: u32,
    /// CPU time spent in user mode and in the kernel, in clock ticks (fields 14 and 15);
    /// [`crate::sys::clock_ticks_per_second`] gives the unit.
    pub utime: u64,
    pub stime: u64,
}

impl Stat {
    /// Parses one `stat` line: `pid (comm) state ppid ...`.
    pub fn parse(line: &str) -> Option<Stat> {
        // The name may hold `)` itself, but the kernel adds the last one: the name runs
        // from the first `(` to the last `)`, and the numbered fields follow it.
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let comm = line.get(open + 1..close)?.to_string();
        let fields: Vec<&str> = line[close + 1..].split_whitespace().collect();
        // `fields[0]` is field 3 of proc(5), the state.
        let field = |number: usize| fields.get(number - 3).copied();
        Some(Stat {
            comm,
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            utime: field(14)?.parse().ok()?,
            stime: field(15)?.parse().ok()?,
        })
    }

    /// User and system CPU time together, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: u32) -> io::Result<Stat> {
    // Read as bytes: a program may give itself a name that is not UTF-8.
    let bytes = fs::read(format!("/proc/{pid}/stat"))?;
    let line = String::from_utf8_lossy(&bytes);
    Stat::parse(&line).ok_or_else(|| {
        let why = format!("not a stat line of proc(5): {line:?}");
        io::Error::new(io::ErrorKind::InvalidData, why)
    })
}

/// The lines of `/proc/<pid>/status` the tools use. A kernel thread has no memory lines,
/// hence the `Option`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Resident memory now, `VmRSS`.
    pub rss_kib: Option<u64>,
    /// Peak resident memory, `VmHWM`.
    pub hwm_kib: Option<u64>,
    /// `Threads`.
    pub threads: Option<u64>,
}

impl Status {
    /// Parses the `Key:  value [kB]` lines of a `status` file.
    pub fn parse(text: &str) -> Status {
        Status {
            rss_kib: number_after(text, "VmRSS"),
            hwm_kib: number_after(text, "VmHWM"),
            threads: number_after(text, "Threads"),
        }
    }
}

/// Reads `/proc/<pid>/status`.
pub fn status(pid: u32) -> io::Result<Status> {
    let bytes = fs::read(format!("/proc/{pid}/status"))?;
    Ok(Status::parse(&String::from_utf8_lossy(&bytes)))
}

/// The number on the line `key: number ...` of `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// How many sockets the process holds open: the entries of `/proc/<pid>/fd` that are links
/// to `socket:[inode]`. An entry that closes while it is read counts as no socket.
pub fn socket_count(pid: u32) -> io::Result<usize> {
    let mut sockets = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(entry) = entry else { continue };
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_string_lossy().starts_with("socket:") {
            sockets += 1;
        }
    }
    Ok(sockets)
}

/// How many memory mappings the process has: the lines of `/proc/<pid>/maps` (each thread's
/// stack adds some).
pub fn maps_count(pid: u32) -> io::Result<u64> {
    let maps = fs::read(format!("/proc/{pid}/maps"))?;
    Ok(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    /// A real line with the name `(a) b)`, as `cat /proc/PID/stat` shows it.
    const LINE: &str = "4242 ((a) b)) S 17 4242 4242 0 -1 4194560 150 0 0 0 7 3 0 0 20 0 1 0 \
                        987654 2695168 221 18446744073709551615 1 1 0 0 0 0 0 0 65536 0 0 0 \
                        17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn a_name_with_spaces_and_parentheses_is_read_whole() {
        let stat = Stat::parse(LINE).expect("parses");
        assert_eq!(
            stat,
            Stat {
                comm: "(a) b)".to_string(),
                state: 'S',
                ppid: 17,
                utime: 7,
                stime: 3,
            }
        );
        assert_eq!(stat.cpu_ticks(), 10);
    }

    #[test]
    fn a_line_cut_short_or_without_a_name_is_refused() {
        let cut = &LINE[..LINE.find(" 7 3 ").expect("utime")];
        assert_eq!(Stat::parse(cut), None);
        assert_eq!(Stat::parse("4242 S 17 4242"), None);
        assert_eq!(
            Stat::parse("4242 (x) S seventeen 1 2 3 4 5 6 7 8 9 10 11"),
            None
        );
    }

    #[test]
    fn a_running_process_named_with_parentheses_is_found() {
        // The shell renames itself (only a process may rename itself), then waits; `; :` keeps
        // it from handing its pid to `sleep` by exec.
        let script = "printf '%s' '(a) b)' > /proc/$$/comm && echo renamed && sleep 5; :";
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sh");
        let mut out = child.stdout.take().expect("piped");
        let mut renamed = [0; 8];
        std::io::Read::read_exact(&mut out, &mut renamed).expect("the shell renamed itself");
        let found = stat(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let found = found.expect("stat of the shell");
        assert_eq!(found.comm, "(a) b)");
        assert_eq!(found.ppid, std::process::id());
        // Sleeping, or caught forking `sleep`: a state letter in any case.
        assert!(found.state.is_ascii_uppercase(), "{found:?}");
    }

    #[test]
    fn own_cpu_time_grows_while_busy() {
        let before = stat(std::process::id()).expect("own stat");
        // Busy until 10 ticks are counted, however long a loaded machine makes that take.
        let start = Instant::now();
        let mut after = before.clone();
        let mut x = 0u64;
        while after.cpu_ticks() < before.cpu_ticks() + 10
            && start.elapsed() < Duration::from_secs(10)
        {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            after = stat(std::process::id()).expect("own stat");
        }
        let used = after.cpu_ticks() - before.cpu_ticks();
        assert!(used >= 10, "10 s of a busy loop counted {used} ticks");
        assert_eq!(after.comm, before.comm);
    }

    #[test]
    fn status_lines_parse_and_own_threads_are_counted() {
        let text = "Name:\tstep2\nVmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        let parsed = Status::parse(text);
        assert_eq!(
            parsed,
            Status {
                rss_kib: Some(2048),
                hwm_kib: Some(4096),
                threads: Some(3),
            }
        );
        assert_eq!(
            Status::parse("Name:\tkthreadd\nThreads:\t1\n").rss_kib,
            None
        );

        // This thread and the one below at least, however many other tests run.
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let extra = thread::spawn(move || wait.recv());
        let during = status(std::process::id()).expect("own status");
        drop(stop);
        let _ = extra.join();
        assert!(during.rss_kib.is_some_and(|kib| kib > 0), "{during:?}");
        assert!(during.threads >= Some(2), "{during:?}");
    }

    #[test]
    fn own_sockets_and_mappings_are_counted() {
        let me = std::process::id();
        let maps = maps_count(me).expect("own maps");
        assert!(maps > 5, "{maps} mappings");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(socket_count(me).expect("own fds") >= 1);
        drop(listener);
        assert!(socket_count(u32::MAX).is_err(), "no such process");
    }
}
