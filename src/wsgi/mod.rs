//! The WSGI-style application host: the [`App`] contract (PEP 3333 in Rust terms), the
//! built-in apps, and `serve(listener, app, config, shutdown)`.
//!
//! An app receives the CGI/WSGI environ, the request body as a reader, and a
//! [`StartResponse`] to set status and headers; it returns the body as an iterator of
//! chunks, streamed to the client. Apps may block: they run on the blocking pool. A
//! [`Router`] is an app made of routes (a method and a path pattern each, JSON in and
//! out), for a device mock in a few lines.

mod apps;
pub(crate) mod cgi;
pub(crate) mod host;
pub mod python;
pub mod router;
mod spool;
pub(crate) mod validate;
pub(crate) mod variables;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

pub use apps::{APP_NAMES, builtin};
pub use cgi::{Cgi, DEFAULT_CGI_TIMEOUT, Scripts};
pub use host::{WsgiConfig, serve};
pub use router::{Reply, Router};

/// The request's environment: CGI variables, `HTTP_*` headers and `wsgi.*` keys, sorted.
pub type Environ = BTreeMap<String, String>;

/// A response body: chunks produced on demand.
pub type BodyIter = Box<dyn Iterator<Item = std::io::Result<Bytes>> + Send>;

/// Where an app puts its status line and headers (WSGI's `start_response`).
#[derive(Debug, Default)]
pub struct StartResponse {
    pub(crate) status: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gone: Option<ClientGone>,
}

/// Says whether the client of a request has gone away (closed its connection, or the
/// server is stopping), so a slow app can give up early.
#[derive(Clone)]
pub struct ClientGone(Arc<dyn Fn() -> bool + Send + Sync>);

impl ClientGone {
    /// Whether the client has gone.
    pub fn check(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for ClientGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientGone").field(&self.check()).finish()
    }
}

impl StartResponse {
    /// Sets the status (`"200 OK"`) and headers. Calling it again replaces both.
    pub fn start(&mut self, status: &str, headers: Vec<(String, String)>) {
        self.status = Some(status.to_string());
        self.headers = headers;
    }

    /// What tells whether the client has gone, when the host can tell (apps that block
    /// run where it can).
    pub fn client_gone(&self) -> Option<ClientGone> {
        self.gone.clone()
    }
}

/// A WSGI-style application.
pub trait App: Send + Sync + 'static {
    /// Answers one request: call `start.start(...)`, then return the body.
    ///
    /// # Errors
    /// An error ends the request with 500 and is logged.
    fn call(
        &self,
        environ: &Environ,
        input: &mut dyn Read,
        start: &mut StartResponse,
    ) -> std::io::Result<BodyIter>;

    /// Whether `call` or its body may block (wait on I/O or a lock, sleep, compute for
    /// long). Such apps run on the blocking pool with their body streamed; an app that
    /// answers at once can say `false` and is called directly on the connection's thread,
    /// its body gathered in memory, which is much cheaper. Default: `true`.
    fn may_block(&self) -> bool {
        true
    }
}

impl<F> App for F
where
    F: Fn(&Environ, &mut dyn Read, &mut StartResponse) -> std::io::Result<BodyIter>
        + Send
        + Sync
        + 'static,
{
    fn call(
        &self,
        environ: &Environ,
        input: &mut dyn Read,
        start: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        self(environ, input, start)
    }
}

/// The header list of a `text/plain; charset=utf-8` answer.
pub fn text_plain() -> Vec<(String, String)> {
    vec![(
        "Content-Type".to_string(),
        "text/plain; charset=utf-8".to_string(),
    )]
}

/// A body of one chunk.
pub fn once(bytes: impl Into<Bytes>) -> BodyIter {
    Box::new(std::iter::once(Ok(bytes.into())))
}

/// A shared app, as the host holds it.
pub type SharedApp = Arc<dyn App>;
