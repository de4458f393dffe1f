//! `daemontui [DAEMON]`: configure, run and watch the daemons in a terminal UI.

use std::process::ExitCode;

use labserv::cli::TuiArgs;

#[cfg(unix)]
fn main() -> ExitCode {
    labserv::exit::main::<TuiArgs>("daemontui", labserv::tui::main)
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    labserv::exit::main::<TuiArgs>("daemontui", |_| {
        eprintln!("daemontui: the daemons need a Unix system; run `serv` or `tftpd` instead");
        Ok(ExitCode::from(1))
    })
}
