//! What the console's `status` reports: requests (or transfers) finished and the bytes
//! they sent, counted in this process as their access lines are written, and what is
//! open now. Relaxed counters: a report, never a decision.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static FINISHED: AtomicU64 = AtomicU64::new(0);
static SENT: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// A request or transfer ended, having sent `bytes`.
pub(crate) fn finished(bytes: u64) {
    FINISHED.fetch_add(1, Ordering::Relaxed);
    SENT.fetch_add(bytes, Ordering::Relaxed);
}

/// A connection or transfer is open from now until the guard is dropped.
pub(crate) struct Opened(());

impl Opened {
    pub(crate) fn new() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
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
