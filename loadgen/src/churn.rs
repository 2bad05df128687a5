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
use crate::swarm::{Conn, State, Swarm, Tally, connect, now_ns};
use crate::table::{Column, count, cpu, ms, opt, rate, result, same};
use crate::target::{Failures, Target, connect_and_register, describe};
use crate::wire::{CHURN, Encoder};
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
        let (register, cycle) = (&self.register, &self.cycle);
        vec![
            same("", "server", self.server.clone()),
            same("workers", "workers", self.workers.to_string()),
            same("", "seconds", self.duration.as_secs_f64().to_string()),
            count("connections", "connections", self.completed),
            rate("conn/s", "conn_per_s", self.per_second()),
            same(
                "",
                "failed",
                self.failures.values().sum::<u64>().to_string(),
            ),
            same("", "lost", self.lost.to_string()),
            same("", "duplicated", self.duplicated.to_string()),
            same(
                "register p50 ms",
                "register_p50_ms",
                ms(register.percentile(50.0)),
            ),
            same(
                "register p99 ms",
                "register_p99_ms",
                ms(register.percentile(99.0)),
            ),
            same("cycle p50 ms", "cycle_p50_ms", ms(cycle.percentile(50.0))),
            same("cycle p99 ms", "cycle_p99_ms", ms(cycle.percentile(99.0))),
            cpu("server CPU %", "server_cpu_pct", self.cpu.server_cpu),
            cpu("loadgen CPU %", "loadgen_cpu_pct", self.cpu.loadgen_cpu),
            same(
                "threads",
                "server_threads",
                opt(self.cpu.server_threads.map(|t| t as f64), 0),
            ),
            result(self.problem()),
        ]
    }
}

/// A churn slot's current connection: its churn id and when its connect started.
struct Slot {
    id: u32,
    started: Instant,
}

pub fn run(cfg: &Config, target: &mut Target) -> Result<Outcome, String> {
    let epoch = Instant::now();
    let mut swarm = Swarm::new(
        Encoder::new(cfg.size),
        Tally::new(Checker::new(Vec::new(), 0)),
        epoch,
    );
    let deadline = Instant::now() + SETUP_TIMEOUT;
    connect_and_register(&mut swarm, 0..2, target, deadline, "churn")?;
    swarm.conns[WATCHER].receiver = Some(0);

    let mut outcome = Outcome {
        server: target.name(),
        workers: cfg.workers,
        duration: cfg.duration,
        ..Outcome::default()
    };
    let start = Instant::now();
    let end = start + cfg.duration;
    let meter = CpuMeter::start(target.pid());
    let mut next_id = 0;
    let mut slots: Vec<Slot> = Vec::new();
    let mut ok_ids = Vec::new();
    for _ in 0..cfg.workers {
        let (conn, slot) = start_cycle(&swarm, &mut next_id, target);
        swarm.conns.push(conn);
        slots.push(slot);
    }
    let mut measured = false;
    loop {
        let now = Instant::now();
        if !measured && now >= end {
            outcome.cpu = meter.read();
            measured = true;
        }
        let mut running = 0;
        for (k, slot) in slots.iter_mut().enumerate() {
            let i = 2 + k;
            if swarm.conns[i].state != State::Closed
                && now.duration_since(slot.started) > CYCLE_TIMEOUT
            {
                swarm.conns[i].failure = Some("timeout".into());
                swarm.conns[i].close();
            }
            if swarm.conns[i].state != State::Closed {
                running += 1;
                continue;
            }
            if slot.id == u32::MAX {
                continue; // an empty slot after the end
            }
            finish_cycle(&mut outcome, &swarm, i, slot, now <= end, &mut ok_ids);
            if now < end {
                (swarm.conns[i], *slot) = start_cycle(&swarm, &mut next_id, target);
                running += 1;
            } else {
                slot.id = u32::MAX;
            }
        }
        if now >= end && running == 0 {
            break;
        }
        swarm.turn(5)?;
        target.alive()?;
    }
    wait_for_watcher(&mut swarm, &ok_ids, target)?;
    let seen = &swarm.tally.churn_seen;
    for &id in &ok_ids {
        match seen.get(id as usize).copied().unwrap_or(0) {
            0 => outcome.lost += 1,
            1 => {}
            _ => outcome.duplicated += 1,
        }
    }
    outcome.register = std::mem::take(&mut swarm.tally.latency);
    swarm.close_all();
    Ok(outcome)
}

/// Opens the next churn connection, with `USER` and `MSG` queued.
fn start_cycle(swarm: &Swarm, next_id: &mut u32, target: &Target) -> (Conn, Slot) {
    let id = *next_id;
    *next_id += 1;
    let started = Instant::now();
    let mut conn = connect(id, CHURN, target.addr);
    conn.hang_up = true;
    conn.send(&swarm.encoder, now_ns(swarm.epoch));
    (conn, Slot { id, started })
}

/// Books the connection of a slot that just ended.
fn finish_cycle(
    outcome: &mut Outcome,
    swarm: &Swarm,
    i: usize,
    slot: &Slot,
    in_time: bool,
    ok_ids: &mut Vec<u32>,
) {
    match &swarm.conns[i].failure {
        Some(why) => *outcome.failures.entry(why.clone()).or_insert(0) += 1,
        None => {
            ok_ids.push(slot.id);
            outcome
                .cycle
                .record(slot.started.elapsed().as_nanos() as u64);
            if in_time {
                outcome.completed += 1;
            }
        }
    }
}

/// Reads until the watcher has every completed connection's message, or the drain timeout.
fn wait_for_watcher(swarm: &mut Swarm, ok_ids: &[u32], target: &mut Target) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < deadline {
        let seen = &swarm.tally.churn_seen;
        if ok_ids
            .iter()
            .all(|&id| seen.get(id as usize).is_some_and(|&n| n > 0))
        {
            return Ok(());
        }
        if !swarm.conns[WATCHER].is_open() {
            return Err(format!(
                "churn: the watcher was disconnected ({})",
                swarm.conns[WATCHER].failure.clone().unwrap_or_default()
            ));
        }
        swarm.turn(10)?;
        target.alive()?;
    }
    Ok(())
}
