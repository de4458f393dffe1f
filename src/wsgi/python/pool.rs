//! The workers: started before the server announces itself, handed out one request at a
//! time, and replaced when one dies or is killed.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::worker::{Launch, Worker};

/// How long a worker may take to import its app (Django projects take a few seconds).
const START_WITHIN: Duration = Duration::from_secs(60);

/// Requests that may wait for a worker at once; past this they get 503 straight away.
const MAX_WAITING: usize = 1024;

/// The longest pause between attempts to start a worker that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why no worker was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Too many requests are waiting already.
    QueueFull,
    /// None became free within the queue timeout.
    TimedOut,
}

/// The worker processes of one app.
pub(crate) struct Pool {
    launch: Launch,
    idle: Mutex<Vec<Worker>>,
    /// One permit per idle worker; waiting for one is waiting in the queue (first come,
    /// first served).
    free: Semaphore,
    waiting: AtomicUsize,
    queue_timeout: Duration,
    /// Starts that failed in a row, for the back-off.
    failures: AtomicU32,
    started: AtomicUsize,
    closed: AtomicBool,
    /// Workers per generation.
    size: usize,
    /// The generation whose workers serve; older ones end after their last request.
    generation: AtomicU64,
}

impl Pool {
    /// Starts `workers` workers and waits until each has imported the app. Call on the
    /// thread that runs the server (see [`Worker::spawn`]).
    ///
    /// # Errors
    /// The first worker's failure, in one line (the app did not import, or Python could
    /// not start).
    pub(crate) fn start(
        launch: Launch,
        workers: usize,
        queue_timeout: Duration,
    ) -> Result<Arc<Self>, String> {
        let mut ready = Vec::with_capacity(workers);
        for index in 0..workers.max(1) {
            let mut worker = Worker::spawn(&launch, index)
                .map_err(|e| format!("cannot run {}: {e}", launch.python.display()))?;
            worker.ready_blocking(START_WITHIN)?;
            ready.push(worker);
        }
        let count = ready.len();
        Ok(Arc::new(Self {
            launch,
            idle: Mutex::new(ready),
            free: Semaphore::new(count),
            waiting: AtomicUsize::new(0),
            queue_timeout,
            failures: AtomicU32::new(0),
            started: AtomicUsize::new(count),
            closed: AtomicBool::new(false),
            size: count,
            generation: AtomicU64::new(0),
        }))
    }

    /// The process ids of the idle workers.
    pub(crate) fn idle_pids(&self) -> Vec<u32> {
        self.lock().iter().map(Worker::pid).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for an idle worker, in turn.
    ///
    /// # Errors
    /// [`Busy`] when the queue is full or the wait outlasts the queue timeout.
    pub(crate) async fn acquire(&self) -> Result<Worker, Busy> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy::QueueFull);
        }
        let permit = tokio::time::timeout(self.queue_timeout, self.free.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(Ok(permit)) => {
                permit.forget();
                self.lock().pop().ok_or(Busy::TimedOut)
            }
            _ => Err(Busy::TimedOut),
        }
    }

    /// Takes a worker back after a request that ended cleanly (one running code older than
    /// the last reload is stopped instead).
    pub(crate) fn release(&self, worker: Worker) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.lock();
        if worker.generation != self.generation.load(Ordering::Acquire) {
            drop(idle);
            return;
        }
        idle.push(worker);
        drop(idle);
        self.free.add_permits(1);
    }

    /// Starts a new generation of workers and, once every one has imported the app,
    /// swaps them in. Until then the old workers serve, so no request waits or fails;
    /// busy old workers finish their requests and stop.
    ///
    /// # Errors
    /// Why the new workers did not start (the old ones keep serving).
    pub(crate) async fn reload(&self) -> Result<usize, String> {
        let next = self.generation.load(Ordering::Acquire) + 1;
        let mut fresh = Vec::with_capacity(self.size);
        // All started before any is waited for: they import the app side by side.
        for _ in 0..self.size {
            let index = self.started.fetch_add(1, Ordering::AcqRel);
            let mut worker = Worker::spawn(&self.launch, index)
                .map_err(|e| format!("cannot run {}: {e}", self.launch.python.display()))?;
            worker.generation = next;
            fresh.push(worker);
        }
        for worker in &mut fresh {
            worker.ready(START_WITHIN).await?;
        }
        if self.closed.load(Ordering::Acquire) {
            return Err("the server is stopping".into());
        }
        let added = fresh.len();
        let mut idle = self.lock();
        self.generation.store(next, Ordering::Release);
        let stale = std::mem::replace(&mut *idle, fresh);
        drop(idle);
        // A generation never has more workers than `size`, so this only adds.
        self.free.add_permits(added.saturating_sub(stale.len()));
        drop(stale);
        Ok(added)
    }

    /// Kills a worker that died, hung or broke the protocol, and starts another in its
    /// place (backing off while starts keep failing).
    pub(crate) fn replace(self: &Arc<Self>, mut lost: Worker, why: &str) {
        lost.kill();
        let status = lost.exit_status();
        let generation = lost.generation;
        if generation != self.generation.load(Ordering::Acquire) {
            // Its generation was reloaded away: the new one is complete without it.
            warn!(target: "labserv::wsgi", "worker {} {why} ({status})", lost.pid());
            return;
        }
        warn!(
            target: "labserv::wsgi",
            "worker {} {why} ({status}); starting another", lost.pid()
        );
        drop(lost);
        let pool = self.clone();
        tokio::spawn(async move {
            // Until it is done, the server stops, or a reload makes a new generation.
            while !pool.closed.load(Ordering::Acquire)
                && pool.generation.load(Ordering::Acquire) == generation
            {
                let failures = pool.failures.load(Ordering::Acquire);
                if failures > 0 {
                    let pause = Duration::from_millis(100)
                        .saturating_mul(1 << failures.min(7))
                        .min(MAX_BACKOFF);
                    tokio::time::sleep(pause).await;
                }
                let index = pool.started.fetch_add(1, Ordering::AcqRel);
                // Spawned here, on the server's own thread (see `Worker::spawn`).
                let started = match Worker::spawn(&pool.launch, index) {
                    Ok(mut worker) => {
                        worker.generation = generation;
                        worker.ready(START_WITHIN).await.map(|()| worker)
                    }
                    Err(e) => Err(format!("cannot run {}: {e}", pool.launch.python.display())),
                };
                match started {
                    Ok(worker) => {
                        pool.failures.store(0, Ordering::Release);
                        info!(target: "labserv::wsgi", "worker {} ready", worker.pid());
                        pool.release(worker);
                        return;
                    }
                    Err(why) => {
                        pool.failures.fetch_add(1, Ordering::AcqRel);
                        warn!(target: "labserv::wsgi", "a new worker failed to start: {why}");
                    }
                }
            }
        });
    }

    /// Stops every idle worker and starts no more; busy ones are killed when their
    /// requests end or are cut.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.free.close();
        self.lock().clear();
    }
}
