//! One Python worker process: starting it with what it inherits, and hearing from it
//! over its control socket (see `ctl.rs`).

use super::Launch;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

use super::ctl::{self, ANSWERABLE, Board, Slot};
use super::handover::{self, Handover};
use super::inherit::{extension, life_pipe};
use super::inside::WorkerConfig;

/// The Python side, run with `python -c`.
const WORKER_PY: &str = include_str!("worker.py");

/// What every worker inherits.
pub(crate) struct Shared {
    /// The listening socket (the supervisor never accepts on it).
    listener: OwnedFd,
    /// Where a worker's own log lines go: the supervisor's LOG file, or its stderr.
    log: OwnedFd,
    /// The configuration every worker serves with (see [`WorkerConfig::to_file`]).
    config: OwnedFd,
    /// Which workers are idle (see [`Board`]).
    pub(crate) board: Board,
    /// The end of the supervisor's life pipe each worker watches, where workers are
    /// portable (see [`life_pipe`]).
    life: Option<BorrowedFd<'static>>,
}

impl Shared {
    pub(crate) fn new(
        listener: BorrowedFd<'_>,
        config: &WorkerConfig,
        log_file: Option<&std::path::Path>,
    ) -> io::Result<Self> {
        let log = match log_file {
            Some(path) => OwnedFd::from(crate::logging::open_append(path)?),
            None => io::stderr().as_fd().try_clone_to_owned()?,
        };
        Ok(Self {
            listener: listener.try_clone_to_owned()?,
            log,
            config: config.to_file()?,
            board: Board::create()?,
            life: if super::portable() {
                Some(life_pipe()?)
            } else {
                None
            },
        })
    }
}

/// A running worker and the supervisor's end of its control socket.
pub(crate) struct Worker {
    child: Child,
    ctl: OwnedFd,
    slot: Slot,
    /// Its seat on the board.
    pub(crate) seat: usize,
    /// Which start of the app this worker belongs to (`--reload` starts a new one).
    pub(crate) generation: u64,
    /// Waited for: its process id may belong to another process now, so it is never
    /// signalled again.
    reaped: bool,
}

impl Worker {
    /// Starts a worker process; it has not said yet whether its app imported.
    ///
    /// Call on a thread that lives as long as the server: the worker is killed when the
    /// thread that started it ends (so that it never outlives a supervisor killed with -9).
    pub(crate) fn spawn(
        launch: &Launch,
        shared: &Shared,
        index: usize,
        seat: usize,
    ) -> io::Result<Self> {
        let (mine, theirs) = ctl::pair()?;
        let slot = Slot::create()?;
        let ext = extension()?;
        let life = shared.life.map_or(-1, |fd| fd.as_raw_fd());
        let passed = [
            shared.listener.as_raw_fd(),
            theirs.as_raw_fd(),
            slot.fd().as_raw_fd(),
            shared.log.as_raw_fd(),
            shared.board.fd().as_raw_fd(),
            shared.config.as_raw_fd(),
        ];
        // Inherited across exec: these, and only these.
        let mut fds = passed.to_vec();
        fds.extend(ext.fd.map(|fd| fd.as_raw_fd()));
        fds.extend(shared.life.map(|fd| fd.as_raw_fd()));
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        let pdeathsig = !super::portable();
        let mut cmd = Command::new(&launch.python);
        cmd.arg("-c")
            .arg(WORKER_PY)
            .arg(&launch.app)
            .args(passed.iter().map(i32::to_string))
            .arg(&ext.path)
            .arg(life.to_string())
            .arg(seat.to_string())
            .current_dir(&launch.dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !launch.write_bytecode {
            cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Its own process group: a Ctrl-C at the terminal is the supervisor's to
                // handle, and a worker's subprocesses go with it when it is killed.
                libc::setpgid(0, 0);
                #[cfg(target_os = "linux")]
                if pdeathsig {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                }
                #[cfg(not(target_os = "linux"))]
                let _ = pdeathsig;
                // The supervisor may have died before the line above (or before a
                // portable worker watches its life pipe): then the worker must not start.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                for &fd in &fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        drop(theirs);
        let pid = child.id();
        if let Some(out) = child.stdout.take() {
            forward_lines(out, pid, index, false);
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, pid, index, true);
        }
        Ok(Self {
            child,
            ctl: mine,
            slot,
            seat,
            generation: 0,
            reaped: false,
        })
    }

    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (blocking) for the worker to say its app imported.
    ///
    /// # Errors
    /// What the worker said went wrong (the exception, in one line), or that it died.
    pub(crate) fn ready_blocking(&mut self, within: Duration) -> Result<(), String> {
        let mut poll = [rustix::event::PollFd::new(
            &self.ctl,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(within.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut poll, Some(&timeout)) {
            Ok(0) => return Err("no word from the worker: timed out".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("no word from the worker: {e}")),
        }
        self.answer_to_start()
    }

    /// Waits for the worker to say its app imported.
    ///
    /// # Errors
    /// As [`Worker::ready_blocking`].
    pub(crate) async fn ready(&mut self, within: Duration) -> Result<(), String> {
        let fd = readiness(&self.ctl).map_err(|e| e.to_string())?;
        match tokio::time::timeout(within, fd.readable()).await {
            Ok(Ok(mut guard)) => guard.clear_ready(),
            Ok(Err(e)) => return Err(format!("no word from the worker: {e}")),
            Err(_) => return Err("no word from the worker: timed out".into()),
        }
        drop(fd);
        self.answer_to_start()
    }

    /// Reads the worker's first message: [`ctl::READY`] (one byte, taken alone: on a
    /// stream the worker's next messages may follow it), or [`ctl::FAILED`] and why.
    fn answer_to_start(&mut self) -> Result<(), String> {
        let mut buf = vec![0u8; 64 * 1024];
        // Looked at first, without taking any descriptor that may ride along.
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        match rustix::net::recv(&self.ctl, &mut buf, flags) {
            Ok((0, _)) => Err(format!(
                "the worker exited at start ({})",
                self.exit_status()
            )),
            Ok((n, _)) => match buf[0] {
                ctl::READY => match ctl::recv(self.ctl.as_fd(), &mut buf[..1]) {
                    Ok((1, _)) => Ok(()),
                    other => Err(format!("no word from the worker: {other:?}")),
                },
                ctl::FAILED => Err(String::from_utf8_lossy(&buf[1..n]).into_owned()),
                kind => Err(format!("the worker said {:?} first", char::from(kind))),
            },
            Err(e) => Err(format!("no word from the worker: {e}")),
        }
    }

    /// Follows the worker until it ends, keeping a duplicate of each connection it has
    /// open, and lets each go as `handover.rs` says once the worker has: if it dies,
    /// the clients of the requests it had taken get a 502, and requests it never read go
    /// to another worker. The worker is not waited for yet: see [`Worker::exit_status`].
    pub(crate) async fn follow(&mut self, to: &Arc<dyn Handover>) {
        let pid = self.pid();
        let mut conns: HashMap<u64, OwnedFd> = HashMap::new();
        if let Ok(fd) = readiness(&self.ctl) {
            let mut message = ctl::Message::<9>::new();
            'outer: loop {
                let Ok(mut guard) = fd.readable().await else {
                    break;
                };
                loop {
                    match message.read(self.ctl.as_fd()) {
                        Ok(None) => {}
                        Ok(Some((buf, conn))) => {
                            let tag = u64::from_be_bytes(buf[1..9].try_into().unwrap_or_default());
                            match (buf[0], conn) {
                                (ctl::OPENED, Some(conn)) => {
                                    conns.insert(tag, conn);
                                }
                                (ctl::CLOSED, _) => {
                                    if let Some(conn) = conns.remove(&tag) {
                                        handover::closed_by_worker(conn, to, pid);
                                    }
                                }
                                _ => {}
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            guard.clear_ready();
                            break;
                        }
                        Err(_) => break 'outer,
                    }
                }
            }
        }
        // Requests it had taken: in the app, or waiting for it.
        let taken = std::iter::once(self.slot.get()).chain(self.slot.waiting());
        for tag in taken.filter(|tag| tag & ANSWERABLE != 0) {
            if let Some(conn) = conns.remove(&(tag & !ANSWERABLE)) {
                handover::answer_bad_gateway(conn);
            }
        }
        for (_, conn) in conns.drain() {
            handover::left_by_dead_worker(conn, to.as_ref(), pid);
        }
    }

    /// A duplicate of the supervisor's end of the control socket, to hand connections
    /// over to this worker.
    pub(crate) fn ctl(&self) -> io::Result<OwnedFd> {
        self.ctl.try_clone()
    }

    fn signal(&self, signal: i32) {
        if self.reaped {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals the worker's own process group (it made itself leader); not
            // yet waited for, the worker holds its process id, so the group is its own.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }

    /// Kills the worker and its process group at once.
    pub(crate) fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.kill();
    }

    /// How the worker ended, for the log: "exit code 1", "signal 11", or "still running".
    pub(crate) fn exit_status(&mut self) -> String {
        use std::os::unix::process::ExitStatusExt;
        // A worker whose socket closed is gone or going: give it a moment to be reaped.
        for _ in 0..50 {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return match (status.code(), status.signal()) {
                        (Some(code), _) => format!("exit code {code}"),
                        (_, Some(signal)) => format!("signal {signal}"),
                        _ => status.to_string(),
                    };
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return e.to_string(),
            }
        }
        "still running".to_string()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

/// Readiness of a control socket (through a duplicate it owns).
fn readiness(ctl: &OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    let dup = ctl.try_clone()?;
    // SAFETY: the AsyncFd owns the descriptor it watches, so it stays open while
    // registered.
    unsafe { AsyncFd::register(dup) }.map_err(io::Error::from)
}

/// Writes a 502 on a connection whose request died with its worker.
/// Sends what a worker prints to the log, line by line: standard error (tracebacks,
/// `wsgi.errors`) as warnings, standard output (an app's `print`) as information.
fn forward_lines(pipe: impl Read + Send + 'static, pid: u32, index: usize, errors: bool) {
    let spawned = std::thread::Builder::new()
        .name(format!("labserv-py{index}"))
        .spawn(move || {
            let mut lines = io::BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match io::BufRead::read_until(&mut lines, b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end();
                        if errors {
                            warn!(target: "labserv::wsgi", "worker {pid}: {text}");
                        } else {
                            info!(target: "labserv::wsgi", "worker {pid}: {text}");
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!(target: "labserv::wsgi", "worker {pid}: its output is lost: {e}");
    }
}
