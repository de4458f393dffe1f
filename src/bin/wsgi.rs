//! `wsgi [APP] [PORT]`: host a WSGI-style app.

use std::process::ExitCode;

use labserv::cli::WsgiArgs;

/// The extension module Python workers load, built by `build.rs` (empty where there are
/// no workers); only this binary carries it.
static EXTENSION: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labserv_ext.so"));

fn main() -> ExitCode {
    labserv::wsgi::python::provide_extension(EXTENSION);
    labserv::exit::main::<WsgiArgs>("wsgi", labserv::console::wsgi)
}
