//! A file sent as a response body: its segments streamed in chunks read one ahead on the
//! blocking pool, or (plain HTTP/1) handed to the kernel to send from the page cache.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future as _;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::Frame;
use tokio::task::JoinHandle;

use super::Segment;
use crate::fsio::read_cached;
use crate::server::sendfile::{self, Outbox, STAND_IN_LEN};

/// Read buffers that all streamed responses together may hold. Each stream keeps at most
/// two chunks (one being sent, one read ahead), so the chunk size shrinks as more clients
/// download at once: a lone download reads 1 MiB at a time, twenty share the budget.
/// Only streams that read count: over TLS, HTTP/2, `--limit-rate` or a fault option. On
/// plain HTTP/1 the kernel sends from the page cache (see [`sendfile`]), and a download
/// reads a chunk only when the cache cannot be made to hold it.
const READ_BUDGET: u64 = 16 * 1024 * 1024;
/// Bounds of the chunk size; the lower one keeps system calls per byte reasonable.
const MIN_CHUNK: u64 = 64 * 1024;
const MAX_CHUNK: u64 = 1024 * 1024;

/// Streams currently reading from files (not those the kernel sends).
static ACTIVE_STREAMS: AtomicU64 = AtomicU64::new(0);

/// The chunk size for the next read, given how many streams share the budget.
fn chunk_size() -> u64 {
    let streams = ACTIVE_STREAMS.load(Ordering::Relaxed).max(1);
    let share = READ_BUDGET / (2 * streams);
    // Whole 64 KiB units keep reads page-aligned.
    (share - share % MIN_CHUNK).clamp(MIN_CHUNK, MAX_CHUNK)
}

/// Streams segments of an open file, reading one chunk ahead on the blocking pool.
#[derive(Debug)]
pub struct FileStream {
    /// The file, while no read is running (a read takes it and gives it back).
    file: Option<Arc<File>>,
    /// Where the file's cursor is, to skip a seek for sequential reads.
    position: u64,
    segments: VecDeque<Segment>,
    /// The read that produces the next frame, if one is running.
    reading: Option<JoinHandle<(Arc<File>, io::Result<Bytes>)>>,
    pub(super) remaining: u64,
    /// Whether this stream is counted in [`ACTIVE_STREAMS`].
    counted: bool,
    /// Whether reads may first try the page cache without blocking (see [`read_cached`]).
    try_cache: bool,
    /// Where file bytes go to be sent by the kernel, on a connection that can (see
    /// [`sendfile`]).
    outbox: Option<Outbox>,
    /// What is known of the page cache for the next chunk the kernel sends.
    ahead: Ahead,
}

/// What a file stream sending through the kernel knows of its next chunk, found out while
/// the chunk before it went out (see [`FileStream::send_from_cache`]).
#[derive(Debug, Default)]
enum Ahead {
    /// Nothing yet: the page cache is asked when the chunk is due.
    #[default]
    Unknown,
    /// The chunk at this offset was all in the page cache.
    Cached(u64),
    /// The chunk at this offset is being brought into the page cache on the blocking pool.
    Warming(u64, JoinHandle<io::Result<()>>),
    /// The chunk at this offset has been brought in: if the cache still lacks it, it is
    /// read instead.
    Warmed(u64),
}

impl FileStream {
    /// A stream of `segments`; `file` may be `None` when every segment is literal bytes.
    pub(crate) fn new(file: Option<File>, segments: Vec<Segment>) -> Self {
        let remaining = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File { len, .. } => *len,
            })
            .sum();
        let file_backed = file.is_some();
        if file_backed {
            ACTIVE_STREAMS.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            file: file.map(Arc::new),
            position: 0,
            segments: segments.into(),
            reading: None,
            remaining,
            counted: file_backed,
            try_cache: cfg!(target_os = "linux"),
            outbox: None,
            ahead: Ahead::Unknown,
        }
    }

    /// Lets the kernel send this stream's file bytes (those in the page cache) through
    /// the connection's `outbox`.
    ///
    /// Every download goes this way, the lone one too: one curl of a cached 1 GiB image
    /// cost serv 0.17 s of CPU by `sendfile` against 0.47 s copied through 1 MiB buffers
    /// (`perf stat -p`, medians of 10 rounds, cubic congestion control). Under BBR, whose
    /// pacing timers dominate the sender's cost on loopback, neither won: copying was
    /// ahead in four side-by-side runs of six (by 5 to 20%) and behind in two (by up to
    /// 30%), and it holds 2 MiB of buffers a download.
    pub(crate) fn send_through(&mut self, outbox: &Outbox) {
        if !self.counted {
            return;
        }
        self.outbox = Some(outbox.clone());
        // Off the read budget: its reads are only of what the page cache lacks.
        ACTIVE_STREAMS.fetch_sub(1, Ordering::Relaxed);
        self.counted = false;
    }

    /// Queues the next chunk for the kernel to send and returns its stand-in; `None` when
    /// the caller should read the chunk instead.
    ///
    /// Only a chunk the page cache holds goes to the kernel, so that the event loop never
    /// waits for the disk. But the cache loses pages of files at rest (memory pressure, or
    /// a proactive reclaimer: on the VMs that measure labserv, DAMON pages out cold memory,
    /// and a cached 1 GiB image had lost 9,800 of its 262,144 pages after a few idle
    /// minutes with 20 GiB free), so a long download meets chunks the cache lacks in part.
    /// Reading such a chunk costs a copy in and a copy out; instead, while the kernel sends
    /// one chunk, the next is brought into the cache on the blocking pool if it needs to be
    /// (see [`sendfile::warm`]), and sent like the rest. A chunk is read only if the cache
    /// still lacks it after that.
    fn send_from_cache(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let Some((offset, take)) = self.next_chunk() else {
                return Poll::Ready(None);
            };
            if let Ahead::Warming(at, job) = &mut self.ahead
                && *at == offset
            {
                // Whatever came of it, the page cache is asked again below.
                let _ = ready!(Pin::new(job).poll(cx));
                self.ahead = Ahead::Warmed(offset);
            }
            let (Some(outbox), Some(file)) = (&self.outbox, &self.file) else {
                return Poll::Ready(None);
            };
            let known = matches!(self.ahead, Ahead::Cached(at) if at == offset);
            if !known {
                match sendfile::cached(file, offset, take) {
                    Some(true) => {}
                    Some(false) if !matches!(self.ahead, Ahead::Warmed(at) if at == offset) => {
                        let file = file.clone();
                        self.warm(file, offset, take);
                        continue;
                    }
                    Some(false) => return Poll::Ready(None),
                    None => {
                        // The kernel cannot tell: read as before.
                        self.outbox = None;
                        return Poll::Ready(None);
                    }
                }
            }
            let chunk = outbox.push(file, offset, take);
            self.advance(take as u64);
            self.remaining -= take as u64;
            self.ahead = Ahead::Unknown;
            if let (Some(file), Some((next, take))) = (&self.file, self.next_chunk()) {
                match sendfile::cached(file, next, take) {
                    Some(true) => self.ahead = Ahead::Cached(next),
                    Some(false) => {
                        let file = file.clone();
                        self.warm(file, next, take);
                    }
                    None => {}
                }
            }
            return Poll::Ready(Some(chunk));
        }
    }

    /// Where the next chunk for the kernel starts and how long it is, if the stream is at
    /// file bytes and can send them that way.
    fn next_chunk(&self) -> Option<(u64, usize)> {
        self.outbox.as_ref()?;
        match self.segments.front()? {
            &Segment::File { offset, len } => {
                let take = usize::try_from(len).map_or(STAND_IN_LEN, |l| l.min(STAND_IN_LEN));
                Some((offset, take))
            }
            Segment::Bytes(_) => None,
        }
    }

    /// Starts bringing `len` bytes of `file` at `offset` into the page cache on the
    /// blocking pool (a job already running for other bytes runs on unwatched).
    fn warm(&mut self, file: Arc<File>, offset: u64, len: usize) {
        let job = tokio::task::spawn_blocking(move || sendfile::warm(&file, offset, len));
        self.ahead = Ahead::Warming(offset, job);
    }

    /// Moves the front file segment on by `n` bytes taken from it (read, or queued for
    /// the kernel), dropping it once it is all taken.
    fn advance(&mut self, n: u64) {
        if let Some(Segment::File { offset, len }) = self.segments.front_mut() {
            *offset += n;
            *len -= n;
            if *len == 0 {
                self.segments.pop_front();
            }
        }
    }

    /// Bytes still to be sent.
    pub(crate) fn len(&self) -> u64 {
        self.remaining
    }

    /// Reads the next chunk inline if the page cache holds it, so a cached file never
    /// waits for a blocking-pool thread. `None` when the data is not cached (or the file
    /// system cannot tell): the caller then reads on the blocking pool.
    fn read_from_cache(&mut self) -> Option<io::Result<Bytes>> {
        if !self.try_cache {
            return None;
        }
        let (file, Some(Segment::File { offset, len })) =
            (self.file.as_ref()?, self.segments.front_mut())
        else {
            return None;
        };
        let want = usize::try_from((*len).min(chunk_size())).unwrap_or(usize::MAX);
        match read_cached(file, *offset, want) {
            Ok(chunk) if chunk.is_empty() => {
                self.segments.clear();
                Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while it was being sent",
                )))
            }
            Ok(chunk) => {
                let n = chunk.len() as u64;
                self.advance(n);
                self.remaining -= n;
                Some(Ok(chunk))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(_) => {
                // Not supported here (old kernel, some file systems): stop asking.
                self.try_cache = false;
                None
            }
        }
    }

    /// Starts reading the next chunk if the next segment is file data and no read runs.
    fn start_read(&mut self) {
        if self.reading.is_some() {
            return;
        }
        let Some(Segment::File { offset, len }) = self.segments.front_mut() else {
            return;
        };
        let Some(file) = self.file.take() else {
            return;
        };
        let start = *offset;
        let take = (*len).min(chunk_size());
        self.advance(take);
        let seek = (self.position != start).then_some(start);
        self.position = start + take;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let result = read_chunk(&file, seek, take);
            (file, result)
        }));
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        // A stream counts while it owns a file handle (directly or inside a running read).
        if self.counted {
            ACTIVE_STREAMS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads exactly `len` bytes at the cursor (after seeking if asked). A file that shrank
/// while being served is an error: the response promised a length it can no longer keep.
fn read_chunk(mut file: &File, seek: Option<u64>, len: u64) -> io::Result<Bytes> {
    if let Some(pos) = seek {
        file.seek(SeekFrom::Start(pos))?;
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(usize::MAX));
    file.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shrank while it was being sent",
        ));
    }
    Ok(Bytes::from(buf))
}

impl FileStream {
    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        if self.reading.is_none() {
            match self.segments.front() {
                None => return Poll::Ready(None),
                Some(Segment::Bytes(_)) => {
                    let Some(Segment::Bytes(b)) = self.segments.pop_front() else {
                        unreachable!("front was checked to be bytes");
                    };
                    self.remaining -= b.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Some(Segment::File { .. }) => {
                    if let Some(stand_in) = ready!(self.send_from_cache(cx)) {
                        return Poll::Ready(Some(Ok(Frame::data(stand_in))));
                    }
                    if let Some(chunk) = self.read_from_cache() {
                        return Poll::Ready(Some(chunk.map(Frame::data)));
                    }
                    self.start_read();
                }
            }
        }
        let Some(reading) = self.reading.as_mut() else {
            // No file handle to read with: an earlier read failed and the stream is over.
            return Poll::Ready(None);
        };
        let joined = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let (file, result) = match joined {
            Ok(pair) => pair,
            Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
        };
        self.file = Some(file);
        let chunk = match result {
            Ok(chunk) => chunk,
            Err(e) => {
                self.segments.clear();
                self.file = None;
                return Poll::Ready(Some(Err(e)));
            }
        };
        self.remaining -= chunk.len() as u64;
        if self.outbox.is_none() {
            // Read ahead while hyper writes this chunk to the socket. A stream the kernel
            // sends instead goes back to the page cache for its next chunk.
            self.start_read();
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}
