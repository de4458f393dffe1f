//! The parsers behind every setting and every typed argument: one place decides what a
//! port, an address, a duration or a size may look like, and how a bad one is reported.

use std::net::IpAddr;
use std::time::Duration;

/// A variable or argument whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}={value:?}: {expected}")]
pub struct SettingsError {
    /// The variable or argument name (`PORT`, `IFACE`, ...).
    pub name: String,
    /// The value that was given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

impl SettingsError {
    pub(crate) fn new(name: &str, value: &str, expected: &'static str) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            expected,
        }
    }
}

/// Parses a boolean the way shell users write one: 0/1, true/false, yes/no, on/off.
///
/// # Errors
/// Anything else.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::new(name, value, "expected 0 or 1")),
    }
}

/// Parses a TCP/UDP port number, 0 to 65535 (0 picks a free port).
///
/// # Errors
/// Anything that is not a whole number in that range.
pub fn parse_port(name: &str, value: &str) -> Result<u16, SettingsError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| SettingsError::new(name, value, "expected a port number from 0 to 65535"))
}

/// Parses a listen address: an IPv4 or IPv6 literal, IPv6 optionally in brackets.
///
/// # Errors
/// Anything that is not an IP address.
pub fn parse_addr(name: &str, value: &str) -> Result<IpAddr, SettingsError> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    v.parse::<IpAddr>().map_err(|_| {
        SettingsError::new(
            name,
            value,
            "expected an IP address such as 0.0.0.0, 192.168.1.10 or ::",
        )
    })
}

/// Parses a duration in seconds (fractions allowed), greater than zero.
///
/// # Errors
/// Negative, zero, non-finite, absurdly large or non-numeric values.
pub fn parse_seconds(name: &str, value: &str) -> Result<Duration, SettingsError> {
    const EXPECTED: &str = "expected a number of seconds greater than 0, such as 5 or 0.5";
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| SettingsError::new(name, value, EXPECTED))?;
    // Written to reject NaN too: every comparison with NaN is false.
    let in_range = secs > 0.0 && secs <= 86_400.0 * 365.0;
    if !in_range {
        return Err(SettingsError::new(name, value, EXPECTED));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a whole number in `min..=max` (block sizes, window sizes).
///
/// # Errors
/// Anything else.
pub fn parse_number(
    name: &str,
    value: &str,
    min: u16,
    max: u16,
    expected: &'static str,
) -> Result<u16, SettingsError> {
    match value.trim().parse::<u16>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SettingsError::new(name, value, expected)),
    }
}

/// Parses a size in bytes, with an optional binary K, M or G suffix (`64M`).
///
/// # Errors
/// Anything else, or a size that overflows.
pub fn parse_size(name: &str, value: &str) -> Result<u64, SettingsError> {
    const EXPECTED: &str = "expected a size in bytes such as 65536, 64K or 64M";
    let v = value.trim();
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_uppercase()),
        _ => (v, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(SettingsError::new(name, value, EXPECTED)),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| SettingsError::new(name, value, EXPECTED))
}

/// Checks a network device name (`eth0`, `enp3s0`, `lo`).
///
/// # Errors
/// Names that no interface can have: too long, or with `/` or white space.
pub fn parse_device(name: &str, value: &str) -> Result<String, SettingsError> {
    let ok = value.len() <= 15 && !value.chars().any(char::is_whitespace);
    plain_name(
        name,
        value,
        ok,
        "expected a network device name such as eth0",
    )
}

/// Checks an LPNAME: it becomes part of file names, so it must be one plain path component.
///
/// # Errors
/// `.`, `..`, or names with `/` or a NUL byte.
pub fn parse_lpname(name: &str, value: &str) -> Result<String, SettingsError> {
    let ok = value != "." && value != ".." && !value.contains('\0');
    plain_name(
        name,
        value,
        ok,
        "expected a plain name without '/', such as httpd",
    )
}

/// A non-empty value without `/` that also passes the caller's own check.
fn plain_name(
    name: &str,
    value: &str,
    ok: bool,
    expected: &'static str,
) -> Result<String, SettingsError> {
    if ok && !value.is_empty() && !value.contains('/') {
        Ok(value.to_string())
    } else {
        Err(SettingsError::new(name, value, expected))
    }
}
