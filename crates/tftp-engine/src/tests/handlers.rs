//! A handler that serves one file of random bytes to a read, and refuses uploads.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc::Sender;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::packet;
use crate::server::Handler;

/// Serves one file of `size` random bytes; sends what it served once it has all gone.
pub(super) struct RandomHandler {
    served: Option<Sender<Vec<u8>>>,
    size: usize,
}

impl RandomHandler {
    pub(super) fn new(size: usize, served: Sender<Vec<u8>>) -> Self {
        RandomHandler {
            served: Some(served),
            size,
        }
    }
}

impl Handler for RandomHandler {
    type Reader = RandomFile;
    type Writer = tokio::io::Sink;

    async fn read_req_open(
        &mut self,
        _client: &SocketAddr,
        _path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        let served = self.served.take().expect("one read per test");
        Ok((
            RandomFile {
                left: self.size,
                sent: Vec::with_capacity(self.size),
                served: Some(served),
            },
            None,
        ))
    }

    async fn write_req_open(
        &mut self,
        _client: &SocketAddr,
        _path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        Err(packet::Error::IllegalOperation)
    }
}

/// Random bytes, kept as they are read, and sent to the test at the end.
pub(super) struct RandomFile {
    left: usize,
    sent: Vec<u8>,
    served: Option<Sender<Vec<u8>>>,
}

impl AsyncRead for RandomFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.left == 0 {
            if let Some(served) = this.served.take() {
                let _ = served.send(std::mem::take(&mut this.sent));
            }
            return Poll::Ready(Ok(()));
        }
        let n = buf.remaining().min(this.left);
        let bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
            .take(n)
            .collect();
        buf.put_slice(&bytes);
        this.sent.extend_from_slice(&bytes);
        this.left -= n;
        Poll::Ready(Ok(()))
    }
}
