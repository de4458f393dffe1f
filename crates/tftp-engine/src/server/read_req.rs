use bytes::{BufMut, Bytes, BytesMut};
use log::trace;
use std::cmp;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::slice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

use tokio::net::UdpSocket;

use crate::error::{Error, Result};
use crate::packet::{Opts, Packet, RwReq, PACKET_DATA_HEADER_LEN};
use crate::server::negotiate::build_oack_opts;
use crate::server::wait::{
    recv_next, silent_budget, silent_retries, transfer_socket, Clock, Running, Spin,
};
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
