//! The accept loop shared by every HTTP server here: limits, the access log, and the
//! graceful drain on shutdown. What is served is a [`Handler`]'s business.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::Limits;
use super::access::{AccessRecord, Logged};
use super::body::Body;
use super::watch::{ConnState, Tracked, watchdog};
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
    // Requests whose head outgrows this buffer get 431 from hyper. As in nginx, that size
    // is the only limit: hyper's own cap of 100 headers is raised to as many as fit
    // (`a:` and a line end take three bytes). hyper then takes room for that many on every
    // request; `memory::tune_malloc` keeps that cheap.
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_header_bytes / 3);
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    let closing = Arc::new(AtomicBool::new(false));

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
        let state = Arc::new(ConnState::new(&stream, closing.clone()));
        let io = TokioIo::new(Tracked::new(stream, state.clone(), peer));
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
    // Whatever is still running is cut when the runtime ends, and logged as cut by this.
    closing.store(true, Ordering::Release);
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
