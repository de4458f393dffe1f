use bytes::{BufMut, Bytes, BytesMut};
use log::trace;
use std::cmp;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::slice;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

#[cfg(unix)]
use rustix::net::sockopt::{set_socket_timeout, Timeout};
use tokio::net::UdpSocket;
use tokio::time::Sleep;

use crate::error::{Error, Result};
use crate::packet::{Opts, Packet, RwReq, PACKET_DATA_HEADER_LEN};
use crate::server::{stopping_error, FaultyLink, Outcome, ServerConfig, DEFAULT_BLOCK_SIZE};

pub(crate) struct ReadRequest<'r, R>
where
    R: AsyncRead + Send,
{
    peer: SocketAddr,
    socket: UdpSocket,
    reader: &'r mut R,
    block_size: usize,
    timeout: Duration,
    max_send_retries: u32,
    oack_opts: Option<Opts>,
    window_size: usize,
    /// labserv patch: polling for the next ACK (see [`Spin`]).
    spin: Spin,
    /// labserv patch: the ACK timeout (see [`Clock`]).
    clock: Clock,
    /// labserv patch: set when the server stops (see `StopHandle`).
    stopping: Arc<AtomicBool>,
    /// labserv patch: data bytes the client acknowledged.
    pub(crate) bytes: u64,
    /// labserv patch: whether the client has acknowledged anything yet.
    heard: bool,
    /// labserv patch: packets sent again after a timeout.
    pub(crate) retransmits: u32,
    /// labserv patch: packets lost or held back on purpose.
    link: Option<FaultyLink>,
    /// labserv patch: where blocks are built. Each block is split off it; once the client
    /// has acknowledged a window and its blocks are dropped, the memory is taken back
    /// instead of allocating a block's worth again.
    blocks: BytesMut,
    /// labserv patch: the other buffer blocks are built in. The window being read ahead is
    /// cut from one while the window in flight still holds the other.
    spare: BytesMut,
    /// labserv patch: blocks read while the client was taking in the window before them
    /// (see `read_ahead`).
    ahead: VecDeque<Bytes>,
    /// labserv patch: the number of the next block to read from the file.
    next_block: u16,
    /// labserv patch: whether the last block has been read.
    read_all: bool,
}

impl<'r, R> ReadRequest<'r, R>
where
    R: AsyncRead + Send + Unpin,
{
    pub(crate) async fn init(
        reader: &'r mut R,
        file_size: Option<u64>,
        peer: SocketAddr,
        req: &RwReq,
        config: ServerConfig,
        local_ip: IpAddr,
    ) -> Result<ReadRequest<'r, R>> {
        let oack_opts = build_oack_opts(&config, req, file_size);

        let block_size = oack_opts
            .as_ref()
            .and_then(|o| o.block_size)
            .map(usize::from)
            .unwrap_or(DEFAULT_BLOCK_SIZE);

        // Default window size is 1 as per rfc7440
        let negotiated_window_size: usize = oack_opts
            .as_ref()
            .and_then(|o| o.window_size)
            .unwrap_or(1u16) as usize;

        let timeout = oack_opts
            .as_ref()
            .and_then(|o| o.timeout)
            .map(|t| Duration::from_secs(u64::from(t)))
            .unwrap_or(config.timeout)
            // labserv patch: never longer than the server lets a transfer stay silent.
            .min(silent_budget(&config));

        // labserv patch: connected to the client, as tftpd-hpa and atftpd do. The kernel
        // then keeps the route for every packet sent (an unconnected `send_to` looks it
        // up on each), delivers only the client's packets, and reports a client that has
        // gone (ICMP port unreachable) instead of leaving the transfer to time out.
        let socket = transfer_socket(local_ip, peer).await?;

        Ok(ReadRequest {
            peer,
            socket,
            reader,
            block_size,
            timeout,
            max_send_retries: silent_retries(&config, timeout),
            heard: false,
            oack_opts,
            window_size: negotiated_window_size,
            spin: Spin::new(block_size),
            clock: Clock::default(),
            stopping: Arc::clone(&config.stopping),
            bytes: 0,
            retransmits: 0,
            link: FaultyLink::new(config.faults),
            blocks: BytesMut::new(),
            spare: BytesMut::new(),
            ahead: VecDeque::with_capacity(negotiated_window_size),
            next_block: 1,
            read_all: false,
        })
    }

    /// labserv patch: the negotiated block and window sizes.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.block_size, self.window_size)
    }

    pub(crate) async fn handle(&mut self) -> Outcome {
        let _counted = Running::start();
        let result = self.try_handle().await;
        let outcome = Outcome::of(&result);
        // labserv patch: a client that sent an ERROR, or has gone, gets nothing back.
        if let (Err(e), true) = (result, outcome.tell_client()) {
            trace!("RRQ request failed (peer: {}, error: {})", &self.peer, &e);
            let mut buffer = BytesMut::with_capacity(DEFAULT_BLOCK_SIZE);
            Packet::Error(e.into()).encode(&mut buffer);
            let buf = buffer.split().freeze();
            // Errors are never retransmitted.
            // We do not care if `send_to` resulted to an IO error.
            let _ = self.socket.send(&buf[..]).await;
        }
        outcome
    }

    async fn try_handle(&mut self) -> Result<()> {
        let mut window: VecDeque<Bytes> = VecDeque::with_capacity(self.window_size);
        let mut window_base: u16 = 1;

        window.push_back(self.fill_data_block().await?);

        // Send OACK after we manage to read the first block from reader.
        //
        // We do this because we want to give the developers the option to
        // produce an error after they construct a reader.
        if let Some(opts) = self.oack_opts.as_ref() {
            trace!("RRQ OACK (peer: {}, opts: {:?}", &self.peer, &opts);
            let mut buff = BytesMut::with_capacity(PACKET_DATA_HEADER_LEN + 64);
            Packet::OAck(opts.to_owned()).encode(&mut buff);
            // OACK is not really part of the window, so we send it separately
            self.send_window(&VecDeque::from([buff.freeze()]), 0)
                .await?;
        }

        loop {
            // labserv patch: the window is topped up with the blocks read ahead first.
            while window.len() < self.window_size {
                match self.ahead.pop_front() {
                    Some(block) => window.push_back(block),
                    None if self.read_all => break,
                    None => window.push_back(self.fill_data_block().await?),
                }
            }

            let blocks_acked = self.send_window(&window, window_base).await?;
            // labserv patch: count what the client has acknowledged.
            for block in window.iter().take(blocks_acked as usize) {
                self.bytes += (block.len() - PACKET_DATA_HEADER_LEN) as u64;
            }
            window_base = window_base.wrapping_add(blocks_acked);

            // remove acked blocks from window
            if blocks_acked == window.len() as u16 {
                window.clear()
            } else {
                window.drain(..blocks_acked as usize);
                // labserv patch: a window acknowledged in part goes out again from the
                // first block missing (RFC 7440's rewind): those blocks are resends.
                self.retransmits += window.len() as u32;
            }

            if self.read_all && window.is_empty() && self.ahead.is_empty() {
                // transfer is done
                break;
            }
        }

        trace!("RRQ request served (peer: {})", &self.peer);
        Ok(())
    }

    /// labserv patch: reads the blocks after the window just sent, while the client takes
    /// that window in and acknowledges it, so that the next window goes out as soon as
    /// its ACK arrives: the file read is off the round trip, as tftpd-hpa's read-ahead
    /// does for lock-step. At most a window's worth is read ahead.
    async fn read_ahead(&mut self) -> Result<()> {
        while !self.read_all && self.ahead.len() < self.window_size {
            let block = self.fill_data_block().await?;
            self.ahead.push_back(block);
        }
        Ok(())
    }

    /// Reads the next block from the file into a DATA packet (labserv patch: numbered by
    /// `next_block`, and `read_all` set when it is the last).
    async fn fill_data_block(&mut self) -> Result<Bytes, Error> {
        let block_id = self.next_block;
        let room = PACKET_DATA_HEADER_LEN + self.block_size;
        // labserv patch: build in whichever buffer has its blocks back. When this one's
        // are still out, the other's usually are (the window before the one in flight);
        // if neither's are, a window's worth of memory is allocated afresh.
        if !self.blocks.try_reclaim(room) {
            std::mem::swap(&mut self.blocks, &mut self.spare);
            if !self.blocks.try_reclaim(room) {
                self.blocks = BytesMut::with_capacity(room * self.window_size);
            }
        }
        let mut buffer = std::mem::take(&mut self.blocks);
        Packet::encode_data_head(block_id, &mut buffer);

        // Read block in buffer
        unsafe {
            let uninit_buf = buffer.chunk_mut();
            // labserv patch: the buffer may hold more than one block's room.
            let data_buf = slice::from_raw_parts_mut(
                uninit_buf.as_mut_ptr(),
                cmp::min(uninit_buf.len(), self.block_size),
            );

            // A failed read ends the transfer: the buffer need not go back.
            let len = self.read_block(data_buf).await?;
            buffer.advance_mut(len);
            let block = buffer.split().freeze();
            self.blocks = buffer;
            self.next_block = block_id.wrapping_add(1);
            self.read_all = len < self.block_size;
            Ok(block)
        }
    }

    /// Sends packets contained in a window and waits for client to acknowledge them. Returns amount
    /// of packets acknowledged.
    async fn send_window(&mut self, window: &VecDeque<Bytes>, window_base: u16) -> Result<u16> {
        // labserv patch: until the client has acknowledged anything, the first packet
        // goes out at most twice: a request with a forged source address (the victim's)
        // then makes 2 packets, not one per retry (TFTP reflection).
        let retries = if self.heard {
            self.max_send_retries
        } else {
            self.max_send_retries.min(1)
        };
        // Send packet until we receive an ack
        for attempt in 0..=retries {
            // labserv patch: a stopping server ends the transfer with an ERROR.
            if self.stopping.load(Ordering::Acquire) {
                return Err(stopping_error());
            }
            if attempt > 0 {
                self.retransmits += window.len() as u32;
            }
            for packet in window {
                // labserv patch: through the faults asked for.
                FaultyLink::send(&mut self.link, &self.socket, &packet[..]).await?;
            }
            if attempt == 0 {
                self.read_ahead().await?;
            }

            match self.recv_ack(window_base, window.len() as u16).await {
                Ok(blocks_acked) => {
                    self.heard = true;
                    trace!(
                        "RRQ (peer: {}, window_base: {}, blocks_acked: {}, window_len: {}) - Received ACK",
                        &self.peer,
                        window_base,
                        blocks_acked,
                        window.len()
                    );
                    return Ok(blocks_acked);
                }
                Err(ref e) if e.kind() == io::ErrorKind::TimedOut => {
                    trace!(
                        "RRQ (peer: {}, block_id: {}) - Timeout",
                        &self.peer,
                        window_base
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }

        Err(Error::MaxSendRetriesReached(self.peer, window_base))
    }

    /// Waits for ack packet, returns amount of packets acknowledged.
    async fn recv_ack(&mut self, window_base: u16, window_len: u16) -> io::Result<u16> {
        // We can not use `self` within `async_std::io::timeout` because not all
        // struct members implement `Sync`. So we borrow only what we need.
        let socket = &mut self.socket;
        let peer = self.peer;
        let spin = &mut self.spin;
        let deadline = Instant::now() + self.timeout;

        let recv = async {
            let mut buf = [0u8; 1024];

            loop {
                let (len, recved_peer) =
                    recv_next(socket, peer, spin, deadline, &mut buf[..]).await?;

                // if the packet do not come from the client we are serving, then ignore it
                if recved_peer != peer {
                    continue;
                }

                // labserv patch: a client's ERROR ends the transfer at once
                // (RFC 1350); PXE ROMs send one right after their tsize probe.
                if let Ok(Packet::Error(e)) = Packet::decode(&buf[..len]) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("client ended the transfer: {e:?}"),
                    ));
                }

                // parse only valid Ack packets, the rest are ignored
                if let Ok(Packet::Ack(recved_block_id)) = Packet::decode(&buf[..len]) {
                    let window_end = window_base.wrapping_add(window_len);

                    if window_end > window_base {
                        // window_end did not wrap
                        if recved_block_id >= window_base && recved_block_id < window_end {
                            // number of blocks acked
                            return Ok(recved_block_id - window_base + 1u16);
                        } else {
                            trace!("Unexpected ack packet {recved_block_id}, window_base: {window_base}, window_len: {window_len}");
                        }
                    } else {
                        // window_end wrapped
                        if recved_block_id >= window_base {
                            return Ok(1u16 + (recved_block_id - window_base));
                        } else if recved_block_id < window_end {
                            return Ok(1u16 + recved_block_id + (window_len - window_end));
                        } else {
                            trace!("Unexpected ack packet {recved_block_id}, window_base: {window_base}, window_len: {window_len}");
                        }
                    }
                }
            }
        };
        crate::server::first(recv, self.clock.expire(deadline)).await
    }

    async fn read_block(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut len = 0;

        while len < buf.len() {
            match self.reader.read(&mut buf[len..]).await? {
                0 => break,
                x => len += x,
            }
        }

        Ok(len)
    }
}

fn build_oack_opts(config: &ServerConfig, req: &RwReq, file_size: Option<u64>) -> Option<Opts> {
    let mut opts = Opts::default();

    if !config.ignore_client_block_size {
        opts.block_size = match (req.opts.block_size, config.block_size_limit) {
            (Some(bsize), Some(limit)) => Some(cmp::min(bsize, limit)),
            (Some(bsize), None) => Some(bsize),
            _ => None,
        };
    }

    if !config.ignore_client_timeout {
        opts.timeout = req.opts.timeout;
    }

    if let (Some(0), Some(file_size)) = (req.opts.transfer_size, file_size) {
        opts.transfer_size = Some(file_size);
    }

    if !config.ignore_client_window_size {
        opts.window_size = match (req.opts.window_size, config.window_size_limit) {
            (Some(wsize), Some(limit)) => Some(cmp::min(wsize, limit)),
            (Some(wsize), None) => Some(wsize),
            _ => None,
        };
        // labserv patch: only as many blocks in flight as a client's receive buffer holds.
        let block = opts.block_size.unwrap_or(512);
        opts.window_size = opts.window_size.map(|w| cmp::min(w, window_fit(block)));
    }

    if opts == Opts::default() {
        None
    } else {
        Some(opts)
    }
}

/// labserv patch: the receive buffer a client has unless it asks for more: Linux's default
/// `net.core.rmem_default`, 208 KiB.
const CLIENT_RECEIVE_BUFFER: usize = 212_992;

/// labserv patch: the largest window of `block`-byte blocks that fits in a client's
/// default receive buffer ([`CLIENT_RECEIVE_BUFFER`]), at least 1.
///
/// The kernel charges each datagram waiting in a socket its whole allocation, not its
/// length: the packet's data buffer (the payload, 4 bytes of TFTP, 28 of UDP and IP, 31 of
/// link-layer room and alignment, and 320 of shared bookkeeping, rounded up to a power of
/// two) and then 256 bytes for the socket buffer's own header. A window that does not fit
/// loses its tail to the client's kernel on every round and a transfer crawls through
/// timeouts: blocks of 1468 bytes (2,304 bytes each) fit 92 to a window, 4096 25, 8192
/// (16,640) 12, and blocks of 65464 (128 KiB) only one, which is lock-step.
pub(crate) fn window_fit(block: u16) -> u16 {
    let charge = (usize::from(block) + 63 + 320).next_power_of_two() + 256;
    u16::try_from(CLIENT_RECEIVE_BUFFER / charge)
        .unwrap_or(u16::MAX)
        .max(1)
}

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
