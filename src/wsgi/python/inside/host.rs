//! The worker's HTTP side: labserv's connection handling with a handler that queues
//! each request for the app's thread (see `respond.rs`), and the worker's part in
//! sharing connections with the others and in stopping.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::arriving::Arriving;
use super::jobs::{AppLink, Job, Progress};
use super::{Seat, WorkerConfig};
use crate::server::Body;
use crate::server::Inbound as Incoming;
use crate::server::conn::Handler;
use crate::server::socket::Tcp;
use crate::shutdown::Shutdown;
use crate::wsgi::python::ctl::{self, EMPTY, IDLE, Slot, TIMED_OUT};

/// How long a stopping worker goes on reading requests on the connections it has, after
/// it took its last one: long enough for a request already sent on it to arrive.
const SETTLE: Duration = Duration::from_millis(250);

/// How often a busy worker looks at the board again while it leaves new connections to
/// others.
const LOOK_AGAIN: Duration = Duration::from_millis(5);

/// How long every worker must have been busy before a busy one takes a new connection
/// (to queue it, and answer 503 past `--queue-timeout`). Workers that are busy only for
/// moments leave each other's connections alone.
const ALL_BUSY_FOR: Duration = Duration::from_millis(50);

pub(super) struct PyHost {
    /// Requests queue here for the app, which takes them up one at a time.
    pub(super) jobs: std::sync::mpsc::Sender<Job>,
    pub(super) waiting: Arc<AtomicUsize>,
    pub(super) root_path: String,
    pub(super) max_body: u64,
    pub(super) validate: bool,
    pub(super) timeout: Duration,
    pub(super) queue_timeout: Duration,
    pub(super) local: SocketAddr,
    pub(super) ctl: OwnedFd,
    pub(super) tags: AtomicU64,
    /// Connections open now.
    pub(super) conns: AtomicU64,
    pub(super) shutdown: Shutdown,
    pub(super) exit: AtomicI32,
    /// Told to stop: it takes no more connections.
    pub(super) stopping: AtomicBool,
    pub(super) progress: Arc<Progress>,
    pub(super) done: Arc<Notify>,
    /// Told each time a request is queued for the app.
    pub(super) queued: Notify,
    /// This worker's seat, when other workers share the listener: a busy worker leaves
    /// new connections to an idle one.
    pub(super) others: Option<Seat>,
    /// Where requests waiting for the app are noted, for the supervisor to answer if
    /// this worker dies.
    pub(super) slot: Arc<Slot>,
    /// Connections the supervisor hands over (see [`PyHost::take_handovers`]).
    pub(super) handed: tokio::sync::Mutex<mpsc::UnboundedReceiver<(Tcp, SocketAddr)>>,
    pub(super) hand: mpsc::UnboundedSender<(Tcp, SocketAddr)>,
}

impl PyHost {
    pub(super) fn new(
        app: AppLink,
        config: &WorkerConfig,
        local: SocketAddr,
        ctl: OwnedFd,
        others: Option<Seat>,
        slot: Arc<Slot>,
        shutdown: Shutdown,
    ) -> Self {
        let (hand, handed) = mpsc::unbounded_channel();
        let AppLink {
            jobs,
            progress,
            waiting,
            done,
        } = app;
        Self {
            jobs,
            waiting,
            root_path: config.root_path.clone(),
            max_body: config.max_body,
            validate: config.validate,
            timeout: config.timeout,
            queue_timeout: config.queue_timeout,
            local,
            ctl,
            tags: AtomicU64::new(1),
            conns: AtomicU64::new(0),
            shutdown,
            exit: AtomicI32::new(0),
            stopping: AtomicBool::new(false),
            progress,
            done,
            queued: Notify::new(),
            others,
            slot,
            handed: tokio::sync::Mutex::new(handed),
            hand,
        }
    }

    /// Takes the connections the supervisor hands over (another worker let go of them
    /// with a request on the way), until the supervisor is gone.
    pub(super) fn take_handovers(self: &Arc<Self>) {
        let Ok(dup) = self.ctl.try_clone() else {
            return;
        };
        // SAFETY: the AsyncFd owns the duplicate it watches, so it stays open while
        // registered; reads never block (`ctl::recv` does not wait).
        let Ok(ctl) = (unsafe { tokio::io::unix::AsyncFd::register(dup) }) else {
            return;
        };
        let hand = self.hand.clone();
        tokio::spawn(async move {
            let mut message = ctl::Message::<1>::new();
            loop {
                let Ok(mut ready) = ctl.readable().await else {
                    return;
                };
                loop {
                    match message.read(ctl.get_ref().as_fd()) {
                        Ok(Some(([ctl::ADOPT], Some(conn)))) => {
                            match Tcp::adopt(std::net::TcpStream::from(conn)) {
                                Ok(adopted) => {
                                    let _ = hand.send(adopted);
                                }
                                Err(e) => {
                                    debug!(target: "labserv::wsgi", "a handed-over connection is gone: {e}");
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            ready.clear_ready();
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        });
    }

    /// Tells the supervisor and the other workers that this one serves.
    pub(super) fn ready(&self) {
        if let Some(seat) = &self.others {
            seat.set(IDLE);
        }
        let _ = ctl::send(self.ctl.as_fd(), ctl::READY, b"", None);
    }

    /// Whether the app has a request, or requests wait for it.
    pub(super) fn busy(&self) -> bool {
        self.progress.busy() || self.waiting.load(Ordering::Acquire) > 0
    }

    /// How the worker ends: 0, or [`TIMED_OUT`].
    pub(super) fn exit_code(&self) -> i32 {
        self.exit.load(Ordering::Acquire)
    }

    /// Ends the worker: the app's thread is stuck in a request, so the supervisor starts
    /// another in its place; the connections here drain first.
    pub(super) fn give_up(&self) {
        self.exit.store(TIMED_OUT, Ordering::Release);
        self.stop();
    }

    /// Stops the worker: it takes no more connections at once, and ends those it has
    /// (each after its request in flight) a moment later, once a request that came on a
    /// connection it had just taken has been read: such a request must not be lost.
    pub(super) fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(seat) = &self.others {
            seat.set(EMPTY);
        }
        self.queued.notify_waiters();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            shutdown.trigger();
        });
    }

    /// Watches a request whose body is streaming: if the app stays silent past
    /// `--timeout`, the worker ends (the head is out already; the response is cut).
    pub(super) async fn enforce_timeout(self: Arc<Self>) {
        let every = (self.timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Some(silent) = self.progress.silent_for()
                && silent > self.timeout
                && self.exit_code() == 0
            {
                warn!(target: "labserv::wsgi", "the app was silent for {silent:?} in a request; this worker ends");
                self.give_up();
            }
        }
    }
}

impl Handler for PyHost {
    fn accepted(&self, stream: &crate::server::socket::Tcp) -> Option<u64> {
        let tag = self.tags.fetch_add(1, Ordering::Relaxed);
        let conns = self.conns.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(seat) = &self.others {
            seat.set_conns(conns);
        }
        if let Err(e) = ctl::send(
            self.ctl.as_fd(),
            ctl::OPENED,
            &tag.to_be_bytes(),
            stream.fd(),
        ) {
            debug!(target: "labserv::wsgi", "the supervisor was not told of a connection: {e}");
        }
        Some(tag)
    }

    fn arrivals(&self, tag: u64) -> Option<Box<dyn crate::server::conn::Arrivals>> {
        Some(Box::new(Arriving::new(self.slot.clone(), tag)))
    }

    fn closed(&self, tag: u64) {
        let conns = self.conns.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if let Some(seat) = &self.others {
            seat.set_conns(conns);
        }
        let _ = ctl::send(self.ctl.as_fd(), ctl::CLOSED, &tag.to_be_bytes(), None);
    }

    /// A worker whose app is busy leaves the next connection to an idle one (as a
    /// gunicorn sync worker does by not accepting while it serves); when every worker
    /// is busy, it takes it, to queue it (and answer 503 past `--queue-timeout`).
    async fn ready_for_more(&self) {
        if self.stopping.load(Ordering::Acquire) {
            return std::future::pending().await;
        }
        let Some(seat) = &self.others else {
            return;
        };
        let mut all_busy_since = None;
        let mut shared_out = false;
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if !self.busy() {
                // Idle: leave the connection for a moment to an idle worker with fewer.
                if shared_out || !seat.idle_with_fewer(self.conns.load(Ordering::Acquire)) {
                    return;
                }
                shared_out = true;
                tokio::time::sleep(LOOK_AGAIN).await;
                continue;
            }
            if seat.another_idle() {
                all_busy_since = None;
            } else if all_busy_since.get_or_insert_with(Instant::now).elapsed() >= ALL_BUSY_FOR {
                return;
            }
            tokio::select! {
                () = done => {}
                () = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    }

    async fn no_more(&self) {
        loop {
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let Some(seat) = &self.others else {
                queued.await;
                continue;
            };
            if !self.busy() {
                queued.await;
                continue;
            }
            if seat.another_idle() {
                return;
            }
            tokio::select! {
                () = queued => {}
                () = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    }

    async fn adopted(&self) -> (Tcp, SocketAddr) {
        match self.handed.lock().await.recv().await {
            Some(adopted) => adopted,
            None => std::future::pending().await,
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        self.answer(req, peer).await
    }
}
