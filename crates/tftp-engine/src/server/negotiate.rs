//! labserv patch: the options a read is granted (its OACK): block size, timeout,
//! transfer size and a window no bigger than a client's receive buffer holds. These were
//! in `read_req.rs` until 0.5.0.

use std::cmp;

use crate::packet::{Opts, RwReq};
use crate::server::ServerConfig;

pub(crate) fn build_oack_opts(
    config: &ServerConfig,
    req: &RwReq,
    file_size: Option<u64>,
) -> Option<Opts> {
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
