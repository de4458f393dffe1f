//! What a connection's watchdog knows: when bytes last moved, when a request head began,
//! how many requests run; and the stream wrapper that tells it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Limits;

/// Milliseconds since the first call, never 0 (0 means "not set" below).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
}

/// What the watchdog needs to know about a connection, updated by its I/O and requests.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// When bytes last moved in either direction.
    last_io: AtomicU64,
    /// When the first byte of a request head arrived while no request was running; 0 if none.
    head_started: AtomicU64,
    /// Requests whose responses have not finished.
    in_flight: AtomicUsize,
    /// The client speaks HTTP/2: its idle traffic (pings, window updates) is no request
    /// head, and h2 frames its own requests, so only the idle limit applies.
    h2: AtomicBool,
}

impl ConnState {
    pub(crate) fn new() -> Self {
        Self {
            last_io: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(false),
        }
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now, Ordering::Relaxed);
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
pub(crate) async fn watchdog(state: &ConnState, limits: Limits) -> String {
    let header_ms = u64::try_from(limits.header_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    loop {
        let last_io = state.last_io.load(Ordering::Relaxed);
        let head = state.head_started.load(Ordering::Relaxed);
        let busy = state.in_flight.load(Ordering::Relaxed) > 0;
        let (deadline, why) = if !busy && head != 0 {
            (
                head + header_ms,
                format!(
                    "request headers not complete after {:?}",
                    limits.header_timeout
                ),
            )
        } else {
            (
                last_io + idle_ms,
                format!("no traffic for {:?}", limits.idle_timeout),
            )
        };
        let now = now_ms();
        if now >= deadline {
            return why;
        }
        // Nothing wakes this task when a request head starts arriving, so it looks again
        // at least once per header timeout: a head that starts is then noticed before its
        // own deadline, which is met exactly.
        let nap = (deadline - now).min(header_ms.max(1));
        tokio::time::sleep(Duration::from_millis(nap)).await;
    }
}

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A TCP stream that reports its traffic to the connection's watchdog.
pub(crate) struct Tracked {
    pub(crate) inner: TcpStream,
    pub(crate) state: Arc<ConnState>,
    /// Whether the first bytes have been looked at for the HTTP/2 preface.
    pub(crate) sniffed: bool,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if !self.sniffed {
                self.sniffed = true;
                let first = &buf.filled()[before..];
                let n = first.len().min(H2_PREFACE.len());
                if first[..n] == H2_PREFACE[..n] {
                    self.state.h2.store(true, Ordering::Relaxed);
                }
            }
            self.state.on_read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
