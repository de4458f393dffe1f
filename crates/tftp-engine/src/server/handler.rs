use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::packet;

/// Trait for implementing advance handlers.
pub trait Handler: Send {
    type Reader: AsyncRead + Unpin + Send + 'static;
    type Writer: AsyncWrite + Unpin + Send + 'static;

    /// Open `Reader` to serve a read request.
    fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> impl Future<Output = Result<(Self::Reader, Option<u64>), packet::Error>> + Send;

    /// Open `Writer` to serve a write request.
    fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        size: Option<u64>,
    ) -> impl Future<Output = Result<Self::Writer, packet::Error>> + Send;

    /// labserv patch: called once when a transfer that was opened has ended.
    fn transfer_ended(&mut self, _report: TransferReport) {}
}

/// labserv patch: what happened in one transfer, for the handler's log.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// The client.
    pub peer: SocketAddr,
    /// The file name the client asked for.
    pub file: String,
    /// A write (upload) rather than a read.
    pub write: bool,
    /// Data bytes acknowledged by the client (read) or received (write).
    pub bytes: u64,
    /// Negotiated block size.
    pub block_size: usize,
    /// Negotiated window size (1 for writes).
    pub window_size: usize,
    /// Packets sent again after a timeout.
    pub retransmits: u32,
    /// From opening the file to the end of the transfer.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// labserv patch: how a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was acknowledged (read) or written and closed (write).
    Completed,
    /// The client sent an ERROR packet.
    AbortedByClient,
    /// The client went silent.
    TimedOut,
    /// labserv patch: the client's port is closed (its kernel answered a packet with ICMP
    /// port unreachable, which a connected socket reports): it has gone.
    ClientGone,
    /// The server stopped.
    ServerStopping,
    /// Anything else, with its description.
    Failed(String),
}

impl Outcome {
    /// labserv patch: whether the client should hear of it with an ERROR packet: not
    /// when it sent one (RFC 1350: an ERROR is never answered) or has gone.
    pub(crate) fn tell_client(&self) -> bool {
        !matches!(self, Outcome::AbortedByClient | Outcome::ClientGone)
    }

    pub(crate) fn of(result: &crate::Result<()>) -> Self {
        use crate::Error;
        match result {
            Ok(()) => Outcome::Completed,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionAborted => {
                Outcome::AbortedByClient
            }
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Outcome::ClientGone
            }
            Err(Error::MaxSendRetriesReached(..)) => Outcome::TimedOut,
            Err(Error::Packet(packet::Error::Msg(m))) if m == "server is shutting down" => {
                Outcome::ServerStopping
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}
