use log::trace;
use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use super::netascii::{Decode, Encode};
use super::read_req::*;
use super::write_req::*;
use super::{Handler, TransferReport};
use crate::error::*;
use crate::packet::{self, Mode, Packet, RwReq};

/// TFTP server.
pub struct TftpServer<H>
where
    H: Handler,
{
    /// labserv patch: registered with the event loop `serve` runs on, once it runs.
    pub(crate) socket: UdpSocket,
    pub(crate) handler: Arc<Mutex<H>>,
    pub(crate) reqs_in_progress: Arc<Mutex<HashSet<SocketAddr>>>,
    pub(crate) config: ServerConfig,
    pub(crate) local_ip: IpAddr,
}

#[derive(Clone)]
pub(crate) struct ServerConfig {
    pub(crate) timeout: Duration,
    pub(crate) block_size_limit: Option<u16>,
    pub(crate) window_size_limit: Option<u16>,
    pub(crate) max_send_retries: u32,
    pub(crate) ignore_client_timeout: bool,
    pub(crate) ignore_client_block_size: bool,
    pub(crate) ignore_client_window_size: bool,
    /// labserv patch: set when the server is stopping (see [`StopHandle`]).
    pub(crate) stopping: Arc<AtomicBool>,
    /// labserv patch: packets to lose or hold back on purpose.
    pub(crate) faults: Option<LinkFaults>,
}

/// labserv patch: what happens on purpose to the DATA, ACK and OACK packets a transfer
/// sends (ERROR packets are left alone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// The share of packets lost, from 0.0 to 1.0.
    pub loss: f64,
    /// How long each packet is held back before it is sent.
    pub delay: Duration,
    /// Seeds the losses: each transfer loses the same packets for the same seed.
    pub seed: u64,
}

/// labserv patch: a transfer's [`LinkFaults`] and its own random numbers.
pub(crate) struct FaultyLink {
    faults: LinkFaults,
    rng: fastrand::Rng,
}

impl FaultyLink {
    pub(crate) fn new(faults: Option<LinkFaults>) -> Option<Self> {
        faults.map(|faults| FaultyLink {
            faults,
            rng: fastrand::Rng::with_seed(faults.seed),
        })
    }

    /// Sends `packet` to the peer `socket` is connected to, late or not at all if the
    /// faults say so.
    pub(crate) async fn send(
        link: &mut Option<Self>,
        socket: &tokio::net::UdpSocket,
        packet: &[u8],
    ) -> std::io::Result<()> {
        if let Some(link) = link {
            if !link.faults.delay.is_zero() {
                tokio::time::sleep(link.faults.delay).await;
            }
            if link.rng.f64() < link.faults.loss {
                return Ok(());
            }
        }
        socket.send(packet).await.map(|_| ())
    }
}

pub(crate) const DEFAULT_BLOCK_SIZE: usize = 512;

/// labserv patch: tells a server's running transfers to end. Each answers its client with
/// an ERROR packet ("server is shutting down") at its next step, or after one ACK timeout
/// if the client is silent.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks every transfer of the server to end.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// labserv patch: runs a transfer on a thread of its own, as atftpd does, with a tokio
/// runtime of its own for its socket and timers; the thread ends with the transfer.
///
/// Each client's packets then wake the one thread that waits for them, and the
/// scheduler can keep that thread beside its client (see `read_req::recv_next`). A
/// boot storm is shared between the cores with no hand-over between threads, where one
/// event loop for all transfers was woken for every packet of every board. If no thread
/// (or runtime) can be had, the transfer runs on the server's own runtime instead.
fn spawn_transfer(transfer: impl Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build();
    let Ok(runtime) = runtime else {
        tokio::spawn(transfer);
        return;
    };
    // Shared so that the transfer can be taken back if the thread cannot start.
    let slot = Arc::new(std::sync::Mutex::new(Some(transfer)));
    let theirs = Arc::clone(&slot);
    let started = std::thread::Builder::new()
        .name("tftp-transfer".into())
        .spawn(move || {
            if let Some(transfer) = take(&theirs) {
                OWN_THREAD.set(true);
                runtime.block_on(transfer);
            }
        });
    if started.is_err() {
        if let Some(transfer) = take(&slot) {
            tokio::spawn(transfer);
        }
    }
}

fn take<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

thread_local! {
    /// labserv patch: set on a thread that runs one transfer and nothing else.
    static OWN_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// labserv patch: whether the running transfer has its thread to itself, so that it may
/// block it while it waits for its client (or writes its file).
pub fn on_own_thread() -> bool {
    OWN_THREAD.get()
}

/// labserv patch: the error a transfer ends with when the server stops.
pub(crate) fn stopping_error() -> Error {
    Error::Packet(packet::Error::Msg("server is shutting down".to_string()))
}

impl<H: 'static> TftpServer<H>
where
    H: Handler,
{
    /// labserv patch: a handle that stops this server's transfers.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.config.stopping))
    }

    /// Returns the listenning socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    /// Consume and start the server (labserv patch: on a tokio runtime; each transfer on
    /// a thread of its own, see `spawn_transfer`).
    pub async fn serve(self) -> Result<()> {
        let socket = self.socket.try_clone()?;
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let mut buf = [0u8; 4096];

        loop {
            let (len, peer) = socket.recv_from(&mut buf).await?;
            self.handle_req_packet(peer, &buf[..len]).await;
        }
    }

    async fn handle_req_packet(&self, peer: SocketAddr, data: &[u8]) {
        let packet = match Packet::decode(data) {
            Ok(p @ Packet::Rrq(_)) => p,
            Ok(p @ Packet::Wrq(_)) => p,
            // Ignore packets that are not requests
            Ok(_) => return,
            // Ignore invalid packets
            Err(_) => return,
        };

        if !self.reqs_in_progress.lock().await.insert(peer) {
            // Ignore pending requests
            return;
        }

        match packet {
            Packet::Rrq(req) => self.handle_rrq(peer, req),
            Packet::Wrq(req) => self.handle_wrq(peer, req),
            _ => unreachable!(),
        }
    }

    fn handle_rrq(&self, peer: SocketAddr, req: RwReq) {
        trace!("RRQ recieved (peer: {}, req: {:?})", &peer, &req);

        let handler = Arc::clone(&self.handler);
        let config = self.config.clone();
        let local_ip = self.local_ip;

        // Prepare request future
        let req_fut = async move {
            // labserv patch: netascii is translated (see `netascii`). Its size on
            // the wire is not the file's, so, as tftpd-hpa does, a netascii read
            // that asks for tsize is refused with error 8.
            let netascii = req.mode == Mode::Netascii;
            if netascii && req.opts.transfer_size.is_some() {
                return Err(Error::Packet(packet::Error::OptionNegotiation));
            }
            let start = Instant::now();
            let (reader, size) = handler
                .lock()
                .await
                .read_req_open(&peer, req.filename.as_ref())
                .await
                .map_err(Error::Packet)?;
            let mut reader = Encode::new(reader, netascii);

            let mut read_req = ReadRequest::init(
                &mut reader,
                if netascii { None } else { size },
                peer,
                &req,
                config,
                local_ip,
            )
            .await?;

            let outcome = read_req.handle().await;

            // labserv patch: tell the handler how the transfer went.
            let (block_size, window_size) = read_req.sizes();
            let report = TransferReport {
                peer,
                file: req.filename.clone(),
                write: false,
                bytes: read_req.bytes,
                block_size,
                window_size,
                retransmits: read_req.retransmits,
                duration: start.elapsed(),
                outcome,
            };
            drop(read_req);
            handler.lock().await.transfer_ended(report);

            Ok(())
        };

        let reqs_in_progress = Arc::clone(&self.reqs_in_progress);

        // Run request future in a new task
        spawn_transfer(run_req(req_fut, peer, reqs_in_progress, local_ip));
    }

    fn handle_wrq(&self, peer: SocketAddr, req: RwReq) {
        trace!("WRQ recieved (peer: {}, req: {:?})", &peer, &req);

        let handler = Arc::clone(&self.handler);
        let config = self.config.clone();
        let local_ip = self.local_ip;

        // Prepare request future
        let req_fut = async move {
            // labserv patch: netascii uploads are translated back (see `netascii`).
            let netascii = req.mode == Mode::Netascii;
            let start = Instant::now();
            let writer = handler
                .lock()
                .await
                .write_req_open(&peer, req.filename.as_ref(), req.opts.transfer_size)
                .await
                .map_err(Error::Packet)?;
            let mut writer = Decode::new(writer, netascii);

            let mut write_req =
                WriteRequest::init(&mut writer, peer, &req, config, local_ip).await?;

            let outcome = write_req.handle().await;

            // labserv patch: tell the handler how the transfer went, once the
            // writer (and whatever it kept or removed) is gone.
            let report = TransferReport {
                peer,
                file: req.filename.clone(),
                write: true,
                bytes: write_req.bytes,
                block_size: write_req.block_size(),
                window_size: 1,
                retransmits: write_req.retransmits,
                duration: start.elapsed(),
                outcome,
            };
            drop(write_req);
            drop(writer);
            handler.lock().await.transfer_ended(report);

            Ok(())
        };

        let reqs_in_progress = Arc::clone(&self.reqs_in_progress);

        // Run request future in a new task
        spawn_transfer(run_req(req_fut, peer, reqs_in_progress, local_ip));
    }
}

async fn send_error(error: Error, peer: SocketAddr, local_ip: IpAddr) -> Result<()> {
    let addr: SocketAddr = SocketAddr::new(local_ip, 0);
    let socket = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(Error::Bind)?;

    let data = Packet::Error(error.into()).to_bytes();
    socket.send_to(&data[..], peer).await?;

    Ok(())
}

async fn run_req(
    req_fut: impl Future<Output = Result<()>>,
    peer: SocketAddr,
    reqs_in_progress: Arc<Mutex<HashSet<SocketAddr>>>,
    local_ip: IpAddr,
) {
    if let Err(e) = req_fut.await {
        trace!("Request failed (peer: {}, error: {}", &peer, &e);

        if let Err(e) = send_error(e, peer, local_ip).await {
            trace!("Failed to send error to peer {}: {}", &peer, &e);
        }
    }

    reqs_in_progress.lock().await.remove(&peer);
}
