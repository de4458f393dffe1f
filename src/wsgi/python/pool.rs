//! The workers: started before the server announces itself, followed while they run,
//! replaced when one dies, swapped for new ones on `--reload`, stopped at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::os::fd::{AsFd, OwnedFd};

use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::Launch;
use super::ctl::{self, EMPTY, SEATS, TIMED_OUT};
use super::handover::Handover;
use super::worker::{Shared, Worker};

/// How long a worker may take to import its app (Django projects take a few seconds).
const START_WITHIN: Duration = Duration::from_secs(60);

/// The longest pause between attempts to start a worker that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The worker processes of one app.
pub(crate) struct Pool {
    launch: Launch,
    shared: Shared,
    /// Running workers by process id: their generation, and whether they were asked to stop.
    running: Mutex<HashMap<u32, (u64, bool)>>,
    /// Serving workers' control sockets by process id, to hand connections to.
    ctls: Mutex<HashMap<u32, OwnedFd>>,
    /// Which worker takes the next connection handed over.
    next_taker: AtomicUsize,
    /// Seats on the board taken by a worker.
    seats: Mutex<Vec<bool>>,
    /// Told whenever a worker ends.
    ended: Notify,
    /// Starts that failed in a row, for the back-off.
    failures: AtomicU32,
    started: AtomicUsize,
    closed: AtomicBool,
    /// Workers per generation.
    size: usize,
    /// The generation that serves; older ones finish their requests and stop.
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
        shared: Shared,
        workers: usize,
    ) -> Result<(Arc<Self>, Vec<Worker>), String> {
        let cannot_run = |e: std::io::Error| format!("cannot run {}: {e}", launch.python.display());
        // All started before any is waited for: they import the app side by side.
        let mut ready = Vec::with_capacity(workers);
        let count = workers.clamp(1, SEATS / 2);
        for index in 0..count {
            ready.push(Worker::spawn(&launch, &shared, index, index).map_err(cannot_run)?);
        }
        for worker in &mut ready {
            worker.ready_blocking(START_WITHIN)?;
        }
        let mut seats = vec![false; SEATS];
        seats[..count].fill(true);
        let pool = Arc::new(Self {
            launch,
            shared,
            running: Mutex::new(ready.iter().map(|w| (w.pid(), (0, false))).collect()),
            ctls: Mutex::new(HashMap::new()),
            next_taker: AtomicUsize::new(0),
            seats: Mutex::new(seats),
            ended: Notify::new(),
            failures: AtomicU32::new(0),
            started: AtomicUsize::new(count),
            closed: AtomicBool::new(false),
            size: count,
            generation: AtomicU64::new(0),
        });
        Ok((pool, ready))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (u64, bool)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ctls(&self) -> std::sync::MutexGuard<'_, HashMap<u32, OwnedFd>> {
        self.ctls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the first free seat on the board.
    fn take_seat(&self) -> Option<usize> {
        let mut seats = self.seats.lock().unwrap_or_else(PoisonError::into_inner);
        let seat = seats.iter().position(|taken| !taken)?;
        seats[seat] = true;
        Some(seat)
    }

    /// Frees a seat whose worker has ended.
    fn free_seat(&self, seat: usize) {
        self.shared.board.set(seat, EMPTY);
        if let Some(taken) = self
            .seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(seat)
        {
            *taken = false;
        }
    }

    /// Starts a worker on a free seat.
    fn spawn(&self, generation: u64) -> Result<Worker, String> {
        let seat = self
            .take_seat()
            .ok_or_else(|| format!("more than {SEATS} workers"))?;
        let index = self.started.fetch_add(1, Ordering::AcqRel);
        match Worker::spawn(&self.launch, &self.shared, index, seat) {
            Ok(mut worker) => {
                worker.generation = generation;
                Ok(worker)
            }
            Err(e) => {
                self.free_seat(seat);
                Err(format!("cannot run {}: {e}", self.launch.python.display()))
            }
        }
    }

    /// The process ids of the running workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.lock().keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// Follows a ready worker until it ends; one that dies is replaced.
    pub(crate) fn follow(self: &Arc<Self>, mut worker: Worker) {
        let pool = self.clone();
        let pid = worker.pid();
        if let Ok(ctl) = worker.ctl() {
            pool.ctls().insert(pid, ctl);
        }
        tokio::spawn(async move {
            let to: Arc<dyn Handover> = pool.clone();
            worker.follow(&to).await;
            pool.ctls().remove(&pid);
            // Out of the running set before it is waited for: once waited for, its
            // process id may be another process's, which a stop must never signal.
            let asked = pool.lock().remove(&pid).is_some_and(|(_, stop)| stop);
            let status = worker.exit_status();
            let generation = worker.generation;
            let seat = worker.seat;
            drop(worker);
            pool.free_seat(seat);
            pool.ended.notify_waiters();
            if asked || pool.closed.load(Ordering::Acquire) {
                info!(target: "labserv::wsgi", "worker {pid} stopped");
                return;
            }
            if status == format!("exit code {TIMED_OUT}") {
                warn!(target: "labserv::wsgi", "worker {pid} ended after a request outlasted --timeout; starting another");
            } else {
                warn!(target: "labserv::wsgi", "worker {pid} died ({status}); starting another");
            }
            if generation == pool.generation.load(Ordering::Acquire) {
                pool.replace(generation);
            }
        });
    }

    /// Starts a worker in place of one that died (backing off while starts keep failing).
    fn replace(self: &Arc<Self>, generation: u64) {
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
                // Spawned here, on the server's own thread (see `Worker::spawn`).
                let started = match pool.spawn(generation) {
                    Ok(mut worker) => match worker.ready(START_WITHIN).await {
                        Ok(()) => Ok(worker),
                        Err(why) => {
                            pool.free_seat(worker.seat);
                            Err(why)
                        }
                    },
                    Err(why) => Err(why),
                };
                match started {
                    Ok(worker) => {
                        pool.failures.store(0, Ordering::Release);
                        info!(target: "labserv::wsgi", "worker {} ready", worker.pid());
                        pool.lock().insert(worker.pid(), (generation, false));
                        pool.follow(worker);
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

    /// Starts a new generation of workers and, once every one has imported the app,
    /// lets the old ones finish their requests and stop. Until then the old workers
    /// serve, and both accept while the new ones take over, so no request fails.
    ///
    /// # Errors
    /// Why the new workers did not start (the old ones keep serving).
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<usize, String> {
        let next = self.generation.load(Ordering::Acquire) + 1;
        let mut fresh = Vec::with_capacity(self.size);
        let mut started = Ok(());
        for _ in 0..self.size {
            match self.spawn(next) {
                Ok(worker) => fresh.push(worker),
                Err(why) => {
                    started = Err(why);
                    break;
                }
            }
        }
        for worker in &mut fresh {
            if started.is_ok() {
                started = worker.ready(START_WITHIN).await;
            }
        }
        if let Err(why) = started {
            // The new workers go (killed as they drop); the old ones serve on.
            for worker in fresh {
                let seat = worker.seat;
                drop(worker);
                self.free_seat(seat);
            }
            return Err(why);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err("the server is stopping".into());
        }
        self.generation.store(next, Ordering::Release);
        let added = fresh.len();
        {
            let mut running = self.lock();
            for (pid, (generation, stop)) in running.iter_mut() {
                if *generation < next {
                    *stop = true;
                    signal(*pid, libc::SIGTERM);
                }
            }
            for worker in &fresh {
                running.insert(worker.pid(), (next, false));
            }
        }
        for worker in fresh {
            self.follow(worker);
        }
        Ok(added)
    }

    /// Asks every worker to finish its requests and stop, waits up to `drain` (and a
    /// little more, for them to exit), then kills what is left.
    pub(crate) async fn close(&self, drain: Duration) {
        self.closed.store(true, Ordering::Release);
        for (pid, (_, stop)) in self.lock().iter_mut() {
            *stop = true;
            signal(*pid, libc::SIGTERM);
        }
        let all_ended = async {
            loop {
                let ended = self.ended.notified();
                if self.lock().is_empty() {
                    return;
                }
                ended.await;
            }
        };
        if tokio::time::timeout(drain + Duration::from_secs(1), all_ended)
            .await
            .is_err()
        {
            for pid in self.lock().keys() {
                signal(*pid, libc::SIGKILL);
            }
        }
    }
}

impl Handover for Pool {
    fn hand_over(&self, conn: OwnedFd, from: u32) -> Result<(), OwnedFd> {
        let serving = self.generation.load(Ordering::Acquire);
        let mut takers: Vec<u32> = self
            .lock()
            .iter()
            .filter(|&(&pid, &(generation, stop))| pid != from && generation == serving && !stop)
            .map(|(&pid, _)| pid)
            .collect();
        takers.sort_unstable();
        if takers.is_empty() {
            return Err(conn);
        }
        // Taken in turn, so that a stopping worker's connections are shared out.
        let first = self.next_taker.fetch_add(1, Ordering::Relaxed);
        let ctls = self.ctls();
        for i in 0..takers.len() {
            let pid = takers[(first + i) % takers.len()];
            if let Some(ctl) = ctls.get(&pid)
                && ctl::adopt(ctl.as_fd(), conn.as_fd()).is_ok()
            {
                debug!(target: "labserv::wsgi", "a connection worker {from} let go of went to worker {pid}");
                return Ok(());
            }
        }
        Err(conn)
    }

    /// Stopping while others serve on (a reload); not when the whole server stops.
    fn stopping(&self, pid: u32) -> bool {
        !self.closed.load(Ordering::Acquire) && self.lock().get(&pid).is_some_and(|&(_, stop)| stop)
    }
}

/// Signals a worker's process group.
fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: signals the worker's own process group (it made itself leader).
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}
