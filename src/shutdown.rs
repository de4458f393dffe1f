//! One shutdown path: a cancellation token cloned into every server, plus the signal handlers.

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A shutdown signal shared by a server and everything it starts.
///
/// Cloning is cheap; every clone sees the same trigger. Servers drain their own work
/// when it fires (the HTTP server through hyper-util's graceful shutdown, the TFTP
/// server by ending its transfers).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
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

    /// Completes once shutdown has been triggered.
    pub fn triggered(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}

/// SIGINT and SIGTERM handlers, installed up front so that a signal arriving the moment a
/// server has announced itself is already caught (and not fatal).
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Call inside a Tokio runtime context (`Runtime::enter`).
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes with the signal's name at the next SIGINT or SIGTERM (Ctrl-C elsewhere).
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Completes with the signal's name when the process receives SIGINT or SIGTERM.
///
/// # Errors
/// Fails only if the signal handlers cannot be installed.
pub async fn signal() -> std::io::Result<&'static str> {
    Ok(Signals::install()?.recv().await)
}
