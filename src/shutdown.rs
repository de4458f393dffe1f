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

/// What a daemon does on SIGHUP (reopen its log file).
#[cfg(unix)]
type OnHangup = Box<dyn FnMut() + Send>;

/// SIGINT and SIGTERM handlers, installed up front so that a signal arriving the moment a
/// server has announced itself is already caught (and not fatal). Daemons add SIGHUP.
pub struct Signals {
    /// Asked for from within (the console's `quit`), as if by a signal.
    asked: std::sync::Arc<tokio::sync::Notify>,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: Option<(tokio::signal::unix::Signal, OnHangup)>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
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
                asked: std::sync::Arc::default(),
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hangup: None,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {
            asked: std::sync::Arc::default(),
        })
    }

    /// What stops the server as SIGTERM would, from elsewhere in the process (the
    /// console's command line).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.asked.clone())
    }

    /// Calls `action` on every SIGHUP from now on, instead of letting SIGHUP end the
    /// process. Call inside a Tokio runtime context, like [`Signals::install`].
    ///
    /// # Errors
    /// The handler cannot be installed.
    #[cfg(unix)]
    pub fn on_hangup(&mut self, action: impl FnMut() + Send + 'static) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        self.hangup = Some((signal(SignalKind::hangup())?, Box::new(action)));
        Ok(())
    }

    /// Completes with the signal's name at the next SIGINT or SIGTERM (Ctrl-C elsewhere).
    /// A SIGHUP in between runs the [`Signals::on_hangup`] action and keeps waiting.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        loop {
            let hangup = async {
                match &mut self.hangup {
                    Some((signal, _)) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.asked.notified() => return "quit",
                _ = self.int.recv() => return "SIGINT",
                _ = self.term.recv() => return "SIGTERM",
                _ = hangup => {
                    if let Some((_, action)) = &mut self.hangup {
                        action();
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                () = self.asked.notified() => "quit",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            }
        }
    }
}

/// Stops a server as SIGTERM would (see [`Signals::stopper`]).
#[derive(Clone, Debug)]
pub struct Stopper(std::sync::Arc<tokio::sync::Notify>);

impl Stopper {
    /// Stops the server: what it serves finishes, as on SIGTERM.
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

/// Completes with the signal's name when the process receives SIGINT or SIGTERM.
///
/// # Errors
/// Fails only if the signal handlers cannot be installed.
pub async fn signal() -> std::io::Result<&'static str> {
    Ok(Signals::install()?.recv().await)
}
