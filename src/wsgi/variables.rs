//! The CGI variables of a request (RFC 3875's names and the `HTTP_*` headers), built in
//! one place as bytes for every kind of app: Python workers get the bytes (and read them
//! as latin-1, as PEP 3333 asks), Rust apps and CGI scripts get them as text.

use std::net::SocketAddr;

use http::header;
use percent_encoding::percent_decode_str;

use crate::server::conn::Secure;

/// Why a request's path makes no environ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// The decoded path holds a NUL byte, which no environment can carry.
    Nul,
    /// The path lies outside the app's root path (`--root-path`): not the app's to answer.
    OutsideRoot,
}

/// Calls `set(name, value)` for each CGI variable of a request. The path is
/// percent-decoded and, when it lies under `root_path`, split into `SCRIPT_NAME` (the
/// root path) and `PATH_INFO` (the rest). Header values are as the client sent them,
/// a repeated header's values joined with commas. Two kinds of header never reach an
/// app, as with nginx, Apache and gunicorn: `Proxy` (httpoxy: it would become the
/// `HTTP_PROXY` that HTTP libraries take as their proxy) and any name with `_` (which
/// would pass for the `-` header a proxy in front vouched for).
///
/// # Errors
/// [`BadPath`], before anything is set.
pub(crate) fn cgi_variables(
    parts: &http::request::Parts,
    peer: SocketAddr,
    local: SocketAddr,
    root_path: &str,
    mut set: impl FnMut(&[u8], &[u8]),
) -> Result<(), BadPath> {
    let path: Vec<u8> = percent_decode_str(parts.uri.path()).collect();
    if path.contains(&0) {
        return Err(BadPath::Nul);
    }
    let path_info = path
        .strip_prefix(root_path.as_bytes())
        .filter(|rest| rest.is_empty() || rest.starts_with(b"/"))
        .ok_or(BadPath::OutsideRoot)?;
    set(b"REQUEST_METHOD", parts.method.as_str().as_bytes());
    set(b"SCRIPT_NAME", root_path.as_bytes());
    set(b"PATH_INFO", path_info);
    set(b"QUERY_STRING", parts.uri.query().unwrap_or("").as_bytes());
    set(
        b"SERVER_NAME",
        local.ip().to_canonical().to_string().as_bytes(),
    );
    set(b"SERVER_PORT", local.port().to_string().as_bytes());
    set(
        b"SERVER_PROTOCOL",
        format!("{:?}", parts.version).as_bytes(),
    );
    set(b"REMOTE_ADDR", peer.ip().to_string().as_bytes());
    set(b"REMOTE_PORT", peer.port().to_string().as_bytes());
    set(b"GATEWAY_INTERFACE", b"CGI/1.1");
    if parts.extensions.get::<Secure>().is_some() {
        // Not in RFC 3875, but what CGI scripts and WSGI hosts look for.
        set(b"HTTPS", b"on");
    }
    set(
        b"SERVER_SOFTWARE",
        concat!("labserv/", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    let mut name = Vec::with_capacity(64);
    let mut joined = Vec::new();
    for key in parts.headers.keys() {
        if key.as_str() == "proxy" || key.as_str().contains('_') {
            continue;
        }
        joined.clear();
        for (i, v) in parts.headers.get_all(key).iter().enumerate() {
            if i > 0 {
                joined.push(b',');
            }
            joined.extend_from_slice(v.as_bytes());
        }
        if key == header::CONTENT_TYPE {
            set(b"CONTENT_TYPE", &joined);
        } else if key == header::CONTENT_LENGTH {
            set(b"CONTENT_LENGTH", &joined);
        } else {
            name.clear();
            name.extend_from_slice(b"HTTP_");
            name.extend(key.as_str().bytes().map(|b| match b {
                b'-' => b'_',
                b => b.to_ascii_uppercase(),
            }));
            set(&name, &joined);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(uri: &str, root: &str, headers: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut req = http::Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let mut out = Vec::new();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        cgi_variables(
            &parts,
            addr("10.0.0.7:5000"),
            addr("10.0.0.1:8000"),
            root,
            |k, v| {
                out.push((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ));
            },
        )
        .map(|()| out)
        .unwrap_or_default()
    }

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_root_path_is_split_off_only_at_a_segment_boundary() {
        let vars = variables("/api/caf%C3%A9?x=1", "/api", &[]);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some("/api"));
        assert_eq!(get(&vars, "PATH_INFO"), Some("/café"));
        assert_eq!(get(&vars, "QUERY_STRING"), Some("x=1"));
        // Outside the root path: no environ (the host answers 404).
        assert!(variables("/apix/a", "/api", &[]).is_empty());
        assert!(variables("/other/env", "/api", &[]).is_empty());
        let vars = variables("/api", "/api", &[]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(""));
    }

    #[test]
    fn proxy_and_underscored_headers_never_reach_an_app() {
        let vars = variables(
            "/",
            "",
            &[
                ("proxy", "http://evil.example:3128"),
                ("x_forwarded_for", "10.9.9.9"),
                ("x-forwarded-for", "10.0.0.2"),
            ],
        );
        assert_eq!(get(&vars, "HTTP_PROXY"), None);
        assert_eq!(get(&vars, "HTTP_X_FORWARDED_FOR"), Some("10.0.0.2"));
    }

    #[test]
    fn headers_become_http_variables_and_repeats_are_joined() {
        let vars = variables(
            "/",
            "",
            &[
                ("x-board-id", "a"),
                ("x-board-id", "b"),
                ("content-type", "text/plain"),
            ],
        );
        assert_eq!(get(&vars, "HTTP_X_BOARD_ID"), Some("a,b"));
        assert_eq!(get(&vars, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&vars, "HTTP_CONTENT_TYPE"), None);
        assert_eq!(get(&vars, "REMOTE_ADDR"), Some("10.0.0.7"));
        assert_eq!(get(&vars, "SERVER_PORT"), Some("8000"));
    }

    #[test]
    fn a_nul_in_the_path_sets_nothing() {
        assert!(variables("/a%00b", "", &[]).is_empty());
    }
}
