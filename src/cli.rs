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
