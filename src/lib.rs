//! labserv: simple servers for engineering labs.
//!
//! A firmware engineer runs `serv 8080` in a directory of images and a board fetches
//! `http://<host>:8080/fw_update.img`. This crate holds everything the binaries share;
//! the binaries in `src/bin` only parse arguments and call into it.
//!
//! # Layout
//! - [`settings`]: the environment variables (PORT, IFACE, DOCROOT, ...) and their defaults.
//! - [`cli`]: clap argument groups shared by the binaries.
//! - [`console`]: the foreground commands (`serv`, `tftpd`, `wsgi`) from arguments to exit code.
//! - [`daemon`]: the daemons' start, stop, restart, status and run; pid file and detaching.
//! - [`http`]: the HTTP file server: `serve(listener, config, shutdown)`.
//! - [`tftp`]: the TFTP server: `serve(socket, config, shutdown)`.
//! - `tui`: `daemontui`, the terminal UI that drives the daemons (Unix).
//! - [`wsgi`]: the WSGI-style app host and its built-in apps.
//! - `runner`: runtimes, the per-core runner and the wait for a signal.
//! - [`net`]: binding listeners and finding the addresses a device can reach.
//! - [`shutdown`]: the one shutdown token, and the SIGINT/SIGTERM (and SIGHUP) handlers.
//! - `memory`: one malloc arena per core; free memory handed back when idle.
//! - [`logging`]: stderr or LOG-file logging.
//! - [`error`]: the library's error type.
//! - `properties` (tests only): property tests of the parsers.

pub mod cli;
pub mod config;
pub mod confine;
pub mod console;
pub mod daemon;
pub mod error;
pub mod exit;
mod fsio;
pub mod http;
pub mod logging;
mod memory;
pub mod net;
#[cfg(test)]
mod properties;
mod runner;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod tftp;
#[cfg(unix)]
pub mod tui;
pub mod wsgi;

pub use error::{Error, Result};
pub use settings::{Defaults, Settings};
pub use shutdown::Shutdown;
