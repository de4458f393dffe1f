//! The built `tftpd` binary: arguments in either order, exit codes, signals, the
//! transfer log, and uploads, with curl as the TFTP client.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Running, command, fails_in_one_line, pattern, wait_file};

const TFTPD: &str = env!("CARGO_BIN_EXE_tftpd");

fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zImage"), pattern(200_000)).unwrap();
    dir
}

fn curl(args: &[&str]) -> bool {
    command("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .status()
        .expect("curl runs")
        .success()
}

fn fetch(port: u16, name: &str, out: &std::path::Path) -> bool {
    curl(&[
        "-o",
        out.to_str().unwrap(),
        &format!("tftp://127.0.0.1:{port}/{name}"),
    ])
}

fn spawn(dir: &tempfile::TempDir, args: &[&str]) -> (Running, u16) {
    spawn_with(dir, args, None)
}

/// Starts tftpd serving `dir` (with LOG set when given) and reads its port off the banner.
fn spawn_with(
    dir: &tempfile::TempDir,
    args: &[&str],
    log: Option<&std::path::Path>,
) -> (Running, u16) {
    let mut cmd = command(TFTPD);
    cmd.args(args).arg("-d").arg(dir.path());
    if let Some(log) = log {
        cmd.env("LOG", log);
    }
    let mut srv = Running::spawn(cmd);
    let line = srv.wait_line(|l| l.trim_start().starts_with("tftp://"));
    let port = srv.port_in(&line);
    (srv, port)
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn a_lone_number_is_a_port_in_either_position() {
    let dir = root();
    for args in [&["0"][..], &["0", "127.0.0.1"], &["127.0.0.1", "0"]] {
        let (_srv, port) = spawn(&dir, args);
        let out = dir.path().join("out.img");
        assert!(fetch(port, "zImage", &out), "{args:?}");
        assert_eq!(std::fs::read(&out).unwrap(), pattern(200_000));
    }
}

#[test]
fn bad_values_exit_2_with_one_line() {
    for (args, env, needle) in [
        (&["abc"][..], None, "invalid IFACE=\"abc\""),
        (&["--max-blksize", "7"], None, "invalid --max-blksize=\"7\""),
        (
            &["--ack-timeout", "-1"],
            None,
            "invalid --ack-timeout=\"-1\"",
        ),
        (&[], Some(("PORT", "70000")), "invalid PORT=\"70000\""),
    ] {
        let mut cmd = command(TFTPD);
        cmd.args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let err = fails_in_one_line(&mut cmd, 2);
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn busy_port_exits_1() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = root();
    let out = command(TFTPD)
        .args([&port, "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("address already in use"));
}

#[test]
fn sigterm_stops_within_a_second_and_exits_0() {
    let dir = root();
    let (mut srv, _port) = spawn(&dir, &["0"]);
    let start = Instant::now();
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn each_transfer_is_logged() {
    let dir = root();
    let log = dir.path().join("tftpd.log");
    let (_srv, port) = spawn_with(&dir, &["0"], Some(&log));
    assert!(fetch(port, "zImage", &dir.path().join("got")));
    let nothing = dir.path().join("nothing");
    let escape = format!("tftp://127.0.0.1:{port}/../outside");
    assert!(!curl(&[
        "--path-as-is",
        "-o",
        nothing.to_str().unwrap(),
        &escape
    ]));
    let text = wait_file(&log, |t| {
        t.contains("read \"zImage\"") && t.contains("refused")
    });
    let line = text
        .lines()
        .find(|l| l.contains("read \"zImage\" 200000 bytes in "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" blksize 512 windowsize 1 retransmits 0 ok"),
        "{line}"
    );
    assert!(
        text.contains("read \"../outside\" refused: '..' in file name"),
        "{text}"
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn uploads_need_the_upload_flag() {
    let dir = root();
    let upload = dir.path().join("dump.bin");
    std::fs::write(&upload, pattern(5000)).unwrap();
    let up = upload.to_str().unwrap();

    let (_ro, port) = spawn(&dir, &["0"]);
    assert!(!curl(&[
        "-T",
        up,
        &format!("tftp://127.0.0.1:{port}/new.bin")
    ]));
    assert!(!dir.path().join("new.bin").exists());

    let (_rw, port) = spawn(&dir, &["0", "--upload"]);
    assert!(curl(&[
        "-T",
        up,
        &format!("tftp://127.0.0.1:{port}/new.bin")
    ]));
    let landed = dir.path().join("new.bin");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read(&landed).ok() != Some(pattern(5000)) {
        assert!(Instant::now() < deadline, "upload never landed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_goes_away_ends_its_transfer_at_once() {
    let dir = root();
    let log = dir.path().join("tftpd.log");
    let (_srv, port) = spawn_with(&dir, &["0", "127.0.0.1"], Some(&log));
    // A board asks for the kernel, takes the first block, and is gone (reset, unplugged):
    // it never ACKs, and its port is closed.
    let board = UdpSocket::bind("127.0.0.1:0").unwrap();
    board
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    board
        .send_to(b"\0\x01zImage\0octet\0", ("127.0.0.1", port))
        .unwrap();
    let mut block = [0u8; 600];
    let (n, _) = board.recv_from(&mut block).unwrap();
    assert_eq!(
        (n, &block[..4]),
        (516, &[0, 3, 0, 1][..]),
        "the first DATA block"
    );
    let gone = Instant::now();
    drop(board);
    // The next DATA (a retransmission, half a second on) meets a closed port; the
    // transfer ends then, not after the 5 s a silent client is given.
    let text = wait_file(&log, |t| t.contains("read \"zImage\""));
    let line = text
        .lines()
        .find(|l| l.contains("read \"zImage\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("client gone (its port is closed)"), "{line}");
    assert!(
        gone.elapsed() < Duration::from_secs(4),
        "{:?}",
        gone.elapsed()
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn verbose_logs_each_packet() {
    let dir = root();
    let log = dir.path().join("tftpd.log");
    let (_srv, port) = spawn_with(&dir, &["0", "-v"], Some(&log));
    assert!(fetch(port, "zImage", &dir.path().join("got")));
    let text = wait_file(&log, |t| t.contains("read \"zImage\""));
    assert!(text.contains("tftp_engine"), "no per-packet lines:\n{text}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn ipv6_addresses_work() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine");
        return;
    }
    let dir = root();
    let (_srv, port) = spawn(&dir, &["::1", "0"]);
    let out = dir.path().join("v6.img");
    assert!(curl(&[
        "-g",
        "-o",
        out.to_str().unwrap(),
        &format!("tftp://[::1]:{port}/zImage")
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), pattern(200_000));
}

/// The `retransmits N` of each transfer line in `log` that reads `name`.
fn retransmits(log: &str, name: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains(&format!("read \"{name}\"")))
        .filter_map(|l| l.split("retransmits ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
#[ignore = "needs curl and tftp-hpa's client; bash scripts/test runs it"]
fn clients_finish_through_lost_packets_and_the_log_counts_the_retransmits() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(40_000);
    std::fs::write(dir.path().join("k.img"), &data).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("tftpd.log");
    let (mut srv, port) = spawn_with(
        &dir,
        &[
            "127.0.0.1",
            "0",
            "--loss",
            "5",
            "--seed",
            "3",
            "--ack-timeout",
            "0.1",
        ],
        Some(&log),
    );
    srv.wait_line(|l| l == "Faults on purpose: 5% of packets lost (--seed 3 repeats them)");
    let out = logs.path().join("out");
    // curl without options keeps the server's 0.1 s retransmit interval (its own
    // `timeout` option would ask for 6 s). Twice: the same seed loses the same packets.
    for _ in 0..2 {
        assert!(curl(&[
            "--tftp-no-options",
            "-o",
            out.to_str().unwrap(),
            &format!("tftp://127.0.0.1:{port}/k.img"),
        ]));
        assert!(std::fs::read(&out).unwrap() == data);
    }
    let status = command("tftp")
        .args([
            "-m",
            "binary",
            "127.0.0.1",
            &port.to_string(),
            "-c",
            "get",
            "k.img",
            "hpa",
        ])
        .current_dir(logs.path())
        .status()
        .expect("tftp-hpa's client runs");
    assert!(status.success());
    assert!(std::fs::read(logs.path().join("hpa")).unwrap() == data);
    let text = wait_file(&log, |t| retransmits(t, "k.img").len() == 3);
    let counts = retransmits(&text, "k.img");
    assert!(counts.iter().all(|&n| n >= 1), "{text}");
    assert_eq!(
        counts[0], counts[1],
        "the same seed, the same losses: {text}"
    );
}

#[test]
fn a_window_acknowledged_in_part_counts_its_resent_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(4096);
    std::fs::write(dir.path().join("w.img"), &data).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("tftpd.log");
    let (_srv, port) = spawn_with(&dir, &["127.0.0.1", "0"], Some(&log));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.send_to(
        b"\0\x01w.img\0octet\0blksize\x00512\0windowsize\x004\0",
        ("127.0.0.1", port),
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let (_, server) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(buf[1], 6, "an OACK");
    sock.send_to(&[0, 4, 0, 0], server).unwrap();
    // Blocks 1 to 4 come; the client says it has only 1 and 2 (as atftp does after a gap).
    let mut got = Vec::new();
    for want in 1..=4u8 {
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 3, 0, want]);
        if want <= 2 {
            got.extend_from_slice(&buf[4..n]);
        }
    }
    sock.send_to(&[0, 4, 0, 2], server).unwrap();
    // Then the window starts again at 3: 3 to 6, then 7 to 9 (block 9 is empty).
    let mut next = 3u8;
    while next <= 9 {
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 3, 0, next]);
        got.extend_from_slice(&buf[4..n]);
        if next == 6 || next == 9 {
            sock.send_to(&[0, 4, 0, next], server).unwrap();
        }
        next += 1;
    }
    assert!(got == data);
    let text = wait_file(&log, |t| retransmits(t, "w.img").len() == 1);
    assert_eq!(retransmits(&text, "w.img"), [2], "{text}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn delay_holds_each_packet_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(2000);
    std::fs::write(dir.path().join("small.img"), &data).unwrap();
    let (mut srv, port) = spawn(&dir, &["127.0.0.1", "0", "--delay", "50ms"]);
    srv.wait_line(|l| l == "Faults on purpose: 50ms before each packet");
    let out = dir.path().join("out");
    let started = Instant::now();
    assert!(curl(&[
        "--tftp-no-options",
        "-o",
        out.to_str().unwrap(),
        &format!("tftp://127.0.0.1:{port}/small.img"),
    ]));
    // Four DATA packets of 512 bytes, each held back 50 ms.
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(std::fs::read(&out).unwrap() == data);
}

#[test]
fn slow_transfers_are_warned_of_with_slow() {
    let dir = root();
    let (mut srv, port) = spawn(&dir, &["--slow", "1ms"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let got = runtime
        .block_on(common::tftp::read(server, "zImage", &[]))
        .expect("the read completes");
    assert_eq!(got.data.len(), 200_000);
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(10)), Some(0));
    let log = srv.stderr();
    let warned = log
        .lines()
        .find(|l| l.contains("read \"zImage\": slow,"))
        .unwrap_or_else(|| panic!("no warning of the slow transfer:\n{log}"));
    assert!(
        warned.contains("WARN") && warned.contains("(--slow 0.001s)"),
        "{warned}"
    );
}
