//! Which host names a server on loopback answers to (DNS rebinding).

use http::Request;
use http::header::{self, HeaderValue};

/// The host names a server on loopback answers to: `localhost` and `*.localhost`, IP
/// addresses, names of one label (`lab`, from /etc/hosts: no site on the web has one),
/// this machine's name (and `NAME.local`), and those allowed by name. Any other name in
/// a request to loopback is a page on the web that pointed its own name at 127.0.0.1
/// (DNS rebinding) to read this server or post to it from a browser here.
#[derive(Debug)]
pub(crate) struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    pub(crate) fn new(allowed: &[String]) -> Self {
        let mut names: Vec<String> = allowed.iter().map(|n| n.to_ascii_lowercase()).collect();
        if let Some(me) = crate::net::host_name() {
            names.push(format!("{me}.local"));
            names.push(me);
        }
        Self { names }
    }

    /// Whether a request naming `host` (a Host header or an HTTP/2 authority, with or
    /// without a port) may be answered. A request naming none (HTTP/1.0) may.
    pub(crate) fn allows(&self, host: Option<&[u8]>) -> bool {
        let Some(host) = host else { return true };
        // Every request to loopback asks this. An IPv4 address, with or without a port,
        // is what nearly all of them name: let in at a glance, with no parsing.
        if !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b'.' || b == b':')
        {
            return true;
        }
        let Ok(host) = std::str::from_utf8(host) else {
            return false;
        };
        let name = match host.strip_prefix('[') {
            // `[::1]:8080`: an IPv6 literal.
            Some(rest) => {
                return rest
                    .split(']')
                    .next()
                    .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
            }
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let name = name.trim_end_matches('.');
        let ends_with = |suffix: &str| {
            name.len() >= suffix.len()
                && name.as_bytes()[name.len() - suffix.len()..]
                    .eq_ignore_ascii_case(suffix.as_bytes())
        };
        !name.contains('.')
            || name.parse::<std::net::Ipv4Addr>().is_ok()
            || ends_with(".localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The host a request names: its Host header, else (HTTP/2) its authority.
pub(crate) fn request_host<B>(req: &Request<B>) -> Option<&[u8]> {
    req.headers()
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| req.uri().authority().map(|a| a.as_str().as_bytes()))
}
