//! A small-file cache that never answers with an old version.
//!
//! Most requests in a lab are for small files fetched again and again (manifests, update
//! descriptors, index pages). For those, the content and the response headers are kept
//! ready, and a hit costs no system call when inotify watches vouch for the file (see
//! [`changes`]: a path with no symlink on a local file system). Any other hit is checked
//! with one `stat` against the file's device, inode, size, modification and change times,
//! so a replaced or rewritten file is seen on the very next request. Such files are cached
//! only once unchanged for [`SETTLE`]: the kernel stamps times with a coarse clock, and a
//! same-size rewrite inside one tick would otherwise look unchanged.
//!
//! A directory's entries are kept the same way, only while watches vouch for them: a
//! listing asked for again is made from memory, without reading the directory and
//! looking up each name (two thirds of a fresh listing's time, in the kernel). What the
//! directory's own watch cannot see, a subdirectory's time or a symlink's target, is
//! looked up again for every listing (see `listing::refresh`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderValue;

use super::changes::{self, Change, Watcher};
use super::listing::Listed;
use super::validators::Validators;

/// Files at most this large are cached.
pub(crate) const MAX_FILE: u64 = 64 * 1024;
/// Cached bytes at most; past it the cache starts over.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Cached files at most; past it the cache starts over.
const MAX_ENTRIES: usize = 4096;
/// How long a file must have been left alone before it is cached.
const SETTLE: Duration = Duration::from_secs(1);
/// How long watches vouch for an entry before it is checked with `stat` once more (a
/// listing: read once more): the bound on how long a change that makes no inotify event
/// can go unseen.
const RECHECK: Duration = Duration::from_secs(1);
/// Kept listings at most; past it the cache starts over.
const MAX_LISTINGS: usize = 256;
/// Entries of kept listings at most, all together (about 100 bytes each); a directory with
/// more is read for every listing, and past it the cache starts over.
const MAX_LISTED: usize = 200_000;

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    #[cfg(unix)]
    fn of(meta: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(meta: &Metadata) -> Self {
        let stamp = |t: std::io::Result<SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or((0, 0), |d| {
                    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
                })
        };
        Self {
            dev: 0,
            ino: 0,
            len: meta.len(),
            mtime: stamp(meta.modified()),
            ctime: stamp(meta.created()),
        }
    }

    /// Whether the file was changed too recently for its times to be trusted.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let limit = i64::try_from(now.saturating_sub(SETTLE).as_secs()).unwrap_or(i64::MAX);
        self.mtime.0 < limit && self.ctime.0 < limit
    }
}

/// One cached file: its bytes and its ready-made response headers.
#[derive(Debug)]
pub(crate) struct Cached {
    /// Whether watches vouch for it (else every hit is checked with `stat`).
    watched: bool,
    /// When it was last known to be the file there (see [`Cache::now`]).
    checked: AtomicU64,
    identity: Identity,
    pub(crate) bytes: Bytes,
    pub(crate) validators: Validators,
    pub(crate) content_type: HeaderValue,
}

/// The cache: full path to the last version of the file seen there. Paths are keyed by
/// their bytes: hashing a `Path` walks its components, and these come from `confine`,
/// already in one normal form.
#[derive(Debug)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
    /// Whether entries can be vouched for by watches (see [`changes`]).
    watching: bool,
    /// Lives as long as the cache: an event loop drops its registration of the watcher
    /// once the cache is gone.
    token: Arc<()>,
    /// Where the cache's clock starts.
    born: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<OsString, Arc<Cached>>,
    bytes: usize,
    /// Directories' entries, kept only while watches vouch for them, with when each was
    /// read (see [`Cache::now`]).
    listings: HashMap<OsString, (u64, Arc<Listed>)>,
    watcher: Option<Watcher>,
}

impl Cache {
    /// An empty cache, with watches where the system gives an inotify instance.
    pub(crate) fn new() -> Self {
        let watcher = Watcher::new();
        Self {
            watching: watcher.is_some(),
            inner: Mutex::new(Inner {
                watcher,
                ..Inner::default()
            }),
            token: Arc::new(()),
            born: Instant::now(),
        }
    }

    /// Milliseconds since the cache was made.
    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached copy of `path` if watches vouch that it is still the file there, with
    /// no system call. `None` leaves it to the caller to `stat` the file and ask [`get`].
    ///
    /// [`get`]: Cache::get
    pub(crate) fn vouched(&self, path: &Path) -> Option<Arc<Cached>> {
        if !self.caught_up() {
            return None;
        }
        let inner = self.lock();
        let hit = inner.map.get(path.as_os_str())?;
        let recent = self
            .now()
            .saturating_sub(hit.checked.load(Ordering::Relaxed))
            < RECHECK.as_millis() as u64;
        (hit.watched && recent).then(|| hit.clone())
    }

    /// Whether watches vouch for entries, and the cache has forgotten every entry that
    /// this thread's event loop has seen an event about.
    fn caught_up(&self) -> bool {
        self.watching
            && changes::catch_up(
                &self.token,
                || match &self.lock().watcher {
                    Some(watcher) => watcher.duplicate(),
                    None => Err(std::io::Error::other("no watcher")),
                },
                || self.lock().catch_up(),
            )
    }

    /// The kept entries of the directory `dir` if watches vouch that it has had no change
    /// since they were read: none to its names, nor to its files' sizes and times. What
    /// its own watch cannot see is for the caller to look at again (`listing::refresh`).
    pub(crate) fn listing(&self, dir: &Path) -> Option<Arc<Listed>> {
        if !self.caught_up() {
            return None;
        }
        let inner = self.lock();
        let (read, listed) = inner.listings.get(dir.as_os_str())?;
        let recent = self.now().saturating_sub(*read) < RECHECK.as_millis() as u64;
        recent.then(|| listed.clone())
    }

    /// Sets up the watches for the directory `dir` (below `root`, or `root`) before it is
    /// read for a listing. What it returns goes to [`keep_listing`] with the entries.
    ///
    /// [`keep_listing`]: Cache::keep_listing
    pub(crate) fn prepare_listing(&self, root: &Path, dir: &Path) -> Option<u64> {
        self.lock().watcher.as_mut()?.watch_listed(root, dir)
    }

    /// Keeps the entries of `dir` if `prepared` (from [`prepare_listing`]) still holds:
    /// no event was read since the watches were set up, which might have been about an
    /// entry already read.
    ///
    /// [`prepare_listing`]: Cache::prepare_listing
    pub(crate) fn keep_listing(&self, dir: &Path, listed: Arc<Listed>, prepared: Option<u64>) {
        let mut inner = self.lock();
        let current = inner.watcher.as_ref().map(|w| w.generation);
        let count = listed.entries.len();
        if prepared.is_none() || current != prepared || count > MAX_LISTED {
            return;
        }
        // A directory read again replaces its own entries, which do not count against it.
        inner.listings.remove(dir.as_os_str());
        // Counted here, on a fresh read, rather than kept up to date at every forgetting.
        let kept: usize = inner.listings.values().map(|(_, l)| l.entries.len()).sum();
        if inner.listings.len() >= MAX_LISTINGS || kept + count > MAX_LISTED {
            // Starting over takes this directory's watch off too.
            inner.start_over();
            return;
        }
        let read = self.now();
        inner
            .listings
            .insert(dir.as_os_str().to_owned(), (read, listed));
    }

    /// Sets up the watches for `path` (below `root`) before it is read for the cache.
    /// What it returns goes to [`insert`] with the content.
    ///
    /// [`insert`]: Cache::insert
    pub(crate) fn prepare(&self, root: &Path, path: &Path) -> Option<u64> {
        self.lock().watcher.as_mut()?.watch(root, path)
    }

    /// The cached copy of `path` if it is still the file that `meta` describes.
    pub(crate) fn get(&self, path: &Path, meta: &Metadata) -> Option<Arc<Cached>> {
        let inner = self.lock();
        let hit = inner.map.get(path.as_os_str())?;
        if hit.identity != Identity::of(meta) {
            return None;
        }
        hit.checked.store(self.now(), Ordering::Relaxed);
        Some(hit.clone())
    }

    /// Caches `bytes` as the content of `path` described by `meta`: vouched for by its
    /// watches if `prepared` (from [`prepare`]) still holds, else checked on every hit, and
    /// then only once the file has settled. Returns the entry either way, so the caller can
    /// answer from it.
    ///
    /// [`prepare`]: Cache::prepare
    pub(crate) fn insert(
        &self,
        path: &Path,
        meta: &Metadata,
        bytes: Bytes,
        content_type: HeaderValue,
        prepared: Option<u64>,
    ) -> Arc<Cached> {
        let identity = Identity::of(meta);
        let settled = identity.settled(SystemTime::now());
        let mut inner = self.lock();
        // Events read since the watches were set up may have been about this file, and
        // found nothing to forget.
        let mut watched =
            prepared.is_some() && inner.watcher.as_ref().map(|w| w.generation) == prepared;
        // A watched file needs no settling: a change within the clock's tick is an event.
        let mut keep = watched || settled;
        if keep && (inner.map.len() >= MAX_ENTRIES || inner.bytes + bytes.len() > MAX_BYTES) {
            // Starting over takes this file's watches off too.
            inner.start_over();
            watched = false;
            keep = settled;
        }
        let entry = Arc::new(Cached {
            watched,
            checked: AtomicU64::new(self.now()),
            identity,
            validators: Validators::of(meta),
            bytes,
            content_type,
        });
        if keep {
            inner.bytes += entry.bytes.len();
            if let Some(old) = inner.map.insert(path.as_os_str().to_owned(), entry.clone()) {
                inner.bytes -= old.bytes.len();
            }
        }
        entry
    }
}

impl Inner {
    /// Reads the queued events and forgets the entries and listings they name.
    fn catch_up(&mut self) {
        let Inner {
            map,
            bytes,
            listings,
            watcher,
        } = self;
        let Some(watcher) = watcher else {
            return;
        };
        watcher.drain(|change| match change {
            Change::Entry(path) => {
                if let Some(old) = map.remove(path.as_os_str()) {
                    *bytes -= old.bytes.len();
                }
                // The directory that holds it lists it.
                if let Some(dir) = path.parent() {
                    listings.remove(dir.as_os_str());
                }
            }
            Change::Tree(dir) => {
                if let Some(parent) = dir.parent() {
                    listings.remove(parent.as_os_str());
                }
                listings.remove(dir.as_os_str());
                let mut below = dir.into_os_string();
                below.push("/");
                let below = below.as_encoded_bytes();
                map.retain(|path, entry| {
                    let keep = !path.as_encoded_bytes().starts_with(below);
                    if !keep {
                        *bytes -= entry.bytes.len();
                    }
                    keep
                });
                listings.retain(|path, _| !path.as_encoded_bytes().starts_with(below));
            }
            Change::All => {
                map.clear();
                *bytes = 0;
                listings.clear();
            }
        });
    }

    /// Empties the cache, watches and all.
    fn start_over(&mut self) {
        self.map.clear();
        self.bytes = 0;
        self.listings.clear();
        if let Some(watcher) = &mut self.watcher {
            watcher.forget_all();
        }
    }
}

#[cfg(test)]
mod tests;
