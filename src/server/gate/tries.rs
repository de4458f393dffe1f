//! Wrong passwords counted per client address: an address that sends too many in a
//! minute is held back (429) for the rest of it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::super::body::Body;
use super::super::text_response;

/// Wrong passwords an address may send in a minute before it is held back (429) for the
/// rest of that minute.
pub(super) const TRIES_A_MINUTE: u32 = 10;

/// Wrong passwords by client address, in the current minute of each.
#[derive(Debug, Default)]
pub(super) struct Failures {
    by_peer: Mutex<HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

impl Failures {
    /// Whether `ip` has used up its tries this minute.
    pub(super) fn held_back(&self, ip: std::net::IpAddr) -> bool {
        let by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        by_peer.get(&ip).is_some_and(|(since, count)| {
            since.elapsed() < std::time::Duration::from_secs(60) && *count >= TRIES_A_MINUTE
        })
    }

    /// Counts a wrong password from `ip`; whether to log it (every one until the address
    /// is held back, then one a minute).
    pub(super) fn failed(&self, ip: std::net::IpAddr) -> bool {
        let mut by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        if by_peer.len() > 4096 {
            by_peer.retain(|_, (since, _)| since.elapsed() < std::time::Duration::from_secs(60));
        }
        let entry = by_peer.entry(ip).or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed() >= std::time::Duration::from_secs(60) {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 <= TRIES_A_MINUTE
    }
}

/// 429 for an address that sent too many wrong passwords this minute.
pub(super) fn too_many_tries() -> Response<Body> {
    let mut resp = text_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong passwords from your address; try again in a minute",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}
