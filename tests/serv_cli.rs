//! The built `serv` binary: arguments, environment, exit codes, logging and signals.

mod common;

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::{Running, command, fails_in_one_line, http_get, wait_file};

const SERV: &str = env!("CARGO_BIN_EXE_serv");

fn get(port: u16, path: &str) -> (u16, String) {
    http_get("127.0.0.1", port, path)
}

fn served_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw_update.img"), b"image bytes").unwrap();
    dir
}

#[test]
fn help_and_version() {
    let out = command(SERV).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "[PORT]",
        "[IFACE]",
        "--directory",
        "--show-settings",
        "--no-follow-symlinks",
    ] {
        assert!(help.contains(word), "help lacks {word}:\n{help}");
    }
    let out = command(SERV).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("serv {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn show_settings_prints_every_variable_with_its_effective_value() {
    let out = command(SERV)
        .arg("--show-settings")
        .env("PORT", "9123")
        .env("LPNAME", "fwsrv")
        .env("XDG_STATE_HOME", "/tmp/state-here")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")));
    for var in common::LABSERV_VARS {
        assert!(
            text.contains(&format!("  {var} ")),
            "{var} missing:\n{text}"
        );
    }
    assert!(text.contains("PORT         9123\n"), "{text}");
    assert!(text.contains("IDEV         lo  (default)"), "{text}");
    assert!(
        text.contains("/tmp/state-here/labserv/log/fwsrv.log"),
        "{text}"
    );
    assert!(text.contains("  slow         off\n"), "{text}");
    let out = command(SERV)
        .args(["--slow", "2.5s", "--show-settings"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  slow         warn of requests and transfers over 2.5s\n"),
        "{text}"
    );
}

#[test]
fn bad_environment_values_exit_2_with_one_line() {
    for (var, value) in [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("SOCK_TIMEOUT", "-1"),
        ("IFACE", "not-an-address"),
        ("DEBUG", "maybe"),
    ] {
        let err = fails_in_one_line(command(SERV).env(var, value), 2);
        assert!(
            err.starts_with(&format!("serv: invalid {var}=\"{value}\"")),
            "{err}"
        );
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn bad_arguments_exit_2() {
    for args in [&["abc"][..], &["8080", "nowhere"], &["--bogus"]] {
        let out = command(SERV).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    // An empty PORT (a Procfile's unset variable) leaves the usage line as --help has it.
    let out = command(SERV).args(["", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: serv [OPTIONS] [PORT] [IFACE]"),
        "{err}"
    );
}

#[test]
fn serves_with_port_and_iface_arguments_and_prints_the_url() {
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"]).arg(dir.path());
    let mut srv = Running::spawn(cmd);
    let serving = srv.wait_line(|l| l.starts_with("Serving "));
    assert!(serving.contains(&*dir.path().canonicalize().unwrap().to_string_lossy()));
    let port = srv.wait_port();
    assert_eq!(
        get(port, "/fw_update.img"),
        (200, "image bytes".to_string())
    );
}

#[test]
fn port_iface_and_docroot_come_from_the_environment() {
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.env("PORT", "0")
        .env("IFACE", "127.0.0.1")
        .env("DOCROOT", dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(get(port, "/fw_update.img").0, 200);
}

#[test]
fn procfile_line_works_with_iface_empty() {
    let dir = served_dir();
    // What honcho or foreman run for `web: serv $PORT $IFACE`.
    let mut cmd = command("sh");
    cmd.arg("-c")
        .arg(format!("exec {SERV} $PORT $IFACE"))
        .env("PORT", "0")
        .env("IFACE", "")
        .current_dir(dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(get(port, "/fw_update.img").0, 200);

    // And with the empty argument quoted through.
    let mut cmd = command(SERV);
    cmd.args(["0", ""]).current_dir(dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(get(port, "/fw_update.img").0, 200);
}

#[test]
fn missing_directory_exits_1_with_a_clear_line() {
    let out = command(SERV)
        .args(["0", "127.0.0.1", "-d", "/no/such/firmware"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "serv: cannot serve /no/such/firmware: no such directory"
    );
}

#[test]
fn busy_port_exits_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = served_dir();
    let err = fails_in_one_line(
        command(SERV)
            .args([&port.to_string(), "127.0.0.1", "-d"])
            .arg(dir.path())
            .stdout(Stdio::null()),
        1,
    );
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: address already in use"
        )),
        "{err}"
    );
}

#[test]
fn sigterm_and_sigint_exit_0() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dir = served_dir();
        let mut cmd = command(SERV);
        cmd.args(["0", "127.0.0.1", "-d"]).arg(dir.path());
        let mut srv = Running::spawn(cmd);
        let port = srv.wait_port();
        assert_eq!(get(port, "/fw_update.img").0, 200);
        srv.signal(sig);
        assert_eq!(
            srv.wait_exit(Duration::from_secs(5)),
            Some(0),
            "signal {sig}"
        );
    }
}

#[test]
fn access_log_goes_to_the_log_file() {
    let dir = served_dir();
    let log = dir.path().join("logs/serv.log");
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"])
        .arg(dir.path())
        .env("LOG", &log);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(get(port, "/fw_update.img").0, 200);
    assert_eq!(get(port, "/missing.img").0, 404);
    let text = wait_file(&log, |t| t.contains("/missing.img"));
    let hit = text
        .lines()
        .find(|l| l.contains("\"GET /fw_update.img HTTP/1.1\""))
        .unwrap_or_else(|| panic!("no access line:\n{text}"));
    assert!(hit.contains(" INFO access: 127.0.0.1:"), "{hit}");
    assert!(hit.contains("\" 200 11 "), "status and bytes: {hit}");
    // `2026-12-02T20:29:17.544844Z`, then the time taken to the microsecond: `0.034ms`.
    let (stamp, _) = hit.split_once(' ').unwrap();
    assert_eq!(stamp.len(), 27, "{hit}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "{hit}"
    );
    let took = hit.rsplit(' ').next().unwrap();
    let (whole, part) = took.strip_suffix("ms").unwrap().split_once('.').unwrap();
    assert!(whole.parse::<u64>().is_ok(), "{hit}");
    assert!(part.len() == 3 && part.parse::<u16>().is_ok(), "{hit}");
    assert!(
        text.contains("\"GET /missing.img HTTP/1.1\" 404 "),
        "{text}"
    );
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(srv.stderr().is_empty(), "with LOG set, stderr stays quiet");
}

#[test]
fn a_download_cut_at_the_drain_deadline_is_logged_as_cut_by_shutdown() {
    let dir = served_dir();
    // Far more than the socket buffers hold: a client that does not read stalls it.
    std::fs::write(dir.path().join("big.img"), vec![7u8; 64 * 1024 * 1024]).unwrap();
    let log = dir.path().join("serv.log");
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"])
        .arg(dir.path())
        .env("LOG", &log);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The response has started when its first bytes arrive.
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut stalled, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"GET /big.img HTTP/1.1\" 200"))
        .unwrap_or_else(|| panic!("no access line:\n{text}"));
    assert!(line.ends_with("(closed by shutdown)"), "{line}");
    drop(stalled);
}

#[test]
fn every_fault_option_gives_way_to_shutdown() {
    let dir = served_dir();
    std::fs::write(dir.path().join("big.img"), vec![7u8; 8 * 1024 * 1024]).unwrap();
    for (fault, value) in [
        ("--limit-rate", "10K"),
        ("--delay", "60s"),
        ("--drop-after", "90%"),
    ] {
        let mut cmd = command(SERV);
        cmd.args(["0", "127.0.0.1", "-d"])
            .arg(dir.path())
            .args([fault, value])
            .env("DEBUG", "1");
        let mut srv = Running::spawn(cmd);
        let port = srv.wait_port();
        let mut srv = srv.with_log_lines();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut client, b"GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // The server has the request (and is holding or pacing its answer).
        srv.wait_line(|l| l.contains("request target /big.img") || l.contains("(--delay)"));
        // Well inside the 5 s drain that a download without faults may take.
        let asked = std::time::Instant::now();
        srv.signal(libc::SIGINT);
        assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0), "{fault}");
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{fault}: exited after {took:?}"
        );
        drop(client);
    }
}

/// `serv` on 127.0.0.1 port 0 serving `dir`, logging with DEBUG=1 to `log`.
fn serv_with_debug_log(dir: &std::path::Path, log: &std::path::Path) -> (Running, u16) {
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"])
        .arg(dir)
        .env("LOG", log)
        .env("DEBUG", "1");
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    (srv, port)
}

/// Every file below `dir`, as paths relative to it, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_owned();
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
#[ignore = "needs wget; bash scripts/test runs it"]
fn a_crawler_mirrors_exactly_the_tree_and_checksums_are_computed_once() {
    let dir = served_dir();
    std::fs::create_dir(dir.path().join("boards")).unwrap();
    std::fs::write(dir.path().join("boards/rev2.bin"), b"rev 2").unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serv.log");
    let (mut srv, port) = serv_with_debug_log(dir.path(), &log);
    let mirror = tempfile::tempdir().unwrap();
    let status = command("wget")
        .args([
            "-q",
            "-r",
            "-np",
            "-nH",
            "--no-proxy",
            "-e",
            "robots=off",
            "-P",
        ])
        .arg(mirror.path())
        .arg(format!("http://127.0.0.1:{port}/"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        tree(mirror.path()),
        [
            "boards/index.html",
            "boards/rev2.bin",
            "fw_update.img",
            "index.html"
        ]
    );
    // A person's checksum: computed once for these bytes, again once they change.
    let sum = || {
        let (code, body) = get(port, "/fw_update.img?sha256");
        assert_eq!(code, 200);
        assert!(body.trim_end().ends_with("  fw_update.img"), "{body}");
        body
    };
    let first = sum();
    assert_eq!(sum(), first);
    std::fs::write(dir.path().join("fw_update.img"), b"a newer image").unwrap();
    let newer = sum();
    assert_ne!(newer, first);
    assert_eq!(sum(), newer);
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(5)), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("sha256 of ").count(), 2, "{text}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn debug_logs_request_rewrites_and_headers() {
    let dir = served_dir();
    let log = dir.path().join("debug.log");
    let (_srv, port) = serv_with_debug_log(dir.path(), &log);
    let out = command("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-H",
            "X-Ota-Client: board-7",
            "-H",
            "Cookie: session=s3cr3t-cookie",
            "-u",
            "lab:s3cr3t-password",
        ])
        .arg(format!("http://127.0.0.1:{port}/fw_update.img"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = wait_file(&log, |t| t.contains("access:"));
    assert!(text.contains("header x-ota-client: \"board-7\""), "{text}");
    assert!(text.contains("request target /fw_update.img"), "{text}");
    assert!(text.contains("path \"/fw_update.img\" -> "), "{text}");
    // Credentials and cookies are never written to the log, and the log is the user's alone.
    assert!(text.contains("header authorization: (redacted)"), "{text}");
    assert!(text.contains("header cookie: (redacted)"), "{text}");
    assert!(
        !text.contains("s3cr3t") && !text.contains("bGFiOnMzY3IzdC1"),
        "{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn unwritable_log_exits_1_with_a_clear_line() {
    let dir = served_dir();
    // A log path below a regular file can never be created.
    let log = dir.path().join("fw_update.img").join("serv.log");
    let err = fails_in_one_line(
        command(SERV)
            .args(["0", "127.0.0.1", "-d"])
            .arg(dir.path())
            .env("LOG", &log),
        1,
    );
    assert!(
        err.starts_with(&format!("serv: cannot open log file {}: ", log.display())),
        "{err}"
    );
}

/// Whether this machine has IPv6 loopback at all (some containers do not).
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn by_default_serv_listens_on_ipv4() {
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.args(["0", "-d"]).arg(dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(http_get("127.0.0.1", port, "/fw_update.img").0, 200);
}

#[test]
#[ignore = "needs IPv6 loopback, which some containers lack; bash scripts/test runs it"]
fn by_default_serv_listens_on_ipv6_too_and_takes_an_ipv6_address() {
    assert!(has_ipv6_loopback(), "this machine has no IPv6 loopback");
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.args(["0", "-d"]).arg(dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    assert_eq!(http_get("[::1]", port, "/fw_update.img").0, 200);

    let mut cmd = command(SERV);
    cmd.args(["0", "::1", "-d"]).arg(dir.path());
    let mut v6 = Running::spawn(cmd);
    let line = v6.wait_line(|l| l.trim_start().starts_with("http://"));
    assert!(line.contains("http://[::1]:"), "{line}");
    let port = v6.port_in(&line);
    assert_eq!(http_get("[::1]", port, "/fw_update.img").0, 200);
}

/// The QR code in a banner, as a grey image (4 pixels a module): `█` is two light
/// modules, a space two dark ones, `▀` light over dark, `▄` dark over light.
fn qr_image(lines: &[String]) -> (usize, usize, Vec<u8>) {
    const SCALE: usize = 4;
    let rows: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let height = rows.len() * 2;
    let mut modules = vec![0u8; width * height];
    for (y, row) in rows.iter().enumerate() {
        for (x, c) in row.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (255, 255),
                '▀' => (255, 0),
                '▄' => (0, 255),
                _ => (0, 0),
            };
            modules[2 * y * width + x] = top;
            modules[(2 * y + 1) * width + x] = bottom;
        }
    }
    let (w, h) = (width * SCALE, height * SCALE);
    let pixels = (0..w * h)
        .map(|i| modules[(i / w / SCALE) * width + (i % w) / SCALE])
        .collect();
    (w, h, pixels)
}

#[test]
fn qr_prints_a_code_that_reads_as_the_first_url() {
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "--qr", "-d"]).arg(dir.path());
    let mut srv = Running::spawn(cmd);
    let url_line = srv.wait_line(|l| l.trim_start().starts_with("http://"));
    srv.wait_line(|l| l.starts_with("Press Ctrl-C"));
    let url = url_line.split_whitespace().next().unwrap().to_string();
    let code: Vec<String> = srv
        .seen
        .iter()
        .filter(|l| l.contains(['█', '▀', '▄']))
        .cloned()
        .collect();
    assert!(code.len() > 10, "{:#?}", srv.seen);
    // What a camera sees on a dark terminal: the blocks are the light modules.
    let (w, h, pixels) = qr_image(&code);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one code found");
    let (_, content) = grids[0].decode().expect("the code reads");
    assert_eq!(content, url);
}

#[test]
fn every_binary_prints_its_man_page_and_shell_completions() {
    let binaries = [
        ("serv", SERV, "--upload"),
        ("tftpd", env!("CARGO_BIN_EXE_tftpd"), "--max-upload"),
        ("wsgi", env!("CARGO_BIN_EXE_wsgi"), "--reload"),
        ("httpdaemon", env!("CARGO_BIN_EXE_httpdaemon"), "start"),
        ("tftpdaemon", env!("CARGO_BIN_EXE_tftpdaemon"), "status"),
        ("atftpdaemon", env!("CARGO_BIN_EXE_atftpdaemon"), "stop"),
        ("daemontui", env!("CARGO_BIN_EXE_daemontui"), "DAEMON"),
    ];
    for (name, bin, option) in binaries {
        let generated = |kind: &str| {
            let out = command(bin).args(["--generate", kind]).output().unwrap();
            assert!(out.status.success(), "{name} --generate {kind}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let man = generated("man");
        assert!(man.contains(&format!(".TH {name} 1")), "{name}: {man}");
        // roff writes each "-" as "\-".
        let text = man.replace("\\-", "-");
        assert!(text.contains(option), "{name}'s man page lacks {option}");
        assert!(
            generated("complete-bash").contains(&format!("complete -F _{name}")),
            "{name}"
        );
        assert!(
            generated("complete-zsh").starts_with(&format!("#compdef {name}")),
            "{name}"
        );
        assert!(
            generated("complete-fish").contains(&format!("complete -c {name}")),
            "{name}"
        );
        assert!(
            generated("complete-powershell").contains("Register-ArgumentCompleter"),
            "{name}"
        );
    }
    // The bash completion offers serv's options.
    let out = command(SERV)
        .args(["--generate", "complete-bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--max-upload"));
    // A kind it does not know: one line, exit 2.
    let err = fails_in_one_line(command(SERV).args(["--generate", "troff"]), 2);
    assert!(
        err.starts_with("serv: --generate takes one of: man, complete-bash"),
        "{err}"
    );
}

#[test]
fn one_address_holds_at_most_max_conns_per_client() {
    refuses_a_third_connection(
        "--max-conns-per-client",
        "too many connections from this address\n",
        "too many connections from that address (--max-conns-per-client)",
    );
}

#[test]
fn at_most_max_conns_are_open_at_once() {
    refuses_a_third_connection(
        "--max-conns",
        "too many connections open; try again\n",
        "too many connections open (--max-conns)",
    );
}

/// `serv OPTION 2`: two connections held open, a third is answered 503 with `body` and
/// closed, and once one has gone, requests are served again; the log says `logged`.
fn refuses_a_third_connection(option: &str, body: &str, logged: &str) {
    let dir = served_dir();
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", option, "2", "-d"])
        .arg(dir.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    // Two connections held open in the middle of a request head.
    let hold = || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut conn, b"GET /fw_update.img HTTP/1.1\r\n").unwrap();
        conn
    };
    let (first, second) = (hold(), hold());
    // A third gets 503 once both are counted (each is taken in as its bytes arrive).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, answer) = get(port, "/fw_update.img");
        if code == 503 {
            assert_eq!(answer, body);
            break;
        }
        assert_eq!(code, 200);
        assert!(std::time::Instant::now() < deadline, "never refused");
    }
    // One let go: served again.
    drop(first);
    while get(port, "/fw_update.img").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never served again");
    }
    drop(second);
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    let log = srv.stderr();
    assert!(log.contains(logged), "{log}");
}

#[test]
fn slow_requests_are_warned_of_with_slow() {
    let dir = served_dir();
    // One request held back 300 ms; what the log says once serv has stopped.
    let log_of_one_slow_request = |extra: &[&str]| {
        let mut cmd = command(SERV);
        cmd.args(["0", "127.0.0.1", "--delay", "300ms", "-d"])
            .arg(dir.path())
            .args(extra);
        let mut srv = Running::spawn(cmd);
        let port = srv.wait_port();
        assert_eq!(get(port, "/fw_update.img").0, 200);
        srv.signal(libc::SIGTERM);
        assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
        srv.stderr()
    };
    let log = log_of_one_slow_request(&["--slow", "100ms"]);
    let warned = log
        .lines()
        .find(|l| l.contains("GET /fw_update.img: slow,"))
        .unwrap_or_else(|| panic!("no warning of the slow request:\n{log}"));
    assert!(warned.contains("WARN"), "{warned}");
    assert!(warned.contains("(--slow 0.1s)"), "{warned}");
    // Without --slow, the same request is no warning.
    let log = log_of_one_slow_request(&[]);
    assert!(!log.contains("slow,"), "{log}");
}

/// The port in the last `http://127.0.0.1:PORT/` line of `screen`.
fn last_port(screen: &str) -> u16 {
    let line = screen
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("http://127.0.0.1:"))
        .expect("an address on the screen");
    line.trim_end_matches('/').parse().expect("a port")
}

#[test]
#[ignore = "needs tmux; bash scripts/test runs it"]
fn with_a_terminal_on_stdin_status_restart_and_quit_work() {
    common::pane::tmux_available();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.img"), b"image").unwrap();
    let pane = common::pane::Pane::start(&format!(
        "cd {} && env -u PORT -u IFACE -u DOCROOT -u LOG -u DEBUG {SERV} 0 --host 127.0.0.1; \
         echo serv exited $?",
        dir.path().display()
    ));
    let screen = pane.wait_text("Type help for commands.");
    let port = last_port(&screen);
    assert_eq!(
        http_get("127.0.0.1", port, "/fw.img"),
        (200, "image".into())
    );
    pane.keys(&["status", "Enter"]);
    let screen = pane.wait_text("answered");
    assert!(
        screen.contains("1 request answered, 5 bytes sent"),
        "{screen}"
    );
    pane.keys(&["nonsense", "Enter"]);
    pane.wait_text("unknown command \"nonsense\": type help");
    // Restart: the same command again (port 0: a new port), serving as before.
    pane.keys(&["restart", "Enter"]);
    let screen = pane.wait("the restarted server", |s| {
        s.matches("Type help for commands.").count() == 2
    });
    let again = last_port(&screen);
    assert_eq!(
        http_get("127.0.0.1", again, "/fw.img"),
        (200, "image".into())
    );
    pane.keys(&["quit", "Enter"]);
    pane.wait_text("serv exited 0");
}

#[test]
fn without_a_terminal_stdin_is_not_read_as_commands() {
    // A Procfile runner or a supervisor hands a pipe (or /dev/null): a line that reads
    // like a command must change nothing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.img"), b"image").unwrap();
    let mut cmd = command(SERV);
    cmd.arg("0")
        .args(["--host", "127.0.0.1", "-d"])
        .arg(dir.path());
    let (mut srv, mut stdin) = Running::spawn_with_stdin(cmd);
    let port = srv.wait_port();
    use std::io::Write as _;
    stdin.write_all(b"quit\nrestart\n").unwrap();
    stdin.flush().unwrap();
    drop(stdin);
    for _ in 0..3 {
        assert_eq!(
            http_get("127.0.0.1", port, "/fw.img"),
            (200, "image".into())
        );
    }
    assert!(
        !srv.seen.iter().any(|l| l.contains("Type help")),
        "{:?}",
        srv.seen
    );
}
