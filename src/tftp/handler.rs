//! The TFTP request handler: root confinement, the transfer cap, read-only by default,
//! and uploads that land atomically or not at all.

use std::fs::{self};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tftp_engine::packet;
use tftp_engine::server::{Outcome, TransferReport};
use tokio::runtime::Handle;
use tracing::warn;

use super::files::{Download, Upload};
use super::transfers::Transfers;
use crate::confine::{Refused, Symlinks, confine};
use crate::landing::{Landing, Room};
use crate::logging;

/// Serves one directory over TFTP.
pub(crate) struct Handler {
    /// The served directory, canonical.
    root: PathBuf,
    upload: bool,
    overwrite: bool,
    room: Room,
    max_transfers: usize,
    max_per_client: usize,
    transfers: Arc<Transfers>,
    /// The server's runtime, whose blocking pool reads from the disk and lands uploads
    /// for every transfer (a transfer's own runtime has no pool worth starting).
    pool: Handle,
}

impl Handler {
    /// Call on the server's runtime, whose blocking pool the transfers use.
    pub(crate) fn new(
        root: PathBuf,
        upload: bool,
        overwrite: bool,
        room: Room,
        max_transfers: usize,
        max_per_client: usize,
    ) -> Self {
        Self {
            root,
            upload,
            overwrite,
            room,
            max_transfers,
            max_per_client,
            transfers: Arc::default(),
            pool: Handle::current(),
        }
    }

    /// The running transfers.
    pub(crate) fn transfers(&self) -> Arc<Transfers> {
        self.transfers.clone()
    }

    /// Takes one of the transfer slots for `client`, or refuses with a message the
    /// client can show.
    fn slot(&self, client: &SocketAddr) -> Result<Slot, packet::Error> {
        let ip = client.ip().to_canonical();
        let most = self.max_per_client;
        if !self.transfers.enter_client(ip, most) {
            warn!(
                target: "labserv::tftp",
                "{client} refused: {most} transfers from that address running (--max-per-client)"
            );
            return Err(packet::Error::Msg(format!(
                "too many transfers from your address ({most}), try again"
            )));
        }
        if !self.transfers.enter(self.max_transfers) {
            self.transfers.leave_client(ip);
            return Err(packet::Error::Msg(format!(
                "server busy: {} transfers running, try again",
                self.max_transfers
            )));
        }
        Ok(Slot {
            transfers: self.transfers.clone(),
            client: ip,
            _busy: crate::memory::Busy::start(),
            _open: crate::stats::Opened::new(),
        })
    }
}

/// A running transfer's place under the cap; freed when the transfer's reader or
/// writer is dropped.
pub(super) struct Slot {
    transfers: Arc<Transfers>,
    client: std::net::IpAddr,
    _busy: crate::memory::Busy,
    _open: crate::stats::Opened,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.transfers.leave();
        self.transfers.leave_client(self.client);
    }
}

/// TFTP's edge of [`confine`]: names come unencoded, and a leading `/` is read relative
/// to the root (boot configurations often name `/pxelinux.0`); the caller refuses such a
/// name when nothing by it exists under the root, so `/etc/passwd` is an access violation
/// rather than a lookup. An empty name is refused too. Symlinks must stay inside the root.
pub(crate) fn resolve(root: &Path, requested: &Path) -> Result<PathBuf, &'static str> {
    let full = confine(
        root,
        requested.as_os_str().as_encoded_bytes(),
        Symlinks::StayInside,
    )
    .map_err(Refused::reason)?;
    if full == root {
        return Err("empty file name");
    }
    Ok(full)
}

fn refuse(client: &SocketAddr, write: bool, requested: &Path, why: &str) -> packet::Error {
    warn!(
        target: "labserv::tftp",
        "{client} refused {:?}: {why}",
        requested.display().to_string()
    );
    log_refused(client, write, requested, why);
    packet::Error::PermissionDenied
}

fn io_error(e: &io::Error) -> packet::Error {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => packet::Error::FileNotFound,
        io::ErrorKind::PermissionDenied => packet::Error::PermissionDenied,
        io::ErrorKind::AlreadyExists => packet::Error::FileAlreadyExists,
        io::ErrorKind::StorageFull => packet::Error::DiskFull,
        _ => packet::Error::Msg(e.to_string()),
    }
}

impl tftp_engine::server::Handler for Handler {
    type Reader = Download;
    type Writer = Upload;

    fn transfer_ended(&mut self, report: TransferReport) {
        log_transfer(&report);
    }

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        let full = resolve(&self.root, path).map_err(|why| refuse(client, false, path, why))?;
        if path.has_root() && fs::metadata(&full).is_err() {
            return Err(refuse(
                client,
                false,
                path,
                "absolute path outside the root",
            ));
        }
        let slot = self.slot(client)?;
        // Never a blocking open: a FIFO under the root must not hang every transfer
        // (the engine holds this handler while it opens). Only regular files are sent.
        let file = crate::confine::open_file(&self.root, &full).map_err(|e| io_error(&e))?;
        let meta = file.metadata().map_err(|e| io_error(&e))?;
        if !meta.is_file() {
            return Err(refuse(client, false, path, "not a regular file"));
        }
        let len = meta.len();
        let reader = Download::new(file, len, self.pool.clone(), slot);
        Ok((reader, Some(len)))
    }

    async fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        // The size the client announced (`tsize`), checked against the room up front.
        size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        if !self.upload {
            return Err(refuse(
                client,
                true,
                path,
                "uploads are off (start with --upload)",
            ));
        }
        let target = resolve(&self.root, path).map_err(|why| refuse(client, true, path, why))?;
        let Some(dir) = target.parent() else {
            return Err(refuse(client, true, path, "not a file name"));
        };
        if path.has_root() && !dir.is_dir() {
            return Err(refuse(client, true, path, "absolute path outside the root"));
        }
        let slot = self.slot(client)?;
        let (landing, file) =
            Landing::begin(&self.root, &target, self.overwrite, false).map_err(|e| {
                match e.kind() {
                    io::ErrorKind::AlreadyExists => packet::Error::FileAlreadyExists,
                    io::ErrorKind::InvalidInput => refuse(client, true, path, "not a file name"),
                    _ => io_error(&e),
                }
            })?;
        if let Err(e) = landing.make_room(&self.room, size) {
            log_refused(client, true, path, &e.to_string());
            return Err(packet::Error::DiskFull);
        }
        let file =
            crate::landing::Upload::new(file, &landing, self.room).map_err(|e| io_error(&e))?;
        Ok(Upload::new(file, landing, self.pool.clone(), slot))
    }
}

/// Logs one finished transfer: client, direction, file, bytes, duration, rate, block
/// size, window size, retransmits, outcome.
fn log_transfer(r: &TransferReport) {
    // What a transfer sent: its data for a read, its acknowledgements for an upload.
    crate::stats::finished(if r.write { 0 } else { r.bytes });
    if let Some(slow) = logging::slow(r.duration) {
        tracing::warn!(
            target: "labserv::tftp",
            "{} {} {:?}: slow, {:.3}s (--slow {}s)",
            r.peer,
            if r.write { "write" } else { "read" },
            r.file,
            r.duration.as_secs_f64(),
            slow.as_secs_f64()
        );
    }
    if !logging::access_enabled() {
        return;
    }
    let secs = r.duration.as_secs_f64();
    let rate = if secs > 0.0 {
        r.bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    let outcome = match &r.outcome {
        Outcome::Completed => "ok".to_string(),
        Outcome::AbortedByClient => "aborted by client".to_string(),
        Outcome::TimedOut => "timed out".to_string(),
        Outcome::ClientGone => "client gone (its port is closed)".to_string(),
        Outcome::ServerStopping => "stopped by shutdown".to_string(),
        Outcome::Failed(why) => format!("failed: {why}"),
    };
    logging::access(format_args!(
        "{} {} {:?} {} bytes in {secs:.3}s ({rate:.1} MB/s) blksize {} windowsize {} retransmits {} {outcome}",
        r.peer,
        if r.write { "write" } else { "read" },
        r.file,
        r.bytes,
        r.block_size,
        r.window_size,
        r.retransmits,
    ));
}

/// Logs a request refused before any transfer began.
fn log_refused(client: &SocketAddr, write: bool, file: &Path, why: &str) {
    if logging::access_enabled() {
        logging::access(format_args!(
            "{client} {} {:?} refused: {why}",
            if write { "write" } else { "read" },
            file.display().to_string(),
        ));
    }
}
