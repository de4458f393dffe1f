//! `tftpdaemon {start,stop,restart,status,run}`: the TFTP server in the background.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::TftpDaemonArgs;
use labserv::daemon::{self, Kind, TftpOptions};

fn main() -> ExitCode {
    let args = TftpDaemonArgs::parse();
    daemon::main(Kind::Tftp, args.daemon, TftpOptions::default())
}
