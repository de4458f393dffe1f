//! Python WSGI apps (`wsgi myapp:app`), in worker processes.
//!
//! labserv's HTTP code (limits, keep-alive, HTTP/2, the access log) stays in this
//! process, the front. Each request goes whole to one idle worker: a Python process that
//! imported the app once and calls it, one request at a time (sync WSGI, as gunicorn's
//! sync workers). The worker pulls the request body as the app reads it and sends the
//! response back as it is produced; the frames are described in `worker.py`, which ships
//! inside the binary.

mod pool;
mod reload;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use pool::{Busy, Pool};
use reload::Reloader;
pub use worker::Launch;
use worker::{Frame, Worker, put_frame, send_raw};

use super::variables::cgi_variables;
use crate::error::{Error, Result};
use crate::server::body::{FileStream, Segment};
use crate::server::conn::Handler;
use crate::server::faults::Faults;
use crate::server::gate::Access;
use crate::server::text_response as plain;
use crate::server::tls::Tls;
use crate::server::{Body, Limits};
use crate::shutdown::Shutdown;

/// Default for [`PythonConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`PythonConfig::queue_timeout`].
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a Python app is hosted.
#[derive(Debug, Clone)]
pub struct PythonConfig {
    /// The interpreter, the app and its directory.
    pub launch: Launch,
    /// Worker processes.
    pub workers: usize,
    /// A worker silent this long in a request is killed (the client gets 504).
    pub timeout: Duration,
    /// A request waits this long for a free worker before it gets 503.
    pub queue_timeout: Duration,
    /// The path the app is mounted at (`SCRIPT_NAME`), without a trailing slash.
    pub root_path: String,
    /// Request bodies larger than this get 413.
    pub max_body: u64,
    /// Check what the app sends, as for Rust apps.
    pub validate: bool,
    /// Connection limits, as for the file server.
    pub limits: Limits,
    /// Start new workers when a `.py` file under the app's directory changes.
    pub reload: bool,
    /// Serve HTTPS.
    pub tls: Option<Tls>,
    /// Faults put into every connection on purpose.
    pub faults: Faults,
}

/// Started workers, ready to serve (and the watch on the app's files, with `--reload`).
pub struct Workers {
    pool: Arc<Pool>,
    reloader: Option<Reloader>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("pids", &self.pool.idle_pids())
            .field("reload", &self.reloader.is_some())
            .finish()
    }
}

impl Workers {
    /// Starts the workers and waits until every one has imported the app. Call on the
    /// thread that will run the server: a worker dies with the thread that started it.
    ///
    /// # Errors
    /// [`Error::App`] naming the app and what went wrong, in one line.
    pub fn start(config: &PythonConfig) -> Result<Self> {
        let app_error = |reason: String| Error::App {
            app: config.launch.app.clone(),
            reason,
        };
        let reloader = if config.reload {
            Some(Reloader::watch(reload::watched_dirs(&config.launch)).map_err(app_error)?)
        } else {
            None
        };
        Pool::start(config.launch.clone(), config.workers, config.queue_timeout)
            .map(|pool| Workers { pool, reloader })
            .map_err(|reason| {
                let app = &config.launch.app;
                // A bare word that is no module may have been meant as a built-in app.
                let hint = if !app.contains([':', '/'])
                    && reason.contains(&format!("No module named '{app}'"))
                {
                    format!(
                        " (nor is it a built-in app: {})",
                        crate::wsgi::APP_NAMES.join(", ")
                    )
                } else {
                    String::new()
                };
                app_error(reason + &hint)
            })
    }

    /// The workers' process ids (those idle now).
    pub fn pids(&self) -> Vec<u32> {
        self.pool.idle_pids()
    }
}

/// The interpreter to run: `--python`, else the active virtualenv's, else `python3` on
/// `PATH`.
///
/// # Errors
/// None of those is there, in words that say where to point labserv.
pub fn find_python(given: Option<&Path>) -> std::result::Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("no Python at --python {}", path.display()))
        };
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let python = Path::new(&venv).join("bin").join("python");
        if python.is_file() {
            return Ok(python);
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no python3 on PATH (give --python PATH, or activate a virtualenv)".into())
}

/// Serves the app on `listener` with `workers` until `shutdown`, then stops the workers.
pub async fn serve(
    listener: TcpListener,
    workers: Workers,
    config: PythonConfig,
    shutdown: Shutdown,
) -> Result<()> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let pool = workers.pool;
    if let Some(reloader) = workers.reloader {
        reloader.run(pool.clone(), shutdown.clone());
    }
    let host = Arc::new(PythonHost {
        pool: pool.clone(),
        config: Arc::new(config.clone()),
        local,
    });
    crate::server::conn::run(
        listener,
        host,
        config.limits,
        config.tls.clone(),
        config.faults.clone(),
        Access::default(),
        shutdown,
    )
    .await;
    pool.close();
    Ok(())
}

/// The handler: cheap to clone into the task that runs each request's exchange.
#[derive(Clone)]
struct PythonHost {
    pool: Arc<Pool>,
    config: Arc<PythonConfig>,
    local: SocketAddr,
}

/// The request body, handed to the worker as the app reads it.
struct Input {
    body: Incoming,
    held: Bytes,
    total: u64,
    max: u64,
    ended: bool,
    too_large: bool,
}

impl Input {
    /// The next piece of the body for the worker: a `D` frame (empty at the end), or `Z`
    /// when the body cannot be had whole (too large, or the client stopped sending).
    async fn next(&mut self, want: usize) -> (u8, Bytes) {
        while self.held.is_empty() && !self.ended {
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(_)) => {
                    self.ended = true;
                    return (
                        b'Z',
                        Bytes::from_static(b"the client stopped sending the body"),
                    );
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.total += data.len() as u64;
                        if self.total > self.max {
                            self.ended = true;
                            self.too_large = true;
                            return (
                                b'Z',
                                Bytes::from_static(b"the body is larger than --max-body"),
                            );
                        }
                        self.held = data;
                    }
                }
            }
        }
        let n = want.min(self.held.len());
        (b'D', self.held.split_to(n))
    }
}

impl Handler for PythonHost {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.config.max_body) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let has_body = !http_body::Body::is_end_stream(&body);
        let Some(request) =
            encode_request(&parts, peer, self.local, &self.config.root_path, has_body)
        else {
            return plain(StatusCode::BAD_REQUEST, "bad request path");
        };
        let worker = match self.pool.acquire().await {
            Ok(worker) => worker,
            Err(busy) => {
                warn!(
                    target: "labserv::wsgi",
                    "{peer} {}: every worker is busy ({})", parts.uri,
                    if busy == Busy::QueueFull { "queue full" } else { "waited too long" }
                );
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "every worker is busy; try again",
                );
            }
        };
        // The rest runs apart from this request's future, which hyper drops when the
        // client goes: the worker must still finish the request and serve again.
        let (tx, rx) = oneshot::channel();
        let host = self.clone();
        tokio::spawn(async move {
            let resp = host
                .exchange(worker, parts, body, peer, has_body, request)
                .await;
            let _ = tx.send(resp);
        });
        rx.await
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"))
    }
}

impl PythonHost {
    /// Hands one request to `worker` and turns what it sends back into the response.
    async fn exchange(
        &self,
        mut worker: Worker,
        parts: http::request::Parts,
        body: Incoming,
        peer: SocketAddr,
        has_body: bool,
        request: Vec<u8>,
    ) -> Response<Body> {
        let mut input = Input {
            body,
            held: Bytes::new(),
            total: 0,
            max: self.config.max_body,
            ended: !has_body,
            too_large: false,
        };
        let exchange = Exchange {
            pool: self.pool.clone(),
            timeout: self.config.timeout,
            what: format!("{peer} {} {}", parts.method, parts.uri),
        };
        if let Err(e) = send_raw(&mut worker, &request).await {
            exchange.lost(worker, &format!("could not be sent the request: {e}"));
            return plain(StatusCode::BAD_GATEWAY, "the app's worker failed");
        }
        // Frames up to the response's head.
        let (head, mut worker) = loop {
            match exchange.next(&mut worker).await {
                Next::Frame((b'R', want)) => {
                    let (kind, data) = input.next(want_len(&want)).await;
                    if let Err(e) = worker.send(kind, &data).await {
                        exchange.lost(worker, &format!("could not be sent the body: {e}"));
                        return plain(StatusCode::BAD_GATEWAY, "the app's worker failed");
                    }
                }
                Next::Frame((b'W', whole)) => {
                    self.pool.release(worker);
                    if input.too_large {
                        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                    }
                    return self.whole(&exchange.what, &whole);
                }
                Next::Frame((b'H', head)) => break (head, worker),
                Next::Frame((b'X', why)) => {
                    self.pool.release(worker);
                    if input.too_large {
                        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                    }
                    warn!(
                        target: "labserv::wsgi",
                        "{}: the app failed: {}", exchange.what, String::from_utf8_lossy(&why)
                    );
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                }
                other => return exchange.broken(worker, other),
            }
        };
        let Some((status, headers)) = self.head(&exchange.what, &head) else {
            // The body that follows is not wanted; the worker still has to finish it.
            tokio::spawn(stream(exchange, worker, input, None, None));
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        if input.too_large {
            tokio::spawn(stream(exchange, worker, input, None, None));
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        // The first frame after the head comes with it: a file to send is answered here.
        let first = exchange.next(&mut worker).await;
        let body = match first {
            Next::Frame((b'F', file)) => match open_sent_file(worker.pid(), &file) {
                Ok(file_body) => {
                    let owned = exchange;
                    tokio::spawn(async move {
                        if let Err(e) = worker.send(b'K', &[]).await {
                            owned.lost(worker, &format!("could not be answered: {e}"));
                            return;
                        }
                        stream(owned, worker, input, None, None).await;
                    });
                    file_body
                }
                Err(e) => {
                    exchange.lost(worker, &format!("sent a file that cannot be opened: {e}"));
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                }
            },
            Next::Frame((b'E', _)) => {
                self.pool.release(worker);
                Body::Empty
            }
            Next::Frame(frame) => {
                let (tx, rx) = mpsc::channel(4);
                tokio::spawn(stream(exchange, worker, input, Some(tx), Some(frame)));
                Body::Channel(rx)
            }
            other => return exchange.broken(worker, other),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        if parts.method == Method::HEAD {
            // hyper sends no body for HEAD; the app's is dropped (and the worker told).
            *resp.body_mut() = Body::Empty;
        }
        resp
    }

    /// A `W` frame: head length, head, body.
    fn whole(&self, what: &str, whole: &Bytes) -> Response<Body> {
        let mut whole = whole.clone();
        if whole.len() < 4 {
            return plain(StatusCode::BAD_GATEWAY, "the app's worker failed");
        }
        let head_len = whole.get_u32() as usize;
        if head_len > whole.len() {
            return plain(StatusCode::BAD_GATEWAY, "the app's worker failed");
        }
        let head = whole.split_to(head_len);
        let Some((status, headers)) = self.head(what, &head) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        if self.config.validate
            && let Some(len) = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            && len != whole.len() as u64
        {
            warn!(
                target: "labserv::wsgi",
                "{what}: app error: body of {} bytes, Content-Length says {len}", whole.len()
            );
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        }
        let mut resp = Response::new(Body::full(whole));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        resp
    }

    /// Reads a head (`status NUL name NUL value ...`, latin-1) and checks it.
    fn head(&self, what: &str, head: &[u8]) -> Option<(StatusCode, http::HeaderMap)> {
        let app_error = |why: String| {
            warn!(target: "labserv::wsgi", "{what}: app error: {why}");
        };
        let mut fields = head.split(|&b| b == 0);
        let status = latin1(fields.next().unwrap_or_default());
        let mut pairs = Vec::new();
        while let Some(name) = fields.next() {
            let value = fields.next().unwrap_or_default();
            pairs.push((latin1(name), latin1(value)));
        }
        if self.config.validate
            && let Err(violation) = crate::wsgi::validate::head(&status, &pairs)
        {
            app_error(violation);
            return None;
        }
        let code = status
            .split_whitespace()
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok());
        let Some(code) = code else {
            app_error(format!("bad status line {status:?}"));
            return None;
        };
        let mut headers = http::HeaderMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value.chars().map(|c| c as u8).collect::<Vec<_>>()),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => {
                    app_error(format!("bad header {name:?}: {value:?}"));
                    return None;
                }
            }
        }
        Some((code, headers))
    }
}

/// Latin-1 bytes as a string (each byte one char), as PEP 3333 has them.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn want_len(payload: &[u8]) -> usize {
    let mut n = [0u8; 8];
    let take = payload.len().min(8);
    n[8 - take..].copy_from_slice(&payload[..take]);
    usize::try_from(u64::from_be_bytes(n))
        .unwrap_or(usize::MAX)
        .clamp(1, 1 << 20)
}

/// Opens the file a worker asked to be sent (`F`: fd, offset, count) through `/proc`, so
/// that its bytes never pass through Python.
fn open_sent_file(pid: u32, payload: &[u8]) -> io::Result<Body> {
    let field = |i: usize| -> io::Result<u64> {
        payload
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| io::Error::other("short F frame"))
    };
    let (fd, offset, count) = (field(0)?, field(1)?, field(2)?);
    let file = std::fs::File::open(format!("/proc/{pid}/fd/{fd}"))?;
    let size = file.metadata()?.len();
    let len = size.saturating_sub(offset).min(count);
    Ok(Body::File(FileStream::new(
        Some(file),
        vec![Segment::File { offset, len }],
    )))
}

/// What came from a worker.
enum Next {
    Frame(Frame),
    /// Its socket closed or failed: it died.
    Died(String),
    /// Nothing within the timeout.
    Silent,
}

/// One request's dealings with its worker.
struct Exchange {
    pool: Arc<Pool>,
    timeout: Duration,
    what: String,
}

impl Exchange {
    async fn next(&self, worker: &mut Worker) -> Next {
        match tokio::time::timeout_at(Instant::now() + self.timeout, worker.read()).await {
            Ok(Ok(frame)) => Next::Frame(frame),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Next::Died("died during the request".to_string())
            }
            Ok(Err(e)) => Next::Died(format!("failed: {e}")),
            Err(_) => Next::Silent,
        }
    }

    /// Replaces a worker that died, hung or broke the protocol before the response's
    /// head; what the client gets instead.
    fn broken(&self, worker: Worker, next: Next) -> Response<Body> {
        match next {
            Next::Silent => {
                self.lost(worker, &format!("was silent for {:?}", self.timeout));
                plain(StatusCode::GATEWAY_TIMEOUT, "the app took too long")
            }
            Next::Died(why) => {
                self.lost(worker, &why);
                plain(StatusCode::BAD_GATEWAY, "the app's worker failed")
            }
            Next::Frame((kind, _)) => {
                self.lost(worker, &format!("sent {:?} out of turn", char::from(kind)));
                plain(StatusCode::BAD_GATEWAY, "the app's worker failed")
            }
        }
    }

    fn lost(&self, worker: Worker, why: &str) {
        warn!(target: "labserv::wsgi", "{}: the worker {why}", self.what);
        self.pool.replace(worker, why);
    }
}

/// Carries the rest of a response from the worker to the client (or to nowhere, when
/// the client has gone or the response was refused), answering the worker's body reads,
/// until the worker ends the request; then the worker serves again.
async fn stream(
    exchange: Exchange,
    mut worker: Worker,
    mut input: Input,
    mut client: Option<mpsc::Sender<io::Result<Bytes>>>,
    mut first: Option<Frame>,
) {
    let mut told = false;
    loop {
        let next = match first.take() {
            Some(frame) => Next::Frame(frame),
            None => exchange.next(&mut worker).await,
        };
        let cut = |client: &Option<mpsc::Sender<io::Result<Bytes>>>, why: &str| {
            if let Some(tx) = client {
                let _ = tx.try_send(Err(io::Error::other(why.to_string())));
            }
        };
        match next {
            Next::Frame((b'B', data)) => {
                let delivered = match &client {
                    Some(tx) => tx.send(Ok(data)).await.is_ok(),
                    None => false,
                };
                if !delivered && !told {
                    // The client has gone: the app may stop producing.
                    client = None;
                    told = true;
                    if let Err(e) = worker.send(b'C', &[]).await {
                        exchange.lost(worker, &format!("could not be told to stop: {e}"));
                        return;
                    }
                }
            }
            Next::Frame((b'R', want)) => {
                let (kind, data) = input.next(want_len(&want)).await;
                if let Err(e) = worker.send(kind, &data).await {
                    exchange.lost(worker, &format!("could not be sent the body: {e}"));
                    cut(&client, "the app's worker failed");
                    return;
                }
            }
            Next::Frame((b'E', _)) => {
                exchange.pool.release(worker);
                return;
            }
            Next::Frame((b'X', why)) => {
                warn!(
                    target: "labserv::wsgi",
                    "{}: the app failed while sending: {}", exchange.what, String::from_utf8_lossy(&why)
                );
                cut(&client, "the app failed");
                exchange.pool.release(worker);
                return;
            }
            Next::Frame((kind, _)) => {
                exchange.lost(worker, &format!("sent {:?} out of turn", char::from(kind)));
                cut(&client, "the app's worker failed");
                return;
            }
            Next::Died(why) => {
                exchange.lost(worker, &why);
                cut(&client, "the app's worker died");
                return;
            }
            Next::Silent => {
                exchange.lost(worker, &format!("was silent for {:?}", exchange.timeout));
                cut(&client, "the app took too long");
                return;
            }
        }
    }
}

/// The request for a worker: a `Q` frame holding whether a body follows, then the
/// environ as NUL-separated names and values (bytes as they came, which the worker reads
/// as latin-1). `None` when the decoded path holds a NUL byte, which no environ can.
fn encode_request(
    parts: &http::request::Parts,
    peer: SocketAddr,
    local: SocketAddr,
    root_path: &str,
    has_body: bool,
) -> Option<Vec<u8>> {
    let mut env = Vec::with_capacity(512);
    env.push(if has_body { b'1' } else { b'0' });
    let mut first = true;
    cgi_variables(parts, peer, local, root_path, |name, value| {
        if !first {
            env.push(0);
        }
        first = false;
        env.extend_from_slice(name);
        env.push(0);
        env.extend_from_slice(value);
    })
    .ok()?;
    let mut out = Vec::with_capacity(env.len() + 5);
    put_frame(&mut out, b'Q', &env);
    Some(out)
}
