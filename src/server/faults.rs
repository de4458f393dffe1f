//! A bad link on purpose, for testing OTA clients' resume and retry logic: a per-connection
//! rate limit, responses cut short, requests failed with 503, and a delay before each
//! response. All off by default.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::body::Body;
use super::tracked::ConnState;
use crate::human::bytes as human_bytes;

/// Where each response body is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DropAfter {
    /// After this many bytes.
    Bytes(u64),
    /// At this many percent (1 to 99) into the file: a response that runs across that
    /// point is cut there; one that starts at or past it (a resume) completes.
    Percent(u8),
}

/// The faults a server puts into its connections.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Faults {
    /// Bytes per second each connection may send.
    pub limit_rate: Option<u64>,
    /// Close the connection after this much of each response body.
    pub drop_after: Option<DropAfter>,
    /// Every Nth request gets 503 with `Retry-After`.
    pub fail_every: Option<u64>,
    /// Wait this long before the first byte of each response.
    pub delay: Option<Duration>,
    /// Requests seen, shared by every thread of the server (for `fail_every`).
    #[serde(skip)]
    pub(crate) seen: Arc<AtomicU64>,
}

impl PartialEq for Faults {
    fn eq(&self, other: &Self) -> bool {
        self.limit_rate == other.limit_rate
            && self.drop_after == other.drop_after
            && self.fail_every == other.fail_every
            && self.delay == other.delay
    }
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.limit_rate.is_some()
            || self.drop_after.is_some()
            || self.fail_every.is_some()
            || self.delay.is_some()
    }

    /// The faults in words, for the banner and the log: `rate limited to 100 KiB/s per
    /// connection, every 2nd request fails with 503`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rate) = self.limit_rate {
            parts.push(format!("{}/s per connection", human_bytes(rate)));
        }
        match self.drop_after {
            Some(DropAfter::Bytes(n)) => {
                parts.push(format!(
                    "connections cut after {} of each body",
                    human_bytes(n)
                ));
            }
            Some(DropAfter::Percent(p)) => {
                parts.push(format!("downloads cut once at {p}% of the file"));
            }
            None => {}
        }
        if let Some(n) = self.fail_every {
            parts.push(format!("every {} request gets 503", ordinal(n)));
        }
        if let Some(delay) = self.delay {
            parts.push(format!("{delay:?} before each response"));
        }
        parts.join(", ")
    }

    /// Counts a request; true when it is one to fail.
    pub(crate) fn fail_now(&self) -> bool {
        self.fail_every.is_some_and(|n| {
            let seen = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
            seen.is_multiple_of(n)
        })
    }

    /// What a failed request gets: 503, and `Retry-After: 1`.
    pub(crate) fn failure() -> http::Response<Body> {
        let mut resp = super::text_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "failed on purpose (--fail-every); try again",
        );
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        resp
    }

    /// Where to cut a body of `len` bytes (`None`: unknown), if it is to be cut at all.
    /// `span` is where the body lies in the whole file, `(first byte, file size)`: a
    /// 206's `Content-Range`, or `(0, len)` for a whole body.
    pub(crate) fn cut_at(&self, len: Option<u64>, span: Option<(u64, u64)>) -> Option<u64> {
        let at = match (self.drop_after?, span) {
            (DropAfter::Bytes(n), _) => n,
            (DropAfter::Percent(p), Some((first, size))) => {
                // A point in the file, at least one byte in.
                let point = (size * u64::from(p)).div_ceil(100).max(1);
                point.checked_sub(first).filter(|&n| n > 0)?
            }
            (DropAfter::Percent(_), None) => return None,
        };
        match len {
            Some(len) if len <= at => None,
            _ => Some(at),
        }
    }
}

fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if n == 1 {
        "single".to_string()
    } else {
        format!("{n}{suffix}")
    }
}

/// A response body that stops after `left` bytes; the rest is never sent. Over HTTP/1.1
/// the connection is closed once those bytes are out (`ConnState::cut`). Over
/// HTTP/2, whose frames wait in the stream's own queue, the stream is reset a moment
/// after the last byte instead (and a little less may arrive).
pub struct Cut {
    inner: Body,
    left: u64,
    state: Arc<ConnState>,
    /// HTTP/2: the pause before the reset, once started.
    h2_pause: Option<Pin<Box<Sleep>>>,
    h2: bool,
}

/// How long an HTTP/2 stream lives on after its last byte before it is reset.
const H2_PAUSE: Duration = Duration::from_millis(100);

impl Cut {
    pub(crate) fn new(inner: Body, at: u64, state: Arc<ConnState>, h2: bool) -> Self {
        Self {
            inner,
            left: at,
            state,
            h2_pause: None,
            h2,
        }
    }
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cut")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl http_body::Body for Cut {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.left == 0 {
            if !this.h2 {
                // The connection closes once what came before is sent.
                return Poll::Pending;
            }
            let pause = this
                .h2_pause
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(H2_PAUSE)));
            ready!(pause.as_mut().poll(cx));
            return Poll::Ready(Some(Err(std::io::Error::other(
                "cut on purpose (--drop-after)",
            ))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let n = (data.remaining() as u64).min(this.left);
                    this.left -= n;
                    if this.left == 0 && !this.h2 {
                        this.state.cut();
                    }
                    let data = data.copy_to_bytes(usize::try_from(n).unwrap_or(usize::MAX));
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        // The length the client is told stays the whole body's: that is what makes the
        // cut visible to it.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_fails_across_clones() {
        let faults = Faults {
            fail_every: Some(3),
            ..Faults::default()
        };
        let other = faults.clone();
        let failed: Vec<bool> = (0..6)
            .map(|i| if i % 2 == 0 { &faults } else { &other }.fail_now())
            .collect();
        assert_eq!(failed, [false, false, true, false, false, true]);
    }

    #[test]
    fn bodies_are_cut_at_a_size_or_a_share_and_never_at_zero() {
        let bytes = Faults {
            drop_after: Some(DropAfter::Bytes(1000)),
            ..Faults::default()
        };
        assert_eq!(bytes.cut_at(Some(5000), Some((0, 5000))), Some(1000));
        assert_eq!(bytes.cut_at(Some(1000), None), None);
        assert_eq!(bytes.cut_at(None, None), Some(1000));
        // Every response, resumes too, is cut after SIZE.
        assert_eq!(bytes.cut_at(Some(3000), Some((2000, 5000))), Some(1000));
        let half = Faults {
            drop_after: Some(DropAfter::Percent(50)),
            ..Faults::default()
        };
        let whole = |len| half.cut_at(Some(len), Some((0, len)));
        assert_eq!(whole(5001), Some(2501));
        assert_eq!(whole(1), None);
        assert_eq!(whole(2), Some(1));
        assert_eq!(half.cut_at(None, None), None);
        // A percentage is a point in the file: a resume before it is cut there, one at or
        // past it completes.
        assert_eq!(half.cut_at(Some(4001), Some((1000, 5001))), Some(1501));
        assert_eq!(half.cut_at(Some(2500), Some((2501, 5001))), None);
        assert_eq!(half.cut_at(Some(100), Some((4000, 5001))), None);
        // A range that ends before the point is not cut.
        assert_eq!(half.cut_at(Some(100), Some((0, 5001))), None);
    }

    #[test]
    fn the_description_reads_as_words() {
        let faults = Faults {
            limit_rate: Some(100 * 1024),
            drop_after: Some(DropAfter::Percent(50)),
            fail_every: Some(2),
            delay: Some(Duration::from_millis(250)),
            ..Faults::default()
        };
        assert_eq!(
            faults.describe(),
            "100 KiB/s per connection, downloads cut once at 50% of the file, \
             every 2nd request gets 503, 250ms before each response"
        );
    }
}
