//! The built `wsgi` binary: app choice, exit codes and signals.

mod common;

use std::time::Duration;

use common::{Running, command};

const WSGI: &str = env!("CARGO_BIN_EXE_wsgi");

#[test]
fn an_unknown_app_exits_2_and_lists_the_built_in_ones() {
    let out = command(WSGI).arg("nosuchapp").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid APP=\"nosuchapp\""), "{err}");
    for name in labserv::wsgi::APP_NAMES {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn serves_the_chosen_app_and_stops_on_sigterm() {
    let mut cmd = command(WSGI);
    cmd.args(["hello", "0"]);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let out = command("curl")
        .args(["-s", "--noproxy", "*"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, world!\n");
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(5)), Some(0));
}
