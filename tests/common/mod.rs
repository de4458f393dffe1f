//! Shared test helpers: an in-process server on port 0, a raw-socket HTTP client for
//! request lines no well-behaved client sends, and a runner for the built binaries.
#![allow(dead_code)] // each test crate uses a different part of this module

pub mod pane;
pub mod tftp;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use labserv::Shutdown;
use labserv::http::HttpConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// An HTTP file server running in this test's runtime; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    shutdown: Shutdown,
    task: Option<JoinHandle<labserv::Result<()>>>,
}

impl TestServer {
    /// Serves a fresh temporary directory (`dir/www`) with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Serves a fresh temporary directory after `tune` adjusts the configuration.
    pub async fn start_with(tune: impl FnOnce(&mut HttpConfig)) -> Self {
        let (dir, root) = fresh_root("www");
        let mut config = HttpConfig::new(&root);
        tune(&mut config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(labserv::http::serve(
            listener,
            config,
            None,
            shutdown.clone(),
        ));
        Self {
            addr,
            dir,
            shutdown,
            task: Some(task),
        }
    }

    /// The served directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// Writes a file below the served directory (creating parents).
    pub fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        put(&self.root(), rel, bytes)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> labserv::Result<()> {
        stop(&self.shutdown, self.task.take()).await
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A fresh temporary directory holding an empty `name` directory to serve.
pub fn fresh_root(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join(name);
    std::fs::create_dir(&root).expect("root dir");
    (dir, root)
}

/// Triggers `shutdown` and waits (at most 10 s) for the server task to return.
pub async fn stop(
    shutdown: &Shutdown,
    task: Option<JoinHandle<labserv::Result<()>>>,
) -> labserv::Result<()> {
    shutdown.trigger();
    let task = task.expect("running");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("server stops within 10 s")
        .expect("server task did not panic")
}

/// Writes `root/rel` (creating parents) and returns its path.
pub fn put(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent dirs");
    }
    std::fs::write(&path, bytes).expect("write file");
    path
}

/// Writes an executable script `dir/name` (mode 755) and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make script executable");
    }
    path
}

/// Deterministic test data that is not all one byte value.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

/// A parsed raw HTTP/1.x response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends `request` as raw bytes on a new connection and reads one response
/// (body by Content-Length, else to end of stream).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    read_response(&mut stream)
        .await
        .expect("a response before the connection closed")
}

/// Reads one response from an open connection; `None` if it closes first.
pub async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let fut = async {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let mut resp = RawResponse {
            status,
            head,
            body: buf[head_end..].to_vec(),
        };
        match resp.header("content-length") {
            Some(len) => {
                let len: usize = len.parse().ok()?;
                while resp.body.len() < len {
                    let mut chunk = vec![0u8; 65536];
                    let n = stream.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        break;
                    }
                    resp.body.extend_from_slice(&chunk[..n]);
                }
            }
            None => {
                stream.read_to_end(&mut resp.body).await.ok()?;
            }
        }
        Some(resp)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("response within 10 s")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP client that does not follow redirects and uses no proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// GETs `url` and returns the body as text.
pub async fn get_text(c: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    c.get(url)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text body")
}

/// GETs `url` with one extra request header.
pub async fn get_with(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    name: reqwest::header::HeaderName,
    value: &str,
) -> reqwest::Response {
    c.get(url)
        .header(name, value)
        .send()
        .await
        .expect("request")
}

/// The environment variables labserv reads; removed from child processes so the
/// developer's or CI's own settings cannot leak into a test.
pub use labserv::settings::VARIABLES as LABSERV_VARS;

/// A command for one of the built binaries, with labserv's variables cleared.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for var in LABSERV_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` to its end and checks that it failed as a user should see a failure:
/// exit `code` and one line on stderr, which it returns.
pub fn fails_in_one_line(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
    err
}

/// The built `serv` on an ephemeral loopback port serving `dir`, with `args` and `env`.
pub fn serv_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Running, u16) {
    let mut cmd = command(env!("CARGO_BIN_EXE_serv"));
    cmd.args(["0", "127.0.0.1", "-d"]).arg(dir).args(args);
    cmd.envs(env.iter().copied());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();
    (srv, port)
}

/// curl with `args`: the response head (lower-cased) and the status code; the body is
/// thrown away.
pub fn curl_head(args: &[&str]) -> (String, u16) {
    let out = command("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text[text.len() - 3..].parse().unwrap();
    (text.to_ascii_lowercase(), code)
}

/// A virtualenv with Flask, Bottle, Django, requests and selenium, made once (under the target
/// directory; the Python package index must be reachable).
pub fn python_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
        let ready = dir.join("labserv-ready-3");
        if !ready.exists() {
            let run = |cmd: &mut Command| {
                let out = cmd.output().expect("python runs");
                assert!(
                    out.status.success(),
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            run(Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&dir));
            run(Command::new(dir.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "flask>=3,<4",
                "bottle>=0.12,<0.14",
                "django>=4.2,<6",
                "requests>=2.28,<3",
                "selenium>=4.10,<5",
            ]));
            std::fs::write(&ready, "").unwrap();
        }
        dir
    })
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A running binary whose stdout lines are collected on a thread.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    sender: mpsc::Sender<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null());
        Self::spawn_as_set(cmd)
    }

    /// As [`Running::spawn`], with a pipe as standard input: what a supervisor or a
    /// Procfile runner gives, never a terminal.
    pub fn spawn_with_stdin(mut cmd: Command) -> (Self, std::process::ChildStdin) {
        cmd.stdin(Stdio::piped());
        let mut running = Self::spawn_as_set(cmd);
        let stdin = running.child.stdin.take().expect("stdin");
        (running, stdin)
    }

    fn spawn_as_set(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn binary");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        forward(stdout, sender.clone());
        Self {
            child,
            lines,
            sender,
            seen: Vec::new(),
        }
    }

    /// Makes [`Running::wait_line`] see stderr lines (the log) as well.
    pub fn with_log_lines(mut self) -> Self {
        let stderr = self.child.stderr.take().expect("stderr");
        forward(stderr, self.sender.clone());
        self
    }

    /// Waits (at most 20 s) for a stdout line matching `pred` and returns it.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no matching line; stdout so far: {:#?}", self.seen),
            }
        }
    }

    /// Reads the port of the first `http://...:PORT/` URL the server prints.
    pub fn wait_port(&mut self) -> u16 {
        let line = self.wait_line(|l| l.trim_start().starts_with("http://"));
        self.port_in(&line)
    }

    /// The port of the URL at the start of a banner line.
    pub fn port_in(&self, line: &str) -> u16 {
        let url = line.split_whitespace().next().expect("url");
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .expect("port in url");
        port.parse().expect("numeric port")
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (at most `limit`) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("process still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote to stderr (after it exited).
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut out = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut out);
        }
        out
    }
}

/// Sends each line of `pipe` to `tx`, on a thread.
fn forward(pipe: impl std::io::Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `http://host:port/path` (no proxy, a connection of its own); returns the status
/// and the body, or 0 and nothing when no answer came.
pub fn http_get(host: &str, port: u16, path: &str) -> (u16, String) {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .expect("an HTTP client")
    });
    match client.get(format!("http://{host}:{port}{path}")).send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls `path` until its content satisfies `pred` (at most 10 s); returns the content.
pub fn wait_file(path: &Path, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if pred(&text) {
            return text;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{} never matched; it holds:\n{text}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
