//! labserv: simple servers for engineering labs.
//!
//! A firmware engineer runs `serv 8080` in a directory of images and a board fetches
//! `http://<host>:8080/fw_update.img`. This crate holds everything the binaries share;
//! the binaries in `src/bin` only parse arguments and call into it.
//!
//! The `commands` feature (on by default) holds the commands and what only they use:
//! from `cli` to `tui` below, the file server and TFTP, and certificate making. The
//! Python extension module (`crates/pyext`) builds this crate without it: a worker runs
//! only the HTTP layer and the app host.
//!
//! # Layout
//!
//! This list is the one description of `src/`; docs/architecture.md points here.
//!
//! From arguments to a running server:
//! - [`cli`]: typed clap arguments; each server's options in one struct that its
//!   foreground command and its daemons flatten alike.
//! - [`settings`]: the environment variables (PORT, IFACE, DOCROOT, ...), their defaults,
//!   and the parsers that arguments reuse.
//! - [`config`]: one config step per server (`serv`, `tftpd`, `wsgi`), used by every entry
//!   point; a config is plain data.
//! - [`console`]: the foreground commands, and the banner they print.
//! - [`daemon`]: the daemons: plan, actions, process control, the daemon process itself;
//!   pid file and detaching.
//! - `tui`: `daemontui`: form, layout, drawing, events, actions, log follower (Unix).
//! - `runner`: prepares a config (runtime, signals, directory, log, the socket its service
//!   needs, the certificate, a Python app's workers) and serves it, one event loop per
//!   core.
//! - [`exit`]: the one place an error becomes a message and an exit code.
//!
//! The servers:
//! - [`server`]: the HTTP layer both HTTP servers stand on: accept loop, limits, access log,
//!   bodies, plain-text answers; TLS (`server::tls`), faults on purpose (`server::faults`),
//!   and passwords and CORS (`server::gate`).
//! - [`http`]: the file server: handler, validators, replies, cache, listings, ranges,
//!   uploads.
//! - [`wsgi`]: the WSGI-style app host, its built-in apps, validator and CGI gateway, and
//!   the CGI variables every app gets (`wsgi::variables`); `wsgi::python` hosts Python
//!   WSGI apps in worker processes that run this crate's HTTP code (`inside/`) through an
//!   extension module (the workspace's `crates/pyext`, built by `build.rs`; it and
//!   `worker.py`, the Python side, ship inside the binary; the supervisor hands each
//!   worker its resolved configuration as data; `pool.rs` supervises the workers,
//!   `ctl.rs` is what they and the supervisor tell each other, `reload.rs` restarts them
//!   on changes).
//! - [`tftp`]: the TFTP server on labserv's TFTP engine (`crates/tftp-engine`, a fork of
//!   async-tftp): uploads, transfer log.
//! - [`confine`]: the one rule that keeps a client's file name inside the served root.
//!
//! Shared pieces:
//! - [`net`]: binding listeners and finding the addresses a device can reach.
//! - [`shutdown`]: the one shutdown token, and the SIGINT/SIGTERM (and SIGHUP) handlers.
//! - [`logging`]: stderr or LOG-file logging, batched writes.
//! - `fsio`: page-cache and positional file reads.
//! - `landing`: how an upload lands, for TFTP and HTTP: a temporary file, synced, moved
//!   into place whole.
//! - `human`: byte counts as people read them.
//! - `private`: labserv's own files (logs, pid files, the TLS key) and their folders,
//!   readable by the user only and never opened through a symlink.
//! - `memory`: a malloc arena per event loop and helper thread; free memory handed back
//!   when idle.
//! - [`error`]: the library's error type.
//! - `properties` (tests only): property tests of the parsers and of [`confine`].

// Without the commands (the Python extension module's build, which needs only the HTTP
// layer and the app host), what only the commands use is unused.
#![cfg_attr(not(feature = "commands"), allow(dead_code, unused_imports))]

#[cfg(feature = "commands")]
pub mod cli;
#[cfg(feature = "commands")]
pub mod config;
pub mod confine;
#[cfg(feature = "commands")]
pub mod console;
#[cfg(feature = "commands")]
pub mod daemon;
pub mod error;
#[cfg(feature = "commands")]
pub mod exit;
mod fsio;
#[cfg(feature = "commands")]
pub mod http;
mod human;
#[cfg(feature = "commands")]
pub mod landing;
pub mod logging;
mod memory;
pub mod net;
mod private;
#[cfg(test)]
mod properties;
#[cfg(feature = "commands")]
mod runner;
mod runtime;
pub mod server;
pub mod settings;
pub mod shutdown;
mod stats;
#[cfg(feature = "commands")]
pub mod tftp;
#[cfg(all(unix, feature = "commands"))]
pub mod tui;
pub mod wsgi;

pub use error::{Error, Result};
pub use settings::{Defaults, Settings};
pub use shutdown::Shutdown;
