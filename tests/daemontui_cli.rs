//! The built `daemontui` in a real terminal (a tmux pane, 80x24): choose httpdaemon, start
//! it, fetch a file over HTTP, see the request in the log pane, exit, and check that the
//! daemon is stopped and the terminal restored.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pane::{Pane, tmux_available};
use common::{command, http_get};

const DAEMONTUI: &str = env!("CARGO_BIN_EXE_daemontui");
const HTTPDAEMON: &str = env!("CARGO_BIN_EXE_httpdaemon");

fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

fn env_line(dir: &Path, root: &Path, port: u16) -> String {
    format!(
        "env -u LPNAME PID={pid} LOG={log} DOCROOT={root} PORT={port} IFACE=127.0.0.1 DEBUG=1 \
         TERM=xterm-256color",
        pid = dir.join("run/httpd.pid").display(),
        log = dir.join("log/httpd.log").display(),
        root = root.display(),
    )
}

#[test]
#[ignore = "needs tmux; bash scripts/test runs it"]
fn start_fetch_watch_the_log_and_exit_in_a_real_terminal() {
    tmux_available();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("version.txt"), "fw 1.2.3\n").unwrap();
    let port = free_port();
    let env = env_line(dir.path(), &root, port);
    let pane = Pane::start(&format!("{env} {DAEMONTUI} httpdaemon"));

    let screen = pane.wait_text("labserv daemontui · settings");
    assert!(screen.contains("(•) httpdaemon"), "{screen}");
    assert!(screen.contains(&port.to_string()), "{screen}");
    assert_eq!(
        pane.query("#{alternate_on}"),
        "1",
        "the UI uses the alternate screen"
    );

    // From Daemon, seven Tabs reach Next.
    pane.keys(&["Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Enter"]);
    pane.wait_text("○ stopped");
    pane.keys(&["Enter"]); // Start has the focus.
    let screen = pane.wait_text("● running");
    assert!(
        screen.contains(&format!("listening on 127.0.0.1:{port}")),
        "{screen}"
    );
    assert!(screen.contains("started httpd, pid"), "{screen}");

    let (status, body) = http_get("127.0.0.1", port, "/version.txt");
    assert_eq!((status, body.as_str()), (200, "fw 1.2.3\n"));
    pane.wait_text("\"GET /version.txt HTTP/1.1\" 200");

    pane.keys(&["q"]); // Exit: stops the daemon, then quits.
    pane.wait_exit();
    assert_eq!(pane.query("#{alternate_on}"), "0", "terminal restored");
    // tmux's own "Pane is dead" line can push the first of them off the top.
    let screen = pane.history();
    // DEBUG=1: the final settings are printed once the terminal is back.
    assert!(screen.contains("DAEMON=httpdaemon"), "{screen}");
    assert!(screen.contains(&format!("PORT={port}")), "{screen}");

    let status = command(HTTPDAEMON)
        .env("PID", dir.path().join("run/httpd.pid"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(3), "the daemon is stopped");
    assert!(!dir.path().join("run/httpd.pid").exists());
}

#[test]
#[ignore = "needs tmux; bash scripts/test runs it"]
fn ctrl_c_leaves_the_terminal_as_it_was() {
    tmux_available();
    let dir = tempfile::tempdir().unwrap();
    let env = env_line(dir.path(), dir.path(), free_port());
    let modes = dir.path().join("stty.txt");
    let pane = Pane::start(&format!("{env} {DAEMONTUI}; stty -a > {}", modes.display()));
    pane.wait_text("labserv daemontui · settings");
    pane.keys(&["C-c"]);
    pane.wait_exit();
    assert_eq!(pane.query("#{alternate_on}"), "0");
    let modes = std::fs::read_to_string(&modes).unwrap();
    // Out of raw mode: line editing and echo are back.
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "{modes}"
    );
}

#[test]
#[ignore = "needs tmux; bash scripts/test runs it"]
fn with_uploads_ticked_the_daemon_it_starts_takes_a_put() {
    tmux_available();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let log = dir.path().join("board.log");
    std::fs::write(&log, "boot ok\n").unwrap();
    let port = free_port();
    let env = env_line(dir.path(), &root, port);
    let pane = Pane::start(&format!("{env} {DAEMONTUI} httpdaemon"));
    pane.wait_text("labserv daemontui · settings");

    // Daemon, Debug, then Uploads: tick it, and five more Tabs reach Next.
    pane.keys(&["Tab", "Tab", "Space"]);
    pane.wait_text("[x] accept uploads");
    pane.keys(&["Tab", "Tab", "Tab", "Tab", "Tab", "Enter"]);
    pane.wait_text("uploads on");
    pane.keys(&["Enter"]); // Start
    pane.wait_text("● running");

    let url = format!("http://127.0.0.1:{port}/logs/board.log");
    let (_, code) = common::curl_head(&["-T", log.to_str().unwrap(), &url]);
    assert_eq!(code, 201, "{}", pane.screen());
    assert_eq!(
        std::fs::read_to_string(root.join("logs/board.log")).unwrap(),
        "boot ok\n"
    );

    pane.keys(&["q"]);
    pane.wait_exit();
}

#[test]
#[ignore = "needs tmux; bash scripts/test runs it"]
fn a_terminal_that_goes_away_ends_the_ui_and_its_daemon() {
    tmux_available();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = env_line(dir.path(), dir.path(), port);
    let ui_pid = dir.path().join("ui.pid");
    // `exec` keeps the shell's pid for daemontui, so the test can watch it.
    let pane = Pane::start(&format!(
        "echo $$ > {}; exec {env} {DAEMONTUI} httpdaemon",
        ui_pid.display()
    ));
    pane.wait_text("labserv daemontui · settings");
    pane.keys(&["Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Enter"]);
    pane.wait_text("○ stopped");
    pane.keys(&["Enter"]); // Start
    pane.wait_text("● running");
    let pid = std::fs::read_to_string(&ui_pid).unwrap().trim().to_string();
    let proc = Path::new("/proc").join(&pid);
    assert!(proc.exists());

    // The terminal closes under it, as when its window or ssh session goes.
    assert!(pane.tmux().arg("kill-server").status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc.exists()
        && !std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(
            Instant::now() < deadline,
            "daemontui {pid} still runs after its terminal went"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = command(HTTPDAEMON)
        .env("PID", dir.path().join("run/httpd.pid"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(3),
        "the daemon it drove is stopped"
    );
}
