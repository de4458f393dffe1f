//! A connection's state as its watchdog sees it: when bytes last moved, when a request
//! head began, how many requests run; and the watchdog's deadline check.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::super::Limits;
use super::super::socket::Tcp;

/// Milliseconds since the first call, never 0 (0 means "not set" below).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
}

/// What the deadline check needs to know about a connection, updated by its I/O and requests.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// When bytes last moved in either direction.
    last_io: AtomicU64,
    /// When the first byte of a request head arrived while no request was running; 0 if none.
    head_started: AtomicU64,
    /// Requests whose responses have not finished.
    in_flight: AtomicUsize,
    /// The last HTTP/1 request's body has not been read to its end: what arrives is
    /// still body, even once its answer is out (see `super::inbound`).
    pub(super) body_open: AtomicBool,
    /// The client speaks HTTP/2: its idle traffic (pings, window updates) is no request
    /// head, and h2 frames its own requests, so only the idle limit applies.
    pub(super) h2: AtomicBool,
    /// The socket, for asking whether the client has closed its side.
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    /// Set once shutdown's drain deadline has passed: what is cut now, shutdown cut.
    pub(crate) closing: Arc<AtomicBool>,
    /// A response was cut on purpose (`--drop-after`): the connection closes at its next
    /// flush, when everything before the cut has gone out.
    pub(crate) cut: AtomicBool,
    /// Told when a request starts to arrive and when an answer starts to go out.
    arrivals: Option<Box<dyn Arrivals>>,
}

/// What a handler hears of a connection's HTTP/1 requests as bytes move, before hyper
/// has made a request of them (see [`super::conn::Handler::arrivals`]).
pub(crate) trait Arrivals: Send + Sync + std::fmt::Debug {
    /// The first bytes of a request head have been read.
    fn started(&self);
    /// Bytes of an answer are about to be written.
    fn answering(&self);
}

impl ConnState {
    pub(crate) fn new(stream: &Tcp, closing: Arc<AtomicBool>) -> Self {
        #[cfg(not(unix))]
        let _ = stream;
        Self {
            last_io: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            body_open: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            #[cfg(unix)]
            fd: stream
                .fd()
                .map_or(-1, |fd| std::os::fd::AsRawFd::as_raw_fd(&fd)),
            closing,
            cut: AtomicBool::new(false),
            arrivals: None,
        }
    }

    /// Tells `arrivals` of the requests and answers of the connection.
    pub(crate) fn with_arrivals(mut self, arrivals: Option<Box<dyn Arrivals>>) -> Self {
        self.arrivals = arrivals;
        self
    }

    /// Closes the connection once what has been written so far is sent.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::Release);
    }

    /// Whether the next bytes read begin a new request head.
    pub(super) fn between_requests(&self) -> bool {
        self.reading_heads() && self.head_started.load(Ordering::Relaxed) == 0
    }

    /// Whether what is read now is an HTTP/1 request head: no request is running and the
    /// last one's body was read to its end. After an early answer that left the body
    /// unread, the next head is not looked at; the request after it is.
    pub(super) fn reading_heads(&self) -> bool {
        !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && !self.body_open.load(Ordering::Relaxed)
    }

    /// The running request's body is yet to be read (`open`), or has ended.
    pub(crate) fn body_open(&self, open: bool) {
        self.body_open.store(open, Ordering::Relaxed);
    }

    /// Whether the client has closed its side while a request runs. hyper notices that
    /// itself only for a handler that may think (`Handler::MAY_THINK`), and then only when
    /// the event loop reports the socket readable; this is the check for the rest (and the
    /// backstop). Like nginx, a client's FIN counts as leaving.
    #[cfg(unix)]
    fn peer_closed(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: a one-byte peek into a local on the connection's own socket, which lives
        // as long as the deadline check that calls this; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                self.fd,
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n == 0
    }

    #[cfg(not(unix))]
    fn peer_closed(&self) -> bool {
        false
    }

    pub(super) fn on_read(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.between_requests() {
            self.head_started.store(now, Ordering::Relaxed);
            if let Some(arrivals) = &self.arrivals {
                arrivals.started();
            }
        }
    }

    /// Called before bytes are written.
    pub(super) fn on_answer(&self) {
        if let Some(arrivals) = &self.arrivals {
            arrivals.answering();
        }
    }

    pub(super) fn on_write(&self) {
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
    }

    pub(crate) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }
}

/// Completes when the connection breaks a limit: a request head not finished within
/// `header_timeout` of its first byte (slowloris), or no bytes moving for `idle_timeout`
/// (an idle keep-alive connection, or a client that stopped reading).
pub(crate) async fn deadline(state: &ConnState, limits: Limits) -> String {
    let header_ms = u64::try_from(limits.header_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    loop {
        let last_io = state.last_io.load(Ordering::Relaxed);
        let head = state.head_started.load(Ordering::Relaxed);
        let busy = state.in_flight.load(Ordering::Relaxed) > 0;
        let waiting_for_head = !busy && head != 0;
        let deadline = if waiting_for_head {
            head + header_ms
        } else {
            last_io + idle_ms
        };
        let now = now_ms();
        if now >= deadline {
            // Worded only when it is said: this runs at least once per connection.
            return if waiting_for_head {
                format!(
                    "request headers not complete after {:?}",
                    limits.header_timeout
                )
            } else {
                format!("no traffic for {:?}", limits.idle_timeout)
            };
        }
        // Only while nothing moves: a client that has closed its sending side and is still
        // reading a download (`nc -N` does so) is still being served.
        if busy && now.saturating_sub(last_io) >= PEER_CHECK_MS && state.peer_closed() {
            return "the client closed the connection".to_string();
        }
        // Nothing wakes this task when a request head starts arriving, so it looks again
        // at least once per header timeout: a head that starts is then noticed before its
        // own deadline, which is met exactly. While a request runs, it looks for a client
        // that has gone every quarter second.
        let mut nap = (deadline - now).min(header_ms.max(1));
        if busy {
            nap = nap.min(PEER_CHECK_MS);
        }
        tokio::time::sleep(Duration::from_millis(nap)).await;
    }
}

/// How often a running request's client is checked for having closed, in milliseconds.
const PEER_CHECK_MS: u64 = 250;
