//! A thread pool in the Rust Book's words (`ThreadPool`, `Worker`, `Job`): the workers are
//! created at start and take jobs from one shared queue. Unlike the Book's, it refuses a job
//! when no worker is idle, rather than leave it waiting in the queue for who knows how long.

use std::io;
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
    /// Starts `size` workers, each with a stack of `stack_size` bytes.
    pub fn new(size: usize, stack_size: usize) -> io::Result<ThreadPool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    const STACK: usize = 64 * 1024;
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn new_pool(size: usize) -> ThreadPool {
        ThreadPool::new(size, STACK).expect("pool")
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
