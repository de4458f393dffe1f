//! What a daemon command works from: the server's config from the one config step, and
//! the daemon's own files, all resolved before any fork (paths absolute: a daemon runs
//! from `/`).

use std::path::PathBuf;
use std::time::Duration;

use super::{DaemonOptions, Kind};
use crate::config::{self, ServerConfig};
use crate::error::{Error, Result};
use crate::settings::Settings;

/// Everything a daemon command needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) kind: Kind,
    /// LPNAME: what messages call the daemon, and what its files are named after.
    pub(crate) name: String,
    pub(crate) pid: PathBuf,
    pub(crate) log: PathBuf,
    /// Whether LOG was set (for `run`, which otherwise logs to stderr).
    pub(crate) log_set: bool,
    /// Print nothing on success.
    pub(crate) quiet: bool,
    pub(crate) stop_timeout: Duration,
    /// The server it runs.
    pub(crate) config: ServerConfig,
    /// What runs it.
    pub(crate) engine: &'static crate::runner::Engine,
}

/// The server config a daemon of `kind` runs with `options`, through the same step as
/// its foreground command. Every daemon listens on 127.0.0.1 unless told otherwise.
///
/// # Errors
/// Bad environment values.
pub fn resolve(kind: Kind, options: &DaemonOptions) -> Result<ServerConfig> {
    let settings = Settings::from_env(kind.defaults())?;
    resolve_with(&settings, options)
}

/// [`resolve`] with the settings already read.
///
/// # Errors
/// Options that conflict.
pub fn resolve_with(settings: &Settings, options: &DaemonOptions) -> Result<ServerConfig> {
    match options {
        DaemonOptions::Http(o) => config::serv(o, settings),
        DaemonOptions::Tftp(o) => config::tftpd(o, settings),
    }
}

impl Plan {
    /// The plan for a daemon of `kind` with the server `config`.
    pub(crate) fn new(
        kind: Kind,
        config: ServerConfig,
        stop_timeout: Duration,
        engine: &'static crate::runner::Engine,
    ) -> Result<Plan> {
        let absolute = |path: PathBuf, what: &str| {
            std::path::absolute(&path).map_err(|e| Error::io(format!("resolving {what}"), e))
        };
        let mut config = config;
        config.absolute_root()?;
        let settings = &config.settings;
        Ok(Plan {
            kind,
            name: settings.lpname().to_string(),
            pid: absolute(settings.pid_file(), "PID")?,
            log: absolute(settings.log_file(), "LOG")?,
            log_set: settings.log.is_some(),
            quiet: config.quiet,
            stop_timeout,
            config,
            engine,
        })
    }

    /// Prints a line of what was done, unless `-q`.
    pub(crate) fn say(&self, line: std::fmt::Arguments<'_>) {
        if !self.quiet {
            println!("{line}");
        }
    }
}
