//! `tftpdaemon {start,stop,restart,status,run}`: the TFTP server in the background.

use std::process::ExitCode;

use labserv::cli::TftpDaemonArgs;

fn main() -> ExitCode {
    labserv::exit::main::<TftpDaemonArgs>("tftpdaemon", labserv::daemon::tftpdaemon)
}
