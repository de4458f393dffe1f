//! `GET file?sha256`: a file's checksum, computed once for each version of the file.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::{Response, StatusCode};
use tracing::debug;

use super::{error_page, open};
use crate::server::Body;

/// A file's version as a checksum is kept for: size and modification time, read from
/// the open file.
type Version = (u64, Option<std::time::SystemTime>);

/// The checksums computed so far, by path, each with the version it is of. At most
/// [`KEPT_SUMS`] are kept; past that the table starts over.
static SUMS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, (Version, String)>>> =
    std::sync::Mutex::new(None);

/// How many checksums are kept (a few hundred KiB at most).
const KEPT_SUMS: usize = 4096;

/// The kept checksum of `path` at `version`, if any.
fn kept_sum(path: &Path, version: Version) -> Option<String> {
    let sums = SUMS.lock().ok()?;
    let (kept, hex) = sums.as_ref()?.get(path)?;
    (*kept == version).then(|| hex.clone())
}

/// Keeps the checksum of `path` at `version`.
fn keep_sum(path: PathBuf, version: Version, hex: String) {
    if let Ok(mut sums) = SUMS.lock() {
        let sums = sums.get_or_insert_with(Default::default);
        if sums.len() >= KEPT_SUMS {
            sums.clear();
        }
        sums.insert(path, (version, hex));
    }
}

/// `GET file?sha256`: the file's SHA-256 in `sha256sum`'s format, computed once for each
/// version of the file (its size and modification time) and kept.
pub(super) async fn sha256_of(
    beneath: Option<PathBuf>,
    path: PathBuf,
    name: &[u8],
    head: bool,
    peer: SocketAddr,
) -> Response<Body> {
    let shown = String::from_utf8_lossy(name)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let hashed = tokio::task::spawn_blocking(move || -> io::Result<String> {
        let (mut file, meta) = open(beneath.as_deref(), &path)?;
        let version = (meta.len(), meta.modified().ok());
        if let Some(hex) = kept_sum(&path, version) {
            return Ok(hex);
        }
        let started = std::time::Instant::now();
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        let hex = crate::human::hex(hash.finish().as_ref());
        debug!(
            target: "labserv::http",
            "sha256 of {} computed in {:?}", path.display(), started.elapsed()
        );
        keep_sum(path, version, hex.clone());
        Ok(hex)
    })
    .await;
    match hashed {
        Ok(Ok(hex)) => {
            let mut resp = crate::server::text_response(StatusCode::OK, &format!("{hex}  {shown}"));
            if head {
                *resp.body_mut() = Body::Empty;
            }
            resp
        }
        Ok(Err(e)) => error_page(&e, peer, Path::new(&shown)),
        Err(e) => error_page(&io::Error::other(e), peer, Path::new(&shown)),
    }
}
