//! A small-file cache validated on every request.
//!
//! Most requests in a lab are for small files fetched again and again (manifests, update
//! descriptors, index pages). For those, one `stat` replaces open + read + close, and the
//! response headers are prepared once. Every hit is checked against the file's device,
//! inode, size, modification and change times, so a replaced or rewritten file is seen
//! on the very next request. Files changed within the last [`SETTLE`] are not cached: the
//! kernel stamps times with a coarse clock, and a same-size rewrite inside one tick would
//! otherwise look unchanged.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderValue;

use super::validators::Validators;

/// Files at most this large are cached.
pub(crate) const MAX_FILE: u64 = 64 * 1024;
/// Cached bytes at most; past it the cache starts over.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Cached files at most; past it the cache starts over.
const MAX_ENTRIES: usize = 4096;
/// How long a file must have been left alone before it is cached.
const SETTLE: Duration = Duration::from_secs(1);

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
    identity: Identity,
    pub(crate) bytes: Bytes,
    pub(crate) validators: Validators,
    pub(crate) content_type: HeaderValue,
}

/// The cache: full path to the last version of the file seen there. Paths are keyed by
/// their bytes: hashing a `Path` walks its components, and these come from `confine`,
/// already in one normal form.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<OsString, Arc<Cached>>,
    bytes: usize,
}

impl Cache {
    /// The cached copy of `path` if it is still the file that `meta` describes.
    pub(crate) fn get(&self, path: &Path, meta: &Metadata) -> Option<Arc<Cached>> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = inner.map.get(path.as_os_str())?;
        (hit.identity == Identity::of(meta)).then(|| hit.clone())
    }

    /// Caches `bytes` as the content of `path` described by `meta`, if the file has settled.
    /// Returns the entry either way, so the caller can answer from it.
    pub(crate) fn insert(
        &self,
        path: &Path,
        meta: &Metadata,
        bytes: Bytes,
        content_type: HeaderValue,
    ) -> Arc<Cached> {
        let identity = Identity::of(meta);
        let settled = identity.settled(SystemTime::now());
        let entry = Arc::new(Cached {
            identity,
            validators: Validators::of(meta),
            bytes,
            content_type,
        });
        if settled {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.map.len() >= MAX_ENTRIES || inner.bytes + entry.bytes.len() > MAX_BYTES {
                inner.map.clear();
                inner.bytes = 0;
            }
            inner.bytes += entry.bytes.len();
            if let Some(old) = inner.map.insert(path.as_os_str().to_owned(), entry.clone()) {
                inner.bytes -= old.bytes.len();
            }
        }
        entry
    }
}
