//! The daemons: `httpdaemon`, `tftpdaemon` and `atftpdaemon` start, stop, restart,
//! status and run.
//!
//! A daemon is one of labserv's servers, detached from the terminal, holding a locked pid
//! file for its whole life and logging to its LOG file. Liveness is always read from that
//! lock ([`pidfile::probe`]), never from the file's mere existence, so a crashed daemon's
//! leftover file is recognised as stale. `run` is the same server in the foreground.
//!
//! Unix only: elsewhere [`main`] says so and exits 1.

#[cfg(unix)]
mod detach;
#[cfg(unix)]
pub mod pidfile;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{Stopped, stop};

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use crate::cli::DaemonArgs;
use crate::settings::Defaults;

/// Which server a daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `httpdaemon`: the HTTP file server.
    Http,
    /// `tftpdaemon`: the TFTP server, SOCK_TIMEOUT as its connection timeout.
    Tftp,
    /// `atftpdaemon`: the TFTP server with address and timeouts as options.
    Atftp,
}

impl Kind {
    /// The command's name.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Http => "httpdaemon",
            Kind::Tftp => "tftpdaemon",
            Kind::Atftp => "atftpdaemon",
        }
    }

    /// Port, listen address and LPNAME when the environment sets none. Every daemon
    /// listens on 127.0.0.1 unless told otherwise: a background server reachable from the
    /// whole network stays an explicit choice.
    pub fn defaults(self) -> Defaults {
        let local = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        match self {
            Kind::Http => Defaults {
                port: 8080,
                iface: local,
                lpname: "httpd",
            },
            Kind::Tftp => Defaults {
                port: 9069,
                iface: local,
                lpname: "tftpd",
            },
            Kind::Atftp => Defaults {
                port: 9069,
                iface: local,
                lpname: "atftpd",
            },
        }
    }
}

/// The TFTP options only `atftpdaemon` takes, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct TftpOptions {
    /// `--host`.
    pub host: Option<String>,
    /// `-p/--port`.
    pub port: Option<String>,
    /// `--ack-timeout`.
    pub ack_timeout: Option<String>,
    /// `--conn-timeout`.
    pub conn_timeout: Option<String>,
}

/// Runs a daemon command from its parsed arguments and gives the exit code: 0 done (or
/// running, for `status`), 1 failed (or dead with a stale pid file), 2 bad arguments or
/// environment, 3 not running (`status`).
#[cfg(unix)]
pub fn main(kind: Kind, args: DaemonArgs, options: TftpOptions) -> ExitCode {
    match unix::command(kind, &args, &options) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            eprintln!("{}: {e}", kind.program());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Says that daemons need Unix and exits 1; `serv` and `tftpd` run in the foreground.
#[cfg(not(unix))]
pub fn main(kind: Kind, _args: DaemonArgs, _options: TftpOptions) -> ExitCode {
    eprintln!(
        "{}: daemons need a Unix system; run `serv` or `tftpd` in the foreground instead",
        kind.program()
    );
    ExitCode::from(1)
}
