//! `serv --auth` and `--cors`, through the built binary with curl.

mod common;

use common::{command, curl_head as head, fails_in_one_line, serv_binary as serv};

const SERV: &str = env!("CARGO_BIN_EXE_serv");

/// `openssl passwd -6 -salt labsalt secret`
const HASH: &str = "$6$labsalt$leYP1O/SwaG7fbW7P8PsNALxP8zLSliGjNZI80V.j4yytxGrI2SXlPBJnogfPEG3BvTABDgzPtKzGJoNlMA.S0";

fn www() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.img"), b"image").unwrap();
    dir
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn every_request_needs_a_good_password() {
    let dir = www();
    let (srv, port) = serv(
        dir.path(),
        &["--auth", "lab:secret", "--auth", "ci:other"],
        &[],
    );
    let url = format!("http://127.0.0.1:{port}/fw.img");
    let (text, code) = head(&[&url]);
    assert_eq!(code, 401);
    assert!(
        text.contains("www-authenticate: basic realm=\"labserv\""),
        "{text}"
    );
    assert_eq!(head(&["-u", "lab:wrong", &url]).1, 401);
    assert_eq!(head(&["-u", "nobody:secret", &url]).1, 401);
    assert_eq!(head(&["-u", "lab:secret", &url]).1, 200);
    assert_eq!(head(&["-u", "ci:other", &url]).1, 200);
    // The wrong try is logged with the client's address.
    let mut srv = srv.with_log_lines();
    srv.wait_line(|l| {
        l.contains("127.0.0.1:") && l.contains("GET /fw.img: wrong password for user \"lab\"")
    });
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn a_hashed_password_from_the_environment_guards_uploads_only() {
    let dir = www();
    let auth = format!("lab:{HASH}");
    let (srv, port) = serv(
        dir.path(),
        &["--upload", "--auth-scope", "writes"],
        &[("LABSERV_AUTH", &auth)],
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", srv.child.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("labsalt"),
        "nothing of it in ps"
    );
    let src = tempfile::tempdir().unwrap();
    let upload = src.path().join("log.txt");
    std::fs::write(&upload, "boot log").unwrap();
    let upload = upload.to_str().unwrap();
    assert_eq!(head(&[&format!("http://127.0.0.1:{port}/fw.img")]).1, 200);
    let put = format!("http://127.0.0.1:{port}/log.txt");
    assert_eq!(head(&["-T", upload, &put]).1, 401);
    assert_eq!(head(&["-u", "lab:Secret", "-T", upload, &put]).1, 401);
    assert_eq!(head(&["-u", "lab:secret", "-T", upload, &put]).1, 201);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log.txt")).unwrap(),
        "boot log"
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn cors_answers_preflights_and_marks_answers() {
    let dir = www();
    let url = |port: u16| format!("http://127.0.0.1:{port}/fw.img");
    let (_srv, port) = serv(dir.path(), &["--cors"], &[]);
    let (text, code) = head(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://flasher.example",
        "-H",
        "Access-Control-Request-Method: GET",
        "-H",
        "Access-Control-Request-Headers: range",
        &url(port),
    ]);
    assert_eq!(code, 204, "{text}");
    assert!(text.contains("access-control-allow-origin: *"), "{text}");
    assert!(
        text.contains("access-control-allow-methods: get, head, put, post, delete, mkcol, options"),
        "{text}"
    );
    assert!(
        text.contains("access-control-allow-headers: range"),
        "{text}"
    );
    let (text, code) = head(&["-H", "Origin: https://flasher.example", &url(port)]);
    assert_eq!(code, 200);
    assert!(text.contains("access-control-allow-origin: *"), "{text}");
    assert!(
        text.contains("access-control-expose-headers: content-length, content-range"),
        "{text}"
    );
    // Without --cors, nothing of it.
    let (_srv, port) = serv(dir.path(), &[], &[]);
    let (text, _) = head(&["-H", "Origin: https://flasher.example", &url(port)]);
    assert!(!text.contains("access-control"), "{text}");
}

#[test]
fn a_bad_auth_value_is_one_line_without_the_password() {
    for bad in ["nopassword", "lab:", "lab:$6$broken"] {
        let err = fails_in_one_line(command(SERV).args(["--auth", bad, "--show-settings"]), 2);
        assert!(err.starts_with("serv: invalid --auth="), "{err}");
        assert!(!err.contains("broken"), "the password is not echoed: {err}");
    }
}
