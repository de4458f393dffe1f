//! Serving an [`App`](super::App) over HTTP with labserv's connection handling.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::{Environ, SharedApp, StartResponse};
use crate::error::{Error, Result};
use crate::http::conn::Handler;
use crate::http::{Body, Limits};
use crate::shutdown::Shutdown;

/// Default for [`WsgiConfig::max_body`]: 64 MiB.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;

/// How the app host serves.
#[derive(Debug, Clone)]
pub struct WsgiConfig {
    /// Request bodies larger than this get 413.
    pub max_body: u64,
    /// Connection limits, as for the file server.
    pub limits: Limits,
}

impl Default for WsgiConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            limits: Limits::default(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is triggered.
///
/// # Errors
/// Only if the listener's address cannot be read.
pub async fn serve(
    listener: TcpListener,
    app: SharedApp,
    config: WsgiConfig,
    shutdown: Shutdown,
) -> Result<()> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let host = Arc::new(AppHost {
        app,
        max_body: config.max_body,
        local,
    });
    crate::http::conn::run(listener, host, config.limits, shutdown).await;
    Ok(())
}

struct AppHost {
    app: SharedApp,
    max_body: u64,
    local: SocketAddr,
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("{text}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The CGI/WSGI variables for a request (RFC 3875 names, `HTTP_*` headers, `wsgi.*`).
pub(crate) fn environ(
    parts: &http::request::Parts,
    peer: SocketAddr,
    local: SocketAddr,
    body_len: usize,
) -> Environ {
    let mut env = Environ::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("REQUEST_METHOD", parts.method.to_string());
    set("SCRIPT_NAME", String::new());
    set(
        "PATH_INFO",
        percent_decode_str(parts.uri.path())
            .decode_utf8_lossy()
            .into_owned(),
    );
    set("QUERY_STRING", parts.uri.query().unwrap_or("").to_string());
    set("SERVER_NAME", local.ip().to_canonical().to_string());
    set("SERVER_PORT", local.port().to_string());
    set("SERVER_PROTOCOL", format!("{:?}", parts.version));
    set("REMOTE_ADDR", peer.ip().to_string());
    set("REMOTE_PORT", peer.port().to_string());
    set("GATEWAY_INTERFACE", "CGI/1.1".to_string());
    set(
        "SERVER_SOFTWARE",
        format!("labserv/{}", env!("CARGO_PKG_VERSION")),
    );
    set("wsgi.url_scheme", "http".to_string());
    set("wsgi.version", "(1, 0)".to_string());
    set("wsgi.multithread", "True".to_string());
    set("wsgi.multiprocess", "False".to_string());
    set("wsgi.run_once", "False".to_string());
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        set(
            "CONTENT_TYPE",
            String::from_utf8_lossy(ct.as_bytes()).into_owned(),
        );
    }
    if parts.headers.contains_key(header::CONTENT_LENGTH) || body_len > 0 {
        set("CONTENT_LENGTH", body_len.to_string());
    }
    for name in parts.headers.keys() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            continue;
        }
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        let value = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        set(&key, value);
    }
    env
}

impl Handler for AppHost {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let (parts, mut incoming) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let mut body = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                return plain(StatusCode::BAD_REQUEST, "request body could not be read");
            };
            if let Some(data) = frame.data_ref() {
                if (body.len() + data.len()) as u64 > self.max_body {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                }
                body.extend_from_slice(data);
            }
        }
        let environ = environ(&parts, peer, self.local, body.len());
        let app = self.app.clone();
        let (head_tx, head_rx) = oneshot::channel();
        let (chunks_tx, chunks_rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            let mut start = StartResponse::default();
            let mut input = Cursor::new(body.freeze());
            let result = app.call(&environ, &mut input, &mut start);
            let iter = match result {
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
        let (status, headers) = match head_rx.await {
            Ok(Ok(head)) => head,
            Ok(Err(why)) => {
                warn!(target: "labserv::wsgi", "{peer} {}: {why}", parts.uri);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
            Err(_) => {
                warn!(target: "labserv::wsgi", "{peer} {}: the app panicked", parts.uri);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
        };
        let code = status
            .split_whitespace()
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok());
        let Some(code) = code else {
            warn!(target: "labserv::wsgi", "{peer} {}: bad status line {status:?}", parts.uri);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        let mut resp = Response::new(Body::Channel(chunks_rx));
        *resp.status_mut() = code;
        for (name, value) in headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) => {
                    resp.headers_mut().append(n, v);
                }
                _ => {
                    warn!(target: "labserv::wsgi", "{peer} {}: bad header {name:?}: {value:?}", parts.uri);
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                }
            }
        }
        resp
    }
}
