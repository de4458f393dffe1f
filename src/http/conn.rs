//! Connection handling shared by every HTTP server here: accept loop, limits, access log,
//! and the graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, Uri, Version};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::Limits;
use super::body::Body;
use crate::logging;
use crate::shutdown::Shutdown;

/// Answers one request. Implemented by the file server (and later the app host).
pub(crate) trait Handler: Send + Sync + 'static {
    /// Produces the response for `req` from the client at `peer`.
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// Accepts connections until shutdown, then drains them for up to `limits.drain`.
pub(crate) async fn run<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    shutdown: Shutdown,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Requests whose head outgrows this buffer get 431 from hyper.
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();

    loop {
        let accepted = tokio::select! {
            () = shutdown.triggered() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                warn!(target: "labserv::http", "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let state = Arc::new(ConnState::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            state: state.clone(),
            sniffed: false,
        });
        let service = {
            let handler = handler.clone();
            let state = state.clone();
            service_fn(move |req: Request<Incoming>| {
                let record = AccessRecord::begin(&req, peer, state.clone());
                let handler = handler.clone();
                async move {
                    let resp = handler.handle(req, peer).await;
                    let (parts, body) = resp.into_parts();
                    let record = record.with_status(parts.status);
                    Ok::<_, Infallible>(Response::from_parts(
                        parts,
                        Logged {
                            inner: body,
                            sent: 0,
                            record: Some(record),
                        },
                    ))
                }
            })
        };
        let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
        let busy = crate::memory::Busy::start();
        tokio::spawn(async move {
            let _busy = busy;
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        debug!(target: "labserv::http", "{peer} connection ended: {e}");
                    }
                }
                why = watchdog(&state, limits) => {
                    info!(target: "labserv::http", "{peer} dropped: {why}");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            target: "labserv::http",
            "responses still running after {:?}; closing them", limits.drain
        );
    }
}

/// Accept errors that concern one connection only (the client gave up before accept).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Milliseconds since the first call, never 0 (0 means "not set" below).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
}

/// What the watchdog needs to know about a connection, updated by its I/O and requests.
#[derive(Debug)]
struct ConnState {
    /// When bytes last moved in either direction.
    last_io: AtomicU64,
    /// When the first byte of a request head arrived while no request was running; 0 if none.
    head_started: AtomicU64,
    /// Requests whose responses have not finished.
    in_flight: AtomicUsize,
    /// The client speaks HTTP/2: its idle traffic (pings, window updates) is no request
    /// head, and h2 frames its own requests, so only the idle limit applies.
    h2: AtomicBool,
}

impl ConnState {
    fn new() -> Self {
        Self {
            last_io: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(false),
        }
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
    }

    fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }
}

/// Completes when the connection breaks a limit: a request head not finished within
/// `header_timeout` of its first byte (slowloris), or no bytes moving for `idle_timeout`
/// (an idle keep-alive connection, or a client that stopped reading).
async fn watchdog(state: &ConnState, limits: Limits) -> String {
    let header_ms = u64::try_from(limits.header_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    loop {
        let last_io = state.last_io.load(Ordering::Relaxed);
        let head = state.head_started.load(Ordering::Relaxed);
        let busy = state.in_flight.load(Ordering::Relaxed) > 0;
        let (deadline, why) = if !busy && head != 0 {
            (
                head + header_ms,
                format!(
                    "request headers not complete after {:?}",
                    limits.header_timeout
                ),
            )
        } else {
            (
                last_io + idle_ms,
                format!("no traffic for {:?}", limits.idle_timeout),
            )
        };
        let now = now_ms();
        if now >= deadline {
            return why;
        }
        // Nothing wakes this task when a request head starts arriving, so it looks again
        // at least once per header timeout: a head that starts is then noticed before its
        // own deadline, which is met exactly.
        let nap = (deadline - now).min(header_ms.max(1));
        tokio::time::sleep(Duration::from_millis(nap)).await;
    }
}

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A TCP stream that reports its traffic to the connection's watchdog.
struct Tracked {
    inner: TcpStream,
    state: Arc<ConnState>,
    /// Whether the first bytes have been looked at for the HTTP/2 preface.
    sniffed: bool,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if !self.sniffed {
                self.sniffed = true;
                let first = &buf.filled()[before..];
                let n = first.len().min(H2_PREFACE.len());
                if first[..n] == H2_PREFACE[..n] {
                    self.state.h2.store(true, Ordering::Relaxed);
                }
            }
            self.state.on_read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One request's access-log line, written when its response body is finished or dropped.
struct AccessRecord {
    finished: bool,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    version: Version,
    status: u16,
    start: Instant,
    state: Arc<ConnState>,
}

impl AccessRecord {
    fn begin(req: &Request<Incoming>, peer: SocketAddr, state: Arc<ConnState>) -> Self {
        state.request_started();
        Self {
            finished: false,
            peer,
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            status: 0,
            start: Instant::now(),
            state,
        }
    }

    fn with_status(mut self, status: http::StatusCode) -> Self {
        self.status = status.as_u16();
        self
    }

    fn finish(mut self, sent: u64, complete: bool) {
        self.finished = true;
        self.state.request_finished();
        if !logging::access_enabled() {
            return;
        }
        let elapsed = self.start.elapsed();
        let cut = if complete { "" } else { " (client left early)" };
        logging::access(format_args!(
            "{} \"{} {} {:?}\" {} {} {:.3}ms{cut}",
            self.peer,
            self.method,
            self.uri,
            self.version,
            self.status,
            sent,
            elapsed.as_secs_f64() * 1000.0,
        ));
    }
}

impl Drop for AccessRecord {
    fn drop(&mut self) {
        // The request was abandoned before it had a response (the client went away while
        // the handler ran): it no longer counts as running.
        if !self.finished {
            self.state.request_finished();
        }
    }
}

/// A response body that counts what it sends and logs the request when it is done.
struct Logged {
    inner: Body,
    sent: u64,
    record: Option<AccessRecord>,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(r) = &this.record {
                    warn!(target: "labserv::http", "{} {}: {e}", r.peer, r.uri);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let complete = self.inner.is_end_stream();
            record.finish(self.sent, complete);
        }
    }
}
