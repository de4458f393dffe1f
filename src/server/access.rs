//! The access log: one line per request, written when its response body is finished or
//! dropped, with the bytes really sent.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Uri, Version};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use tracing::warn;

use super::body::Body;
use super::tracked::ConnState;
use crate::logging;

/// One request's access-log line, written when its response body is finished or dropped.
pub(crate) struct AccessRecord {
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
    pub(crate) fn begin(req: &Request<Incoming>, peer: SocketAddr, state: Arc<ConnState>) -> Self {
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

    pub(crate) fn with_status(mut self, status: http::StatusCode) -> Self {
        self.status = status.as_u16();
        self
    }

    fn finish(mut self, sent: u64, complete: bool) {
        self.finished = true;
        crate::stats::finished(sent);
        self.state.request_finished();
        let elapsed = self.start.elapsed();
        if let Some(slow) = logging::slow(elapsed) {
            warn!(
                target: "labserv::http",
                "{} {} {}: slow, {:.3}s (--slow {}s)",
                self.peer,
                self.method,
                self.uri,
                elapsed.as_secs_f64(),
                slow.as_secs_f64()
            );
        }
        if !logging::access_enabled() {
            return;
        }
        let cut = if complete {
            ""
        } else if self.state.cut.load(Ordering::Acquire) {
            " (cut on purpose)"
        } else if self.state.closing.load(Ordering::Acquire) {
            " (closed by shutdown)"
        } else {
            " (client left early)"
        };
        logging::access_with(|line| {
            // `<peer> "<method> <target> <version>" <status> <bytes> <ms>ms<cut>`
            push_peer(line, self.peer);
            line.push_str(" \"");
            line.push_str(self.method.as_str());
            line.push(' ');
            // HTTP/2 has no request line; its :path is what an HTTP/1.1 client would
            // have sent there (hyper adds the scheme and authority to the URI). An
            // HTTP/1 target in absolute form is logged whole, as sent.
            match (self.version, self.uri.path_and_query()) {
                (Version::HTTP_2, Some(path)) => line.push_str(path.as_str()),
                (_, Some(path)) if self.uri.scheme().is_none() => line.push_str(path.as_str()),
                _ => {
                    let _ = write!(line, "{}", self.uri);
                }
            }
            line.push(' ');
            match version_text(self.version) {
                Some(text) => line.push_str(text),
                None => {
                    let _ = write!(line, "{:?}", self.version);
                }
            }
            line.push_str("\" ");
            let mut number = itoa::Buffer::new();
            line.push_str(number.format(self.status));
            line.push(' ');
            line.push_str(number.format(sent));
            line.push(' ');
            // Milliseconds to three places: whole microseconds.
            let micros = elapsed.as_micros();
            line.push_str(number.format(micros / 1000));
            line.push('.');
            logging::push_padded(line, micros % 1000, 3);
            line.push_str("ms");
            line.push_str(cut);
        });
    }
}

/// Appends `peer` as `SocketAddr`'s `Display` writes it. An IPv4 client, the common case
/// in a lab, is written with `itoa`: through `core::fmt` its address and port took about
/// 1% of a keep-alive request's CPU.
fn push_peer(line: &mut String, peer: SocketAddr) {
    match peer {
        SocketAddr::V4(v4) => {
            let mut number = itoa::Buffer::new();
            let [a, b, c, d] = v4.ip().octets();
            line.push_str(number.format(a));
            for octet in [b, c, d] {
                line.push('.');
                line.push_str(number.format(octet));
            }
            line.push(':');
            line.push_str(number.format(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(line, "{peer}");
        }
    }
}

/// How a request line names an HTTP version.
fn version_text(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => return None,
    })
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
pub(crate) struct Logged {
    pub(crate) inner: Body,
    pub(crate) sent: u64,
    pub(crate) record: Option<AccessRecord>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_written_as_display_writes_them() {
        for peer in [
            "0.0.0.0:0",
            "10.0.0.7:8080",
            "192.168.100.255:65535",
            "127.0.0.1:54321",
            "[::1]:8080",
            "[fe80::1%3]:69",
            "[2001:db8::ff00:42:8329]:443",
        ] {
            let peer: SocketAddr = peer.parse().unwrap();
            let mut line = String::from("x ");
            push_peer(&mut line, peer);
            assert_eq!(line, format!("x {peer}"));
        }
    }
}
