//! The memory a worker and the supervisor both map: a worker's slot (which requests are
//! in or waiting for its app) and the board every worker shares (which are idle, and how
//! many connections each holds); and the sealed files a worker is handed.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Words of memory in a memory file, shared with another process that maps it too.
struct Mapped {
    words: NonNull<AtomicU64>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping holds only atomics and lives as long as the Mapped.
unsafe impl Send for Mapped {}
// SAFETY: as above; every access is atomic.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// `len` zeroed words in a new memory file.
    fn create(name: &str, len: usize) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if !crate::wsgi::python::portable() {
            let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
            let fd = rustix::fs::memfd_create(name, flags)?;
            rustix::fs::ftruncate(&fd, (len * 8) as u64)?;
            // Its size is fixed for good: a worker's app (any Python code) cannot shrink
            // the file under the supervisor's mapping, which would make it fault.
            rustix::fs::fcntl_add_seals(&fd, fixed_size())?;
            return Self::map(fd, len);
        }
        // Elsewhere an unnamed temporary file (nothing to clean up after a crash). It
        // cannot be sealed: an app that truncated it on purpose could fault the
        // supervisor.
        let _ = name;
        let file = tempfile::tempfile()?;
        file.set_len((len * 8) as u64)?;
        Self::map(OwnedFd::from(file), len)
    }

    /// Maps `len` words of a memory file another process made.
    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of the file's first len words; nothing else in
        // this process aliases it, and it is only used through atomics.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len * 8,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let words = NonNull::new(ptr.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap gave a null page"))?;
        Ok(Self { words, len, fd })
    }

    fn word(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: i < len stays inside the mapping, which outlives &self.
        (i < self.len).then(|| unsafe { &*self.words.as_ptr().add(i) })
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference outlives self.
        unsafe {
            let _ = rustix::mm::munmap(self.words.as_ptr().cast(), self.len * 8);
        }
    }
}

/// A file holding `bytes` for workers to read and never change: a sealed memory file
/// on Linux, an unnamed temporary file elsewhere (and where workers are portable).
pub(crate) fn sealed_file(name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
    use std::io::Write as _;
    #[cfg(target_os = "linux")]
    if !crate::wsgi::python::portable() {
        let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(name, flags)?;
        std::fs::File::from(fd.try_clone()?).write_all(bytes)?;
        rustix::fs::fcntl_add_seals(&fd, fixed_size() | rustix::fs::SealFlags::WRITE)?;
        return Ok(fd);
    }
    let _ = name;
    let mut file = tempfile::tempfile()?;
    file.write_all(bytes)?;
    Ok(OwnedFd::from(file))
}

/// The seals of a memory file whose size never changes again.
#[cfg(target_os = "linux")]
pub(crate) fn fixed_size() -> rustix::fs::SealFlags {
    use rustix::fs::SealFlags;
    SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL
}

/// A worker's slot: the tag of the connection whose request is in the app (0: none),
/// then the tags of those whose request waits for the app (0: a free place); each with
/// [`ANSWERABLE`] when a 502 may be written on it.
pub(crate) struct Slot(Mapped);

/// Words in a slot: the request in the app, then places for those waiting (a request
/// past them, 510 waiting at once, is simply not answered if its worker dies).
const SLOT_WORDS: usize = 512;

impl Slot {
    /// A new slot, in a memory file the worker maps too.
    pub(crate) fn create() -> io::Result<Self> {
        Mapped::create("labserv-slot", SLOT_WORDS).map(Self)
    }

    /// Maps the slot the supervisor made.
    pub(crate) fn map(fd: OwnedFd) -> io::Result<Self> {
        Mapped::map(fd, SLOT_WORDS).map(Self)
    }

    /// Marks a request as in the app (`tag` with [`ANSWERABLE`] or not).
    pub(crate) fn set(&self, tag: u64) {
        if let Some(cell) = self.0.word(0) {
            cell.store(tag, Ordering::Release);
        }
    }

    /// What is in the app now.
    pub(crate) fn get(&self) -> u64 {
        self.0
            .word(0)
            .map_or(0, |cell| cell.load(Ordering::Acquire))
    }

    /// Notes a request (a tag with [`ANSWERABLE`]) as waiting for the app; where it was
    /// put, for [`Slot::unwait`] (none when every place is taken).
    pub(crate) fn wait(&self, tag: u64) -> Option<usize> {
        (1..SLOT_WORDS).find(|&i| {
            self.0.word(i).is_some_and(|cell| {
                cell.load(Ordering::Relaxed) == 0
                    && cell
                        .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
            })
        })
    }

    /// The request noted at `place` no longer waits (it is answered, or its client
    /// has gone).
    pub(crate) fn unwait(&self, place: usize) {
        if place > 0
            && let Some(cell) = self.0.word(place)
        {
            cell.store(0, Ordering::Release);
        }
    }

    /// The requests waiting for the app now.
    pub(crate) fn waiting(&self) -> Vec<u64> {
        (1..SLOT_WORDS)
            .filter_map(|i| self.0.word(i))
            .map(|cell| cell.load(Ordering::Acquire))
            .filter(|&tag| tag != 0)
            .collect()
    }

    /// The memory file, to hand to the worker.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

/// The seats of a board: at most this many workers at once (a reload doubles them for a
/// moment).
pub(crate) const SEATS: usize = 256;

/// A seat's state on the [`Board`]: no worker there (or one that is stopping).
pub(crate) const EMPTY: u64 = 0;
/// The worker's app has nothing to do: it takes new connections.
pub(crate) const IDLE: u64 = 1;
/// The worker's app has a request: it leaves new connections to idle workers.
pub(crate) const BUSY: u64 = 2;

/// What every worker can see of the others: one seat each, saying whether its app is
/// idle and how many connections it has open. A busy worker leaves new connections to an
/// idle one, as a gunicorn sync worker does by not accepting while it serves (when all
/// are busy, they queue), and an idle one leaves them, for a moment, to an idle worker
/// with fewer connections (so that a burst of them is shared out).
pub(crate) struct Board(Mapped);

impl Board {
    /// A new board, in a memory file every worker maps too: a seat's state, then (in
    /// the second half) how many connections its worker has open.
    pub(crate) fn create() -> io::Result<Self> {
        Mapped::create("labserv-board", 2 * SEATS).map(Self)
    }

    /// Maps the board the supervisor made.
    pub(crate) fn map(fd: OwnedFd) -> io::Result<Self> {
        Mapped::map(fd, 2 * SEATS).map(Self)
    }

    fn seat(&self, seat: usize) -> Option<&AtomicU64> {
        (seat < SEATS).then(|| self.0.word(seat)).flatten()
    }

    fn conns(&self, seat: usize) -> Option<&AtomicU64> {
        (seat < SEATS).then(|| self.0.word(SEATS + seat)).flatten()
    }

    /// Sets how many connections the worker at a seat has open.
    pub(crate) fn set_conns(&self, seat: usize, conns: u64) {
        if let Some(cell) = self.conns(seat) {
            cell.store(conns, Ordering::Release);
        }
    }

    /// Whether another worker is idle with fewer than `conns` connections open.
    pub(crate) fn idle_with_fewer(&self, seat: usize, conns: u64) -> bool {
        (0..SEATS).filter(|&s| s != seat).any(|s| {
            self.seat(s)
                .is_some_and(|cell| cell.load(Ordering::Acquire) == IDLE)
                && self
                    .conns(s)
                    .is_some_and(|cell| cell.load(Ordering::Acquire) < conns)
        })
    }

    /// Sets a seat's state (a seat left [`EMPTY`] has no connections either).
    pub(crate) fn set(&self, seat: usize, state: u64) {
        if let Some(cell) = self.seat(seat) {
            cell.store(state, Ordering::Release);
        }
        if state == EMPTY
            && let Some(cell) = self.conns(seat)
        {
            cell.store(0, Ordering::Release);
        }
    }

    /// Whether a worker other than the one at `seat` is idle.
    pub(crate) fn another_idle(&self, seat: usize) -> bool {
        (0..SEATS)
            .filter(|&s| s != seat)
            .filter_map(|s| self.seat(s))
            .any(|cell| cell.load(Ordering::Acquire) == IDLE)
    }

    /// The memory file, to hand to the workers.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}
