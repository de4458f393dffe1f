//! The daemons: `httpdaemon`, `tftpdaemon` and `atftpdaemon` start, stop, restart,
//! status and run.
//!
//! A daemon is one of labserv's servers, detached from the terminal, holding a locked pid
//! file for its whole life and logging to its LOG file. Liveness is always read from that
//! lock ([`pidfile::probe`]), never from the file's mere existence, so a crashed daemon's
//! leftover file is recognised as stale. `run` is the same server in the foreground.
//!
//! Unix only: elsewhere every action says so and exits 1.

#[cfg(unix)]
mod actions;
#[cfg(unix)]
mod control;
#[cfg(unix)]
mod detach;
#[cfg(unix)]
pub mod pidfile;
#[cfg_attr(not(unix), allow(dead_code))] // the plan is made and carried out on Unix only
mod plan;
#[cfg(unix)]
mod run;

#[cfg(unix)]
pub use control::{Stopped, stop};
pub use plan::{resolve, resolve_with};

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use crate::cli::{DaemonArgs, HttpDaemonArgs, ServOptions, TftpDaemonArgs, TftpdOptions};
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

/// The options of the server a daemon runs: its foreground command's own.
// One value per command run (and per daemontui form): boxing the larger variant would
// buy nothing. Which variant is the larger by more than clippy allows depends on the
// platform's sizes (Windows' clippy flags it, Linux's does not).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonOptions {
    /// `serv`'s options, for `httpdaemon`.
    Http(ServOptions),
    /// `tftpd`'s options, for `tftpdaemon` and `atftpdaemon`.
    Tftp(TftpdOptions),
}

/// `httpdaemon`: runs a daemon command and gives its exit code.
///
/// # Errors
/// Bad arguments or environment, or the action failed.
pub fn httpdaemon(args: HttpDaemonArgs) -> crate::Result<ExitCode> {
    command(
        Kind::Http,
        &args.daemon,
        &DaemonOptions::Http(args.options),
        &crate::runner::FILES,
    )
}

/// `tftpdaemon`: runs a daemon command and gives its exit code.
///
/// # Errors
/// Bad arguments or environment, or the action failed.
pub fn tftpdaemon(args: TftpDaemonArgs) -> crate::Result<ExitCode> {
    command(
        Kind::Tftp,
        &args.daemon,
        &DaemonOptions::Tftp(args.options),
        &crate::runner::TFTP,
    )
}

/// `atftpdaemon`: runs a daemon command and gives its exit code.
///
/// # Errors
/// Bad arguments or environment, or the action failed.
pub fn atftpdaemon(args: TftpDaemonArgs) -> crate::Result<ExitCode> {
    command(
        Kind::Atftp,
        &args.daemon,
        &DaemonOptions::Tftp(args.options),
        &crate::runner::TFTP,
    )
}

/// Runs a daemon command: 0 done (or running, for `status`), 1 failed (or dead with a
/// stale pid file), 2 bad arguments or environment, 3 not running (`status`).
/// `engine` runs the server (see [`crate::runner::Engine`]).
fn command(
    kind: Kind,
    args: &DaemonArgs,
    options: &DaemonOptions,
    engine: &'static crate::runner::Engine,
) -> crate::Result<ExitCode> {
    let config = resolve(kind, options)?;
    if args.common.show_settings {
        print!(
            "{}{}",
            config.settings.report(kind.program()),
            config.report_options()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(action) = args.action else {
        // clap requires an action unless --show-settings is given.
        return Ok(ExitCode::from(2));
    };
    run_action(kind, action, config, args.stop_timeout, engine)
}

#[cfg(unix)]
fn run_action(
    kind: Kind,
    action: crate::cli::Action,
    config: crate::config::ServerConfig,
    stop_timeout: std::time::Duration,
    engine: &'static crate::runner::Engine,
) -> crate::Result<ExitCode> {
    actions::command(action, plan::Plan::new(kind, config, stop_timeout, engine)?)
}

/// Says that daemons need Unix and exits 1; `serv` and `tftpd` run in the foreground.
#[cfg(not(unix))]
fn run_action(
    kind: Kind,
    _action: crate::cli::Action,
    _config: crate::config::ServerConfig,
    _stop_timeout: std::time::Duration,
    _engine: &'static crate::runner::Engine,
) -> crate::Result<ExitCode> {
    eprintln!(
        "{}: daemons need a Unix system; run `serv` or `tftpd` in the foreground instead",
        kind.program()
    );
    Ok(ExitCode::from(1))
}

impl DaemonOptions {
    /// The arguments that parse into these options.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        match self {
            DaemonOptions::Http(o) => o.to_args(),
            DaemonOptions::Tftp(o) => o.to_args(),
        }
    }
}
