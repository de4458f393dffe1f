//! The static-file handler: from a request to a file, a directory listing or an error
//! page. Paths go through [`confine`]; replies are built in [`super::reply`].

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tracing::{debug, warn};

use super::cache::{self, Cache, Cached};
use super::decode_path;
use super::folders;
use super::listing;
use super::reply::{Source, respond};
use super::rules::FileRules;
use super::upload::{self, Uploads};
use super::validators::Validators;
use crate::confine::{Refused, Symlinks, confine};
use crate::server::conn::Handler;
use crate::server::{Body, status_page};

mod directory;
mod sums;

use sums::sha256_of;

/// Serves files below one directory.
#[derive(Debug)]
pub(crate) struct FileServer {
    /// The served directory, canonical (absolute, symlinks resolved).
    root: PathBuf,
    /// Whether symlinks may lead outside the root.
    symlinks: Symlinks,
    /// Log request targets, rewrites and headers.
    debug: bool,
    /// Small files and directories' entries, never answered from once changed (see
    /// `cache`). Shared with the blocking threads that make listings.
    cache: Arc<Cache>,
    /// Take uploads; `None` is read-only.
    uploads: Option<Uploads>,
    /// List and serve dot-names (`--dotfiles`).
    dotfiles: bool,
    /// Which names are shown and taken (`--only`, `--hide`, `--read-only`).
    rules: Arc<FileRules>,
}

impl FileServer {
    pub(crate) fn new(
        root: PathBuf,
        symlinks: Symlinks,
        debug: bool,
        uploads: Option<Uploads>,
        dotfiles: bool,
        rules: FileRules,
    ) -> Self {
        Self {
            root,
            symlinks,
            debug,
            cache: Arc::new(Cache::new()),
            uploads,
            dotfiles,
            rules: Arc::new(rules),
        }
    }
}

/// Whether a decoded path has a segment that starts with a dot (`.git`, `.ssh/id_rsa`,
/// an upload's temporary `.fw.img.41-3.part`).
pub(crate) fn has_dot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/')
        .any(|segment| segment.first() == Some(&b'.') && segment != b"." && segment != b"..")
}

impl Handler for FileServer {
    // Files, listings and checksums: nothing here waits on anyone but the disk.
    const MAY_THINK: bool = false;

    // The rarer answers (uploads, listings, checksums) are boxed. A future is as large as
    // the largest thing it awaits, and hyper moves each request's future into place: with
    // them inline, every file request built and copied 4.5 KiB; boxed, 1.6 KiB.
    async fn handle(
        &self,
        req: Request<crate::server::Inbound>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let method = req.method();
        if let Some(uploads) = self.uploads {
            let write = method == Method::PUT
                || method == Method::POST
                || method == Method::DELETE
                || method.as_str() == "MKCOL";
            if write && !self.dotfiles && has_dot_segment(&decode_path(req.uri().path())) {
                warn!(
                    target: "labserv::http",
                    "{peer} {method} {}: refused a dot-name (--dotfiles allows it)",
                    req.uri().path()
                );
                return status_page(StatusCode::NOT_FOUND);
            }
            if write && !uploads.cross_site && upload::cross_site(&req) {
                warn!(
                    target: "labserv::http",
                    "{peer} {method} {}: refused a write from another site's page \
                     (--cross-site-uploads allows it)",
                    req.uri().path()
                );
                return crate::server::text_response(
                    StatusCode::FORBIDDEN,
                    "writes from other sites' pages are refused",
                );
            }
            if write {
                let path = req.uri().path();
                let folder = path.ends_with('/') || method == Method::POST;
                if let Some(why) = self.rules.refuses_write_to(&decode_path(path), folder) {
                    warn!(target: "labserv::http", "{peer} {method} {path}: refused, {why}");
                    return crate::server::text_response(
                        StatusCode::FORBIDDEN,
                        &format!("refused: {why}"),
                    );
                }
            }
            if method == Method::PUT {
                return Box::pin(upload::put(&self.root, uploads, req, peer)).await;
            }
            if method == Method::POST {
                let rules = &self.rules;
                return Box::pin(upload::post(&self.root, uploads, rules, req, peer)).await;
            }
            if method == Method::DELETE {
                let (path, query) = (req.uri().path(), req.uri().query());
                return Box::pin(folders::delete(&self.root, path, query, peer)).await;
            }
            if method.as_str() == "MKCOL" {
                return Box::pin(folders::make(&self.root, req.uri().path(), peer)).await;
            }
        }
        if method != Method::GET && method != Method::HEAD {
            let mut resp = status_page(StatusCode::METHOD_NOT_ALLOWED);
            let allow = if self.uploads.is_some() {
                super::WRITE_METHODS
            } else {
                "GET, HEAD"
            };
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return resp;
        }
        let head = method == Method::HEAD;
        let path = req.uri().path();
        if self.debug {
            debug!(target: "labserv::http", "{peer} request target {}", req.uri());
            for (name, value) in req.headers() {
                // Secrets never reach the log, which others may be shown.
                if matches!(
                    name.as_str(),
                    "authorization" | "proxy-authorization" | "cookie"
                ) {
                    debug!(target: "labserv::http", "{peer} header {name}: (redacted)");
                } else {
                    debug!(target: "labserv::http", "{peer} header {name}: {value:?}");
                }
            }
        }
        let name = decode_path(path);
        if !self.dotfiles && has_dot_segment(&name) {
            // `.git`, `.ssh`, a key: as if not there.
            return status_page(StatusCode::NOT_FOUND);
        }
        let full = match confine(&self.root, &name, self.symlinks) {
            Ok(full) => full,
            Err(Refused::Outside) => {
                warn!(
                    target: "labserv::http",
                    "{peer} refused {path:?}: a symlink leads outside the served directory"
                );
                return status_page(StatusCode::NOT_FOUND);
            }
            Err(why) => {
                warn!(target: "labserv::http", "{peer} refused path {path:?}: {}", why.reason());
                return status_page(StatusCode::BAD_REQUEST);
            }
        };
        if self.debug {
            debug!(target: "labserv::http", "{peer} path {path:?} -> {}", full.display());
        }
        let checksum = req.uri().query() == Some("sha256");
        // A file that watches vouch for is answered without asking the file system.
        if !checksum
            && self.rules.shows_name(&name, false)
            && let Some(entry) = self.cache.vouched(&full)
        {
            return from_cache(req.headers(), &entry, head);
        }
        let meta = match std::fs::metadata(&full) {
            Ok(meta) => meta,
            // Browsers ask for it on every page: a folder without one gets labserv's.
            Err(e) if path == "/favicon.ico" && e.kind() == std::io::ErrorKind::NotFound => {
                return builtin_favicon(head);
            }
            Err(e) => return error_page(&e, peer, &full),
        };
        if !self.rules.shows_name(&name, meta.is_dir()) {
            return status_page(StatusCode::NOT_FOUND);
        }
        if meta.is_dir() {
            return Box::pin(self.directory(&req, &name, &full, head, peer)).await;
        }
        if !meta.is_file() {
            // Devices, pipes and sockets are never served.
            return status_page(StatusCode::NOT_FOUND);
        }
        if checksum {
            let beneath = self.beneath().map(Path::to_path_buf);
            return Box::pin(sha256_of(beneath, full, &name, head, peer)).await;
        }
        let mut resp = self.file(req.headers(), &full, &meta, head, peer);
        if self.uploads.is_some() {
            writable_root_guard(&mut resp);
        }
        resp
    }
}

/// The icon a browser gets for `/favicon.ico` when the served folder has none.
const FAVICON: &[u8] = include_bytes!("../page/favicon.png");

/// [`FAVICON`], which browsers may keep for a day.
fn builtin_favicon(head: bool) -> Response<Body> {
    let mut resp = Response::new(Body::full(if head { &[][..] } else { FAVICON }));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(FAVICON.len()));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

impl FileServer {
    /// The root files must be opened beneath, when symlinks must stay inside it.
    fn beneath(&self) -> Option<&Path> {
        (self.symlinks == Symlinks::StayInside).then_some(&*self.root)
    }

    /// Answers for a regular file: small ones from the cache, large ones streamed.
    fn file(
        &self,
        req: &HeaderMap,
        path: &Path,
        meta: &Metadata,
        head: bool,
        peer: SocketAddr,
    ) -> Response<Body> {
        if meta.len() <= cache::MAX_FILE {
            let entry = match self.cache.get(path, meta) {
                Some(entry) => entry,
                None => {
                    let prepared = self.cache.prepare(&self.root, path);
                    let loaded = open(self.beneath(), path).and_then(|(file, meta)| {
                        let bytes = read_small(file, meta.len())?;
                        Ok((bytes, meta))
                    });
                    let (bytes, meta) = match loaded {
                        Ok(pair) => pair,
                        Err(e) => return error_page(&e, peer, path),
                    };
                    self.cache
                        .insert(path, &meta, bytes, content_type(path), prepared)
                }
            };
            return from_cache(req, &entry, head);
        }
        let (file, meta) = match open(self.beneath(), path) {
            Ok(pair) => pair,
            Err(e) => return error_page(&e, peer, path),
        };
        if !meta.is_file() {
            return status_page(StatusCode::NOT_FOUND);
        }
        let validators = Validators::of(&meta);
        respond(
            req,
            Source::File(file),
            &validators,
            &content_type(path),
            head,
        )
    }
}

/// What a file from a root others may write to is sent with: never sniffed into another
/// type, and an uploaded HTML page runs sandboxed (no scripts, no same-origin access), so
/// a planted page cannot act as this server's own.
fn writable_root_guard(resp: &mut Response<Body>) {
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

/// Answers from a cached copy.
fn from_cache(req: &HeaderMap, entry: &Cached, head: bool) -> Response<Body> {
    let source = Source::Memory(entry.bytes.clone());
    respond(req, source, &entry.validators, &entry.content_type, head)
}

/// Opens a path without blocking on FIFOs, and reads its metadata from the handle. With
/// a `beneath` root (symlinks must stay inside it), opened so that no symlink swapped in
/// since the check can lead outside (see [`crate::confine::open_file`]).
fn open(beneath: Option<&Path>, path: &Path) -> io::Result<(File, Metadata)> {
    let file = match beneath {
        Some(root) => crate::confine::open_file(root, path)?,
        None => crate::fsio::open_nonblocking(path)?,
    };
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// 404 for what is not there, 403 for what may not be read, 500 (logged) for the rest.
fn error_page(e: &io::Error, peer: SocketAddr, path: &Path) -> Response<Body> {
    let status = match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ if e.raw_os_error() == Some(libc::ELOOP) => StatusCode::NOT_FOUND,
        _ if e.raw_os_error() == Some(libc::ENAMETOOLONG) => StatusCode::NOT_FOUND,
        _ => {
            warn!(target: "labserv::http", "{peer} cannot read {}: {e}", path.display());
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    status_page(status)
}

/// The Content-Type for a file name, from the built-in table; text gets `charset=utf-8`.
pub(crate) fn content_type(path: &Path) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(path).first_raw() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    let textual = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if textual {
        HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static(mime)
    }
}

/// Reads a small file whole. A file that changed size since it was opened is an error.
fn read_small(mut file: File, len: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&mut file).take(len + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(io::Error::other("file changed size while it was read"));
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests;
