//! Process control of a daemon from outside it: reading its pid file's lock, and
//! stopping it (SIGTERM, a wait, then SIGKILL).

use std::path::Path;
use std::time::{Duration, Instant};

use super::pidfile::{self, State};
use crate::error::{Error, Result};

/// How long `stop` waits after SIGKILL for the process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The daemon's state, read from its pid file's lock.
///
/// # Errors
/// The pid file cannot be read.
pub(crate) fn probe(pid_file: &Path) -> Result<State> {
    pidfile::probe(pid_file)
        .map_err(|e| Error::io(format!("reading pid file {}", pid_file.display()), e))
}

/// Removes a stale pid file: the pid it named, or `None` when nothing stale was there.
pub(crate) fn remove_stale(pid_file: &Path) -> Result<Option<Option<u32>>> {
    pidfile::remove_stale(pid_file)
        .map_err(|e| Error::io(format!("removing stale pid file {}", pid_file.display()), e))
}

/// What [`stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing ran, and there was no pid file.
    NotRunning,
    /// Nothing ran; a stale pid file (naming this pid) was removed.
    Stale(Option<u32>),
    /// The daemon ended after SIGTERM.
    Stopped(u32),
    /// The daemon ignored SIGTERM for the whole timeout and was killed.
    Killed(u32),
}

/// Stops the daemon whose pid file is `pid_file`: SIGTERM, up to `timeout` for it to
/// finish, then SIGKILL. Returns once the process is gone and its pid file removed.
///
/// # Errors
/// The pid file cannot be read or removed, the daemon cannot be signalled (another
/// user's), or it outlives SIGKILL.
pub fn stop(pid_file: &Path, timeout: Duration) -> Result<Stopped> {
    // A daemon between taking its lock and writing its pid gets a moment to write it.
    let deadline = Instant::now() + Duration::from_secs(1);
    let pid = loop {
        match probe(pid_file)? {
            State::Stopped => return Ok(Stopped::NotRunning),
            State::Stale { pid } => {
                let removed = remove_stale(pid_file)?;
                return Ok(removed.map_or(Stopped::NotRunning, |_| Stopped::Stale(pid)));
            }
            State::Running { pid: Some(pid), .. } => break pid,
            State::Running { pid: None, .. } if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            State::Running { pid: None, .. } => {
                return Err(Error::io(
                    format!("stopping the daemon of {}", pid_file.display()),
                    std::io::Error::other("the pid file is locked but names no pid"),
                ));
            }
        }
    };
    signal(pid, libc::SIGTERM)?;
    let deadline = Instant::now() + timeout;
    if wait_gone(pid_file, pid, deadline)? {
        return Ok(Stopped::Stopped(pid));
    }
    signal(pid, libc::SIGKILL)?;
    if wait_gone(pid_file, pid, Instant::now() + KILL_WAIT)? {
        return Ok(Stopped::Killed(pid));
    }
    Err(Error::io(
        format!("stopping pid {pid}"),
        std::io::Error::other("it still holds its pid file after SIGKILL"),
    ))
}

/// Polls until nobody holds the pid file and the process `pid` has ended, then removes
/// what a killed daemon left. False at `deadline`.
///
/// The lock goes first: a daemon removes its pid file and lets go of it a moment before
/// its process is finally gone, and `stop` returns only after both.
fn wait_gone(pid_file: &Path, pid: u32, deadline: Instant) -> Result<bool> {
    let mut released = false;
    loop {
        if !released {
            match probe(pid_file)? {
                State::Running { .. } => {}
                State::Stopped => released = true,
                State::Stale { .. } => {
                    remove_stale(pid_file)?;
                    released = true;
                }
            }
        }
        if released && process_gone(pid) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            // Released but not yet gone (a slow exit, or nobody reaping): the pid file
            // is what status and start go by, so that is done.
            return Ok(released);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has ended: no such process, or (Linux) a zombie waiting to be
/// reaped, which runs nothing and holds nothing.
fn process_gone(pid: u32) -> bool {
    let Ok(target) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    if unsafe { libc::kill(target, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after) = stat.rsplit_once(") ")?;
            after.chars().next()
        })
        == Some('Z')
}

fn signal(pid: u32, signal: libc::c_int) -> Result<()> {
    let Ok(target) = libc::pid_t::try_from(pid) else {
        return Err(Error::io(
            format!("signalling pid {pid}"),
            std::io::Error::other("not a valid pid"),
        ));
    };
    // SAFETY: kill has no memory effects; a pid that is gone gives ESRCH.
    let sent = unsafe { libc::kill(target, signal) };
    if sent == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::ESRCH) {
        // Gone between the probe and the signal: the wait sees the lock released.
        return Ok(());
    }
    Err(Error::io(format!("signalling pid {pid}"), error))
}
