//! File bytes sent by the kernel (`sendfile`) on plain HTTP/1 connections.
//!
//! hyper owns the socket and writes a body from the `Bytes` frames the body yields, so a
//! file body cannot simply ask for `sendfile`. Instead, a file body on such a connection
//! yields *stand-ins*: slices of one static region that nothing ever writes or reads, and
//! queues in the connection's [`Outbox`] which bytes of which file each stand-in is. hyper
//! queues frames as they are (it writes with `writev` and never copies a body frame when
//! the stream writes vectored), so when the connection's stream is asked to write a slice
//! that lies in the stand-in region, it sends the file bytes instead, from the page cache
//! to the socket.
//!
//! What that saves, with a hundred boards fetching a 64 MiB image at once: no read
//! buffers (two chunks a download before, up to 16 MiB in all), and no copy of every byte
//! through user space.
//!
//! Guard rails, since a stand-in that reached the wire would be zeros in place of data:
//! the outbox exists only for plain (not TLS), unpaced, fault-free connections, is handed
//! only to HTTP/1 responses (hyper's HTTP/2 copies frames into its own buffers), and each
//! write checks that the stand-in it is given is exactly where the queue says the next
//! file bytes go; anything else ends the connection with an error instead of sending.
//! serv never asks hyper for `writev(false)` or `pipeline_flush`, which would have it copy
//! frames into its own buffer; the tests download files byte for byte on both paths.
//! Only file bytes already in the page cache go this way, so the event loop never waits
//! for a disk: bytes the cache lacks are brought in on the blocking pool first ([`warm`]),
//! or read as before if that fails.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
#[cfg(target_os = "linux")]
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The most one stand-in may stand for.
pub(crate) const STAND_IN_LEN: usize = 1 << 20;

/// Never written, and never read by this program: zero-initialised, so it takes no
/// memory until something touches it, which nothing does.
static STAND_IN: [u8; STAND_IN_LEN] = [0; STAND_IN_LEN];

/// A stand-in for `len` bytes of file.
fn stand_in(len: usize) -> Bytes {
    Bytes::from_static(&STAND_IN[..len])
}

/// Where `slice` starts within the stand-in region, if it lies there.
fn stand_in_offset(slice: &[u8]) -> Option<usize> {
    let base = STAND_IN.as_ptr() as usize;
    let at = (slice.as_ptr() as usize).checked_sub(base)?;
    (at < STAND_IN_LEN && !slice.is_empty()).then_some(at)
}

/// Whether `bytes` is a stand-in.
#[cfg(test)]
pub(crate) fn is_stand_in(bytes: &[u8]) -> bool {
    stand_in_offset(bytes).is_some()
}

/// File bytes a stand-in stands for.
#[derive(Debug)]
struct Region {
    file: Arc<File>,
    offset: u64,
    len: usize,
    /// How much of it is on the wire.
    sent: usize,
}

/// A connection's queue of file bytes to send in place of stand-ins, in the order their
/// stand-ins were yielded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outbox(Arc<Mutex<Queue>>);

#[derive(Debug, Default)]
struct Queue {
    regions: VecDeque<Region>,
    /// Whether the connection takes turns of at most [`TURN`] bytes (it does under BBR);
    /// `None` until its first file bytes go.
    turns: Option<bool>,
    /// File bytes sent since the connection last gave way.
    this_turn: usize,
}

impl Outbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `len` bytes of `file` at `offset` (at most [`STAND_IN_LEN`]) and returns
    /// the stand-in to yield for them.
    pub(crate) fn push(&self, file: &Arc<File>, offset: u64, len: usize) -> Bytes {
        debug_assert!(len > 0 && len <= STAND_IN_LEN);
        self.queue().regions.push_back(Region {
            file: file.clone(),
            offset,
            len,
            sent: 0,
        });
        stand_in(len)
    }
}

/// How a stream should write `bufs`: through `writev` (the leading slices that are real
/// bytes), or with `sendfile` for a stand-in that comes first.
pub(crate) enum Plan {
    /// Write this many leading slices as they are.
    Bytes(usize),
    /// The first slice is a stand-in: `len` bytes from `at` within it.
    File { at: usize, len: usize },
}

/// Splits a write at its first stand-in.
pub(crate) fn plan(bufs: &[IoSlice<'_>]) -> Plan {
    let first = bufs.iter().position(|b| !b.is_empty());
    let Some(first) = first else {
        return Plan::Bytes(bufs.len());
    };
    if let Some(at) = stand_in_offset(&bufs[first]) {
        return Plan::File {
            at,
            len: bufs[first].len(),
        };
    }
    let end = bufs[first..]
        .iter()
        .position(|b| stand_in_offset(b).is_some())
        .map_or(bufs.len(), |n| first + n);
    Plan::Bytes(end)
}

/// The most file bytes a download sends in one turn under BBR. Once it has sent that
/// much, it gives way to the other connections of its event loop and goes on when the
/// loop comes back to it (at once, if nothing else is ready). A turn also ends when the
/// socket takes no more.
///
/// Without turns, a download went on until the kernel refused, which with the
/// notsent limit below came to anything from a few tens of KiB to the whole 1 MiB of
/// a chunk. With many downloads at once, long turns got ahead of BBR's pacing: the
/// kernel then held bytes back with pacing timers (about one for every five segments
/// sent), and the downloads spread apart over the file. Short turns keep each
/// download's bytes within what BBR lets out at once. 100 curls fetching one 64 MiB
/// image at once on loopback, 6 rotating rounds side by side with the build before:
/// 4,773 to 5,173 MB/s against 4,069 to 4,435 (lighttpd 3,731 to 4,418), with 3,900
/// to 7,200 pacing timers a fleet against 28,600 to 33,900 (`HRTIMER` in
/// `/proc/softirqs`; lighttpd 19,800 to 30,000) and 0.73 to 0.87 s of serv's CPU
/// against 0.99 to 1.14. Of the sizes tried (5 rounds), 128 KiB was the fastest: 64
/// KiB gave 4,408 to 4,712 MB/s, 32 KiB 3,355 to 3,667 (more calls), and 256 KiB
/// kept most of the timers. One download of 1 GiB was not slowed (medians of 5:
/// 4,859 against 4,856 MB/s). Under cubic, which paces nothing, turns made the fleet
/// slower (5,725 to 5,902 MB/s against 6,980 to 7,017), so a connection takes turns
/// only under BBR, as it keeps little unsent only under BBR.
const TURN: usize = 128 * 1024;

/// Sends up to `len` file bytes for the stand-in written from `at`, when the socket has
/// room and the connection's turn is not over (see [`TURN`]). An error when the
/// stand-in is not where the queue says the next file bytes go.
pub(crate) fn poll_send(
    outbox: &Outbox,
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    at: usize,
    mut len: usize,
) -> Poll<io::Result<usize>> {
    let mut queue = outbox.queue();
    let turns = *queue.turns.get_or_insert_with(|| keep_little_unsent(tcp));
    let Queue {
        regions, this_turn, ..
    } = &mut *queue;
    let Some(region) = regions.front_mut() else {
        return Poll::Ready(Err(mismatch()));
    };
    if region.sent != at || len > region.len - region.sent {
        return Poll::Ready(Err(mismatch()));
    }
    if turns {
        if *this_turn >= TURN {
            *this_turn = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        len = len.min(TURN - *this_turn);
    }
    loop {
        if tcp.poll_write_ready(cx)?.is_pending() {
            *this_turn = 0;
            return Poll::Pending;
        }
        let mut offset = region.offset + region.sent as u64;
        let sent = tcp.try_io(Interest::WRITABLE, || {
            send_file(tcp, &region.file, &mut offset, len)
        });
        match sent {
            Ok(0) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while it was being sent",
                )));
            }
            Ok(n) => {
                *this_turn += n;
                region.sent += n;
                if region.sent == region.len {
                    regions.pop_front();
                }
                return Poll::Ready(Ok(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// The most file bytes a connection leaves waiting in the kernel, not yet on the wire.
#[cfg(target_os = "linux")]
const NOTSENT_LOWAT: u32 = 16 * 1024;

/// Under BBR, tells the kernel to take only [`NOTSENT_LOWAT`] bytes of this connection
/// beyond what is on the wire (`TCP_NOTSENT_LOWAT`), and to ask for more once half of
/// that is left.
///
/// Without it, `sendfile` queues a download up to the whole send buffer (4 MiB here)
/// ahead of the wire. Under BBR (the default congestion control of the VMs that measure
/// labserv) a connection that always has bytes queued is never short of data, so each
/// slow moment of the receiver counts against BBR's estimate of the path, and BBR paces
/// the sender with a timer for every one or two 64 KiB segments. With little queued the
/// connection often runs short of data, and BBR sets aside what it measures then.
/// One curl of a cached 1 GiB image on loopback, medians of 6 downloads side by side in
/// two runs: 0.24 s of serv's CPU per GiB against 0.47, and 3,095 against 2,078 MB/s;
/// then 0.20 against 0.36 s and 3,953 against 2,712 MB/s (lighttpd 0.28 to 0.34 s).
/// Smaller was faster (16 KiB 3,638 MB/s, 32 KiB 3,515, 64 KiB 3,147, unset 2,628).
///
/// The price is more calls: one `sendfile` and one wake-up per few tens of KiB once the
/// wire, not serv, is what holds a download back (a few thousand a second at a gigabit).
/// Under cubic, which paces nothing, the price shows where serv's CPU is the limit: 100
/// downloads at once on loopback ran faster without it in 10 of 13 rounds side by side
/// (medians 4,230 against 3,950 MB/s over 8 rounds). One download gained about 6% with
/// it (4,060 against 3,815 MB/s, medians of 30 over 10 rounds; nginx 3,835). The limit
/// is set only where the connection's congestion control is BBR (one `getsockopt` per
/// connection that sends file bytes; small answers never pay it), which gives up that
/// gain under cubic to keep the fleet's speed. Limiting only while few downloads run was
/// measured too: under cubic the limit already lost with 2, 4 and 8 downloads at once
/// (by 18%, 14% and 4%), while under BBR it gained with 1 and 2 and was level at 8.
///
/// Returns whether the connection is under BBR.
fn keep_little_unsent(tcp: &TcpStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        let sock = socket2::SockRef::from(tcp);
        let bbr = sock
            .tcp_congestion()
            .is_ok_and(|name| name.starts_with(b"bbr"));
        if bbr {
            let _ = sock.set_tcp_notsent_lowat(NOTSENT_LOWAT);
        }
        bbr
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tcp;
        false
    }
}

#[cfg(target_os = "linux")]
fn send_file(tcp: &TcpStream, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
    rustix::fs::sendfile(tcp, file, Some(offset), len).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn send_file(_: &TcpStream, _: &File, _: &mut u64, _: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

fn mismatch() -> io::Error {
    io::Error::other("a file chunk was written out of turn; connection ended")
}

/// Brings `len` bytes of `file` at `offset` into the page cache, waiting for the disk but
/// copying nothing: `sendfile` to `/dev/null` reads the pages in and drops them unread.
/// Blocking: call it off the event loop. An error when `/dev/null` cannot be opened or the
/// file is shorter than asked.
#[cfg(target_os = "linux")]
pub(crate) fn warm(file: &File, mut offset: u64, len: usize) -> io::Result<()> {
    static NULL: OnceLock<Option<File>> = OnceLock::new();
    let null = NULL
        .get_or_init(|| File::options().write(true).open("/dev/null").ok())
        .as_ref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no /dev/null"))?;
    let mut left = len;
    while left > 0 {
        match rustix::fs::sendfile(null, file, Some(&mut offset), left)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => left -= n,
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn warm(_: &File, _: u64, _: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Whether all of `len` bytes of `file` at `offset` are in the page cache, so that
/// `sendfile` will not wait for the disk. `None` when the kernel cannot tell
/// (`cachestat` is Linux 6.5 and later).
#[cfg(target_os = "linux")]
pub(crate) fn cached(file: &File, offset: u64, len: usize) -> Option<bool> {
    use std::os::fd::AsRawFd as _;
    /// `struct cachestat_range` of `<linux/mman.h>`.
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    /// `struct cachestat` of `<linux/mman.h>`.
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    // The same number on every architecture but alpha; neither libc nor rustix has the
    // call yet.
    const SYS_CACHESTAT: libc::c_long = 451;
    const PAGE: u64 = 4096;
    let range = Range {
        off: offset,
        len: len as u64,
    };
    let mut stat = Stat::default();
    // SAFETY: both structs are laid out as the kernel's and live across the call; the
    // kernel writes only `stat`.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &raw const range,
            &raw mut stat,
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let pages = (offset + len as u64).div_ceil(PAGE) - offset / PAGE;
    Some(stat.nr_cache >= pages)
}

/// Elsewhere nothing is sent by the kernel: the caller reads instead.
#[cfg(not(target_os = "linux"))]
pub(crate) fn cached(_: &File, _: u64, _: usize) -> Option<bool> {
    None
}

#[cfg(test)]
mod tests;
