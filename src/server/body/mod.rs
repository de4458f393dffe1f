//! Response bodies: small buffers sent whole, and files streamed in chunks off the runtime.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

mod file;

pub use file::FileStream;

/// One piece of a streamed response: literal bytes, or a range of the open file.
#[derive(Debug)]
pub(crate) enum Segment {
    /// Bytes to send as they are (a multipart boundary and part headers).
    Bytes(Bytes),
    /// `len` bytes of the file from `offset`.
    File { offset: u64, len: u64 },
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// No body (HEAD, 304, redirects).
    Empty,
    /// A body held in memory; `None` once sent.
    Full(Option<Bytes>),
    /// A file streamed from disk.
    File(FileStream),
    /// Chunks produced elsewhere (an application on the blocking pool); ends when the
    /// sender is dropped.
    Channel(tokio::sync::mpsc::Receiver<io::Result<Bytes>>),
    /// Another body cut short on purpose (`--drop-after`).
    Cut(Box<super::faults::Cut>),
}

impl Body {
    /// A body of the given bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::File(stream) => stream.poll_next(cx),
            Body::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data))),
            Body::Cut(cut) => Pin::new(&mut **cut).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::File(stream) => stream.remaining == 0,
            Body::Channel(rx) => rx.is_closed() && rx.is_empty(),
            Body::Cut(cut) => cut.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::File(stream) => SizeHint::with_exact(stream.remaining),
            Body::Channel(_) => SizeHint::default(),
            Body::Cut(cut) => cut.size_hint(),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
