//! The built daemon binaries: start, stop, restart, status and run, their messages and
//! exit codes, pid file locking, stale pid files, SIGHUP log reopening, and a request
//! served by each kind of daemon. Every daemon gets PORT=0 and its own PID, LOG and
//! DOCROOT in a fresh temporary directory.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, command, http_get, pattern, wait_file};

const HTTPDAEMON: &str = env!("CARGO_BIN_EXE_httpdaemon");
const TFTPDAEMON: &str = env!("CARGO_BIN_EXE_tftpdaemon");
const ATFTPDAEMON: &str = env!("CARGO_BIN_EXE_atftpdaemon");

/// Exit code, stdout and stderr of one command.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// One daemon's files in a temporary directory, stopped when dropped.
struct Daemon {
    bin: &'static str,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Daemon {
    fn new(bin: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("fw_update.img"), pattern(100_000)).unwrap();
        std::fs::write(root.join("version.txt"), "fw 1.2.3\n").unwrap();
        let env = vec![
            ("PORT", "0".to_string()),
            ("DOCROOT", root.display().to_string()),
            ("PID", dir.path().join("run/d.pid").display().to_string()),
            ("LOG", dir.path().join("log/d.log").display().to_string()),
        ];
        Self { bin, dir, env }
    }

    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value.to_string()));
        self
    }

    fn var(&self, name: &str) -> PathBuf {
        let (_, value) = self.env.iter().find(|(n, _)| *n == name).unwrap();
        PathBuf::from(value)
    }

    fn pid_file(&self) -> PathBuf {
        self.var("PID")
    }

    fn log_file(&self) -> PathBuf {
        self.var("LOG")
    }

    fn command(&self) -> Command {
        let mut cmd = command(self.bin);
        cmd.envs(self.env.iter().map(|(n, v)| (n, v)));
        cmd
    }

    /// Runs the binary with `args` to completion (at most 30 s).
    fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = self.command();
        cmd.args(args);
        finish(cmd)
    }

    /// `start`, which must succeed; returns the pid and port it announces.
    fn start(&self) -> (u32, u16) {
        self.start_with(&[])
    }

    /// `start` with options, which must succeed; returns the pid and port it announces.
    fn start_with(&self, options: &[&str]) -> (u32, u16) {
        let mut args = vec!["start"];
        args.extend_from_slice(options);
        let out = self.run(&args);
        assert_eq!(out.code, 0, "start failed: {}{}", out.stdout, out.stderr);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("started "))
            .unwrap_or_else(|| panic!("no `started` line in {:?}", out.stdout));
        pid_and_port(line)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never leave a daemon behind, whatever the test did.
        let _ = self.run(&["--stop-timeout", "2", "stop"]);
    }
}

fn finish(mut cmd: Command) -> Outcome {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("command finished within 30 s")
        .expect("command ran");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The pid and port of `..., pid N, listening on ADDR:PORT`.
fn pid_and_port(line: &str) -> (u32, u16) {
    let pid = line
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (pid, port)
}

/// Whether `pid` still runs. A zombie does not: it has ended and only waits for its
/// parent (here the machine's init, which may reap lazily) to collect its exit status.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) == 0 };
    // A killed multi-threaded daemon shows its main thread as a zombie while its other
    // threads are still being torn down, and those still hold its files (the pid file's
    // lock). It is gone when the zombie is alone in its thread group.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, s)| s.starts_with('Z'))
    });
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
    exists && !(zombie && threads <= 1)
}

/// Polls until `pid` is gone (at most 10 s).
fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tftp_get(port: u16, name: &str, out: &Path) -> bool {
    command("curl")
        .args(["-s", "--max-time", "20", "-o"])
        .arg(out)
        .arg(format!("tftp://127.0.0.1:{port}/{name}"))
        .status()
        .expect("curl runs")
        .success()
}

#[test]
fn start_status_stop_and_restart_say_what_they_did() {
    let d = Daemon::new(HTTPDAEMON);
    let out = d.run(&["status"]);
    assert_eq!((out.code, out.stdout.trim()), (3, "httpd is not running"));

    let out = d.run(&["start"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], format!("LOG: {}", d.log_file().display()));
    assert_eq!(lines[1], format!("PID: {}", d.pid_file().display()));
    assert!(lines[2].starts_with("DOCROOT: ") && lines[2].ends_with("/root"));
    assert!(lines[3].starts_with("started httpd, pid "), "{}", lines[3]);
    assert!(lines[3].contains("listening on 127.0.0.1:"), "{}", lines[3]);
    let (pid, port) = pid_and_port(lines[3]);
    assert_eq!(
        std::fs::read_to_string(d.pid_file()).unwrap().trim(),
        pid.to_string()
    );

    let out = d.run(&["status"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.trim(),
        format!("httpd is running, pid {pid}, listening on 127.0.0.1:{port}")
    );

    // It serves, and logs the request with a timestamp to LOG.
    let (status, body) = http_get("127.0.0.1", port, "/version.txt");
    assert_eq!((status, body.as_str()), (200, "fw 1.2.3\n"));
    let log = wait_file(&d.log_file(), |t| t.contains("GET /version.txt"));
    let line = log
        .lines()
        .find(|l| l.contains("GET /version.txt"))
        .unwrap();
    assert!(line.starts_with("20") && line.contains("Z "), "{line}");

    let out = d.run(&["restart"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&format!("stopped httpd, pid {pid}")));
    let started = out
        .stdout
        .lines()
        .find(|l| l.starts_with("started"))
        .unwrap();
    let (new_pid, _) = pid_and_port(started);
    assert_ne!(new_pid, pid);
    assert!(!alive(pid), "the old daemon is gone once restart returns");

    let out = d.run(&["stop"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.trim(), format!("stopped httpd, pid {new_pid}"));
    // stop returns only once the process is gone and its pid file removed.
    assert!(!alive(new_pid));
    assert!(!d.pid_file().exists());
    let log = std::fs::read_to_string(d.log_file()).unwrap();
    assert!(
        log.contains(&format!("stopped httpd, pid {new_pid}")),
        "{log}"
    );

    let out = d.run(&["stop"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "httpd is not running"));
    let out = d.run(&["status"]);
    assert_eq!(out.code, 3);
}

#[test]
fn start_on_a_busy_port_fails_with_the_reason_and_leaves_no_pid_file() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let d = Daemon::new(HTTPDAEMON).set("PORT", &port.to_string());
    let out = d.run(&["start"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: address already in use"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("started"));
    assert!(!d.pid_file().exists());
    assert_eq!(d.run(&["status"]).code, 3);
}

#[test]
fn start_with_a_missing_directory_fails_before_detaching() {
    let d = Daemon::new(HTTPDAEMON);
    let missing = d.dir.path().join("nope");
    let d = d.set("DOCROOT", missing.to_str().unwrap());
    let out = d.run(&["start"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no such directory"), "{}", out.stderr);
    assert!(!d.pid_file().exists());
}

#[test]
fn a_bad_environment_value_is_a_usage_error() {
    let d = Daemon::new(TFTPDAEMON).set("PORT", "abc");
    let out = d.run(&["start"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        r#"tftpdaemon: invalid PORT="abc": expected a port number from 0 to 65535"#
    );
    let out = d.run(&["launch"]);
    assert_eq!(out.code, 2, "an unknown action is a usage error");
}

#[test]
fn a_second_start_reports_the_running_daemon() {
    let d = Daemon::new(HTTPDAEMON);
    let (pid, port) = d.start();
    let out = d.run(&["start"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.trim(),
        format!("httpd is already running, pid {pid}, listening on 127.0.0.1:{port}")
    );
    // `run` cannot start a second server on the same pid file either.
    let out = d.run(&["run"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("httpd is already running, pid {pid}")),
        "{}",
        out.stderr
    );
    assert_eq!(d.run(&["status"]).code, 0, "the first daemon still runs");
}

#[test]
fn a_stale_pid_file_naming_someone_else_is_detected_and_replaced() {
    let d = Daemon::new(HTTPDAEMON);
    std::fs::create_dir_all(d.pid_file().parent().unwrap()).unwrap();
    // A live process that is not the daemon: this test itself.
    let ours = std::process::id();
    std::fs::write(d.pid_file(), format!("{ours}\n")).unwrap();

    let out = d.run(&["status"]);
    assert_eq!(out.code, 1, "LSB: dead but the pid file exists");
    assert!(
        out.stdout.contains("httpd is not running"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("pid {ours}, stale")));

    let out = d.run(&["start"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("removed stale pid file"),
        "{}",
        out.stdout
    );
    let (pid, _) = pid_and_port(out.stdout.lines().last().unwrap());
    assert_ne!(pid, ours);
    assert_eq!(d.run(&["status"]).code, 0);
    assert_eq!(d.run(&["stop"]).code, 0);
    assert!(alive(ours), "stop signals the daemon, never the stale pid");
}

#[test]
fn a_killed_daemon_reads_as_dead_and_start_recovers() {
    let d = Daemon::new(HTTPDAEMON);
    let (pid, _) = d.start();
    // SAFETY: SIGKILL to the daemon this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    wait_gone(pid);
    assert!(d.pid_file().exists(), "a killed daemon cannot clean up");

    let out = d.run(&["status"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("stale"), "{}", out.stdout);

    let (new_pid, port) = d.start();
    assert_ne!(new_pid, pid);
    assert_eq!(http_get("127.0.0.1", port, "/fw_update.img").0, 200);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn stop_kills_a_daemon_that_ignores_sigterm() {
    let d = Daemon::new(HTTPDAEMON);
    std::fs::create_dir_all(d.pid_file().parent().unwrap()).unwrap();
    // A stand-in daemon: holds the pid file's lock and ignores SIGTERM.
    let script = "import fcntl, os, signal, sys, time\n\
                  signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
                  f = open(sys.argv[1], 'w')\n\
                  fcntl.flock(f, fcntl.LOCK_EX)\n\
                  f.write(f'{os.getpid()}\\n'); f.flush()\n\
                  print('locked', flush=True)\n\
                  time.sleep(60)\n";
    let mut holder = Command::new("python3");
    holder.arg("-c").arg(script).arg(d.pid_file());
    let mut holder = Running::spawn(holder);
    holder.wait_line(|l| l == "locked");
    let pid = holder.child.id();
    assert_eq!(d.run(&["status"]).code, 0);

    let started = Instant::now();
    let out = d.run(&["--stop-timeout", "0.3", "stop"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("httpd did not stop within 300ms; killed pid {pid}")
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        holder.wait_exit(Duration::from_secs(5)),
        None,
        "killed by signal"
    );
    assert!(!d.pid_file().exists());
}

#[test]
fn sighup_reopens_a_log_file_that_was_moved_away() {
    let d = Daemon::new(HTTPDAEMON);
    let (pid, port) = d.start();
    wait_file(&d.log_file(), |t| t.contains("started httpd"));
    let rotated = d.log_file().with_extension("log.1");
    std::fs::rename(d.log_file(), &rotated).unwrap();

    // SAFETY: SIGHUP to the daemon this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    wait_file(&d.log_file(), |t| t.contains("log file reopened"));
    assert_eq!(http_get("127.0.0.1", port, "/fw_update.img").0, 200);
    wait_file(&d.log_file(), |t| t.contains("GET /fw_update.img"));
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(!old.contains("GET /fw_update.img"), "{old}");
    assert_eq!(d.run(&["status"]).code, 0, "SIGHUP does not stop it");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn the_tftp_daemons_serve_reads() {
    for bin in [TFTPDAEMON, ATFTPDAEMON] {
        let d = Daemon::new(bin);
        let (_, port) = d.start();
        let out = d.dir.path().join("got");
        assert!(tftp_get(port, "fw_update.img", &out), "{bin}");
        assert_eq!(std::fs::read(&out).unwrap(), pattern(100_000), "{bin}");
        wait_file(&d.log_file(), |t| t.contains("read \"fw_update.img\""));
        assert_eq!(d.run(&["stop"]).code, 0);
    }
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn atftpdaemon_takes_its_address_and_port_as_options() {
    let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let d = Daemon::new(ATFTPDAEMON);
    let args = [
        "--host",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--conn-timeout",
        "2",
    ];
    let out = d.run(&[&args[..], &["start"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("started atftpd, pid"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("listening on 127.0.0.1:{port}"))
    );
    let got = d.dir.path().join("got");
    assert!(tftp_get(port, "fw_update.img", &got));
    let out = d.run(&["--ack-timeout", "0", "start"]);
    assert_eq!(out.code, 2, "a zero ack timeout is refused");
}

#[test]
fn two_daemons_with_different_lpnames_run_side_by_side() {
    // No PID or LOG: both go to their defaults under the XDG directories, named after
    // LPNAME.
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let runtime = home.path().join("runtime");
    let with_dirs = |lpname: &str| {
        let mut d = Daemon::new(HTTPDAEMON).set("LPNAME", lpname);
        d.env.retain(|(n, _)| *n != "PID" && *n != "LOG");
        d.env.push(("HOME", home.path().display().to_string()));
        d.env.push(("XDG_STATE_HOME", state.display().to_string()));
        d.env
            .push(("XDG_RUNTIME_DIR", runtime.display().to_string()));
        d
    };
    let a = with_dirs("fw-a");
    let b = with_dirs("fw-b");
    let out = a.run(&["start"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log_a = state.join("labserv/log/fw-a.log");
    let pid_a = runtime.join("labserv/fw-a.pid");
    assert!(
        out.stdout.contains(&format!("LOG: {}", log_a.display())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("PID: {}", pid_a.display())));
    let (_, port_a) = pid_and_port(out.stdout.lines().last().unwrap());
    let (_, port_b) = b.start();
    assert_ne!(port_a, port_b);

    assert!(a.run(&["status"]).stdout.starts_with("fw-a is running"));
    assert!(b.run(&["status"]).stdout.starts_with("fw-b is running"));
    assert_eq!(http_get("127.0.0.1", port_a, "/fw_update.img").0, 200);
    assert_eq!(http_get("127.0.0.1", port_b, "/fw_update.img").0, 200);
    wait_file(&log_a, |t| t.contains("GET /fw_update.img"));
    assert!(runtime.join("labserv/fw-b.pid").exists());

    assert_eq!(a.run(&["stop"]).code, 0);
    assert_eq!(a.run(&["status"]).code, 3);
    assert_eq!(b.run(&["status"]).code, 0, "stopping one leaves the other");
}

#[test]
fn run_serves_in_the_foreground_and_exits_0_on_sigterm() {
    let d = Daemon::new(HTTPDAEMON);
    // Without LOG, `run` logs to stderr for the supervisor to collect.
    let mut cmd = d.command();
    cmd.env_remove("LOG").arg("run");
    let mut srv = Running::spawn(cmd);
    let stderr = srv.child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("started httpd"))
        .expect("a started line on stderr");
    let (pid, port) = pid_and_port(started.split(", serving").next().unwrap());
    assert_eq!(pid, srv.child.id());

    let out = d.run(&["status"]);
    assert_eq!(out.code, 0, "status sees a `run` server too");
    assert_eq!(http_get("127.0.0.1", port, "/fw_update.img").0, 200);

    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!d.pid_file().exists());
    assert!(!d.log_file().exists(), "nothing went to the default LOG");
}

#[test]
fn an_unwritable_pid_directory_is_a_clear_error() {
    let d = Daemon::new(HTTPDAEMON);
    // A regular file where the pid directory should be: unwritable even for root.
    let blocker = d.dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let d = d.set("PID", blocker.join("d.pid").to_str().unwrap());
    let out = d.run(&["start"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot create pid file"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("started"));
}

#[test]
fn restart_starts_a_daemon_that_was_not_running() {
    let d = Daemon::new(TFTPDAEMON);
    let out = d.run(&["restart"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("tftpd is not running\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("started tftpd, pid "), "{}", out.stdout);
    assert_eq!(d.run(&["status"]).code, 0);
}

#[test]
fn two_starts_at_once_start_one_daemon() {
    let d = Daemon::new(HTTPDAEMON);
    let spawn = || {
        let mut cmd = d.command();
        cmd.arg("start");
        std::thread::spawn(move || finish(cmd))
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.join().unwrap(), b.join().unwrap()];
    for out in &outs {
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    let started: Vec<&str> = outs
        .iter()
        .flat_map(|o| o.stdout.lines())
        .filter(|l| l.starts_with("started "))
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(
        outs.iter()
            .any(|o| o.stdout.contains("httpd is already running, pid")),
        "the other start says who runs"
    );
    let out = d.run(&["status"]);
    let (pid, _) = pid_and_port(started[0]);
    assert!(
        out.stdout.contains(&format!("pid {pid},")),
        "{}",
        out.stdout
    );
}

#[test]
fn an_unwritable_log_directory_is_a_clear_error() {
    let d = Daemon::new(TFTPDAEMON);
    let blocker = d.dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let log = blocker.join("d.log");
    let d = d.set("LOG", log.to_str().unwrap());
    let out = d.run(&["start"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "tftpdaemon: cannot open log file {}: ",
            log.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!d.pid_file().exists(), "nothing started");
    assert_eq!(d.run(&["status"]).code, 3);
}

/// The long options a command's `--help` lists, each with its value name if it takes one.
fn options_in_help(bin: &str) -> Vec<(String, Option<String>)> {
    let out = command(bin).arg("--help").output().unwrap();
    assert!(out.status.success(), "{bin} --help");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = match line.as_bytes() {
            [b'-', short, b',', b' ', ..] if *short != b'-' => &line[4..],
            _ => line,
        };
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = format!("--{}", words.next().unwrap());
        let value = words
            .next()
            .and_then(|w| w.strip_prefix('<'))
            .and_then(|w| w.strip_suffix('>'))
            .map(str::to_string);
        found.push((name, value));
    }
    found
}

#[test]
fn every_option_of_a_foreground_command_works_with_its_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let sample = |value: &str| match value {
        "DIR" => dir.path().display().to_string(),
        "ADDR" => "127.0.0.1".to_string(),
        "N" => "512".to_string(),
        "SECS" => "2".to_string(),
        "FILE" => dir.path().join("file.pem").display().to_string(),
        "RATE" => "100K".to_string(),
        "SIZE" => "1M".to_string(),
        "USER:PASSWORD" => "lab:secret".to_string(),
        "SCOPE" => "writes".to_string(),
        "SIZE|PERCENT" => "50%".to_string(),
        "DURATION" => "250ms".to_string(),
        "PERCENT" => "5".to_string(),
        "NAME" => "lab-host.example".to_string(),
        "GLOBS" => "*.img,fw/*.bin".to_string(),
        other => panic!("no sample value for <{other}>"),
    };
    let serv = env!("CARGO_BIN_EXE_serv");
    let tftpd = env!("CARGO_BIN_EXE_tftpd");
    for (foreground, daemons) in [
        (serv, vec![HTTPDAEMON]),
        (tftpd, vec![TFTPDAEMON, ATFTPDAEMON]),
    ] {
        let options = options_in_help(foreground);
        assert!(options.len() >= 5, "{foreground}: {options:?}");
        for (name, value) in options {
            if ["--help", "--version", "--show-settings", "--generate"].contains(&name.as_str()) {
                continue;
            }
            let mut args = vec![name.clone()];
            args.extend(value.as_deref().map(sample));
            let needs_upload = [
                "--overwrite",
                "--max-upload",
                "--min-free",
                "--cross-site-uploads",
            ];
            if needs_upload.contains(&name.as_str()) {
                args.push("--upload".to_string());
            }
            if name == "--auth-scope" {
                args.extend(["--auth".to_string(), "lab:secret".to_string()]);
            }
            // A certificate and its key go together.
            for (one, other) in [("--cert", "--key"), ("--key", "--cert")] {
                if name == one {
                    args.extend([other.to_string(), sample("FILE")]);
                }
            }
            args.push("--show-settings".to_string());
            let out = command(foreground).args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "{foreground} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for daemon in &daemons {
                let out = command(daemon).args(&args).output().unwrap();
                assert!(
                    out.status.success(),
                    "{daemon} does not take {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

#[test]
fn show_settings_needs_no_action() {
    for bin in [HTTPDAEMON, TFTPDAEMON, ATFTPDAEMON] {
        let d = Daemon::new(bin);
        let out = d.run(&["--show-settings"]);
        assert_eq!(out.code, 0, "{bin}: {}", out.stderr);
        assert!(
            out.stdout.contains("PORT         0\n"),
            "{bin}: {}",
            out.stdout
        );
        // Without it, the action is still required.
        assert_eq!(d.run(&[]).code, 2, "{bin}");
    }
}

#[cfg(unix)]
#[test]
fn httpdaemon_no_follow_symlinks_refuses_a_link_out_of_the_directory() {
    let d = Daemon::new(HTTPDAEMON);
    let outside = d.dir.path().join("secret.txt");
    std::fs::write(&outside, "outside\n").unwrap();
    std::os::unix::fs::symlink(&outside, d.var("DOCROOT").join("link.txt")).unwrap();

    let (_, port) = d.start_with(&["--no-follow-symlinks"]);
    assert_eq!(http_get("127.0.0.1", port, "/link.txt").0, 404);
    assert_eq!(http_get("127.0.0.1", port, "/version.txt").0, 200);

    // The default follows it: the option above is what refused it.
    let out = d.run(&["restart"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let started = out
        .stdout
        .lines()
        .find(|l| l.starts_with("started "))
        .unwrap();
    let (_, port) = pid_and_port(started);
    assert_eq!(
        http_get("127.0.0.1", port, "/link.txt"),
        (200, "outside\n".to_string())
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn tftpdaemon_upload_accepts_an_upload() {
    let d = Daemon::new(TFTPDAEMON);
    let image = d.dir.path().join("new.img");
    std::fs::write(&image, pattern(50_000)).unwrap();
    let upload = |port: u16| {
        command("curl")
            .args(["-s", "--max-time", "20", "-T"])
            .arg(&image)
            .arg(format!("tftp://127.0.0.1:{port}/new.img"))
            .status()
            .expect("curl runs")
            .success()
    };
    let (_, port) = d.start();
    assert!(!upload(port), "read-only unless told");
    assert_eq!(d.run(&["stop"]).code, 0);

    let (_, port) = d.start_with(&["--upload"]);
    assert!(upload(port));
    assert_eq!(
        std::fs::read(d.var("DOCROOT").join("new.img")).unwrap(),
        pattern(50_000)
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn httpdaemon_serves_https_and_names_its_certificate() {
    let d = Daemon::new(HTTPDAEMON);
    let data = d.dir.path().join("data");
    let d = d.set("XDG_DATA_HOME", &data.display().to_string());
    let out = d.run(&["start", "--tls"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (_, port) = pid_and_port(
        out.stdout
            .lines()
            .find(|l| l.starts_with("started "))
            .unwrap(),
    );
    let cert = data.join("labserv/tls/cert.pem");
    assert!(
        out.stdout
            .contains(&format!("HTTPS certificate: {} (SHA-256 ", cert.display())),
        "{}",
        out.stdout
    );
    let got = command("curl")
        .args(["-sf", "--noproxy", "*", "--cacert"])
        .arg(&cert)
        .arg(format!("https://localhost:{port}/version.txt"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "fw 1.2.3\n");
}
