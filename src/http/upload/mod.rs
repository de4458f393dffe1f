//! Uploads into the served tree (`serv --upload`): `PUT` of one file, or a `POST` of a
//! multipart form (the listing page's form, `curl -F`). Each file lands whole through
//! [`Landing`] or not at all, and its size and SHA-256 are answered and logged.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::server::Inbound as Incoming;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use super::decode_path;
use super::rules::FileRules;
use crate::confine::{Symlinks, confine};
use crate::landing::{Landing, Room};
use crate::server::{Body, text_response};

mod form;

pub(crate) use form::post;

/// How uploads are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploads {
    /// An existing file may be replaced (else 409).
    pub overwrite: bool,
    /// The largest file taken, in bytes (413 past it).
    pub max_size: u64,
    /// Take writes from browser pages of other origins (`--cross-site-uploads`).
    pub cross_site: bool,
    /// The free space uploads leave on the disk (see [`Room::min_free`]).
    pub min_free: Option<u64>,
}

impl Uploads {
    fn room(self) -> Room {
        Room {
            max_size: self.max_size,
            min_free: self.min_free,
        }
    }
}

/// Whether a browser sent `req` from a page of another origin: its `Sec-Fetch-Site` says
/// so, or its `Origin` is not the host it was sent to. curl and scripts send neither.
pub(crate) fn cross_site<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = crate::server::gate::request_host(req);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.as_bytes().eq_ignore_ascii_case(h),
        _ => true,
    }
}

/// Default for [`Uploads::max_size`].
pub const DEFAULT_MAX_UPLOAD: u64 = crate::landing::DEFAULT_MAX_UPLOAD;

/// Why an upload was not stored, as the client is told.
#[derive(Debug)]
pub(crate) struct Failed(StatusCode, String);

impl Failed {
    fn new(status: StatusCode, why: impl Into<String>) -> Self {
        Self(status, why.into())
    }

    pub(crate) fn response(self) -> Response<Body> {
        text_response(self.0, &self.1)
    }
}

/// A file stored: where, how big, its SHA-256.
struct Stored {
    name: String,
    size: u64,
    sha256: String,
    replaced: bool,
}

impl Stored {
    fn line(&self) -> String {
        format!(
            "stored {} ({} bytes, sha256 {})",
            self.name, self.size, self.sha256
        )
    }
}

/// `PUT /dir/name`: the body becomes that file; missing directories inside the root are
/// made.
pub(crate) async fn put(
    root: &Path,
    uploads: Uploads,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.ends_with('/') {
        return super::folders::make(root, &path, peer).await;
    }
    // Never over another upload's temporary file, whatever --dotfiles says.
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.starts_with('.') && last.ends_with(".part") {
        return text_response(
            StatusCode::BAD_REQUEST,
            "refused: the form of an upload's temporary file",
        );
    }
    if let Some(len) = declared_len(&req)
        && len > uploads.max_size
    {
        return too_large(uploads, peer, &path).response();
    }
    let target = match target(root, &decode_path(&path), peer) {
        Ok(target) => target,
        Err(failed) => return failed.response(),
    };
    let announced = declared_len(&req);
    let body = req.into_body();
    let chunks = body.into_data_stream();
    let result = store(root, target, &path, uploads, announced, chunks, peer).await;
    match result {
        Ok(stored) => {
            let status = if stored.replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let mut resp = text_response(status, &stored.line());
            if let Ok(value) = HeaderValue::from_str(&stored.sha256) {
                resp.headers_mut().insert("x-sha256", value);
            }
            resp
        }
        Err(failed) => failed.response(),
    }
}

/// The path an upload to `name` goes to, through the one confinement rule (symlinks must
/// stay inside the root, whatever `--no-follow-symlinks` says for reads).
pub(crate) fn target(root: &Path, name: &[u8], peer: SocketAddr) -> Result<PathBuf, Failed> {
    confine(root, name, Symlinks::StayInside).map_err(|why| {
        warn!(
            target: "labserv::http",
            "{peer} refused upload to {:?}: {}", String::from_utf8_lossy(name), why.reason()
        );
        Failed::new(
            StatusCode::BAD_REQUEST,
            format!("refused: {}", why.reason()),
        )
    })
}

fn declared_len(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn too_large(uploads: Uploads, peer: SocketAddr, path: &str) -> Failed {
    warn!(target: "labserv::http", "{peer} upload to {path} refused: larger than --max-upload");
    Failed::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "larger than the {} bytes --max-upload allows",
            uploads.max_size
        ),
    )
}

/// Streams `chunks` into a new file landing at `target`, hashing as it goes.
async fn store<S, E>(
    root: &Path,
    target: PathBuf,
    shown: &str,
    uploads: Uploads,
    announced: Option<u64>,
    mut chunks: S,
    peer: SocketAddr,
) -> Result<Stored, Failed>
where
    S: futures_lite::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures_lite::StreamExt;
    if target.is_dir() {
        return Err(Failed::new(
            StatusCode::CONFLICT,
            "a directory has that name",
        ));
    }
    let replaced = target.exists();
    let overwrite = uploads.overwrite;
    let root = root.to_path_buf();
    let begin =
        tokio::task::spawn_blocking(move || Landing::begin(&root, &target, overwrite, true))
            .await
            .map_err(|e| Failed::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let room = uploads.room();
    let begun = begin.and_then(|(landing, file)| {
        landing.make_room(&room, announced)?;
        Ok((landing, file))
    });
    let (landing, file) = begun.map_err(|e| {
        let status = match e.kind() {
            io::ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            _ => write_status(&e),
        };
        warn!(target: "labserv::http", "{peer} upload to {shown} refused: {e}");
        Failed::new(status, e.to_string())
    })?;
    let dir = landing.dir().to_path_buf();
    let mut writeback =
        Some(crate::landing::Writeback::new(&file).map_err(|e| write_failed(&e, peer, shown))?);
    let mut file = tokio::fs::File::from_std(file);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut size = 0u64;
    // How much was written when free space was last looked at.
    let mut checked = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            warn!(target: "labserv::http", "{peer} upload to {shown} cut short, nothing stored: {e}");
            Failed::new(StatusCode::BAD_REQUEST, "the upload was cut short; nothing stored")
        })?;
        size += chunk.len() as u64;
        if size > uploads.max_size {
            return Err(too_large(uploads, peer, shown));
        }
        hash.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| write_failed(&e, peer, shown))?;
        if size - checked >= crate::landing::STEP
            && let Some(mut started) = writeback.take()
        {
            // What was written is in the file before the disk is asked to write it.
            file.flush()
                .await
                .map_err(|e| write_failed(&e, peer, shown))?;
            let dir = dir.clone();
            let advanced = tokio::task::spawn_blocking(move || {
                room.check(&dir, 0)?;
                started.advance(size);
                Ok(started)
            });
            let advanced = advanced.await.map_err(io::Error::other).flatten();
            writeback = Some(advanced.map_err(|e| write_failed(&e, peer, shown))?);
            checked = size;
        }
    }
    file.flush()
        .await
        .map_err(|e| write_failed(&e, peer, shown))?;
    drop(file);
    tokio::task::spawn_blocking(move || landing.land())
        .await
        .map_err(|e| Failed::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Failed::new(
                    StatusCode::CONFLICT,
                    "the file appeared meanwhile; not replaced",
                )
            } else {
                write_failed(&e, peer, shown)
            }
        })?;
    let sha256 = crate::human::hex(hash.finish().as_ref());
    info!(target: "labserv::http", "{peer} stored {shown}: {size} bytes, sha256 {sha256}");
    Ok(Stored {
        name: shown.to_string(),
        size,
        sha256,
        replaced,
    })
}

/// 507 for a full disk or quota, 500 otherwise.
fn write_status(e: &io::Error) -> StatusCode {
    if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
        return StatusCode::INSUFFICIENT_STORAGE;
    }
    match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::ENOSPC | libc::EDQUOT) => StatusCode::INSUFFICIENT_STORAGE,
        _ if e.kind() == io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn write_failed(e: &io::Error, peer: SocketAddr, shown: &str) -> Failed {
    warn!(target: "labserv::http", "{peer} upload to {shown} failed, nothing stored: {e}");
    let status = write_status(e);
    let why = if status == StatusCode::INSUFFICIENT_STORAGE {
        "no space left on the server; nothing stored".to_string()
    } else {
        format!("could not store the file: {e}")
    };
    Failed::new(status, why)
}

#[cfg(test)]
mod tests;
