//! `wsgi`'s command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::values::{self, Given};
use super::{CommonArgs, FaultArgs, GateArgs, ListenArgs, LogArgs, TlsArgs};

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
