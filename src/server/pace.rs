//! `--limit-rate`: what one connection may send, paced as a token bucket. The tracked
//! stream of each connection (`tracked.rs`) asks it before every write.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Paces what a connection sends to `rate` bytes per second (a token bucket holding at
/// most a twentieth of a second's worth, and never less than 4 KiB).
pub(crate) struct Pacer {
    rate: u64,
    tokens: f64,
    burst: f64,
    last: Instant,
    wait: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    pub(crate) fn new(rate: u64) -> Self {
        let burst = (rate as f64 / 20.0).max(4096.0);
        Self {
            rate: rate.max(1),
            tokens: burst,
            burst,
            last: Instant::now(),
            wait: None,
        }
    }

    /// How many of `want` bytes may be sent now; `Pending` (with a wake-up set) when none.
    pub(crate) fn allow(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        loop {
            if let Some(wait) = &mut self.wait {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
            }
            let now = Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * self.rate as f64;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                return Poll::Ready(want.min(self.tokens as usize).max(1));
            }
            let short = (1.0 - self.tokens) / self.rate as f64;
            // Sleep for a few milliseconds' worth at least, not a wake-up per byte.
            let nap = Duration::from_secs_f64(short.max(0.002));
            self.wait = Some(Box::pin(tokio::time::sleep(nap)));
        }
    }

    /// Takes `sent` bytes from the bucket.
    pub(crate) fn spent(&mut self, sent: usize) {
        self.tokens -= sent as f64;
    }
}
