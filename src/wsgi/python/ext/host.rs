//! The worker's HTTP side: labserv's connection handling with a handler that queues
//! each request for the app's thread and turns what the app answers into the response.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::server::Inbound as Incoming;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Seat;
use super::pep3333::{Answer, AppLink, Head, Job, Piece, Progress, Turn};
use crate::server::Body;
use crate::server::body::{FileStream, Segment};
use crate::server::conn::{Handler, Secure, Tag};
use crate::server::socket::Tcp;
use crate::server::text_response as plain;
use crate::shutdown::Shutdown;
use crate::wsgi::host::{bodiless, collect, content_length, refuse_too_large, status_code};
use crate::wsgi::python::PythonConfig;
use crate::wsgi::python::ctl::{self, ANSWERABLE, EMPTY, IDLE, Slot, TIMED_OUT};
use crate::wsgi::variables::{BadPath, cgi_variables};

/// Requests that may wait for the app at once; past this they get 503 straight away.
const MAX_WAITING: usize = 1024;

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

/// Bodies declaring at most this many bytes are held back and checked against their
/// Content-Length before anything is sent, so a mismatch can still become a 500.
const CHECKED_BODY: u64 = 16 * 1024 * 1024;

pub(super) struct PyHost {
    /// Requests queue here for the app, which takes them up one at a time.
    jobs: std::sync::mpsc::Sender<Job>,
    waiting: Arc<AtomicUsize>,
    root_path: String,
    max_body: u64,
    validate: bool,
    timeout: Duration,
    queue_timeout: Duration,
    local: SocketAddr,
    ctl: OwnedFd,
    tags: AtomicU64,
    /// Connections open now.
    conns: AtomicU64,
    shutdown: Shutdown,
    exit: AtomicI32,
    /// Told to stop: it takes no more connections.
    stopping: AtomicBool,
    progress: Arc<Progress>,
    done: Arc<Notify>,
    /// Told each time a request is queued for the app.
    queued: Notify,
    /// This worker's seat, when other workers share the listener: a busy worker leaves
    /// new connections to an idle one.
    others: Option<Seat>,
    /// Where requests waiting for the app are noted, for the supervisor to answer if
    /// this worker dies.
    slot: Arc<Slot>,
    /// Connections the supervisor hands over (see [`PyHost::take_handovers`]).
    handed: tokio::sync::Mutex<mpsc::UnboundedReceiver<(Tcp, SocketAddr)>>,
    hand: mpsc::UnboundedSender<(Tcp, SocketAddr)>,
}

/// A request noted in the slot (at this place) as waiting for the app, until its head
/// is answered (or its client has gone). It stays noted while the app runs it: a worker
/// that dies then costs it one 502 all the same.
struct Waiting<'a>(&'a Slot, usize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.unwait(self.1);
    }
}

/// A plain HTTP/1 connection's request, noted in the slot from its first byte until its
/// answer starts to go out: one the worker has read but not yet queued for the app is
/// answered 502 too if the worker dies (the supervisor can see unread bytes, not read ones).
struct Arriving {
    slot: Arc<Slot>,
    tag: u64,
    /// Where it is noted; 0 when it is not.
    place: AtomicUsize,
}

impl Arriving {
    fn let_go(&self) {
        let place = self.place.swap(0, Ordering::AcqRel);
        if place != 0 {
            self.slot.unwait(place);
        }
    }
}

impl crate::server::conn::Arrivals for Arriving {
    fn started(&self) {
        if self.place.load(Ordering::Acquire) == 0
            && let Some(place) = self.slot.wait(self.tag | ANSWERABLE)
        {
            self.place.store(place, Ordering::Release);
        }
    }

    fn answering(&self) {
        if self.place.load(Ordering::Acquire) != 0 {
            self.let_go();
        }
    }
}

impl std::fmt::Debug for Arriving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection {} noted at {:?}", self.tag, self.place)
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.let_go();
    }
}

impl PyHost {
    pub(super) fn new(
        app: AppLink,
        config: &PythonConfig,
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
    fn busy(&self) -> bool {
        self.progress.busy() || self.waiting.load(Ordering::Acquire) > 0
    }

    /// How the worker ends: 0, or [`TIMED_OUT`].
    pub(super) fn exit_code(&self) -> i32 {
        self.exit.load(Ordering::Acquire)
    }

    /// Ends the worker: the app's thread is stuck in a request, so the supervisor starts
    /// another in its place; the connections here drain first.
    fn give_up(&self) {
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

/// Feeds the request body to the app as it arrives, never past `max`.
fn pump(mut body: Incoming, max: u64) -> mpsc::Receiver<Piece> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let piece = match frame {
                Err(_) => Piece::Broken,
                Ok(frame) => match frame.into_data() {
                    Ok(data) => {
                        total += data.len() as u64;
                        if total > max {
                            Piece::TooLarge
                        } else {
                            Piece::Data(data)
                        }
                    }
                    Err(_) => continue,
                },
            };
            let last = !matches!(piece, Piece::Data(_));
            if tx.send(piece).await.is_err() || last {
                return;
            }
        }
    });
    rx
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
        Some(Box::new(Arriving {
            slot: self.slot.clone(),
            tag,
            place: AtomicUsize::new(0),
        }))
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
        let secure = req.extensions().get::<Secure>().is_some();
        let tag = req.extensions().get::<Tag>().map(|t| t.0);
        let answerable = !secure && req.version() <= http::Version::HTTP_11;
        let (parts, body) = req.into_parts();
        if let Some(refused) = refuse_too_large(&parts.headers, self.max_body) {
            return refused;
        }
        let mut environ = Vec::with_capacity(1024);
        let made = cgi_variables(&parts, peer, self.local, &self.root_path, |name, value| {
            environ.extend_from_slice(name);
            environ.push(0);
            environ.extend_from_slice(value);
            environ.push(0);
        });
        match made {
            Ok(()) => {}
            Err(BadPath::OutsideRoot) => {
                return plain(StatusCode::NOT_FOUND, "not under the app's root path");
            }
            Err(BadPath::Nul) => return plain(StatusCode::BAD_REQUEST, "bad request path"),
        }
        let what = || format!("{peer} {} {}", parts.method, parts.uri);
        let was_idle = !self.busy();
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            warn!(target: "labserv::wsgi", "{}: the app is busy (queue full)", what());
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "every worker is busy; try again",
            );
        }
        let input = (!http_body::Body::is_end_stream(&body)).then(|| pump(body, self.max_body));
        let (head_tx, mut head_rx) = oneshot::channel();
        let (body_tx, body_rx) = mpsc::channel(4);
        let turn = Arc::new(Turn::default());
        let tag = tag.map_or(0, |tag| tag | if answerable { ANSWERABLE } else { 0 });
        let job = Job {
            environ,
            secure,
            input,
            head: head_tx,
            body: body_tx,
            tag,
            turn: turn.clone(),
        };
        // Noted before the app can see it, until its head is answered. The connection's
        // own note (`Arriving`) mostly covers it already, but that one ends at the first
        // byte written, which may be a `100 Continue`, and a pipelined request arrives
        // with no read of its own to note it.
        let _waiting = (tag & ANSWERABLE != 0)
            .then(|| self.slot.wait(tag))
            .flatten()
            .map(|place| Waiting(&self.slot, place));
        let queued = Instant::now();
        if self.jobs.send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        }
        if was_idle && self.others.is_some() {
            // Busy now: the next connection may be left to another worker.
            self.queued.notify_waiters();
        }
        let head = loop {
            // Until the app takes the request up, the queue timeout counts; from then on,
            // the request timeout.
            let deadline = match turn.started() {
                None => queued + self.queue_timeout.min(self.timeout),
                Some(at) => Instant::from_std(self.progress.instant(at)) + self.timeout,
            };
            match tokio::time::timeout_at(deadline, &mut head_rx).await {
                Ok(head) => break head,
                Err(_) => match turn.started() {
                    None if queued.elapsed() >= self.queue_timeout && turn.cancel() => {
                        warn!(target: "labserv::wsgi", "{}: the app is busy (waited too long)", what());
                        return plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "every worker is busy; try again",
                        );
                    }
                    Some(at) if self.progress.instant(at).elapsed() >= self.timeout => {
                        warn!(
                            target: "labserv::wsgi",
                            "{}: the app took longer than {:?}; this worker ends", what(), self.timeout
                        );
                        self.give_up();
                        return plain(StatusCode::GATEWAY_TIMEOUT, "the app took too long");
                    }
                    _ => {}
                },
            }
        };
        let Ok(head) = head else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        let what = what();
        let (status, headers, answer) = match head {
            Head::Failed(line) => {
                warn!(target: "labserv::wsgi", "{what}: the app failed: {line}");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
            Head::TooLarge => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Head::Answer {
                status,
                headers,
                body,
            } => (status, headers, body),
        };
        let failed = || plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        let Some((code, headers)) = self.head(&what, &status, &headers) else {
            return failed();
        };
        // HEAD, 1xx, 204 and 304 carry no body, whatever Content-Length says.
        let checked = self.validate && !bodiless(&parts.method, code);
        let limit = content_length(&headers).filter(|&n| checked && n <= CHECKED_BODY);
        let body = match (answer, limit) {
            (Answer::Whole(body), _) => {
                if checked && !self.length_fits(&what, &headers, body.len() as u64, false) {
                    return failed();
                }
                Body::full(body)
            }
            // A body short enough is held back until it is known to match its length.
            (Answer::Streamed, Some(limit)) => match collect(body_rx, limit).await {
                Ok(bytes) if self.length_fits(&what, &headers, bytes.len() as u64, true) => {
                    Body::full(bytes)
                }
                Ok(_) => return failed(),
                Err(e) => {
                    warn!(target: "labserv::wsgi", "{what}: the app failed: {e}");
                    return failed();
                }
            },
            (Answer::Streamed, None) => Body::Channel(body_rx),
            (Answer::File { file, offset }, _) => {
                let size = file.metadata().map_or(0, |m| m.len());
                let len = size.saturating_sub(offset);
                Body::File(FileStream::new(
                    Some(file),
                    vec![Segment::File { offset, len }],
                ))
            }
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = code;
        *resp.headers_mut() = headers;
        if parts.method == Method::HEAD {
            // hyper sends no body for HEAD; the app's is dropped (it sees the client gone).
            *resp.body_mut() = Body::Empty;
        }
        resp
    }
}

impl PyHost {
    /// Checks the app's status and headers (latin-1 text) and makes them HTTP's.
    fn head(
        &self,
        what: &str,
        status: &str,
        pairs: &[(String, String)],
    ) -> Option<(StatusCode, http::HeaderMap)> {
        let app_error = |why: String| warn!(target: "labserv::wsgi", "{what}: app error: {why}");
        if self.validate
            && let Err(violation) = crate::wsgi::validate::head(status, pairs)
        {
            app_error(violation);
            return None;
        }
        let Some(code) = status_code(status) else {
            app_error(format!("bad status line {status:?}"));
            return None;
        };
        let mut headers = http::HeaderMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            let latin1: Option<Vec<u8>> = value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            match (
                HeaderName::from_bytes(name.as_bytes()),
                latin1.as_deref().map(HeaderValue::from_bytes),
            ) {
                (Ok(n), Some(Ok(v))) => {
                    headers.append(n, v);
                }
                _ => {
                    app_error(format!("bad header {name:?}: {value:?}"));
                    return None;
                }
            }
        }
        Some((code, headers))
    }

    /// Whether a body of `len` bytes agrees with the Content-Length the app set (`more`:
    /// the body was cut one byte past it).
    fn length_fits(&self, what: &str, headers: &http::HeaderMap, len: u64, more: bool) -> bool {
        match content_length(headers) {
            Some(declared) if self.validate && declared != len => {
                warn!(
                    target: "labserv::wsgi",
                    "{what}: app error: body of {len}{} bytes, Content-Length says {declared}",
                    if more && len > declared { " or more" } else { "" },
                );
                false
            }
            _ => true,
        }
    }
}
