//! Access lines, one per request or transfer: formatted into a buffer of the thread's own
//! with the time stamp, and appended to the log's buffer without going through tracing.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ACCESS, ACCESS_SINK};

/// Whether access lines are being logged (a logger is installed and not quiet).
pub(crate) fn access_enabled() -> bool {
    ACCESS_SINK.get().is_some()
}

/// Logs one access line (target [`ACCESS`], level INFO) in the same layout as every other
/// line: `<RFC 3339 time>  INFO access: <message>`.
///
/// Access lines are the one event written per request, so they skip the subscriber's
/// generic field formatting and go straight into the line buffer; at tens of thousands
/// of requests per second that is a measurable share of the server's CPU. The message is
/// built from a request line hyper has already validated (no control characters).
pub(crate) fn access(message: fmt::Arguments<'_>) {
    use fmt::Write as _;
    access_with(|line| {
        let _ = line.write_fmt(message);
    });
}

/// As [`access`], with the message appended to the line by `write` (for the HTTP servers'
/// line, built without the formatting machinery).
pub(crate) fn access_with(write: impl FnOnce(&mut String)) {
    thread_local! {
        static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
        static STAMP: RefCell<Stamp> = const { RefCell::new(Stamp { second: u64::MAX, text: String::new() }) };
    }
    let Some((sink, ansi)) = ACCESS_SINK.get() else {
        return;
    };
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        STAMP.with(|stamp| stamp.borrow_mut().write(&mut line, SystemTime::now()));
        line.push_str(if *ansi {
            " \x1b[32m INFO\x1b[0m "
        } else {
            "  INFO "
        });
        line.push_str(ACCESS);
        line.push_str(": ");
        write(&mut line);
        line.push('\n');
        sink.append(line.as_bytes());
    });
}

/// The RFC 3339 time of the last line's second, so that a line only formats its
/// microseconds: `2026-12-02T20:17:05.` then `123456Z`.
pub(super) struct Stamp {
    pub(super) second: u64,
    pub(super) text: String,
}

impl Stamp {
    pub(super) fn write(&mut self, line: &mut String, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if since.as_secs() != self.second {
            self.second = since.as_secs();
            self.text = humantime::format_rfc3339_seconds(now).to_string();
            // `…:05Z` becomes `…:05.`
            self.text.pop();
            self.text.push('.');
        }
        line.push_str(&self.text);
        push_padded(line, u128::from(since.subsec_micros()), 6);
        line.push('Z');
    }
}

/// Appends `n` in decimal, with leading zeros to at least `width` digits.
pub(crate) fn push_padded(line: &mut String, n: u128, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    for _ in digits.len()..width {
        line.push('0');
    }
    line.push_str(digits);
}
