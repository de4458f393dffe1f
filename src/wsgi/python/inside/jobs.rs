//! What passes between a worker's HTTP side and the app's thread: a request for the app
//! ([`Job`]), what the app answers ([`Head`], [`Answer`]), the request body as the app
//! pulls it ([`Piece`]), and where a request and the app stand ([`Turn`], [`Progress`]).
//! The extension module's app thread fills these in; [`super::host`] reads them.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// A piece of the request body, as the app pulls it.
pub enum Piece {
    /// The next bytes.
    Data(Bytes),
    /// The body is larger than `--max-body`.
    TooLarge,
    /// The client stopped sending it.
    Broken,
}

/// What the app answered, up to its head.
pub enum Head {
    /// The app's status and headers (latin-1 text, unchecked), and its body.
    Answer {
        /// `200 OK` and the like.
        status: String,
        /// Names and values.
        headers: Vec<(String, String)>,
        /// How the body comes.
        body: Answer,
    },
    /// The app failed before its head: a 500 (the traceback is in the log).
    Failed(String),
    /// The app read past `--max-body`: a 413.
    TooLarge,
}

/// How the body of an answer comes.
pub enum Answer {
    /// Whole (the app returned a list of bytes).
    Whole(Bytes),
    /// Through the job's channel, as the app produces it.
    Streamed,
    /// From a file (a `wsgi.file_wrapper` of a real file): labserv sends it.
    File {
        /// The open file.
        file: std::fs::File,
        /// Where the body starts in it.
        offset: u64,
    },
}

/// One request for the app.
pub struct Job {
    /// `name NUL value NUL ...` (latin-1 bytes as they came).
    pub environ: Vec<u8>,
    /// Whether it came over HTTPS (`wsgi.url_scheme`).
    pub secure: bool,
    /// The body, when the request has one.
    pub input: Option<mpsc::Receiver<Piece>>,
    /// Where the app's head goes.
    pub head: oneshot::Sender<Head>,
    /// Where the app's body goes, when it is streamed.
    pub body: mpsc::Sender<io::Result<Bytes>>,
    /// The request's connection for the slot (with `ANSWERABLE`), or 0.
    pub tag: u64,
    /// Where the request stands.
    pub turn: Arc<Turn>,
}

/// Where a queued request stands, for its handler and the app's thread.
#[derive(Default)]
pub struct Turn {
    state: AtomicU8,
    /// When the app took it up (see [`Progress::now`]).
    started: AtomicU64,
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

impl Turn {
    /// The app takes the request up, unless its handler gave up on it.
    pub fn start(&self, now: u64) -> bool {
        self.started.store(now, Ordering::Release);
        self.state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The handler gives up on a request the app has not taken up yet.
    pub fn cancel(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// When the app took the request up, if it has.
    pub fn started(&self) -> Option<u64> {
        (self.state.load(Ordering::Acquire) == STARTED)
            .then(|| self.started.load(Ordering::Acquire))
    }
}

/// When the app last showed life in the current request (milliseconds since the worker
/// started), or 0 when it has no request.
#[derive(Default)]
pub struct Progress {
    since: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Progress {
    /// Milliseconds since the worker started (never 0).
    pub fn now(&self) -> u64 {
        let epoch = self.epoch.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The instant of a [`Progress::now`] reading.
    pub fn instant(&self, at: u64) -> Instant {
        *self.epoch.get_or_init(Instant::now) + std::time::Duration::from_millis(at)
    }

    /// The app showed life just now.
    pub fn mark(&self) {
        self.since.store(self.now(), Ordering::Release);
    }

    /// The app is done with its request.
    pub fn idle(&self) {
        self.since.store(0, Ordering::Release);
    }

    /// Whether the app has a request.
    pub fn busy(&self) -> bool {
        self.since.load(Ordering::Acquire) != 0
    }

    /// How long the app has been silent in a request, if it has one.
    pub fn silent_for(&self) -> Option<std::time::Duration> {
        let since = self.since.load(Ordering::Acquire);
        (since != 0).then(|| std::time::Duration::from_millis(self.now().saturating_sub(since)))
    }
}

/// The HTTP side's hold on the app's thread.
pub struct AppLink {
    /// Requests queue here; the app takes them up one at a time.
    pub jobs: std::sync::mpsc::Sender<Job>,
    /// Where the app stands.
    pub progress: Arc<Progress>,
    /// Requests queued and not taken up yet.
    pub waiting: Arc<AtomicUsize>,
    /// Told each time the app is done with a request.
    pub done: Arc<tokio::sync::Notify>,
}
