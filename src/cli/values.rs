//! Typed value parsers for clap that reuse the settings parsers, so an argument and an
//! environment variable with the same bad value fail with the same words.

use std::net::IpAddr;
use std::time::Duration;

use crate::settings::{self, SettingsError};

/// An argument that may be given empty, which counts as absent: `serv $PORT $IFACE` in a
/// Procfile with IFACE unset passes an empty IFACE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Given<T>(pub Option<T>);

/// The value of an optional argument that may also have been given empty.
pub fn given<T: Copy>(arg: Option<Given<T>>) -> Option<T> {
    arg.and_then(|g| g.0)
}

/// What clap takes as a value parser: a function from the text to a typed value.
pub trait Parse<T>: Fn(&str) -> Result<T, SettingsError> + Clone + Send + Sync + 'static {}
impl<T, F: Fn(&str) -> Result<T, SettingsError> + Clone + Send + Sync + 'static> Parse<T> for F {}

fn or_blank<T>(parse: impl Parse<T>) -> impl Parse<Given<T>> {
    move |text: &str| {
        if text.trim().is_empty() {
            Ok(Given(None))
        } else {
            parse(text).map(|v| Given(Some(v)))
        }
    }
}

/// A port (0 to 65535), empty allowed; errors name the argument `name`.
pub fn port(name: &'static str) -> impl Parse<Given<u16>> {
    or_blank(move |v: &str| settings::parse_port(name, v))
}

/// A listen address, empty allowed.
pub fn addr(name: &'static str) -> impl Parse<Given<IpAddr>> {
    or_blank(move |v: &str| settings::parse_addr(name, v))
}

/// A number of seconds greater than zero.
pub fn seconds(name: &'static str) -> impl Parse<Duration> {
    move |v: &str| settings::parse_seconds(name, v)
}

/// A number of seconds greater than zero, empty allowed.
pub fn seconds_or_blank(name: &'static str) -> impl Parse<Given<Duration>> {
    or_blank(seconds(name))
}

/// A count from 1 to 1024 (worker processes).
pub fn count(name: &'static str) -> impl Parse<usize> {
    whole(name, 1024, "expected a whole number from 1 to 1024")
}

/// A count of connections: a whole number from 1 to 1,000,000.
pub fn connections(name: &'static str) -> impl Parse<usize> {
    whole(name, 1_000_000, "expected a whole number from 1 to 1000000")
}

/// A whole number from 1 to `max`; `expected` says so.
fn whole(name: &'static str, max: usize, expected: &'static str) -> impl Parse<usize> {
    move |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| SettingsError::new(name, v, expected))
    }
}

/// A worker count: a whole number from 1 to 1024, or `auto` for one per core.
pub fn workers(name: &'static str) -> impl Parse<usize> {
    let number = count(name);
    move |v: &str| {
        if v.trim().eq_ignore_ascii_case("auto") {
            Ok(std::thread::available_parallelism().map_or(1, usize::from))
        } else {
            number(v).map_err(|_| {
                SettingsError::new(name, v, "expected a whole number from 1 to 1024, or auto")
            })
        }
    }
}

/// A URL path prefix: empty, or starting with `/`; a trailing `/` is dropped.
pub fn root_path(name: &'static str) -> impl Parse<String> {
    move |v: &str| {
        let trimmed = v.trim().trim_end_matches('/');
        if trimmed.is_empty() || (trimmed.starts_with('/') && !trimmed.contains(['?', '#'])) {
            Ok(trimmed.to_string())
        } else {
            Err(SettingsError::new(name, v, "expected a path such as /api"))
        }
    }
}

/// A size in bytes with an optional K, M or G suffix.
pub fn size(name: &'static str) -> impl Parse<u64> {
    move |v: &str| settings::parse_size(name, v)
}

/// Comma-separated globs (`--only`, `--hide`, `--read-only`), each checked here.
pub fn globs(name: &'static str) -> impl Parse<String> {
    move |v: &str| {
        for glob in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            glob::Pattern::new(glob).map_err(|e| SettingsError::new(name, v, e.msg))?;
        }
        Ok(v.to_string())
    }
}

/// A rate in bytes per second, with an optional K, M or G suffix (as curl's --limit-rate).
pub fn rate(name: &'static str) -> impl Parse<u64> {
    move |v: &str| {
        settings::parse_size(name, v)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                SettingsError::new(name, v, "expected bytes per second such as 100K or 2M")
            })
    }
}

/// A size in bytes (K, M, G suffixes) or a share such as `50%`.
pub fn drop_after(name: &'static str) -> impl Parse<crate::server::faults::DropAfter> {
    use crate::server::faults::DropAfter;
    move |v: &str| {
        let t = v.trim();
        let parsed = match t.strip_suffix('%') {
            Some(percent) => percent
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=99).contains(p))
                .map(DropAfter::Percent),
            None => settings::parse_size(name, t)
                .ok()
                .filter(|&n| n > 0)
                .map(DropAfter::Bytes),
        };
        parsed.ok_or_else(|| {
            SettingsError::new(
                name,
                v,
                "expected a size such as 64K or a share such as 50%",
            )
        })
    }
}

/// A whole number from 1 up.
pub fn positive(name: &'static str) -> impl Parse<u64> {
    move |v: &str| {
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| SettingsError::new(name, v, "expected a whole number from 1 up"))
    }
}

/// A share of packets to lose, from 0 to 100 percent (`5`, `2.5`, `5%`).
pub fn percent(name: &'static str) -> impl Parse<crate::tftp::Loss> {
    move |v: &str| {
        v.trim()
            .trim_end_matches('%')
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .map(|p| crate::tftp::Loss((p * 100.0).round() as u16))
            .ok_or_else(|| SettingsError::new(name, v, "expected a percentage from 0 to 100"))
    }
}

/// A duration such as `250ms`, `2s` or `1m`; a bare number is seconds.
pub fn duration(name: &'static str) -> impl Parse<Duration> {
    move |v: &str| {
        let t = v.trim();
        let seconds = t
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        seconds
            .or_else(|| humantime::parse_duration(t).ok())
            .ok_or_else(|| SettingsError::new(name, v, "expected a duration such as 250ms or 2s"))
    }
}

/// `USER:PASSWORD` (the password may be a crypt hash), kept as given.
pub fn user(name: &'static str) -> impl Parse<String> {
    move |v: &str| {
        crate::server::gate::User::parse(v)
            .map(|_| v.to_string())
            // The password is never echoed back.
            .map_err(|expected| {
                let user = v
                    .split_once(':')
                    .map_or("…".to_string(), |(u, _)| format!("{u}:…"));
                SettingsError::new(name, &user, expected)
            })
    }
}

/// A TFTP block size, 8 to 65464.
pub fn blksize(name: &'static str) -> impl Parse<u16> {
    move |v: &str| {
        settings::parse_number(
            name,
            v,
            8,
            crate::tftp::DEFAULT_MAX_BLKSIZE,
            "expected a block size from 8 to 65464",
        )
    }
}

/// A TFTP window size, 1 to 65535.
pub fn window(name: &'static str) -> impl Parse<u16> {
    move |v: &str| {
        settings::parse_number(
            name,
            v,
            1,
            u16::MAX,
            "expected a window size from 1 to 65535",
        )
    }
}

/// One of `tftpd`'s positional arguments: a lone number is a port, anything else an
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// An empty argument.
    Blank,
    /// A port number.
    Port(u16),
    /// A listen address.
    Addr(IpAddr),
}

/// Parses an [`Endpoint`].
pub fn endpoint(text: &str) -> Result<Endpoint, SettingsError> {
    let t = text.trim();
    if t.is_empty() {
        Ok(Endpoint::Blank)
    } else if t.bytes().all(|b| b.is_ascii_digit()) {
        settings::parse_port("PORT", t).map(Endpoint::Port)
    } else {
        settings::parse_addr("IFACE", text).map(Endpoint::Addr)
    }
}
