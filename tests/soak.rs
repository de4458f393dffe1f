//! Load and soak: the built servers under many clients over loopback, every response
//! checked byte for byte, then their open file descriptors and RSS compared with what
//! they were before the run.
//!
//! Each run is bounded in count and time, and the runs take turns (they measure latency
//! and memory, which a neighbour's load would skew). `cargo test` runs a fiftieth of the
//! load or less;
//! `LABSERV_SOAK=full` (what `bench/soak` sets, with a release build) runs the whole of it:
//! 200,000 HTTP requests over 500 connections, 500 slowloris connections, 200 concurrent
//! 4 MiB TFTP reads, 50,000 echo requests. Every test prints a `SOAK|...` row that
//! `bench/soak` turns into a table.
//!
//! "Before" is measured after a warm-up of the same traffic at the same concurrency (the
//! same number of requests; the TFTP reads twice): a server's first busy moments grow
//! its allocator's arenas and caches to their working size once, which is not a leak. A
//! leak shows as growth between the warmed-up server and the same server after the run.

mod common;

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::tftp::read;
use common::{Running, command, pattern};

const SERV: &str = env!("CARGO_BIN_EXE_serv");
const TFTPD: &str = env!("CARGO_BIN_EXE_tftpd");
const WSGI: &str = env!("CARGO_BIN_EXE_wsgi");

/// How much load: the figures with `LABSERV_SOAK=full`, a tenth otherwise.
struct Scale {
    http_requests: usize,
    http_connections: usize,
    slowloris: usize,
    tftp_reads: usize,
    wsgi_requests: usize,
    wsgi_connections: usize,
}

fn scale() -> Scale {
    if std::env::var("LABSERV_SOAK").is_ok_and(|v| v == "full") {
        Scale {
            http_requests: 200_000,
            http_connections: 500,
            slowloris: 500,
            tftp_reads: 200,
            wsgi_requests: 50_000,
            wsgi_connections: 50,
        }
    } else {
        Scale {
            http_requests: 4_000,
            http_connections: 50,
            slowloris: 200,
            tftp_reads: 6,
            wsgi_requests: 1_000,
            wsgi_connections: 10,
        }
    }
}

/// Open descriptors and resident memory of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    rss_kib: u64,
    threads: usize,
}

fn usage(pid: u32) -> Usage {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    Usage {
        fds,
        rss_kib,
        threads,
    }
}

/// Waits until the server is idle again (at most 20 s), then until its RSS has stopped
/// falling, and measures. Idle means: with `before`, back to its descriptor and thread
/// counts (closed what the clients closed; the file-reading pool lets its threads go
/// after a second without work); without, steady for 1.2 s (a server opens a few
/// descriptors for good on its first requests).
fn settled(pid: u32, before: Option<Usage>) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = usage(pid);
    let mut steady = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = usage(pid);
        steady = if (now.fds, now.threads) == (last.fds, last.threads) {
            steady + 1
        } else {
            0
        };
        let idle = match before {
            Some(b) => now.fds <= b.fds && now.threads <= b.threads,
            None => steady >= 12,
        };
        if idle || Instant::now() >= deadline {
            break;
        }
        last = now;
    }
    // The server hands free memory back after 200 ms of quiet: RSS counts as settled
    // once it has not fallen for half a second (at most 3 s).
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut now = usage(pid);
    let mut flat = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let next = usage(pid);
        flat = if next.rss_kib >= now.rss_kib {
            flat + 1
        } else {
            0
        };
        if flat >= 5 || Instant::now() >= deadline {
            return next;
        }
        now = next;
    }
}

/// The process's mappings holding 1 MiB or more, largest first: where memory sits
/// when a row fails on RSS (the heap, an arena of malloc's, a thread's stack).
fn big_mappings(pid: u32) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut found = Vec::new();
    let mut name = String::new();
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            let kib: u64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            if kib >= 1024 {
                found.push((kib, name.clone()));
            }
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            name = line.to_owned();
        }
    }
    found.sort_by_key(|(kib, _)| std::cmp::Reverse(*kib));
    found
        .iter()
        .map(|(kib, name)| format!("\n  {kib} KiB  {name}"))
        .collect()
}

/// Within 10% (and at least one descriptor of slack, for tiny baselines).
fn fds_limit(before: Usage) -> usize {
    before.fds + (before.fds / 10).max(1)
}

/// Within 4 MiB (or a third, for a big baseline). What the servers hold once idle moves
/// by about 1 MiB from run to run (serv after 200,000 requests: +1.3, +0.2, -0.3 MiB over
/// its idle size); a leak of 20 bytes per request over 200,000 requests fails the row.
/// Until a file-reading thread's exit set off a trim of its own (`memory::
/// pool_thread_exiting`), what those threads freed stayed resident, and serv ended from
/// 1 to 7 MiB up, by chance.
fn rss_limit(before: Usage) -> u64 {
    before.rss_kib + (before.rss_kib / 3).max(4096)
}

/// One row of the report, checked: no errors, no leaks.
struct Row<'a> {
    pid: u32,
    test: &'a str,
    count: u64,
    errors: u64,
    bytes: u64,
    before: Usage,
    after: Usage,
}

impl Row<'_> {
    fn report(&self) {
        println!(
            "SOAK|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.test,
            self.count,
            self.errors,
            self.bytes,
            self.before.fds,
            self.after.fds,
            self.before.rss_kib,
            self.after.rss_kib,
            self.before.threads,
            self.after.threads
        );
        let _ = std::io::stdout().flush();
        assert_eq!(self.errors, 0, "{}: errors", self.test);
        assert!(
            self.after.fds <= fds_limit(self.before),
            "{}: descriptors {} -> {}",
            self.test,
            self.before.fds,
            self.after.fds
        );
        assert!(
            self.after.rss_kib <= rss_limit(self.before),
            "{}: RSS {} KiB -> {} KiB (threads {} -> {}); mappings of 1 MiB or more:{}",
            self.test,
            self.before.rss_kib,
            self.after.rss_kib,
            self.before.threads,
            self.after.threads,
            big_mappings(self.pid)
        );
    }
}

/// One soak run at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The served tree: small files, a 64 MiB image for ranges, and a directory to list.
struct Tree {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    small: Vec<(String, Vec<u8>)>,
    big: Arc<Vec<u8>>,
}

const BIG: usize = 64 * 1024 * 1024;
const RANGE: usize = 1024 * 1024;

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let small: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            let len = 100 + i * 3_271;
            let mut bytes = pattern(len);
            bytes.rotate_left(i);
            (format!("cfg{i:02}.bin"), bytes)
        })
        .collect();
    // Dated an hour back, as images at rest are: serv never caches a file changed within
    // the last second, and the small-file cache must fill during the warm-up, not later.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for (name, bytes) in &small {
        let path = root.join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    let big = pattern(BIG);
    std::fs::write(root.join("rootfs.img"), &big).unwrap();
    Tree {
        _dir: dir,
        root,
        small,
        big: Arc::new(big),
    }
}

/// What one request of the mix asks for.
enum Ask {
    Small(usize),
    Range(usize),
    Listing,
}

/// 88% small files, 10% listings, 2% 1 MiB ranges of the big image.
fn ask(i: usize) -> Ask {
    match i % 50 {
        0 => Ask::Range((i / 50 * 7_919) % (BIG / RANGE)),
        1..=5 => Ask::Listing,
        n => Ask::Small((i + n) % 20),
    }
}

/// Sends requests `from..to` on one keep-alive connection; returns (errors, bytes checked).
async fn http_client(tree: Arc<Tree>, port: u16, from: usize, to: usize) -> (u64, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .http1_only()
        .no_proxy()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (mut errors, mut bytes) = (0u64, 0u64);
    for i in from..to {
        let ok = match ask(i) {
            Ask::Small(n) => {
                let (name, want) = &tree.small[n];
                match client.get(format!("{base}/{name}")).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok_and(|b| b[..] == want[..]),
                    _ => false,
                }
                .then_some(want.len())
            }
            Ask::Range(chunk) => {
                let start = chunk * RANGE;
                let want = &tree.big[start..start + RANGE];
                let range = format!("bytes={start}-{}", start + RANGE - 1);
                match client
                    .get(format!("{base}/rootfs.img"))
                    .header("Range", range)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 206 => r.bytes().await.is_ok_and(|b| b[..] == want[..]),
                    _ => false,
                }
                .then_some(RANGE)
            }
            Ask::Listing => match client.get(format!("{base}/?format=json")).send().await {
                Ok(r) if r.status() == 200 => match r.bytes().await {
                    Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["entries"].as_array().map(|e| e.len()))
                        .filter(|&n| n == tree.small.len() + 1)
                        .map(|_| body.len()),
                    Err(_) => None,
                },
                _ => None,
            },
        };
        match ok {
            Some(n) => bytes += n as u64,
            None => errors += 1,
        }
    }
    (errors, bytes)
}

/// Adds up what the client tasks found: (errors, bytes checked).
async fn tally(tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>) -> (u64, u64) {
    let (mut errors, mut bytes) = (0, 0);
    for task in tasks {
        let (e, b) = task.await.unwrap();
        errors += e;
        bytes += b;
    }
    (errors, bytes)
}

/// Warms the server up with `warm_up` (which must see no errors), measures it idle, runs
/// `run`, and measures it idle again: (errors, bytes checked, before, after).
async fn warm_then_run(
    pid: u32,
    warm_up: impl Future<Output = (u64, u64)>,
    run: impl Future<Output = (u64, u64)>,
) -> (u64, u64, Usage, Usage) {
    let (errors, _) = warm_up.await;
    assert_eq!(errors, 0, "warm-up");
    let before = settled(pid, None);
    let (errors, bytes) = run.await;
    let after = settled(pid, Some(before));
    (errors, bytes, before, after)
}

/// Takes this test's turn, with the descriptors and the scale it needs.
async fn turn() -> (tokio::sync::MutexGuard<'static, ()>, Scale) {
    let turn = ONE_AT_A_TIME.lock().await;
    // 500 keep-alive clients and 500 slowloris sockets in this one process.
    let _ = rlimit::increase_nofile_limit(8192);
    (turn, scale())
}

/// `total` requests of the mix over `connections` concurrent keep-alive connections.
async fn http_load(tree: &Arc<Tree>, port: u16, total: usize, connections: usize) -> (u64, u64) {
    let per = total.div_ceil(connections);
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let from = (c * per).min(total);
            let to = ((c + 1) * per).min(total);
            tokio::spawn(http_client(tree.clone(), port, from, to))
        })
        .collect();
    tally(tasks).await
}

fn spawn_serv(root: &Path, log: &Path) -> (Running, u16) {
    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "-d"]).arg(root).env("LOG", log);
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    (srv, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serv_mixed_load_then_slowloris() {
    let (_turn, scale) = turn().await;
    let tree = Arc::new(tree());
    let log = tree.root.parent().unwrap().join("serv.log");
    let (srv, port) = spawn_serv(&tree.root, &log);
    let pid = srv.child.id();

    let (errors, bytes, before, after) = warm_then_run(
        pid,
        http_load(&tree, port, scale.http_requests, scale.http_connections),
        http_load(&tree, port, scale.http_requests, scale.http_connections),
    )
    .await;
    Row {
        pid,
        test: &format!(
            "serv: mixed GETs over {} keep-alive connections",
            scale.http_connections
        ),
        count: scale.http_requests as u64,
        errors,
        bytes,
        before,
        after,
    }
    .report();

    // Slowloris: connections that start a request and never finish it. A normal client
    // still gets every answer within 100 ms while they hang on.
    let before = settled(pid, None);
    let mut idle = Vec::new();
    for _ in 0..scale.slowloris {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, b"GET /cfg00.bin HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut slow, mut worst, mut bytes) = (0u64, Duration::ZERO, 0u64);
    let probes = 200;
    for i in 0..probes {
        let (name, want) = &tree.small[i % 20];
        let started = Instant::now();
        let body = client
            .get(format!("http://127.0.0.1:{port}/{name}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let took = started.elapsed();
        worst = worst.max(took);
        if body[..] != want[..] || took > Duration::from_millis(100) {
            slow += 1;
        }
        bytes += body.len() as u64;
    }
    println!(
        "slowloris: worst response {worst:?} with {} idle connections",
        idle.len()
    );
    drop(idle);
    drop(client);
    let after = settled(pid, Some(before));
    Row {
        pid,
        test: &format!(
            "serv: {} slowloris connections, answers within 100 ms",
            scale.slowloris
        ),
        count: probes as u64,
        errors: slow,
        bytes,
        before,
        after,
    }
    .report();
}

fn spawn_tftpd(root: &Path, log: &Path) -> (Running, u16) {
    let mut cmd = command(TFTPD);
    // Hundreds of transfers from one address: the per-address cap is for a lab network.
    cmd.args(["127.0.0.1", "0", "--max-per-client", "512", "-d"])
        .arg(root)
        .env("LOG", log);
    let mut srv = Running::spawn(cmd);
    let line = srv.wait_line(|l| l.trim_start().starts_with("tftp://"));
    let port = srv.port_in(&line);
    (srv, port)
}

/// `n` concurrent reads of `file`, half at 512-byte blocks and half at 1468; returns
/// (errors, bytes checked).
async fn tftp_reads(port: u16, file: &str, want: &Arc<Vec<u8>>, n: usize) -> (u64, u64) {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let want = want.clone();
            let file = file.to_string();
            tokio::spawn(async move {
                let blksize = if i % 2 == 0 { "512" } else { "1468" };
                match read(addr, &file, &[("blksize", blksize)]).await {
                    Ok(t) if t.data[..] == want[..] => (0, t.data.len() as u64),
                    _ => (1, 0),
                }
            })
        })
        .collect();
    tally(tasks).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftpd_concurrent_reads_and_a_garbage_flood() {
    let (_turn, scale) = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let image = Arc::new(pattern(4 * 1024 * 1024));
    std::fs::write(root.join("fw.img"), &*image).unwrap();
    let (srv, port) = spawn_tftpd(&root, &dir.path().join("tftpd.log"));
    let pid = srv.child.id();

    let twice = async {
        let (a, b) = tftp_reads(port, "fw.img", &image, scale.tftp_reads).await;
        let (c, d) = tftp_reads(port, "fw.img", &image, scale.tftp_reads).await;
        (a + c, b + d)
    };
    let (errors, bytes, before, after) = warm_then_run(
        pid,
        twice,
        tftp_reads(port, "fw.img", &image, scale.tftp_reads),
    )
    .await;
    Row {
        pid,
        test: &format!("tftpd: {} concurrent 4 MiB reads", scale.tftp_reads),
        count: scale.tftp_reads as u64,
        errors,
        bytes,
        before,
        after,
    }
    .report();

    // The same read alone, then during a flood of garbage datagrams to the listening
    // port (about 20,000 a second, bounded by the transfer): at most 2x slower.
    // Each timed read runs on a single-threaded client of its own, as curl or a board's
    // loader waits for its blocks. Read from this test's two-worker runtime, the same
    // read took anywhere from 40 to 250 ms on the same server, which made the ratio a
    // coin toss; alone on a thread it took 57 to 110 ms, as steady as curl's.
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let timed = |image: Arc<Vec<u8>>| async move {
        tokio::task::spawn_blocking(move || {
            let client = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime");
            let started = Instant::now();
            let t = client
                .block_on(read(addr, "fw.img", &[("blksize", "1468")]))
                .unwrap();
            assert!(t.data[..] == image[..], "byte-identical");
            started.elapsed()
        })
        .await
        .expect("timed read")
    };
    let mut quiet = Vec::new();
    let mut flooded = Vec::new();
    let sent = Arc::new(AtomicU64::new(0));
    for _ in 0..3 {
        quiet.push(timed(image.clone()).await);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100 {
                        let junk = i.to_le_bytes().repeat(1 + (i % 7) as usize);
                        let _ = sock.send_to(&junk, addr);
                        i = i.wrapping_add(1);
                    }
                    sent.fetch_add(100, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        flooded.push(timed(image.clone()).await);
        stop.store(true, Ordering::Relaxed);
        flood.join().unwrap();
    }
    quiet.sort();
    flooded.sort();
    let (q, f) = (quiet[1], flooded[1]);
    // The 2x of the issue holds for the release build that bench/soak runs; a debug build
    // spends several times longer on each junk datagram, so the quick run allows 4x.
    let flood_limit = if cfg!(debug_assertions) { 4.0 } else { 2.0 };
    let ratio = f.as_secs_f64() / q.as_secs_f64();
    println!(
        "flood: median read {q:?} alone, {f:?} during the flood ({ratio:.2}x); {} datagrams",
        sent.load(Ordering::Relaxed)
    );
    let after_flood = settled(pid, None);
    Row {
        pid,
        test: &format!("tftpd: 4 MiB read during a garbage flood, at most {flood_limit}x slower"),
        count: 6,
        errors: u64::from(ratio > flood_limit),
        bytes: 6 * image.len() as u64,
        before: after,
        after: after_flood,
    }
    .report();
}

/// `total` echo requests with bodies over `connections` connections; returns
/// (errors, bytes checked).
async fn echo_load(port: u16, total: usize, connections: usize) -> (u64, u64) {
    let per = total.div_ceil(connections);
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .no_proxy()
                    .build()
                    .unwrap();
                let (mut errors, mut bytes) = (0u64, 0u64);
                for i in (c * per).min(total)..((c + 1) * per).min(total) {
                    let body: String = (0..(i * 37) % 4096)
                        .map(|k| char::from(b'a' + ((i + k) % 26) as u8))
                        .collect();
                    let reply = client
                        .post(format!("http://127.0.0.1:{port}/echo/{i}"))
                        .body(body.clone())
                        .send()
                        .await;
                    let ok = match reply {
                        Ok(r) if r.status() == 200 => {
                            r.json::<serde_json::Value>().await.is_ok_and(|v| {
                                v["body"] == body.as_str()
                                    && v["path"] == format!("/echo/{i}").as_str()
                                    && v["method"] == "POST"
                            })
                        }
                        _ => false,
                    };
                    if ok {
                        bytes += body.len() as u64;
                    } else {
                        errors += 1;
                    }
                }
                (errors, bytes)
            })
        })
        .collect();
    tally(tasks).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsgi_echo_load() {
    let (_turn, scale) = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(WSGI);
    cmd.args(["echo", "0"])
        .env("LOG", dir.path().join("wsgi.log"));
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    let pid = srv.child.id();

    let (errors, bytes, before, after) = warm_then_run(
        pid,
        echo_load(port, scale.wsgi_requests, scale.wsgi_connections),
        echo_load(port, scale.wsgi_requests, scale.wsgi_connections),
    )
    .await;
    Row {
        pid,
        test: &format!(
            "wsgi: echo with bodies over {} connections",
            scale.wsgi_connections
        ),
        count: scale.wsgi_requests as u64,
        errors,
        bytes,
        before,
        after,
    }
    .report();
}
