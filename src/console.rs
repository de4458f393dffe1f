//! The foreground commands: `serv`, `tftpd` and `wsgi`, from parsed arguments to a
//! running server. Each resolves its config through [`crate::config`] and runs it with
//! its engine through the runner's prepare-then-serve steps, the path the daemons' `run`
//! shares; between the two it prints the banner (`banner.rs`) and, with a terminal on
//! standard input, reads commands (`commands.rs`).

mod banner;
mod commands;

use std::process::ExitCode;

use crate::cli::{CommonArgs, ServArgs, TftpdArgs, WsgiArgs};
use crate::config::{self, ServerConfig};
use crate::error::Result;
use crate::runner;
use crate::settings::{Defaults, Settings};

/// Runs `serv` until SIGINT or SIGTERM.
///
/// # Errors
/// Bad arguments or environment, a missing directory, a port that cannot be bound.
pub fn serv(args: ServArgs) -> Result<ExitCode> {
    let settings = Settings::from_env(Defaults::HTTP)?;
    let config = config::serv(&args.options(), &settings)?;
    foreground("serv", &args.common, config, &runner::FILES)
}

/// Runs `tftpd` until SIGINT or SIGTERM.
///
/// # Errors
/// Bad arguments or environment, a missing directory, a port that cannot be bound.
pub fn tftpd(args: TftpdArgs) -> Result<ExitCode> {
    let settings = Settings::from_env(Defaults::TFTP)?;
    let config = config::tftpd(&args.options()?, &settings)?;
    foreground("tftpd", &args.common, config, &runner::TFTP)
}

/// Runs `wsgi` until SIGINT or SIGTERM.
///
/// # Errors
/// An unknown app, bad arguments or environment, a port that cannot be bound.
pub fn wsgi(args: WsgiArgs) -> Result<ExitCode> {
    let settings = Settings::from_env(Defaults::WSGI)?;
    let config = config::wsgi(&args, &settings)?;
    foreground("wsgi", &args.common, config, &runner::APPS)
}

/// `--show-settings`, or the server in the foreground.
fn foreground(
    program: &str,
    common: &CommonArgs,
    config: ServerConfig,
    engine: &'static runner::Engine,
) -> Result<ExitCode> {
    if common.show_settings {
        print!(
            "{}{}",
            config.settings.report(program),
            config.report_options()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = runner::prepare(config, engine)?;
    if !prepared.quiet {
        print!("{}", banner::banner(&prepared));
    }
    let restart = commands::start(&prepared);
    prepared.serve()?;
    if restart.is_some_and(|asked| asked.load(std::sync::atomic::Ordering::Acquire)) {
        commands::restart()?;
    }
    Ok(ExitCode::SUCCESS)
}
