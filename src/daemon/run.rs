//! The daemon process itself: it holds the locked pid file, runs its server through the
//! same steps as the foreground commands ([`crate::runner::prepare`]), reports to `start`
//! once it listens, and reopens its log on SIGHUP.

use std::path::Path;

use super::detach::Ready;
use super::pidfile::{self, AcquireError};
use super::plan::Plan;
use crate::error::{Error, Result};
use crate::logging::{self, LogGuard};
use crate::runner;

/// Runs the server: takes the pid file, starts logging, binds, and serves until SIGTERM
/// or SIGINT. With `ready` (a detached daemon), reports to `start` once listening, or
/// why it could not.
pub(super) fn serve(plan: &Plan, mut ready: Option<Ready>) -> Result<()> {
    let result = serve_reporting(plan, &mut ready);
    if let (Err(e), Some(ready)) = (&result, ready.take()) {
        match e {
            Error::AlreadyRunning { pid, .. } => ready.running(*pid),
            e => ready.failed(e.exit_code(), &e.to_string()),
        }
    }
    result
}

fn serve_reporting(plan: &Plan, ready: &mut Option<Ready>) -> Result<()> {
    let mut pid_file = match pidfile::acquire(&plan.pid) {
        Ok(held) => held,
        Err(AcquireError::Running(pid)) => {
            return Err(Error::AlreadyRunning {
                name: plan.name.clone(),
                pid,
            });
        }
        Err(AcquireError::Io(e)) => {
            return Err(Error::io(
                format!("cannot create pid file {}", plan.pid.display()),
                e,
            ));
        }
    };
    let pid = std::process::id();
    pid_file
        .write_pid(pid)
        .map_err(|e| Error::io(format!("cannot write pid file {}", plan.pid.display()), e))?;
    let detached = ready.is_some();
    let mut config = plan.config.clone();
    // A detached daemon always logs to its file; `run` logs to stderr unless LOG is set.
    config.log.file = (detached || plan.log_set).then(|| plan.log.clone());
    let mut prepared = runner::prepare(config, plan.engine)?;
    let bound = prepared.bound;
    pid_file
        .write_addr(bound)
        .map_err(|e| Error::io(format!("cannot write {}", pid_file.path().display()), e))?;
    {
        let _context = prepared.enter();
        let log = prepared.log.clone();
        let path = plan.log.clone();
        prepared
            .signals
            .on_hangup(move || reopen(&log, &path, detached))
            .map_err(|e| Error::io("installing the SIGHUP handler", e))?;
    }
    let root = prepared
        .root()
        .map_or_else(String::new, |r| format!(", serving {}", r.display()));
    tracing::info!(
        target: "labserv::daemon",
        "started {}, pid {pid}, listening on {bound}{root}",
        plan.name,
    );
    if let Some(ready) = ready.take() {
        ready.ready(pid, bound);
    }
    let log = prepared.log.clone();
    let served = prepared.serve();
    match &served {
        Ok(()) => tracing::info!(target: "labserv::daemon", "stopped {}, pid {pid}", plan.name),
        Err(e) => tracing::error!(target: "labserv::daemon", "{} failed: {e}", plan.name),
    }
    // The pid file goes before the log is flushed for the last time, so that once `stop`
    // sees the process gone, its last lines are in the file.
    drop(pid_file);
    log.flush();
    served
}

/// SIGHUP: reopen the log file at its path (logrotate has moved the old one away), and
/// point stdout and stderr of a detached daemon there too.
fn reopen(log: &LogGuard, path: &Path, detached: bool) {
    if let Err(e) = log.reopen() {
        tracing::warn!(target: "labserv::daemon", "SIGHUP: cannot reopen {}: {e}", path.display());
        return;
    }
    if detached && let Ok(file) = logging::open_append(path) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: dup2 onto the standard descriptors; `file` stays open for the call.
        unsafe {
            libc::dup2(file.as_raw_fd(), libc::STDOUT_FILENO);
            libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO);
        }
    }
    tracing::info!(target: "labserv::daemon", "SIGHUP: log file reopened");
}
