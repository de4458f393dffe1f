//! `serv [PORT] [IFACE]`: serve a directory over HTTP.

use std::process::ExitCode;

use labserv::cli::ServArgs;

fn main() -> ExitCode {
    labserv::exit::main::<ServArgs>("serv", labserv::console::serv)
}
