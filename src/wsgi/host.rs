//! Serving an [`App`](super::App) over HTTP with labserv's connection handling.

use std::net::SocketAddr;
use std::sync::Arc;

use super::variables::cgi_variables;
use crate::server::Inbound as Incoming;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::spool::{Body as Input, Spool};
use super::{ClientGone, Environ, SharedApp, StartResponse};
use crate::error::{Error, Result};
use crate::server::conn::Handler;
use crate::server::text_response as plain;
use crate::server::tls::Tls;
use crate::server::{Body, HttpOptions};
use crate::shutdown::Shutdown;

/// Default for [`WsgiConfig::max_body`]: 64 MiB.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;

/// How the app host serves.
#[derive(Debug, Clone)]
pub struct WsgiConfig {
    /// Request bodies larger than this get 413.
    pub max_body: u64,
    /// Limits, HTTPS, faults and access, as for the file server.
    pub http: HttpOptions,
    /// Check what apps send (status, headers, Content-Type, Content-Length); a violation
    /// gets the client a 500 and a log line.
    pub validate: bool,
}

impl Default for WsgiConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            http: HttpOptions::default(),
            validate: true,
        }
    }
}

/// Serves `app` on `listener` (over HTTPS with `tls`, loaded from `config.http.tls`)
/// until `shutdown` is triggered.
///
/// # Errors
/// Only if the listener's address cannot be read.
pub async fn serve(
    listener: TcpListener,
    app: SharedApp,
    config: WsgiConfig,
    tls: Option<Tls>,
    shutdown: Shutdown,
) -> Result<()> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let host = Arc::new(AppHost {
        app,
        max_body: config.max_body,
        validate: config.validate,
        local,
    });
    crate::server::conn::run(listener, host, config.http, tls, shutdown).await;
    Ok(())
}

struct AppHost {
    app: SharedApp,
    max_body: u64,
    validate: bool,
    local: SocketAddr,
}

/// Bodies declaring at most this many bytes are held back and checked against their
/// Content-Length before anything is sent, so a mismatch can still become a 500.
const CHECKED_BODY: u64 = 16 * 1024 * 1024;

/// The CGI/WSGI variables for a request (RFC 3875 names, `HTTP_*` headers, `wsgi.*`), as
/// text. `None` when the decoded path holds a NUL byte, which no environ can.
pub(crate) fn environ(
    parts: &http::request::Parts,
    peer: SocketAddr,
    local: SocketAddr,
    body_len: u64,
) -> Option<Environ> {
    let mut env = Environ::new();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    cgi_variables(parts, peer, local, "", |name, value| {
        env.insert(text(name), text(value));
    })
    .ok()?;
    // Only what the client sent: a chunked request has no Content-Length (PEP 3333 lets
    // it be absent; the input ends where the body does). The CGI gateway gives scripts
    // the real length.
    if let Some(length) = env.get_mut("CONTENT_LENGTH") {
        *length = body_len.to_string();
    }
    let scheme = if env.contains_key("HTTPS") {
        "https"
    } else {
        "http"
    };
    for (name, value) in [
        ("wsgi.url_scheme", scheme),
        ("wsgi.version", "(1, 0)"),
        ("wsgi.multithread", "True"),
        ("wsgi.multiprocess", "False"),
        ("wsgi.run_once", "False"),
        // The input ends where the body does, chunked or not.
        ("wsgi.input_terminated", "True"),
    ] {
        env.insert(name.to_string(), value.to_string());
    }
    Some(env)
}

impl Handler for AppHost {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let (parts, mut incoming) = req.into_parts();
        if let Some(refused) = refuse_too_large(&parts.headers, self.max_body) {
            return refused;
        }
        // Chunked or not, the app gets the body whole (in memory, or past a size in a
        // temporary file).
        let mut spool = Spool::default();
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                return plain(StatusCode::BAD_REQUEST, "request body could not be read");
            };
            if let Some(data) = frame.data_ref() {
                if spool.len() + data.len() as u64 > self.max_body {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                }
                if let Err(e) = spool.push(data) {
                    warn!(target: "labserv::wsgi", "{peer} {}: cannot hold the body: {e}", parts.uri);
                    return plain(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "request body could not be stored",
                    );
                }
            }
        }
        let Some(environ) = environ(&parts, peer, self.local, spool.len()) else {
            return plain(StatusCode::BAD_REQUEST, "bad request path");
        };
        let body = match spool.finish() {
            Ok(body) => body,
            Err(e) => {
                warn!(target: "labserv::wsgi", "{peer} {}: cannot read the body back: {e}", parts.uri);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
        };
        let (status, headers, output) = if self.app.may_block() {
            match run_blocking(self.app.clone(), environ, body).await {
                Ok(head) => head,
                Err(why) => {
                    warn!(target: "labserv::wsgi", "{peer} {}: {why}", parts.uri);
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                }
            }
        } else {
            match run_inline(&*self.app, &environ, body) {
                Ok(head) => head,
                Err(why) => {
                    warn!(target: "labserv::wsgi", "{peer} {}: {why}", parts.uri);
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                }
            }
        };
        if self.validate
            && let Err(violation) = super::validate::head(&status, &headers)
        {
            warn!(target: "labserv::wsgi", "{peer} {}: app error: {violation}", parts.uri);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        }
        let Some(code) = status_code(&status) else {
            warn!(target: "labserv::wsgi", "{peer} {}: bad status line {status:?}", parts.uri);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        let declared = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .filter(|_| !bodiless(&parts.method, code));
        let collected = match output {
            Output::Collected(bytes) => Some(Ok(bytes)),
            Output::Streamed(rx) => match declared {
                Some(len) if self.validate && len <= CHECKED_BODY => Some(collect(rx, len).await),
                _ => {
                    let mut resp = Response::new(Body::Channel(rx));
                    *resp.status_mut() = code;
                    return match with_headers(resp, headers) {
                        Ok(resp) => resp,
                        Err(bad) => {
                            warn!(target: "labserv::wsgi", "{peer} {}: bad header {bad}", parts.uri);
                            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
                        }
                    };
                }
            },
        };
        let body = match (collected, declared) {
            (Some(Ok(bytes)), Some(len)) if self.validate && bytes.len() as u64 != len => {
                warn!(
                    target: "labserv::wsgi",
                    "{peer} {}: app error: body of {}{} bytes, Content-Length says {len}",
                    parts.uri,
                    bytes.len(),
                    if bytes.len() as u64 > len { " or more" } else { "" },
                );
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
            (Some(Ok(bytes)), _) => Body::full(bytes),
            (Some(Err(e)), _) => {
                warn!(target: "labserv::wsgi", "{peer} {}: the app failed: {e}", parts.uri);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
            (None, _) => Body::Empty,
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = code;
        match with_headers(resp, headers) {
            Ok(resp) => resp,
            Err(bad) => {
                warn!(target: "labserv::wsgi", "{peer} {}: bad header {bad}", parts.uri);
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
        }
    }
}

/// How an app's body reaches the response.
enum Output {
    /// Gathered already (an app that does not block).
    Collected(Bytes),
    /// Produced on the blocking pool, chunk by chunk.
    Streamed(mpsc::Receiver<std::io::Result<Bytes>>),
}

type Head = (String, Vec<(String, String)>, Output);

/// Calls a non-blocking app on this thread and gathers its body.
fn run_inline(app: &dyn super::App, environ: &Environ, body: Input) -> Result<Head, String> {
    let mut start = StartResponse::default();
    let mut input = body;
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let iter = app.call(environ, &mut input, &mut start)?;
        let mut out = BytesMut::new();
        for chunk in iter {
            out.extend_from_slice(&chunk?);
        }
        Ok::<_, std::io::Error>(out.freeze())
    }));
    let bytes = match call {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(format!("the app failed: {e}")),
        Err(_) => return Err("the app panicked".to_string()),
    };
    let status = start
        .status
        .take()
        .ok_or_else(|| "the app returned without calling start_response".to_string())?;
    Ok((status, start.headers, Output::Collected(bytes)))
}

/// Calls an app on the blocking pool; its body follows through a channel.
async fn run_blocking(app: SharedApp, environ: Environ, body: Input) -> Result<Head, String> {
    let (head_tx, head_rx) = oneshot::channel();
    let (chunks_tx, chunks_rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    // The receiver goes with the request: once the client has gone (or the server cut
    // the connection at its drain deadline), the channel is closed.
    let probe = chunks_tx.clone();
    let gone = ClientGone(Arc::new(move || probe.is_closed()));
    tokio::task::spawn_blocking(move || {
        let mut start = StartResponse {
            gone: Some(gone),
            ..StartResponse::default()
        };
        let mut input = body;
        let iter = match app.call(&environ, &mut input, &mut start) {
            Ok(iter) => iter,
            Err(e) => {
                let _ = head_tx.send(Err(format!("the app failed: {e}")));
                return;
            }
        };
        let Some(status) = start.status.take() else {
            let _ = head_tx.send(Err(
                "the app returned without calling start_response".to_string()
            ));
            return;
        };
        if head_tx
            .send(Ok((status, std::mem::take(&mut start.headers))))
            .is_err()
        {
            return;
        }
        for chunk in iter {
            // A closed channel means the client has gone: stop producing.
            if chunks_tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    match head_rx.await {
        Ok(Ok((status, headers))) => Ok((status, headers, Output::Streamed(chunks_rx))),
        Ok(Err(why)) => Err(why),
        Err(_) => Err("the app panicked".to_string()),
    }
}

/// Adds an app's headers to a response; the error names the first bad one.
fn with_headers(
    mut resp: Response<Body>,
    headers: Vec<(String, String)>,
) -> Result<Response<Body>, String> {
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                resp.headers_mut().append(n, v);
            }
            _ => return Err(format!("{name:?}: {value:?}")),
        }
    }
    Ok(resp)
}

/// The code of an app's status line (`"200 OK"`).
pub(crate) fn status_code(status: &str) -> Option<StatusCode> {
    status
        .split_whitespace()
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
}

/// Whether an answer carries no body whatever its Content-Length says: HEAD, 1xx, 204
/// and 304. An app answering HEAD with the GET's Content-Length and no body is right.
pub(crate) fn bodiless(method: &http::Method, code: StatusCode) -> bool {
    method == http::Method::HEAD
        || code.is_informational()
        || code == StatusCode::NO_CONTENT
        || code == StatusCode::NOT_MODIFIED
}

/// The Content-Length in `headers`, when it is a number.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// A 413 for a request that declares a body larger than `max`.
pub(crate) fn refuse_too_large(headers: &http::HeaderMap, max: u64) -> Option<Response<Body>> {
    content_length(headers)
        .is_some_and(|n| n > max)
        .then(|| plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))
}

/// Gathers an app's body, stopping one byte past `limit` (enough to know it is too long).
pub(crate) async fn collect(
    mut rx: mpsc::Receiver<std::io::Result<Bytes>>,
    limit: u64,
) -> std::io::Result<Bytes> {
    let mut out = BytesMut::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk?);
        if out.len() as u64 > limit {
            break;
        }
    }
    Ok(out.freeze())
}
