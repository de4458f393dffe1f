//! The stream wrapper every connection is read and written through: it tells the
//! connection's state (`state.rs`) when bytes move and heads begin, mends a request line
//! that lacks its leading slash, holds a head to its limits, paces and cuts responses on
//! purpose, and lingers before it closes on unread bytes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;
use tracing::info;

use super::line::{MAX_REQUEST_LINE, RequestLine, URI_TOO_LONG};
use super::pace::Pacer;
use super::sendfile::{self, Outbox, Plan};

mod state;
mod stream;

pub(crate) use state::{Arrivals, ConnState, deadline};
pub(crate) use stream::Stream;

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A client's stream that reports its traffic to the connection's deadline check, answers a request
/// line that is too long itself (hyper would call it a head too large), and puts the
/// missing leading slash before a bare relative target.
pub(crate) struct Tracked {
    inner: Stream,
    state: Arc<ConnState>,
    peer: SocketAddr,
    /// Whether the first bytes have been looked at for the HTTP/2 preface.
    sniffed: bool,
    line: RequestLine,
    /// 414 sent: what the client still sends is read and dropped until it closes (so that
    /// closing with unread data does not reset the connection before it reads the 414).
    draining: bool,
    /// The byte pushed out of a full read buffer by an inserted slash, for the next read.
    carry: Option<u8>,
    /// Closing after an answer that left the request's body unread: until when what the
    /// client still sends is read and dropped (see [`Tracked::linger`]).
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Paces what is sent (`--limit-rate`).
    pacer: Option<Pacer>,
    /// File bytes to send with `sendfile` in place of stand-ins (see [`sendfile`]).
    outbox: Option<Outbox>,
    /// What the connection's first read took in beyond what was asked for, for the reads
    /// that follow.
    ahead: Option<BytesMut>,
}

/// How much the first read of a connection takes in. hyper first asks for just the length
/// of the HTTP/2 preface, to tell the two protocols apart; reading a whole ordinary head
/// at once spares every connection a second system call.
const FIRST_READ: usize = 4096;

impl Tracked {
    pub(crate) fn new(
        inner: Stream,
        state: Arc<ConnState>,
        peer: SocketAddr,
        rate: Option<u64>,
    ) -> Self {
        Self {
            pacer: rate.map(Pacer::new),
            inner,
            state,
            peer,
            sniffed: false,
            line: RequestLine::default(),
            draining: false,
            carry: None,
            linger: None,
            outbox: None,
            ahead: None,
        }
    }

    /// Reads from the socket, or from what the first read took in ahead.
    fn read_inner(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let first = !self.sniffed && buf.remaining() < FIRST_READ;
        if !first && self.ahead.as_ref().is_none_or(BytesMut::is_empty) {
            self.ahead = None;
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        // The buffer stays while the first bytes are awaited, and goes once handed on.
        // It is read into as it comes from the allocator, not zeroed first: a read
        // fills only its spare room, and only what was filled is handed on.
        let ahead = self
            .ahead
            .get_or_insert_with(|| BytesMut::with_capacity(FIRST_READ));
        if ahead.is_empty() {
            ready!(poll_read_buf(Pin::new(&mut self.inner), cx, ahead))?;
        }
        let n = ahead.len().min(buf.remaining());
        buf.put_slice(&ahead[..n]);
        ahead.advance(n);
        if ahead.is_empty() {
            self.ahead = None;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends file bytes queued in `outbox` with `sendfile` where their stand-ins are
    /// written. Only for a plain, unpaced stream: anything that copies or slows the bytes
    /// would send the stand-ins themselves.
    pub(crate) fn with_outbox(mut self, outbox: Option<Outbox>) -> Self {
        let plain = matches!(self.inner, Stream::Plain(_)) && self.pacer.is_none();
        debug_assert!(
            plain || outbox.is_none(),
            "an outbox for a stream that copies"
        );
        self.outbox = outbox.filter(|_| plain);
        self
    }

    /// Sends 414 and ends the sending side; the client gets it, then end of file.
    fn refuse_long_line(&mut self) {
        info!(
            target: "labserv::http",
            "{} request line longer than {} KiB: 414",
            self.peer,
            MAX_REQUEST_LINE / 1024
        );
        // A few hundred bytes fit an empty send buffer; a client that will not read them
        // loses nothing it would have used.
        self.inner.refuse(URI_TOO_LONG);
        self.draining = true;
    }

    /// Reads and drops what arrives; end of file (to hyper) once the client closes.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 4096];
        loop {
            let mut sink = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(())) if sink.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.draining {
            return self.drain(cx);
        }
        if let Some(byte) = self.carry.take() {
            buf.put_slice(&[byte]);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let fresh = self.state.between_requests();
        let result = self.read_inner(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let this = &mut *self;
            let fresh_bytes = &buf.filled()[before..];
            if !this.sniffed {
                this.sniffed = true;
                let n = fresh_bytes.len().min(H2_PREFACE.len());
                if fresh_bytes[..n] == H2_PREFACE[..n] {
                    this.state.h2.store(true, Ordering::Relaxed);
                }
            }
            if this.state.reading_heads() {
                let look = this.line.look(fresh, fresh_bytes);
                if look.too_long {
                    // hyper never sees this head.
                    buf.set_filled(before);
                    this.refuse_long_line();
                    return this.drain(cx);
                }
                if let Some(at) = look.slash_at {
                    this.carry = insert_slash(buf, before + at);
                }
            }
            this.state.on_read();
        }
        result
    }
}

/// Puts a `/` at `at` in what `buf` holds, shifting the rest along; returns the last byte
/// when a full buffer has no room for it.
fn insert_slash(buf: &mut ReadBuf<'_>, at: usize) -> Option<u8> {
    let end = buf.filled().len();
    let last = buf.filled()[end - 1];
    let filled = buf.filled_mut();
    filled.copy_within(at..end - 1, at + 1);
    filled[at] = b'/';
    if buf.remaining() > 0 {
        buf.put_slice(&[last]);
        None
    } else {
        Some(last)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.on_answer();
        if self.outbox.is_some() {
            return self.poll_write_vectored(cx, &[io::IoSlice::new(buf)]);
        }
        let this = &mut *self;
        let Some(pacer) = &mut this.pacer else {
            let result = Pin::new(&mut this.inner).poll_write(cx, buf);
            if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
                this.state.on_write();
            }
            return result;
        };
        let allowed = ready!(pacer.allow(cx, buf.len()));
        let result = Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]);
        if let Poll::Ready(Ok(n)) = result
            && n > 0
        {
            pacer.spent(n);
            this.state.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.on_answer();
        if self.pacer.is_some() {
            // Paced: one slice at a time is plenty.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        let mut bufs = bufs;
        let this = &mut *self;
        if let (Some(outbox), Stream::Plain(tcp)) = (&this.outbox, &mut this.inner) {
            match sendfile::plan(bufs) {
                Plan::File { at, len } => {
                    let tcp = match tcp.polled() {
                        Ok(tcp) => &*tcp,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    let result = sendfile::poll_send(outbox, tcp, cx, at, len);
                    if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
                        this.state.on_write();
                    }
                    return result;
                }
                Plan::Bytes(n) => bufs = &bufs[..n],
            }
        }
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.pacer.is_none() && self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        if self.state.cut.load(Ordering::Acquire) {
            // hyper flushes once its buffer is written: all before the cut is out.
            self.inner.refuse(b"");
            return Poll::Ready(Err(io::Error::other("cut on purpose (--drop-after)")));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.body_open.load(Ordering::Relaxed) && matches!(self.inner, Stream::Plain(_)) {
            return self.linger(cx);
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How long a connection closing with a request body unread keeps reading it.
const LINGER: Duration = Duration::from_secs(2);

impl Tracked {
    /// Closes a connection whose answer went out before the request's body was read
    /// (401, 405, 413). Closing the socket with body bytes unread would reset the
    /// connection, and a client still sending its body could lose the answer before
    /// reading it (a browser then shows "connection reset" in place of "too large"). So,
    /// as nginx does, the sending side is shut first, and what the client still sends is
    /// read and dropped until it closes too, or for [`LINGER`].
    fn linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let linger = self.linger.get_or_insert_with(|| {
            if let Stream::Plain(tcp) = &self.inner {
                let _ = tcp.shutdown_write();
            }
            Box::pin(tokio::time::sleep(LINGER))
        });
        if linger.as_mut().poll(cx).is_pending() && self.drain(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
