//! What a TFTP transfer reads and writes: a download cut into blocks from the page
//! cache (the disk read on the server's blocking pool), and an upload that lands whole
//! (see [`Landing`]) or not at all.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::handler::Slot;
use crate::landing::Landing;

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
    /// Reads `file`, `len` bytes long, for a transfer holding `slot`; disk reads go to
    /// `pool`'s blocking threads.
    pub(super) fn new(file: File, len: u64, pool: Handle, slot: Slot) -> Self {
        Self {
            file: Arc::new(file),
            next: 0,
            len,
            chunk: bytes::Bytes::new(),
            reading: None,
            pool,
            _slot: slot,
        }
    }

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

impl Upload {
    /// Writes `file`, which lands through `landing` once complete, for a transfer
    /// holding `slot`; writes that cannot run on the transfer's own thread go to
    /// `pool`'s blocking threads.
    pub(super) fn new(
        file: crate::landing::Upload,
        landing: Landing,
        pool: Handle,
        slot: Slot,
    ) -> Self {
        Self {
            unstarted: Some(file),
            file: None,
            landing: Some(landing),
            finishing: None,
            pool,
            _slot: slot,
        }
    }
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
