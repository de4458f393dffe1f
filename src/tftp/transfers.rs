//! The count of running transfers: the cap on them, and what a stopping server waits for.
//!
//! Each transfer runs on a thread of its own (the TFTP engine's `spawn_transfer`), so the
//! count is also the number of transfer threads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Running transfers: counted by the handler, waited for when the server stops.
#[derive(Debug, Default)]
pub(crate) struct Transfers {
    count: AtomicUsize,
    /// Running transfers by client address.
    by_client: Mutex<HashMap<IpAddr, usize>>,
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

    /// Counts one more transfer for `client` unless it runs `most` already.
    pub(crate) fn enter_client(&self, client: IpAddr, most: usize) -> bool {
        let mut by_client = self
            .by_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = by_client.entry(client).or_insert(0);
        if *count >= most {
            return false;
        }
        *count += 1;
        true
    }

    /// Counts one transfer less for `client`.
    pub(crate) fn leave_client(&self, client: IpAddr) {
        let mut by_client = self
            .by_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = by_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                by_client.remove(&client);
            }
        }
    }
}
