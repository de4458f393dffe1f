//! labserv patch: how a transfer waits for its client, shared by reads and uploads: the
//! limits of a silent client, the count of running transfers, polling the socket briefly
//! before waiting in the event loop (`Spin`), the transfer's one timer (`Clock`), its
//! connected socket, and the blocking wait of a transfer alone on its thread
//! (`recv_next`). These were in `read_req.rs` until 0.5.0.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[cfg(unix)]
use rustix::net::sockopt::{set_socket_timeout, Timeout};
use tokio::net::UdpSocket;
use tokio::time::Sleep;

use crate::error::{Error, Result};
use crate::server::ServerConfig;

/// labserv patch: how many times a transfer waiting `timeout` for each answer may wait
/// in all: as long as the server's own timeout and retries allow, whatever `timeout` a
/// client asked for (up to 255 s a wait, which with the server's retry count held a
/// transfer slot for most of an hour).
pub(crate) fn silent_retries(config: &ServerConfig, timeout: Duration) -> u32 {
    let budget = silent_budget(config).as_secs_f64();
    let retries = (budget / timeout.as_secs_f64().max(0.001)).floor();
    (retries as u32).clamp(1, config.max_send_retries.max(1))
}

/// labserv patch: the longest a transfer may stay silent: the server's own timeout times
/// its retries. A client's `timeout` option longer than that is cut to it.
pub(crate) fn silent_budget(config: &ServerConfig) -> Duration {
    config
        .timeout
        .saturating_mul(config.max_send_retries.max(1))
}

/// labserv patch: transfers (reads and uploads) running in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// labserv patch: counts one running transfer while alive.
pub(crate) struct Running;

impl Running {
    pub(crate) fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// labserv patch: polling for the next packet of a lock-step transfer before sleeping.
///
/// On a LAN the client's answer (an ACK to a read, the next DATA of an upload) is usually
/// back within tens of microseconds; polling for it briefly saves going to sleep (in a
/// blocking `recv`, see [`recv_next`]) and being woken again for every block. Only while this
/// is the one transfer running (a crowd of transfers has work enough for the threads);
/// after three misses in a row (a slow link, where polling only burns CPU) it rests for
/// 64 waits. A client takes longer over a big block than a small one (it copies the
/// block in and writes it out before it acknowledges), so the polling lasts longer for
/// big blocks.
pub(crate) struct Spin {
    /// How long one poll lasts at this transfer's block size.
    limit: Duration,
    /// Waits in a row that polling did not catch.
    misses: u8,
    /// Waits left before polling is tried again after a miss streak.
    backoff: u8,
    /// On a transfer's own thread, once it first waits: the receive timeout set on its
    /// socket, which is then in blocking mode (see [`recv_next`]).
    #[cfg(unix)]
    blocking: Option<Duration>,
}

impl Spin {
    /// Polling for a transfer of `block_size`-byte blocks: [`SPIN`] plus 2 ns a byte
    /// (53 µs at 1468 bytes, 66 µs at 8192, 181 µs at 65464).
    pub(crate) fn new(block_size: usize) -> Self {
        let extra = Duration::from_nanos(2 * block_size as u64);
        Spin {
            limit: SPIN + extra,
            misses: 0,
            backoff: 0,
            #[cfg(unix)]
            blocking: None,
        }
    }

    /// A packet that came while polling (or the error the socket reported, such as a
    /// client whose port is closed), or `None`: wait for it (see [`recv_next`]).
    fn poll(&mut self, socket: &UdpSocket, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if self.backoff > 0 {
            self.backoff -= 1;
            return None;
        }
        if RUNNING.load(Ordering::Relaxed) != 1 {
            return None;
        }
        let got = spin_recv(socket, buf, self.limit);
        if got.as_ref().is_some_and(Result::is_ok) {
            self.misses = 0;
        } else {
            self.misses += 1;
            if self.misses >= 3 {
                self.misses = 0;
                self.backoff = 64;
            }
        }
        got
    }
}

/// labserv patch: how long [`spin_recv`] polls for small blocks before giving up.
const SPIN: Duration = Duration::from_micros(50);

/// labserv patch: polls a socket for up to `limit`; `None` if nothing came (or on an
/// error, which the normal receive then reports).
///
/// The socket is read directly: tokio's own `try_recv` answers from the readiness its
/// event loop last saw, which the loop cannot refresh while this thread polls. Windows
/// has no per-call non-blocking receive: there the transfer waits in its event loop.
#[cfg(not(unix))]
fn spin_recv(_socket: &UdpSocket, _buf: &mut [u8], _limit: Duration) -> Option<io::Result<usize>> {
    None
}

/// See the other `spin_recv`.
#[cfg(unix)]
fn spin_recv(socket: &UdpSocket, buf: &mut [u8], limit: Duration) -> Option<io::Result<usize>> {
    let start = std::time::Instant::now();
    loop {
        match rustix::net::recv(socket, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((len, _)) => return Some(Ok(len)),
            Err(rustix::io::Errno::AGAIN) => {
                if start.elapsed() >= limit {
                    return None;
                }
                std::hint::spin_loop();
            }
            Err(rustix::io::Errno::INTR) => {}
            // Reported once and then cleared (ECONNREFUSED from a closed port): it goes
            // up, not lost.
            Err(e) => return Some(Err(e.into())),
        }
    }
}

/// labserv patch: a transfer's timeout for the next ACK (or an upload's next DATA),
/// without a timer registered for every packet.
///
/// Upstream raced each wait against a new `Timer`, and registering a timer wakes the
/// event loop's poller (a write to its eventfd, and a wake-up to read it) whenever the
/// race polled the timer first, which it did at random: one system call and a wake-up
/// per block. Here one timer per transfer stays registered and is moved only when it
/// fires before the deadline now in force, about once per timeout period.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// Made at the first wait (a tokio timer needs the runtime it runs on).
    timer: Option<Pin<Box<Sleep>>>,
    /// When the timer is set to fire, if it is set.
    at: Option<Instant>,
}

impl Clock {
    /// Completes with a `TimedOut` error once `deadline` has passed.
    pub(crate) async fn expire<T>(&mut self, deadline: Instant) -> io::Result<T> {
        loop {
            // A timer set for earlier than the deadline is kept: it fires, and is then
            // moved on to the deadline.
            let at = tokio::time::Instant::from_std(deadline);
            let timer = match &mut self.timer {
                Some(timer) => {
                    if self.at.is_none_or(|at| at > deadline) {
                        timer.as_mut().reset(at);
                    }
                    timer
                }
                None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            if self.at.is_none_or(|at| at > deadline) {
                self.at = Some(deadline);
            }
            timer.as_mut().await;
            self.at = None;
            if Instant::now() >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}

/// labserv patch: a transfer's own socket, on `local_ip` (the address the request came
/// to), connected to `peer`, and registered with the runtime the transfer runs on.
pub(crate) async fn transfer_socket(local_ip: IpAddr, peer: SocketAddr) -> Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(Error::Bind)?;
    socket.connect(peer).await?;
    Ok(socket)
}

/// labserv patch: the next packet from `peer` (an ACK, or an upload's DATA) on the
/// transfer's `socket`, which is connected to it.
///
/// It is polled for first ([`Spin`]). A transfer on its own thread (see
/// `server::spawn_transfer`) then sleeps in a blocking `recv` until the packet comes or
/// `deadline` passes (a `TimedOut` error), as atftpd's thread per transfer does: the
/// client's packet wakes this thread and nothing else, where a wait in the event loop
/// costs a turn of the loop each time. The socket's receive timeout (`SO_RCVTIMEO`) keeps
/// the deadline; it is set when the wait starts and again only when the time left has
/// moved from it by more than [`DEADLINE_SLACK`], so most waits are one system call (a
/// `poll` and then a `recv` were two). A transfer that shares its thread waits in the
/// event loop.
pub(crate) async fn recv_next(
    socket: &UdpSocket,
    peer: SocketAddr,
    spin: &mut Spin,
    deadline: Instant,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    if let Some(got) = spin.poll(socket, buf) {
        return got.map(|len| (len, peer));
    }
    // Windows: always in the event loop (see `spin_recv`); the caller keeps the deadline.
    #[cfg(not(unix))]
    let _ = deadline;
    if cfg!(not(unix)) || !crate::server::on_own_thread() {
        return socket.recv_from(buf).await;
    }
    #[cfg(unix)]
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if spin
            .blocking
            .is_none_or(|set| set.abs_diff(left) > DEADLINE_SLACK)
        {
            if spin.blocking.is_none() {
                // The socket stays registered with the transfer's runtime, which sends
                // on it: a blocking send waits for room rather than for the loop.
                rustix::io::ioctl_fionbio(socket, false)?;
            }
            set_socket_timeout(socket, Timeout::Recv, Some(left))?;
            spin.blocking = Some(left);
        }
        match rustix::net::recv(socket, &mut *buf, rustix::net::RecvFlags::empty()) {
            Ok((len, _)) => return Ok((len, peer)),
            // The receive timeout passed (or a signal came): the deadline decides.
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(not(unix))]
    unreachable!("Windows waits in the event loop, above")
}

/// labserv patch: how far a wait's time left may be from the socket's receive timeout
/// before the timeout is set again: a wait ends at most this much after its deadline.
#[cfg(unix)]
const DEADLINE_SLACK: Duration = Duration::from_millis(5);
