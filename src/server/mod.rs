//! The HTTP server layer that the file server and the app host both stand on: the accept
//! loop, per-connection limits, the access log, response bodies and plain-text answers.
//! What is served is a `Handler`'s business; nothing here knows about files or apps.

mod access;
pub(crate) mod balance;
pub(crate) mod body;
pub(crate) mod conn;
pub mod faults;
pub mod gate;
mod inbound;
mod line;
mod pace;
mod plain;
mod sendfile;
pub(crate) mod socket;
pub mod tls;
mod tracked;

use std::time::Duration;

pub use body::Body;
pub(crate) use inbound::Inbound;
pub(crate) use plain::{status_page, text_response};

/// What every HTTP server runs with, whatever it serves (files, an app, a Python app's
/// workers): plain data, resolved from arguments and settings. The certificate is where
/// it comes from; the runner loads it (see [`tls::Tls`]) and hands it to the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpOptions {
    /// Per-connection limits.
    pub limits: Limits,
    /// Serve HTTPS with this certificate (`--tls`, `--cert` and `--key`).
    pub tls: Option<tls::CertSource>,
    /// Faults put into every connection on purpose.
    pub faults: faults::Faults,
    /// Passwords, CORS, the host names allowed and the connection caps.
    pub access: gate::Access,
}

/// Default for [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Limits::max_header_bytes`].
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default for [`Limits::drain`].
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// Per-connection limits that keep one client from holding the server hostage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
