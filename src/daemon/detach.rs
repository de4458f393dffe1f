//! Detaching from the terminal, and the readiness report from daemon to `start`.
//!
//! `start` creates a pipe, then lets the `daemonix` crate do the double fork, the new
//! session and the standard streams (stdin from /dev/null, stdout and stderr appended to
//! the log file). The daemon keeps the pipe's write end and says on it, once, whether it
//! came up: `ready PID ADDR`, `running PID` (another daemon holds the pid file) or
//! `failed CODE MESSAGE`. `start` waits for that line, so it exits 0 only once the
//! socket is bound and the pid file written, and otherwise prints the daemon's own error.
//!
//! All of this happens in plain synchronous code before any runtime or thread exists:
//! forking a process that runs threads is not safe.

use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use daemonix::{Daemonize, Outcome};

use crate::error::{Error, Result};

/// Which side of the fork this process is on.
pub(crate) enum Detached {
    /// The `start` command: wait for the report.
    Parent(Report),
    /// The daemon: serve, and report through [`Ready`].
    Daemon(Ready),
}

/// Forks the daemon off. Call with no threads running.
///
/// # Errors
/// The pipe or the fork fails.
pub(crate) fn detach(log: File) -> Result<Detached> {
    let (reader, writer) = io::pipe().map_err(|e| Error::io("creating the readiness pipe", e))?;
    let stdout = log
        .try_clone()
        .map_err(|e| Error::io("sharing the log file", e))?;
    // The daemon keeps the user's umask: its log and pid files get the permissions the
    // user's other files get.
    // SAFETY: umask only swaps the process's file mode mask; it is read and put back.
    let umask = unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    };
    // mode_t is u32 on Linux but u16 on macOS and the BSDs.
    #[allow(clippy::useless_conversion)]
    let umask = u32::from(umask);
    let outcome = Daemonize::new()
        .working_directory("/")
        .umask(umask)
        .stdout(stdout)
        .stderr(log)
        .execute();
    match outcome {
        Outcome::Parent(Ok(_)) => {
            drop(writer);
            Ok(Detached::Parent(Report(reader)))
        }
        Outcome::Parent(Err(e)) => Err(Error::io("detaching", io::Error::other(e))),
        Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Detached::Daemon(Ready(writer)))
        }
        Outcome::Child(Err(e)) => {
            // The first or second child, half detached: tell `start`, and leave.
            Ready(writer).failed(1, &format!("cannot detach: {e}"));
            std::process::exit(1)
        }
    }
}

/// The daemon's end of the pipe. Each method reports once and closes it.
pub(crate) struct Ready(PipeWriter);

impl Ready {
    /// The socket is bound and the pid file written.
    pub(crate) fn ready(self, pid: u32, addr: SocketAddr) {
        self.send(&format!("ready {pid} {addr}"));
    }

    /// Another daemon holds the pid file.
    pub(crate) fn running(self, pid: Option<u32>) {
        let pid = pid.map_or_else(|| "-".to_string(), |p| p.to_string());
        self.send(&format!("running {pid}"));
    }

    /// The daemon could not start; `code` is the exit code `start` should give.
    pub(crate) fn failed(self, code: u8, message: &str) {
        // One line: the message is an error's display text.
        let message = message.replace('\n', " ");
        self.send(&format!("failed {code} {message}"));
    }

    fn send(mut self, line: &str) {
        // `start` may have been killed meanwhile; the daemon goes on regardless.
        let _ = writeln!(self.0, "{line}");
    }
}

/// What the daemon said about its start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Started {
    /// Up: its pid and address.
    Ready(u32, SocketAddr),
    /// Another daemon already holds the pid file.
    Running(Option<u32>),
    /// It failed, with this exit code and message.
    Failed(u8, String),
    /// It ended, or went silent for the whole wait, without saying.
    Silent,
}

/// `start`'s end of the pipe.
pub(crate) struct Report(PipeReader);

impl Report {
    /// Waits up to `limit` for the daemon's report.
    pub(crate) fn wait(self, limit: Duration) -> Started {
        let Report(mut reader) = self;
        let (tx, rx) = std::sync::mpsc::channel();
        // A reader thread, so the wait can be bounded; this process forks no more.
        let spawned = std::thread::Builder::new()
            .name("labserv-ready".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = reader.read_to_string(&mut text);
                let _ = tx.send(text);
            });
        if spawned.is_err() {
            return Started::Silent;
        }
        match rx.recv_timeout(limit) {
            Ok(text) => parse(&text),
            Err(_) => Started::Silent,
        }
    }
}

fn parse(text: &str) -> Started {
    let line = text.lines().next().unwrap_or_default();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "ready" => {
            let mut parts = rest.splitn(2, ' ');
            let pid = parts.next().and_then(|p| p.parse().ok());
            let addr = parts.next().and_then(|a| a.parse().ok());
            match (pid, addr) {
                (Some(pid), Some(addr)) => Started::Ready(pid, addr),
                _ => Started::Silent,
            }
        }
        "running" => Started::Running(rest.parse().ok()),
        "failed" => {
            let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
            Started::Failed(code.parse().unwrap_or(1), message.to_string())
        }
        _ => Started::Silent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_the_pipe() {
        let cases: [(fn(Ready), Started); 4] = [
            (
                |r| r.ready(42, "[::1]:8080".parse().unwrap()),
                Started::Ready(42, "[::1]:8080".parse().unwrap()),
            ),
            (|r| r.running(Some(7)), Started::Running(Some(7))),
            (
                |r| r.failed(1, "cannot listen on 127.0.0.1:80: address\nin use"),
                Started::Failed(1, "cannot listen on 127.0.0.1:80: address in use".into()),
            ),
            (drop, Started::Silent),
        ];
        for (send, expected) in cases {
            let (reader, writer) = io::pipe().unwrap();
            send(Ready(writer));
            assert_eq!(Report(reader).wait(Duration::from_secs(5)), expected);
        }
    }
}
