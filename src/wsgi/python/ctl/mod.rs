//! What a worker and the supervisor tell each other, over the worker's control socket (a
//! `SOCK_SEQPACKET` pair, or a stream pair where the workers are portable: see
//! [`super::portable`]) and through its slot (a page of memory both map).
//!
//! Every message after the first is read by its kind's own length (9 bytes from the
//! worker, 1 from the supervisor), never more: so a stream, which keeps no boundaries,
//! never hands over two messages (and their descriptors) in one read.
//!
//! Messages from the worker: [`READY`] once the app imported, or [`FAILED`] and the
//! exception in one line; then [`OPENED`] with each connection it accepts (a duplicate
//! of the socket rides along) and [`CLOSED`] when one ends. The supervisor keeps the
//! duplicates so that when a worker dies in the middle of a request, the client still
//! gets a 502 instead of a reset; the slot says which requests those were (the one in
//! the app, and those waiting for it).
//!
//! Message from the supervisor: [`ADOPT`], with a connection another worker let go of
//! while its client was sending a request (the worker stopped or died), to be served as
//! if just accepted.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

mod memory;

pub(crate) use memory::{BUSY, Board, EMPTY, IDLE, SEATS, Slot, sealed_file};

/// The app imported and the worker serves.
pub(crate) const READY: u8 = b'O';
/// The app did not import: the rest of the message says why.
pub(crate) const FAILED: u8 = b'X';
/// A connection was accepted: its tag (8 bytes) and a duplicate of its socket.
pub(crate) const OPENED: u8 = b'A';
/// A connection ended: its tag.
pub(crate) const CLOSED: u8 = b'Z';
/// From the supervisor: serve this connection (it rides along), as if just accepted.
pub(crate) const ADOPT: u8 = b'H';

/// In a slot: the request's connection can take a plain HTTP/1.1 answer (not TLS, not
/// HTTP/2), so the supervisor may write a 502 on it.
pub(crate) const ANSWERABLE: u64 = 1 << 63;

/// A connected pair of control sockets, closed on exec (the worker's end is handed over
/// explicitly).
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let kind = if super::portable() {
        SocketType::STREAM
    } else {
        SocketType::SEQPACKET
    };
    #[cfg(not(target_vendor = "apple"))]
    let pair = rustix::net::socketpair(AddressFamily::UNIX, kind, SocketFlags::CLOEXEC, None)?;
    #[cfg(target_vendor = "apple")]
    let pair = {
        // No SOCK_CLOEXEC here: set right after.
        let pair = rustix::net::socketpair(AddressFamily::UNIX, kind, SocketFlags::empty(), None)?;
        for fd in [&pair.0, &pair.1] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
        }
        pair
    };
    Ok(pair)
}

/// Sending never raises SIGPIPE where the flag exists; elsewhere (macOS) both ends
/// ignore SIGPIPE already (Rust's runtime and Python's both do).
fn no_signal() -> SendFlags {
    #[cfg(not(target_vendor = "apple"))]
    return SendFlags::NOSIGNAL;
    #[cfg(target_vendor = "apple")]
    return SendFlags::empty();
}

/// Sends one message, with a descriptor when given.
pub(crate) fn send(
    ctl: BorrowedFd<'_>,
    kind: u8,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    send_with(ctl, kind, payload, fd, no_signal())
}

/// Hands a connection to a worker, without waiting: a worker too slow to take it now
/// does not hold up the supervisor.
pub(crate) fn adopt(ctl: BorrowedFd<'_>, conn: BorrowedFd<'_>) -> io::Result<()> {
    send_with(
        ctl,
        ADOPT,
        b"",
        Some(conn),
        no_signal() | SendFlags::DONTWAIT,
    )
}

fn send_with(
    ctl: BorrowedFd<'_>,
    kind: u8,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
    flags: SendFlags,
) -> io::Result<()> {
    let head = [kind];
    let parts = [IoSlice::new(&head), IoSlice::new(payload)];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        ancillary.push(SendAncillaryMessage::ScmRights(&fds));
    }
    rustix::net::sendmsg(ctl, &parts, &mut ancillary, flags)?;
    Ok(())
}

/// Receives what is there of one message, without waiting, into `buf` (as long as the
/// message: see the module's notes): how many bytes came (0 when the other end is
/// closed), and the descriptor that came with them.
pub(crate) fn recv(ctl: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    #[cfg(not(target_vendor = "apple"))]
    let flags = RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT;
    #[cfg(target_vendor = "apple")]
    let flags = RecvFlags::DONTWAIT;
    let got = rustix::net::recvmsg(ctl, &mut [IoSliceMut::new(buf)], &mut ancillary, flags)?;
    let mut fd = None;
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                fd.get_or_insert(received);
            }
        }
    }
    #[cfg(target_vendor = "apple")]
    if let Some(fd) = &fd {
        // No MSG_CMSG_CLOEXEC here: set right after.
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    Ok((got.bytes, fd))
}

/// A message read in pieces when a stream hands it over so (see [`recv`]): `N` bytes,
/// and the descriptor that came with its first piece.
pub(crate) struct Message<const N: usize> {
    buf: [u8; N],
    have: usize,
    fd: Option<OwnedFd>,
}

impl<const N: usize> Message<N> {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; N],
            have: 0,
            fd: None,
        }
    }

    /// Reads what is there; `Ok(None)` while the message is not whole yet, `Ok(Some)`
    /// with its bytes and descriptor once it is. End of file is
    /// [`io::ErrorKind::UnexpectedEof`].
    pub(crate) fn read(
        &mut self,
        ctl: BorrowedFd<'_>,
    ) -> io::Result<Option<([u8; N], Option<OwnedFd>)>> {
        let (n, fd) = recv(ctl, &mut self.buf[self.have..])?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        if fd.is_some() {
            self.fd = fd;
        }
        self.have += n;
        if self.have < N {
            return Ok(None);
        }
        self.have = 0;
        Ok(Some((self.buf, self.fd.take())))
    }
}

/// How a worker ends when a request outlasted `--timeout` (after answering it 504).
pub(crate) const TIMED_OUT: i32 = 3;

#[cfg(test)]
mod tests;
