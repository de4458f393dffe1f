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
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::access::{AccessRecord, Logged};
use super::balance::{self, Seat};
use super::body::Body;
use super::faults::{Cut, Faults};
use super::gate::{Gate, Held, Hosts, Open};
use super::inbound::Inbound;
use super::sendfile::Outbox;
use super::socket::{Listener, Tcp};
use super::tls::Tls;
pub(crate) use super::tracked::Arrivals;
use super::tracked::{ConnState, Stream, Tracked, deadline};
use super::{HttpOptions, Limits};
use crate::shutdown::Shutdown;

mod one;

pub(crate) use one::Secure;
use one::{Extras, connection, drive};

/// Answers one request. Implemented by the file server (and later the app host).
pub(crate) trait Handler: Send + Sync + 'static {
    /// Produces the response for `req` from the client at `peer`.
    fn handle(
        &self,
        req: Request<Inbound>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// Told of each connection as it is accepted. What it returns comes with every
    /// request of the connection (the [`Tag`] extension) and goes to `closed` when the
    /// connection ends.
    fn accepted(&self, _stream: &Tcp) -> Option<u64> {
        None
    }

    /// A connection `accepted` tagged has ended.
    fn closed(&self, _tag: u64) {}

    /// What hears, as bytes move on a plain connection `accepted` tagged, that a request
    /// starts to arrive and that its answer starts to go out: the window in which hyper
    /// holds a request the handler has not been given yet. Default: nothing.
    fn arrivals(&self, _tag: u64) -> Option<Box<dyn Arrivals>> {
        None
    }

    /// Whether a response may keep its connection silent for long (an app thinking
    /// before it answers). hyper then also reads while each response is under way, to
    /// notice at once a client that leaves. A handler that answers at once spares its
    /// connections that read: it would block on nearly every one and put it in the event
    /// loop for nothing (see `socket`). The deadline check still notices a client that leaves
    /// while nothing moves, and a write to a client that has gone fails.
    const MAY_THINK: bool = true;

    /// Waits until the handler would take another connection; called before each
    /// accept. A handler that shares its listener with other processes can hold back
    /// while busy and let them take it. Default: at once.
    fn ready_for_more(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Resolves when the handler, having been ready for more, no longer is: the accept
    /// under way is dropped and [`Handler::ready_for_more`] asked again. Default: never.
    fn no_more(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Resolves with a connection handed to the handler from elsewhere, served as if
    /// accepted (whether or not the handler is ready for more). Cancel-safe. Default:
    /// never.
    fn adopted(&self) -> impl Future<Output = (Tcp, SocketAddr)> + Send {
        std::future::pending()
    }
}

/// What [`Handler::accepted`] said of a request's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag(#[cfg_attr(not(unix), allow(dead_code))] pub(crate) u64);

/// Accepts connections (over TLS with `tls`, loaded from `options.tls` by the runner)
/// until shutdown, then drains them for up to `options.limits.drain`.
pub(crate) async fn run<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    options: HttpOptions,
    tls: Option<Tls>,
    shutdown: Shutdown,
) {
    let HttpOptions {
        limits,
        faults,
        access,
        tls: _,
    } = options;
    let faults = faults.any().then(|| Arc::new(faults));
    // On loopback, only the names this machine answers to (DNS rebinding).
    let on_loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let hosts = on_loopback.then(|| Arc::new(Hosts::new(&access.allowed_hosts)));
    let (per_client, total) = (access.max_conns_per_client, access.max_conns);
    let gate = access.any().then(|| Arc::new(Gate::new(access)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Requests whose head outgrows this buffer get 431 from hyper. As in nginx, that size
    // is the only limit: hyper's own cap of 100 headers is raised to as many as fit
    // (`a:` and a line end take three bytes). hyper then takes room for that many on every
    // request; `memory::tune_malloc` keeps that cheap.
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_header_bytes / 3)
        .half_close(!H::MAY_THINK);
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        // What a lab's browsers and download managers use at once; hyper's default of
        // 200 per connection lets one client hold far more than it needs.
        .max_concurrent_streams(64);
    // Set on the listening socket, TCP_NODELAY is inherited by every connection it
    // accepts: one system call fewer per connection than setting it on each.
    let _ = socket2::SockRef::from(&listener).set_tcp_nodelay(true);
    let listener = match Listener::new(listener) {
        Ok(listener) => listener,
        Err(e) => {
            warn!(target: "labserv::http", "the listening socket could not join the event loop: {e}");
            return;
        }
    };
    let graceful = GracefulShutdown::new();
    let anchor = tokio::spawn(keep_a_timer(limits.header_timeout));
    let closing = Arc::new(AtomicBool::new(false));
    let seat = balance::current();
    // A connection slowed or held on purpose (--limit-rate, --delay) would outlast any
    // drain: at shutdown it is closed at once rather than waited for.
    let cut_at_shutdown = faults.as_ref().map(|_| (shutdown.clone(), closing.clone()));

    loop {
        let accepted = tokio::select! {
            () = shutdown.triggered() => break,
            adopted = handler.adopted() => Ok(adopted),
            accepted = async {
                loop {
                    handler.ready_for_more().await;
                    if let Some(seat) = &seat {
                        seat.turn().await;
                    }
                    tokio::select! {
                        accepted = listener.accept() => break accepted,
                        () = handler.no_more() => {}
                    }
                }
            } => accepted,
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
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let open = match total.map(Open::take) {
            Some(None) => {
                refuse_one_too_many(&stream, tls.is_some(), peer, TooMany::InAll);
                continue;
            }
            open => open.flatten(),
        };
        let held = match per_client.map(|cap| Held::take(peer.ip(), cap)) {
            Some(None) => {
                refuse_one_too_many(&stream, tls.is_some(), peer, TooMany::FromClient);
                continue;
            }
            held => held.flatten(),
        };
        let tag = handler.accepted(&stream);
        let arrivals = tag
            .filter(|_| tls.is_none())
            .and_then(|tag| handler.arrivals(tag));
        let state = Arc::new(ConnState::new(&stream, closing.clone()).with_arrivals(arrivals));
        let busy = (
            crate::memory::Busy::start(),
            seat.as_ref().map(Seat::took),
            (open, held),
        );
        let watcher = graceful.watcher();
        let handler = handler.clone();
        // Only a handler that tags connections hears of their end.
        let ended = tag.map(|tag| (tag, handler.clone()));
        match &tls {
            None => {
                // Boxed: hyper's connection is 6 KiB, and a task is moved whole into
                // tokio and written over when it ends; boxed, the task is 560 bytes.
                let conn = Box::pin(watcher.watch(connection(
                    &builder,
                    Stream::Plain(stream),
                    handler,
                    Extras {
                        faults: faults.clone(),
                        gate: gate.clone(),
                        hosts: hosts.clone(),
                    },
                    &state,
                    peer,
                    tag,
                )));
                let stop = cut_at_shutdown.clone();
                tokio::spawn(async move {
                    let _busy = busy;
                    drive(conn, &state, limits, peer, stop).await;
                    if let Some((tag, handler)) = ended {
                        handler.closed(tag);
                    }
                });
            }
            Some(tls) => {
                let (tls, builder) = (tls.clone(), builder.clone());
                let extras = Extras {
                    faults: faults.clone(),
                    gate: gate.clone(),
                    hosts: hosts.clone(),
                };
                let stop = cut_at_shutdown.clone();
                tokio::spawn(async move {
                    let _busy = busy;
                    let Ok(stream) = stream.into_polled() else {
                        return;
                    };
                    // The handshake counts against the header timeout.
                    if let Some(stream) = tls.accept(stream, peer, limits.header_timeout).await {
                        let stream = Stream::Tls(Box::new(stream));
                        let conn = connection(&builder, stream, handler, extras, &state, peer, tag);
                        drive(Box::pin(watcher.watch(conn)), &state, limits, peer, stop).await;
                    }
                    if let Some((tag, handler)) = ended {
                        handler.closed(tag);
                    }
                });
            }
        }
    }
    drop(listener);
    anchor.abort();
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

/// Which cap a refused connection was past.
#[derive(Debug, Clone, Copy)]
enum TooMany {
    /// `--max-conns-per-client`.
    FromClient,
    /// `--max-conns`.
    InAll,
}

/// What a connection past a cap gets: a 503 (over plain HTTP) and the connection closed,
/// its request read first so that the close is not a reset.
fn refuse_one_too_many(stream: &Tcp, tls: bool, peer: SocketAddr, cap: TooMany) {
    let why = match cap {
        TooMany::FromClient => {
            warn!(target: "labserv::http", "{peer}: refused, too many connections from that address (--max-conns-per-client)");
            "too many connections from this address\n"
        }
        TooMany::InAll => {
            warn!(target: "labserv::http", "{peer}: refused, too many connections open (--max-conns)");
            "too many connections open; try again\n"
        }
    };
    stream.discard_pending();
    if !tls {
        let busy = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{why}",
            why.len()
        );
        let _ = stream.try_write(busy.as_bytes());
    }
    let _ = stream.shutdown_write();
}

/// Keeps a timer due within `period` at all times on this thread's event loop.
///
/// tokio wakes its event loop (a write to an eventfd, and one more turn of the loop) when
/// a timer is set to fire before every timer it had when it last went to sleep, and
/// above all when it had none. Each new connection sets its deadline for
/// `header_timeout` ahead; with this timer due sooner, that never counts as earlier, and a
/// server answering one request per connection saves a system call and a wake-up on
/// each. It costs one wake-up per `period` when the server is idle.
async fn keep_a_timer(period: Duration) {
    // A zero timeout (from a test's limits) must not spin.
    let period = period.max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
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
