//! clap argument structs, typed: every value is parsed by a value parser from [`values`]
//! that reuses the settings parsers. Each server's options live in one struct
//! ([`ServOptions`], [`TftpdOptions`]) that its foreground command and its daemons flatten
//! alike, so an option added once works everywhere. [`crate::config`] turns them into a
//! running server's config.

mod daemon;
mod serv;
mod tftpd;
mod unparse;
pub mod values;
mod wsgi;

pub use daemon::{Action, DaemonArgs, DaemonName, HttpDaemonArgs, TftpDaemonArgs, TuiArgs};
pub use serv::{ServArgs, ServOptions};
pub use tftpd::{TftpdArgs, TftpdOptions};
pub use wsgi::WsgiArgs;

use std::path::PathBuf;
use std::time::Duration;

use crate::server::gate::AuthScope;

use clap::Args;

use values::Given;

/// Options every binary has.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Print the version, the user directories and the effective value of every
    /// environment variable, then exit
    #[arg(long)]
    pub show_settings: bool,
}

/// How much a server logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct LogArgs {
    /// Log per-request or per-transfer detail (as DEBUG=1)
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Log warnings and errors only, and print no banner (daemons: print nothing on
    /// success)
    #[arg(short, long)]
    pub quiet: bool,

    /// Warn of every request (HTTP) or transfer (TFTP) that takes longer than DURATION
    /// (500ms, 2s)
    #[arg(long, value_name = "DURATION", value_parser = values::duration("--slow"))]
    pub slow: Option<Duration>,
}

/// HTTPS, for the HTTP servers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct TlsArgs {
    /// Serve HTTPS, with --cert/--key or else a self-signed certificate made once and
    /// kept (its path and SHA-256 fingerprint are printed at start)
    #[arg(long)]
    pub tls: bool,

    /// The certificate chain (PEM) to serve HTTPS with; implies --tls
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Keep an RSA-2048 certificate beside the generated ECDSA one, for TLS clients that
    /// cannot check ECDSA (some mbedTLS builds, UEFI firmware); each client gets the one it
    /// can use. Implies --tls
    #[arg(long, conflicts_with = "cert")]
    pub tls_rsa: bool,
}

/// A bad link on purpose, for testing OTA clients (the HTTP servers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct FaultArgs {
    /// Send at most RATE bytes per second on each connection (K, M, G suffixes), as
    /// curl's --limit-rate
    #[arg(long, value_name = "RATE", value_parser = values::rate("--limit-rate"))]
    pub limit_rate: Option<u64>,

    /// Close the connection after SIZE bytes (K, M, G suffixes) of each successful
    /// response body; or, with PERCENT%, once at that point of the file: a download
    /// running across it is cut there, and a resume (Range) from there completes
    #[arg(long, value_name = "SIZE|PERCENT", value_parser = values::drop_after("--drop-after"))]
    pub drop_after: Option<crate::server::faults::DropAfter>,

    /// Answer every Nth request with 503 and Retry-After: 1
    #[arg(long, value_name = "N", value_parser = values::positive("--fail-every"))]
    pub fail_every: Option<u64>,

    /// Wait DURATION (250ms, 2s) before the first byte of each response
    #[arg(long, value_name = "DURATION", value_parser = values::duration("--delay"))]
    pub delay: Option<Duration>,
}

/// Where a server listens, as options (they override the positional arguments and the
/// environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ListenArgs {
    /// Address to listen on (overrides IFACE)
    #[arg(long, value_name = "ADDR", value_parser = values::addr("--host"))]
    pub host: Option<Given<std::net::IpAddr>>,

    /// Port to listen on (overrides PORT)
    #[arg(short, long, value_name = "N", value_parser = values::port("--port"))]
    pub port: Option<Given<u16>>,
}

impl ListenArgs {
    /// Fills what the options left unset from positional arguments.
    pub fn or(&self, port: Option<u16>, host: Option<std::net::IpAddr>) -> Self {
        Self {
            host: Some(Given(values::given(self.host).or(host))),
            port: Some(Given(values::given(self.port).or(port))),
        }
    }
}

/// Who may ask what of an HTTP server: what `serv`, `httpdaemon` and `wsgi` take.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct GateArgs {
    /// Let in only this user (repeatable); PASSWORD may be a sha-512-crypt hash
    /// (`openssl passwd -6`). LABSERV_AUTH=USER:PASSWORD keeps it out of ps
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "LABSERV_AUTH",
        hide_env_values = true,
        value_parser = values::user("--auth")
    )]
    pub auth: Vec<String>,

    /// What needs a password: every request, or only writes (uploads)
    #[arg(long, value_name = "SCOPE", value_enum, default_value_t = AuthScope::All, requires = "auth")]
    pub auth_scope: AuthScope,

    /// Let pages from any origin fetch what is served (CORS), e.g. a browser-based
    /// flasher; answers preflight requests
    #[arg(long)]
    pub cors: bool,

    /// A host name clients may use besides localhost, IP addresses and this machine's
    /// name (repeatable). Only checked when listening on loopback, where a name nobody
    /// expected means a web page rebinding its DNS to reach this server (refused, 403)
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,

    /// Connections one client address may hold open at once; past it, 503 and the
    /// connection closed (so that one host cannot take every file descriptor)
    #[arg(long, value_name = "N", default_value_t = crate::server::gate::DEFAULT_MAX_CONNS_PER_CLIENT, value_parser = values::count("--max-conns-per-client"))]
    pub max_conns_per_client: usize,

    /// Connections open at once in all; past it, 503 and the connection closed (so that
    /// the server keeps descriptors for its own files)
    #[arg(long, value_name = "N", default_value_t = crate::server::gate::DEFAULT_MAX_CONNS, value_parser = values::connections("--max-conns"))]
    pub max_conns: usize,
}

impl Default for GateArgs {
    /// What the command line gives when none of these is used (daemontui builds on it).
    fn default() -> Self {
        Self {
            auth: Vec::new(),
            auth_scope: AuthScope::default(),
            cors: false,
            allow_host: Vec::new(),
            max_conns_per_client: crate::server::gate::DEFAULT_MAX_CONNS_PER_CLIENT,
            max_conns: crate::server::gate::DEFAULT_MAX_CONNS,
        }
    }
}
