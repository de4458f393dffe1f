//! The static-file handler: path confinement, conditional requests, ranges, listings.

use std::fs::{File, Metadata, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use tracing::{debug, warn};

use super::body::{Body, FileStream, Segment};
use super::cache::{self, Cache};
use super::conn::Handler;
use super::listing;
use super::ranges::{self, Ranges};

/// Serves files below one directory.
#[derive(Debug)]
pub(crate) struct FileServer {
    /// The served directory, canonical (absolute, symlinks resolved).
    root: PathBuf,
    /// Follow symlinks that lead outside the root.
    follow_outside: bool,
    /// Log request targets, rewrites and headers.
    debug: bool,
    /// Small files, validated on every hit.
    cache: Cache,
}

impl FileServer {
    pub(crate) fn new(root: PathBuf, follow_outside: bool, debug: bool) -> Self {
        Self {
            root,
            follow_outside,
            debug,
            cache: Cache::default(),
        }
    }
}

/// Why a request path was refused before touching the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Parent,
    Backslash,
    Nul,
    Encoding,
}

impl Refused {
    fn reason(self) -> &'static str {
        match self {
            Refused::Parent => "'..' segment",
            Refused::Backslash => "backslash",
            Refused::Nul => "NUL byte",
            Refused::Encoding => "not a valid file name",
        }
    }
}

/// Turns a request path into a relative path below the root: percent-decoded, split on
/// `/` after decoding, `.` and empty segments dropped. `..`, backslashes and NUL bytes are
/// refused outright rather than normalised: no honest client sends them.
pub(crate) fn resolve(request_path: &str) -> Result<PathBuf, Refused> {
    let decoded: Vec<u8> = percent_decode_str(request_path).collect();
    if decoded.contains(&0) {
        return Err(Refused::Nul);
    }
    if decoded.contains(&b'\\') {
        return Err(Refused::Backslash);
    }
    let mut rel = PathBuf::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(Refused::Parent),
            name => rel.push(segment_name(name)?),
        }
    }
    // Belt and braces: whatever the platform makes of a segment, it must stay a plain name.
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Refused::Encoding);
    }
    Ok(rel)
}

#[cfg(unix)]
fn segment_name(bytes: &[u8]) -> Result<&std::ffi::OsStr, Refused> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn segment_name(bytes: &[u8]) -> Result<&std::ffi::OsStr, Refused> {
    std::str::from_utf8(bytes)
        .map(std::ffi::OsStr::new)
        .map_err(|_| Refused::Encoding)
}

impl Handler for FileServer {
    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let method = req.method();
        if method != Method::GET && method != Method::HEAD {
            let mut resp = status_page(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let head = method == Method::HEAD;
        let path = req.uri().path();
        if self.debug {
            debug!(target: "labserv::http", "{peer} request target {}", req.uri());
            for (name, value) in req.headers() {
                debug!(target: "labserv::http", "{peer} header {name}: {value:?}");
            }
        }
        let rel = match resolve(path) {
            Ok(rel) => rel,
            Err(why) => {
                warn!(target: "labserv::http", "{peer} refused path {path:?}: {}", why.reason());
                return status_page(StatusCode::BAD_REQUEST);
            }
        };
        let full = self.root.join(&rel);
        if self.debug {
            debug!(target: "labserv::http", "{peer} path {path:?} -> {}", full.display());
        }
        if !self.follow_outside && !self.inside_root(&full) {
            warn!(
                target: "labserv::http",
                "{peer} refused {path:?}: a symlink leads outside the served directory"
            );
            return status_page(StatusCode::NOT_FOUND);
        }
        let meta = match std::fs::metadata(&full) {
            Ok(meta) => meta,
            Err(e) => return error_page(&e, peer, &full),
        };
        if meta.is_dir() {
            return self.directory(&req, &full, head, peer).await;
        }
        if !meta.is_file() {
            // Devices, pipes and sockets are never served.
            return status_page(StatusCode::NOT_FOUND);
        }
        self.file(req.headers(), &full, &meta, head, peer)
    }
}

impl FileServer {
    /// Whether `full` (after resolving every symlink) is inside the root.
    fn inside_root(&self, full: &Path) -> bool {
        crate::fsio::within(&self.root, full)
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
                    let loaded = open(path).and_then(|(file, meta)| {
                        let bytes = read_small(file, meta.len())?;
                        Ok((bytes, meta))
                    });
                    let (bytes, meta) = match loaded {
                        Ok(pair) => pair,
                        Err(e) => return error_page(&e, peer, path),
                    };
                    self.cache.insert(path, &meta, bytes, content_type(path))
                }
            };
            let source = Source::Memory(entry.bytes.clone());
            return respond(req, source, &entry.validators, &entry.content_type, head);
        }
        let (file, meta) = match open(path) {
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
        req: &Request<hyper::body::Incoming>,
        dir: &Path,
        head: bool,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = req.uri().path();
        if !path.ends_with('/') {
            let location = match req.uri().query() {
                Some(q) => format!("{path}/?{q}"),
                None => format!("{path}/"),
            };
            let mut resp = status_page(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
        let index = dir.join("index.html");
        if (self.follow_outside || self.inside_root(&index))
            && let Ok(meta) = std::fs::metadata(&index)
            && meta.is_file()
        {
            return self.file(req.headers(), &index, &meta, head, peer);
        }
        let owned = dir.to_path_buf();
        let entries = match tokio::task::spawn_blocking(move || listing::read(&owned)).await {
            Ok(Ok(entries)) => entries,
            Ok(Err(e)) => return error_page(&e, peer, dir),
            Err(e) => return error_page(&io::Error::other(e), peer, dir),
        };
        let (text, content_type) = if wants_json(req) {
            (listing::json(path, &entries), "application/json")
        } else {
            (listing::html(path, &entries), "text/html; charset=utf-8")
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
fn wants_json(req: &Request<hyper::body::Incoming>) -> bool {
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

/// Opens a path without blocking on FIFOs, and reads its metadata from the handle.
fn open(path: &Path) -> io::Result<(File, Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
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

/// A short plain-text page for a status: `404 Not Found`.
pub(crate) fn status_page(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("");
    text_response(status, &format!("{} {reason}", status.as_u16()))
}

/// A `text/plain` response of one line.
pub(crate) fn text_response(status: StatusCode, line: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("{line}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
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

/// The validators of one version of a file, ready to send: a strong ETag from modification
/// time and size, and Last-Modified.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    len: u64,
    etag: HeaderValue,
    modified: Option<SystemTime>,
    last_modified: Option<HeaderValue>,
}

impl Validators {
    pub(crate) fn of(meta: &Metadata) -> Self {
        let modified = meta.modified().ok();
        let stamp = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = HeaderValue::from_str(&format!("\"{stamp:x}-{:x}\"", meta.len()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        let last_modified =
            modified.and_then(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)).ok());
        Self {
            len: meta.len(),
            etag,
            modified,
            last_modified,
        }
    }

    /// Whether a list of entity tags (`If-None-Match`, `If-Match`) names this file.
    fn listed_in(&self, value: &HeaderValue, weak_ok: bool) -> bool {
        let Ok(list) = value.to_str() else {
            return false;
        };
        let ours = self.etag.as_bytes();
        list.split(',').map(str::trim).any(|tag| {
            if tag == "*" {
                return true;
            }
            match tag.strip_prefix("W/") {
                Some(weak) => weak_ok && weak.as_bytes() == ours,
                None => tag.as_bytes() == ours,
            }
        })
    }

    /// Whether the file is unchanged since an HTTP date (one-second resolution).
    fn unchanged_since(&self, value: &HeaderValue) -> bool {
        let (Some(modified), Some(since)) = (
            self.modified,
            value
                .to_str()
                .ok()
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        ) else {
            return false;
        };
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        secs(modified) <= secs(since)
    }

    /// If-Range: a strong ETag equal to ours, or a date equal to Last-Modified.
    fn if_range_holds(&self, value: &HeaderValue) -> bool {
        let Ok(v) = value.to_str() else {
            return false;
        };
        let v = v.trim();
        if v.starts_with('"') {
            return v.as_bytes() == self.etag.as_bytes();
        }
        match (&self.last_modified, httpdate::parse_http_date(v)) {
            (Some(lm), Ok(d)) => lm.as_bytes() == httpdate::fmt_http_date(d).as_bytes(),
            _ => false,
        }
    }

    fn insert(&self, h: &mut HeaderMap) {
        h.insert(header::ETAG, self.etag.clone());
        if let Some(lm) = &self.last_modified {
            h.insert(header::LAST_MODIFIED, lm.clone());
        }
    }
}

/// Where a file's bytes come from.
enum Source {
    /// The whole file, already in memory.
    Memory(Bytes),
    /// An open file, streamed.
    File(File),
}

impl Source {
    /// The bytes of `range`, as a body.
    fn body(self, range: std::ops::Range<u64>) -> Body {
        match self {
            Source::Memory(bytes) => Body::full(slice(&bytes, &range)),
            Source::File(file) => Body::File(FileStream::new(
                Some(file),
                vec![Segment::File {
                    offset: range.start,
                    len: range.end - range.start,
                }],
            )),
        }
    }
}

fn slice(bytes: &Bytes, range: &std::ops::Range<u64>) -> Bytes {
    let start = usize::try_from(range.start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    bytes.slice(start..end.max(start))
}

/// Answers a GET or HEAD for one version of a file: 304, 412, 200, 206 or 416.
fn respond(
    req: &HeaderMap,
    source: Source,
    validators: &Validators,
    content_type: &HeaderValue,
    head: bool,
) -> Response<Body> {
    let len = validators.len;
    if let Some(v) = req.get(header::IF_MATCH)
        && !validators.listed_in(v, false)
    {
        return status_page(StatusCode::PRECONDITION_FAILED);
    }
    let not_modified = match req.get(header::IF_NONE_MATCH) {
        Some(v) => validators.listed_in(v, true),
        None => req
            .get(header::IF_MODIFIED_SINCE)
            .is_some_and(|v| validators.unchanged_since(v)),
    };
    if not_modified {
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        validators.insert(resp.headers_mut());
        return resp;
    }
    let ranges = match req.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        Some(r)
            if req
                .get(header::IF_RANGE)
                .is_none_or(|v| validators.if_range_holds(v)) =>
        {
            ranges::parse(r, len)
        }
        _ => Ranges::Whole,
    };
    let (status, body_len, body, content_type) = match ranges {
        Ranges::Whole => {
            let body = if head {
                Body::Empty
            } else {
                source.body(0..len)
            };
            (StatusCode::OK, len, body, content_type.clone())
        }
        Ranges::Unsatisfiable => {
            let mut resp = status_page(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
        Ranges::Partial(list) if list.len() == 1 => {
            let r = list[0].clone();
            let mut resp = Response::new(if head {
                Body::Empty
            } else {
                source.body(r.clone())
            });
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type.clone());
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
            {
                h.insert(header::CONTENT_RANGE, v);
            }
            validators.insert(h);
            return resp;
        }
        Ranges::Partial(list) => {
            let (stream, multipart) = multipart(source, &list, len, content_type);
            let total = stream.len();
            let body = if head {
                Body::Empty
            } else {
                Body::File(stream)
            };
            (StatusCode::PARTIAL_CONTENT, total, body, multipart)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    validators.insert(h);
    resp
}

/// A `multipart/byteranges` body for several ranges, and its Content-Type.
fn multipart(
    source: Source,
    list: &[std::ops::Range<u64>],
    len: u64,
    content_type: &HeaderValue,
) -> (FileStream, HeaderValue) {
    let boundary = format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    );
    let part_type = content_type.to_str().unwrap_or("application/octet-stream");
    let mut segments = Vec::with_capacity(list.len() * 2 + 1);
    let (file, memory) = match source {
        Source::File(file) => (Some(file), None),
        Source::Memory(bytes) => (None, Some(bytes)),
    };
    for r in list {
        let part_head = format!(
            "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            r.start,
            r.end - 1
        );
        segments.push(Segment::Bytes(Bytes::from(part_head)));
        segments.push(match &memory {
            Some(bytes) => Segment::Bytes(slice(bytes, r)),
            None => Segment::File {
                offset: r.start,
                len: r.end - r.start,
            },
        });
    }
    segments.push(Segment::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    let header = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
        .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges"));
    (FileStream::new(file, segments), header)
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

    #[test]
    fn plain_paths_resolve_below_the_root() {
        assert_eq!(resolve("/").unwrap(), PathBuf::new());
        assert_eq!(
            resolve("/fw/update.img").unwrap(),
            PathBuf::from("fw/update.img")
        );
        assert_eq!(resolve("//a/./b//").unwrap(), PathBuf::from("a/b"));
        assert_eq!(
            resolve("/my%20file.bin").unwrap(),
            PathBuf::from("my file.bin")
        );
        // An encoded slash is a separator after decoding, never part of a name.
        assert_eq!(resolve("/a%2Fb").unwrap(), PathBuf::from("a/b"));
    }

    #[test]
    fn hostile_paths_are_refused() {
        for (p, why) in [
            ("/../etc/passwd", Refused::Parent),
            ("/a/../../x", Refused::Parent),
            ("/%2e%2e/etc/passwd", Refused::Parent),
            ("/%2E%2E%2Fetc", Refused::Parent),
            ("/..%2f..%2fetc", Refused::Parent),
            ("/a\\..\\b", Refused::Backslash),
            ("/a%5c..%5cb", Refused::Backslash),
            ("/fw.img%00.txt", Refused::Nul),
        ] {
            assert_eq!(resolve(p), Err(why), "{p}");
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
