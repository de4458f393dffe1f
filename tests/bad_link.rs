//! A bad link on purpose (`--limit-rate`, `--drop-after`, `--fail-every`, `--delay`), seen
//! through the clients an OTA test would use: curl and wget, run against the built `serv`.

mod common;

use std::path::Path;

use common::{Running, command};

const SERV: &str = env!("CARGO_BIN_EXE_serv");

/// Starts `serv` on 127.0.0.1 port 0 serving `dir` with `args`; returns it, its port and
/// its banner.
fn serv(dir: &Path, args: &[&str]) -> (Running, u16, String) {
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"]).arg(dir).args(args);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    srv.wait_line(|l| l.starts_with("Press Ctrl-C"));
    let banner = srv.seen.join("\n");
    (srv, port, banner)
}

fn firmware(len: usize) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let data = common::pattern(len);
    std::fs::write(dir.path().join("fw.img"), &data).unwrap();
    (dir, data)
}

/// curl's `-w` variables for one download of `url` to `out`.
fn curl_w(url: &str, out: &Path, extra: &[&str], write_out: &str) -> String {
    let got = command("curl")
        .args(["-s", "--noproxy", "*", "-o"])
        .arg(out)
        .args(extra)
        .args(["-w", write_out, url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&got.stdout).into_owned()
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn limit_rate_holds_a_download_near_the_rate() {
    let (dir, data) = firmware(1536 * 1024);
    let (_srv, port, banner) = serv(dir.path(), &["--limit-rate", "512K"]);
    assert!(
        banner.contains("Faults on purpose: 512 KiB/s per connection"),
        "{banner}"
    );
    let out = dir.path().join("got.img");
    let seen = curl_w(
        &format!("http://127.0.0.1:{port}/fw.img"),
        &out,
        &[],
        "%{http_code} %{speed_download}",
    );
    let (code, speed) = seen.split_once(' ').unwrap();
    assert_eq!(code, "200");
    let speed: f64 = speed.parse().unwrap();
    let rate = 512.0 * 1024.0;
    assert!(
        (speed - rate).abs() / rate <= 0.15,
        "{speed:.0} bytes/s, asked for {rate}"
    );
    assert!(std::fs::read(&out).unwrap() == data);
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn a_resuming_client_gets_through_drop_after_byte_for_byte() {
    let (dir, data) = firmware(300_000);
    let (_srv, port, banner) = serv(dir.path(), &["--drop-after", "64K"]);
    assert!(
        banner.contains("connections cut after 64 KiB of each body"),
        "{banner}"
    );
    let url = format!("http://127.0.0.1:{port}/fw.img");
    let out = dir.path().join("got.img");
    // The first response stops at exactly 64 KiB, and curl says the transfer was cut.
    let first = curl_w(&url, &out, &[], "%{http_code} %{size_download} %{exitcode}");
    assert_eq!(first, "200 65536 18");
    // Resuming with Range, again and again, as an OTA client's retry loop does.
    let mut tries = 1;
    loop {
        let seen = curl_w(&url, &out, &["-C", "-"], "%{exitcode}");
        tries += 1;
        if seen == "0" {
            break;
        }
        assert_eq!(seen, "18", "curl exit code");
        assert!(tries < 10, "no progress after {tries} tries");
    }
    assert_eq!(tries, 5, "65536 bytes a try, then the last 37856");
    assert!(std::fs::read(&out).unwrap() == data, "the bytes differ");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn a_percentage_cuts_once_at_that_point_of_the_file_and_a_resume_completes() {
    let (dir, data) = firmware(1_000_000);
    let (_srv, port, banner) = serv(dir.path(), &["--drop-after", "30%"]);
    assert!(
        banner.contains("downloads cut once at 30% of the file"),
        "{banner}"
    );
    let url = format!("http://127.0.0.1:{port}/fw.img");
    let out = dir.path().join("got.img");
    let first = curl_w(&url, &out, &[], "%{http_code} %{size_download} %{exitcode}");
    assert_eq!(first, "200 300000 18");
    // One resume, as an OTA tester means by "drop at 30%".
    let second = curl_w(
        &url,
        &out,
        &["-C", "-"],
        "%{http_code} %{size_download} %{exitcode}",
    );
    assert_eq!(second, "206 700000 0");
    assert!(std::fs::read(&out).unwrap() == data, "the bytes differ");
    // A range before the point that runs across it is cut there.
    let part = dir.path().join("part.img");
    let seen = curl_w(
        &url,
        &part,
        &["-r", "100000-599999"],
        "%{http_code} %{size_download}",
    );
    assert_eq!(seen, "206 200000");
}

#[test]
#[ignore = "needs wget; bash scripts/test runs it"]
fn wget_retries_through_fail_every() {
    let (dir, data) = firmware(10_000);
    let (srv, port, banner) = serv(dir.path(), &["--fail-every", "2"]);
    assert!(banner.contains("every 2nd request gets 503"), "{banner}");
    let url = format!("http://127.0.0.1:{port}/fw.img");
    let wget = |out: &Path, tries: &str| {
        command("wget")
            .args(["-q", "--no-proxy", "--tries", tries, "--waitretry=1"])
            .args(["--retry-on-http-error=503", "-O"])
            .arg(out)
            .arg(&url)
            .status()
            .expect("wget runs")
    };
    // Request 1 passes; request 2 fails, and its retry (request 3) passes.
    let first = dir.path().join("first.img");
    assert!(wget(&first, "1").success());
    let second = dir.path().join("second.img");
    assert!(wget(&second, "3").success());
    assert!(std::fs::read(&second).unwrap() == data);
    // Without a retry, the failure shows (request 4); it says when to come back, and the
    // log says it was on purpose.
    assert!(!wget(&dir.path().join("third.img"), "1").success());
    let head = |n: usize| {
        let out = command("curl")
            .args(["-s", "--noproxy", "*", "-D", "-", "-o", "/dev/null", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!text.is_empty(), "request {n}");
        text
    };
    assert!(head(5).starts_with("HTTP/1.1 200"));
    let failed = head(6);
    assert!(failed.starts_with("HTTP/1.1 503"), "{failed}");
    assert!(
        failed.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{failed}"
    );
    let mut srv = srv.with_log_lines();
    srv.wait_line(|l| l.contains("GET /fw.img: 503 on purpose (--fail-every)"));
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn delay_holds_back_the_first_byte() {
    let (dir, _) = firmware(1000);
    let (_srv, port, banner) = serv(dir.path(), &["--delay", "300ms"]);
    assert!(banner.contains("300ms before each response"), "{banner}");
    let seen = curl_w(
        &format!("http://127.0.0.1:{port}/fw.img"),
        &dir.path().join("got.img"),
        &[],
        "%{http_code} %{time_starttransfer}",
    );
    let (code, first_byte) = seen.split_once(' ').unwrap();
    assert_eq!(code, "200");
    assert!(first_byte.parse::<f64>().unwrap() >= 0.3, "{seen}");
}

#[test]
fn bad_fault_values_are_one_line_exit_2() {
    for (option, value) in [
        ("--limit-rate", "fast"),
        ("--limit-rate", "0"),
        ("--drop-after", "150%"),
        ("--drop-after", "0"),
        ("--fail-every", "0"),
        ("--delay", "soon"),
    ] {
        let out = command(SERV)
            .args([option, value, "--show-settings"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option} {value}: {err}");
        assert!(
            err.starts_with(&format!("serv: invalid {option}=\"{value}\"")),
            "{err}"
        );
    }
    let out = command(SERV)
        .args(["--fail-every", "3", "--delay", "1s", "--show-settings"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  faults       every 3rd request gets 503, 1s before each response"),
        "{text}"
    );
}
