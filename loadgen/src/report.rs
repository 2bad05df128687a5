//! `REPORT.md` and its charts, from the bench results: the machine, the tables and the
//! charts, and how they were made. What the figures mean is the reader's to work out
//! (exercises.md asks; TEACHERS.md answers), so no sentence here compares or judges them.

use crate::bench::{
    BYSTANDER_RATE, BYSTANDER_TALKERS, DEEP_CLIENTS, DEEP_WINDOW, Plan, StepResults, idle_at,
    median_by,
};
use crate::svg::{COLOURS, Series, bar_chart, line_chart};
use crate::sys;
use crate::table::{Table, mib, ms, opt, shown, thousands, whole};
use crate::{capacity, churn, fanout, flood};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

pub fn write(
    out: &Path,
    plan: &Plan,
    results: &[StepResults],
    missing: &[&str],
    elapsed: Duration,
    load: (String, String),
) -> Result<(), String> {
    let mut md = header(plan, missing, elapsed, &load);
    capacity_section(&mut md, results);
    churn_section(&mut md, results);
    idle_section(&mut md, results);
    fanout_section(&mut md, results);
    flood_section(&mut md, results, &plan.flood);
    method(&mut md, plan);
    let charts = [
        ("clients_held.svg", clients_chart(results, plan)),
        ("latency_p99.svg", latency_chart(results)),
        ("fanout_throughput.svg", fanout_chart(results)),
        ("churn.svg", churn_chart(results)),
        ("idle_cpu.svg", idle_chart(results)),
        ("flood.svg", flood_chart(results)),
        ("REPORT.md", md),
    ];
    for (name, text) in &charts {
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("bench: cannot write {}: {e}", out.join(name).display()))?;
    }
    Ok(())
}

/// The machine, one line each: the figures depend on every one of these.
fn machine() -> Vec<String> {
    let file = |path: &str| {
        let text = std::fs::read_to_string(path).unwrap_or_else(|_| "?".into());
        text.trim().replace('\t', " ")
    };
    let field = |path: &str, key: &str| {
        let text = file(path);
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.split(':').nth(1));
        value.map_or("?".into(), |v| v.trim().to_string())
    };
    let limit = |resource| match sys::limits(resource) {
        Ok((soft, hard)) => format!("{} soft / {} hard", show_limit(soft), show_limit(hard)),
        Err(_) => "?".into(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (cpu, memory) = (
        field("/proc/cpuinfo", "model name"),
        field("/proc/meminfo", "MemTotal"),
    );
    let (files, processes) = (limit(sys::RLIMIT_NOFILE), limit(sys::RLIMIT_NPROC));
    let mut lines = vec![
        format!("CPU: {cpu}, {cores} cores"),
        format!("memory: {memory}"),
        format!("kernel: Linux {}", file("/proc/sys/kernel/osrelease")),
        format!("open files (RLIMIT_NOFILE): {files}"),
        format!("processes per user (RLIMIT_NPROC): {processes}"),
    ];
    for key in [
        "kernel/pid_max",
        "kernel/threads-max",
        "vm/max_map_count",
        "net/core/somaxconn",
        "net/ipv4/ip_local_port_range",
        "net/ipv4/tcp_congestion_control",
    ] {
        let name = key.replace('/', ".");
        lines.push(format!("{name}: {}", file(&format!("/proc/sys/{key}"))));
    }
    lines
}

fn show_limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        thousands(value as f64)
    }
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews the figures.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    fields.join(" ")
}

fn header(plan: &Plan, missing: &[&str], elapsed: Duration, load: &(String, String)) -> String {
    let kind = if plan.quick { "quick" } else { "full" };
    let flag = if plan.quick { " --quick" } else { "" };
    let (seconds, date) = (elapsed.as_secs_f64(), utc_now());
    let (start, end) = load;
    let mut md = format!(
        "# Benchmark report: four chat server designs\n\n\
         Made by `loadgen bench{flag}` ({kind} run, {seconds:.0} s) on {date} UTC. Load \
         averages (1, 5, 15 min) at the start: {start}; at the end: {end}.\n\n\
         The server inherits loadgen's limits, with the soft open-file limit raised to the \
         hard one. loadgen and the server share the cores: the tables give the CPU of both, in \
         % of one core.\n\n"
    );
    md.extend(machine().iter().map(|line| format!("- {line}\n")));
    if !missing.is_empty() {
        let _ = write!(md, "\nNot measured (no binary): {}.\n", missing.join(", "));
    }
    md.push('\n');
    md
}

/// The date and time now in UTC, from `date` (std has no calendar), or `?`.
fn utc_now() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output();
    match date {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().into(),
        _ => "?".into(),
    }
}

/// At most 200 characters of `text` (a crashed server's stderr can be long).
fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Adds the row of repeated runs: `lead` cells, the median run's `key` (as `show_median` writes
/// it) and every run's (as `show_each` does), then the median run's `cells`; if every run
/// failed, dashes and the first error.
fn median_row<T>(
    t: &mut Table,
    mut lead: Vec<String>,
    runs: &[Result<T, String>],
    key: impl Fn(&T) -> f64,
    [show_median, show_each]: [fn(f64) -> String; 2],
    cells: impl Fn(&T) -> Vec<String>,
) {
    let median = median_by(runs, &key);
    lead.push(median.map_or("-".into(), |o| show_median(key(o))));
    let each: Vec<String> = runs
        .iter()
        .map(|run| run.as_ref().map_or("failed".into(), |o| show_each(key(o))))
        .collect();
    lead.push(each.join(" / "));
    if let Some(o) = median {
        lead.extend(cells(o));
    } else {
        lead.resize(t.width() - 1, "-".into());
        let error = runs.iter().find_map(|r| r.as_ref().err());
        lead.push(error.map_or_else(String::new, |e| clip(e)));
    }
    t.row(lead);
}

fn result(problem: Option<String>) -> String {
    problem.unwrap_or_else(|| "ok".into())
}

fn ok_capacity(step: &StepResults) -> Option<&capacity::Outcome> {
    step.capacity.as_ref().ok()
}

fn capacity_section(md: &mut String, results: &[StepResults]) {
    md.push_str("## 1. Capacity: registered idle clients\n\n");
    md.push_str("![clients held](clients_held.svg)\n\n![probe p99](latency_p99.svg)\n\n");
    let mut t = Table::new(
        "step | clients held | next step | why it failed | threads at held | \
         mappings at held | RSS MiB at held | probe p99 ms at held",
    );
    for r in results {
        let o = match &r.capacity {
            Ok(o) => o,
            Err(e) => {
                t.row(vec![r.name.clone(), "-".into(), "-".into(), clip(e)]);
                continue;
            }
        };
        let (held, failed) = (o.held(), o.failed());
        let why = failed.and_then(|s| s.failure.as_deref());
        let count = |n: Option<u64>| n.map_or_else(|| "-".into(), |n| thousands(n as f64));
        t.row(vec![
            r.name.clone(),
            held.map_or("none".into(), |s| thousands(s.clients as f64)),
            failed.map_or("-".into(), |s| thousands(s.clients as f64)),
            why.map_or("-".into(), clip),
            count(held.and_then(|s| s.idle.server_threads)),
            count(held.and_then(|s| s.idle.server_maps)),
            mib(held.and_then(|s| s.idle.server_rss_kib)),
            ms(held.and_then(|s| s.latency.percentile(99.0))),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
}

fn churn_section(md: &mut String, results: &[StepResults]) {
    md.push_str("## 2. Churn: connect, USER, MSG, close\n\n![churn](churn.svg)\n\n");
    let mut t = Table::new(
        "step | conn/s (median) | runs | register p50 ms | register p99 ms | cycle p50 ms | \
         cycle p99 ms | server CPU % | loadgen CPU % | server threads | result",
    );
    let per_second = churn::Outcome::per_second;
    for r in results {
        let lead = vec![r.name.clone()];
        let cells = |o: &churn::Outcome| shown(o.columns()).split_off(3);
        median_row(&mut t, lead, &r.churn, per_second, [thousands; 2], cells);
    }
    let _ = writeln!(md, "{}", t.markdown());
}

fn idle_section(md: &mut String, results: &[StepResults]) {
    md.push_str(
        "## 3. CPU at idle\n\n![CPU at idle](idle_cpu.svg)\n\nSampled while the clients \
         were connected and registered and nobody sent anything (the `capacity` run, before \
         its probes).\n\n",
    );
    let mut t = Table::new(
        "step | CPU % no client | CPU % 100 clients | CPU % 1,000 clients | \
         CPU % at the largest held | RSS MiB 100 clients | threads 100 clients",
    );
    for r in results {
        let Some(o) = ok_capacity(r) else { continue };
        let at = |n| idle_at(o, n);
        let largest = o.held().map_or("-".into(), |s| {
            let clients = thousands(s.clients as f64);
            format!("{} ({clients} clients)", opt(s.idle.server_cpu, 1))
        });
        t.row(vec![
            r.name.clone(),
            opt(o.idle_empty.server_cpu, 1),
            opt(at(100).and_then(|c| c.server_cpu), 1),
            opt(at(1_000).and_then(|c| c.server_cpu), 1),
            largest,
            mib(at(100).and_then(|c| c.server_rss_kib)),
            whole(at(100).and_then(|c| c.server_threads)),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
}

/// CPU (in % of a core) per unit of a rate, in nanoseconds.
fn ns_per(cpu_percent: Option<f64>, per_second: f64) -> Option<f64> {
    let cpu = cpu_percent?;
    (per_second > 0.0).then(|| cpu / 100.0 * 1e9 / per_second)
}

/// How the fan-out tables show deliveries per second: the median's, then each run's.
const DELIVERIES: [fn(f64) -> String; 2] = [thousands, |rate| format!("{:.1}M", rate / 1e6)];

fn fanout_section(md: &mut String, results: &[StepResults]) {
    md.push_str(
        "## 4. Fan-out\n\n![delivered messages per second](fanout_throughput.svg)\n\n\
         Every client sends as fast as the window allows (at most 1,000 messages not yet read \
         by every receiver); every message goes to all the others. \"ns/delivery\" is the \
         server's CPU time per delivered line.\n\n",
    );
    let mut t = Table::new(
        "step | clients | delivered/s (median) | runs | messages/s | p50 ms | p99 ms | \
         server CPU % | loadgen CPU % | server ns/delivery | result",
    );
    let delivered = fanout::Outcome::delivered_per_s;
    for r in results {
        for (clients, runs) in &r.fanout {
            let lead = vec![r.name.clone(), thousands(*clients as f64)];
            median_row(&mut t, lead, runs, delivered, DELIVERIES, fanout_cells);
        }
    }
    let _ = writeln!(md, "{}", t.markdown());
    let _ = writeln!(
        md,
        "**Idle connections**: {BYSTANDER_TALKERS} registered clients each send \
         {BYSTANDER_RATE:.0} messages/s next to connections that never register (they receive \
         nothing, but the server still watches them). \"µs/message\" is the server's CPU time \
         per message relayed.\n"
    );
    let mut t = Table::new(
        "step | idle connections | server CPU % (median) | runs | p50 ms | p99 ms | \
         server µs/message | server threads | result",
    );
    let cpu = |o: &fanout::Outcome| o.cpu.server_cpu.unwrap_or(f64::NAN);
    let one_decimal: fn(f64) -> String = |cpu| format!("{cpu:.1}");
    for r in results {
        for (idle, runs) in &r.bystanders {
            let lead = vec![r.name.clone(), thousands(*idle as f64)];
            median_row(&mut t, lead, runs, cpu, [one_decimal; 2], bystander_cells);
        }
    }
    let _ = writeln!(md, "{}", t.markdown());
    let Some(r) = results.iter().find(|r| !r.deep.is_empty()) else {
        return;
    };
    let (clients, window) = (
        thousands(DEEP_CLIENTS as f64),
        thousands(DEEP_WINDOW as f64),
    );
    let _ = writeln!(
        md,
        "**A deeper window**: {} bounds each backlog in bytes, so it can take more than the \
         protocol's 1,000 messages in flight: {clients} clients, window {window}.\n",
        r.name,
    );
    let mut t = Table::new(
        "step | clients | delivered/s (median) | runs | window | p99 ms | server CPU % | \
         loadgen CPU % | result",
    );
    let lead = vec![r.name.clone(), clients];
    median_row(&mut t, lead, &r.deep, delivered, DELIVERIES, deep_cells);
    let _ = writeln!(md, "{}", t.markdown());
}

fn fanout_cells(o: &fanout::Outcome) -> Vec<String> {
    vec![
        thousands(o.sent_per_s()),
        ms(o.latency.percentile(50.0)),
        ms(o.latency.percentile(99.0)),
        opt(o.cpu.server_cpu, 0),
        opt(o.cpu.loadgen_cpu, 0),
        opt(ns_per(o.cpu.server_cpu, o.delivered_per_s()), 0),
        result(o.problem()),
    ]
}

fn bystander_cells(o: &fanout::Outcome) -> Vec<String> {
    let per_message = ns_per(o.cpu.server_cpu, o.sent_per_s());
    vec![
        ms(o.latency.percentile(50.0)),
        ms(o.latency.percentile(99.0)),
        opt(per_message.map(|ns| ns / 1000.0), 1),
        whole(o.cpu.server_threads),
        result(o.problem()),
    ]
}

fn deep_cells(o: &fanout::Outcome) -> Vec<String> {
    vec![
        thousands(DEEP_WINDOW as f64),
        ms(o.latency.percentile(99.0)),
        opt(o.cpu.server_cpu, 0),
        opt(o.cpu.loadgen_cpu, 0),
        result(o.problem()),
    ]
}

fn flood_section(md: &mut String, results: &[StepResults], cfg: &flood::Config) {
    let _ = writeln!(
        md,
        "## 5. Flood: one client pastes, unpaced\n\n![flood](flood.svg)\n\n\
         One client writes {} lines of {} bytes as fast as TCP takes them; {} clients read \
         ({} of them at {} bytes/s); {} registered clients never read. \"lost\" is per \
         reader; the longest freeze is the longest time a full-speed reader received nothing \
         while the sender still had lines to write; \"freed s\" is when the server no longer \
         held the non-readers' descriptors, from the start of the flood.\n",
        thousands(cfg.messages as f64),
        cfg.size,
        cfg.readers,
        cfg.paced,
        thousands(cfg.reader_rate),
        thousands(cfg.non_readers as f64),
    );
    let mut t = Table::new(
        "step | sent msg/s (median) | runs | lost per reader | misordered | \
         longest freeze ms | sent MiB/s | too-slow | closed | open | freed s | peak RSS MiB | \
         result",
    );
    let sent = flood::Outcome::sent_per_s;
    for r in results {
        let lead = vec![r.name.clone()];
        let cells = |o: &flood::Outcome| shown(o.columns()).split_off(5);
        median_row(&mut t, lead, &r.flood, sent, [thousands; 2], cells);
    }
    let _ = writeln!(md, "{}", t.markdown());
}

fn method(md: &mut String, plan: &Plan) {
    let _ = writeln!(
        md,
        "## How these figures were made\n\n\
         Every run starts a fresh server on 127.0.0.1:0 (step3_pool with two workers per \
         connection, up to 16,000); loadgen connects from loopback addresses it binds itself, \
         drives its sockets with poll(2) and checks every delivery. `capacity` steps up to {} \
         clients, idles {:.1} s at each step (CPU sampled) and sends {} probes; a step passes \
         when every client registered, nothing was lost and p99 < 1 s. `fanout` sends for \
         {:.0} s, `churn` keeps {} connections in flight for {:.0} s (each connects, sends \
         `USER` and `MSG`, closes; time to register runs from connect until a watcher gets that \
         `MSG`). Other figures are the median of {} runs (every run's in \"runs\"); capacity \
         runs once.\n",
        thousands(plan.capacity_max as f64),
        plan.idle.as_secs_f64(),
        plan.probes,
        plan.fanout_seconds,
        plan.churn_workers,
        plan.churn_seconds,
        plan.repeats,
    );
}

/// One series per step, its points made by `points`.
fn per_step(
    results: &[StepResults],
    points: impl Fn(&StepResults) -> Vec<(f64, f64)>,
) -> Vec<Series> {
    let each = results.iter().enumerate();
    each.map(|(i, r)| Series {
        name: r.name.clone(),
        colour: COLOURS[i % COLOURS.len()],
        points: points(r),
    })
    .collect()
}

/// Grouped bars: in each of `groups`, one bar per step, of height `value(step, group)` (none:
/// no bar).
fn bars(
    results: &[StepResults],
    [title, y_label]: [&str; 2],
    groups: &[String],
    value: impl Fn(&StepResults, usize) -> Option<f64>,
    ceiling: Option<(f64, &str)>,
) -> String {
    let series = per_step(results, |r| {
        let bars = (0..groups.len()).filter_map(|g| Some((g as f64, value(r, g)?)));
        bars.collect()
    });
    bar_chart(title, y_label, groups, &series, ceiling)
}

fn clients_chart(results: &[StepResults], plan: &Plan) -> String {
    let kind = if plan.quick { "quick run" } else { "full run" };
    let max = plan.capacity_max as f64;
    let ceiling = format!("largest step\ntried: {}\n({kind})", thousands(max));
    let labels = [
        "Clients held (largest capacity step that passed)",
        "clients",
    ];
    let held = |r: &StepResults, _| Some(ok_capacity(r)?.held()?.clients as f64);
    let groups = ["capacity".to_string()];
    bars(results, labels, &groups, held, Some((max, &ceiling)))
}

fn latency_chart(results: &[StepResults]) -> String {
    let series = per_step(results, |r| {
        let steps = ok_capacity(r).map_or(&[][..], |o| &o.steps[..]);
        let passed = steps.iter().filter(|s| s.failure.is_none());
        passed
            .filter_map(|s| Some((s.clients as f64, s.latency.percentile(99.0)? as f64 / 1e6)))
            .collect()
    });
    line_chart(
        "Probe delivery latency p99 versus clients",
        "registered clients",
        "p99 latency (ms)",
        &series,
    )
}

fn fanout_chart(results: &[StepResults]) -> String {
    let sizes = results.first().map_or(&[][..], |r| &r.fanout[..]);
    let groups: Vec<String> = sizes
        .iter()
        .map(|(n, _)| format!("{} clients", thousands(*n as f64)))
        .collect();
    let delivered = fanout::Outcome::delivered_per_s;
    let median = |r: &StepResults, g: usize| {
        let runs = &r.fanout.get(g)?.1;
        Some(delivered(median_by(runs, delivered)?))
    };
    let labels = [
        "Fan-out: messages delivered per second",
        "deliveries per second",
    ];
    bars(results, labels, &groups, median, None)
}

fn churn_chart(results: &[StepResults]) -> String {
    let per_second = churn::Outcome::per_second;
    let median = |r: &StepResults, _| Some(per_second(median_by(&r.churn, per_second)?));
    let labels = [
        "Churn: connect, USER, MSG, close per second",
        "connections per second",
    ];
    bars(results, labels, &["churn".to_string()], median, None)
}

fn idle_chart(results: &[StepResults]) -> String {
    let groups = ["no client", "100 idle clients", "1,000 idle clients"].map(String::from);
    let cpu = |r: &StepResults, g: usize| {
        let o = ok_capacity(r)?;
        [Some(o.idle_empty), idle_at(o, 100), idle_at(o, 1_000)][g]?.server_cpu
    };
    let labels = ["Server CPU at idle", "CPU (% of one core)"];
    bars(results, labels, &groups, cpu, None)
}

fn flood_chart(results: &[StepResults]) -> String {
    let freeze = |r: &StepResults, _| {
        let median = median_by(&r.flood, flood::Outcome::sent_per_s)?;
        Some(median.freeze.as_secs_f64() * 1e3)
    };
    let labels = [
        "Flood: the longest time a full-speed reader got nothing",
        "longest freeze (ms)",
    ];
    bars(results, labels, &["flood".to_string()], freeze, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::check::Verdict;
    use crate::server::CpuReading;
    use crate::stats::Histogram;
    use crate::target::Failures;
    use std::path::PathBuf;
    use std::time::Duration;

    fn cpu(x: f64) -> CpuReading {
        CpuReading {
            server_cpu: Some(x),
            loadgen_cpu: Some(x / 2.0),
            server_rss_kib: Some(2048 + x as u64),
            server_threads: Some(3),
            server_maps: Some(40),
        }
    }

    fn hist(base: u64) -> Histogram {
        let mut h = Histogram::new();
        for i in 0..100 {
            h.record(base + i * 10_000);
        }
        h
    }

    fn fan(clients: usize, idle: usize, x: f64) -> fanout::Outcome {
        fanout::Outcome {
            server: "s".into(),
            cfg: crate::bench::fanout_config(clients, idle, 0.0, 3.0),
            sent: 300_000 + x as u64,
            verdict: Verdict {
                expected: 9,
                delivered: 9_000_000 + x as u64,
                ..Verdict::default()
            },
            latency: hist(1_000_000),
            elapsed: Duration::from_secs(3),
            cpu: cpu(x),
            failures: Failures::new(),
        }
    }

    /// Writes a report from made-up results, into `$LOADGEN_REPORT_DIR` if set (to compare
    /// two versions of this file), else into a temporary folder, and checks its parts.
    #[test]
    fn a_report_from_made_up_results() {
        let temp = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
        let dir = std::env::var("LOADGEN_REPORT_DIR").map_or(temp.clone(), PathBuf::from);
        std::fs::create_dir_all(&dir).unwrap();
        let plan = Plan::new(false);
        let mut results = Vec::new();
        for (i, name) in crate::bench::STEPS.iter().enumerate() {
            let x = i as f64 * 10.0 + 1.0;
            let step = |clients: usize, failure: Option<String>| capacity::Step {
                clients,
                connect: Duration::from_millis(10),
                register: Duration::from_millis(20),
                idle: cpu(x),
                latency: hist(clients as u64 * 1000),
                verdict: Verdict::default(),
                failures: Failures::new(),
                failure,
            };
            let mut steps = vec![step(100, None), step(1_000, None), step(2_000, None)];
            if i == 1 {
                steps.push(step(5_000, Some("ERR server-full x3".into())));
            }
            let capacity = if i == 2 {
                Err("cannot start server".to_string())
            } else {
                Ok(capacity::Outcome {
                    server: name.to_string(),
                    idle_empty: cpu(x),
                    steps,
                })
            };
            let churn = |k: u64| churn::Outcome {
                server: name.to_string(),
                workers: 8,
                duration: Duration::from_secs(3),
                completed: 30_000 + k * 1000 + i as u64,
                failures: Failures::new(),
                lost: 0,
                duplicated: k,
                register: hist(100_000),
                cycle: hist(200_000),
                cpu: cpu(x),
            };
            let flood = |k: u64| flood::Outcome {
                server: name.to_string(),
                cfg: plan.flood.clone(),
                lost: vec![k, 0],
                verdict: Verdict::default(),
                freeze: Duration::from_millis(30 + k),
                send_time: Duration::from_millis(100 + k),
                line_len: 205,
                fates: [("ERR too-slow".to_string(), 90), ("open".to_string(), 10)].into(),
                freed: if k == 1 {
                    None
                } else {
                    Some(Duration::from_millis(1500))
                },
                peak_rss_kib: Some(9000),
                failures: Failures::new(),
            };
            results.push(StepResults {
                name: name.to_string(),
                capacity,
                fanout: vec![
                    (
                        100,
                        vec![
                            Ok(fan(100, 0, x)),
                            Err("boom".into()),
                            Ok(fan(100, 0, x + 5.0)),
                        ],
                    ),
                    (1_000, vec![Err("all failed".into())]),
                ],
                bystanders: vec![
                    (0, vec![Ok(fan(10, 0, x))]),
                    (1_000, vec![Ok(fan(10, 1_000, x))]),
                ],
                churn: vec![Ok(churn(0)), Ok(churn(2)), Err("x".into())],
                flood: vec![Ok(flood(0)), Ok(flood(1))],
                deep: if i == 3 {
                    vec![Ok(fan(1_000, 0, x))]
                } else {
                    Vec::new()
                },
            });
        }
        let load = ("0.1 0.2 0.3".to_string(), "1 2 3".to_string());
        write(
            &dir,
            &plan,
            &results,
            &["step9"],
            Duration::from_secs(7),
            load,
        )
        .unwrap();
        let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
        for part in [
            "## 1. Capacity",
            "## 2. Churn",
            "## 3. CPU at idle",
            "## 4. Fan-out",
        ] {
            assert!(md.contains(part), "no {part:?} in the report");
        }
        assert!(md.contains("## 5. Flood") && md.contains("| step4_poll | 1,000 | 3,000,010 |"));
        for chart in [
            "clients_held",
            "latency_p99",
            "fanout_throughput",
            "churn",
            "idle_cpu",
        ] {
            let svg = std::fs::read_to_string(dir.join(format!("{chart}.svg"))).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
                "{chart}.svg"
            );
        }
        if dir == temp {
            let _ = std::fs::remove_dir_all(&temp);
        }
    }

    #[test]
    fn dates_are_civil() {
        let date = utc_now();
        assert_eq!(date.len(), 16, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
