//! Keeping a server's memory to its working size: a malloc arena for each event loop and
//! helper thread, and free memory handed back to the system once the server has been
//! idle for a moment.
//!
//! A lab server sits idle most of the day between bursts (a board flashing, twenty
//! boards netbooting at once). glibc keeps what a burst freed, so without this a server
//! stays at its busiest size all day; the soak tests (`tests/soak.rs`) check that it
//! comes back down.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

/// Connections and transfers running, across every server thread.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// Sets glibc's malloc up for a server: an arena for each event loop and each helper
/// thread, and fixed thresholds for giving memory back.
///
/// - Arenas: glibc gives threads new arenas (up to eight per core) as they contend, and
///   each keeps what it once held. File reads come and go on short-lived pool threads, so
///   a server's memory climbed in steps under repeated bursts of transfers (7 MiB to
///   13 MiB for tftpd over a dozen bursts of 20 reads) and stayed there. So the count is
///   capped: one per core, for the event loops, and two more for the helper threads (the
///   log writer, the trimmer). With one per core only, a helper took the second arena
///   before the second event loop started, and both loops allocated from the main arena:
///   under `wrk -c20` with `Connection: close` they waited on its lock 10k times a second
///   (`perf stat -e syscalls:sys_enter_futex`: 49,106 in 5 s, against 22 with two more).
/// - Thresholds: hyper takes room for as many headers as a request may carry (about a
///   megabyte, see `server::conn`) on every request, and touches only what the headers
///   fill. Left to itself, glibc maps and unmaps a block that size each time, or trims it
///   off the heap's top, and the pages are faulted in again on the next request: 4 KiB
///   keep-alive fell from 117k to 28k requests/s. Blocks under 4 MiB therefore come from
///   the heap, and the top is trimmed only past 8 MiB; what is free still goes back once
///   the server is quiet (below).
pub(crate) fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let arenas = libc::c_int::try_from(cores.max(2) + 2).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator tunable; a value it does not take is
        // refused with 0, which changes nothing.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        }
    }
}

/// For a process that serves TFTP: the tops of malloc's arenas go back to the system
/// once more than 256 KiB of them is free, instead of 8 MiB.
///
/// [`release_free_memory`] hands back the free chunks of every arena but shrinks only
/// the main arena's top; the other arenas' tops shrink when a free leaves more than the
/// trim threshold there. tftpd's transfers run on threads of their own, which allocate
/// from the second arena, so with the 8 MiB that [`tune_malloc`] sets for hyper up to
/// 8 MiB stayed resident after a burst of transfers (tftpd idle at 13 MiB instead of 6).
/// TFTP has no megabyte-sized buffer per request to keep, so the lower threshold costs
/// it nothing.
pub(crate) fn trim_arena_tops_early() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as in `tune_malloc`, only an allocator tunable.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 10);
    }
}

/// Connections and transfers started so far: a quiet spell is one in which this stays put.
static STARTS: AtomicU64 = AtomicU64::new(0);

/// How long the servers must stay idle before free memory goes back. Trimming on every
/// idle moment cost a client that opens one connection per request (HTTP/1.0, many OTA
/// clients) about 18% of its requests per second; a quiet spell this long is a real pause.
const QUIET: Duration = Duration::from_millis(200);

/// The thread that hands memory back once the servers have been quiet for [`QUIET`].
static TRIMMER: OnceLock<Option<Thread>> = OnceLock::new();

/// Held while a connection or transfer runs. A moment after the last one ends (if no
/// other has started meanwhile), the memory the allocator holds free goes back to the
/// system.
#[derive(Debug)]
pub(crate) struct Busy(());

impl Busy {
    /// Counts one more connection or transfer.
    pub(crate) fn start() -> Self {
        STARTS.fetch_add(1, Ordering::Relaxed);
        BUSY.fetch_add(1, Ordering::AcqRel);
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if BUSY.fetch_sub(1, Ordering::AcqRel) == 1 {
            wake_trimmer();
        }
    }
}

/// Called as a file-reading pool thread exits, a second after its last read: well after
/// the trim at the start of the quiet spell. What is freed as the pool threads go would
/// stay resident until the next burst, so the trimmer takes another turn. Measured:
/// without it serv held 2 MiB more after 200,000 requests (freed by one more
/// `malloc_trim` called from a debugger), and ended anywhere from 1 to 7 MiB above its
/// idle size by chance.
pub(crate) fn pool_thread_exiting() {
    if BUSY.load(Ordering::Acquire) == 0 {
        wake_trimmer();
    }
}

/// Only a wake-up: the trimmer decides whether the quiet lasts.
fn wake_trimmer() {
    if let Some(trimmer) = TRIMMER.get_or_init(spawn_trimmer) {
        trimmer.unpark();
    }
}

fn spawn_trimmer() -> Option<Thread> {
    // Without the thread nothing is handed back, which costs memory, never correctness.
    std::thread::Builder::new()
        .name("labserv-trim".into())
        .spawn(trim_when_quiet)
        .ok()
        .map(|handle| handle.thread().clone())
}

fn trim_when_quiet() {
    loop {
        std::thread::park();
        loop {
            let seen = STARTS.load(Ordering::Relaxed);
            std::thread::sleep(QUIET);
            if BUSY.load(Ordering::Acquire) == 0 && STARTS.load(Ordering::Relaxed) == seen {
                release_free_memory();
                break;
            }
        }
    }
}

fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system; it takes the arenas'
    // own locks, so it is safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
