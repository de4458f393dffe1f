//! Validators of one version of a file (a strong ETag, Last-Modified) and what a
//! request's conditional headers make of them (RFC 9110 section 13). Used by the handler
//! and by the cache that keeps small files with their validators.

use std::fs::Metadata;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderValue};

/// What the conditional headers of a request decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// If-Match names another version: 412.
    PreconditionFailed,
    /// If-None-Match or If-Modified-Since holds: 304.
    NotModified,
    /// Send the file; `ranges` says whether a Range header is to be honoured (If-Range).
    Send { ranges: bool },
}

/// The validators of one version of a file, ready to send: a strong ETag from modification
/// time and size, and Last-Modified.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    pub(crate) len: u64,
    /// `len` as a Content-Length value, made once: a cached file's replies clone it
    /// rather than format it (and allocate) on every request.
    pub(crate) content_length: HeaderValue,
    etag: HeaderValue,
    modified: Option<SystemTime>,
    last_modified: Option<HeaderValue>,
}

impl Validators {
    pub(crate) fn of(meta: &Metadata) -> Self {
        let modified = meta.modified().ok();
        // Nanoseconds from 1970, either way (a file can be older).
        let stamp = match modified.map(|t| t.duration_since(UNIX_EPOCH)) {
            Some(Ok(after)) => format!("{:x}", after.as_nanos()),
            Some(Err(before)) => format!("-{:x}", before.duration().as_nanos()),
            None => "0".to_string(),
        };
        let etag = HeaderValue::from_str(&format!("\"{stamp}-{:x}\"", meta.len()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        // An HTTP date cannot be before 1970 (and the formatter panics on one): a file
        // that old is sent without Last-Modified, its ETag still telling versions apart.
        let last_modified = modified
            .filter(|m| *m >= UNIX_EPOCH)
            .and_then(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)).ok());
        Self {
            len: meta.len(),
            content_length: HeaderValue::from(meta.len()),
            etag,
            modified,
            last_modified,
        }
    }

    /// Whether a list of entity tags (`If-None-Match`, `If-Match`) names this file.
    fn listed_in(&self, value: &HeaderValue, weak_ok: bool) -> bool {
        let Ok(list) = value.to_str() else {
            return false;
        };
        let ours = self.etag.as_bytes();
        list.split(',').map(str::trim).any(|tag| {
            if tag == "*" {
                return true;
            }
            match tag.strip_prefix("W/") {
                Some(weak) => weak_ok && weak.as_bytes() == ours,
                None => tag.as_bytes() == ours,
            }
        })
    }

    /// Whether the file is unchanged since an HTTP date (one-second resolution).
    fn unchanged_since(&self, value: &HeaderValue) -> bool {
        let (Some(modified), Some(since)) = (
            self.modified,
            value
                .to_str()
                .ok()
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        ) else {
            return false;
        };
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        secs(modified) <= secs(since)
    }

    /// If-Range: a strong ETag equal to ours, or a date equal to Last-Modified.
    fn if_range_holds(&self, value: &HeaderValue) -> bool {
        let Ok(v) = value.to_str() else {
            return false;
        };
        let v = v.trim();
        if v.starts_with('"') {
            return v.as_bytes() == self.etag.as_bytes();
        }
        match (&self.last_modified, httpdate::parse_http_date(v)) {
            (Some(lm), Ok(d)) => lm.as_bytes() == httpdate::fmt_http_date(d).as_bytes(),
            _ => false,
        }
    }

    pub(crate) fn insert(&self, h: &mut HeaderMap) {
        h.insert(header::ETAG, self.etag.clone());
        if let Some(lm) = &self.last_modified {
            h.insert(header::LAST_MODIFIED, lm.clone());
        }
    }

    /// Judges the request's conditional headers against this version: If-Match first,
    /// then If-None-Match (or, without it, If-Modified-Since), then If-Range.
    pub(crate) fn judge(&self, req: &HeaderMap) -> Verdict {
        if let Some(v) = req.get(header::IF_MATCH)
            && !self.listed_in(v, false)
        {
            return Verdict::PreconditionFailed;
        }
        let not_modified = match req.get(header::IF_NONE_MATCH) {
            Some(v) => self.listed_in(v, true),
            None => req
                .get(header::IF_MODIFIED_SINCE)
                .is_some_and(|v| self.unchanged_since(v)),
        };
        if not_modified {
            return Verdict::NotModified;
        }
        let ranges = req
            .get(header::IF_RANGE)
            .is_none_or(|v| self.if_range_holds(v));
        Verdict::Send { ranges }
    }
}
