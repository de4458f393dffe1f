//! `wsgi [APP] [PORT]`: host a WSGI-style app.

use std::process::ExitCode;

use labserv::cli::WsgiArgs;

fn main() -> ExitCode {
    labserv::exit::main::<WsgiArgs>("wsgi", labserv::console::wsgi)
}
