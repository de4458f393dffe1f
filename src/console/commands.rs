//! The command line a foreground server reads while it runs, when its standard input is
//! a terminal: `help`, `status`, `restart` and `quit`. With any other standard input (a
//! Procfile, systemd, CI, a pipe) nothing is read and nothing changes.

use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::HttpService;
use crate::error::{Error, Result};
use crate::runner::{Prepared, Serving};

const HELP: &str = "\
commands:
  status    uptime, what is open now, requests answered and bytes sent
  restart   stop, then start again with the same arguments (the folder read anew)
  quit      stop, as Ctrl-C does
  help      this list
";

/// What the status line counts.
#[derive(Clone, Copy)]
enum Kind {
    /// Connections and requests.
    Http,
    /// Transfers.
    Tftp,
    /// Requests answered in the Python workers, which count them there.
    Python,
}

/// Starts reading commands when standard input is a terminal; whether `restart` was
/// asked for, once the server has stopped.
pub(super) fn start(p: &Prepared) -> Option<Arc<AtomicBool>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let kind = match &p.serving {
        Serving::Tftp { .. } => Kind::Tftp,
        Serving::Http {
            service: HttpService::Python { .. },
            ..
        } => Kind::Python,
        Serving::Http { .. } => Kind::Http,
    };
    crate::stats::start_counting();
    let stopper = p.signals.stopper();
    let restart = Arc::new(AtomicBool::new(false));
    let asked = restart.clone();
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name("labserv-console".into())
        .spawn(move || {
            println!("Type help for commands.");
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                match line.trim() {
                    "" => {}
                    "help" | "?" => print!("{HELP}"),
                    "status" => println!("{}", status(kind, started.elapsed())),
                    "quit" | "exit" => {
                        stopper.stop();
                        return;
                    }
                    "restart" => {
                        asked.store(true, Ordering::Release);
                        stopper.stop();
                        return;
                    }
                    other => println!("unknown command {other:?}: type help"),
                }
            }
        });
    spawned.ok().map(|_| restart)
}

/// The status line: `up 1m 2s; 3 connections open; 120 requests answered, 5.2 MiB sent`.
fn status(kind: Kind, up: Duration) -> String {
    let up = humantime::format_duration(Duration::from_secs(up.as_secs()));
    let (finished, sent, open) = crate::stats::now();
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let sent = crate::human::bytes(sent);
    match kind {
        Kind::Http => format!(
            "up {up}; {} open; {} answered, {sent} sent",
            plural(open as u64, "connection", "connections"),
            plural(finished, "request", "requests"),
        ),
        Kind::Tftp => format!(
            "up {up}; {} running; {} done, {sent} sent",
            plural(open as u64, "transfer", "transfers"),
            plural(finished, "transfer", "transfers"),
        ),
        Kind::Python => format!("up {up}; the Python workers answer the requests (see the log)"),
    }
}

/// Starts this command again with the same arguments, in this process's place.
///
/// # Errors
/// The program cannot be started again.
pub(super) fn restart() -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1));
    println!("Restarting.");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        Err(Error::io("restarting", command.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().map_err(|e| Error::io("restarting", e))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}
