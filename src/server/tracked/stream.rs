//! A client's connection, plain TCP or TLS over it, as one stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::super::socket::Tcp;

/// A client's connection: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(Tcp),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// Sends `answer` (what fits the socket's buffer, without waiting) and ends the
    /// sending side.
    pub(super) fn refuse(&mut self, answer: &[u8]) {
        match self {
            Stream::Plain(tcp) => {
                let _ = tcp.try_write(answer);
                let _ = tcp.shutdown_write();
            }
            Stream::Tls(tls) => super::super::tls::refuse(tls, answer),
        }
    }
}

/// Calls the same method on whichever stream it is.
macro_rules! either {
    ($self:expr, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // hyper shuts a connection down just before dropping it, and closing the
            // socket sends the same FIN after what is queued: a `shutdown` first would be
            // one more system call on every `Connection: close` request.
            Stream::Plain(_) => Poll::Ready(Ok(())),
            // TLS has its close_notify to send.
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
