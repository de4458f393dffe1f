//! The library's one error type, and how each kind maps to an exit code.
//!
//! Each message already says the operating system's reason in words a user can act on,
//! so the I/O errors are kept as fields rather than exposed as a second `source()` line.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::settings::SettingsError;

/// Everything that can go wrong in labserv's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad environment variable or argument: the user's to fix (exit code 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),

    /// The listening socket could not be bound (port in use, privileged port, ...).
    #[error("cannot listen on {addr}: {}", describe_bind_error(.error))]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        error: io::Error,
    },

    /// The directory to serve is missing or not a directory.
    #[error("cannot serve {}: {reason}", .path.display())]
    Directory {
        /// The directory as given.
        path: PathBuf,
        /// Why it cannot be served.
        reason: String,
    },

    /// The log file could not be opened.
    #[error("cannot open log file {}: {error}", .path.display())]
    LogFile {
        /// The LOG path.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },

    /// A daemon's pid file is held by another running daemon.
    #[error("{name} is already running, pid {}", .pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    AlreadyRunning {
        /// The daemon's LPNAME.
        name: String,
        /// The pid in its pid file, if it has written one.
        pid: Option<u32>,
    },

    /// A Python app that cannot be loaded: no interpreter, or the import failed (exit
    /// code 2: the user's to fix).
    #[error("cannot load {app}: {reason}")]
    App {
        /// The app as given.
        app: String,
        /// What went wrong, in one line.
        reason: String,
    },

    /// HTTPS cannot be set up: a certificate or key that cannot be read or used (exit
    /// code 2: the user's to fix).
    #[error("--tls: {0}")]
    Tls(String),

    /// Any other I/O failure, with what was being done.
    #[error("{context}: {error}")]
    Io {
        /// What labserv was doing.
        context: String,
        /// What the operating system said.
        error: io::Error,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, error: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            error,
        }
    }

    /// The process exit code for this error: 2 for usage mistakes, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Settings(_) | Error::App { .. } | Error::Tls(_) => 2,
            _ => 1,
        }
    }
}

/// Turns the common bind failures into advice a user can act on.
fn describe_bind_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            "address already in use (is another server running on that port?)".to_string()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_string()
        }
        io::ErrorKind::AddrNotAvailable => {
            "address not available (no interface of this machine has it)".to_string()
        }
        _ => err.to_string(),
    }
}
