//! `atftpdaemon [--host ADDR] [-p PORT] [--ack-timeout S] [--conn-timeout S] ACTION`:
//! the TFTP server in the background, with its address and timeouts as options.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::AtftpDaemonArgs;
use labserv::daemon::{self, Kind, TftpOptions};

fn main() -> ExitCode {
    let args = AtftpDaemonArgs::parse();
    let options = TftpOptions {
        host: args.net.host,
        port: args.net.port,
        ack_timeout: Some(args.net.ack_timeout),
        conn_timeout: args.net.conn_timeout,
    };
    daemon::main(Kind::Atftp, args.daemon, options)
}
