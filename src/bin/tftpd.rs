//! `tftpd [IFACE] [PORT]`: serve a directory over TFTP.

use std::process::ExitCode;

use labserv::cli::TftpdArgs;

fn main() -> ExitCode {
    labserv::exit::main::<TftpdArgs>("tftpd", labserv::console::tftpd)
}
