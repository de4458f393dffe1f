//! The notes a worker keeps in its slot for the supervisor (which requests are waiting
//! for the app, and would be answered 502 if the worker died), and the request body fed
//! to the app as it arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::jobs::Piece;
use crate::server::Inbound as Incoming;
use crate::wsgi::python::ctl::{ANSWERABLE, Slot};

/// A request noted in the slot (at this place) as waiting for the app, until its head
/// is answered (or its client has gone). It stays noted while the app runs it: a worker
/// that dies then costs it one 502 all the same.
pub(super) struct Waiting<'a>(pub(super) &'a Slot, pub(super) usize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.unwait(self.1);
    }
}

/// A plain HTTP/1 connection's request, noted in the slot from its first byte until its
/// answer starts to go out: one the worker has read but not yet queued for the app is
/// answered 502 too if the worker dies (the supervisor can see unread bytes, not read ones).
pub(super) struct Arriving {
    slot: Arc<Slot>,
    tag: u64,
    /// Where it is noted; 0 when it is not.
    place: AtomicUsize,
}

impl Arriving {
    pub(super) fn new(slot: Arc<Slot>, tag: u64) -> Self {
        Self {
            slot,
            tag,
            place: AtomicUsize::new(0),
        }
    }

    fn let_go(&self) {
        let place = self.place.swap(0, Ordering::AcqRel);
        if place != 0 {
            self.slot.unwait(place);
        }
    }
}

impl crate::server::conn::Arrivals for Arriving {
    fn started(&self) {
        if self.place.load(Ordering::Acquire) == 0
            && let Some(place) = self.slot.wait(self.tag | ANSWERABLE)
        {
            self.place.store(place, Ordering::Release);
        }
    }

    fn answering(&self) {
        if self.place.load(Ordering::Acquire) != 0 {
            self.let_go();
        }
    }
}

impl std::fmt::Debug for Arriving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection {} noted at {:?}", self.tag, self.place)
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.let_go();
    }
}

/// Feeds the request body to the app as it arrives, never past `max`.
pub(super) fn pump(mut body: Incoming, max: u64) -> mpsc::Receiver<Piece> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let piece = match frame {
                Err(_) => Piece::Broken,
                Ok(frame) => match frame.into_data() {
                    Ok(data) => {
                        total += data.len() as u64;
                        if total > max {
                            Piece::TooLarge
                        } else {
                            Piece::Data(data)
                        }
                    }
                    Err(_) => continue,
                },
            };
            let last = !matches!(piece, Piece::Data(_));
            if tx.send(piece).await.is_err() || last {
                return;
            }
        }
    });
    rx
}
