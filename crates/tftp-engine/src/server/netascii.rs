//! labserv patch: netascii (RFC 764 as RFC 1350 uses it) translation, so that clients that
//! ask for it (tftp-hpa's client does by default) get what tftpd-hpa gives them.
//!
//! Reads: LF becomes CR LF and a bare CR becomes CR NUL. Writes: CR LF becomes LF and
//! CR NUL becomes CR; any other CR is kept. Octet transfers pass straight through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A reader that translates to netascii when asked, and passes bytes through otherwise.
pub(crate) struct Encode<R> {
    inner: R,
    netascii: bool,
    /// A byte that did not fit in the caller's buffer.
    pending: Option<u8>,
    scratch: Vec<u8>,
}

impl<R> Encode<R> {
    pub(crate) fn new(inner: R, netascii: bool) -> Self {
        Encode {
            inner,
            netascii,
            pending: None,
            scratch: Vec::new(),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Encode<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.netascii {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let buf = out.initialize_unfilled();
        let n = match this.translate(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        out.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> Encode<R> {
    /// Reads and translates into `buf`; how many bytes were put there.
    fn translate(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut n = 0;
        if let Some(b) = this.pending.take() {
            buf[0] = b;
            n = 1;
            if n == buf.len() {
                return Poll::Ready(Ok(n));
            }
        }
        // Each byte read becomes at most two.
        let want = ((buf.len() - n) / 2).max(1);
        this.scratch.resize(want, 0);
        let mut scratch = ReadBuf::new(&mut this.scratch[..want]);
        let got = match Pin::new(&mut this.inner).poll_read(cx, &mut scratch) {
            Poll::Pending if n > 0 => return Poll::Ready(Ok(n)),
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => scratch.filled().len(),
        };
        for &b in &this.scratch[..got] {
            let pair = match b {
                b'\n' => [b'\r', b'\n'],
                b'\r' => [b'\r', 0],
                b => {
                    buf[n] = b;
                    n += 1;
                    continue;
                }
            };
            buf[n] = pair[0];
            n += 1;
            if n < buf.len() {
                buf[n] = pair[1];
                n += 1;
            } else {
                this.pending = Some(pair[1]);
            }
        }
        Poll::Ready(Ok(n))
    }
}

/// A writer that translates from netascii when asked, and passes bytes through otherwise.
pub(crate) struct Decode<W> {
    inner: W,
    netascii: bool,
    /// A CR at the end of the last write, waiting for the byte after it.
    cr: bool,
    /// Translated bytes not yet taken by `inner`.
    out: Vec<u8>,
    written: usize,
}

impl<W> Decode<W> {
    pub(crate) fn new(inner: W, netascii: bool) -> Self {
        Decode {
            inner,
            netascii,
            cr: false,
            out: Vec::new(),
            written: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin> Decode<W> {
    /// Hands `inner` what is translated and waiting.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Decode<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.netascii {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        match this.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        for &b in buf {
            if this.cr {
                this.cr = false;
                match b {
                    b'\n' => this.out.push(b'\n'),
                    0 => this.out.push(b'\r'),
                    b'\r' => {
                        this.out.push(b'\r');
                        this.cr = true;
                    }
                    b => this.out.extend_from_slice(&[b'\r', b]),
                }
            } else if b == b'\r' {
                this.cr = true;
            } else {
                this.out.push(b);
            }
        }
        // Accepted: what `inner` has not taken yet goes on the next call or the flush.
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.cr {
            // A CR as the very last byte stands for itself.
            this.cr = false;
            this.out.push(b'\r');
        }
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
