//! `--tls`: HTTPS for `serv` and `wsgi` with a certificate made once and kept, or given;
//! checked with curl, openssl s_client and Python's own TLS client.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Running, command, fails_in_one_line};

const SERV: &str = env!("CARGO_BIN_EXE_serv");
const WSGI: &str = env!("CARGO_BIN_EXE_wsgi");

/// Starts `bin` on 127.0.0.1 port 0 with `args`, keeping certificates under `data`.
fn start(bin: &str, data: &Path, args: &[&str]) -> (Running, u16, Vec<String>) {
    let mut cmd = command(bin);
    cmd.args(["--host", "127.0.0.1", "-p", "0"])
        .args(args)
        .env("XDG_DATA_HOME", data);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_line(|l| l.trim_start().starts_with("https://"));
    let port = srv.port_in(&port);
    srv.wait_line(|l| l.starts_with("Press Ctrl-C"));
    let banner = srv.seen.clone();
    (srv, port, banner)
}

fn curl(args: &[&str]) -> std::process::Output {
    command("curl")
        .args(["-s", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// What `openssl x509 -fingerprint -sha256` says of `cert`.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit('=').next().unwrap().to_string()
}

/// What `python -c script` prints (its errors shown if it prints nothing).
fn python_says(python: &Path, script: &str) -> String {
    let out = Command::new(python).args(["-c", script]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!said.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    said
}

/// `serv --tls` on a served folder, its certificate kept in a data folder of its own:
/// both folders, the server and its port.
fn serv_with_tls() -> (tempfile::TempDir, tempfile::TempDir, Running, u16) {
    let www = served_dir();
    let data = tempfile::tempdir().unwrap();
    let (srv, port, _) = start(
        SERV,
        data.path(),
        &["--tls", "-d", www.path().to_str().unwrap()],
    );
    (www, data, srv, port)
}

fn served_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.img"), common::pattern(300_000)).unwrap();
    dir
}

#[test]
#[ignore = "needs curl, openssl and Python 3; bash scripts/test runs it"]
fn a_certificate_is_made_once_kept_and_trusted_by_curl_openssl_and_pythons_ssl() {
    let www = served_dir();
    let data = tempfile::tempdir().unwrap();
    let www_path = www.path().to_str().unwrap();
    let (srv, port, banner) = start(SERV, data.path(), &["--tls", "-d", www_path]);
    let cert: PathBuf = data.path().join("labserv/tls/cert.pem");
    let text = banner.join("\n");
    assert!(
        text.contains(&format!("Certificate: {}", cert.display())),
        "{text}"
    );
    let fingerprint = openssl_fingerprint(&cert);
    assert!(text.contains(&format!("SHA-256 {fingerprint}")), "{text}");
    assert!(text.contains("made a certificate"), "{text}");
    let key_mode = std::fs::metadata(data.path().join("labserv/tls/key.pem"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(key_mode, 0o600);

    // curl, by address and by name, over HTTP/2 (ALPN) and HTTP/1.1.
    let cacert = cert.to_str().unwrap();
    let want = common::pattern(300_000);
    for (host, version, expect) in [
        ("127.0.0.1", "--http2", "2"),
        ("localhost", "--http1.1", "1.1"),
    ] {
        let url = format!("https://{host}:{port}/fw.img");
        let out = curl(&["--cacert", cacert, version, "-w", "%{http_version}", &url]);
        assert!(out.status.success(), "{url}");
        let (body, seen) = out.stdout.split_at(out.stdout.len() - expect.len());
        assert!(body == want.as_slice(), "{url}: the bytes differ");
        assert_eq!(String::from_utf8_lossy(seen), expect);
    }

    // openssl s_client verifies it at TLS 1.2 and 1.3.
    for version in ["-tls1_2", "-tls1_3"] {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                version,
                "-CAfile",
                cacert,
                "-verify_return_error",
                "-alpn",
                "h2",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "{version}: {text}"
        );
        assert!(text.contains("ALPN protocol: h2"), "{version}: {text}");
    }

    // Python's client, with the strict X.509 checks Python 3.13 turns on by default.
    let script = format!(
        "import ssl, urllib.request\n\
         ctx = ssl.create_default_context(cafile={cacert:?})\n\
         ctx.verify_flags |= ssl.VERIFY_X509_STRICT\n\
         body = urllib.request.urlopen('https://127.0.0.1:{port}/fw.img', context=ctx).read()\n\
         print(len(body))\n"
    );
    assert_eq!(python_says(Path::new("python3"), &script), "300000");

    drop(srv);

    // The next start keeps the same certificate.
    let (_srv, _, banner) = start(SERV, data.path(), &["--tls", "-d", www_path]);
    let text = banner.join("\n");
    assert!(text.contains(&format!("SHA-256 {fingerprint}")), "{text}");
    assert!(!text.contains("made a certificate"), "{text}");
}

/// openssl s_client's report of one connection to `port` with `args` that asks for a
/// file and reads the answer to the end (by then a TLS 1.3 ticket has come too).
fn s_client(port: u16, args: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-ign_eof",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"GET /fw.img HTTP/1.0\r\n\r\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs openssl; bash scripts/test runs it"]
fn the_server_picks_the_cipher_and_sessions_resume() {
    let www = served_dir();
    let data = tempfile::tempdir().unwrap();
    let www_path = www.path().to_str().unwrap();
    let (_srv, port, _) = start(SERV, data.path(), &["--tls", "-d", www_path]);
    // A client listing the weaker suite first still gets the stronger one.
    let text = s_client(
        port,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
        ],
    );
    assert!(
        text.contains("Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{text}"
    );
    let text = s_client(
        port,
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ],
    );
    assert!(text.contains("Cipher is TLS_AES_256_GCM_SHA384"), "{text}");
    // A session saved by one connection is resumed by the next, at 1.2 and 1.3.
    for version in ["-tls1_2", "-tls1_3"] {
        let sess = data.path().join(format!("sess{version}"));
        let sess = sess.to_str().unwrap();
        let first = s_client(port, &[version, "-sess_out", sess]);
        assert!(first.contains("New, "), "{version}: {first}");
        let again = s_client(port, &[version, "-sess_in", sess]);
        assert!(again.contains("Reused, "), "{version}: {again}");
    }
}

#[test]
#[ignore = "needs requests from PyPI; bash scripts/test runs it"]
fn python_requests_trusts_the_printed_certificate() {
    let (_www, data, _srv, port) = serv_with_tls();
    let cacert = data.path().join("labserv/tls/cert.pem");
    let script = format!(
        "import requests\n\
         r = requests.get('https://localhost:{port}/fw.img', verify={cacert:?})\n\
         print(r.status_code, len(r.content))\n"
    );
    let python = common::python_venv().join("bin/python");
    assert_eq!(python_says(&python, &script), "200 300000");
}

#[test]
#[ignore = "needs openssl; bash scripts/test runs it"]
fn with_tls_rsa_a_client_without_ecdsa_gets_an_rsa_certificate() {
    let www = served_dir();
    let data = tempfile::tempdir().unwrap();
    let www_path = www.path().to_str().unwrap();
    // As a TLS stack built without ECDSA asks: RSA signatures only, at 1.2 and 1.3.
    let rsa_only = |port: u16, version: &str| {
        s_client(
            port,
            &[version, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256:RSA+SHA384"],
        )
    };
    {
        let (_srv, port, _) = start(SERV, data.path(), &["--tls", "-d", www_path]);
        let text = rsa_only(port, "-tls1_2");
        assert!(!text.contains("200 OK"), "no RSA certificate yet: {text}");
    }
    let (_srv, port, banner) = start(SERV, data.path(), &["--tls-rsa", "-d", www_path]);
    let tls = data.path().join("labserv/tls");
    let rsa_cert = tls.join("rsa-cert.pem");
    let text = banner.join("\n");
    assert!(
        text.contains(&format!(
            "Certificate for clients without ECDSA: {}",
            rsa_cert.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("SHA-256 {}", openssl_fingerprint(&rsa_cert))),
        "{text}"
    );
    // The ECDSA certificate made by the first start is kept, and still the default.
    assert!(
        text.contains(&openssl_fingerprint(&tls.join("cert.pem"))),
        "{text}"
    );
    for version in ["-tls1_2", "-tls1_3"] {
        let text = rsa_only(port, version);
        assert!(
            text.contains("Server public key is 2048 bit"),
            "{version}: {text}"
        );
        assert!(text.contains("200 OK"), "{version}: {text}");
    }
    let text = s_client(port, &["-tls1_3"]);
    assert!(text.contains("Server public key is 256 bit"), "{text}");
    // The RSA certificate file is what such a client is given to trust.
    let text = s_client(
        port,
        &[
            "-sigalgs",
            "RSA-PSS+SHA256",
            "-CAfile",
            rsa_cert.to_str().unwrap(),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
        ],
    );
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn plain_http_to_the_tls_port_gets_a_clear_answer() {
    let (_www, _data, _srv, port) = serv_with_tls();
    let out = curl(&[
        "-w",
        " %{http_code}",
        &format!("http://127.0.0.1:{port}/fw.img"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "This port speaks HTTPS: use https:// in the URL\n 400"
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn given_files_are_served_and_bad_ones_are_one_line_exit_2() {
    let www = served_dir();
    let www_path = www.path().to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    // Make a pair with the kept-certificate path, then hand them over as files.
    drop(start(SERV, data.path(), &["--tls", "-d", www_path]));
    let dir = data.path().join("labserv/tls");
    let files = tempfile::tempdir().unwrap();
    let cert = files.path().join("lab.crt");
    let key = files.path().join("lab.key");
    std::fs::copy(dir.join("cert.pem"), &cert).unwrap();
    std::fs::copy(dir.join("key.pem"), &key).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (_srv, port, banner) = start(
        SERV,
        empty.path(),
        &["--cert", cert_s, "--key", key_s, "-d", www_path],
    );
    assert!(
        banner
            .join("\n")
            .contains(&format!("Certificate: {cert_s}"))
    );
    let url = format!("https://localhost:{port}/fw.img");
    assert!(
        curl(&["-f", "--cacert", cert_s, "-o", "/dev/null", &url])
            .status
            .success()
    );
    assert!(!empty.path().join("labserv").exists(), "nothing was made");

    // A key that is no key, and a missing certificate.
    std::fs::write(&key, "not a key\n").unwrap();
    let missing = files.path().join("missing.pem");
    for (c, k, says) in [
        (cert_s, key_s, "cannot read the key"),
        (
            missing.to_str().unwrap(),
            cert_s,
            "cannot read the certificate",
        ),
    ] {
        let err = fails_in_one_line(
            command(SERV).args(["--host", "127.0.0.1", "-p", "0", "--cert", c, "--key", k]),
            2,
        );
        assert!(
            err.starts_with("serv: --tls: ") && err.contains(says),
            "{err}"
        );
    }
}

#[test]
#[ignore = "needs Python 3; bash scripts/test runs it"]
fn wsgi_apps_see_https() {
    let data = tempfile::tempdir().unwrap();
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let (_srv, port, _) = start(
        WSGI,
        data.path(),
        &[
            "apps:environ",
            "--tls",
            "-w",
            "1",
            "--chdir",
            apps.to_str().unwrap(),
        ],
    );
    let cert = data.path().join("labserv/tls/cert.pem");
    let out = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://127.0.0.1:{port}/x"),
    ]);
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the app's JSON");
    assert_eq!(seen["wsgi.url_scheme"], "https");
    assert_eq!(seen["PATH_INFO"], "/x");
}

/// A client that connects and never finishes its handshake is dropped at the header
/// timeout, as one that never finishes its request head is.
#[tokio::test]
async fn a_stalled_handshake_is_dropped_at_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_www, root) = common::fresh_root("www");
    let data = tempfile::tempdir().unwrap();
    let source = labserv::server::tls::CertSource::Kept {
        dir: data.path().join("tls"),
        rsa: false,
    };
    let tls = labserv::server::tls::Tls::new(&source, &["localhost".to_string()]).unwrap();
    let mut config = labserv::http::HttpConfig::new(&root);
    config.http.limits.header_timeout = std::time::Duration::from_millis(300);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = labserv::Shutdown::new();
    let server = tokio::spawn(labserv::http::serve(
        listener,
        config,
        Some(tls),
        shutdown.clone(),
    ));
    // One sends nothing; the other the first bytes of a ClientHello, then nothing.
    for first in [&b""[..], &[0x16, 0x03, 0x01, 0x00, 0x80, 0x01][..]] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(first).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("closed before 5 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    }
    shutdown.trigger();
    server.await.unwrap().unwrap();
}

#[test]
fn a_kept_key_others_can_read_is_refused_and_a_planted_link_is_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let www = served_dir();
    let data = tempfile::tempdir().unwrap();
    let www_path = www.path().to_str().unwrap();
    let (srv, _, _) = start(SERV, data.path(), &["--tls", "-d", www_path]);
    drop(srv);
    let key = data.path().join("labserv/tls/key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = command(SERV)
        .args(["--host", "127.0.0.1", "-p", "0", "--tls", "-d", www_path])
        .env("XDG_DATA_HOME", data.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("can be read by others"), "{err}");
    // A link where the key's temporary file goes is replaced, not written through.
    std::fs::remove_file(&key).unwrap();
    let elsewhere = data.path().join("elsewhere.pem");
    std::os::unix::fs::symlink(&elsewhere, data.path().join("labserv/tls/key.tmp")).unwrap();
    let (_srv, _, _) = start(SERV, data.path(), &["--tls", "-d", www_path]);
    assert!(!elsewhere.exists());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
