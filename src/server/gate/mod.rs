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

mod conns;
mod hosts;
mod tries;
mod users;

pub use conns::{DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_CLIENT};
pub(crate) use conns::{Held, Open, open_now};
pub(crate) use hosts::{Hosts, request_host};
#[cfg(test)]
use tries::TRIES_A_MINUTE;
use tries::{Failures, too_many_tries};
use users::digest;
pub use users::{Password, User};

/// Which requests need a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "commands", derive(clap::ValueEnum))]
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
mod tests;
