//! The single-threaded runtime every event loop runs on (each HTTP server thread, TFTP,
//! the Python supervisor and each Python worker).

use crate::error::{Error, Result};

/// How long a file-reading pool thread waits for more work before it exits. tokio's
/// default is 10 s; a burst of downloads leaves dozens of threads behind, each holding its
/// stack, and a lab server idles between bursts, so they go after a second instead.
const POOL_THREAD_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// A single-threaded runtime, its blocking threads let go after a second idle.
///
/// # Errors
/// The runtime cannot be started.
pub(crate) fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(POOL_THREAD_IDLE)
        .on_thread_stop(crate::memory::pool_thread_exiting)
        .build()
        .map_err(|e| Error::io("starting the runtime", e))
}
