//! Who may do what, before a request reaches its handler: passwords (`--auth`, HTTP Basic)
//! over all requests or only writes, and CORS (`--cors`) so that a browser page from
//! elsewhere (a WebSerial or WebUSB flasher) may fetch what is served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use sha_crypt::{PasswordVerifier, ShaCrypt};
use subtle::ConstantTimeEq;
use tracing::warn;

use super::body::Body;
use super::text_response;

/// One user's password: as given, or as a sha-512-crypt (or sha-256-crypt) hash.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Password {
    /// The password itself (kept as its SHA-256, compared in constant time).
    Plain([u8; 32]),
    /// A `$6$...` or `$5$...` hash, as `openssl passwd -6` prints it.
    Crypt(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even its digest.
        f.write_str(match self {
            Password::Plain(_) => "Plain(..)",
            Password::Crypt(_) => "Crypt(..)",
        })
    }
}

/// A user allowed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// The name.
    pub name: String,
    /// The password.
    pub password: Password,
}

impl User {
    /// Parses `USER:PASSWORD`, where PASSWORD may be a `$6$`/`$5$` crypt hash.
    ///
    /// # Errors
    /// No colon, an empty name, or a hash that is not a crypt hash; in words.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let (name, password) = text
            .split_once(':')
            .ok_or("expected USER:PASSWORD (or USER:$6$... from openssl passwd -6)")?;
        if name.is_empty() {
            return Err("expected a user name before the colon");
        }
        let password = if password.starts_with("$6$") || password.starts_with("$5$") {
            // A well-formed hash turns a wrong password down; a malformed one fails to parse.
            let checked = ShaCrypt::default().verify_password(b"", password);
            if !matches!(
                checked,
                Err(sha_crypt::password_hash::Error::PasswordInvalid)
            ) {
                return Err("expected a sha-512-crypt hash such as openssl passwd -6 prints");
            }
            Password::Crypt(password.to_string())
        } else if password.is_empty() {
            return Err("expected a password after the colon");
        } else {
            Password::Plain(digest(password.as_bytes()))
        };
        Ok(Self {
            name: name.to_string(),
            password,
        })
    }
}

/// Which requests need a password.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum AuthScope {
    /// Every request.
    #[default]
    All,
    /// Uploads only (PUT, POST, DELETE, ...); reading stays open.
    Writes,
}

/// The gate's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    /// Users allowed in; empty means no passwords.
    pub users: Vec<User>,
    /// Which requests need one.
    pub scope: AuthScope,
    /// Answer CORS preflights and mark answers readable from any origin.
    pub cors: bool,
    /// Host names allowed besides localhost, IP addresses and this machine's own name,
    /// when listening on loopback (`--allow-host`).
    pub allowed_hosts: Vec<String>,
    /// Connections one client address may hold at once (`--max-conns-per-client`);
    /// `None`: no cap.
    pub max_conns_per_client: Option<usize>,
    /// Connections open at once in all (`--max-conns`); `None`: no cap.
    pub max_conns: Option<usize>,
}

/// Default for [`Access::max_conns_per_client`]: far more than a browser (6), a
/// download manager (16) or a test rig opens, far fewer than the descriptors a server has.
pub const DEFAULT_MAX_CONNS_PER_CLIENT: usize = 1024;

/// Default for [`Access::max_conns`]: room for eight clients at their own cap, and far
/// below the descriptors a server gets (labserv raises its limit to the system's).
pub const DEFAULT_MAX_CONNS: usize = 8192;

/// The connections open now, in this process.
static OPEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One connection's place in the count of all, given back when dropped.
#[derive(Debug)]
pub(crate) struct Open(());

impl Open {
    /// Counts a new connection; `None` when `cap` are open already.
    pub(crate) fn take(cap: usize) -> Option<Self> {
        use std::sync::atomic::Ordering;
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < cap).then_some(open + 1)
        })
        .ok()
        .map(|_| Self(()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The connections each client address holds now, in this process.
static HELD: std::sync::LazyLock<Mutex<HashMap<std::net::IpAddr, usize>>> =
    std::sync::LazyLock::new(Mutex::default);

/// One connection's place in its client's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held(std::net::IpAddr);

impl Held {
    /// Counts a new connection from `client`; `None` when it already holds `cap`.
    pub(crate) fn take(client: std::net::IpAddr, cap: usize) -> Option<Self> {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Self(client))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.0);
            }
        }
    }
}

impl Access {
    /// Whether anything is checked or added.
    pub fn any(&self) -> bool {
        !self.users.is_empty() || self.cors
    }

    /// What is checked, in words, for the banner and `--show-settings`: `passwords for
    /// every request (lab, ci), CORS for any origin`; `None` when nothing is.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            let names: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
            let scope = match self.scope {
                AuthScope::All => "every request",
                AuthScope::Writes => "uploads",
            };
            parts.push(format!("passwords for {scope} ({})", names.join(", ")));
        }
        if self.cors {
            parts.push("CORS for any origin".to_string());
        }
        if !self.allowed_hosts.is_empty() {
            parts.push(format!(
                "host names allowed on loopback: {}",
                self.allowed_hosts.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The gate in front of a handler, with the crypt hashes already checked this run (so
/// that a slow hash is computed once per user and password, not per request).
pub(crate) struct Gate {
    access: Access,
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Crypt hashes computed at once, at most [`HASHING`].
    hashing: Arc<tokio::sync::Semaphore>,
    failures: Failures,
}

/// What a client is told to send.
const CHALLENGE: &str = "Basic realm=\"labserv\", charset=\"UTF-8\"";

/// Headers a page from elsewhere may read from an answer (sizes and ranges, to resume).
const EXPOSED: &str = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, X-Sha256";

impl Gate {
    pub(crate) fn new(access: Access) -> Self {
        Self {
            access,
            verified: Mutex::new(HashMap::new()),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING)),
            failures: Failures::default(),
        }
    }

    /// The answer for a request the handler must not see: a CORS preflight, or a request
    /// without a good password. `Ok(None)` lets it through; `Err` is a password whose
    /// crypt hash must be computed first (see [`Gate::finish`]), which takes
    /// milliseconds of CPU and so is never done on the event loop.
    pub(crate) fn stop<B>(
        &self,
        req: &Request<B>,
        peer: SocketAddr,
    ) -> Result<Option<Response<Body>>, SlowCheck> {
        if self.access.cors && req.method() == Method::OPTIONS {
            return Ok(Some(preflight(req.headers())));
        }
        if self.access.users.is_empty() {
            return Ok(None);
        }
        let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if self.access.scope == AuthScope::Writes && reads {
            return Ok(None);
        }
        let what = || format!("{peer} {} {}", req.method(), req.uri().path());
        if self.failures.held_back(peer.ip()) {
            return Ok(Some(too_many_tries()));
        }
        match basic_credentials(req.headers()) {
            Some((user, password)) => match self.allows(&user, &password) {
                Some(true) => Ok(None),
                Some(false) => Ok(Some(self.refuse(peer, &what(), &user))),
                None => Err(SlowCheck {
                    user,
                    password,
                    peer,
                    what: what(),
                }),
            },
            None => Ok(Some(unauthorized())),
        }
    }

    /// Finishes a [`SlowCheck`]: the crypt hashes are computed on the blocking pool, at
    /// most [`HASHING`] at once, so that a flood of wrong passwords cannot stall the
    /// downloads on the event loop.
    pub(crate) async fn finish(self: Arc<Self>, check: SlowCheck) -> Option<Response<Body>> {
        let permit = self.hashing.clone().acquire_owned().await.ok();
        let gate = self.clone();
        let (user, password) = (check.user.clone(), check.password.clone());
        let good = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            gate.allows_hashing(&user, &password)
        })
        .await
        .unwrap_or(false);
        if good {
            None
        } else {
            Some(self.refuse(check.peer, &check.what, &check.user))
        }
    }

    /// A wrong password: counted against its address and logged (once a minute per
    /// address once it is held back), then 401.
    fn refuse(&self, peer: SocketAddr, what: &str, user: &str) -> Response<Body> {
        if self.failures.failed(peer.ip()) {
            warn!(
                target: "labserv::http",
                "{what}: wrong password for user {user:?}"
            );
        }
        unauthorized()
    }

    /// Adds the CORS headers to an answer, when asked for.
    pub(crate) fn mark(&self, resp: &mut Response<Body>) {
        if self.access.cors {
            let headers = resp.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }

    /// Whether `user` with `password` may come in, from plain passwords and crypt hashes
    /// already checked; `None` when a crypt hash has to be computed to know. Every user is
    /// looked at, so the time taken does not say which names exist.
    fn allows(&self, user: &str, password: &str) -> Option<bool> {
        self.check(user, password, false)
    }

    /// As [`Gate::allows`], computing crypt hashes not yet checked (slow: call it off
    /// the event loop).
    fn allows_hashing(&self, user: &str, password: &str) -> bool {
        self.check(user, password, true) == Some(true)
    }

    /// The one check behind both: with `hash`, a crypt hash of `user` is computed when
    /// nothing known decides; without, that case gives `None`.
    fn check(&self, user: &str, password: &str, hash: bool) -> Option<bool> {
        let given = digest(password.as_bytes());
        let mut ok = subtle::Choice::from(0);
        let mut unknown = false;
        for known in &self.access.users {
            let name_matches = known.name.as_bytes().ct_eq(user.as_bytes());
            let password_matches = match &known.password {
                Password::Plain(expected) => expected.ct_eq(&given),
                Password::Crypt(crypt) if hash && known.name == user => {
                    self.crypt_matches(&known.name, crypt, password, &given)
                }
                Password::Crypt(_) if hash => subtle::Choice::from(0),
                Password::Crypt(_) => match self.verified_digest(&known.name) {
                    Some(known_digest) => known_digest.ct_eq(&given),
                    None => {
                        unknown |= known.name == user;
                        subtle::Choice::from(0)
                    }
                },
            };
            ok |= name_matches & password_matches;
        }
        match (bool::from(ok), unknown) {
            (true, _) => Some(true),
            (false, true) => None,
            (false, false) => Some(false),
        }
    }

    /// The digest of the password a crypt hash was last found to match, if any.
    fn verified_digest(&self, name: &str) -> Option<[u8; 32]> {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }

    fn crypt_matches(
        &self,
        name: &str,
        hash: &str,
        password: &str,
        given: &[u8; 32],
    ) -> subtle::Choice {
        if let Some(known) = self.verified_digest(name)
            && bool::from(known.ct_eq(given))
        {
            return subtle::Choice::from(1);
        }
        let good = ShaCrypt::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok();
        if good {
            self.verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_string(), *given);
        }
        subtle::Choice::from(u8::from(good))
    }
}

/// A request whose password needs a crypt hash computed before it is let in.
#[derive(Debug)]
pub(crate) struct SlowCheck {
    user: String,
    password: String,
    peer: SocketAddr,
    what: String,
}

/// How many crypt hashes are computed at once (each takes a blocking thread for
/// milliseconds).
const HASHING: usize = 2;

/// Wrong passwords an address may send in a minute before it is held back (429) for the
/// rest of that minute.
const TRIES_A_MINUTE: u32 = 10;

/// Wrong passwords by client address, in the current minute of each.
#[derive(Debug, Default)]
struct Failures {
    by_peer: Mutex<HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

impl Failures {
    /// Whether `ip` has used up its tries this minute.
    fn held_back(&self, ip: std::net::IpAddr) -> bool {
        let by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        by_peer.get(&ip).is_some_and(|(since, count)| {
            since.elapsed() < std::time::Duration::from_secs(60) && *count >= TRIES_A_MINUTE
        })
    }

    /// Counts a wrong password from `ip`; whether to log it (every one until the address
    /// is held back, then one a minute).
    fn failed(&self, ip: std::net::IpAddr) -> bool {
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
fn too_many_tries() -> Response<Body> {
    let mut resp = text_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong passwords from your address; try again in a minute",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

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

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn unauthorized() -> Response<Body> {
    let mut resp = text_response(
        StatusCode::UNAUTHORIZED,
        "a user name and password are needed",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    resp
}

/// The answer to a CORS preflight (and to any OPTIONS): what a page from elsewhere may send.
fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let out = resp.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE, MKCOL, OPTIONS"),
    );
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    out.insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE, MKCOL, OPTIONS"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, auth: Option<&str>) -> Request<()> {
        let mut req = Request::builder().method(method).uri("/fw.img");
        if let Some(auth) = auth {
            let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
            req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        req.body(()).unwrap()
    }

    fn gate(users: &[&str], scope: AuthScope) -> Gate {
        Gate::new(Access {
            allowed_hosts: Vec::new(),
            users: users.iter().map(|u| User::parse(u).unwrap()).collect(),
            scope,
            cors: false,
            max_conns_per_client: None,
            max_conns: None,
        })
    }

    #[test]
    fn on_loopback_only_local_names_ip_addresses_and_allowed_names_pass() {
        let hosts = Hosts::new(&["lab-host.example".to_string()]);
        for ok in [
            None,
            Some("localhost:8080"),
            Some("LOCALHOST"),
            Some("board.localhost"),
            Some("127.0.0.1:8080"),
            Some("[::1]:8080"),
            Some("192.168.1.20"),
            Some("lab-host.example:8080"),
            Some("lab"),
        ] {
            assert!(hosts.allows(ok.map(str::as_bytes)), "{ok:?}");
        }
        for refused in [
            Some("evil.example"),
            Some("evil.example:8080"),
            Some("[evil]:80"),
        ] {
            assert!(!hosts.allows(refused.map(str::as_bytes)), "{refused:?}");
        }
    }

    const PEER: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

    #[test]
    fn only_the_right_user_and_password_come_in() {
        let gate = gate(&["lab:secret", "ci:other"], AuthScope::All);
        let status = |auth| {
            gate.stop(&request(Method::GET, auth), PEER)
                .expect("plain passwords need no hashing")
                .map(|r| r.status())
        };
        assert_eq!(status(Some("lab:secret")), None);
        assert_eq!(status(Some("ci:other")), None);
        assert_eq!(status(Some("lab:other")), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            status(Some("nobody:secret")),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status(None), Some(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn a_crypt_hash_is_checked_and_remembered() {
        // openssl passwd -6 -salt labsalt secret
        let hash = "$6$labsalt$leYP1O/SwaG7fbW7P8PsNALxP8zLSliGjNZI80V.j4yytxGrI2SXlPBJnogfPEG3BvTABDgzPtKzGJoNlMA.S0";
        let gate = gate(&[&format!("lab:{hash}")], AuthScope::All);
        // Not known yet: the hash must be computed (off the event loop).
        assert_eq!(gate.allows("lab", "secret"), None);
        assert!(!gate.allows_hashing("lab", "Secret"));
        assert_eq!(
            gate.allows("lab", "secret"),
            None,
            "a wrong one is not remembered"
        );
        assert!(gate.allows_hashing("lab", "secret"));
        // Remembered: known at once from now on, right and wrong alike.
        assert_eq!(gate.allows("lab", "secret"), Some(true));
        assert_eq!(gate.allows("lab", "Secret"), Some(false));
        // Other names never match.
        assert_eq!(gate.allows("ci", "secret"), Some(false));
    }

    #[test]
    fn an_address_guessing_passwords_is_held_back_for_a_minute() {
        let gate = gate(&["lab:secret"], AuthScope::All);
        let status = |auth: &str| {
            let req = request(Method::GET, Some(auth));
            match gate.stop(&req, PEER).expect("plain") {
                Some(r) => r.status(),
                None => StatusCode::OK,
            }
        };
        for _ in 0..TRIES_A_MINUTE {
            assert_eq!(status("lab:guess"), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(status("lab:guess"), StatusCode::TOO_MANY_REQUESTS);
        // Held back: even the right password waits out the minute.
        assert_eq!(status("lab:secret"), StatusCode::TOO_MANY_REQUESTS);
        // Another address is not.
        let other = SocketAddr::new(std::net::Ipv4Addr::new(10, 0, 0, 7).into(), 9);
        let req = request(Method::GET, Some("lab:secret"));
        assert!(gate.stop(&req, other).expect("plain").is_none());
    }

    #[test]
    fn writes_scope_leaves_reading_open() {
        let gate = gate(&["lab:secret"], AuthScope::Writes);
        assert!(
            gate.stop(&request(Method::GET, None), PEER)
                .unwrap()
                .is_none()
        );
        let put = gate
            .stop(&request(Method::PUT, None), PEER)
            .unwrap()
            .unwrap();
        assert_eq!(put.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(put.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
    }

    #[test]
    fn bad_user_arguments_say_what_is_expected() {
        assert!(User::parse("nopassword").is_err());
        assert!(User::parse(":x").is_err());
        assert!(User::parse("lab:").is_err());
        assert!(User::parse("lab:$6$broken").is_err());
    }
}
