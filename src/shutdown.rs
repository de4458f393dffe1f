//! One shutdown path: a cancellation token cloned into every server, plus the signal future.

use std::future::Future;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// A shutdown signal shared by a server and everything it spawns.
///
/// Cloning is cheap; every clone sees the same trigger and the same task tracker.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, untriggered shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of a clone to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether [`Shutdown::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has been triggered.
    pub fn triggered(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Spawns a task that is counted by [`Shutdown::wait_tasks`].
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(fut);
    }

    /// Waits until every task spawned through this shutdown has finished.
    pub async fn wait_tasks(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Completes with the signal's name when the process receives SIGINT or SIGTERM.
///
/// # Errors
/// Fails only if the signal handlers cannot be installed.
#[cfg(unix)]
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}

/// Completes when the process receives Ctrl-C.
///
/// # Errors
/// Fails only if the handler cannot be installed.
#[cfg(not(unix))]
pub async fn signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("Ctrl-C")
}
