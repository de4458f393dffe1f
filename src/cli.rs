//! clap argument groups shared by the binaries. No logic: values are validated in
//! [`crate::settings`] so arguments and environment variables fail the same way.

use std::path::PathBuf;

use clap::{Args, Parser};

/// Options every binary has.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Print the version, the user directories and the effective value of every
    /// environment variable, then exit
    #[arg(long)]
    pub show_settings: bool,
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
    #[arg(value_name = "PORT")]
    pub port: Option<String>,

    /// Address to listen on [default: $IFACE, else every interface, IPv4 and IPv6]
    #[arg(value_name = "IFACE")]
    pub iface: Option<String>,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Refuse files reached through a symlink that leads outside the directory
    #[arg(long)]
    pub no_follow_symlinks: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Treats an empty argument as absent (`serv $PORT $IFACE` with IFACE unset).
pub fn non_empty(arg: &Option<String>) -> Option<&str> {
    arg.as_deref().map(str::trim).filter(|s| !s.is_empty())
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
    #[arg(value_name = "IFACE|PORT", num_args = 0..=2)]
    pub positional: Vec<String>,

    #[command(flatten)]
    pub net: TftpNetArgs,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Largest block size granted, 8 to 65464 (lower it for clients behind a small MTU)
    #[arg(
        long,
        value_name = "N",
        default_value = "65464",
        allow_hyphen_values = true
    )]
    pub max_blksize: String,

    /// Largest window size granted (RFC 7440), 1 to 65535
    #[arg(
        long,
        value_name = "N",
        default_value = "64",
        allow_hyphen_values = true
    )]
    pub max_window: String,

    /// Accept write requests (uploads); off by default
    #[arg(long)]
    pub upload: bool,

    /// Let an upload replace an existing file; off by default
    #[arg(long, requires = "upload")]
    pub overwrite: bool,

    /// Log per-transfer detail
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Log warnings and errors only
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The TFTP server's address and timeouts, as `tftpd` and `atftpdaemon` take them.
#[derive(Debug, Clone, Args)]
pub struct TftpNetArgs {
    /// Address to listen on (overrides IFACE)
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// Port to listen on (overrides PORT)
    #[arg(short, long, value_name = "N")]
    pub port: Option<String>,

    /// Seconds to wait for an acknowledgement before sending again
    #[arg(
        long,
        value_name = "SECS",
        default_value = "0.5",
        allow_hyphen_values = true
    )]
    pub ack_timeout: String,

    /// Seconds before a silent client's transfer is abandoned [default: $SOCK_TIMEOUT, else 5]
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub conn_timeout: Option<String>,
}

/// `wsgi [APP] [PORT]`: host a WSGI-style app.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "wsgi",
    version,
    about = "Host a WSGI-style app for a device or a browser to talk to",
    after_help = "Built-in apps: demo (the default: wsgiref's demo app), hello, echo.\n\
                  Environment: PORT, IFACE, LOG, DEBUG (see --show-settings)."
)]
pub struct WsgiArgs {
    /// The app to run: demo, hello, echo, or the path of an executable CGI script
    /// [default: demo]
    #[arg(value_name = "APP")]
    pub app: Option<String>,

    /// Port to listen on [default: $PORT, else 8000]
    #[arg(value_name = "PORT")]
    pub port: Option<String>,

    /// Address to listen on [default: $IFACE, else 127.0.0.1]
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// Largest request body accepted, in bytes (K, M, G suffixes allowed); larger gets 413
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub max_body: String,

    /// Do not check what the app sends (status, headers, Content-Type, Content-Length)
    #[arg(long)]
    pub no_validate: bool,

    /// Serve the CGI scripts in DIR: /name/rest runs DIR/name with /rest as PATH_INFO
    #[arg(long, value_name = "DIR", conflicts_with = "app")]
    pub cgi_dir: Option<PathBuf>,

    /// Seconds a CGI script may run before it is killed (the client gets 504)
    #[arg(
        long,
        value_name = "SECS",
        default_value = "30",
        allow_hyphen_values = true
    )]
    pub cgi_timeout: String,

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
    #[arg(value_enum, value_name = "ACTION")]
    pub action: Action,

    /// Print nothing on success, and log warnings and errors only
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log per-request or per-transfer detail (as DEBUG=1)
    #[arg(short, long)]
    pub verbose: bool,

    /// Seconds `stop` waits for the server to finish before it kills it
    #[arg(
        long,
        value_name = "SECS",
        default_value = "10",
        allow_hyphen_values = true
    )]
    pub stop_timeout: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The environment every daemon reads, for `--help`.
const DAEMON_ENV: &str = "Environment: PORT, IFACE, DOCROOT, LPNAME, LOG, PID, DEBUG \
                          (see --show-settings).\n\
                          Exit codes: 0 done (status: running), 1 failed (status: dead, stale \
                          pid file), 2 bad arguments, 3 status: not running.";

/// `httpdaemon ACTION`: the HTTP file server in the background.
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
}

/// `tftpdaemon ACTION`: the TFTP server in the background.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tftpdaemon",
    version,
    about = "Run the TFTP server in the background: start, stop, restart, status, run",
    after_help = "SOCK_TIMEOUT sets the connection timeout.\n".to_string() + DAEMON_ENV
)]
pub struct TftpDaemonArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// `atftpdaemon [OPTIONS] ACTION`: the TFTP server in the background, with its timeouts
/// and address as options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "atftpdaemon",
    version,
    about = "Run the TFTP server in the background, with address and timeouts as options",
    after_help = DAEMON_ENV
)]
pub struct AtftpDaemonArgs {
    #[command(flatten)]
    pub net: TftpNetArgs,

    #[command(flatten)]
    pub daemon: DaemonArgs,
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
