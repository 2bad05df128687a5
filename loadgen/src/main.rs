//! loadgen: many chat clients from one process, to measure the four server designs.
//!
//! Every scenario connects its clients from explicit loopback source addresses, drives them
//! all with `poll(2)` (one thread, or a few for `fanout`), proves each one registered, and
//! stamps every message with its send time, so each delivery is timed and checked: nothing
//! lost, nothing duplicated, each sender's order kept. With `--server PATH` loadgen starts the
//! server itself and samples its CPU, memory and threads from `/proc`.
//!
//! Try it: `make step4 && ./target/release/step4_poll`, then in another terminal
//! `cargo run --release -p loadgen -- fanout --clients 1000`. `make bench` runs them all.

mod args;
mod bench;
mod capacity;
mod check;
mod churn;
mod fanout;
mod flood;
mod report;
mod server;
mod stats;
mod svg;
mod swarm;
mod sys;
mod table;
mod target;
mod wire;

use args::{Args, Usage};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use table::{Column, Table};
use target::Target;

const USAGE: &str = "\
usage: loadgen <scenario> [options]

scenarios:
  capacity  registered idle clients in steps up to --max; client 0 broadcasts probes at each
            step, one at a time. Passes while all connect and register, nothing is lost and
            p99 < 1 s.
              --max N (19900)  --steps N,N,... (100,1000,2000,5000,10000,19900)
              --probes K (20)  --interval-ms MS (50, the least time between two probes)
              --idle-ms MS (1000, the server idles this long at each step, CPU sampled)
  fanout    --clients N (100) each send for --duration S (5) seconds, to all the others.
              --rate R msgs/s per sender (0 = as fast as the server relays)
              --senders N (all)  --window W in-flight messages (1000; more than 1,000 may make
              a server that keeps only the protocol's minimum cut clients as too slow)
              --threads T (1)
              --idle M connections that never register (the server still watches them)
  flood     one client sends --messages M (50000) lines unpaced, in large writes, while
            --readers K (2) read them, --paced P (1) of those at --reader-rate B bytes/s
            (2000000), and --non-readers N (100) registered clients never read. Passes when no
            reader lost a message or got one out of order. --size defaults to 200 here.
  churn     --workers C (8) connections at a time: connect, USER, MSG, close, for
            --duration S (5) seconds. Time to register = connect to delivery of the MSG.
  bench     the whole matrix over the four steps; writes REPORT.md and SVG charts.
              --quick (about a minute)  --out DIR (bench/runs)  --bin-dir DIR (loadgen's own)

options of every scenario:
  --server PATH [--server-arg ARG]...  start the server (on 127.0.0.1:0) and measure it
  --addr IP:PORT                       or load a running server (127.0.0.1:7878)
  --size BYTES                         message text length (32, at least 26)
  --csv                                print one CSV row (with a header) instead of a table";

/// Why loadgen stopped: bad usage (status 2) or a failed run (status 1).
enum Fail {
    Usage(String),
    Run(String),
}

impl From<String> for Fail {
    fn from(message: String) -> Self {
        Fail::Run(message)
    }
}

impl From<Usage> for Fail {
    fn from(usage: Usage) -> Self {
        Fail::Usage(usage.0)
    }
}

fn main() -> ExitCode {
    progress_clock();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (status, message) = match run(&argv) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Fail::Usage(message)) => (2, message),
        Err(Fail::Run(message)) => (1, message),
    };
    eprintln!("loadgen: {message}");
    ExitCode::from(status)
}

const COMMON: [&str; 4] = ["--server", "--server-arg", "--addr", "--size"];

/// Runs the scenario `argv` names. Each `run_<scenario>` parses its options, runs, prints
/// its results and returns what went wrong in the run, if anything: that fails loadgen.
fn run(argv: &[String]) -> Result<(), Fail> {
    let Some((command, rest)) = argv.split_first() else {
        return Err(Fail::Usage(format!("no scenario given\n{USAGE}")));
    };
    let fd_limit =
        sys::raise_fd_limit().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    // Descriptors loadgen needs besides its client sockets (stdio, pipes, /proc files).
    let max_clients = (fd_limit as usize).saturating_sub(64);
    let problem = match command.as_str() {
        "capacity" => run_capacity(rest, max_clients)?,
        "fanout" => run_fanout(rest, max_clients)?,
        "flood" => run_flood(rest, max_clients)?,
        "churn" => run_churn(rest, max_clients)?,
        "bench" => return run_bench(command, rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return Ok(());
        }
        other => return Err(Fail::Usage(format!("unknown scenario {other:?}\n{USAGE}"))),
    };
    problem.map_or(Ok(()), |p| Err(Fail::Run(format!("{command}: {p}"))))
}

fn run_capacity(rest: &[String], max_clients: usize) -> Result<Option<String>, Fail> {
    let own = "--max --steps --probes --interval-ms --idle-ms";
    let args = parse("capacity", rest, own)?;
    let max = args.get("--max", 19_900, 2..=max_clients)?;
    let steps = match args.value("--steps") {
        Some(list) => parse_steps(&list, max)?,
        None => capacity::steps_up_to(max),
    };
    let cfg = capacity::Config {
        steps,
        probes: args.get("--probes", 20, 1..=10_000)?,
        interval: Duration::from_millis(args.get("--interval-ms", 50, 0..=10_000)?),
        idle: Duration::from_millis(args.get("--idle-ms", 1000, 0..=60_000)?),
        size: size(&args)?,
    };
    let outcome = capacity::run(&cfg, &mut target(&args)?)?;
    let summary = outcome.summary();
    if args.flag("--csv") {
        show(&args, &outcome.csv());
    } else {
        print!("{}", outcome.table().render());
        println!("{}: {summary}", outcome.server);
    }
    let failed = outcome.held().is_none();
    Ok(failed.then(|| format!("no step passed: {summary}")))
}

fn run_fanout(rest: &[String], max_clients: usize) -> Result<Option<String>, Fail> {
    let own = "--clients --senders --rate --duration --window --threads --idle";
    let args = parse("fanout", rest, own)?;
    let clients = args.get("--clients", 100, 2..=max_clients)?;
    let cfg = fanout::Config {
        clients,
        senders: args.get("--senders", clients, 1..=clients)?,
        rate: args.get("--rate", 0.0, 0.0..=1e7)?,
        duration: seconds(&args, "--duration")?,
        size: size(&args)?,
        window: args.get("--window", 1000, 1..=100_000)?,
        threads: args.get("--threads", 1, 1..=64)?,
        idle: args.get("--idle", 0, 0..=max_clients - clients)?,
    };
    let outcome = fanout::run(&cfg, &mut target(&args)?)?;
    show(&args, &outcome.columns());
    let problem = outcome.problem();
    Ok(problem.map(|p| format!("delivery check failed: {p}")))
}

fn run_flood(rest: &[String], max_clients: usize) -> Result<Option<String>, Fail> {
    let own = "--messages --readers --paced --reader-rate --non-readers";
    let args = parse("flood", rest, own)?;
    let readers = args.get("--readers", 2, 1..=1000)?;
    let cfg = flood::Config {
        messages: args.get("--messages", 50_000, 1..=100_000_000)?,
        size: args.get("--size", 200, wire::MIN_TEXT..=1000)?,
        readers,
        paced: args.get("--paced", 1.min(readers), 0..=readers)?,
        reader_rate: args.get("--reader-rate", 2e6, 1e3..=1e10)?,
        non_readers: args.get("--non-readers", 100, 0..=max_clients - readers - 1)?,
    };
    let outcome = flood::run(&cfg, &mut target(&args)?)?;
    show(&args, &outcome.columns());
    Ok(outcome.problem())
}

fn run_churn(rest: &[String], max_clients: usize) -> Result<Option<String>, Fail> {
    let args = parse("churn", rest, "--workers --duration")?;
    let cfg = churn::Config {
        workers: args.get("--workers", 8, 1..=max_clients - 2)?,
        duration: seconds(&args, "--duration")?,
        size: size(&args)?,
    };
    let outcome = churn::run(&cfg, &mut target(&args)?)?;
    show(&args, &outcome.columns());
    Ok(outcome.problem())
}

fn run_bench(command: &str, rest: &[String]) -> Result<(), Fail> {
    let args = Args::parse(command, rest, &["--out", "--bin-dir"], &["--quick"])?;
    let own_dir = || Some(std::env::current_exe().ok()?.parent()?.to_path_buf());
    let Some(bin_dir) = args.value("--bin-dir").map(PathBuf::from).or_else(own_dir) else {
        let why = "cannot tell loadgen's own directory; give --bin-dir";
        return Err(Fail::Usage(why.into()));
    };
    let out = PathBuf::from(args.value("--out").unwrap_or_else(|| "bench/runs".into()));
    if out.ends_with("reference") {
        let why = "bench: bench/reference holds the committed report; write elsewhere";
        return Err(Fail::Usage(why.into()));
    }
    Ok(bench::run(args.flag("--quick"), &out, &bin_dir)?)
}

/// Parses the options of a scenario: the common ones and `own` (names separated by spaces).
fn parse(command: &str, rest: &[String], own: &str) -> Result<Args, Usage> {
    let valued: Vec<&str> = COMMON.iter().copied().chain(own.split(' ')).collect();
    Args::parse(command, rest, &valued, &["--csv"])
}

fn size(args: &Args) -> Result<usize, Usage> {
    args.get("--size", 32, wire::MIN_TEXT..=1000)
}

fn seconds(args: &Args, name: &str) -> Result<Duration, Usage> {
    let seconds = args.get(name, 5.0, 0.1..=3600.0)?;
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_steps(list: &str, max: usize) -> Result<Vec<usize>, Usage> {
    let parsed: Result<Vec<usize>, _> = list.split(',').map(|s| s.trim().parse()).collect();
    let Ok(steps) = parsed else {
        let why = format!("capacity: --steps {list:?} is not a list of numbers");
        return Err(Usage(why));
    };
    if steps.is_empty() || steps.windows(2).any(|w| w[0] >= w[1]) || steps[0] < 2 {
        return Err(Usage("capacity: --steps must rise, from at least 2".into()));
    }
    Ok(steps.into_iter().filter(|&n| n <= max).collect())
}

/// The server: started from `--server`, or reached at `--addr` (default 127.0.0.1:7878).
fn target(args: &Args) -> Result<Target, Fail> {
    let addr = args.value("--addr");
    if let Some(path) = args.value("--server") {
        if addr.is_some() {
            let why = "give either --server or --addr, not both";
            return Err(Fail::Usage(why.into()));
        }
        return Ok(Target::start(Path::new(&path), &args.all("--server-arg"))?);
    }
    let text = addr.unwrap_or_else(|| "127.0.0.1:7878".into());
    let Ok(addr) = text.parse::<SocketAddrV4>() else {
        let why = format!("--addr {text:?} is not an IPv4 address with a port");
        return Err(Fail::Usage(why));
    };
    if !addr.ip().is_loopback() {
        let why = format!("--addr {addr}: only loopback addresses (127.x.x.x) may be loaded");
        return Err(Fail::Usage(why));
    }
    Ok(Target::at(addr)?)
}

/// Prints a scenario's result row: as an aligned table, or as CSV with `--csv`.
fn show(args: &Args, columns: &[Column]) {
    let csv = args.flag("--csv");
    let table = Table::one_row(columns, csv);
    print!("{}", if csv { table.csv() } else { table.render() });
}

/// When loadgen started, for the progress lines.
fn progress_clock() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// A progress line on stderr, stamped with the time since loadgen started.
pub fn progress(message: &str) {
    eprintln!(
        "[{:6.1}s] {message}",
        progress_clock().elapsed().as_secs_f64()
    );
}
