//! `tftpd [IFACE] [PORT]`: serve a directory over TFTP.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::TftpdArgs;

fn main() -> ExitCode {
    let args = TftpdArgs::parse();
    labserv::console::exit("tftpd", labserv::console::tftpd(args))
}
