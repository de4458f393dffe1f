//! The daemons' command lines (`httpdaemon`, `tftpdaemon`, `atftpdaemon`: an action and
//! the foreground command's options, flattened) and `daemontui`'s.

use std::time::Duration;

use clap::{Args, Parser};

use super::values;
use super::{CommonArgs, ServOptions, TftpdOptions};

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
