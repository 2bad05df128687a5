//! `fanout`: N clients each send for T seconds, every message goes to the N-1 others.
//!
//! Senders either keep a fixed rate (`--rate R` messages/s each, timestamps are the scheduled
//! send times so a server that falls behind shows in the latency) or go as fast as the server
//! relays. Either way they respect a window: all senders together never have more than
//! `--window` messages that some receiver has not yet read. The server's backlog for any client
//! therefore never exceeds the window, its too-slow cut (at 1,000 or more queued messages) never
//! fires on a correct server, and the figure measured is the server's throughput, not the size
//! of its queues. The clients are shared among `--threads` threads, each with its own poll loop.

use crate::check::{Checker, MAX_PAIRS, Verdict};
use crate::server::{CpuMeter, CpuReading};
use crate::stats::Histogram;
use crate::swarm::{Swarm, now_ns};
use crate::table::{Column, column, count, cpu, mib, ms, rate, result, same, thousands, whole};
use crate::target::{
    Failures, Target, connect_and_register, connect_clients, describe, failures_in,
};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// After the senders stop, the last deliveries may still arrive until nothing came for
/// `STALL` (then what is missing is lost), but no longer than `DRAIN_TIMEOUT`.
const STALL: Duration = Duration::from_secs(2);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Config {
    pub clients: usize,
    /// Clients `0..senders` send; all receive.
    pub senders: usize,
    /// Messages per second per sender; 0 = as fast as the window allows.
    pub rate: f64,
    pub duration: Duration,
    pub size: usize,
    pub window: u64,
    pub threads: usize,
    /// Connections that never register: they receive nothing, but the server still watches
    /// them (a poll server scans them on every round).
    pub idle: usize,
}

pub struct Outcome {
    pub server: String,
    /// What was asked for.
    pub cfg: Config,
    /// Messages sent, all senders together.
    pub sent: u64,
    pub verdict: Verdict,
    pub latency: Histogram,
    /// From the start of sending to the last delivery.
    pub elapsed: Duration,
    /// Server and loadgen while sending.
    pub cpu: CpuReading,
    pub failures: Failures,
}

impl Outcome {
    pub fn sent_per_s(&self) -> f64 {
        self.sent as f64 / self.cfg.duration.as_secs_f64()
    }

    pub fn delivered_per_s(&self) -> f64 {
        self.verdict.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn problem(&self) -> Option<String> {
        if !self.failures.is_empty() {
            return Some(format!("disconnected: {}", describe(&self.failures)));
        }
        let v = &self.verdict;
        (!v.is_clean()).then(|| {
            format!(
                "lost {} duplicated {} misordered {}",
                v.lost, v.duplicated, v.misordered
            )
        })
    }

    /// The result row, for the table and the CSV.
    pub fn columns(&self) -> Vec<Column> {
        let (v, cpu_use, latency, cfg) = (&self.verdict, &self.cpu, &self.latency, &self.cfg);
        let offered = if cfg.rate > 0.0 {
            thousands(cfg.rate * cfg.senders as f64)
        } else {
            "max".into()
        };
        vec![
            same("", "server", self.server.clone()),
            count("clients", "clients", cfg.clients as u64),
            count("idle", "idle", cfg.idle as u64),
            count("senders", "senders", cfg.senders as u64),
            column("offered msg/s", "rate", offered, cfg.rate.to_string()),
            same("", "seconds", cfg.duration.as_secs_f64().to_string()),
            rate("sent msg/s", "sent_per_s", self.sent_per_s()),
            rate("delivered/s", "delivered_per_s", self.delivered_per_s()),
            count("lost", "lost", v.lost),
            same("", "duplicated", v.duplicated.to_string()),
            same("", "misordered", v.misordered.to_string()),
            same("p50 ms", "p50_ms", ms(latency.percentile(50.0))),
            same("p90 ms", "p90_ms", ms(latency.percentile(90.0))),
            same("p99 ms", "p99_ms", ms(latency.percentile(99.0))),
            same("max ms", "max_ms", ms(latency.max())),
            cpu("server CPU %", "server_cpu_pct", cpu_use.server_cpu),
            cpu("loadgen CPU %", "loadgen_cpu_pct", cpu_use.loadgen_cpu),
            same("RSS MiB", "server_rss_mib", mib(cpu_use.server_rss_kib)),
            same("threads", "server_threads", whole(cpu_use.server_threads)),
            result(self.problem()),
        ]
    }
}

/// What all sending threads share: the plan and the window.
struct Flow<'a> {
    cfg: &'a Config,
    /// When the senders start and stop.
    start: Instant,
    end: Instant,
    /// Messages sent (or about to be) by all threads.
    reserved: AtomicU64,
    /// Per thread: the least, over its receivers, of messages read plus messages sent.
    /// `reserved - progress` is the most any of its receivers still has to read.
    progress: Vec<AtomicU64>,
    /// Threads still in their sending phase.
    sending: AtomicUsize,
}

impl Flow<'_> {
    fn floor(&self) -> u64 {
        let each = self.progress.iter().map(|p| p.load(Ordering::Acquire));
        each.min().unwrap_or(0)
    }

    /// Takes up to `want` sends from the window; returns how many were granted.
    fn reserve(&self, want: u64) -> u64 {
        let limit = self.floor() + self.cfg.window;
        let grant = |current: u64| want.min(limit.saturating_sub(current));
        let take = |current| (grant(current) > 0).then(|| current + grant(current));
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, take)
            .map_or(0, grant)
    }

    fn drained(&self) -> bool {
        self.sending.load(Ordering::Acquire) == 0
            && self.floor() >= self.reserved.load(Ordering::Acquire)
    }
}

pub fn run(cfg: &Config, target: &mut Target) -> Result<Outcome, String> {
    if cfg.clients.saturating_mul(cfg.senders) > MAX_PAIRS {
        return Err(format!(
            "fanout: {} clients x {} senders is too many pairs to check; lower --senders",
            cfg.clients, cfg.senders
        ));
    }
    let mut swarm = Swarm::new(cfg.size, Checker::new(Vec::new(), 0));
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let clients = 0..cfg.clients as u32;
    connect_and_register(&mut swarm, clients, target, deadline, "fanout")?;
    // The idle connections receive nothing: polling them on every turn would only cost
    // loadgen the CPU the server needs. They get a swarm of their own, looked at once more at
    // the end.
    let mut idle = Swarm::new(cfg.size, Checker::new(Vec::new(), 0));
    let ids = cfg.clients as u32..(cfg.clients + cfg.idle) as u32;
    let failures = connect_clients(&mut idle, ids, false, target, deadline)?;
    if !failures.is_empty() {
        let (idle, why) = (cfg.idle, describe(&failures));
        return Err(format!(
            "fanout: could not connect {idle} idle connections: {why}"
        ));
    }
    let parts = split(swarm, cfg.threads, cfg.senders);
    let start = Instant::now();
    let flow = Flow {
        cfg,
        start,
        end: start + cfg.duration,
        reserved: AtomicU64::new(0),
        progress: (0..parts.len()).map(|_| AtomicU64::new(0)).collect(),
        sending: AtomicUsize::new(parts.len()),
    };
    let meter = CpuMeter::start(target.pid());
    let (cpu, parts) = thread::scope(|scope| {
        let flow = &flow;
        let mut workers = Vec::new();
        let mut started = Ok(());
        for (me, part) in parts.into_iter().enumerate() {
            match thread::Builder::new().spawn_scoped(scope, move || drive(part, me, flow)) {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    flow.sending.fetch_sub(1, Ordering::AcqRel);
                    started = Err(format!("fanout: cannot start a thread: {e}"));
                }
            }
        }
        thread::sleep(flow.end.saturating_duration_since(Instant::now()));
        let cpu = meter.read();
        let parts: Vec<Swarm> = workers.into_iter().filter_map(|w| w.join().ok()).collect();
        started.map(|()| (cpu, parts))
    })?;
    target.alive()?;
    idle.turn(0)?;
    let mut outcome = outcome(&flow, target, &parts, cpu);
    for (why, n) in failures_in(&idle, 0..idle.conns.len()) {
        let key = format!("idle connection: {why}");
        *outcome.failures.entry(key).or_insert(0) += n;
    }
    Ok(outcome)
}

/// Shares the registered clients among `threads` swarms, each checking its own receivers.
fn split(mut swarm: Swarm, threads: usize, senders: usize) -> Vec<Swarm> {
    let per = swarm.conns.len().div_ceil(threads.max(1));
    let mut parts = Vec::new();
    while !swarm.conns.is_empty() {
        let at = swarm.conns.len().saturating_sub(per);
        for (receiver, conn) in swarm.conns[at..].iter_mut().enumerate() {
            conn.receiver = Some(receiver);
        }
        let ids = swarm.conns[at..].iter().map(|c| c.id).collect();
        parts.push(swarm.split_off(at, Checker::new(ids, senders)));
    }
    parts.reverse();
    parts
}

/// One thread's loop: send within the window until the plan ends, then read until every
/// receiver got everything (or the drain timeout).
fn drive(mut swarm: Swarm, me: usize, flow: &Flow) -> Swarm {
    let senders: Vec<usize> = (0..swarm.conns.len())
        .filter(|&i| (swarm.conns[i].id as usize) < flow.cfg.senders)
        .collect();
    let mut cursor = 0;
    let mut sending = true;
    let share = (flow.cfg.window / flow.progress.len() as u64).max(1);
    loop {
        let now = Instant::now();
        if sending && now >= flow.end {
            sending = false;
            flow.sending.fetch_sub(1, Ordering::AcqRel);
        }
        if sending {
            if flow.cfg.rate > 0.0 {
                send_scheduled(&mut swarm, &senders, flow, now);
            } else if !senders.is_empty() {
                // As fast as the window allows: the senders take turns.
                let granted = flow.reserve(share);
                let sent_ns = now_ns(swarm.epoch);
                for _ in 0..granted {
                    swarm.conns[senders[cursor]].send(&swarm.encoder, sent_ns);
                    cursor = (cursor + 1) % senders.len();
                }
            }
        } else if flow.drained() || now >= flow.end + DRAIN_TIMEOUT || stalled(&swarm, flow, now) {
            return swarm;
        }
        if swarm.turn(1).is_err() {
            return swarm;
        }
        flow.progress[me].store(progress(&swarm), Ordering::Release);
    }
}

/// True once this swarm's receivers got nothing for `STALL` since the senders stopped.
fn stalled(swarm: &Swarm, flow: &Flow, now: Instant) -> bool {
    let last = (swarm.epoch + Duration::from_nanos(swarm.tally.last_ns)).max(flow.end);
    now.saturating_duration_since(last) > STALL
}

/// The least, over this swarm's open receivers, of messages read plus messages sent.
fn progress(swarm: &Swarm) -> u64 {
    let open = swarm.conns.iter().filter(|c| c.is_open());
    let each = open.filter_map(|c| Some(swarm.tally.checker.got(c.receiver?) + c.sent as u64));
    each.min().unwrap_or(u64::MAX)
}

/// Sends what each sender's schedule has due: message k of sender s is due at
/// `start + (k + s / senders) / rate`, and carries that time as its send time.
fn send_scheduled(swarm: &mut Swarm, senders: &[usize], flow: &Flow, now: Instant) {
    let since_start = now.duration_since(flow.start).as_secs_f64();
    let rate = flow.cfg.rate;
    let last_k = flow.end.duration_since(flow.start).as_secs_f64() * rate;
    let start_ns = flow.start.duration_since(swarm.epoch).as_nanos() as f64;
    let Swarm { conns, encoder, .. } = swarm;
    for &i in senders {
        let conn = &mut conns[i];
        let phase = conn.id as f64 / flow.cfg.senders as f64;
        let due = ((since_start * rate - phase).floor() + 1.0)
            .clamp(0.0, (last_k - phase).ceil().max(0.0)) as u64;
        for _ in 0..flow.reserve(due.saturating_sub(conn.sent as u64)) {
            let k = conn.sent as f64;
            conn.send(encoder, (start_ns + (k + phase) / rate * 1e9) as u64);
        }
    }
}

/// Adds up what the threads' swarms counted.
fn outcome(flow: &Flow, target: &Target, parts: &[Swarm], cpu: CpuReading) -> Outcome {
    let mut sent_by = vec![0u32; flow.cfg.senders];
    for conn in parts.iter().flat_map(|p| &p.conns) {
        if let Some(slot) = sent_by.get_mut(conn.id as usize) {
            *slot = conn.sent;
        }
    }
    let mut outcome = Outcome {
        server: target.name(),
        cfg: flow.cfg.clone(),
        sent: sent_by.iter().map(|&n| n as u64).sum(),
        verdict: Verdict::default(),
        latency: Histogram::new(),
        elapsed: Duration::ZERO,
        cpu,
        failures: Failures::new(),
    };
    for part in parts {
        outcome.verdict.add(&part.tally.checker.verdict(&sent_by));
        outcome.latency.merge(&part.tally.latency);
        let last = part.epoch + Duration::from_nanos(part.tally.last_ns);
        let elapsed = last.saturating_duration_since(flow.start);
        outcome.elapsed = outcome.elapsed.max(elapsed);
        for (why, n) in failures_in(part, 0..part.conns.len()) {
            *outcome.failures.entry(why).or_insert(0) += n;
        }
    }
    outcome
}
