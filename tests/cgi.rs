//! CGI through the app host: real executables, a real HTTP client.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, script};
use labserv::Shutdown;
use labserv::wsgi::{self, Cgi, Scripts, WsgiConfig};
use reqwest::StatusCode;

struct Host {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    shutdown: Shutdown,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Serves `app` on 127.0.0.1:0; returns the address and the shutdown to stop it.
async fn serve(app: Cgi) -> (SocketAddr, Shutdown) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(wsgi::serve(
        listener,
        Arc::new(app),
        WsgiConfig::default(),
        None,
        shutdown.clone(),
    ));
    (addr, shutdown)
}

async fn cgi_dir(timeout: Duration) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let (addr, shutdown) =
        serve(Cgi::new(Scripts::Dir(dir.path().to_path_buf()), timeout).unwrap()).await;
    Host {
        addr,
        dir,
        shutdown,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_headers_path_info_and_environment() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    script(
        h.dir.path(),
        "info",
        "#!/bin/sh\nprintf 'Status: 201 Created\\r\\nContent-Type: text/plain\\r\\nX-Script: yes\\r\\n\\r\\n'\n\
         echo \"$REQUEST_METHOD $SCRIPT_NAME $PATH_INFO $QUERY_STRING\"\n\
         echo \"secret=${LABSERV_SECRET:-none} path=${PATH:+set}\"\n",
    );
    // Nothing of the server's own environment but PATH reaches a script: any other
    // variable (LABSERV_SECRET stands for all of them) reads as unset.
    let resp = client()
        .get(format!("http://{}/info/a/b?x=1", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["x-script"], "yes");
    let text = resp.text().await.unwrap();
    assert!(text.contains("GET /info /a/b x=1"), "{text}");
    assert!(text.contains("secret=none path=set"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn location_redirects_and_stdin_is_the_body() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    script(
        h.dir.path(),
        "go",
        "#!/bin/sh\nprintf 'Location: /elsewhere\\n\\n'\n",
    );
    script(
        h.dir.path(),
        "cat",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
    );
    let resp = client()
        .get(format!("http://{}/go", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "/elsewhere");
    let body = common::pattern(300_000);
    let resp = client()
        .post(format!("http://{}/cat", h.addr))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_streamed() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    script(
        h.dir.path(),
        "slow",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho first\nsleep 2\necho second\n",
    );
    let start = Instant::now();
    let mut resp = client()
        .get(format!("http://{}/slow", h.addr))
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first\n");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "first line waited for the end"
    );
    let second = resp.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"second\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_script_is_killed_with_504() {
    let h = cgi_dir(Duration::from_millis(300)).await;
    script(h.dir.path(), "hang", "#!/bin/sh\nsleep 30\n");
    let start = Instant::now();
    let resp = client()
        .get(format!("http://{}/hang", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scripts_get_clear_errors() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    script(
        h.dir.path(),
        "garbage",
        "#!/bin/sh\necho 'this is not a header'\necho\necho body\n",
    );
    script(h.dir.path(), "silent", "#!/bin/sh\nexit 0\n");
    std::fs::write(h.dir.path().join("plain.txt"), "not executable").unwrap();
    for (path, want) in [
        ("/garbage", StatusCode::BAD_GATEWAY),
        ("/silent", StatusCode::BAD_GATEWAY),
        ("/plain.txt", StatusCode::FORBIDDEN),
        ("/missing", StatusCode::NOT_FOUND),
        ("/", StatusCode::NOT_FOUND),
    ] {
        let resp = client()
            .get(format!("http://{}{path}", h.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_are_confined_to_their_directory() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    let outside = tempfile::tempdir().unwrap();
    script(
        outside.path(),
        "evil",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nRAN\\n'\n",
    );
    let name = outside
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    for path in [
        format!("/../{name}/evil"),
        format!("/%2e%2e/{name}/evil"),
        "/..%2fevil".to_string(),
    ] {
        let resp = common::raw(
            h.addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("RAN"),
            "{path} ran a script outside"
        );
        assert!(matches!(resp.status, 400 | 404), "{path}: {}", resp.status);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_kills_the_script() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    let pidfile = h.dir.path().join("pid");
    script(
        h.dir.path(),
        "forever",
        &format!(
            "#!/bin/sh\necho $$ > {}\nprintf 'Content-Type: text/plain\\n\\n'\nexec yes\n",
            pidfile.display()
        ),
    );
    let mut resp = client()
        .get(format!("http://{}/forever", h.addr))
        .send()
        .await
        .unwrap();
    resp.chunk().await.unwrap().unwrap();
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    drop(resp);
    wait_ended(&pid, Duration::from_secs(10), "after the client left").await;
}

/// Waits (at most `limit`) until `pid` has ended: gone, or a zombie nobody has reaped yet.
async fn wait_ended(pid: &str, limit: Duration, why: &str) {
    let deadline = Instant::now() + limit;
    while Path::new(&format!("/proc/{pid}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "script {pid} still running {why}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 10 s) for `path` to hold a line, and returns it.
async fn wait_pid(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.ends_with('\n') {
            return text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "the script never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_script_is_killed_when_its_client_leaves() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    let pidfile = h.dir.path().join("pid");
    // Says nothing for 30 s: the client gives up first, as `curl -m 1` does.
    script(
        h.dir.path(),
        "think",
        &format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 30\n",
            pidfile.display()
        ),
    );
    let mut conn = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut conn, b"GET /think HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let pid = wait_pid(&pidfile).await;
    let left = Instant::now();
    drop(conn);
    wait_ended(
        &pid,
        Duration::from_secs(5),
        "after its silent script's client left",
    )
    .await;
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "{:?}",
        left.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl; bash scripts/test runs it"]
async fn chunked_bodies_reach_the_script_whole_with_their_length() {
    let h = cgi_dir(Duration::from_secs(30)).await;
    script(
        h.dir.path(),
        "count",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n\
         echo \"length=$CONTENT_LENGTH te=${HTTP_TRANSFER_ENCODING:-none} got=$(wc -c | tr -d ' ')\"\n",
    );
    // Small, and past the size that spills to a temporary file; curl sends a file with
    // Transfer-Encoding: chunked when told to.
    for len in [5usize, 3 * 1024 * 1024 + 17] {
        let body = h.dir.path().join("body.bin");
        std::fs::write(&body, common::pattern(len)).unwrap();
        let url = format!("http://{}/count", h.addr);
        let out = tokio::task::spawn_blocking(move || {
            common::command("curl")
                .args(["-s", "--noproxy", "*", "-H", "Transfer-Encoding: chunked"])
                .arg("--data-binary")
                .arg(format!("@{}", body.display()))
                .arg(url)
                .output()
                .expect("curl runs")
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("length={len} te=none got={len}\n"),
            "{len} bytes, chunked"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Python 3; bash scripts/test runs it"]
async fn a_python_wsgi_app_runs_through_cgihandler() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wsgi_cgi.py");
    let (addr, shutdown) =
        serve(Cgi::new(Scripts::One(example), Duration::from_secs(30)).unwrap()).await;
    let resp = client()
        .post(format!("http://{addr}/boards/7"))
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        resp.text().await.unwrap(),
        "Hello from Python via CGI: POST /boards/7, 5 bytes\n"
    );
    shutdown.trigger();
}
