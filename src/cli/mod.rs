//! clap argument structs, typed: every value is parsed by a value parser from [`values`]
//! that reuses the settings parsers. Each server's options live in one struct
//! ([`ServOptions`], [`TftpdOptions`]) that its foreground command and its daemons flatten
//! alike, so an option added once works everywhere. [`crate::config`] turns them into a
//! running server's config.

mod unparse;
pub mod values;

use std::path::PathBuf;
use std::time::Duration;

use crate::server::gate::AuthScope;

use clap::{Args, Parser};

use values::{Endpoint, Given};

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

/// The file server's options: what `serv` and `httpdaemon` both take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ServOptions {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Refuse files reached through a symlink that leads outside the directory
    #[arg(long)]
    pub no_follow_symlinks: bool,

    /// List and serve names that start with a dot (.git, .ssh, .env), and take uploads
    /// of them; hidden and refused (404) by default
    #[arg(long)]
    pub dotfiles: bool,

    /// Serve and list only files whose names match these globs (comma-separated,
    /// repeatable: '*.img,*.bin'; with a '/', the path below the directory: 'fw/*.img');
    /// others get 404. Folders stay, to reach the files
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--only"))]
    pub only: Vec<String>,

    /// Hide and refuse (404) names matching these globs, and all a matching folder
    /// holds: 'secret*,*.key'
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--hide"))]
    pub hide: Vec<String>,

    /// Keep names matching these globs (and all a matching folder holds) from uploads,
    /// deletes and new folders (403) when writes are on: 'golden,release/*'
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--read-only"))]
    pub read_only: Vec<String>,

    /// Take uploads: PUT (curl -T) and the listing page's form (multipart POST), and
    /// DELETE and MKCOL; off by default
    #[arg(long)]
    pub upload: bool,

    /// Let an upload replace an existing file (else 409); off by default
    #[arg(long, requires = "upload")]
    pub overwrite: bool,

    /// The largest file an upload may be (K, M, G suffixes); larger gets 413 [default: 4G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--max-upload"))]
    pub max_upload: Option<u64>,

    /// The free space uploads leave on the disk (K, M, G suffixes; 0: none); an upload
    /// that would go below it gets 507 [default: 1% of the disk, at most 1G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--min-free"))]
    pub min_free: Option<u64>,

    /// Take uploads from pages of other origins too (a web flasher elsewhere); by default
    /// a browser's write from another site is refused (403), so that no page anyone opens
    /// can plant or replace files here
    #[arg(long, requires = "upload")]
    pub cross_site_uploads: bool,

    #[command(flatten)]
    pub gate: GateArgs,

    /// Print a QR code of the first address in the banner, for a phone's camera
    #[arg(long)]
    pub qr: bool,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub faults: FaultArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `serv [PORT] [IFACE]`: serve a directory over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "serv",
    version,
    about = "Serve a directory over HTTP/1.1 and HTTP/2 so boards and phones can fetch files",
    after_help = "Environment: PORT, IFACE, DOCROOT, LOG, DEBUG (see --show-settings).\n\
                  Empty arguments count as absent, so `serv $PORT $IFACE` works in a Procfile."
)]
pub struct ServArgs {
    /// Port to listen on [default: $PORT, else 8080]
    #[arg(value_name = "PORT", value_parser = values::port("PORT"))]
    pub port_arg: Option<Given<u16>>,

    /// Address to listen on [default: $IFACE, else every interface, IPv4 and IPv6]
    #[arg(value_name = "IFACE", value_parser = values::addr("IFACE"))]
    pub iface_arg: Option<Given<std::net::IpAddr>>,

    #[command(flatten)]
    pub options: ServOptions,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl ServArgs {
    /// The options with the positional PORT and IFACE folded in.
    pub fn options(&self) -> ServOptions {
        let mut options = self.options.clone();
        options.listen = options
            .listen
            .or(values::given(self.port_arg), values::given(self.iface_arg));
        options
    }
}

/// The TFTP server's options: what `tftpd`, `tftpdaemon` and `atftpdaemon` all take.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TftpdOptions {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Seconds to wait for an acknowledgement before sending again
    #[arg(
        long,
        value_name = "SECS",
        default_value = "0.5",
        allow_hyphen_values = true,
        value_parser = values::seconds("--ack-timeout")
    )]
    pub ack_timeout: Duration,

    /// Seconds before a silent client's transfer is abandoned [default: $SOCK_TIMEOUT, else 5]
    #[arg(
        long,
        value_name = "SECS",
        allow_hyphen_values = true,
        value_parser = values::seconds_or_blank("--conn-timeout")
    )]
    pub conn_timeout: Option<Given<Duration>>,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Largest block size granted, 8 to 65464 (lower it for clients behind a small MTU)
    #[arg(
        long,
        value_name = "N",
        default_value = "65464",
        allow_hyphen_values = true,
        value_parser = values::blksize("--max-blksize")
    )]
    pub max_blksize: u16,

    /// Largest window size granted (RFC 7440), 1 to 65535
    #[arg(
        long,
        value_name = "N",
        default_value = "64",
        allow_hyphen_values = true,
        value_parser = values::window("--max-window")
    )]
    pub max_window: u16,

    /// Transfers one client address may run at once; past it, an error (so that one
    /// host on the network cannot take every slot)
    #[arg(long, value_name = "N", default_value = "16", value_parser = values::count("--max-per-client"))]
    pub max_per_client: usize,

    /// Accept write requests (uploads); off by default
    #[arg(long)]
    pub upload: bool,

    /// Let an upload replace an existing file; off by default
    #[arg(long, requires = "upload")]
    pub overwrite: bool,

    /// The largest file an upload may be (K, M, G suffixes); a larger announced size
    /// (tsize) is refused up front, and a transfer that grows past it is ended with a
    /// disk-full error [default: 4G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--max-upload"))]
    pub max_upload: Option<u64>,

    /// The free space uploads leave on the disk (K, M, G suffixes; 0: none); an upload
    /// that would go below it ends with a disk-full error [default: 1% of the disk, at
    /// most 1G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--min-free"))]
    pub min_free: Option<u64>,

    /// Lose PERCENT of the packets sent (DATA, ACK, OACK) at random, to test a client's
    /// retransmits: 5, 2.5
    #[arg(long, value_name = "PERCENT", value_parser = values::percent("--loss"))]
    pub loss: Option<crate::tftp::Loss>,

    /// Hold each packet sent back for DURATION (20ms, 1s), as a slow link would
    #[arg(long = "delay", value_name = "DURATION", value_parser = values::duration("--delay"))]
    pub packet_delay: Option<Duration>,

    /// Seed the random losses, so that a run can be repeated [default: a new seed each
    /// start, printed in the banner]
    #[arg(long, value_name = "N", value_parser = values::positive("--seed"))]
    pub seed: Option<u64>,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Default for TftpdOptions {
    fn default() -> Self {
        Self {
            listen: ListenArgs::default(),
            ack_timeout: crate::tftp::DEFAULT_ACK_TIMEOUT,
            conn_timeout: None,
            max_per_client: crate::tftp::DEFAULT_MAX_PER_CLIENT,
            directory: None,
            max_blksize: crate::tftp::DEFAULT_MAX_BLKSIZE,
            max_window: crate::tftp::DEFAULT_MAX_WINDOW,
            upload: false,
            overwrite: false,
            max_upload: None,
            min_free: None,
            loss: None,
            packet_delay: None,
            seed: None,
            log: LogArgs::default(),
        }
    }
}

/// `tftpd [IFACE] [PORT]`: serve a directory over TFTP.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tftpd",
    version,
    about = "Serve a directory over TFTP to boards, boot ROMs and busybox",
    after_help = "A lone number is a port: `tftpd 9069` and `tftpd 9069 0.0.0.0` both work.\n\
                  Environment: IFACE, PORT, DOCROOT, SOCK_TIMEOUT, LOG, DEBUG (see --show-settings).\n\
                  Port 69 needs root or: sudo setcap cap_net_bind_service=+ep $(command -v tftpd)"
)]
pub struct TftpdArgs {
    /// Listen address and/or port, in either order [default: $IFACE, else 127.0.0.1;
    /// $PORT, else 9069]
    #[arg(value_name = "IFACE|PORT", num_args = 0..=2, value_parser = values::endpoint)]
    pub positional: Vec<Endpoint>,

    #[command(flatten)]
    pub options: TftpdOptions,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl TftpdArgs {
    /// The options with the positional address and port folded in.
    ///
    /// # Errors
    /// A second number, which cannot be an address.
    pub fn options(&self) -> Result<TftpdOptions, crate::settings::SettingsError> {
        let (mut port, mut iface) = (None, None);
        for endpoint in &self.positional {
            match *endpoint {
                Endpoint::Blank => {}
                Endpoint::Port(p) if port.is_none() => port = Some(p),
                // A second number is not an address, and says so in IFACE's words.
                Endpoint::Port(p) => {
                    iface = Some(crate::settings::parse_addr("IFACE", &p.to_string())?);
                }
                Endpoint::Addr(a) => iface = Some(a),
            }
        }
        let mut options = self.options.clone();
        options.listen = options.listen.or(port, iface);
        Ok(options)
    }
}

/// `wsgi [APP] [PORT]`: host a WSGI-style app.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "wsgi",
    version,
    about = "Host a WSGI-style app for a device or a browser to talk to",
    after_help = "Built-in apps: demo (the default: wsgiref's demo app), hello, echo.\n\
                  A lone number is a port: `wsgi 8000` and `wsgi --cgi-dir DIR 8000` both work.\n\
                  Environment: PORT, IFACE, LOG, DEBUG (see --show-settings)."
)]
pub struct WsgiArgs {
    /// The app to run: a Python WSGI app (`module:callable`, `file.py:callable`, or either
    /// without `:callable`), a built-in app (demo, hello, echo), or the path of an
    /// executable CGI script [default: demo]
    #[arg(value_name = "APP")]
    pub app: Option<String>,

    /// Port to listen on [default: $PORT, else 8000]
    #[arg(value_name = "PORT", value_parser = values::port("PORT"))]
    pub port_arg: Option<Given<u16>>,

    #[command(flatten)]
    pub listen: ListenArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub faults: FaultArgs,

    /// Largest request body accepted, in bytes (K, M, G suffixes allowed); larger gets 413
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = values::size("--max-body"))]
    pub max_body: u64,

    /// Do not check what the app sends (status, headers, Content-Type, Content-Length)
    #[arg(long)]
    pub no_validate: bool,

    /// Serve the CGI scripts in DIR: /name/rest runs DIR/name with /rest as PATH_INFO
    #[arg(long, value_name = "DIR")]
    pub cgi_dir: Option<PathBuf>,

    /// Seconds a CGI script may run before it is killed (the client gets 504)
    #[arg(
        long,
        value_name = "SECS",
        default_value = "30",
        allow_hyphen_values = true,
        value_parser = values::seconds("--cgi-timeout")
    )]
    pub cgi_timeout: Duration,

    /// The Python interpreter for a Python app [default: $VIRTUAL_ENV/bin/python, else
    /// python3 on PATH]
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Python worker processes, each serving one request at a time, or `auto` for one
    /// per core [default: 1, so that an app keeping state in memory sees one state]
    #[arg(short = 'w', long, value_name = "N", value_parser = values::workers("--workers"))]
    pub workers: Option<usize>,

    /// Run (and import) the Python app from DIR
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Seconds a Python worker may stay silent in a request before it is killed and
    /// replaced (the client gets 504)
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = values::seconds("--timeout"))]
    pub timeout: Duration,

    /// Seconds a request may wait for a free Python worker before it gets 503
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = values::seconds("--queue-timeout"))]
    pub queue_timeout: Duration,

    /// Restart the Python workers when a .py file under the app's directory changes
    /// (requests meanwhile are served by the old workers)
    #[arg(long)]
    pub reload: bool,

    /// The path the Python app is mounted at (its SCRIPT_NAME), e.g. /api
    #[arg(long, value_name = "PATH", default_value = "", value_parser = values::root_path("--root-path"))]
    pub root_path: String,

    #[command(flatten)]
    pub gate: GateArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What a daemon command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Start the server in the background; exit once it listens
    Start,
    /// Stop the background server (SIGTERM, then SIGKILL after --stop-timeout)
    Stop,
    /// Stop, then start (also when nothing runs)
    Restart,
    /// Say whether it runs (exit 0 running, 1 dead with a stale pid file, 3 not running)
    Status,
    /// Run the same server in the foreground (systemd, supervisord, a Procfile)
    Run,
}

/// Options every daemon command has.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// start, stop, restart, status or run
    #[arg(
        value_enum,
        value_name = "ACTION",
        required_unless_present = "show_settings"
    )]
    pub action: Option<Action>,

    /// Seconds `stop` waits for the server to finish before it kills it
    #[arg(
        long,
        value_name = "SECS",
        default_value = "10",
        allow_hyphen_values = true,
        value_parser = values::seconds("--stop-timeout")
    )]
    pub stop_timeout: Duration,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The environment every daemon reads, for `--help`.
const DAEMON_ENV: &str = "Environment: PORT, IFACE, DOCROOT, LPNAME, LOG, PID, DEBUG \
                          (see --show-settings).\n\
                          Exit codes: 0 done (status: running), 1 failed (status: dead, stale \
                          pid file), 2 bad arguments, 3 status: not running.";

/// `httpdaemon ACTION`: the HTTP file server in the background, with every option of `serv`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "httpdaemon",
    version,
    about = "Run the HTTP file server in the background: start, stop, restart, status, run",
    after_help = DAEMON_ENV
)]
pub struct HttpDaemonArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,

    #[command(flatten)]
    pub options: ServOptions,
}

/// `tftpdaemon ACTION` and `atftpdaemon ACTION`: the TFTP server in the background, with
/// every option of `tftpd`.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Run the TFTP server in the background: start, stop, restart, status, run",
    after_help = "SOCK_TIMEOUT sets the connection timeout.\n".to_string() + DAEMON_ENV
)]
pub struct TftpDaemonArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,

    #[command(flatten)]
    pub options: TftpdOptions,
}

/// The daemon `daemontui` shows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DaemonName {
    /// The TFTP server, SOCK_TIMEOUT as its connection timeout
    Tftpdaemon,
    /// The TFTP server with address and timeouts as options
    Atftpdaemon,
    /// The HTTP file server
    Httpdaemon,
}

/// `daemontui [DAEMON]`: configure, run and watch the daemons.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "daemontui",
    version,
    about = "Pick a daemon, set its port, device, address and directory, start and stop it, \
             and watch its log",
    after_help = "Keys: Tab/Shift-Tab move, arrows choose, Space toggles, Enter presses, \
                  Esc/q quit; the mouse works too.\n\
                  Environment: PORT, IFACE, IDEV, DOCROOT and DEBUG fill the form; LPNAME, PID \
                  and LOG name the daemon's files."
)]
pub struct TuiArgs {
    /// The daemon chosen at start [default: tftpdaemon]
    #[arg(value_enum, value_name = "DAEMON")]
    pub daemon: Option<DaemonName>,

    #[command(flatten)]
    pub common: CommonArgs,
}
