//! `bench`: every scenario against every step, then `REPORT.md` and the SVG charts.
//!
//! Each run starts a fresh server on 127.0.0.1:0 from `--bin-dir` (by default loadgen's own
//! directory, `target/release`). The matrix measures how many clients each design holds
//! (`capacity`), connections per second (`churn`), the CPU at idle (sampled in `capacity`),
//! fan-out with more and more clients and next to idle connections (`fanout`), and a paste
//! that nobody paces (`flood`). Runs that are repeated report the run with the median result.
//! The report goes to `--out` (`bench/runs`, which git ignores); the committed reference in
//! `bench/reference/` is never written by loadgen.

use crate::report;
use crate::server::CpuReading;
use crate::target::Target;
use crate::{capacity, churn, fanout, flood, progress};
use std::path::Path;
use std::time::{Duration, Instant};

/// The four designs, in the order of the lessons.
pub const STEPS: [&str; 4] = ["step1_naive", "step2_threads", "step3_pool", "step4_poll"];

/// The size of the matrix.
pub struct Plan {
    pub quick: bool,
    pub capacity_max: usize,
    pub idle: Duration,
    pub probes: u32,
    pub fanout_clients: Vec<usize>,
    pub fanout_seconds: f64,
    /// Idle (unregistered) connections next to `BYSTANDER_TALKERS` clients at a fixed rate.
    pub bystanders: Vec<usize>,
    pub churn_workers: usize,
    pub churn_seconds: f64,
    /// One unpaced sender, 2 readers (one paced), 100 non-readers.
    pub flood: flood::Config,
    pub repeats: usize,
}

/// Clients that talk in the bystander runs, and how often each one sends.
pub const BYSTANDER_TALKERS: usize = 10;
pub const BYSTANDER_RATE: f64 = 100.0;

impl Plan {
    pub fn new(quick: bool) -> Plan {
        let full = Plan {
            quick,
            capacity_max: 19_900,
            idle: Duration::from_secs(1),
            probes: 20,
            fanout_clients: vec![100, 1_000],
            fanout_seconds: 3.0,
            bystanders: vec![0, 1_000, 10_000],
            churn_workers: 8,
            churn_seconds: 3.0,
            flood: flood::Config {
                messages: 50_000,
                size: 200,
                readers: 2,
                paced: 1,
                reader_rate: 2e6,
                non_readers: 100,
            },
            repeats: 3,
        };
        if !quick {
            return full;
        }
        Plan {
            capacity_max: 1_000,
            idle: Duration::from_millis(500),
            probes: 10,
            fanout_seconds: 1.0,
            bystanders: vec![0, 1_000],
            churn_seconds: 1.0,
            repeats: 1,
            ..full
        }
    }

    /// How many runs `step` takes: `capacity` once, every other scenario (and on `DEEP_STEP`,
    /// the deeper fan-out) `repeats` times.
    fn runs(&self, step: &str) -> usize {
        let deep = usize::from(step == DEEP_STEP);
        1 + (self.fanout_clients.len() + self.bystanders.len() + 2 + deep) * self.repeats
    }
}

/// Everything measured for one step; `Err` holds why a run could not be made.
pub struct StepResults {
    pub name: String,
    pub capacity: Result<capacity::Outcome, String>,
    /// Per client count, every run.
    pub fanout: Vec<(usize, Vec<Result<fanout::Outcome, String>>)>,
    /// Per number of idle connections, every run.
    pub bystanders: Vec<(usize, Vec<Result<fanout::Outcome, String>>)>,
    pub churn: Vec<Result<churn::Outcome, String>>,
    pub flood: Vec<Result<flood::Outcome, String>>,
    /// `DEEP_STEP` only: fan-out to `DEEP_CLIENTS` with a `DEEP_WINDOW` window.
    pub deep: Vec<Result<fanout::Outcome, String>>,
}

/// Is loadgen the bottleneck? With a 1,000-message window the server and loadgen take turns
/// more than they overlap, so neither may reach a full core. step4_poll bounds each client's
/// backlog in bytes (2 MiB, some 45,000 of these 46-byte lines), so it can take a deeper
/// window safely: that run shows which of the two runs out of CPU first.
pub const DEEP_STEP: &str = "step4_poll";
pub const DEEP_CLIENTS: usize = 1_000;
pub const DEEP_WINDOW: u64 = 10_000;

/// Measures the steps found in `bin_dir` and writes the report into `out`.
pub fn run(quick: bool, out: &Path, bin_dir: &Path) -> Result<(), String> {
    let plan = Plan::new(quick);
    let started = Instant::now();
    let load_before = report::load_average();
    std::fs::create_dir_all(out)
        .map_err(|e| format!("bench: cannot create {}: {e}", out.display()))?;
    let (present, missing): (Vec<&str>, Vec<&str>) =
        STEPS.iter().partition(|name| bin_dir.join(name).is_file());
    if present.is_empty() {
        return Err(format!(
            "bench: no step binary in {}; build them first: cargo build --release --workspace",
            bin_dir.display()
        ));
    }
    let mut counter = Counter {
        done: 0,
        total: present.iter().map(|name| plan.runs(name)).sum(),
    };
    progress(&format!(
        "bench ({}): {} runs over {}",
        if plan.quick { "quick" } else { "full" },
        counter.total,
        present.join(", ")
    ));
    let results: Vec<StepResults> = present
        .iter()
        .map(|name| measure_step(name, &bin_dir.join(name), &plan, &mut counter))
        .collect();
    let elapsed = started.elapsed();
    let load = (load_before, report::load_average());
    report::write(out, &plan, &results, &missing, elapsed, load)?;
    progress(&format!(
        "bench: wrote {}/REPORT.md and its charts in {:.0} s",
        out.display(),
        elapsed.as_secs_f64()
    ));
    Ok(())
}

struct Counter {
    done: usize,
    total: usize,
}

impl Counter {
    fn tick(&mut self, what: &str, outcome: &str) {
        self.done += 1;
        progress(&format!("[{}/{}] {what}: {outcome}", self.done, self.total));
    }
}

fn measure_step(name: &str, path: &Path, plan: &Plan, counter: &mut Counter) -> StepResults {
    let start = |connections| Target::start(path, &server_args(name, connections));
    let cfg = capacity::Config {
        steps: capacity::steps_up_to(plan.capacity_max),
        probes: plan.probes,
        interval: Duration::from_millis(50),
        idle: plan.idle,
        size: 32,
    };
    let capacity = start(plan.capacity_max).and_then(|mut t| capacity::run(&cfg, &mut t));
    let summary = capacity
        .as_ref()
        .map_or_else(|e| e.clone(), |o| o.summary());
    counter.tick(&format!("capacity {name}"), &summary);
    let fanout = |counter: &mut Counter, what: String, cfg: fanout::Config| {
        let run = || fanout::run(&cfg, &mut start(cfg.clients + cfg.idle)?);
        repeat(plan, counter, &what, run, describe_fanout)
    };
    let seconds = plan.fanout_seconds;
    let mut fanout_runs = Vec::new();
    for &clients in &plan.fanout_clients {
        let what = format!("fanout {name} {clients} clients");
        let runs = fanout(counter, what, fanout_config(clients, 0, 0.0, seconds));
        fanout_runs.push((clients, runs));
    }
    let mut bystander_runs = Vec::new();
    for &idle in &plan.bystanders {
        let (talkers, rate) = (BYSTANDER_TALKERS, BYSTANDER_RATE);
        let what = format!("fanout {name} {talkers} clients at {rate} msg/s + {idle} idle");
        let runs = fanout(counter, what, fanout_config(talkers, idle, rate, seconds));
        bystander_runs.push((idle, runs));
    }
    let cfg = churn::Config {
        workers: plan.churn_workers,
        duration: Duration::from_secs_f64(plan.churn_seconds),
        size: 32,
    };
    let run = || churn::run(&cfg, &mut start(cfg.workers + 2)?);
    let churn_runs = repeat(plan, counter, &format!("churn {name}"), run, describe_churn);
    let clients = 1 + plan.flood.readers + plan.flood.non_readers;
    let run = || flood::run(&plan.flood, &mut start(clients)?);
    let flood_runs = repeat(plan, counter, &format!("flood {name}"), run, describe_flood);
    let mut deep = Vec::new();
    if name == DEEP_STEP {
        let mut cfg = fanout_config(DEEP_CLIENTS, 0, 0.0, seconds);
        cfg.window = DEEP_WINDOW;
        let what = format!("fanout {name} {DEEP_CLIENTS} clients, window {DEEP_WINDOW}");
        deep = fanout(counter, what, cfg);
    }
    StepResults {
        name: name.to_string(),
        capacity,
        fanout: fanout_runs,
        bystanders: bystander_runs,
        churn: churn_runs,
        flood: flood_runs,
        deep,
    }
}

fn repeat<T>(
    plan: &Plan,
    counter: &mut Counter,
    what: &str,
    mut run: impl FnMut() -> Result<T, String>,
    describe: fn(&T) -> String,
) -> Vec<Result<T, String>> {
    let mut runs = Vec::new();
    for i in 1..=plan.repeats {
        let outcome = run();
        let label = match plan.repeats {
            1 => what.to_string(),
            n => format!("{what} (run {i}/{n})"),
        };
        let described = outcome
            .as_ref()
            .map_or_else(|e| format!("failed: {e}"), describe);
        counter.tick(&label, &described);
        runs.push(outcome);
    }
    runs
}

/// `" (what went wrong)"`, or nothing.
fn in_brackets(problem: Option<String>) -> String {
    problem.map(|p| format!(" ({p})")).unwrap_or_default()
}

fn describe_fanout(o: &fanout::Outcome) -> String {
    let p99 = crate::table::ms(o.latency.percentile(99.0));
    let delivered = crate::table::thousands(o.delivered_per_s());
    let cpu = o.cpu.server_cpu.unwrap_or(0.0);
    let problem = in_brackets(o.problem());
    format!("{delivered} delivered/s, p99 {p99} ms, server CPU {cpu:.0} %{problem}")
}

fn describe_churn(o: &churn::Outcome) -> String {
    format!("{:.0} conn/s{}", o.per_second(), in_brackets(o.problem()))
}

fn describe_flood(o: &flood::Outcome) -> String {
    let lost = o.problem().unwrap_or_else(|| "nothing lost".into());
    let freeze = o.freeze.as_secs_f64() * 1e3;
    format!("{:.0} msg/s, freeze {freeze:.0} ms, {lost}", o.sent_per_s())
}

pub fn fanout_config(clients: usize, idle: usize, rate: f64, seconds: f64) -> fanout::Config {
    fanout::Config {
        clients,
        senders: clients,
        rate,
        duration: Duration::from_secs_f64(seconds),
        size: 32,
        window: 1000,
        threads: 1,
        idle,
    }
}

/// step3_pool needs two workers per connection: every run gives it enough for its connections,
/// up to the most it accepts, so `capacity` finds the design's limit, not the default pool's.
fn server_args(name: &str, connections: usize) -> Vec<String> {
    const MOST_WORKERS: usize = 16_000;
    let workers = (2 * connections + 16).clamp(512, MOST_WORKERS);
    match name {
        "step3_pool" => vec!["--workers".into(), workers.to_string()],
        _ => Vec::new(),
    }
}

/// The run with the median of `key` among the successful ones (the lower middle for an even
/// count), so every figure shown comes from one real run.
pub fn median_by<T>(runs: &[Result<T, String>], key: impl Fn(&T) -> f64) -> Option<&T> {
    let mut ok: Vec<&T> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
    ok.sort_by(|a, b| key(a).total_cmp(&key(b)));
    ok.get(ok.len().saturating_sub(1) / 2).copied()
}

/// The idle CPU reading of the capacity step with `clients` clients, if it passed.
pub fn idle_at(outcome: &capacity::Outcome, clients: usize) -> Option<CpuReading> {
    let step = outcome.steps.iter().find(|s| s.clients == clients)?;
    step.failure.is_none().then_some(step.idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_run_is_a_real_run() {
        let runs: Vec<Result<f64, String>> = vec![Ok(3.0), Err("x".into()), Ok(1.0), Ok(2.0)];
        assert_eq!(median_by(&runs, |v| *v), Some(&2.0));
        let two: Vec<Result<f64, String>> = vec![Ok(5.0), Ok(1.0)];
        assert_eq!(median_by(&two, |v| *v), Some(&1.0));
        let none: Vec<Result<f64, String>> = vec![Err("x".into())];
        assert_eq!(median_by(&none, |v| *v), None);
    }

    #[test]
    fn step3_gets_workers_for_every_connection() {
        assert_eq!(server_args("step3_pool", 1_000), vec!["--workers", "2016"]);
        assert_eq!(server_args("step3_pool", 10), vec!["--workers", "512"]);
        assert_eq!(
            server_args("step3_pool", 10_010),
            vec!["--workers", "16000"]
        );
        assert!(server_args("step4_poll", 1_000).is_empty());
    }
}
