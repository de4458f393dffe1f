//! The connection caps (`--max-conns`, `--max-conns-per-client`): counts of the
//! connections open in this process, in all and per client address, each place given
//! back when its connection ends.

use std::collections::HashMap;
use std::sync::Mutex;

/// Default for [`super::Access::max_conns_per_client`]: far more than a browser (6), a
/// download manager (16) or a test rig opens, far fewer than the descriptors a server has.
pub const DEFAULT_MAX_CONNS_PER_CLIENT: usize = 1024;

/// Default for [`super::Access::max_conns`]: room for eight clients at their own cap, and far
/// below the descriptors a server gets (labserv raises its limit to the system's).
pub const DEFAULT_MAX_CONNS: usize = 8192;

/// The connections open now, in this process.
static OPEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One connection's place in the count of all, given back when dropped.
#[derive(Debug)]
pub(crate) struct Open(());

/// The connections open now, in this process (counted where a cap applies, as it does
/// for every command's server).
pub(crate) fn open_now() -> usize {
    OPEN.load(std::sync::atomic::Ordering::Relaxed)
}

impl Open {
    /// Counts a new connection; `None` when `cap` are open already.
    pub(crate) fn take(cap: usize) -> Option<Self> {
        use std::sync::atomic::Ordering;
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < cap).then_some(open + 1)
        })
        .ok()
        .map(|_| Self(()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The connections each client address holds now, in this process.
static HELD: std::sync::LazyLock<Mutex<HashMap<std::net::IpAddr, usize>>> =
    std::sync::LazyLock::new(Mutex::default);

/// One connection's place in its client's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held(std::net::IpAddr);

impl Held {
    /// Counts a new connection from `client`; `None` when it already holds `cap`.
    pub(crate) fn take(client: std::net::IpAddr, cap: usize) -> Option<Self> {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Self(client))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.0);
            }
        }
    }
}
