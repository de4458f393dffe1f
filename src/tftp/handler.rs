//! The TFTP request handler: root confinement, the transfer cap, read-only by default,
//! and uploads that land atomically or not at all.

use std::fs::{self, File};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tftp_engine::packet;
use tftp_engine::server::{Outcome, TransferReport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
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
        let reader = Download {
            file: Arc::new(file),
            next: 0,
            len,
            chunk: bytes::Bytes::new(),
            reading: None,
            pool: self.pool.clone(),
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
            pool: self.pool.clone(),
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
    reading: Option<JoinHandle<io::Result<bytes::Bytes>>>,
    pool: Handle,
    _slot: Slot,
}

/// What a task on the blocking pool gave back (a task that panicked is an I/O error).
fn joined<T>(done: Result<io::Result<T>, tokio::task::JoinError>) -> io::Result<T> {
    done.unwrap_or_else(|e| Err(io::Error::other(e)))
}

impl AsyncRead for Download {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // The engine reads into initialized packet buffers: this costs nothing there.
        let buf = out.initialize_unfilled();
        let n = ready!(self.fill(cx, buf))?;
        out.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Download {
    /// Puts the next bytes of the file into `buf`; how many (0 at the end).
    fn fill(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self;
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
                    joined(chunk)?
                }
                None => match crate::fsio::read_cached(&this.file, this.next, want) {
                    Ok(chunk) if !chunk.is_empty() => chunk,
                    _ => {
                        let (file, offset) = (this.file.clone(), this.next);
                        let mut task = this
                            .pool
                            .spawn_blocking(move || crate::fsio::read_at(&file, offset, want));
                        match Pin::new(&mut task).poll(cx) {
                            Poll::Ready(chunk) => joined(chunk)?,
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
    finishing: Option<JoinHandle<io::Result<()>>>,
    pool: Handle,
    _slot: Slot,
}

enum Writing {
    /// Written on this thread.
    Direct(crate::landing::Upload),
    /// Written on the blocking pool, a block at a time: the file is with the task
    /// writing the last block given, and comes back when it is done.
    Pooled {
        file: Option<crate::landing::Upload>,
        task: Option<JoinHandle<(crate::landing::Upload, io::Result<()>)>>,
    },
}

impl Writing {
    /// Waits for the block being written on the pool, if one is; its error, if it failed.
    fn poll_pooled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Writing::Pooled { file, task } = self else {
            return Poll::Ready(Ok(()));
        };
        let Some(running) = task.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let done = ready!(Pin::new(running).poll(cx));
        *task = None;
        match done {
            Ok((back, result)) => {
                *file = Some(back);
                Poll::Ready(result)
            }
            Err(e) => Poll::Ready(Err(io::Error::other(e))),
        }
    }
}

impl AsyncWrite for Upload {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(file) = this.unstarted.take() {
            this.file = Some(if tftp_engine::server::on_own_thread() {
                Writing::Direct(file)
            } else {
                Writing::Pooled {
                    file: Some(file),
                    task: None,
                }
            });
        }
        let Some(writing) = this.file.as_mut() else {
            return Poll::Ready(Err(io::Error::other("upload already closed")));
        };
        ready!(writing.poll_pooled(cx))?;
        match writing {
            Writing::Direct(file) => Poll::Ready(io::Write::write(file, buf)),
            Writing::Pooled { file, task } => {
                let Some(mut file) = file.take() else {
                    return Poll::Ready(Err(io::Error::other("upload already failed")));
                };
                // Taken now, written on the pool; a failure is told at the next call.
                let block = buf.to_vec();
                *task = Some(this.pool.spawn_blocking(move || {
                    let written = io::Write::write_all(&mut file, &block);
                    (file, written)
                }));
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file.as_mut() {
            Some(Writing::Direct(file)) => Poll::Ready(io::Write::flush(file)),
            Some(pooled) => pooled.poll_pooled(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.file.is_some() || this.unstarted.is_some() {
            if let Some(writing) = this.file.as_mut() {
                ready!(writing.poll_pooled(cx))?;
            }
            this.file = None;
            this.unstarted = None;
            if let Some(landing) = this.landing.take() {
                if tftp_engine::server::on_own_thread() {
                    // The sync may take a while; this thread has nothing else to do.
                    return Poll::Ready(landing.land());
                }
                this.finishing = Some(this.pool.spawn_blocking(move || landing.land()));
            }
        }
        if let Some(task) = this.finishing.as_mut() {
            let result = ready!(Pin::new(task).poll(cx));
            this.finishing = None;
            joined(result)?;
        }
        Poll::Ready(Ok(()))
    }
}
