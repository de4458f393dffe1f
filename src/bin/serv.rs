//! `serv [PORT] [IFACE]`: serve a directory over HTTP.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::ServArgs;

fn main() -> ExitCode {
    let args = ServArgs::parse();
    labserv::console::exit("serv", labserv::console::serv(args))
}
