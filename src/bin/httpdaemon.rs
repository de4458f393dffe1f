//! `httpdaemon {start,stop,restart,status,run}`: the HTTP file server in the background.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::HttpDaemonArgs;
use labserv::daemon::{self, Kind, TftpOptions};

fn main() -> ExitCode {
    let args = HttpDaemonArgs::parse();
    daemon::main(Kind::Http, args.daemon, TftpOptions::default())
}
