//! The HTTP file server: `serve(listener, config, shutdown)` and what it is built from.

mod body;
mod cache;
pub(crate) mod conn;
pub(crate) mod files;
mod listing;
pub(crate) mod ranges;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use body::Body;
pub(crate) use files::text_response;

use crate::error::{Error, Result};
use crate::shutdown::Shutdown;

/// Default for [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Limits::max_header_bytes`].
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default for [`Limits::drain`].
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// Per-connection limits that keep one client from holding the server hostage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must be complete this long after its first byte (slowloris).
    pub header_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Request heads larger than this get 431.
    pub max_header_bytes: usize,
    /// On shutdown, responses in flight get this long to finish.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            drain: DEFAULT_DRAIN,
        }
    }
}

/// What the file server serves and how.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The directory to serve.
    pub root: PathBuf,
    /// Follow symlinks that lead outside `root` (on by default: firmware directories
    /// often link to build outputs elsewhere).
    pub follow_symlinks: bool,
    /// Log request targets, path rewrites and every request header.
    pub debug: bool,
    /// Connection limits.
    pub limits: Limits,
}

impl HttpConfig {
    /// Serves `root` with default limits, following symlinks, without debug logging.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            follow_symlinks: true,
            debug: false,
            limits: Limits::default(),
        }
    }
}

/// Checks that `root` is a readable directory and returns its canonical path.
///
/// # Errors
/// [`Error::Directory`] when it is missing, not a directory, or unreadable.
pub fn check_root(root: &Path) -> Result<PathBuf> {
    let fail = |reason: String| Error::Directory {
        path: root.to_path_buf(),
        reason,
    };
    let canonical = root.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail("no such directory".to_string()),
        _ => fail(e.to_string()),
    })?;
    if !canonical.is_dir() {
        return Err(fail("not a directory".to_string()));
    }
    std::fs::read_dir(&canonical).map_err(|e| fail(e.to_string()))?;
    Ok(canonical)
}

/// Serves files from `config.root` on `listener` until `shutdown` is triggered, then lets
/// responses in flight finish for up to `config.limits.drain`.
///
/// # Errors
/// [`Error::Directory`] if the root cannot be served.
pub async fn serve(listener: TcpListener, config: HttpConfig, shutdown: Shutdown) -> Result<()> {
    let root = check_root(&config.root)?;
    let handler = Arc::new(files::FileServer::new(
        root,
        config.follow_symlinks,
        config.debug,
    ));
    conn::run(listener, handler, config.limits, shutdown).await;
    Ok(())
}
