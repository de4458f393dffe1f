//! labserv's TFTP engine: the protocol side of `tftpd` (RFC 1350, with the option
//! extension of RFC 2347, block size of RFC 2348, timeout and transfer size of RFC 2349
//! and window size of RFC 7440). It began as oblique's async-tftp 0.4.2 (MIT) and is
//! labserv's fork of it now, on tokio alone: each transfer runs on a thread of its own
//! with a `current_thread` runtime, and what labserv needs of a TFTP server for boot
//! loaders is added (ERROR handling, netascii, acknowledged uploads only once landed,
//! stopping that tells clients, transfer reports, packet faults on purpose, capped
//! windows and timeouts). `CHANGELOG.md` lists each change since async-tftp 0.4.2.
//!
//! Only the server side is here. A [`server::Handler`] opens what a client reads or
//! writes; [`server::TftpServerBuilder`] binds and configures the server.
//!
//! ```no_run
//! use tftp_engine::server::TftpServerBuilder;
//!
//! # async fn run() -> tftp_engine::Result<()> {
//! // Serves the current directory, read-only, on port 69.
//! let tftpd = TftpServerBuilder::with_dir_ro(".")?.build().await?;
//! tftpd.serve().await?;
//! # Ok(())
//! # }
//! ```

pub mod server;

/// Packet definitions that are needed in public API.
pub mod packet;

mod error;
mod parse;
#[cfg(test)]
mod tests;

pub use crate::error::*;
