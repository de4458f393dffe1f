//! The daemon actions as a user runs them: start, stop, restart, status and run, and
//! what each one prints.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::control::{Stopped, probe, remove_stale, stop};
use super::detach::{self, Detached, Started};
use super::pidfile::State;
use super::plan::Plan;
use super::run::serve;
use crate::cli::Action;
use crate::error::{Error, Result};
use crate::logging;

/// How long `start` waits for the daemon to report that it listens.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Exit code of `status` when the daemon is dead but its pid file remains (LSB).
const STATUS_DEAD: u8 = 1;
/// Exit code of `status` when the daemon is not running (LSB).
const STATUS_STOPPED: u8 = 3;
/// Exit code of `status` when its state cannot be read (LSB: status unknown).
const STATUS_UNKNOWN: u8 = 4;

/// Runs one daemon command.
pub(super) fn command(action: Action, mut plan: Plan) -> Result<ExitCode> {
    match action {
        Action::Start => start(&plan),
        Action::Stop => {
            stop_and_say(&plan)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Restart => {
            stop_and_say(&plan)?;
            start(&plan)
        }
        Action::Status => Ok(status(&plan)),
        Action::Run => {
            plan.config.check_root()?;
            serve(&plan, None)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe(pid: Option<u32>, addr: Option<SocketAddr>) -> String {
    let pid = pid.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    match addr {
        Some(addr) => format!("pid {pid}, listening on {addr}"),
        None => format!("pid {pid}, still starting"),
    }
}

fn status(plan: &Plan) -> ExitCode {
    let name = &plan.name;
    match probe(&plan.pid) {
        Ok(State::Running { pid, addr }) => {
            println!("{name} is running, {}", describe(pid, addr));
            ExitCode::SUCCESS
        }
        Ok(State::Stale { pid }) => {
            let pid = pid.map_or_else(|| "no pid".to_string(), |p| format!("pid {p}"));
            println!(
                "{name} is not running, but its pid file remains: {} ({pid}, stale)",
                plan.pid.display()
            );
            ExitCode::from(STATUS_DEAD)
        }
        Ok(State::Stopped) => {
            println!("{name} is not running");
            ExitCode::from(STATUS_STOPPED)
        }
        Err(e) => {
            crate::exit::fail(plan.kind.program(), &e);
            ExitCode::from(STATUS_UNKNOWN)
        }
    }
}

fn start(plan: &Plan) -> Result<ExitCode> {
    let mut plan = plan.clone();
    let plan = &mut plan;
    let name = &plan.name;
    match probe(&plan.pid)? {
        State::Running { pid, addr } => {
            plan.say(format_args!(
                "{name} is already running, {}",
                describe(pid, addr)
            ));
            return Ok(ExitCode::SUCCESS);
        }
        State::Stale { .. } => {
            if let Some(pid) = remove_stale(&plan.pid)? {
                plan.say(format_args!(
                    "removed stale pid file {}{}",
                    plan.pid.display(),
                    pid_note(pid)
                ));
            }
        }
        State::Stopped => {}
    }
    plan.config.check_root()?;
    let root = plan.config.root().map(|r| r.display().to_string());
    let log = logging::open_append(&plan.log).map_err(|error| Error::LogFile {
        path: plan.log.clone(),
        error,
    })?;
    plan.say(format_args!("LOG: {}", plan.log.display()));
    plan.say(format_args!("PID: {}", plan.pid.display()));
    if let Some(root) = &root {
        plan.say(format_args!("DOCROOT: {root}"));
    }
    // Nothing may sit in stdout's buffer when the process forks, or it is written twice.
    {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
    match detach::detach(log)? {
        Detached::Daemon(ready) => {
            // This is the daemon now; its exit code goes nowhere but its own log.
            let failed = serve(plan, Some(ready))
                .map_err(|e| crate::exit::fail(plan.kind.program(), &e))
                .is_err();
            std::process::exit(i32::from(failed))
        }
        Detached::Parent(report) => match report.wait(READY_WAIT) {
            Started::Ready(pid, addr) => {
                plan.say(format_args!(
                    "started {name}, pid {pid}, listening on {addr}"
                ));
                if let Some(tls) = plan.config.http().and_then(|h| h.tls.as_ref()) {
                    plan.say(format_args!(
                        "HTTPS certificate: {} (SHA-256 {})",
                        tls.cert_path().display(),
                        tls.fingerprint().unwrap_or_else(|| "unreadable".into())
                    ));
                }
                Ok(ExitCode::SUCCESS)
            }
            Started::Running(pid) => {
                plan.say(format_args!(
                    "{name} is already running, pid {}",
                    pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
                ));
                Ok(ExitCode::SUCCESS)
            }
            Started::Failed(code, message) => {
                eprintln!("{}: {message}", plan.kind.program());
                Ok(ExitCode::from(code))
            }
            Started::Silent => Err(Error::io(
                format!("{name} did not report that it started"),
                std::io::Error::other(format!("see its log, {}", plan.log.display())),
            )),
        },
    }
}

fn stop_and_say(plan: &Plan) -> Result<()> {
    let name = &plan.name;
    match stop(&plan.pid, plan.stop_timeout)? {
        Stopped::NotRunning => plan.say(format_args!("{name} is not running")),
        Stopped::Stale(pid) => plan.say(format_args!(
            "{name} is not running; removed stale pid file {}{}",
            plan.pid.display(),
            pid_note(pid)
        )),
        Stopped::Stopped(pid) => plan.say(format_args!("stopped {name}, pid {pid}")),
        Stopped::Killed(pid) => plan.say(format_args!(
            "{name} did not stop within {}; killed pid {pid}",
            humantime::format_duration(plan.stop_timeout)
        )),
    }
    Ok(())
}

/// ` (pid N)` when the pid is known.
fn pid_note(pid: Option<u32>) -> String {
    pid.map_or_else(String::new, |p| format!(" (pid {p})"))
}
