//! What the console's `status` reports: requests (or transfers) finished and the bytes
//! they sent, counted in this process as their access lines are written, and what is
//! open now. Relaxed counters: a report, never a decision. Only a server whose console
//! reads commands counts at all: every other one (a daemon, one under a Procfile) pays a
//! read of a flag that never changes, not a write that cores would pass between them on
//! every request.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);

static FINISHED: AtomicU64 = AtomicU64::new(0);
static SENT: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Counts from now on (the console's command line has started).
pub(crate) fn start_counting() {
    COUNTING.store(true, Ordering::Relaxed);
}

/// A request or transfer ended, having sent `bytes`.
pub(crate) fn finished(bytes: u64) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    FINISHED.fetch_add(1, Ordering::Relaxed);
    SENT.fetch_add(bytes, Ordering::Relaxed);
}

/// A transfer is open from now until the guard is dropped (counted when counting began
/// before it opened).
pub(crate) struct Opened(bool);

impl Opened {
    pub(crate) fn new() -> Self {
        let counted = COUNTING.load(Ordering::Relaxed);
        if counted {
            OPEN.fetch_add(1, Ordering::Relaxed);
        }
        Self(counted)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if self.0 {
            OPEN.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Requests (or transfers) finished, bytes they sent, and connections (or transfers)
/// open now.
pub(crate) fn now() -> (u64, u64, usize) {
    (
        FINISHED.load(Ordering::Relaxed),
        SENT.load(Ordering::Relaxed),
        OPEN.load(Ordering::Relaxed) + crate::server::gate::open_now(),
    )
}
