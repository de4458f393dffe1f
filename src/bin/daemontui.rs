//! `daemontui [DAEMON]`: configure, run and watch the daemons in a terminal UI.

use std::process::ExitCode;

use clap::Parser;
use labserv::cli::TuiArgs;

#[cfg(unix)]
fn main() -> ExitCode {
    labserv::tui::main(TuiArgs::parse())
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    let _ = TuiArgs::parse();
    eprintln!("daemontui: the daemons need a Unix system; run `serv` or `tftpd` instead");
    ExitCode::from(1)
}
