//! `REPORT.md` and its charts, from the bench results.
//!
//! Every sentence under a table is computed from the figures in it (a ratio, a comparison, a
//! limit read from this machine); none is written in advance.

use crate::bench::{
    BYSTANDER_RATE, BYSTANDER_TALKERS, DEEP_CLIENTS, DEEP_WINDOW, Plan, StepResults, idle_at,
    median_by,
};
use crate::server::CpuReading;
use crate::svg::{COLOURS, Series, bar_chart, line_chart};
use crate::sys;
use crate::table::{Table, ms, opt, thousands};
use crate::{capacity, churn, fanout};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn write(
    out: &Path,
    plan: &Plan,
    results: &[StepResults],
    missing: &[&str],
    elapsed: Duration,
    load: (String, String),
) -> Result<(), String> {
    let machine = Machine::read();
    let mut md = String::new();
    header(&mut md, plan, &machine, missing, elapsed, &load);
    clients_per_design(&mut md, results, &machine);
    pool_versus_threads(&mut md, results);
    idle_cost(&mut md, results);
    poll_scan(&mut md, results);
    method(&mut md, plan);
    let charts = [
        ("clients_held.svg", clients_chart(results)),
        ("latency_p99.svg", latency_chart(results)),
        ("fanout_throughput.svg", fanout_chart(results)),
        ("churn.svg", churn_chart(results)),
        ("idle_cpu.svg", idle_chart(results)),
    ];
    let save = |name: &str, text: &str| {
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("bench: cannot write {}: {e}", out.join(name).display()))
    };
    for (name, svg) in &charts {
        save(name, svg)?;
    }
    save("REPORT.md", &md)
}

/// What the report says about the machine it ran on.
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    pid_max: Option<u64>,
    max_map_count: Option<u64>,
    lines: Vec<String>,
}

impl Machine {
    fn read() -> Machine {
        let file = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        let cpuinfo = file("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("?".into(), |m| m.trim().to_string());
        let meminfo = file("/proc/meminfo");
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let limit = |resource| {
            sys::limits(resource).map_or_else(
                |_| "?".into(),
                |(soft, hard)| format!("{} soft / {} hard", show_limit(soft), show_limit(hard)),
            )
        };
        let lines = vec![
            format!(
                "open files per process (RLIMIT_NOFILE): {}",
                limit(sys::RLIMIT_NOFILE)
            ),
            format!(
                "processes per user (RLIMIT_NPROC): {}",
                limit(sys::RLIMIT_NPROC)
            ),
            format!("kernel.pid_max: {}", file("/proc/sys/kernel/pid_max")),
            format!(
                "kernel.threads-max: {}",
                file("/proc/sys/kernel/threads-max")
            ),
            format!("vm.max_map_count: {}", file("/proc/sys/vm/max_map_count")),
            format!(
                "net.core.somaxconn: {}",
                file("/proc/sys/net/core/somaxconn")
            ),
            format!(
                "net.ipv4.ip_local_port_range: {}",
                file("/proc/sys/net/ipv4/ip_local_port_range").replace('\t', " ")
            ),
            format!(
                "net.ipv4.tcp_congestion_control: {}",
                file("/proc/sys/net/ipv4/tcp_congestion_control")
            ),
        ];
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: mem_kib / 1024.0 / 1024.0,
            kernel: file("/proc/sys/kernel/osrelease"),
            pid_max: file("/proc/sys/kernel/pid_max").parse().ok(),
            max_map_count: file("/proc/sys/vm/max_map_count").parse().ok(),
            lines,
        }
    }
}

/// At most 200 characters of `text` (a crashed server's stderr can be long).
fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
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
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn header(
    md: &mut String,
    plan: &Plan,
    machine: &Machine,
    missing: &[&str],
    elapsed: Duration,
    load: &(String, String),
) {
    let kind = if plan.quick { "quick" } else { "full" };
    let _ = writeln!(md, "# Benchmark report: four chat server designs\n");
    let _ = writeln!(
        md,
        "Made by `loadgen bench{}` ({kind} run, {:.0} s) on {} UTC.\n",
        if plan.quick { " --quick" } else { "" },
        elapsed.as_secs_f64(),
        utc_now()
    );
    let _ = writeln!(
        md,
        "Load averages (1, 5, 15 min) when the run started: {}; when it ended: {}. Anything else running \
         on the machine meanwhile takes CPU from the server and from loadgen.\n",
        load.0, load.1
    );
    let _ = writeln!(
        md,
        "**Machine**: {}, {} cores, {:.1} GiB of memory, Linux {}.\n",
        machine.cpu, machine.cores, machine.memory_gib, machine.kernel
    );
    let _ = writeln!(
        md,
        "**Limits in force** (the server inherits loadgen's, with the soft open-file limit raised to the hard one):\n"
    );
    for line in &machine.lines {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md);
    if !missing.is_empty() {
        let _ = writeln!(
            md,
            "**Not measured** (no binary found): {}.\n",
            missing.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "loadgen and the server share the machine's cores: every table gives the CPU of both (in % of one core), \
         so a reader can tell which of the two ran out first. Charts: [clients held](clients_held.svg), \
         [probe latency](latency_p99.svg), [fan-out throughput](fanout_throughput.svg), [churn](churn.svg), \
         [CPU at idle](idle_cpu.svg).\n"
    );
}

fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

fn ok_capacity(step: &StepResults) -> Option<&capacity::Outcome> {
    step.capacity.as_ref().ok()
}

fn clients_per_design(md: &mut String, results: &[StepResults], machine: &Machine) {
    let _ = writeln!(md, "## 1. How many clients can each design hold?\n");
    let _ = writeln!(
        md,
        "![clients held per design](clients_held.svg)\n\n![probe latency p99 versus clients](latency_p99.svg)\n"
    );
    let mut t = Table::new(&[
        "step",
        "clients held",
        "next step",
        "why it failed",
        "threads at held",
        "mappings at held",
        "RSS MiB at held",
        "probe p99 ms at held",
    ]);
    for r in results {
        let Some(o) = ok_capacity(r) else {
            t.row(vec![
                r.name.clone(),
                "-".into(),
                "-".into(),
                r.capacity.as_ref().err().cloned().unwrap_or_default(),
            ]);
            continue;
        };
        let held = o.held();
        let failed = o.failed();
        t.row(vec![
            r.name.clone(),
            held.map_or("none".into(), |s| thousands(s.clients as f64)),
            failed.map_or("-".into(), |s| thousands(s.clients as f64)),
            failed
                .and_then(|s| s.failure.as_deref())
                .map_or_else(|| "- (every step passed)".into(), clip),
            held.and_then(|s| s.idle.server_threads)
                .map_or_else(|| "-".into(), |t| thousands(t as f64)),
            held.and_then(|s| s.idle.server_maps)
                .map_or_else(|| "-".into(), |m| thousands(m as f64)),
            opt(
                held.and_then(|s| s.idle.server_rss_kib)
                    .map(|k| k as f64 / 1024.0),
                1,
            ),
            ms(held.and_then(|s| s.latency.percentile(99.0))),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
    for r in results {
        let Some(o) = ok_capacity(r) else { continue };
        let _ = writeln!(md, "- {}", read_capacity(&r.name, o, machine));
    }
    let _ = writeln!(md);
}

/// One computed sentence or two about one step's capacity run.
fn read_capacity(name: &str, o: &capacity::Outcome, machine: &Machine) -> String {
    let mut text = format!("**{name}** {}.", o.summary());
    if let Some(failed) = o.failed() {
        let failed_count: u64 = failed.failures.values().sum();
        if failed_count > 0 && (failed_count as usize) < failed.clients {
            let others = failed.clients - failed_count as usize;
            let _ = write!(
                text,
                " At {} clients, {} connections failed and {} did not.",
                thousands(failed.clients as f64),
                thousands(failed_count as f64),
                thousands(others as f64)
            );
        }
    }
    let threads = |c: &CpuReading| c.server_threads;
    let maps = |c: &CpuReading| c.server_maps;
    for (what, get, limit_name, limit) in [
        (
            "threads",
            &threads as &dyn Fn(&CpuReading) -> Option<u64>,
            "kernel.pid_max",
            machine.pid_max,
        ),
        (
            "memory mappings",
            &maps,
            "vm.max_map_count",
            machine.max_map_count,
        ),
    ] {
        if let Some(sentence) = growth(o, what, get, limit_name, limit) {
            text.push(' ');
            text.push_str(&sentence);
        }
    }
    text
}

/// How a resource of the server (threads, mappings) grew with the clients over the passed
/// steps, and what that rate makes of the failed step next to the machine's limit. `None`
/// unless it grew by at least half a unit per client.
fn growth(
    o: &capacity::Outcome,
    what: &str,
    get: &dyn Fn(&CpuReading) -> Option<u64>,
    limit_name: &str,
    limit: Option<u64>,
) -> Option<String> {
    let points: Vec<(usize, u64)> = o
        .steps
        .iter()
        .filter(|s| s.failure.is_none())
        .filter_map(|s| Some((s.clients, get(&s.idle)?)))
        .collect();
    let (&(low_clients, low), &(high_clients, high)) = (points.first()?, points.last()?);
    if high_clients == low_clients {
        return None;
    }
    let slope = (high as f64 - low as f64) / (high_clients - low_clients) as f64;
    if slope < 0.5 {
        return None;
    }
    let mut text = format!(
        "Its {what} went from {} at {} clients to {} at {}: {slope:.2} per extra client",
        thousands(low as f64),
        thousands(low_clients as f64),
        thousands(high as f64),
        thousands(high_clients as f64)
    );
    match (o.failed(), limit) {
        (Some(failed), Some(limit)) => {
            let needed = high as f64 + slope * (failed.clients - high_clients) as f64;
            let side = if needed > limit as f64 {
                "above"
            } else {
                "below"
            };
            let _ = write!(
                text,
                "; at that rate {} clients need about {}, {side} {limit_name} = {}.",
                thousands(failed.clients as f64),
                thousands(needed),
                thousands(limit as f64)
            );
        }
        _ => text.push('.'),
    }
    Some(text)
}

fn pool_versus_threads(md: &mut String, results: &[StepResults]) {
    let _ = writeln!(md, "## 2. Does the pool beat a thread per connection?\n");
    let _ = writeln!(md, "![connections per second under churn](churn.svg)\n");
    let mut t = Table::new(&[
        "step",
        "conn/s (median)",
        "runs",
        "register p50 ms",
        "register p99 ms",
        "cycle p50 ms",
        "cycle p99 ms",
        "server CPU %",
        "loadgen CPU %",
        "server threads",
        "result",
    ]);
    for r in results {
        let runs = list(&r.churn, |o| thousands(o.per_second()));
        let Some(o) = median_by(&r.churn, churn::Outcome::per_second) else {
            t.row(failed_row(
                vec![r.name.clone(), "-".into(), runs],
                11,
                &r.churn,
            ));
            continue;
        };
        t.row(vec![
            r.name.clone(),
            thousands(o.per_second()),
            runs,
            ms(o.register.percentile(50.0)),
            ms(o.register.percentile(99.0)),
            ms(o.cycle.percentile(50.0)),
            ms(o.cycle.percentile(99.0)),
            opt(o.cpu.server_cpu, 0),
            opt(o.cpu.loadgen_cpu, 0),
            opt(o.cpu.server_threads.map(|t| t as f64), 0),
            o.problem().unwrap_or_else(|| "ok".into()),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
    let churn_of = |name: &str| {
        results
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| median_by(&r.churn, churn::Outcome::per_second))
    };
    if let (Some(pool), Some(threads)) = (churn_of("step3_pool"), churn_of("step2_threads")) {
        let ratio = pool.per_second() / threads.per_second().max(1e-9);
        let verdict = if ratio >= 1.0 {
            format!("{ratio:.2} times as many")
        } else {
            format!("{:.0} % fewer", (1.0 - ratio) * 100.0)
        };
        let _ = writeln!(
            md,
            "With {} connections in flight, step3_pool completed {} connections/s and step2_threads {}: the pool did {verdict} \
             connections per second. Time to register, p50: {} ms (pool) against {} ms (threads); p99: {} ms against {} ms. \
             Server CPU meanwhile: {} % against {} %.\n",
            pool.workers,
            thousands(pool.per_second()),
            thousands(threads.per_second()),
            ms(pool.register.percentile(50.0)),
            ms(threads.register.percentile(50.0)),
            ms(pool.register.percentile(99.0)),
            ms(threads.register.percentile(99.0)),
            opt(pool.cpu.server_cpu, 0),
            opt(threads.cpu.server_cpu, 0),
        );
    }
    if let Some(best) = results
        .iter()
        .filter_map(|r| {
            Some((
                r.name.as_str(),
                median_by(&r.churn, churn::Outcome::per_second)?,
            ))
        })
        .max_by(|a, b| a.1.per_second().total_cmp(&b.1.per_second()))
    {
        let _ = writeln!(
            md,
            "The most connections per second of the four: {} ({}).\n",
            best.0,
            thousands(best.1.per_second())
        );
    }
}

/// The successful runs' figures, e.g. `9,120 / 9,305 / 9,410`, and `failed` for the others.
fn list<T>(runs: &[Result<T, String>], show: impl Fn(&T) -> String) -> String {
    runs.iter()
        .map(|r| r.as_ref().map_or_else(|_| "failed".into(), &show))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A table row for figures whose every run failed: `cells`, dashes up to `width` columns,
/// and the first run's error in the last one.
fn failed_row<T>(mut cells: Vec<String>, width: usize, runs: &[Result<T, String>]) -> Vec<String> {
    cells.resize(width - 1, "-".into());
    cells.push(
        runs.iter()
            .find_map(|r| r.as_ref().err())
            .map_or_else(String::new, |e| clip(e)),
    );
    cells
}

fn idle_cost(md: &mut String, results: &[StepResults]) {
    let _ = writeln!(md, "## 3. What does each design cost at idle?\n");
    let _ = writeln!(md, "![CPU at idle](idle_cpu.svg)\n");
    let _ = writeln!(
        md,
        "CPU sampled while the clients were connected and registered but nobody sent anything (the `capacity` run, before its probes).\n"
    );
    let mut t = Table::new(&[
        "step",
        "CPU % no client",
        "CPU % 100 clients",
        "CPU % 1,000 clients",
        "CPU % at the largest held",
        "RSS MiB 100 clients",
        "threads 100 clients",
    ]);
    for r in results {
        let Some(o) = ok_capacity(r) else { continue };
        let at = |n| idle_at(o, n);
        let largest = o.held().map(|s| {
            format!(
                "{} ({} clients)",
                opt(s.idle.server_cpu, 1),
                thousands(s.clients as f64)
            )
        });
        t.row(vec![
            r.name.clone(),
            opt(o.idle_empty.server_cpu, 1),
            opt(at(100).and_then(|c| c.server_cpu), 1),
            opt(at(1_000).and_then(|c| c.server_cpu), 1),
            largest.unwrap_or_else(|| "-".into()),
            opt(
                at(100)
                    .and_then(|c| c.server_rss_kib)
                    .map(|k| k as f64 / 1024.0),
                1,
            ),
            opt(at(100).and_then(|c| c.server_threads).map(|t| t as f64), 0),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
    let idle: Vec<(&str, f64)> = results
        .iter()
        .filter_map(|r| Some((r.name.as_str(), ok_capacity(r)?.idle_empty.server_cpu?)))
        .collect();
    let (busy, calm): (Vec<_>, Vec<_>) = idle.iter().partition(|(_, cpu)| *cpu >= 50.0);
    for (name, cpu) in &busy {
        let _ = writeln!(
            md,
            "- {name} used {cpu:.0} % of a core with no client connected at all."
        );
    }
    if let Some(max) = calm.iter().map(|(_, c)| *c).reduce(f64::max) {
        let names: Vec<&str> = calm.iter().map(|(n, _)| *n).collect();
        let _ = writeln!(
            md,
            "- {} used at most {max:.1} % with no client connected.",
            names.join(", ")
        );
    }
    let _ = writeln!(md);
}

fn poll_scan(md: &mut String, results: &[StepResults]) {
    let _ = writeln!(
        md,
        "## 4. How many clients can one thread serve with poll()? Where does the O(n) scan show?\n"
    );
    let _ = writeln!(
        md,
        "![delivered messages per second](fanout_throughput.svg)\n"
    );
    let _ = writeln!(
        md,
        "**Fan-out**: every client sends as fast as the window allows (at most 1,000 messages not yet read by every receiver), \
         every message goes to all the others. \"ns/delivery\" is the server's CPU time per delivered line. With the window \
         full, a message waits behind up to 1,000 others on its way to each receiver, so the latency here is mostly that queue: \
         about 1,000 x (clients - 1) / (delivered/s).\n"
    );
    let mut t = Table::new(&[
        "step",
        "clients",
        "delivered/s (median)",
        "runs",
        "messages/s",
        "p50 ms",
        "p99 ms",
        "server CPU %",
        "loadgen CPU %",
        "server ns/delivery",
        "result",
    ]);
    for r in results {
        for (clients, runs) in &r.fanout {
            let Some(o) = median_by(runs, fanout::Outcome::delivered_per_s) else {
                let cells = vec![
                    r.name.clone(),
                    thousands(*clients as f64),
                    "-".into(),
                    list(runs, |o| short_rate(o.delivered_per_s())),
                ];
                t.row(failed_row(cells, 11, runs));
                continue;
            };
            t.row(vec![
                r.name.clone(),
                thousands(*clients as f64),
                thousands(o.delivered_per_s()),
                list(runs, |o| short_rate(o.delivered_per_s())),
                thousands(o.sent_per_s()),
                ms(o.latency.percentile(50.0)),
                ms(o.latency.percentile(99.0)),
                opt(o.cpu.server_cpu, 0),
                opt(o.cpu.loadgen_cpu, 0),
                opt(ns_per(o.cpu.server_cpu, o.delivered_per_s()), 0),
                o.problem().unwrap_or_else(|| "ok".into()),
            ]);
        }
    }
    let _ = writeln!(md, "{}", t.markdown());
    for r in results {
        if let Some(text) = read_fanout(r) {
            let _ = writeln!(md, "- {text}");
        }
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "**Idle connections**: {BYSTANDER_TALKERS} registered clients each send {BYSTANDER_RATE:.0} messages/s while more and more connections \
         sit idle without registering (they receive nothing, but the server still watches them). \"µs/message\" is the server's CPU time per message relayed.\n"
    );
    let mut t = Table::new(&[
        "step",
        "idle connections",
        "p50 ms",
        "p99 ms",
        "server CPU % (median)",
        "runs",
        "server µs/message",
        "server threads",
        "result",
    ]);
    for r in results {
        for (idle, runs) in &r.bystanders {
            let cpu = |o: &fanout::Outcome| o.cpu.server_cpu.unwrap_or(f64::NAN);
            let Some(o) = median_by(runs, cpu) else {
                let cells = vec![
                    r.name.clone(),
                    thousands(*idle as f64),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    list(runs, |o| opt(o.cpu.server_cpu, 1)),
                ];
                t.row(failed_row(cells, 9, runs));
                continue;
            };
            t.row(vec![
                r.name.clone(),
                thousands(*idle as f64),
                ms(o.latency.percentile(50.0)),
                ms(o.latency.percentile(99.0)),
                opt(o.cpu.server_cpu, 1),
                list(runs, |o| opt(o.cpu.server_cpu, 1)),
                opt(
                    ns_per(o.cpu.server_cpu, o.sent_per_s()).map(|ns| ns / 1000.0),
                    1,
                ),
                opt(o.cpu.server_threads.map(|t| t as f64), 0),
                o.problem().unwrap_or_else(|| "ok".into()),
            ]);
        }
    }
    let _ = writeln!(md, "{}", t.markdown());
    for r in results {
        if let Some(text) = read_bystanders(r) {
            let _ = writeln!(md, "- {text}");
        }
    }
    let _ = writeln!(md);
    loadgen_or_server(md, results);
    if let Some(text) = read_probe_growth(results) {
        let _ = writeln!(md, "{text}\n");
    }
}

/// The deep-window run: which process ran out of CPU first.
fn loadgen_or_server(md: &mut String, results: &[StepResults]) {
    let Some(r) = results.iter().find(|r| !r.deep.is_empty()) else {
        return;
    };
    let _ = writeln!(
        md,
        "**Is loadgen the bottleneck?** {} bounds each backlog in bytes (2 MiB), so it can take a deeper window than the \
         protocol's 1,000 messages: {} clients, window {}.\n",
        r.name,
        thousands(DEEP_CLIENTS as f64),
        thousands(DEEP_WINDOW as f64)
    );
    let mut t = Table::new(&[
        "step",
        "clients",
        "window",
        "delivered/s (median)",
        "runs",
        "p99 ms",
        "server CPU %",
        "loadgen CPU %",
        "result",
    ]);
    let median = median_by(&r.deep, fanout::Outcome::delivered_per_s);
    if let Some(o) = median {
        t.row(vec![
            r.name.clone(),
            thousands(DEEP_CLIENTS as f64),
            thousands(DEEP_WINDOW as f64),
            thousands(o.delivered_per_s()),
            list(&r.deep, |o| short_rate(o.delivered_per_s())),
            ms(o.latency.percentile(99.0)),
            opt(o.cpu.server_cpu, 0),
            opt(o.cpu.loadgen_cpu, 0),
            o.problem().unwrap_or_else(|| "ok".into()),
        ]);
    }
    let _ = writeln!(md, "{}", t.markdown());
    let Some(o) = median else { return };
    let (Some(server), Some(own)) = (o.cpu.server_cpu, o.cpu.loadgen_cpu) else {
        return;
    };
    let first = if server > own {
        r.name.as_str()
    } else {
        "loadgen"
    };
    let _ = writeln!(
        md,
        "{} deliveries/s with the server at {server:.0} % of a core and loadgen at {own:.0} %: the busier of the two was {first}.\n",
        thousands(o.delivered_per_s())
    );
}

/// CPU (in % of a core) per unit of a rate, in nanoseconds.
fn ns_per(cpu_percent: Option<f64>, per_second: f64) -> Option<f64> {
    let cpu = cpu_percent?;
    (per_second > 0.0).then(|| cpu / 100.0 * 1e9 / per_second)
}

fn short_rate(value: f64) -> String {
    format!("{:.1}M", value / 1e6)
}

/// The fan-out figures of one step from its smallest to its largest client count.
fn read_fanout(r: &StepResults) -> Option<String> {
    let medians: Vec<(usize, &fanout::Outcome)> = r
        .fanout
        .iter()
        .filter_map(|(n, runs)| Some((*n, median_by(runs, fanout::Outcome::delivered_per_s)?)))
        .collect();
    let (first, last) = (medians.first()?, medians.last()?);
    if first.0 == last.0 {
        return None;
    }
    let mut text = format!(
        "**{}**: from {} to {} clients, deliveries/s went from {} to {} ({:.2}x)",
        r.name,
        thousands(first.0 as f64),
        thousands(last.0 as f64),
        thousands(first.1.delivered_per_s()),
        thousands(last.1.delivered_per_s()),
        last.1.delivered_per_s() / first.1.delivered_per_s().max(1e-9)
    );
    if let (Some(a), Some(b)) = (
        ns_per(first.1.cpu.server_cpu, first.1.delivered_per_s()),
        ns_per(last.1.cpu.server_cpu, last.1.delivered_per_s()),
    ) {
        let _ = write!(
            text,
            " and the server's CPU per delivery from {a:.0} ns to {b:.0} ns"
        );
    }
    if let Some((_, peak)) = medians
        .iter()
        .max_by(|a, b| a.1.delivered_per_s().total_cmp(&b.1.delivered_per_s()))
    {
        let _ = write!(
            text,
            "; at its best ({} clients) the server used {} % CPU and loadgen {} %",
            thousands(peak.clients as f64),
            opt(peak.cpu.server_cpu, 0),
            opt(peak.cpu.loadgen_cpu, 0)
        );
    }
    text.push('.');
    Some(text)
}

/// Server CPU per relayed message with no idle connection against the most idle ones.
fn read_bystanders(r: &StepResults) -> Option<String> {
    let cpu = |o: &fanout::Outcome| o.cpu.server_cpu.unwrap_or(f64::NAN);
    let medians: Vec<(usize, &fanout::Outcome)> = r
        .bystanders
        .iter()
        .filter_map(|(n, runs)| Some((*n, median_by(runs, cpu)?)))
        .collect();
    let (first, last) = (medians.first()?, medians.last()?);
    if first.0 == last.0 {
        return None;
    }
    let per_msg =
        |o: &fanout::Outcome| ns_per(o.cpu.server_cpu, o.sent_per_s()).map(|ns| ns / 1000.0);
    let (a, b) = (per_msg(first.1)?, per_msg(last.1)?);
    Some(format!(
        "**{}**: with {} idle connections instead of {}, server CPU went from {} % to {} %, {a:.1} to {b:.1} µs per relayed message ({:.1}x); p99 from {} ms to {} ms.",
        r.name,
        thousands(last.0 as f64),
        thousands(first.0 as f64),
        opt(first.1.cpu.server_cpu, 1),
        opt(last.1.cpu.server_cpu, 1),
        b / a.max(1e-9),
        ms(first.1.latency.percentile(99.0)),
        ms(last.1.latency.percentile(99.0)),
    ))
}

/// How the capacity probes' p99 grew with the clients, per step.
fn read_probe_growth(results: &[StepResults]) -> Option<String> {
    let mut parts = Vec::new();
    for r in results {
        let Some(o) = ok_capacity(r) else { continue };
        let passed: Vec<&capacity::Step> = o.steps.iter().filter(|s| s.failure.is_none()).collect();
        let (Some(first), Some(last)) = (passed.first(), passed.last()) else {
            continue;
        };
        if first.clients == last.clients {
            continue;
        }
        parts.push(format!(
            "{} from {} ms at {} clients to {} ms at {}",
            r.name,
            ms(first.latency.percentile(99.0)),
            thousands(first.clients as f64),
            ms(last.latency.percentile(99.0)),
            thousands(last.clients as f64)
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "**Probe latency** (one client broadcasting to all the others, `capacity`), p99: {}.",
            parts.join("; ")
        )
    })
}

fn method(md: &mut String, plan: &Plan) {
    let _ = writeln!(md, "## How these figures were made\n");
    let _ = writeln!(
        md,
        "- Every run starts a fresh server on 127.0.0.1:0 and stops it afterwards; loadgen connects from loopback addresses 127.0.x.y it binds itself, \
         drives all its sockets with poll(2) in one thread, and checks every delivery (nothing lost, duplicated or out of order).\n\
         - `capacity`: steps up to {} clients; at each step 1 s for the registrations to settle, then {:.1} s idle (CPU sampled), then {} probes from client 0, one at a time (each sent once the previous one reached everybody, at least 50 ms apart). \
         A step passes when all clients connected and registered, no probe was lost and p99 < 1 s. step3_pool gets two workers per \
         connection in every run, up to the 16,000 it accepts at most, so its limit is the design's, not its default pool's (512 workers, 256 clients).\n\
         - `fanout`: {} clients, {:.0} s of sending per run; idle-connection runs: {} talking clients at {:.0} msg/s each next to {} idle connections.\n\
         - `churn`: {} connections in flight, each connect, `USER`, `MSG`, half-close, read to the end; {:.0} s per run. \
         Time to register = from the start of connect until a watcher client receives the connection's `MSG`.\n\
         - Repeated runs: {} per figure (the median run is shown, every run's figure in \"runs\"); capacity runs once.\n",
        thousands(plan.capacity_max as f64),
        plan.idle.as_secs_f64(),
        plan.probes,
        plan.fanout_clients
            .iter()
            .map(|n| thousands(*n as f64))
            .collect::<Vec<_>>()
            .join(", "),
        plan.fanout_seconds,
        BYSTANDER_TALKERS,
        BYSTANDER_RATE,
        plan.bystanders
            .iter()
            .map(|n| thousands(*n as f64))
            .collect::<Vec<_>>()
            .join(", "),
        plan.churn_workers,
        plan.churn_seconds,
        plan.repeats,
    );
}

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

fn clients_chart(results: &[StepResults]) -> String {
    let series: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: r.name.clone(),
            colour: colour(i),
            points: ok_capacity(r)
                .and_then(|o| o.held())
                .map(|s| vec![(0.0, s.clients as f64)])
                .unwrap_or_default(),
        })
        .collect();
    bar_chart(
        "Clients held (largest capacity step that passed)",
        "clients",
        &["capacity".to_string()],
        &series,
    )
}

fn latency_chart(results: &[StepResults]) -> String {
    let series: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let points = ok_capacity(r)
                .map(|o| {
                    o.steps
                        .iter()
                        .filter(|s| s.failure.is_none())
                        .filter_map(|s| {
                            Some((s.clients as f64, s.latency.percentile(99.0)? as f64 / 1e6))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Series {
                name: r.name.clone(),
                colour: colour(i),
                points,
            }
        })
        .collect();
    line_chart(
        "Probe delivery latency p99 versus clients",
        "registered clients",
        "p99 latency (ms)",
        true,
        true,
        &series,
    )
}

fn fanout_chart(results: &[StepResults]) -> String {
    let sizes: Vec<usize> = results
        .first()
        .map(|r| r.fanout.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    let groups: Vec<String> = sizes
        .iter()
        .map(|n| format!("{} clients", thousands(*n as f64)))
        .collect();
    let series: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let points = r
                .fanout
                .iter()
                .enumerate()
                .filter_map(|(g, (_, runs))| {
                    Some((
                        g as f64,
                        median_by(runs, fanout::Outcome::delivered_per_s)?.delivered_per_s(),
                    ))
                })
                .collect();
            Series {
                name: r.name.clone(),
                colour: colour(i),
                points,
            }
        })
        .collect();
    bar_chart(
        "Fan-out: messages delivered per second",
        "deliveries per second",
        &groups,
        &series,
    )
}

fn churn_chart(results: &[StepResults]) -> String {
    let series: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: r.name.clone(),
            colour: colour(i),
            points: median_by(&r.churn, churn::Outcome::per_second)
                .map(|o| vec![(0.0, o.per_second())])
                .unwrap_or_default(),
        })
        .collect();
    bar_chart(
        "Churn: connect, USER, MSG, close per second",
        "connections per second",
        &["churn".to_string()],
        &series,
    )
}

fn idle_chart(results: &[StepResults]) -> String {
    let groups = vec![
        "no client".to_string(),
        "100 idle clients".to_string(),
        "1,000 idle clients".to_string(),
    ];
    let series: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let points = ok_capacity(r)
                .map(|o| {
                    let readings = [Some(o.idle_empty), idle_at(o, 100), idle_at(o, 1_000)];
                    readings
                        .iter()
                        .enumerate()
                        .filter_map(|(g, c)| Some((g as f64, (*c)?.server_cpu?)))
                        .collect()
                })
                .unwrap_or_default();
            Series {
                name: r.name.clone(),
                colour: colour(i),
                points,
            }
        })
        .collect();
    bar_chart(
        "Server CPU at idle",
        "CPU (% of one core)",
        &groups,
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let date = utc_now();
        assert_eq!(date.len(), 16, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
