//! The built `wsgi` binary: app choice, exit codes and signals.

mod common;

use std::time::Duration;

use common::{Running, command, fails_in_one_line, http_get};

const WSGI: &str = env!("CARGO_BIN_EXE_wsgi");

#[test]
fn an_unknown_app_exits_2_and_lists_the_built_in_ones() {
    let err = fails_in_one_line(command(WSGI).arg("nosuchapp"), 2);
    // A bare word may name a Python module; it is none, nor a built-in app.
    assert!(err.contains("cannot load nosuchapp"), "{err}");
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
    assert_eq!(http_get("127.0.0.1", port, "/").1, "Hello, world!\n");
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn a_script_path_is_run_as_cgi() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wsgi_cgi.py");
    let mut cmd = command(WSGI);
    cmd.args([script, "0"]);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(
        http_get("127.0.0.1", port, "/hello").1,
        "Hello from Python via CGI: GET /hello, 0 bytes\n"
    );
}

#[test]
fn validator_violations_and_script_stderr_are_named_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = common::script(
        dir.path(),
        "liar",
        "#!/bin/sh\necho 'liar starting' >&2\nprintf 'Content-Type: text/plain\\nContent-Length: 100\\n\\nshort\\n'\n",
    );
    let log = dir.path().join("wsgi.log");
    let mut cmd = command(WSGI);
    cmd.arg(&script).arg("0").env("LOG", &log);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(http_get("127.0.0.1", port, "/").0, 500);
    let text = common::wait_file(&log, |t| {
        t.contains("Content-Length says 100") && t.contains("liar starting")
    });
    assert!(
        text.contains("app error: body of 6 bytes, Content-Length says 100"),
        "{text}"
    );
}

#[test]
fn cgi_dir_takes_the_port_before_or_after_it_and_the_banner_names_it() {
    let dir = tempfile::tempdir().unwrap();
    common::script(
        dir.path(),
        "status",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nboard ok\\n'\n",
    );
    let canonical = dir.path().canonicalize().unwrap();
    let cgi_dir = dir.path().to_str().unwrap();
    for args in [["--cgi-dir", cgi_dir, "0"], ["0", "--cgi-dir", cgi_dir]] {
        let mut cmd = command(WSGI);
        cmd.args(args);
        let mut srv = Running::spawn(cmd);
        let banner = srv.wait_line(|l| l.starts_with("Serving "));
        assert_eq!(
            banner,
            format!("Serving the CGI scripts in {}", canonical.display()),
            "{args:?}"
        );
        let port = srv.wait_port();
        assert_eq!(
            http_get("127.0.0.1", port, "/status").1,
            "board ok\n",
            "{args:?}"
        );
    }
    // An app beside --cgi-dir is a usage mistake.
    let out = command(WSGI)
        .args(["hello", "--cgi-dir", cgi_dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_during_a_silent_cgi_script_stops_within_the_drain_time() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    common::script(
        dir.path(),
        "think",
        &format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pidfile.display()
        ),
    );
    let mut cmd = command(WSGI);
    cmd.args(["--cgi-dir", dir.path().to_str().unwrap(), "0"]);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut conn, b"GET /think HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let pid = common::wait_file(&pidfile, |t| t.ends_with('\n'))
        .trim()
        .to_string();
    let stopping = std::time::Instant::now();
    srv.signal(libc::SIGTERM);
    // Responses in flight get 5 s (the README's promise), then what is left is killed.
    assert_eq!(srv.wait_exit(Duration::from_secs(8)), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(7),
        "{:?}",
        stopping.elapsed()
    );
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.split_whitespace().nth(2) == Some("Z"),
        "the script outlived the server: {state}"
    );
}

/// curl's status code for `url` with `args`.
fn status(url: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push(url);
    common::curl_head(&all).1.to_string()
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn apps_get_passwords_and_a_loopback_server_refuses_foreign_host_names() {
    let mut cmd = command(WSGI);
    cmd.args(["hello", "0", "--host", "127.0.0.1", "--auth", "lab:secret"]);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(status(&url, &[]), "401");
    assert_eq!(status(&url, &["-u", "lab:wrong"]), "401");
    assert_eq!(status(&url, &["-u", "lab:secret"]), "200");
    // A page on the web that pointed its own name at 127.0.0.1 (DNS rebinding).
    let evil = ["-u", "lab:secret", "-H", "Host: evil.example"];
    assert_eq!(status(&url, &evil), "403");
    assert_eq!(
        status(&url, &["-u", "lab:secret", "-H", "Host: localhost"]),
        "200"
    );
    drop(srv);
    let mut cmd = command(WSGI);
    cmd.args([
        "hello",
        "0",
        "--host",
        "127.0.0.1",
        "--allow-host",
        "evil.example",
    ]);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(status(&url, &["-H", "Host: evil.example:80"]), "200");
    assert_eq!(status(&url, &["-H", "Host: other.example"]), "403");
}
