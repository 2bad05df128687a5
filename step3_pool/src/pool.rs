//! A thread pool in the Rust Book's words (`ThreadPool`, `Worker`, `Job`): the workers are
//! created at start and take jobs from one shared queue. Unlike the Book's, it refuses a job
//! when no worker is idle, rather than leave it waiting in the queue for who knows how long.
//!
//! Before it starts its workers, the pool asks the kernel for a futex hash table sized for
//! them (see `size_futex_hash`): thousands of threads asleep must not make every wake-up in
//! the process slower.

use std::io;
use std::os::raw::{c_int, c_ulong};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct ThreadPool {
    workers: Vec<Worker>,
    /// `None` only while dropping: closing the queue is what tells the workers to stop.
    sender: Option<Sender<Job>>,
    /// Workers neither running a job nor promised one. `try_execute` takes one before it
    /// queues a job; a worker gives it back when its job ends.
    idle: Arc<AtomicUsize>,
}

struct Worker {
    id: usize,
    thread: JoinHandle<()>,
}

/// Every worker is busy: the job was not queued.
#[derive(Debug)]
pub struct PoolFull;

impl ThreadPool {
    /// Starts `size` workers, each with a stack of `stack_size` bytes, after sizing the
    /// process's futex hash for them.
    pub fn new(size: usize, stack_size: usize) -> io::Result<ThreadPool> {
        if let Err(e) = size_futex_hash(size) {
            // Only a cost: the workers run as well on the kernel's default table.
            eprintln!("cannot size the futex hash for {size} workers: {e}");
        }
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut pool = ThreadPool {
            workers: Vec::with_capacity(size),
            sender: Some(sender),
            idle: Arc::new(AtomicUsize::new(0)),
        };
        for id in 0..size {
            // On error, dropping `pool` stops and joins the workers already started.
            let worker = Worker::new(
                id,
                Arc::clone(&receiver),
                Arc::clone(&pool.idle),
                stack_size,
            )?;
            pool.workers.push(worker);
        }
        pool.idle.store(size, Ordering::Release);
        Ok(pool)
    }

    /// Queues `job` if a worker is idle to run it at once; otherwise gives up at once.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolFull> {
        let take_one = |idle: usize| idle.checked_sub(1);
        if self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, take_one)
            .is_err()
        {
            return Err(PoolFull);
        }
        let Some(sender) = &self.sender else {
            return Err(PoolFull);
        };
        if sender.send(Box::new(job)).is_err() {
            // No worker is left to receive it (they all stopped): give the promise back.
            self.idle.fetch_add(1, Ordering::AcqRel);
            return Err(PoolFull);
        }
        Ok(())
    }
}

impl Drop for ThreadPool {
    /// Closes the queue, so each worker's `recv` fails once the queue is empty, then waits for
    /// every worker to finish its job.
    fn drop(&mut self) {
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            if worker.thread.join().is_err() {
                eprintln!("worker {} ended in a panic", worker.id);
            }
        }
    }
}

impl Worker {
    fn new(
        id: usize,
        receiver: Arc<Mutex<Receiver<Job>>>,
        idle: Arc<AtomicUsize>,
        stack_size: usize,
    ) -> io::Result<Worker> {
        let thread = thread::Builder::new()
            .name(format!("worker-{id}"))
            .stack_size(stack_size)
            .spawn(move || work(&receiver, &idle))?;
        Ok(Worker { id, thread })
    }
}

/// A worker's life: take a job, run it, say it is idle again; stop when the queue is closed.
fn work(receiver: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    loop {
        // The lock is released at the end of this statement, before the job runs. No code
        // panics while holding it, but a poisoned lock would still guard a sound receiver.
        let message = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(job) = message else {
            return;
        };
        // A panicking job ends here, not the worker: the pool keeps its size.
        let _ = panic::catch_unwind(AssertUnwindSafe(job));
        idle.fetch_add(1, Ordering::AcqRel);
    }
}

// The futex hash. A thread that sleeps on a lock, a condition variable or a channel (std uses
// futexes for all of them) sleeps in the kernel in `futex_wait`, queued in one bucket of a
// hash table, chosen by the address it waits on. `futex_wake` locks the bucket of its address
// and walks that bucket's queue, comparing addresses, until it finds a waiter on its own (all
// of the queue if none is there). So a wake-up costs as much as the sleepers that share its
// bucket: every thread asleep in the process, on whatever address, can make some other
// thread's wake-up slower.
//
// Since Linux 6.16 (the futex "private hash" change), a multithreaded process no longer uses
// the system's big shared table: it gets a private one of 4 x min(threads, CPUs) buckets (at
// least 16), grown as threads are created. It follows the CPUs, not the threads: on a 2-core
// machine it stays at 16 buckets however many threads sleep, so with thousands of sleeping
// workers every `futex_wake` walks a chain of hundreds or thousands of waiters. The same
// kernel lets a process choose the size: `prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, n)`,
// with n a power of two of at least 2 (anything else is refused with `EINVAL`; 0 asks for the
// shared table again). A size chosen this way is kept: the kernel no longer resizes the table
// as threads come and go.

/// prctl(2) options from `<linux/prctl.h>`: the futex hash (Linux 6.16 and later).
const PR_FUTEX_HASH: c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: c_ulong = 1;
#[cfg(test)]
const PR_FUTEX_HASH_GET_SLOTS: c_ulong = 2;

/// Buckets asked for per worker: the same ratio as the kernel's own default, but applied to
/// the threads rather than to the CPUs, so that a chain holds about one sleeper.
const FUTEX_SLOTS_PER_WORKER: usize = 4;

/// The kernel's own smallest table: a small pool keeps at least this.
const MIN_FUTEX_SLOTS: usize = 16;

/// What goes in the arguments of prctl(2) that an option does not use.
const UNUSED: c_ulong = 0;

/// `EINVAL`: a kernel before 6.16 does not know `PR_FUTEX_HASH`; one built without
/// `CONFIG_FUTEX_PRIVATE_HASH` refuses it the same way.
const EINVAL: i32 = 22;

unsafe extern "C" {
    /// prctl(2): `int prctl(int option, ...);` Variadic in C, but the kernel always reads
    /// four `unsigned long` arguments after `option`, used or not, so we pass all four: it
    /// refuses `PR_FUTEX_HASH_SET_SLOTS` unless the unused third one is 0.
    fn prctl(option: c_int, ...) -> c_int;
}

/// How many futex hash buckets a pool of `workers` asks for: a power of two, as the kernel
/// requires, at least 4 per worker.
fn futex_slots_for(workers: usize) -> usize {
    (FUTEX_SLOTS_PER_WORKER * workers)
        .next_power_of_two()
        .max(MIN_FUTEX_SLOTS)
}

/// Asks the kernel for a private futex hash of `futex_slots_for(workers)` buckets. Quietly
/// does nothing where the kernel does not know the option (`EINVAL`, before Linux 6.16).
fn size_futex_hash(workers: usize) -> io::Result<()> {
    let slots = futex_slots_for(workers) as c_ulong;
    // SAFETY: PR_FUTEX_HASH_SET_SLOTS takes integers only, no pointer: no memory of ours is
    // read or written. Each variadic argument is an `unsigned long`, as prctl(2) reads them.
    let ret = unsafe {
        prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_SET_SLOTS,
            slots,
            UNUSED,
            UNUSED,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(EINVAL) {
        return Ok(());
    }
    Err(error)
}

/// The buckets of this process's private futex hash, as the kernel reports them: 0 while it
/// uses the shared table, `EINVAL` before Linux 6.16.
#[cfg(test)]
fn futex_hash_slots() -> io::Result<usize> {
    // SAFETY: PR_FUTEX_HASH_GET_SLOTS takes integers only, no pointer: no memory of ours is
    // read or written. Each variadic argument is an `unsigned long`, as prctl(2) reads them.
    let ret = unsafe {
        prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_GET_SLOTS,
            UNUSED,
            UNUSED,
            UNUSED,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    const STACK: usize = 64 * 1024;
    const TIMEOUT: Duration = Duration::from_secs(5);

    /// The tests run in parallel in one process, which has one futex hash: each new pool
    /// resizes it. Taken while a pool is made, and by the test that reads the size back.
    static SIZING: Mutex<()> = Mutex::new(());

    fn new_pool(size: usize) -> ThreadPool {
        let _one_at_a_time = SIZING.lock().unwrap_or_else(PoisonError::into_inner);
        ThreadPool::new(size, STACK).expect("pool")
    }

    #[test]
    fn futex_slots_are_a_power_of_two_at_least_four_per_worker() {
        assert_eq!(futex_slots_for(1), 16);
        assert_eq!(futex_slots_for(4), 16);
        assert_eq!(futex_slots_for(5), 32);
        assert_eq!(futex_slots_for(512), 2048);
        assert_eq!(futex_slots_for(513), 4096);
        assert_eq!(futex_slots_for(16_000), 65_536);
    }

    /// The kernel took the size the pool asked for (where it knows the option at all).
    #[test]
    fn the_kernel_sizes_the_futex_hash_for_the_workers() {
        let _one_at_a_time = SIZING.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = ThreadPool::new(100, STACK).expect("pool");
        match futex_hash_slots() {
            Ok(slots) if slots > 0 => assert_eq!(slots, futex_slots_for(100)),
            // No private hash: before Linux 6.16 (`EINVAL`), or built without it (0).
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(EINVAL) => {}
            Err(e) => panic!("prctl(PR_FUTEX_HASH_GET_SLOTS) failed: {e}"),
        }
        drop(pool);
    }

    #[test]
    fn jobs_run() {
        let pool = new_pool(2);
        let (done, results) = mpsc::channel();
        for i in 0..2 {
            let done = done.clone();
            pool.try_execute(move || done.send(i * 10).expect("send"))
                .expect("idle worker");
        }
        let mut got: Vec<i32> = (0..2)
            .map(|_| results.recv_timeout(TIMEOUT).expect("result"))
            .collect();
        got.sort();
        assert_eq!(got, [0, 10]);
    }

    /// `size` jobs that each wait until all of them have started: only `size` workers running
    /// at the same time can finish them. Then the pool is full until one of them ends.
    #[test]
    fn size_jobs_run_at_once_and_one_more_is_refused() {
        let size = 4;
        let pool = new_pool(size);
        let started = Arc::new((Mutex::new(0), Condvar::new()));
        let release = Arc::new(AtomicBool::new(false));
        let (done, finished) = mpsc::channel();
        for _ in 0..size {
            let (started, release, done) =
                (Arc::clone(&started), Arc::clone(&release), done.clone());
            let job = move || {
                let all = wait_for_all(&started, size);
                while !release.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(1));
                }
                done.send(all).expect("send");
            };
            pool.try_execute(job).expect("idle worker");
        }
        assert!(
            pool.try_execute(|| {}).is_err(),
            "a job beyond the pool's size must be refused"
        );
        release.store(true, Ordering::Release);
        for _ in 0..size {
            assert!(
                finished.recv_timeout(TIMEOUT).expect("job ended"),
                "jobs did not overlap"
            );
        }
        wait_until(|| pool.try_execute(|| {}).is_ok());
    }

    #[test]
    fn drop_waits_for_running_jobs() {
        let pool = new_pool(3);
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let finished = Arc::clone(&finished);
            pool.try_execute(move || {
                thread::sleep(Duration::from_millis(50));
                finished.fetch_add(1, Ordering::AcqRel);
            })
            .expect("idle worker");
        }
        drop(pool);
        assert_eq!(finished.load(Ordering::Acquire), 3);
    }

    #[test]
    fn a_panicking_job_does_not_shrink_the_pool() {
        let pool = new_pool(1);
        pool.try_execute(|| panic!("this job panics on purpose"))
            .expect("idle worker");
        let (done, result) = mpsc::channel();
        wait_until(|| {
            let done = done.clone();
            pool.try_execute(move || done.send(()).expect("send"))
                .is_ok()
        });
        result
            .recv_timeout(TIMEOUT)
            .expect("the only worker survived the panic");
    }

    /// Counts this job as started, then waits (bounded) for `all` jobs; true if they all came.
    fn wait_for_all(started: &(Mutex<usize>, Condvar), all: usize) -> bool {
        let (count, changed) = started;
        let mut count = count.lock().expect("lock");
        *count += 1;
        changed.notify_all();
        let (count, _) = changed
            .wait_timeout_while(count, TIMEOUT, |n| *n < all)
            .expect("lock");
        *count == all
    }

    fn wait_until(mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "condition not met within {TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}
