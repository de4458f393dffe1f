//! `atftpdaemon {start,stop,restart,status,run}`: the TFTP server in the background, with tftpd's options.

use std::process::ExitCode;

use labserv::cli::TftpDaemonArgs;

fn main() -> ExitCode {
    labserv::exit::main::<TftpDaemonArgs>("atftpdaemon", labserv::daemon::atftpdaemon)
}
