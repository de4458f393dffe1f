//! A request's way through a worker: queued for the app's thread, waited for within
//! `--queue-timeout` and `--timeout`, and the app's answer checked and made the response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use super::arriving::{Waiting, pump};
use super::host::PyHost;
use super::jobs::{Answer, Head, Job, Turn};
use crate::server::Body;
use crate::server::Inbound as Incoming;
use crate::server::body::{FileStream, Segment};
use crate::server::conn::{Secure, Tag};
use crate::server::text_response as plain;
use crate::wsgi::host::{bodiless, collect, content_length, refuse_too_large, status_code};
use crate::wsgi::python::ctl::ANSWERABLE;
use crate::wsgi::variables::{BadPath, cgi_variables};

/// Requests that may wait for the app at once; past this they get 503 straight away.
const MAX_WAITING: usize = 1024;

/// Bodies declaring at most this many bytes are held back and checked against their
/// Content-Length before anything is sent, so a mismatch can still become a 500.
const CHECKED_BODY: u64 = 16 * 1024 * 1024;

impl PyHost {
    /// Queues the request for the app and makes its answer the response.
    pub(super) async fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let secure = req.extensions().get::<Secure>().is_some();
        let tag = req.extensions().get::<Tag>().map(|t| t.0);
        let answerable = !secure && req.version() <= http::Version::HTTP_11;
        let (parts, body) = req.into_parts();
        if let Some(refused) = refuse_too_large(&parts.headers, self.max_body) {
            return refused;
        }
        let mut environ = Vec::with_capacity(1024);
        let made = cgi_variables(&parts, peer, self.local, &self.root_path, |name, value| {
            environ.extend_from_slice(name);
            environ.push(0);
            environ.extend_from_slice(value);
            environ.push(0);
        });
        match made {
            Ok(()) => {}
            Err(BadPath::OutsideRoot) => {
                return plain(StatusCode::NOT_FOUND, "not under the app's root path");
            }
            Err(BadPath::Nul) => return plain(StatusCode::BAD_REQUEST, "bad request path"),
        }
        let what = || format!("{peer} {} {}", parts.method, parts.uri);
        let was_idle = !self.busy();
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            warn!(target: "labserv::wsgi", "{}: the app is busy (queue full)", what());
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "every worker is busy; try again",
            );
        }
        let input = (!http_body::Body::is_end_stream(&body)).then(|| pump(body, self.max_body));
        let (head_tx, mut head_rx) = oneshot::channel();
        let (body_tx, body_rx) = mpsc::channel(4);
        let turn = Arc::new(Turn::default());
        let tag = tag.map_or(0, |tag| tag | if answerable { ANSWERABLE } else { 0 });
        let job = Job {
            environ,
            secure,
            input,
            head: head_tx,
            body: body_tx,
            tag,
            turn: turn.clone(),
        };
        // Noted before the app can see it, until its head is answered. The connection's
        // own note (`Arriving`) mostly covers it already, but that one ends at the first
        // byte written, which may be a `100 Continue`, and a pipelined request arrives
        // with no read of its own to note it.
        let _waiting = (tag & ANSWERABLE != 0)
            .then(|| self.slot.wait(tag))
            .flatten()
            .map(|place| Waiting(&self.slot, place));
        let queued = Instant::now();
        if self.jobs.send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        }
        if was_idle && self.others.is_some() {
            // Busy now: the next connection may be left to another worker.
            self.queued.notify_waiters();
        }
        let head = loop {
            // Until the app takes the request up, the queue timeout counts; from then on,
            // the request timeout.
            let deadline = match turn.started() {
                None => queued + self.queue_timeout.min(self.timeout),
                Some(at) => Instant::from_std(self.progress.instant(at)) + self.timeout,
            };
            match tokio::time::timeout_at(deadline, &mut head_rx).await {
                Ok(head) => break head,
                Err(_) => match turn.started() {
                    None if queued.elapsed() >= self.queue_timeout && turn.cancel() => {
                        warn!(target: "labserv::wsgi", "{}: the app is busy (waited too long)", what());
                        return plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "every worker is busy; try again",
                        );
                    }
                    Some(at) if self.progress.instant(at).elapsed() >= self.timeout => {
                        warn!(
                            target: "labserv::wsgi",
                            "{}: the app took longer than {:?}; this worker ends", what(), self.timeout
                        );
                        self.give_up();
                        return plain(StatusCode::GATEWAY_TIMEOUT, "the app took too long");
                    }
                    _ => {}
                },
            }
        };
        let Ok(head) = head else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        };
        let what = what();
        let (status, headers, answer) = match head {
            Head::Failed(line) => {
                warn!(target: "labserv::wsgi", "{what}: the app failed: {line}");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
            Head::TooLarge => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Head::Answer {
                status,
                headers,
                body,
            } => (status, headers, body),
        };
        let failed = || plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        let Some((code, headers)) = self.head(&what, &status, &headers) else {
            return failed();
        };
        // HEAD, 1xx, 204 and 304 carry no body, whatever Content-Length says.
        let checked = self.validate && !bodiless(&parts.method, code);
        let limit = content_length(&headers).filter(|&n| checked && n <= CHECKED_BODY);
        let body = match (answer, limit) {
            (Answer::Whole(body), _) => {
                if checked && !self.length_fits(&what, &headers, body.len() as u64, false) {
                    return failed();
                }
                Body::full(body)
            }
            // A body short enough is held back until it is known to match its length.
            (Answer::Streamed, Some(limit)) => match collect(body_rx, limit).await {
                Ok(bytes) if self.length_fits(&what, &headers, bytes.len() as u64, true) => {
                    Body::full(bytes)
                }
                Ok(_) => return failed(),
                Err(e) => {
                    warn!(target: "labserv::wsgi", "{what}: the app failed: {e}");
                    return failed();
                }
            },
            (Answer::Streamed, None) => Body::Channel(body_rx),
            (Answer::File { file, offset }, _) => {
                let size = file.metadata().map_or(0, |m| m.len());
                let len = size.saturating_sub(offset);
                Body::File(FileStream::new(
                    Some(file),
                    vec![Segment::File { offset, len }],
                ))
            }
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = code;
        *resp.headers_mut() = headers;
        if parts.method == Method::HEAD {
            // hyper sends no body for HEAD; the app's is dropped (it sees the client gone).
            *resp.body_mut() = Body::Empty;
        }
        resp
    }

    /// Checks the app's status and headers (latin-1 text) and makes them HTTP's.
    fn head(
        &self,
        what: &str,
        status: &str,
        pairs: &[(String, String)],
    ) -> Option<(StatusCode, http::HeaderMap)> {
        let app_error = |why: String| warn!(target: "labserv::wsgi", "{what}: app error: {why}");
        if self.validate
            && let Err(violation) = crate::wsgi::validate::head(status, pairs)
        {
            app_error(violation);
            return None;
        }
        let Some(code) = status_code(status) else {
            app_error(format!("bad status line {status:?}"));
            return None;
        };
        let mut headers = http::HeaderMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            let latin1: Option<Vec<u8>> = value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            match (
                HeaderName::from_bytes(name.as_bytes()),
                latin1.as_deref().map(HeaderValue::from_bytes),
            ) {
                (Ok(n), Some(Ok(v))) => {
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

    /// Whether a body of `len` bytes agrees with the Content-Length the app set (`more`:
    /// the body was cut one byte past it).
    fn length_fits(&self, what: &str, headers: &http::HeaderMap, len: u64, more: bool) -> bool {
        match content_length(headers) {
            Some(declared) if self.validate && declared != len => {
                warn!(
                    target: "labserv::wsgi",
                    "{what}: app error: body of {len}{} bytes, Content-Length says {declared}",
                    if more && len > declared { " or more" } else { "" },
                );
                false
            }
            _ => true,
        }
    }
}
