//! `wsgi module:app`: real Python WSGI apps (a bare app, Flask, Bottle, Django) in worker
//! processes, run through the built binary and driven with curl and raw sockets.
//!
//! Flask, Bottle and Django are installed with pip into a virtualenv under the target
//! directory the first time (the Python package index must be reachable).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Running, command, fails_in_one_line, http_get, python_venv as venv};

const WSGI: &str = env!("CARGO_BIN_EXE_wsgi");

/// The directory of the test apps (`apps.py`).
fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Starts `wsgi APP 0` with `args`, in `dir`; waits for its banner.
fn start(app: &str, dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Running, u16) {
    let mut cmd = command(WSGI);
    cmd.arg(app)
        .arg("0")
        .args(["--host", "127.0.0.1"])
        .args(args)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    (srv, port)
}

fn curl(args: &[&str]) -> String {
    let out = command("curl")
        .args(["-s", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pids of `pid`'s child processes.
fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits (at most `limit`) until none of `pids` is running.
fn gone_within(pids: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !pids.iter().any(|&p| alive(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn a_bare_app_gets_a_pep_3333_environ() {
    let (_srv, port) = start(
        "apps:environ",
        &apps_dir(),
        &["--root-path", "/api", "-w", "1"],
        &[],
    );
    let text = curl(&[
        "-H",
        "X-Board: rev\u{e9}",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        "hello",
        &format!("http://127.0.0.1:{port}/api/caf%C3%A9?x=1"),
    ]);
    let seen: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(seen["REQUEST_METHOD"], "POST");
    assert_eq!(seen["SCRIPT_NAME"], "/api");
    // Bytes of the decoded path, as latin-1 (PEP 3333's "native strings").
    assert_eq!(seen["PATH_INFO"], "/caf\u{c3}\u{a9}");
    assert_eq!(seen["QUERY_STRING"], "x=1");
    assert_eq!(seen["CONTENT_TYPE"], "text/plain");
    assert_eq!(seen["CONTENT_LENGTH"], "5");
    assert_eq!(seen["HTTP_X_BOARD"], "rev\u{c3}\u{a9}");
    assert_eq!(seen["wsgi.url_scheme"], "http");
    assert_eq!(seen["version"], serde_json::json!([1, 0]));
    assert_eq!(seen["multiprocess"], true);
    assert_eq!(seen["multithread"], false);
    assert_eq!(seen["run_once"], false);
    assert_eq!(seen["native"], true);
    assert_eq!(seen["body"], "hello");
    // Outside the root path the app is not asked.
    assert_eq!(http_get("127.0.0.1", port, "/other/env").0, 404);
    assert_eq!(http_get("127.0.0.1", port, "/apix").0, 404);
    // httpoxy: a client's Proxy header never becomes the app's HTTP_PROXY.
    let text = curl(&[
        "-H",
        "Proxy: http://evil.example:3128",
        &format!("http://127.0.0.1:{port}/api/env"),
    ]);
    let seen: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(seen["HTTP_PROXY"], serde_json::Value::Null);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn wsgi_input_reads_lines_and_large_uploads_whole() {
    let (_srv, port) = start("apps:lines", &apps_dir(), &["-w", "1"], &[]);
    let text = curl(&[
        "--data-binary",
        "one\ntwo\nthree\nfour",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(text, r#"["one\n", ["two\n"], ["three\n", "four"]]"#);

    let dir = tempfile::tempdir().unwrap();
    let stored = dir.path().join("stored.bin");
    let (_srv, port) = start(
        "apps:store",
        &apps_dir(),
        &["-w", "1"],
        &[("STORE", &stored)],
    );
    let data = common::pattern(50 * 1024 * 1024);
    let file = common::put(dir.path(), "upload.bin", &data);
    let url = format!("http://127.0.0.1:{port}/");
    let file = file.to_str().unwrap();
    for how in [
        &["-T", file][..],
        &["-T", file, "-H", "Transfer-Encoding: chunked"],
    ] {
        let mut args = how.to_vec();
        args.push(&url);
        assert_eq!(curl(&args), data.len().to_string(), "{how:?}");
        assert!(std::fs::read(&stored).unwrap() == data, "{how:?}");
        std::fs::remove_file(&stored).unwrap();
    }
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn a_body_is_streamed_as_produced_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let closed = dir.path().join("closed");
    let (_srv, port) = start(
        "apps:stream",
        &apps_dir(),
        &["-w", "1"],
        &[("FLAG", &flag), ("CLOSED", &closed)],
    );
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("first\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the first chunk");
        got.extend_from_slice(&buf[..n]);
    }
    // The app is still waiting: the first chunk came before the body ended.
    assert!(!String::from_utf8_lossy(&got).contains("second"));
    std::fs::write(&flag, "").unwrap();
    conn.read_to_end(&mut got).unwrap();
    assert!(String::from_utf8_lossy(&got).contains("second\n"));
    assert!(
        common::wait_file(&closed, |_| true).is_empty(),
        "close() was called"
    );

    let (_srv, port) = start("apps:writer", &apps_dir(), &["-w", "1"], &[]);
    assert_eq!(http_get("127.0.0.1", port, "/").1, "written, then returned");
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn file_wrapper_sends_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::pattern(3 * 1024 * 1024 + 17);
    let file = common::put(dir.path(), "fw.img", &data);
    let (_srv, port) = start("apps:files", &apps_dir(), &["-w", "1"], &[("SEND", &file)]);
    let out = command("curl")
        .args(["-s", "--noproxy", "*"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn http2_clients_reach_a_python_app() {
    let (_srv, port) = start("apps:environ", &apps_dir(), &["-w", "1"], &[]);
    let text = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        "over h2",
        &format!("http://127.0.0.1:{port}/board"),
    ]);
    let seen: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(seen["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(seen["PATH_INFO"], "/board");
    assert_eq!(seen["body"], "over h2");

    let dir = tempfile::tempdir().unwrap();
    let data = common::pattern(2 * 1024 * 1024 + 5);
    let file = common::put(dir.path(), "fw.img", &data);
    let (_srv, port) = start("apps:files", &apps_dir(), &["-w", "1"], &[("SEND", &file)]);
    // Prior knowledge: curl speaks HTTP/2 from the first byte, or fails.
    let out = command("curl")
        .args(["-sf", "--noproxy", "*", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn app_faults_give_500_502_504_and_the_next_request_works() {
    let (mut srv, port) = start(
        "apps:faults",
        &apps_dir(),
        &["-w", "1", "--timeout", "1"],
        &[],
    );
    let get = |path: &str| http_get("127.0.0.1", port, path);
    let (code, first) = get("/");
    assert_eq!(code, 200);
    assert_eq!(get("/raise").0, 500);
    // Same worker: an exception does not cost the process.
    assert_eq!(get("/"), (200, first.clone()));
    assert_eq!(get("/exit").0, 502);
    let (code, second) = get("/");
    assert_eq!(code, 200);
    assert_ne!(second, first, "a new worker took over");
    assert_eq!(get("/crash").0, 502);
    assert_eq!(get("/").0, 200);
    assert_eq!(get("/hang").0, 504);
    assert_eq!(get("/").0, 200);
    assert_eq!(get("/bad-header").0, 500);
    assert_eq!(get("/exc-info"), (503, "unavailable".to_string()));
    // An error after the head: the response is cut, the worker lives on.
    let (_, partial) = get("/late-error");
    assert!(partial.is_empty() || partial == "part", "{partial:?}");
    assert_eq!(get("/").0, 200);
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    let log = srv.stderr();
    assert!(log.contains("RuntimeError: the mock broke"), "{log}");
    assert!(log.contains("Traceback"), "{log}");
    assert!(log.contains("hop-by-hop header \"Connection\""), "{log}");
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn requests_wait_for_a_busy_worker_then_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let (_srv, port) = start(
        "apps:faults",
        &apps_dir(),
        &["-w", "1", "--queue-timeout", "1"],
        &[("FLAG", &flag)],
    );
    let waiting = std::thread::spawn(move || http_get("127.0.0.1", port, "/wait"));
    // The one worker is held by /wait until the flag appears; this one queues, then gives up.
    let started = Instant::now();
    let (code, _) = loop {
        let answer = http_get("127.0.0.1", port, "/");
        if answer.0 == 503 {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never busy");
    };
    assert_eq!(code, 503);
    std::fs::write(&flag, "").unwrap();
    assert_eq!(waiting.join().unwrap().0, 200);
    assert_eq!(http_get("127.0.0.1", port, "/").0, 200);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn a_busy_worker_leaves_new_connections_to_an_idle_one() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let started = dir.path().join("started");
    let (_srv, port) = start(
        "apps:faults",
        &apps_dir(),
        &["-w", "2"],
        &[("FLAG", &flag), ("STARTED", &started)],
    );
    let waiting = std::thread::spawn(move || http_get("127.0.0.1", port, "/wait"));
    common::wait_file(&started, |text| text == "started");
    // /wait holds one worker until the flag appears. Every new connection meanwhile is
    // the other worker's: none waits behind /wait (a wait would outlast curl's 5 s).
    let url = format!("http://127.0.0.1:{port}/");
    for i in 0..20 {
        let code = curl(&[
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]);
        assert_eq!(code, "200", "request {i}");
    }
    assert!(!waiting.is_finished(), "/wait was answered before the flag");
    std::fs::write(&flag, "").unwrap();
    assert_eq!(waiting.join().unwrap().0, 200);
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn an_app_that_fails_to_import_exits_2_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    common::put(dir.path(), "broken.py", b"import no_such_module_here\n");
    let out = command(WSGI)
        .args(["broken:app", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let err: Vec<&str> = err.lines().collect();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert!(err[0].contains("broken:app"), "{err:?}");
    assert!(err[0].contains("ModuleNotFoundError"), "{err:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Serving"));

    let out = command(WSGI)
        .args(["apps:nothing", "0", "--chdir"])
        .arg(apps_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no nothing"));
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn an_asgi_app_exits_2_in_one_line_naming_asgi() {
    for app in ["apps:asgi", "apps:asgi_object", "apps:asgi_plain"] {
        let out = command(WSGI)
            .args([app, "0", "--chdir"])
            .arg(apps_dir())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{app}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{app}: {err}");
        assert!(
            err.contains("ASGI") && err.contains("uvicorn"),
            "{app}: {err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Serving"));
    }
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn head_with_the_gets_content_length_is_answered_200() {
    let (_srv, port) = start("apps:head", &apps_dir(), &[], &[]);
    let head = curl(&["-I", &format!("http://127.0.0.1:{port}/status")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 40"),
        "{head}"
    );
    assert_eq!(
        curl(&[&format!("http://127.0.0.1:{port}/status")]),
        "forty bytes of firmware status text here"
    );
}

#[test]
fn no_python_exits_2_in_one_line() {
    let err = fails_in_one_line(
        command(WSGI).args(["apps:environ", "0", "--python", "/nonexistent/python3"]),
        2,
    );
    assert!(
        err.contains("no Python at --python /nonexistent/python3"),
        "{err}"
    );

    let out = command(WSGI)
        .args(["apps:environ", "0"])
        .env("PATH", "/nonexistent")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no python3 on PATH"));
}

#[test]
#[ignore = "needs Flask, Bottle and Django from PyPI; bash scripts/test runs it"]
fn an_activated_virtualenv_is_used_and_the_default_name_is_app() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    common::put(
        dir.path(),
        "mock.py",
        b"import sys\ndef app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [sys.prefix.encode()]\n",
    );
    let (_srv, port) = start(
        "mock.py",
        dir.path(),
        &["-w", "1"],
        &[("VIRTUAL_ENV", venv)],
    );
    let prefix = http_get("127.0.0.1", port, "/").1;
    assert_eq!(
        Path::new(&prefix).canonicalize().unwrap(),
        venv.canonicalize().unwrap()
    );
}

#[test]
#[ignore = "needs Flask, Bottle and Django from PyPI; bash scripts/test runs it"]
fn flask_and_bottle_apps_are_served() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    common::put(
        dir.path(),
        "flaskmock.py",
        b"from flask import Flask, jsonify, request\napp = Flask(__name__)\n\
@app.route('/api/status')\ndef status():\n    return jsonify(board='rev-b', ok=True)\n\
@app.post('/api/echo')\ndef echo():\n    return jsonify(got=request.get_json())\n",
    );
    common::put(
        dir.path(),
        "bottlemock.py",
        b"import bottle\n@bottle.route('/hello/<name>')\ndef hello(name):\n    return 'Hello ' + name\n\
application = bottle.default_app()\n",
    );
    let python = venv.join("bin/python");
    let python = python.to_str().unwrap();
    let (_flask, port) = start("flaskmock:app", dir.path(), &["--python", python], &[]);
    let text = curl(&[&format!("http://127.0.0.1:{port}/api/status")]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        serde_json::json!({"board": "rev-b", "ok": true})
    );
    let text = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"v": 2}"#,
        &format!("http://127.0.0.1:{port}/api/echo"),
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        serde_json::json!({"got": {"v": 2}})
    );
    assert_eq!(http_get("127.0.0.1", port, "/missing").0, 404);

    let (_bottle, port) = start("bottlemock", dir.path(), &["--python", python], &[]);
    assert_eq!(http_get("127.0.0.1", port, "/hello/board").1, "Hello board");
}

#[test]
#[ignore = "needs Flask, Bottle and Django from PyPI; bash scripts/test runs it"]
fn flask_answers_head_and_reads_a_chunked_body_whole() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    common::put(
        dir.path(),
        "flasksize.py",
        b"from flask import Flask, request\napp = Flask(__name__)\n\
@app.route('/api/status')\ndef status():\n    return {'board': 'rev-b'}\n\
@app.post('/api/upload')\ndef upload():\n    return str(len(request.get_data()))\n",
    );
    let python = venv.join("bin/python");
    let (_srv, port) = start(
        "flasksize:app",
        dir.path(),
        &["--python", python.to_str().unwrap()],
        &[],
    );
    let head = curl(&["-I", &format!("http://127.0.0.1:{port}/api/status")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let image = dir.path().join("fw.img");
    std::fs::write(&image, vec![0x5au8; 10 << 20]).unwrap();
    let got = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", image.display()),
        &format!("http://127.0.0.1:{port}/api/upload"),
    ]);
    assert_eq!(got, (10 << 20).to_string());
}

#[test]
#[ignore = "needs Flask, Bottle and Django from PyPI; bash scripts/test runs it"]
fn a_django_project_is_served() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(venv.join("bin/django-admin"))
        .args(["startproject", "mysite"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let project = dir.path().join("mysite");
    let python = venv.join("bin/python");
    let (_srv, port) = start(
        "mysite.wsgi:application",
        &project,
        &["--python", python.to_str().unwrap()],
        &[],
    );
    // A fresh project answers /admin/ with a redirect to its login page.
    let head = curl(&["-i", &format!("http://127.0.0.1:{port}/admin/")]);
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    assert!(head.contains("/admin/login/"), "{head}");
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn workers_end_with_the_server_even_when_it_is_killed() {
    let (mut srv, port) = start("apps:faults", &apps_dir(), &["-w", "2"], &[]);
    assert_eq!(http_get("127.0.0.1", port, "/").0, 200);
    let workers = children(srv.child.id());
    assert_eq!(workers.len(), 2, "{workers:?}");
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(gone_within(&workers, Duration::from_secs(1)));

    let (mut srv, port) = start("apps:faults", &apps_dir(), &["-w", "2"], &[]);
    assert_eq!(http_get("127.0.0.1", port, "/").0, 200);
    let workers = children(srv.child.id());
    srv.signal(libc::SIGKILL);
    let _ = srv.child.wait();
    assert!(
        gone_within(&workers, Duration::from_secs(1)),
        "orphans left"
    );
}

/// The workers as macOS runs them (see `wsgi::python::portable`), run here: a stream
/// control socket, the extension from a private file, the shared pages in unnamed files,
/// and a pipe in place of PR_SET_PDEATHSIG.
#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn portable_workers_serve_fail_over_and_end_with_a_killed_server() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("LABSERV_PORTABLE_WORKERS", Path::new("1")),
        ("XDG_CACHE_HOME", cache.path()),
    ];
    let (mut srv, port) = start("apps:faults", &apps_dir(), &["-w", "2"], &env);
    let (code, first) = http_get("127.0.0.1", port, "/");
    assert_eq!(code, 200);
    let ext_dir = cache.path().join("labserv/ext");
    let ext: Vec<_> = std::fs::read_dir(&ext_dir).unwrap().flatten().collect();
    assert_eq!(ext.len(), 1, "one private copy of the extension");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ext_dir), 0o700);
    assert_eq!(mode(&ext[0].path()), 0o600);
    let workers = children(srv.child.id());
    assert_eq!(workers.len(), 2, "{workers:?}");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", workers[0])).unwrap();
    assert!(
        maps.contains(ext[0].path().to_str().unwrap()),
        "the worker loaded the private copy"
    );
    // A crash is a 502, and a new worker takes over; many requests, one connection each.
    assert_eq!(http_get("127.0.0.1", port, "/exit").0, 502);
    for _ in 0..20 {
        assert_eq!(http_get("127.0.0.1", port, "/").0, 200);
    }
    assert_ne!(http_get("127.0.0.1", port, "/").1, "", "{first}");
    let workers = children(srv.child.id());
    srv.signal(libc::SIGKILL);
    let _ = srv.child.wait();
    assert!(
        gone_within(&workers, Duration::from_secs(2)),
        "orphans left"
    );
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn one_worker_by_default_so_an_app_keeps_one_state() {
    let (srv, port) = start("apps:faults", &apps_dir(), &[], &[]);
    let answers: Vec<_> = (0..6).map(|_| http_get("127.0.0.1", port, "/")).collect();
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(children(srv.child.id()).len(), 1);
    drop(srv);
    let (srv, _port) = start("apps:faults", &apps_dir(), &["-w", "auto"], &[]);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(children(srv.child.id()).len(), cores);
}

/// A bare app that answers `version`.
fn versioned_app(version: &str) -> String {
    format!(
        "def app(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [b'{version}']\n"
    )
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn reload_swaps_in_new_code_without_failing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("mock.py");
    std::fs::write(&source, versioned_app("v1")).unwrap();
    let (srv, port) = start("mock:app", dir.path(), &["--reload", "-w", "2"], &[]);
    let mut srv = srv.with_log_lines();
    assert_eq!(http_get("127.0.0.1", port, "/"), (200, "v1".into()));

    // Requests keep coming while the code changes under the server.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                seen.push(http_get("127.0.0.1", port, "/"));
            }
            seen
        })
    };
    // The same size as before, written at once: only a reload can tell them apart.
    std::fs::write(&source, versioned_app("v2")).unwrap();
    srv.wait_line(|l| l.contains("reloaded: 2 workers"));
    assert_eq!(http_get("127.0.0.1", port, "/"), (200, "v2".into()));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let seen = load.join().unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|(status, body)| *status == 200 && (body == "v1" || body == "v2")),
        "{seen:?}"
    );
    // The old workers are gone: two processes serve, not four.
    let deadline = Instant::now() + Duration::from_secs(5);
    while children(srv.child.id()).len() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(children(srv.child.id()).len(), 2);

    // Code that does not import: logged, and the last good code keeps serving.
    std::fs::write(&source, "def app(:\n").unwrap();
    let line = srv.wait_line(|l| l.contains("reload failed"));
    assert!(line.contains("SyntaxError"), "{line}");
    assert_eq!(http_get("127.0.0.1", port, "/"), (200, "v2".into()));
    // Fixed: served again. A file that is not Python changes nothing.
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    std::fs::write(&source, versioned_app("v3")).unwrap();
    let line = srv.wait_line(|l| l.contains("changed;") || l.contains("reloaded"));
    assert!(line.contains("mock.py changed"), "{line}");
    srv.wait_line(|l| l.contains("reloaded: 2 workers"));
    assert_eq!(http_get("127.0.0.1", port, "/"), (200, "v3".into()));
}

/// Sends `GET path` on a kept-alive connection and reads the answer: its status, its
/// body, and whether the server said it closes the connection.
fn ask(conn: &mut TcpStream, path: &str) -> std::io::Result<(u16, String, bool)> {
    // One write: a request in pieces would wait on Nagle's algorithm.
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match conn.read(&mut buf)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while got.len() < head_end + length {
        match conn.read(&mut buf)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&got[head_end..head_end + length]).into_owned();
    let closes = head.lines().any(|l| l.trim() == "connection: close");
    Ok((status, body, closes))
}

/// Whether the server has closed a kept-alive connection (as an HTTP client checks
/// before it reuses one).
fn closed_by_server(conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let peeked = conn.peek(&mut [0u8; 1]);
    conn.set_nonblocking(false).unwrap();
    // Nothing to read is a live idle connection; an end, an error or stray bytes is not.
    !matches!(peeked, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn a_dead_workers_other_clients_get_502_or_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let (flag, started) = (dir.path().join("flag"), dir.path().join("started"));
    let (_srv, port) = start(
        "apps:faults",
        &apps_dir(),
        &["-w", "1"],
        &[("FLAG", &flag), ("STARTED", &started)],
    );
    let connect = || TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Two kept-alive connections of the one worker.
    let (mut idle, mut next) = (connect(), connect());
    assert_eq!(ask(&mut idle, "/").unwrap().0, 200);
    assert_eq!(ask(&mut next, "/").unwrap().0, 200);
    // A request holds the app, and another waits behind it on `next`.
    let dying = std::thread::spawn(move || http_get("127.0.0.1", port, "/die-when-flagged"));
    common::wait_file(&started, |text| text == "started");
    write!(next, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::fs::write(&flag, "").unwrap();
    assert_eq!(dying.join().unwrap().0, 502);
    // The waiting request is answered, not reset.
    let mut answer = String::new();
    next.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    next.read_to_string(&mut answer)
        .expect("an answer, not a reset");
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer:?}");
    // The idle connection is closed cleanly (an end of stream, not a reset).
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(idle.read(&mut [0u8; 64]).expect("a clean close"), 0);
    // A new worker serves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get("127.0.0.1", port, "/").0 != 200 {
        assert!(Instant::now() < deadline, "no new worker");
    }
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn reloads_never_fail_a_request_on_a_kept_alive_connection() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("mock.py");
    std::fs::write(&source, versioned_app("v0")).unwrap();
    let (srv, port) = start("mock:app", dir.path(), &["--reload", "-w", "2"], &[]);
    let mut srv = srv.with_log_lines();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One client, as `requests.Session` is: requests back to back on one connection,
    // a new connection only when the server has closed the last one.
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut asked, mut failed) = (0, Vec::new());
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                if closed_by_server(&conn) {
                    conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                }
                asked += 1;
                match ask(&mut conn, "/") {
                    // A client opens a new connection after `Connection: close`.
                    Ok((200, _, true)) => {
                        conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    }
                    Ok((200, _, false)) => {}
                    other => {
                        failed.push(format!("{other:?}"));
                        conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    }
                }
            }
            (asked, failed)
        })
    };
    for version in ["v1", "v2", "v3", "v4"] {
        std::fs::write(&source, versioned_app(version)).unwrap();
        srv.wait_line(|l| l.contains("reloaded: 2 workers"));
        // The old workers have stopped (their connections let go) before the next.
        let deadline = Instant::now() + Duration::from_secs(10);
        while children(srv.child.id()).len() != 2 {
            assert!(Instant::now() < deadline, "old workers still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (asked, failed) = load.join().unwrap();
    assert!(asked > 100, "only {asked} requests");
    assert!(
        failed.is_empty(),
        "{} of {asked} failed: {failed:?}",
        failed.len()
    );
}

#[test]
#[ignore = "needs Python 3 and curl; bash scripts/test runs it"]
fn workers_serve_with_the_supervisors_certificate_passwords_and_log_file() {
    // What the supervisor resolved (a certificate it made, a password, the LOG file)
    // reaches every worker: each serves HTTPS with that certificate, asks for that
    // password, and writes its access lines to that file.
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("wsgi.log");
    let mut cmd = command(WSGI);
    cmd.args(["apps:environ", "0", "--host", "127.0.0.1", "--tls"])
        .args(["--auth", "lab:secret", "-w", "2"])
        .current_dir(apps_dir())
        .env_remove("VIRTUAL_ENV")
        .env("XDG_DATA_HOME", data.path())
        .env("LOG", &log);
    let mut srv = Running::spawn(cmd);
    let url = srv.wait_line(|l| l.trim_start().starts_with("https://"));
    let port = srv.port_in(&url);
    let cert = srv.wait_line(|l| l.starts_with("Certificate: "));
    let cert = cert.trim_start_matches("Certificate: ").to_string();
    let url = format!("https://127.0.0.1:{port}/");
    let status = |user: &[&str]| {
        let mut args = vec!["--cacert", &cert, "-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(user);
        args.push(&url);
        curl(&args)
    };
    // Both workers, several times each (each takes its own connections).
    for _ in 0..4 {
        assert_eq!(status(&[]), "401");
        assert_eq!(status(&["-u", "lab:wrong"]), "401");
    }
    let seen = curl(&["--cacert", &cert, "-u", "lab:secret", &url]);
    let seen: serde_json::Value = serde_json::from_str(&seen).expect(&seen);
    assert_eq!(seen["wsgi.url_scheme"], "https");
    let text = common::wait_file(&log, |t| t.contains("wrong password for user \"lab\""));
    assert!(text.contains("GET /"), "{text}");
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn eight_workers_start_together_and_serve() {
    // Each reads the configuration its supervisor handed down through a descriptor whose
    // offset all of them share (the unit test in wsgi/python/inside races readers); a
    // worker that could not read it would keep the server from starting.
    for _ in 0..3 {
        let (_srv, port) = start("apps:environ", &apps_dir(), &["-w", "8"], &[]);
        assert_eq!(http_get("127.0.0.1", port, "/").0, 200);
    }
}
