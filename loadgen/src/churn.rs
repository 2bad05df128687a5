//! `churn`: short-lived clients, the load where thread creation costs show.
//!
//! `--workers C` connections are in flight at any time, all in one poll loop. Each one connects,
//! sends `USER c<id>` and one `MSG` in a single write, shuts down its writing side and reads
//! until the server closes; then the next one starts. A watcher client stays registered all
//! along and receives every churn message.
//!
//! Time to register: the protocol has no reply to `USER`, so it is measured as the time from
//! the start of `connect` until the watcher receives the connection's `MSG` (the server
//! broadcasts only for registered clients): connect, register and one relay.

use crate::check::Checker;
use crate::server::{CpuMeter, CpuReading};
use crate::stats::Histogram;
use crate::swarm::{Conn, State, Swarm, connect, now_ns};
use crate::table::{Column, count, cpu, ms, rate, result, same, whole};
use crate::target::{Failures, Target, connect_and_register, describe};
use crate::wire::CHURN;
use std::time::{Duration, Instant};

const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection not finished after this long fails with `timeout`.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the watcher waits for the last messages after the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const WATCHER: usize = 1;

pub struct Config {
    pub workers: usize,
    pub duration: Duration,
    pub size: usize,
}

#[derive(Default)]
pub struct Outcome {
    pub server: String,
    pub workers: usize,
    pub duration: Duration,
    /// Connections that went through connect, USER, MSG and close within the duration.
    pub completed: u64,
    pub failures: Failures,
    /// Completed connections whose message the watcher never received, or received twice.
    pub lost: u64,
    pub duplicated: u64,
    /// Connect start to the watcher receiving the message.
    pub register: Histogram,
    /// Connect start to the server's close.
    pub cycle: Histogram,
    pub cpu: CpuReading,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.duration.as_secs_f64()
    }

    pub fn problem(&self) -> Option<String> {
        if !self.failures.is_empty() {
            return Some(format!("failed: {}", describe(&self.failures)));
        }
        (self.lost + self.duplicated > 0)
            .then(|| format!("lost {} duplicated {}", self.lost, self.duplicated))
    }

    /// The result row, for the table and the CSV.
    pub fn columns(&self) -> Vec<Column> {
        let failed: u64 = self.failures.values().sum();
        let register = |p| ms(self.register.percentile(p));
        let cycle = |p| ms(self.cycle.percentile(p));
        vec![
            same("", "server", self.server.clone()),
            same("workers", "workers", self.workers.to_string()),
            same("", "seconds", self.duration.as_secs_f64().to_string()),
            count("connections", "connections", self.completed),
            rate("conn/s", "conn_per_s", self.per_second()),
            same("", "failed", failed.to_string()),
            same("", "lost", self.lost.to_string()),
            same("", "duplicated", self.duplicated.to_string()),
            same("register p50 ms", "register_p50_ms", register(50.0)),
            same("register p99 ms", "register_p99_ms", register(99.0)),
            same("cycle p50 ms", "cycle_p50_ms", cycle(50.0)),
            same("cycle p99 ms", "cycle_p99_ms", cycle(99.0)),
            cpu("server CPU %", "server_cpu_pct", self.cpu.server_cpu),
            cpu("loadgen CPU %", "loadgen_cpu_pct", self.cpu.loadgen_cpu),
            same("threads", "server_threads", whole(self.cpu.server_threads)),
            result(self.problem()),
        ]
    }
}

pub fn run(cfg: &Config, target: &mut Target) -> Result<Outcome, String> {
    let mut swarm = Swarm::new(cfg.size, Checker::new(Vec::new(), 0));
    let deadline = Instant::now() + SETUP_TIMEOUT;
    connect_and_register(&mut swarm, 0..2, target, deadline, "churn")?;
    swarm.conns[WATCHER].receiver = Some(0);

    let mut outcome = Outcome {
        server: target.name(),
        workers: cfg.workers,
        duration: cfg.duration,
        ..Outcome::default()
    };
    let end = Instant::now() + cfg.duration;
    let mut meter = Some(CpuMeter::start(target.pid()));
    let mut next_id = 0;
    let mut ok_ids = Vec::new();
    // The churn connections are `conns[2..]`: one per worker, then fewer after the end.
    for _ in 0..cfg.workers {
        swarm.conns.push(start_cycle(&swarm, &mut next_id, target));
    }
    while swarm.conns.len() > 2 {
        let now = Instant::now();
        if let Some(meter) = meter.take_if(|_| now >= end) {
            outcome.cpu = meter.read();
        }
        let mut i = 2;
        while i < swarm.conns.len() {
            let conn = &mut swarm.conns[i];
            if conn.state != State::Closed && now.duration_since(conn.opened) > CYCLE_TIMEOUT {
                conn.failure = Some("timeout".into());
                conn.close();
            }
            if conn.state == State::Closed {
                finish_cycle(&mut outcome, conn, now <= end, &mut ok_ids);
                if now >= end {
                    swarm.conns.swap_remove(i);
                    continue;
                }
                swarm.conns[i] = start_cycle(&swarm, &mut next_id, target);
            }
            i += 1;
        }
        swarm.turn(5)?;
        target.alive()?;
    }
    wait_for_watcher(&mut swarm, &ok_ids, target)?;
    for &id in &ok_ids {
        match swarm.tally.churn_seen.get(id as usize) {
            None | Some(0) => outcome.lost += 1,
            Some(1) => {}
            Some(_) => outcome.duplicated += 1,
        }
    }
    outcome.register = std::mem::take(&mut swarm.tally.latency);
    swarm.close_all();
    Ok(outcome)
}

/// Opens the next churn connection, with `USER` and `MSG` queued.
fn start_cycle(swarm: &Swarm, next_id: &mut u32, target: &Target) -> Conn {
    let mut conn = connect(*next_id, CHURN, true, target.addr);
    *next_id += 1;
    conn.hang_up = true;
    conn.send(&swarm.encoder, now_ns(swarm.epoch));
    conn
}

/// Books a churn connection that just ended (`in_time`: before the end of the run).
fn finish_cycle(outcome: &mut Outcome, conn: &Conn, in_time: bool, ok_ids: &mut Vec<u32>) {
    if let Some(why) = &conn.failure {
        *outcome.failures.entry(why.clone()).or_insert(0) += 1;
        return;
    }
    ok_ids.push(conn.id);
    let cycle = conn.opened.elapsed();
    outcome.cycle.record(cycle.as_nanos() as u64);
    outcome.completed += u64::from(in_time);
}

/// Reads until the watcher has every completed connection's message, or the drain timeout.
fn wait_for_watcher(swarm: &mut Swarm, ok_ids: &[u32], target: &mut Target) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < deadline {
        let seen = &swarm.tally.churn_seen;
        let received = |&id: &u32| seen.get(id as usize).is_some_and(|&n| n > 0);
        if ok_ids.iter().all(received) {
            return Ok(());
        }
        let watcher = &swarm.conns[WATCHER];
        if !watcher.is_open() {
            let why = watcher.failure.clone().unwrap_or_default();
            return Err(format!("churn: the watcher was disconnected ({why})"));
        }
        swarm.turn(10)?;
        target.alive()?;
    }
    Ok(())
}
