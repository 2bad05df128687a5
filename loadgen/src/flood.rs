//! `flood`: one client pastes `--messages` lines as fast as TCP takes them, unpaced.
//!
//! Client 0 writes in large writes and never waits for anyone. `--readers` clients read: the
//! first `--paced` of them at `--reader-rate` bytes/s, the others as fast as they can.
//! `--non-readers` clients register, shrink their receive buffer to `NON_READER_BUF` and never
//! read again. What to measure, per PROTOCOL.md's flow control:
//! - messages lost per reader (a server that keeps the rule loses none) and their order;
//! - the longest freeze: the longest time some full-speed reader received nothing while the
//!   sender still had lines to write (the room paused for someone);
//! - the sender's throughput: messages / time to hand them all to the kernel;
//! - the non-readers' fate (`ERR too-slow`, closed, still open) and when the server freed
//!   their descriptors (its `/proc/PID/fd` count, watched without reading them);
//! - the server's peak memory (`VmHWM`).

use crate::check::{Checker, Verdict};
use crate::server::peak_rss_kib;
use crate::swarm::{Conn, Swarm, now_ns};
use crate::table::{Column, column, count, mib, opt, result, same, thousands};
use crate::target::{Failures, Target, connect_and_register, describe, failures_in};
use std::os::raw::c_int;
use std::time::{Duration, Instant};

const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes the sender keeps queued in loadgen: each write hands the kernel up to this much.
const QUEUE: usize = 256 * 1024;
/// The non-readers' receive buffer (the kernel doubles it), so they fill up at once.
const NON_READER_BUF: c_int = 4096;
/// The run ends when no reader received anything and the sender wrote nothing for this long.
const STALL: Duration = Duration::from_secs(3);
/// How long after the start the server may take to free the non-readers: `PATIENCE` is at
/// most 5 s, and freeing takes at most 1 s more.
const FREE_WAIT: Duration = Duration::from_secs(6);
/// How long the non-readers are read at the end, to learn what the server told them.
const FATE_WAIT: Duration = Duration::from_secs(2);
const FD_SAMPLE: Duration = Duration::from_millis(20);
/// The most a paced reader reads at once: 64 KiB, as a terminal program reading in chunks.
const BURST: f64 = 65_536.0;

#[derive(Clone)]
pub struct Config {
    pub messages: u32,
    pub size: usize,
    pub readers: usize,
    /// The first `paced` readers read at `reader_rate` bytes/s.
    pub paced: usize,
    pub reader_rate: f64,
    pub non_readers: usize,
}

pub struct Outcome {
    pub server: String,
    /// What was asked for.
    pub cfg: Config,
    /// Messages each reader did not get, readers in order (the paced ones first).
    pub lost: Vec<u64>,
    pub verdict: Verdict,
    pub freeze: Duration,
    /// From the first write to the last byte handed to the kernel.
    pub send_time: Duration,
    /// Bytes of one line as sent.
    pub line_len: usize,
    /// The non-readers by fate: `ERR too-slow`, `closed`, `open`...
    pub fates: Failures,
    /// When, after the start, the server no longer held the non-readers' descriptors.
    pub freed: Option<Duration>,
    pub peak_rss_kib: Option<u64>,
    /// The sender and the readers that were disconnected, by reason.
    pub failures: Failures,
}

impl Outcome {
    pub fn sent_per_s(&self) -> f64 {
        self.cfg.messages as f64 / self.send_time.as_secs_f64().max(1e-9)
    }

    pub fn lost_total(&self) -> u64 {
        self.lost.iter().sum()
    }

    pub fn problem(&self) -> Option<String> {
        if !self.failures.is_empty() {
            return Some(format!("disconnected: {}", describe(&self.failures)));
        }
        let (lost, v) = (self.lost_total(), &self.verdict);
        (lost + v.duplicated + v.misordered > 0).then(|| {
            format!(
                "lost {lost} duplicated {} misordered {}",
                v.duplicated, v.misordered
            )
        })
    }

    /// The result row, for the table and the CSV.
    pub fn columns(&self) -> Vec<Column> {
        let lost: Vec<String> = self.lost.iter().map(|n| thousands(*n as f64)).collect();
        let lost_max = self.lost.iter().max().copied().unwrap_or(0);
        let freeze_ms = self.freeze.as_secs_f64() * 1e3;
        let mib_per_s = self.sent_per_s() * self.line_len as f64 / (1024.0 * 1024.0);
        let fate = |what: &str| self.fates.get(what).copied().unwrap_or(0);
        let (too_slow, open) = (fate("ERR too-slow"), fate("open"));
        // Non-readers closed without an `ERR too-slow` first (closed or reset).
        let closed = self.fates.values().sum::<u64>() - too_slow - open;
        let freed_s = self.freed.map(|d| d.as_secs_f64());
        vec![
            same("", "server", self.server.clone()),
            count("messages", "messages", self.cfg.messages as u64),
            same("readers", "readers", self.cfg.readers.to_string()),
            same("paced", "paced", self.cfg.paced.to_string()),
            count("non-readers", "non_readers", self.cfg.non_readers as u64),
            same("sent msg/s", "", thousands(self.sent_per_s())),
            column(
                "lost per reader",
                "lost",
                lost.join(" / "),
                self.lost_total().to_string(),
            ),
            same("", "lost_max", lost_max.to_string()),
            same("", "duplicated", self.verdict.duplicated.to_string()),
            count("misordered", "misordered", self.verdict.misordered),
            column(
                "longest freeze ms",
                "freeze_ms",
                format!("{freeze_ms:.0}"),
                format!("{freeze_ms:.1}"),
            ),
            same("", "sent_msg_per_s", format!("{:.0}", self.sent_per_s())),
            column(
                "sent MiB/s",
                "sent_mib_per_s",
                format!("{mib_per_s:.1}"),
                format!("{mib_per_s:.2}"),
            ),
            count("too-slow", "too_slow", too_slow),
            count("closed", "closed", closed),
            count("open", "open", open),
            column("freed s", "freed_s", opt(freed_s, 2), opt(freed_s, 3)),
            same("peak RSS MiB", "peak_rss_mib", mib(self.peak_rss_kib)),
            result(self.problem()),
        ]
    }
}

/// The server's open descriptors, watched to see when it lets the non-readers go.
struct FdWatch {
    pid: Option<u32>,
    /// Above this count the server still holds some non-reader.
    threshold: usize,
    next_sample: Instant,
    freed: Option<Duration>,
}

impl FdWatch {
    fn sample(&mut self, start: Instant) {
        let now = Instant::now();
        if self.freed.is_some() || now < self.next_sample {
            return;
        }
        self.next_sample = now + FD_SAMPLE;
        if fd_count(self.pid).is_some_and(|n| n <= self.threshold) {
            self.freed = Some(now.duration_since(start));
        }
    }
}

fn fd_count(pid: Option<u32>) -> Option<usize> {
    let dir = std::fs::read_dir(format!("/proc/{}/fd", pid?)).ok()?;
    Some(dir.count())
}

pub fn run(cfg: &Config, target: &mut Target) -> Result<Outcome, String> {
    let everyone = (1 + cfg.readers + cfg.non_readers) as u32;
    let readers = Checker::new((1..=cfg.readers as u32).collect(), 1);
    let mut swarm = Swarm::new(cfg.size, readers);
    let fds_before = fd_count(target.pid());
    let deadline = Instant::now() + SETUP_TIMEOUT;
    connect_and_register(&mut swarm, 0..everyone, target, deadline, "flood")?;
    for (r, conn) in swarm.conns[1..=cfg.readers].iter_mut().enumerate() {
        conn.receiver = Some(r);
    }
    for fd in swarm.conns[1 + cfg.readers..].iter().filter_map(Conn::fd) {
        kit::sockopt::set_recv_buffer(fd, NON_READER_BUF)
            .map_err(|e| format!("flood: cannot set SO_RCVBUF: {e}"))?;
    }
    // Each connection costs the server the same number of descriptors (step 2 holds two).
    let threshold = match (fds_before, fd_count(target.pid())) {
        (Some(before), Some(all)) => {
            let per = all.saturating_sub(before).div_ceil(everyone as usize);
            before + per * (1 + cfg.readers)
        }
        _ => 0,
    };
    let mut watch = FdWatch {
        pid: target.pid().filter(|_| cfg.non_readers > 0),
        threshold,
        next_sample: Instant::now(),
        freed: None,
    };
    let start = Instant::now();
    let (freeze, send_time) = flood(&mut swarm, cfg, target, &mut watch, start)?;
    while watch.pid.is_some() && watch.freed.is_none() && start.elapsed() < FREE_WAIT {
        std::thread::sleep(FD_SAMPLE);
        watch.sample(start);
        target.alive()?;
    }
    let fates = fates(&mut swarm, 1 + cfg.readers, target)?;
    let checker = &swarm.tally.checker;
    Ok(Outcome {
        server: target.name(),
        cfg: cfg.clone(),
        lost: (0..cfg.readers)
            .map(|r| (cfg.messages as u64).saturating_sub(checker.got(r)))
            .collect(),
        verdict: checker.verdict(&[swarm.conns[0].sent]),
        freeze,
        send_time,
        line_len: swarm.encoder.sent_len(),
        fates,
        freed: watch.freed,
        peak_rss_kib: peak_rss_kib(target.pid()),
        failures: failures_in(&swarm, 0..1 + cfg.readers),
    })
}

/// Sends everything and reads until every reader has it (or nothing moved for `STALL`).
/// Returns the longest freeze and the time the sender took.
fn flood(
    swarm: &mut Swarm,
    cfg: &Config,
    target: &mut Target,
    watch: &mut FdWatch,
    start: Instant,
) -> Result<(Duration, Duration), String> {
    // The paced readers' gaps are their own doing: the freeze is what the others see.
    let first_watched = if cfg.paced < cfg.readers {
        cfg.paced
    } else {
        0
    };
    // Per watched reader: the messages it got, and since when.
    let mut watched = vec![(0, start); cfg.readers - first_watched];
    // Per paced reader: the bytes it may read now, refilled at its rate up to `BURST`.
    let (mut credits, mut refilled) = (vec![0.0; cfg.paced], start);
    let (mut freeze, mut send_end) = (Duration::ZERO, None);
    // Bytes written and messages received, and when either last changed.
    let (mut moved, mut last_move) = ((0, 0), start);
    let sent_len = swarm.encoder.sent_len() as u64;
    loop {
        // Queue the sender's next messages, up to `QUEUE` bytes waiting.
        let sent_ns = now_ns(swarm.epoch);
        let sender = &mut swarm.conns[0];
        while sender.sent < cfg.messages && sender.pending_out() < QUEUE && sender.is_open() {
            sender.send(&swarm.encoder, sent_ns);
        }
        let now = Instant::now();
        let written = sender.sent as u64 * sent_len - sender.pending_out() as u64;
        if send_end.is_none() && (written == cfg.messages as u64 * sent_len || !sender.is_open()) {
            send_end = Some(now);
        }
        let until = send_end.unwrap_or(now);
        let checker = &swarm.tally.checker;
        for (r, (got, since)) in (first_watched..).zip(&mut watched) {
            if checker.got(r) != *got {
                (*got, *since) = (checker.got(r), now);
            }
            freeze = freeze.max(until.saturating_duration_since(*since));
        }
        let got_all: u64 = (0..cfg.readers).map(|r| checker.got(r)).sum();
        if (written, got_all) != moved {
            (moved, last_move) = ((written, got_all), now);
        }
        let done = (0..cfg.readers)
            .all(|r| checker.got(r) >= cfg.messages as u64 || !swarm.conns[1 + r].is_open());
        if send_end.is_some() && (done || now.duration_since(last_move) > STALL) {
            return Ok((freeze, until.duration_since(start)));
        }
        // Whom to read this turn: the sender (for its writes), the readers within their pace.
        let earned = cfg.reader_rate * now.duration_since(refilled).as_secs_f64();
        refilled = now;
        for (r, credit) in credits.iter_mut().enumerate() {
            *credit = (*credit + earned).min(BURST);
            swarm.conns[1 + r].read_cap = Some(*credit as usize);
        }
        let wanted = |c: &Conn| c.id as usize <= cfg.readers && c.read_cap != Some(0);
        swarm.turn_some(1, wanted)?;
        for (r, credit) in credits.iter_mut().enumerate() {
            *credit = swarm.conns[1 + r].read_cap.unwrap_or(0) as f64 + credit.fract();
        }
        watch.sample(start);
        target.alive()?;
    }
}

/// Reads the non-readers (`conns[first..]`) at last, to learn what became of them.
fn fates(swarm: &mut Swarm, first: usize, target: &mut Target) -> Result<Failures, String> {
    let end = Instant::now() + FATE_WAIT;
    while Instant::now() < end && swarm.conns[first..].iter().any(Conn::is_open) {
        swarm.turn_some(10, |c| c.id as usize >= first)?;
        target.alive()?;
    }
    let mut fates = failures_in(swarm, first..swarm.conns.len());
    let open = swarm.conns[first..].iter().filter(|c| c.is_open()).count();
    if open > 0 {
        fates.insert("open".into(), open as u64);
    }
    Ok(fates)
}
