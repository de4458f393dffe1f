//! The count of running transfers: the cap on them, and what a stopping server waits for.
//!
//! Each transfer runs on a thread of its own (async-tftp's `spawn_transfer`, patched in
//! `vendor/async-tftp`), so the count is also the number of transfer threads.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Running transfers: counted by the handler, waited for when the server stops.
#[derive(Debug, Default)]
pub(crate) struct Transfers {
    count: AtomicUsize,
}

impl Transfers {
    /// How many transfers run now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Counts one more transfer unless `cap` already run. Returns whether it was counted.
    pub(crate) fn enter(&self, cap: usize) -> bool {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        if before >= cap {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Counts one transfer less.
    pub(crate) fn leave(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}
