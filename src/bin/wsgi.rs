//! `wsgi [APP] [PORT]`: host a WSGI-style app.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::WsgiArgs;

fn main() -> ExitCode {
    let args = WsgiArgs::parse();
    labserv::console::exit("wsgi", labserv::console::wsgi(args))
}
