//! The count of running transfers, and the second thread that joins the transfer loop
//! while two or more of them run.
//!
//! One transfer is fastest on one thread: its ACKs are polled for on the thread that
//! sends its blocks, with no hand-over between threads. A boot storm (a rack of boards
//! fetching the same kernel at once) is work for both cores, as tftpd-hpa's process per
//! transfer and atftpd's threads get. So a second thread runs the same executor only
//! while a crowd is there, and goes back to sleep once it has gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_tftp::server::ExtraThread;

/// How often the second thread checks whether the crowd has gone.
const RECHECK: Duration = Duration::from_millis(20);

/// Running transfers: counted by the handler, watched by the second thread.
#[derive(Debug, Default)]
pub(crate) struct Transfers {
    count: AtomicUsize,
    /// Set when the server stops; guards the second thread's sleep.
    stopped: Mutex<bool>,
    crowded: Condvar,
}

impl Transfers {
    /// How many transfers run now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Counts one more transfer unless `cap` already run; wakes the second thread when
    /// this one makes a crowd. Returns whether it was counted.
    pub(crate) fn enter(&self, cap: usize) -> bool {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        if before >= cap {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if before == 1 {
            // Taking the lock orders this with the sleeper's check of the count.
            let _held = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
            self.crowded.notify_one();
        }
        true
    }

    /// Counts one transfer less.
    pub(crate) fn leave(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    fn crowd(&self) -> bool {
        self.count() >= 2
    }

    fn stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps until two or more transfers run (true) or the server stops (false).
    fn wait_for_crowd(&self) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stopped {
                return false;
            }
            if self.crowd() {
                return true;
            }
            stopped = self
                .crowded
                .wait(stopped)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.crowded.notify_all();
    }
}

/// The second thread; stopped and joined when dropped.
pub(crate) struct SecondThread {
    transfers: Arc<Transfers>,
    thread: Option<JoinHandle<()>>,
}

impl SecondThread {
    /// Starts the thread, asleep until a crowd comes. Without a thread to spare (the
    /// system refused one), transfers keep to the server's own thread.
    pub(crate) fn start(transfers: Arc<Transfers>, extra: ExtraThread) -> Self {
        let watched = transfers.clone();
        let thread = std::thread::Builder::new()
            .name("tftp-crowd".into())
            .spawn(move || help(&watched, &extra))
            .ok();
        Self { transfers, thread }
    }
}

impl Drop for SecondThread {
    fn drop(&mut self) {
        self.transfers.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn help(transfers: &Transfers, extra: &ExtraThread) {
    while transfers.wait_for_crowd() {
        async_io::block_on(extra.run(async {
            while transfers.crowd() && !transfers.stopped() {
                async_io::Timer::after(RECHECK).await;
            }
        }));
    }
}
