//! `httpdaemon {start,stop,restart,status,run}`: the HTTP file server in the background.

use std::process::ExitCode;

use labserv::cli::HttpDaemonArgs;

fn main() -> ExitCode {
    labserv::exit::main::<HttpDaemonArgs>("httpdaemon", labserv::daemon::httpdaemon)
}
