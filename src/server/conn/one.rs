//! One connection, served: hyper on it, the host name and the gate checked, the faults
//! asked for put in, each response logged when it ends, and deadlines kept.

use super::*;

/// The connection with hyper serving it, each response logged when it ends.
pub(super) fn connection<H: Handler>(
    builder: &auto::Builder<TokioExecutor>,
    stream: Stream,
    handler: Arc<H>,
    extras: Extras,
    state: &Arc<ConnState>,
    peer: SocketAddr,
    tag: Option<u64>,
) -> impl GracefulConnection<Error = Box<dyn std::error::Error + Send + Sync>> + Send + 'static {
    let secure = matches!(stream, Stream::Tls(_));
    let Extras {
        faults,
        gate,
        hosts,
    } = extras;
    let pace = faults.as_ref().and_then(|f| f.limit_rate);
    // Files go out by `sendfile` on plain connections with no faults asked for (a fault
    // may cut or pace what is sent, and works on the bytes themselves; TLS encrypts them).
    let outbox = (faults.is_none() && !secure).then(Outbox::default);
    let io =
        TokioIo::new(Tracked::new(stream, state.clone(), peer, pace).with_outbox(outbox.clone()));
    let state = state.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        if secure {
            req.extensions_mut().insert(Secure);
        }
        if let Some(tag) = tag {
            req.extensions_mut().insert(Tag(tag));
        }
        // hyper's HTTP/2 copies what it sends: only HTTP/1 responses take stand-ins.
        let outbox = outbox
            .clone()
            .filter(|_| req.version() < http::Version::HTTP_2);
        let record = AccessRecord::begin(&req, peer, state.clone());
        let h1 = req.version() < http::Version::HTTP_2;
        let req = req.map(|body| Inbound::new(body, h1.then(|| state.clone())));
        let handler = handler.clone();
        let faults = faults.clone();
        let gate = gate.clone();
        let state = state.clone();
        let hosts = hosts.clone();
        async move {
            let stopped = match (&hosts, &gate) {
                (Some(hosts), _) if !hosts.allows(crate::server::gate::request_host(&req)) => {
                    Some(foreign_host(&req, peer))
                }
                (_, Some(gate)) => match gate.stop(&req, peer) {
                    Ok(stopped) => stopped,
                    // Boxed: the rare slow check must not grow every request's future.
                    Err(slow) => Box::pin(gate.clone().finish(slow)).await,
                },
                _ => None,
            };
            let mut resp = match (stopped, &faults) {
                (Some(resp), _) => resp,
                (None, None) => handler.handle(req, peer).await,
                // Boxed so the common future stays small (see `FileServer::handle`).
                (None, Some(faults)) => {
                    Box::pin(with_faults(&*handler, faults, &state, req, peer)).await
                }
            };
            if let Some(gate) = &gate {
                gate.mark(&mut resp);
            }
            if let (Some(outbox), Body::File(stream)) = (&outbox, resp.body_mut()) {
                stream.send_through(outbox);
            }
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
    });
    builder.serve_connection(io, service).into_owned()
}

/// Answers a request through the faults asked for: failed, delayed, or cut short.
async fn with_faults<H: Handler>(
    handler: &H,
    faults: &Faults,
    state: &Arc<ConnState>,
    req: Request<Inbound>,
    peer: SocketAddr,
) -> Response<Body> {
    let what = format!("{peer} {} {}", req.method(), req.uri().path());
    let h2 = req.version() == http::Version::HTTP_2;
    if faults.fail_now() {
        info!(target: "labserv::http", "{what}: 503 on purpose (--fail-every)");
        return Faults::failure();
    }
    if let Some(delay) = faults.delay {
        debug!(target: "labserv::http", "{what}: held {delay:?} on purpose (--delay)");
        tokio::time::sleep(delay).await;
    }
    let resp = handler.handle(req, peer).await;
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let len = http_body::Body::size_hint(&body).exact();
    let span = match parts.status {
        http::StatusCode::PARTIAL_CONTENT => content_range(&parts.headers),
        _ => len.map(|len| (0, len)),
    };
    let body = match faults.cut_at(len, span) {
        Some(at) => {
            let of = len.map_or_else(String::new, |len| format!(" of {len}"));
            info!(target: "labserv::http", "{what}: cut after {at}{of} bytes on purpose (--drop-after)");
            Body::Cut(Box::new(Cut::new(body, at, state.clone(), h2)))
        }
        None => body,
    };
    Response::from_parts(parts, body)
}

/// Where a 206's body lies in the file: `(first byte, file size)` from its
/// `Content-Range: bytes FIRST-LAST/SIZE` (none for a multipart answer).
fn content_range(headers: &http::HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(http::header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, _) = range.split_once('-')?;
    Some((first.parse().ok()?, size.parse().ok()?))
}

/// What a connection adds around its handler, when asked for.
pub(super) struct Extras {
    pub(super) faults: Option<Arc<Faults>>,
    pub(super) gate: Option<Arc<Gate>>,
    pub(super) hosts: Option<Arc<Hosts>>,
}

/// 403 for a request to loopback under a name this machine does not answer to.
fn foreign_host<B>(req: &Request<B>, peer: SocketAddr) -> Response<Body> {
    let host = String::from_utf8_lossy(crate::server::gate::request_host(req).unwrap_or_default());
    warn!(
        target: "labserv::http",
        "{peer} {} {}: refused host name {host:?} on loopback (--allow-host {host} allows it)",
        req.method(),
        req.uri().path()
    );
    crate::server::text_response(
        http::StatusCode::FORBIDDEN,
        "this server answers to localhost, IP addresses and its own name; \
         start it with --allow-host NAME for another",
    )
}

/// Marks a request that came over TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secure;

/// Runs a connection until it ends or misses a deadline (see [`deadline`]); with `stop`, also until
/// shutdown (its flag set first, so that the access log says why the response ended).
pub(super) async fn drive<E: std::fmt::Display>(
    conn: impl Future<Output = Result<(), E>>,
    state: &ConnState,
    limits: Limits,
    peer: SocketAddr,
    stop: Option<(Shutdown, Arc<AtomicBool>)>,
) {
    let Some((shutdown, closing)) = stop else {
        // The common case keeps its two-way race: nothing more to poll per wake-up.
        tokio::select! {
            result = conn => {
                if let Err(e) = result {
                    debug!(target: "labserv::http", "{peer} connection ended: {e}");
                }
            }
            why = deadline(state, limits) => {
                info!(target: "labserv::http", "{peer} dropped: {why}");
            }
        }
        return;
    };
    tokio::select! {
        () = shutdown.triggered() => {
            closing.store(true, Ordering::Release);
            debug!(target: "labserv::http", "{peer} closed at shutdown (faults on purpose)");
        }
        result = conn => {
            if let Err(e) = result {
                debug!(target: "labserv::http", "{peer} connection ended: {e}");
            }
        }
        why = deadline(state, limits) => {
            info!(target: "labserv::http", "{peer} dropped: {why}");
        }
    }
}
