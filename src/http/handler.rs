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
const FAVICON: &[u8] = include_bytes!("page/favicon.png");

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

    async fn directory(
        &self,
        req: &Request<crate::server::Inbound>,
        name: &[u8],
        dir: &Path,
        head: bool,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = req.uri().path();
        if !path.ends_with('/') {
            // Relative to the request (`./name/`), so that `//evil.example` can never
            // become a redirect to another host, nor `a:b` a scheme.
            let last = path.rsplit('/').next().unwrap_or_default();
            let location = match req.uri().query() {
                Some(q) => format!("./{last}/?{q}"),
                None => format!("./{last}/"),
            };
            let mut resp = status_page(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
        let index_name = [name, b"/index.html"].concat();
        if self.rules.shows_name(&index_name, false)
            && let Ok(index) = confine(&self.root, &index_name, self.symlinks)
            && let Ok(meta) = std::fs::metadata(&index)
            && meta.is_file()
        {
            return self.file(req.headers(), &index, &meta, head, peer);
        }
        let owned = dir.to_path_buf();
        let sort = listing::Sort::from_query(req.uri().query());
        let json = wants_json(req);
        let upload = self.uploads.is_some();
        let dotfiles = self.dotfiles;
        let rules = (!self.rules.is_empty()).then(|| (self.rules.clone(), name.to_vec()));
        let url_path = path.to_string();
        // Entries kept since an earlier listing, if watches vouch for them (asked here, on
        // the event loop that has seen the events).
        let kept = self.cache.listing(dir);
        let cache = self.cache.clone();
        let root = self.root.clone();
        // Read (or looked at again), sorted and written out in one go off the runtime.
        let render = move || -> io::Result<String> {
            let read;
            let entries = match &kept {
                Some(listed) => listing::refresh(&owned, listed)?,
                None => {
                    let prepared = cache.prepare_listing(&root, &owned);
                    read = Arc::new(listing::read(&owned)?);
                    cache.keep_listing(&owned, read.clone(), prepared);
                    Cow::Borrowed(read.entries.as_slice())
                }
            };
            let mut ordered = sort.order(&entries, !json);
            if !dotfiles {
                ordered.retain(|e| !e.name.starts_with('.'));
            }
            if let Some((rules, dir)) = &rules {
                ordered.retain(|e| {
                    let name = [dir.as_slice(), b"/", e.name.as_bytes()].concat();
                    rules.shows_name(&name, e.kind == listing::Kind::Dir)
                });
            }
            Ok(if json {
                listing::json(&url_path, &ordered)
            } else {
                listing::html(&url_path, &ordered, sort, upload)
            })
        };
        let text = match tokio::task::spawn_blocking(render).await {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => return error_page(&e, peer, dir),
            Err(e) => return error_page(&io::Error::other(e), peer, dir),
        };
        let content_type = if json {
            "application/json"
        } else {
            "text/html; charset=utf-8"
        };
        let len = text.len() as u64;
        let mut resp = Response::new(if head { Body::Empty } else { Body::full(text) });
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        resp
    }
}

/// JSON when asked for by `?format=json` or an Accept header naming application/json.
fn wants_json(req: &Request<crate::server::Inbound>) -> bool {
    let by_query = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "format=json"));
    let by_accept = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    by_query || by_accept
}

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
async fn sha256_of(
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
mod tests {
    use super::*;

    fn decoded(path: &str) -> Result<PathBuf, Refused> {
        let root = Path::new("/srv/fw");
        confine(root, &decode_path(path), Symlinks::Follow)
            .map(|full| full.strip_prefix(root).unwrap().to_path_buf())
    }

    // The plain rules are confine's (its tests); these are what percent-decoding adds.
    #[test]
    fn encoded_names_are_decoded_before_they_are_confined() {
        assert_eq!(decoded("/").unwrap(), PathBuf::new());
        assert_eq!(
            decoded("/my%20file.bin").unwrap(),
            PathBuf::from("my file.bin")
        );
        // An encoded slash is a separator after decoding, never part of a name.
        assert_eq!(decoded("/a%2Fb").unwrap(), PathBuf::from("a/b"));
        for (p, why) in [
            ("/%2e%2e/etc/passwd", Refused::Parent),
            ("/%2E%2E%2Fetc", Refused::Parent),
            ("/..%2f..%2fetc", Refused::Parent),
            ("/a%5c..%5cb", Refused::Backslash),
            ("/fw.img%00.txt", Refused::Nul),
        ] {
            assert_eq!(decoded(p), Err(why), "{p}");
        }
    }

    #[test]
    fn text_types_carry_charset_and_unknown_is_octet_stream() {
        assert_eq!(
            content_type(Path::new("a.txt")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("fw.zzzunknown")),
            "application/octet-stream"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
