//! `capacity`: how many registered, idle clients does the server hold?
//!
//! Clients are added in steps (100, 1,000, 2,000, 5,000, 10,000, 19,900 by default). At each
//! step, after every client is connected and registered, the server idles for a moment (its
//! CPU is sampled), then client 0 broadcasts probes to all the others, one at a time (each
//! waits until the previous one arrived everywhere). A step passes when every
//! client connected and registered, no probe was lost, duplicated or misordered, and the
//! delivery p99 stayed under one second. The first failing step ends the run.

use crate::check::{Checker, Verdict};
use crate::server::{CpuMeter, CpuReading};
use crate::stats::Histogram;
use crate::swarm::{Swarm, now_ns};
use crate::table::{Column, Table, mib, ms, opt, same, thousands, whole};
use crate::target::{Failures, Target, connect_clients, describe, failures_in, sync};
use std::time::{Duration, Instant};

pub const DEFAULT_STEPS: [usize; 6] = [100, 1_000, 2_000, 5_000, 10_000, 19_900];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a probe may take to reach everybody before what is missing counts as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long refusals may take to arrive once the server started refusing.
const SETTLE: Duration = Duration::from_secs(1);
/// The pass mark for the delivery p99.
const MAX_P99: Duration = Duration::from_secs(1);

pub struct Config {
    pub steps: Vec<usize>,
    pub probes: u32,
    pub interval: Duration,
    /// How long the server idles at each step while its CPU is sampled.
    pub idle: Duration,
    pub size: usize,
}

/// The steps up to `max`, ending at `max` itself.
pub fn steps_up_to(max: usize) -> Vec<usize> {
    let mut steps: Vec<usize> = DEFAULT_STEPS.iter().copied().filter(|&n| n < max).collect();
    steps.push(max);
    steps
}

#[derive(Default)]
pub struct Step {
    pub clients: usize,
    pub connect: Duration,
    pub register: Duration,
    /// The server (and loadgen) while the clients idle.
    pub idle: CpuReading,
    pub latency: Histogram,
    pub verdict: Verdict,
    /// Connections that failed, by reason.
    pub failures: Failures,
    /// Why the step failed; `None` if it passed.
    pub failure: Option<String>,
}

pub struct Outcome {
    pub server: String,
    /// The server idle with no client at all.
    pub idle_empty: CpuReading,
    pub steps: Vec<Step>,
}

impl Outcome {
    /// The largest step that passed.
    pub fn held(&self) -> Option<&Step> {
        self.steps.iter().rfind(|s| s.failure.is_none())
    }

    pub fn failed(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.failure.is_some())
    }

    /// `held 10,000 clients; 19,900 failed: ERR server-full x3,800` and the like.
    pub fn summary(&self) -> String {
        let held = self.held().map_or_else(
            || "held no step".to_string(),
            |s| format!("held {} clients", thousands(s.clients as f64)),
        );
        match self.failed() {
            Some(step) => format!(
                "{held}; {} failed: {}",
                thousands(step.clients as f64),
                step.failure.as_deref().unwrap_or("")
            ),
            None => format!("{held}; every step passed (the largest tried)"),
        }
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "clients | connect s | register s | idle CPU % | RSS MiB | threads | \
             p50 ms | p99 ms | max ms | lost | result",
        );
        for s in &self.steps {
            t.row(vec![
                thousands(s.clients as f64),
                format!("{:.2}", s.connect.as_secs_f64()),
                format!("{:.2}", s.register.as_secs_f64()),
                opt(s.idle.server_cpu, 1),
                mib(s.idle.server_rss_kib),
                whole(s.idle.server_threads),
                ms(s.latency.percentile(50.0)),
                ms(s.latency.percentile(99.0)),
                ms(s.latency.max()),
                thousands(s.verdict.lost as f64),
                s.failure.clone().unwrap_or_else(|| "ok".into()),
            ]);
        }
        t
    }

    /// The CSV row: the largest step held and the first that failed.
    pub fn csv(&self) -> Vec<Column> {
        let (held, failed) = (self.held(), self.failed());
        let idle = held.map(|s| s.idle).unwrap_or_default();
        let failed_at = failed.map_or_else(String::new, |s| s.clients.to_string());
        let reason = failed.and_then(|s| s.failure.clone()).unwrap_or_default();
        let p99 = ms(held.and_then(|s| s.latency.percentile(99.0)));
        vec![
            same("", "server", self.server.clone()),
            same("", "held", held.map_or(0, |s| s.clients).to_string()),
            same("", "failed_at", failed_at),
            same("", "reason", reason),
            same("", "idle_cpu_empty_pct", opt(self.idle_empty.server_cpu, 2)),
            same("", "idle_cpu_held_pct", opt(idle.server_cpu, 2)),
            same("", "p99_held_ms", p99),
            same("", "rss_held_mib", mib(idle.server_rss_kib)),
            same("", "threads_held", whole(idle.server_threads)),
        ]
    }
}

pub fn run(cfg: &Config, target: &mut Target) -> Result<Outcome, String> {
    let mut swarm = Swarm::new(cfg.size, Checker::new(Vec::new(), 1));
    let mut outcome = Outcome {
        server: target.name(),
        idle_empty: idle(&mut swarm, target, cfg.idle)?,
        steps: Vec::new(),
    };
    for &clients in &cfg.steps {
        let mut step = Step {
            clients,
            ..Step::default()
        };
        step.failure = grow_and_probe(&mut swarm, &mut step, cfg, target).err();
        let (server, count) = (&outcome.server, thousands(clients as f64));
        let how = step.failure.as_deref().unwrap_or("ok");
        let p99 = ms(step.latency.percentile(99.0));
        let line = format!("capacity {server}: {count} clients {how} (p99 {p99} ms)");
        crate::progress(&line);
        outcome.steps.push(step);
        if outcome.failed().is_some() {
            break;
        }
    }
    swarm.close_all();
    Ok(outcome)
}

/// Grows the swarm to `step.clients` and probes it, filling in `step`; the error is why the
/// step failed.
fn grow_and_probe(
    swarm: &mut Swarm,
    step: &mut Step,
    cfg: &Config,
    target: &mut Target,
) -> Result<(), String> {
    let start = Instant::now();
    let had = swarm.conns.len();
    let (ids, deadline) = (had as u32..step.clients as u32, start + CONNECT_TIMEOUT);
    step.failures = connect_clients(swarm, ids, true, target, deadline)?;
    step.connect = start.elapsed();
    if !step.failures.is_empty() {
        // A server turning clients away answers those it already accepted a moment later:
        // wait for them too, so the count says how many got in.
        idle(swarm, target, SETTLE)?;
        step.failures
            .extend(failures_in(swarm, had..swarm.conns.len()));
        return Err(describe(&step.failures));
    }
    let start = Instant::now();
    let unconfirmed = sync(swarm, target, start + SYNC_TIMEOUT)?;
    step.register = start.elapsed();
    if unconfirmed > 0 {
        return Err(format!(
            "unregistered: {unconfirmed} clients got no message within {SYNC_TIMEOUT:?}"
        ));
    }
    let next_probe = swarm.conns[0].sent + 1;
    for conn in &mut swarm.conns[had.max(1)..] {
        conn.receiver = Some(swarm.tally.checker.join(conn.id, &[next_probe]));
    }
    // The registration burst leaves the server (and the kernel) a tail of work: let it
    // settle, so the sample below is the cost of holding idle clients and nothing else.
    idle(swarm, target, SETTLE)?;
    step.idle = idle(swarm, target, cfg.idle)?;
    swarm.tally.latency = Histogram::new();
    probe(swarm, cfg, target)?;
    step.latency = std::mem::take(&mut swarm.tally.latency);
    step.verdict = swarm.tally.checker.verdict(&[swarm.conns[0].sent]);
    step.failures = failures_in(swarm, 0..swarm.conns.len());
    if !step.failures.is_empty() {
        return Err(describe(&step.failures));
    }
    if !step.verdict.is_clean() {
        let v = &step.verdict;
        return Err(format!(
            "lost {} duplicated {} misordered {} of {} deliveries",
            v.lost, v.duplicated, v.misordered, v.expected
        ));
    }
    match step.latency.percentile(99.0) {
        Some(p99) if p99 >= MAX_P99.as_nanos() as u64 => {
            Err(format!("late: p99 {} ms", ms(Some(p99))))
        }
        _ => Ok(()),
    }
}

/// Lets everything idle for `how_long` (still reading) and measures the CPU meanwhile.
fn idle(swarm: &mut Swarm, target: &mut Target, how_long: Duration) -> Result<CpuReading, String> {
    let meter = CpuMeter::start(target.pid());
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now()).as_millis() as i32;
        swarm.turn(left.clamp(1, 100))?;
        target.alive()?;
    }
    Ok(meter.read())
}

/// Client 0 sends `cfg.probes` probes one at a time: each leaves once the previous one reached
/// every client (or `DELIVERY_TIMEOUT` passed) and at least `cfg.interval` after it, so each
/// probe times one broadcast to everybody, not a queue of earlier probes.
fn probe(swarm: &mut Swarm, cfg: &Config, target: &mut Target) -> Result<(), String> {
    for _ in 0..cfg.probes {
        let sent_at = Instant::now();
        swarm.conns[0].send(&swarm.encoder, now_ns(swarm.epoch));
        loop {
            let so_far = swarm.tally.checker.verdict(&[swarm.conns[0].sent]);
            let delivered =
                so_far.delivered >= so_far.expected && swarm.conns[0].pending_out() == 0;
            if delivered && sent_at.elapsed() >= cfg.interval {
                break;
            }
            if sent_at.elapsed() > DELIVERY_TIMEOUT {
                return Ok(()); // the verdict will show what is missing
            }
            swarm.turn(if delivered { 1 } else { 5 })?;
            target.alive()?;
            if !swarm.conns[0].is_open() {
                let why = swarm.conns[0].failure.clone().unwrap_or_default();
                return Err(format!("the probing client was disconnected ({why})"));
            }
        }
    }
    Ok(())
}
