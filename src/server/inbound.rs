//! A request's body as handlers get it: hyper's, and the connection told when it has
//! been read to its end.
//!
//! Until then, what arrives on an HTTP/1 connection is body, not a request head, even
//! after the answer has gone out: a handler that answers early (401, 405, 413) leaves
//! the body unread, and hyper reads what is left of it before the next request. The
//! connection's own look at request heads (the 414 limit, the missing leading slash, the
//! header timeout) must not take those bytes for one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::tracked::ConnState;

/// A request's body; see the module's notes.
#[derive(Debug)]
pub(crate) struct Inbound {
    inner: Incoming,
    /// The connection, until the body has ended (HTTP/1 only).
    state: Option<Arc<ConnState>>,
}

impl Inbound {
    /// `inner`, whose end is reported to `state` when it is an HTTP/1 connection's.
    pub(crate) fn new(inner: Incoming, state: Option<Arc<ConnState>>) -> Self {
        let state = state.filter(|state| {
            let open = !inner.is_end_stream();
            state.body_open(open);
            open
        });
        Self { inner, state }
    }

    fn ended(&mut self) {
        if let Some(state) = self.state.take() {
            state.body_open(false);
        }
    }
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.ended(),
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
