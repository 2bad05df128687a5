//! Extension `idle-cpu` (step 1): with its clients silent, the server uses less than a tenth
//! of a core, and a message still crosses the room quickly.

use super::start;
use crate::client::scenario;
use std::thread;
use std::time::{Duration, Instant};

const EXT: &str = "idle-cpu";
/// How long the grader lets the server settle, then watches it idle.
const SETTLE: Duration = Duration::from_millis(300);
const WATCH: Duration = Duration::from_secs(2);
/// Most CPU time the server may use while idle, as a share of one core.
const MAX_IDLE_SHARE: f64 = 0.10;
/// Messages timed one at a time, and the most their median delay may be.
const ROUNDS: usize = 20;
const MAX_MEDIAN_DELAY: Duration = Duration::from_millis(50);

/// Three connections (two registered) stay silent for 2 s: the server must use less than 10%
/// of a core over that time (read from `/proc/<pid>/stat`). Then 20 messages sent one at a
/// time must reach the other client with a median delay under 50 ms.
pub fn ext_idle_cpu_silent_server_sleeps_and_still_answers_fast(bin: &str) {
    let mut server = start(bin, EXT, &[]);
    let mut alice = server.registered("alice");
    let mut bob = server.registered("bob");
    let _lurker = server.connect();
    thread::sleep(SETTLE);

    let pid = server.pid();
    let before = cpu_time(pid);
    let start = Instant::now();
    thread::sleep(WATCH);
    let used = cpu_time(pid) - before;
    let share = used / start.elapsed().as_secs_f64();
    eprintln!(
        "idle: the server used {used:.3} s of CPU in {WATCH:?}, {:.1}% of a core",
        share * 100.0
    );
    assert!(
        share < MAX_IDLE_SHARE,
        "\n[{}] with every client silent, the server used {:.1}% of a core over {WATCH:?} \
         (at most {:.0}% allowed): it keeps working while there is nothing to do\n",
        scenario(),
        share * 100.0,
        MAX_IDLE_SHARE * 100.0
    );

    let mut delays: Vec<Duration> = (0..ROUNDS)
        .map(|i| {
            let sent = Instant::now();
            alice.send_line(&format!("MSG ping {i}"));
            bob.expect_line(&format!("MSG alice ping {i}"));
            sent.elapsed()
        })
        .collect();
    delays.sort();
    let median = delays[ROUNDS / 2];
    eprintln!(
        "busy: median delay {median:?}, slowest {:?}",
        delays[ROUNDS - 1]
    );
    assert!(
        median < MAX_MEDIAN_DELAY,
        "\n[{}] a message took {median:?} (median of {ROUNDS}) to reach the other client, \
         more than {MAX_MEDIAN_DELAY:?}: the server sleeps too long between looks\n",
        scenario()
    );
    server.assert_serving();
}

/// CPU time, user and system, that process `pid` has used so far, in seconds.
fn cpu_time(pid: u32) -> f64 {
    let stat = kit::proc::stat(pid).unwrap_or_else(|e| {
        panic!(
            "\n[{}] cannot read /proc/{pid}/stat (this extension needs Linux): {e}\n",
            scenario()
        )
    });
    stat.cpu_ticks() as f64 / kit::sys::clock_ticks_per_second() as f64
}
