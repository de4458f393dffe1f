//! The HTTP file server: `serve(listener, config, shutdown)`. It stands on the shared
//! server layer ([`crate::server`]) and owns only what is about files.
//!
//! - `handler`: from a request to a file, a listing or an error page.
//! - `validators`: ETag and Last-Modified, and what conditional requests make of them.
//! - `reply`: whole, single-range and multipart answers.
//! - `cache`: small files and directories' entries kept in memory, never answered from
//!   once changed.
//! - `changes`: the inotify watches that vouch for cached files and listings without a
//!   `stat` per hit.
//! - `listing`: directory listings in HTML and JSON.
//! - `ranges`: `Range` header parsing.
//! - `upload`: `PUT` and multipart `POST` uploads (`--upload`).

mod cache;
#[cfg(target_os = "linux")]
mod changes;
mod folders;
mod rules;
#[cfg(not(target_os = "linux"))]
mod changes {
    //! Without inotify, every cache hit is checked with `stat`.
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// The changes `cache` acts on; without watches none is ever read.
    #[allow(dead_code)]
    pub(crate) enum Change {
        Entry(PathBuf),
        Tree(PathBuf),
        All,
    }

    #[derive(Debug)]
    pub(crate) struct Watcher {
        pub(crate) generation: u64,
    }

    impl Watcher {
        pub(crate) fn new() -> Option<Self> {
            None
        }
        pub(crate) fn watch(&mut self, _root: &Path, _file: &Path) -> Option<u64> {
            None
        }
        pub(crate) fn watch_listed(&mut self, _root: &Path, _dir: &Path) -> Option<u64> {
            None
        }
        pub(crate) fn drain(&mut self, _forget: impl FnMut(Change)) {}
        pub(crate) fn forget_all(&mut self) {}
        pub(crate) fn duplicate(&self) -> std::io::Result<std::convert::Infallible> {
            Err(std::io::Error::other("no inotify"))
        }
    }

    pub(crate) fn catch_up<T>(
        _token: &Arc<()>,
        _duplicate: impl FnOnce() -> std::io::Result<T>,
        _drain: impl FnOnce(),
    ) -> bool {
        false
    }
}
pub(crate) mod handler;
mod listing;
pub(crate) mod ranges;
mod reply;
mod upload;
mod validators;

pub use rules::FileRules;
pub use upload::{DEFAULT_MAX_UPLOAD, Uploads};

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::confine::{Symlinks, check_root};
use crate::error::Result;
use crate::server::HttpOptions;
use crate::server::tls::Tls;
use crate::shutdown::Shutdown;

/// What the file server serves and how.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The directory to serve.
    pub root: PathBuf,
    /// Follow symlinks that lead outside `root` (on by default: firmware directories
    /// often link to build outputs elsewhere).
    pub follow_symlinks: bool,
    /// List and serve names starting with a dot (`--dotfiles`); hidden and refused
    /// otherwise.
    pub dotfiles: bool,
    /// Which names are shown and taken (`--only`, `--hide`, `--read-only`).
    pub rules: FileRules,
    /// Log request targets, path rewrites and every request header.
    pub debug: bool,
    /// Limits, HTTPS, faults and access, as for every HTTP server.
    pub http: HttpOptions,
    /// Take uploads (`--upload`); `None` keeps the server read-only.
    pub uploads: Option<Uploads>,
}

impl HttpConfig {
    /// Serves `root` with default limits, following symlinks, without debug logging.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            follow_symlinks: true,
            dotfiles: false,
            rules: FileRules::default(),
            debug: false,
            http: HttpOptions::default(),
            uploads: None,
        }
    }
}

/// Serves files from `config.root` on `listener` (over HTTPS with `tls`, loaded from
/// `config.http.tls`) until `shutdown` is triggered, then lets responses in flight finish
/// for up to `config.http.limits.drain`.
///
/// # Errors
/// [`crate::Error::Directory`] if the root cannot be served.
pub async fn serve(
    listener: TcpListener,
    config: HttpConfig,
    tls: Option<Tls>,
    shutdown: Shutdown,
) -> Result<()> {
    let root = check_root(&config.root)?;
    let symlinks = if config.follow_symlinks {
        Symlinks::Follow
    } else {
        Symlinks::StayInside
    };
    let handler = Arc::new(handler::FileServer::new(
        root,
        symlinks,
        config.debug,
        config.uploads,
        config.dotfiles,
        config.rules,
    ));
    crate::server::conn::run(listener, handler, config.http, tls, shutdown).await;
    Ok(())
}

/// The methods the file server takes when writes are on (`--upload`).
pub(crate) const WRITE_METHODS: &str = "GET, HEAD, PUT, POST, DELETE, MKCOL";

/// The request path as bytes: percent-decoded, the HTTP edge of [`crate::confine::confine`]. A path with
/// nothing to decode (nearly every one) is borrowed, not copied.
pub(crate) fn decode_path(request_path: &str) -> std::borrow::Cow<'_, [u8]> {
    percent_encoding::percent_decode_str(request_path).into()
}
