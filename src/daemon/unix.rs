//! The daemon actions on Unix: start, stop, restart, status and run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::detach::{self, Detached, Ready, Started};
use super::pidfile::{self, AcquireError, State};
use super::{Kind, TftpOptions};
use crate::cli::{Action, DaemonArgs, non_empty};
use crate::error::{Error, Result};
use crate::http::HttpConfig;
use crate::logging::{self, LogConfig, LogGuard};
use crate::net;
use crate::runner;
use crate::settings::{self, Settings};
use crate::tftp::{self, TftpConfig};

/// How long `start` waits for the daemon to report that it listens.
const READY_WAIT: Duration = Duration::from_secs(30);

/// How long `stop` waits after SIGKILL for the process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Exit code of `status` when the daemon is dead but its pid file remains (LSB).
const STATUS_DEAD: u8 = 1;
/// Exit code of `status` when the daemon is not running (LSB).
const STATUS_STOPPED: u8 = 3;

/// Everything a daemon command needs, resolved before any fork: paths are absolute,
/// because the daemon runs from `/`.
#[derive(Debug, Clone)]
struct Plan {
    kind: Kind,
    /// LPNAME: what messages call the daemon, and what its files are named after.
    name: String,
    pid: PathBuf,
    log: PathBuf,
    /// Whether LOG was set (for `run`, which otherwise logs to stderr).
    log_set: bool,
    root: PathBuf,
    addr: SocketAddr,
    debug: bool,
    quiet: bool,
    stop_timeout: Duration,
    ack_timeout: Duration,
    conn_timeout: Duration,
}

impl Plan {
    /// The plan for this command; `None` when `--show-settings` printed the settings.
    fn new(kind: Kind, args: &DaemonArgs, options: &TftpOptions) -> Result<Option<Plan>> {
        let mut settings = Settings::from_env(kind.defaults())?;
        if let Some(host) = non_empty(&options.host) {
            settings.iface = Some(settings::parse_addr("--host", host)?);
        }
        if let Some(port) = non_empty(&options.port) {
            settings.port = Some(settings::parse_port("--port", port)?);
        }
        if args.common.show_settings {
            print!("{}", settings.report(kind.program()));
            return Ok(None);
        }
        let seconds = |name, value: &Option<String>, default| match non_empty(value) {
            Some(v) => settings::parse_seconds(name, v),
            None => Ok(default),
        };
        let absolute = |path: PathBuf, what: &str| {
            std::path::absolute(&path).map_err(|e| Error::io(format!("resolving {what}"), e))
        };
        let addr = SocketAddr::new(
            settings
                .iface()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            settings.port(),
        );
        Ok(Some(Plan {
            kind,
            name: settings.lpname().to_string(),
            pid: absolute(settings.pid_file(), "PID")?,
            log: absolute(settings.log_file(), "LOG")?,
            log_set: settings.log.is_some(),
            root: absolute(settings.docroot(), "DOCROOT")?,
            addr,
            debug: settings.debug || args.verbose,
            quiet: args.quiet,
            stop_timeout: settings::parse_seconds("--stop-timeout", &args.stop_timeout)?,
            ack_timeout: seconds(
                "--ack-timeout",
                &options.ack_timeout,
                tftp::DEFAULT_ACK_TIMEOUT,
            )?,
            conn_timeout: seconds(
                "--conn-timeout",
                &options.conn_timeout,
                settings.sock_timeout,
            )?,
        }))
    }

    /// Prints a line of what was done, unless `-q`.
    fn say(&self, line: std::fmt::Arguments<'_>) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// Runs one daemon command.
pub(super) fn command(kind: Kind, args: &DaemonArgs, options: &TftpOptions) -> Result<ExitCode> {
    let Some(plan) = Plan::new(kind, args, options)? else {
        return Ok(ExitCode::SUCCESS);
    };
    match args.action {
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
            let root = crate::confine::check_root(&plan.root)?;
            serve(&plan, &root, None)?;
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

fn probe(pid_file: &Path) -> Result<State> {
    pidfile::probe(pid_file)
        .map_err(|e| Error::io(format!("reading pid file {}", pid_file.display()), e))
}

/// Removes a stale pid file: the pid it named, or `None` when nothing stale was there.
fn remove_stale(pid_file: &Path) -> Result<Option<Option<u32>>> {
    pidfile::remove_stale(pid_file)
        .map_err(|e| Error::io(format!("removing stale pid file {}", pid_file.display()), e))
}

/// ` (pid N)` when the pid is known.
fn pid_note(pid: Option<u32>) -> String {
    pid.map_or_else(String::new, |p| format!(" (pid {p})"))
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
            // LSB: 4 is "status unknown".
            eprintln!("{}: {e}", plan.kind.program());
            ExitCode::from(4)
        }
    }
}

fn start(plan: &Plan) -> Result<ExitCode> {
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
    let root = crate::confine::check_root(&plan.root)?;
    let log = logging::open_append(&plan.log).map_err(|error| Error::LogFile {
        path: plan.log.clone(),
        error,
    })?;
    plan.say(format_args!("LOG: {}", plan.log.display()));
    plan.say(format_args!("PID: {}", plan.pid.display()));
    plan.say(format_args!("DOCROOT: {}", root.display()));
    // Nothing may sit in stdout's buffer when the process forks, or it is written twice.
    {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
    match detach::detach(log)? {
        Detached::Daemon(ready) => {
            // This is the daemon now; its exit code goes nowhere but its own log.
            let code = match serve(plan, &root, Some(ready)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{}: {e}", plan.kind.program());
                    ExitCode::from(e.exit_code())
                }
            };
            std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
        }
        Detached::Parent(report) => match report.wait(READY_WAIT) {
            Started::Ready(pid, addr) => {
                plan.say(format_args!(
                    "started {name}, pid {pid}, listening on {addr}"
                ));
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

/// Runs the server: takes the pid file, starts logging, binds, and serves until SIGTERM
/// or SIGINT. With `ready` (a detached daemon), reports to `start` once listening, or
/// why it could not.
fn serve(plan: &Plan, root: &Path, mut ready: Option<Ready>) -> Result<()> {
    let result = serve_reporting(plan, root, &mut ready);
    if let (Err(e), Some(ready)) = (&result, ready.take()) {
        match e {
            Error::AlreadyRunning { pid, .. } => ready.running(*pid),
            e => ready.failed(e.exit_code(), &e.to_string()),
        }
    }
    result
}

fn serve_reporting(plan: &Plan, root: &Path, ready: &mut Option<Ready>) -> Result<()> {
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
    let log = Arc::new(logging::init(&LogConfig {
        debug: plan.debug,
        quiet: plan.quiet,
        file: (detached || plan.log_set).then(|| plan.log.clone()),
    })?);
    let socket = bind(plan)?;
    let bound = socket.local_addr()?;
    pid_file
        .write_addr(bound)
        .map_err(|e| Error::io(format!("cannot write {}", pid_file.path().display()), e))?;

    let (runtime, mut signals) = runner::runtime_with_signals()?;
    {
        let _context = runtime.enter();
        let log = log.clone();
        let path = plan.log.clone();
        signals
            .on_hangup(move || reopen(&log, &path, detached))
            .map_err(|e| Error::io("installing the SIGHUP handler", e))?;
    }
    tracing::info!(
        target: "labserv::daemon",
        "started {}, pid {pid}, listening on {bound}, serving {}",
        plan.name,
        root.display()
    );
    if let Some(ready) = ready.take() {
        ready.ready(pid, bound);
    }

    let served = match socket {
        Socket::Tcp(listener) => {
            let mut config = HttpConfig::new(root);
            config.debug = plan.debug;
            runner::serve_files_until_signal(runtime, signals, listener, config)
        }
        Socket::Udp(socket) => {
            let mut config = TftpConfig::new(root);
            config.ack_timeout = plan.ack_timeout;
            config.conn_timeout = plan.conn_timeout;
            runner::block_until_signal(&runtime, signals, |shutdown| async move {
                tftp::serve(socket, config, shutdown).await
            })
        }
    };
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

/// The daemon's listening socket.
enum Socket {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

impl Socket {
    fn local_addr(&self) -> Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        }
        .map_err(|e| Error::io("reading the bound address", e))
    }
}

fn bind(plan: &Plan) -> Result<Socket> {
    match plan.kind {
        Kind::Http => {
            net::raise_fd_limit();
            net::bind_tcp(Some(plan.addr.ip()), plan.addr.port()).map(Socket::Tcp)
        }
        Kind::Tftp | Kind::Atftp => net::bind_udp(plan.addr).map(Socket::Udp),
    }
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
