//! What a connection's deadlines are checked against: when bytes last moved, when a request head began,
//! how many requests run; and the stream wrapper that tells it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;
use tracing::info;

use super::Limits;
use super::line::{MAX_REQUEST_LINE, RequestLine, URI_TOO_LONG};
use super::pace::Pacer;
use super::sendfile::{self, Outbox, Plan};
use super::socket::Tcp;

/// Milliseconds since the first call, never 0 (0 means "not set" below).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
}

/// What the deadline check needs to know about a connection, updated by its I/O and requests.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// When bytes last moved in either direction.
    last_io: AtomicU64,
    /// When the first byte of a request head arrived while no request was running; 0 if none.
    head_started: AtomicU64,
    /// Requests whose responses have not finished.
    in_flight: AtomicUsize,
    /// The last HTTP/1 request's body has not been read to its end: what arrives is
    /// still body, even once its answer is out (see `super::inbound`).
    body_open: AtomicBool,
    /// The client speaks HTTP/2: its idle traffic (pings, window updates) is no request
    /// head, and h2 frames its own requests, so only the idle limit applies.
    h2: AtomicBool,
    /// The socket, for asking whether the client has closed its side.
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    /// Set once shutdown's drain deadline has passed: what is cut now, shutdown cut.
    pub(crate) closing: Arc<AtomicBool>,
    /// A response was cut on purpose (`--drop-after`): the connection closes at its next
    /// flush, when everything before the cut has gone out.
    pub(crate) cut: AtomicBool,
    /// Told when a request starts to arrive and when an answer starts to go out.
    arrivals: Option<Box<dyn Arrivals>>,
}

/// What a handler hears of a connection's HTTP/1 requests as bytes move, before hyper
/// has made a request of them (see [`super::conn::Handler::arrivals`]).
pub(crate) trait Arrivals: Send + Sync + std::fmt::Debug {
    /// The first bytes of a request head have been read.
    fn started(&self);
    /// Bytes of an answer are about to be written.
    fn answering(&self);
}

impl ConnState {
    pub(crate) fn new(stream: &Tcp, closing: Arc<AtomicBool>) -> Self {
        #[cfg(not(unix))]
        let _ = stream;
        Self {
            last_io: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            body_open: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            #[cfg(unix)]
            fd: stream
                .fd()
                .map_or(-1, |fd| std::os::fd::AsRawFd::as_raw_fd(&fd)),
            closing,
            cut: AtomicBool::new(false),
            arrivals: None,
        }
    }

    /// Tells `arrivals` of the requests and answers of the connection.
    pub(crate) fn with_arrivals(mut self, arrivals: Option<Box<dyn Arrivals>>) -> Self {
        self.arrivals = arrivals;
        self
    }

    /// Closes the connection once what has been written so far is sent.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::Release);
    }

    /// Whether the next bytes read begin a new request head.
    fn between_requests(&self) -> bool {
        self.reading_heads() && self.head_started.load(Ordering::Relaxed) == 0
    }

    /// Whether what is read now is an HTTP/1 request head: no request is running and the
    /// last one's body was read to its end. After an early answer that left the body
    /// unread, the next head is not looked at; the request after it is.
    fn reading_heads(&self) -> bool {
        !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && !self.body_open.load(Ordering::Relaxed)
    }

    /// The running request's body is yet to be read (`open`), or has ended.
    pub(crate) fn body_open(&self, open: bool) {
        self.body_open.store(open, Ordering::Relaxed);
    }

    /// Whether the client has closed its side while a request runs. hyper notices that
    /// itself only for a handler that may think (`Handler::MAY_THINK`), and then only when
    /// the event loop reports the socket readable; this is the check for the rest (and the
    /// backstop). Like nginx, a client's FIN counts as leaving.
    #[cfg(unix)]
    fn peer_closed(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: a one-byte peek into a local on the connection's own socket, which lives
        // as long as the deadline check that calls this; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                self.fd,
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n == 0
    }

    #[cfg(not(unix))]
    fn peer_closed(&self) -> bool {
        false
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.between_requests() {
            self.head_started.store(now, Ordering::Relaxed);
            if let Some(arrivals) = &self.arrivals {
                arrivals.started();
            }
        }
    }

    /// Called before bytes are written.
    fn on_answer(&self) {
        if let Some(arrivals) = &self.arrivals {
            arrivals.answering();
        }
    }

    fn on_write(&self) {
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
    }

    pub(crate) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }
}

/// Completes when the connection breaks a limit: a request head not finished within
/// `header_timeout` of its first byte (slowloris), or no bytes moving for `idle_timeout`
/// (an idle keep-alive connection, or a client that stopped reading).
pub(crate) async fn deadline(state: &ConnState, limits: Limits) -> String {
    let header_ms = u64::try_from(limits.header_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    loop {
        let last_io = state.last_io.load(Ordering::Relaxed);
        let head = state.head_started.load(Ordering::Relaxed);
        let busy = state.in_flight.load(Ordering::Relaxed) > 0;
        let waiting_for_head = !busy && head != 0;
        let deadline = if waiting_for_head {
            head + header_ms
        } else {
            last_io + idle_ms
        };
        let now = now_ms();
        if now >= deadline {
            // Worded only when it is said: this runs at least once per connection.
            return if waiting_for_head {
                format!(
                    "request headers not complete after {:?}",
                    limits.header_timeout
                )
            } else {
                format!("no traffic for {:?}", limits.idle_timeout)
            };
        }
        // Only while nothing moves: a client that has closed its sending side and is still
        // reading a download (`nc -N` does so) is still being served.
        if busy && now.saturating_sub(last_io) >= PEER_CHECK_MS && state.peer_closed() {
            return "the client closed the connection".to_string();
        }
        // Nothing wakes this task when a request head starts arriving, so it looks again
        // at least once per header timeout: a head that starts is then noticed before its
        // own deadline, which is met exactly. While a request runs, it looks for a client
        // that has gone every quarter second.
        let mut nap = (deadline - now).min(header_ms.max(1));
        if busy {
            nap = nap.min(PEER_CHECK_MS);
        }
        tokio::time::sleep(Duration::from_millis(nap)).await;
    }
}

/// How often a running request's client is checked for having closed, in milliseconds.
const PEER_CHECK_MS: u64 = 250;

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A client's connection: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(Tcp),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// Sends `answer` (what fits the socket's buffer, without waiting) and ends the
    /// sending side.
    fn refuse(&mut self, answer: &[u8]) {
        match self {
            Stream::Plain(tcp) => {
                let _ = tcp.try_write(answer);
                let _ = tcp.shutdown_write();
            }
            Stream::Tls(tls) => super::tls::refuse(tls, answer),
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
mod tests {
    use super::*;

    #[test]
    fn a_slash_fits_in_or_carries_the_last_byte_over() {
        let mut room = [0u8; 16];
        let mut buf = ReadBuf::new(&mut room);
        buf.put_slice(b"GET a HTTP");
        assert_eq!(insert_slash(&mut buf, 4), None);
        assert_eq!(buf.filled(), b"GET /a HTTP");

        let mut full = [0u8; 10];
        let mut buf = ReadBuf::new(&mut full);
        buf.put_slice(b"GET a HTTP");
        assert_eq!(insert_slash(&mut buf, 4), Some(b'P'));
        assert_eq!(buf.filled(), b"GET /a HTT");
    }
}
