use bytes::{Buf, Bytes, BytesMut};
use log::trace;
use std::cmp;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::packet::{Opts, Packet, RwReq, PACKET_DATA_HEADER_LEN};
use crate::server::wait::{
    recv_next, silent_budget, silent_retries, transfer_socket, Clock, Running, Spin,
};
use crate::server::{stopping_error, FaultyLink, Outcome, ServerConfig, DEFAULT_BLOCK_SIZE};
use tokio::net::UdpSocket;

pub(crate) struct WriteRequest<'w, W>
where
    W: AsyncWrite + Send,
{
    peer: SocketAddr,
    socket: UdpSocket,
    writer: &'w mut W,
    // BytesMut reclaims memory only if it is continuous.
    // Because we always need to keep the previous ACK, we can not use
    // `buffer` as its storage since it breaks the continuity.
    // So we keep previous ACK in `ack` buffer.
    buffer: BytesMut,
    ack: BytesMut,
    block_size: usize,
    timeout: Duration,
    max_retries: u32,
    oack_opts: Option<Opts>,
    /// labserv patch: set when the server stops (see `StopHandle`).
    stopping: Arc<AtomicBool>,
    /// labserv patch: data bytes received.
    pub(crate) bytes: u64,
    /// labserv patch: ACKs sent again after a timeout.
    pub(crate) retransmits: u32,
    /// labserv patch: packets lost or held back on purpose.
    link: Option<FaultyLink>,
    /// labserv patch: polling for the next DATA (see [`Spin`]).
    spin: Spin,
    /// labserv patch: the DATA timeout (see [`Clock`]).
    clock: Clock,
}

impl<'w, W> WriteRequest<'w, W>
where
    W: AsyncWrite + Send + Unpin,
{
    pub(crate) async fn init(
        writer: &'w mut W,
        peer: SocketAddr,
        req: &RwReq,
        config: ServerConfig,
        local_ip: IpAddr,
    ) -> Result<WriteRequest<'w, W>> {
        let oack_opts = build_oack_opts(&config, req);

        let block_size = oack_opts
            .as_ref()
            .and_then(|o| o.block_size)
            .map(usize::from)
            .unwrap_or(DEFAULT_BLOCK_SIZE);

        let timeout = oack_opts
            .as_ref()
            .and_then(|o| o.timeout)
            .map(|t| Duration::from_secs(u64::from(t)))
            .unwrap_or(config.timeout)
            // labserv patch: never longer than the server lets a transfer stay silent.
            .min(silent_budget(&config));

        // labserv patch: connected to the client (see `ReadRequest::init`).
        let socket = transfer_socket(local_ip, peer).await?;

        Ok(WriteRequest {
            peer,
            socket,
            writer,
            buffer: BytesMut::new(),
            ack: BytesMut::new(),
            block_size,
            timeout,
            max_retries: silent_retries(&config, timeout),
            oack_opts,
            stopping: Arc::clone(&config.stopping),
            bytes: 0,
            retransmits: 0,
            link: FaultyLink::new(config.faults),
            spin: Spin::new(block_size),
            clock: Clock::default(),
        })
    }

    /// labserv patch: the negotiated block size.
    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) async fn handle(&mut self) -> Outcome {
        let _counted = Running::start();
        let result = self.try_handle().await;
        let outcome = Outcome::of(&result);
        // labserv patch: a client that sent an ERROR, or has gone, gets nothing back.
        if let (Err(e), true) = (result, outcome.tell_client()) {
            trace!("WRQ request failed (peer: {}, error: {}", self.peer, &e);

            Packet::Error(e.into()).encode(&mut self.buffer);
            let buf = self.buffer.split().freeze();
            // Errors are never retransmitted.
            // We do not care if `send_to` resulted to an IO error.
            let _ = self.socket.send(&buf[..]).await;
        }
        outcome
    }

    async fn try_handle(&mut self) -> Result<()> {
        let mut block_id: u16 = 0;

        // Send first Ack/OAck
        match self.oack_opts.take() {
            Some(opts) => Packet::OAck(opts).encode(&mut self.ack),
            None => Packet::Ack(0).encode(&mut self.ack),
        }

        FaultyLink::send(&mut self.link, &self.socket, &self.ack).await?;

        loop {
            // Recv data
            block_id = block_id.wrapping_add(1);
            let data = self.recv_data(block_id).await?;

            let last = data.len() < self.block_size;
            if !last {
                // labserv patch: a block other than the last is acknowledged before it
                // is written, so that the write overlaps the client's next DATA rather
                // than adding to every round trip. A write that fails then answers the
                // next DATA with an ERROR; nothing lands either way.
                self.acknowledge(block_id).await?;
            }
            self.writer.write_all(&data[..]).await?;
            self.bytes += data.len() as u64;
            if last {
                // labserv patch: the last block is acknowledged only once the
                // writer has closed successfully, so a client never hears
                // "done" for an upload that did not land; a failure gets an
                // ERROR packet instead (from `handle`).
                self.writer.flush().await?;
                self.writer.shutdown().await?;
                self.acknowledge(block_id).await?;
                break;
            }
        }

        Ok(())
    }

    /// Sends `ACK block_id`, kept for resending should the next DATA not come.
    async fn acknowledge(&mut self, block_id: u16) -> Result<()> {
        self.ack.clear();
        Packet::Ack(block_id).encode(&mut self.ack);
        FaultyLink::send(&mut self.link, &self.socket, &self.ack).await?;
        Ok(())
    }

    async fn recv_data(&mut self, block_id: u16) -> Result<Bytes> {
        for _ in 0..=self.max_retries {
            // labserv patch: a stopping server ends the transfer with an ERROR (and
            // the writer is dropped, so nothing partial is kept).
            if self.stopping.load(Ordering::Acquire) {
                return Err(stopping_error());
            }
            match self.recv_data_block(block_id).await {
                // labserv patch: the caller acknowledges (see `try_handle`).
                Ok(data) => return Ok(data),
                Err(ref e) if e.kind() == io::ErrorKind::TimedOut => {
                    // On timeout reply with the previous ACK packet
                    self.retransmits += 1;
                    FaultyLink::send(&mut self.link, &self.socket, &self.ack).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }

        Err(Error::MaxSendRetriesReached(self.peer, block_id))
    }

    async fn recv_data_block(&mut self, block_id: u16) -> io::Result<Bytes> {
        let socket = &mut self.socket;
        let peer = self.peer;
        let spin = &mut self.spin;

        self.buffer
            .resize(PACKET_DATA_HEADER_LEN + self.block_size, 0);
        let mut buf = self.buffer.split();
        let deadline = Instant::now() + self.timeout;

        let recv = async move {
            loop {
                let (len, recved_peer) =
                    recv_next(socket, peer, spin, deadline, &mut buf[..]).await?;

                if recved_peer != peer {
                    continue;
                }

                // labserv patch: a client's ERROR ends the transfer at once.
                if let Ok(Packet::Error(e)) = Packet::decode(&buf[..len]) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("client ended the transfer: {e:?}"),
                    ));
                }

                if let Ok(Packet::Data(recved_block_id, _)) = Packet::decode(&buf[..len]) {
                    if recved_block_id == block_id {
                        buf.truncate(len);
                        buf.advance(PACKET_DATA_HEADER_LEN);
                        break;
                    }
                }
            }

            Ok(buf.freeze())
        };
        crate::server::first(recv, self.clock.expire(deadline)).await
    }
}

fn build_oack_opts(config: &ServerConfig, req: &RwReq) -> Option<Opts> {
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

    opts.transfer_size = req.opts.transfer_size;

    if opts == Opts::default() {
        None
    } else {
        Some(opts)
    }
}
