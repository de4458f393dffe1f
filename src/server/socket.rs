//! Accepted connections that join the event loop only once they have to wait.
//!
//! The listener hands over a connection once its request has come (see [`defer_accept`]),
//! and a small response fits the socket's send buffer. Such a connection is read from and
//! written to at once, and closed, without ever being added to the event loop's epoll
//! set: that spares it two `epoll_ctl` calls (the add, and the remove before the close)
//! and a turn of the event loop before its first read. A connection joins the event loop
//! the first time a read or write would block, and stays in it from then on.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The listening socket, handing out connections not yet in the event loop.
pub(crate) struct Listener {
    #[cfg(unix)]
    inner: tokio::io::unix::AsyncFd<std::net::TcpListener>,
    #[cfg(not(unix))]
    inner: tokio::net::TcpListener,
}

impl Listener {
    pub(crate) fn new(listener: tokio::net::TcpListener) -> io::Result<Self> {
        #[cfg(unix)]
        let inner = {
            let listener = listener.into_std()?;
            defer_accept(&listener);
            // SAFETY: the listener is moved into the `AsyncFd` and closed only when that
            // is dropped, so its descriptor names the same socket while it is registered.
            unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    listener,
                    tokio::io::Interest::READABLE,
                )
            }?
        };
        #[cfg(not(unix))]
        let inner = listener;
        Ok(Self { inner })
    }

    /// Waits for the next connection. Cancel-safe: a connection not yet taken stays queued.
    pub(crate) async fn accept(&self) -> io::Result<(Tcp, SocketAddr)> {
        #[cfg(unix)]
        loop {
            let mut ready = self.inner.readable().await?;
            if let Ok(result) = ready.try_io(|listener| accept_now(listener.get_ref())) {
                return result;
            }
        }
        #[cfg(not(unix))]
        {
            let (tcp, peer) = self.inner.accept().await?;
            Ok((Tcp(Inner::Polled(tcp)), peer))
        }
    }
}

/// Asks the kernel to hand over a connection only once its first bytes have come (or
/// after about a second of silence), as Apache does on Linux. Such a connection is read
/// at once instead of waiting in the event loop, and a client that connects and sends
/// nothing costs the server nothing for that second.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn defer_accept(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let seconds: libc::c_int = 1;
    // SAFETY: a documented option set on a socket this function borrows, from a local
    // of the size given; a failure leaves the socket as it was, which only costs speed.
    unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const seconds).cast(),
            std::mem::size_of_val(&seconds) as libc::socklen_t,
        );
    }
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn defer_accept(_: &std::net::TcpListener) {}

/// Takes a queued connection without blocking, already non-blocking itself (one system
/// call, where `std`'s accept and a `set_nonblocking` after it would be two).
#[cfg(unix)]
fn accept_now(listener: &std::net::TcpListener) -> io::Result<(Tcp, SocketAddr)> {
    let sock = socket2::SockRef::from(listener);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let (conn, addr) = sock.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let (conn, addr) = {
        let (conn, addr) = sock.accept()?;
        conn.set_nonblocking(true)?;
        (conn, addr)
    };
    let peer = addr
        .as_socket()
        .ok_or_else(|| io::Error::other("a TCP connection from a non-IP address"))?;
    Ok((Tcp(Inner::Unpolled(conn.into())), peer))
}

/// A client's TCP connection.
pub(crate) struct Tcp(Inner);

enum Inner {
    /// Not in the event loop: every call is tried at once.
    #[cfg_attr(not(unix), allow(dead_code))] // accepted straight into the event loop there
    Unpolled(std::net::TcpStream),
    /// In the event loop, which wakes the connection when it can go on.
    Polled(tokio::net::TcpStream),
    /// Adding it to the event loop failed; the socket is closed.
    Gone,
}

impl Tcp {
    /// The connection in the event loop, added now if it was not.
    pub(crate) fn polled(&mut self) -> io::Result<&mut tokio::net::TcpStream> {
        if matches!(self.0, Inner::Unpolled(_))
            && let Inner::Unpolled(tcp) = std::mem::replace(&mut self.0, Inner::Gone)
        {
            self.0 = Inner::Polled(tokio::net::TcpStream::from_std(tcp)?);
        }
        match &mut self.0 {
            Inner::Polled(tcp) => Ok(tcp),
            _ => Err(gone()),
        }
    }

    /// The connection as a tokio stream, for what needs one whole (TLS).
    pub(crate) fn into_polled(mut self) -> io::Result<tokio::net::TcpStream> {
        self.polled()?;
        match self.0 {
            Inner::Polled(tcp) => Ok(tcp),
            _ => Err(gone()),
        }
    }

    /// Writes what fits the send buffer now, without waiting.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            Inner::Unpolled(tcp) => (&*tcp).write(buf),
            Inner::Polled(tcp) => tcp.try_write(buf),
            Inner::Gone => Err(gone()),
        }
    }

    /// Reads and drops what has arrived (up to 64 KiB), without waiting.
    pub(crate) fn discard_pending(&self) {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            let read = match &self.0 {
                Inner::Unpolled(tcp) => (&*tcp).read(&mut sink),
                Inner::Polled(tcp) => tcp.try_read(&mut sink),
                Inner::Gone => return,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        }
    }

    /// Ends the sending side.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match &self.0 {
            Inner::Unpolled(tcp) => tcp.shutdown(std::net::Shutdown::Write),
            Inner::Polled(tcp) => socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write),
            Inner::Gone => Err(gone()),
        }
    }

    /// Runs `attempt` on the unpolled socket; if it would block, adds the connection to
    /// the event loop and runs `polled` instead, which registers for the wake-up.
    fn poll_io<T>(
        &mut self,
        attempt: impl FnOnce(&std::net::TcpStream) -> io::Result<T>,
        polled: impl FnOnce(Pin<&mut tokio::net::TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Inner::Unpolled(tcp) = &self.0 {
            match attempt(tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
        match self.polled() {
            Ok(tcp) => polled(Pin::new(tcp)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection could not join the event loop",
    )
}

#[cfg(unix)]
impl Tcp {
    /// A connection accepted elsewhere (another process let go of it), with its peer.
    #[cfg_attr(not(unix), allow(dead_code))] // the Python workers adopt
    pub(crate) fn adopt(tcp: std::net::TcpStream) -> io::Result<(Self, SocketAddr)> {
        tcp.set_nonblocking(true)?;
        let peer = tcp.peer_addr()?;
        Ok((Self(Inner::Unpolled(tcp)), peer))
    }

    /// The socket's descriptor; none once gone.
    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match &self.0 {
            Inner::Unpolled(tcp) => Some(tcp.as_fd()),
            Inner::Polled(tcp) => Some(tcp.as_fd()),
            Inner::Gone => None,
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Inner::Unpolled(tcp) = &this.0 {
            // The buffer the first read goes into is initialized already, so this costs
            // nothing there; later reads are in the event loop.
            match (&*tcp).read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match this.polled() {
            Ok(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_io(|tcp| (&*tcp).write(buf), |tcp| tcp.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(
            |tcp| (&*tcp).write_vectored(bufs),
            |tcp| tcp.poll_write_vectored(cx, bufs),
        )
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // TCP has no buffer of its own to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_write())
    }
}
