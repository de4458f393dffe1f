//! The TFTP request handler: root confinement, the transfer cap, read-only by default,
//! and uploads that land atomically or not at all.

use std::fs::{self, File};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_tftp::packet;
use async_tftp::server::{Outcome, TransferReport};
use blocking::{Task, Unblock};
use futures_lite::{AsyncRead, AsyncWrite, Future};
use tracing::warn;

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
}

impl Handler {
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
        })
    }
}

/// A running transfer's place under the cap; freed when the transfer's reader or
/// writer is dropped.
struct Slot {
    transfers: Arc<Transfers>,
    client: std::net::IpAddr,
    _busy: crate::memory::Busy,
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

impl async_tftp::server::Handler for Handler {
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
        let reader = Download {
            file: Arc::new(file),
            next: 0,
            len,
            chunk: bytes::Bytes::new(),
            reading: None,
            _slot: slot,
        };
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
        Ok(Upload {
            unstarted: Some(file),
            file: None,
            landing: Some(landing),
            finishing: None,
            _slot: slot,
        })
    }
}

/// Logs one finished transfer: client, direction, file, bytes, duration, rate, block
/// size, window size, retransmits, outcome.
fn log_transfer(r: &TransferReport) {
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

/// Bytes read from the file at a time; blocks are then served from memory.
const READ_CHUNK: usize = 256 * 1024;

/// Blocks at least this big are read from the page cache straight into the packet, one
/// system call each, rather than cut from a chunk: at blksize 65464 the chunk's extra copy
/// and its allocation cost more than the calls it saves.
const DIRECT_READ: usize = 16 * 1024;

/// A file being read by a client. Blocks are cut from large chunks read straight from the
/// page cache on the server's own thread (big blocks are read into the packet itself);
/// only data that must come from the disk is read on the blocking pool.
pub(crate) struct Download {
    file: Arc<File>,
    /// Offset of the next read (a chunk, or a big block).
    next: u64,
    len: u64,
    chunk: bytes::Bytes,
    reading: Option<Task<io::Result<bytes::Bytes>>>,
    _slot: Slot,
}

impl AsyncRead for Download {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.chunk.is_empty() {
            if this.next >= this.len {
                return Poll::Ready(Ok(0));
            }
            let left = usize::try_from(this.len - this.next).unwrap_or(usize::MAX);
            if buf.len() >= DIRECT_READ && this.reading.is_none() {
                // A big block goes from the page cache straight into the packet.
                let want = left.min(buf.len());
                if let Ok(n @ 1..) =
                    crate::fsio::read_cached_into(&this.file, this.next, &mut buf[..want])
                {
                    this.next += n as u64;
                    return Poll::Ready(Ok(n));
                }
            }
            let want = left.min(READ_CHUNK);
            let chunk = match this.reading.as_mut() {
                Some(task) => {
                    let chunk = ready!(Pin::new(task).poll(cx));
                    this.reading = None;
                    chunk?
                }
                None => match crate::fsio::read_cached(&this.file, this.next, want) {
                    Ok(chunk) if !chunk.is_empty() => chunk,
                    _ => {
                        let (file, offset) = (this.file.clone(), this.next);
                        let mut task =
                            blocking::unblock(move || crate::fsio::read_at(&file, offset, want));
                        let polled = Pin::new(&mut task).poll(cx);
                        match polled {
                            Poll::Ready(chunk) => chunk?,
                            Poll::Pending => {
                                this.reading = Some(task);
                                return Poll::Pending;
                            }
                        }
                    }
                },
            };
            if chunk.is_empty() {
                // The file shrank under us: end the transfer short rather than pad it.
                this.len = this.next;
                return Poll::Ready(Ok(0));
            }
            this.next += chunk.len() as u64;
            this.chunk = chunk;
        }
        let n = buf.len().min(this.chunk.len());
        buf[..n].copy_from_slice(&this.chunk[..n]);
        bytes::Buf::advance(&mut this.chunk, n);
        Poll::Ready(Ok(n))
    }
}

/// A file being uploaded, landing as every upload does (see [`Landing`]): dropped before
/// the transfer completes, it leaves nothing and the target untouched.
///
/// A transfer on a thread of its own writes its file there, as tftpd-hpa does: a write
/// to the page cache takes microseconds, and handing each block to the blocking pool cost
/// more than that. One on the server's shared runtime writes through the pool.
pub(crate) struct Upload {
    /// Not written to yet: where its writes run is decided at the first block (a
    /// transfer is given its thread after its file is opened).
    unstarted: Option<crate::landing::Upload>,
    file: Option<Writing>,
    landing: Option<Landing>,
    /// The sync-and-rename running on the blocking pool.
    finishing: Option<Task<io::Result<()>>>,
    _slot: Slot,
}

enum Writing {
    Direct(crate::landing::Upload),
    Pooled(Unblock<crate::landing::Upload>),
}

impl AsyncWrite for Upload {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(file) = self.unstarted.take() {
            self.file = Some(if async_tftp::server::on_own_thread() {
                Writing::Direct(file)
            } else {
                Writing::Pooled(Unblock::new(file))
            });
        }
        match self.file.as_mut() {
            Some(Writing::Direct(file)) => Poll::Ready(io::Write::write(file, buf)),
            Some(Writing::Pooled(file)) => Pin::new(file).poll_write(cx, buf),
            None => Poll::Ready(Err(io::Error::other("upload already closed"))),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file.as_mut() {
            Some(Writing::Pooled(file)) => Pin::new(file).poll_flush(cx),
            Some(Writing::Direct(file)) => Poll::Ready(io::Write::flush(file)),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.file.is_some() || self.unstarted.is_some() {
            if let Some(Writing::Pooled(file)) = self.file.as_mut() {
                ready!(Pin::new(file).poll_close(cx))?;
            }
            self.file = None;
            self.unstarted = None;
            if let Some(landing) = self.landing.take() {
                if async_tftp::server::on_own_thread() {
                    // The sync may take a while; this thread has nothing else to do.
                    return Poll::Ready(landing.land());
                }
                self.finishing = Some(blocking::unblock(move || landing.land()));
            }
        }
        if let Some(task) = self.finishing.as_mut() {
            let result = ready!(Pin::new(task).poll(cx));
            self.finishing = None;
            result?;
        }
        Poll::Ready(Ok(()))
    }
}
