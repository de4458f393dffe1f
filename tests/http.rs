//! The file server over real sockets: a real HTTP client (reqwest) or raw requests
//! against an in-process server bound to 127.0.0.1:0.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, client, get_text, get_with, pattern, raw, read_response};
use reqwest::StatusCode;
use reqwest::header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn get_returns_the_file_with_its_headers() {
    let srv = TestServer::start().await;
    let data = pattern(100_000);
    srv.put("fw_update.img", &data);
    let resp = client()
        .get(srv.url("/fw_update.img"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h[header::CONTENT_LENGTH], "100000");
    assert_eq!(h[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert!(h[header::ETAG].to_str().unwrap().starts_with('"'));
    assert!(h.contains_key(header::LAST_MODIFIED));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);
}

#[tokio::test]
async fn a_folder_without_a_favicon_gets_labservs_and_one_with_its_own_keeps_it() {
    let srv = TestServer::start().await;
    let resp = client().get(srv.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
    assert!(
        resp.bytes()
            .await
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );
    let head = client().head(srv.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // Only that name: another missing file is still a 404.
    let other = client()
        .get(srv.url("/icons/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    srv.put("favicon.ico", b"the lab's own icon");
    let own = client().get(srv.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(own.bytes().await.unwrap().as_ref(), b"the lab's own icon");
}

#[tokio::test]
async fn large_files_stream_byte_identical() {
    let srv = TestServer::start().await;
    let data = pattern(24 * 1024 * 1024 + 17);
    srv.put("kernel.bin", &data);
    let body = client()
        .get(srv.url("/kernel.bin"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), data.len());
    assert!(body.as_ref() == &data[..], "streamed bytes differ");
}

#[tokio::test]
async fn head_sends_headers_without_body() {
    let srv = TestServer::start().await;
    srv.put("a.bin", &pattern(5000));
    let resp = raw(
        srv.addr,
        b"HEAD /a.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length").as_deref(), Some("5000"));
    assert!(resp.body.is_empty(), "HEAD must not send a body");
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"x");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let resp = client()
            .request(method.parse().unwrap(), srv.url("/a.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
    }
}

#[tokio::test]
async fn broken_ota_clients_are_served() {
    let srv = TestServer::start().await;
    srv.put("fw.img", b"firmware v2");
    srv.put("sub/fw.img", b"firmware v2");
    for (request, status_line) in [
        // Absolute URL in the request line, as some OTA clients send.
        (
            &b"GET http://10.0.0.2:8080/fw.img HTTP/1.1\r\nHost: 10.0.0.2:8080\r\nConnection: close\r\n\r\n"[..],
            "HTTP/1.1 200",
        ),
        // HTTP/1.0 without Host.
        (b"GET /fw.img HTTP/1.0\r\n\r\n", "HTTP/1.0 200"),
        // HTTP/1.1 without Host.
        (b"GET /fw.img HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 200"),
        // No leading slash, as python's http.server serves it.
        (b"GET fw.img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200"),
        // ... and so are a directory and a query.
        (b"GET sub/fw.img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200"),
        (b"GET fw.img?v=2 HTTP/1.0\r\n\r\n", "HTTP/1.0 200"),
    ] {
        let resp = raw(srv.addr, request).await;
        let line = String::from_utf8_lossy(request).lines().next().unwrap_or("").to_string();
        assert!(resp.head.starts_with(status_line), "{line}: {}", resp.head);
        assert_eq!(resp.body, b"firmware v2", "{line}");
    }
}

/// A body left unread by an early answer (405: no uploads) is still body when hyper reads
/// the rest of it after the answer: the leading-slash repair must not touch it, or the
/// byte it adds pushes the request after it out of line.
#[tokio::test]
async fn an_unread_body_is_not_taken_for_a_request_head() {
    let srv = TestServer::start().await;
    srv.put("fw.img", b"firmware v2");
    let head = b"PUT /x.img HTTP/1.1\r\nHost: x\r\nContent-Length: 6000\r\n\r\n";
    // What the connection's first read takes in ends inside the body; the rest of it
    // comes in the read after the answer, and looks like a request line.
    let mut body = vec![b'a'; 4096 - head.len()];
    body.extend_from_slice(b"X yz");
    body.resize(6000, b'z');
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(b"GET /fw.img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(&bytes).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got))
        .await
        .expect("the server closes after the second answer")
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    let statuses: Vec<_> = got
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &got[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["405", "200"], "{got}");
    assert!(got.ends_with("firmware v2"), "{got}");
}

/// A client still sending a body the server has already refused (405 here; 401 and 413
/// alike) reads the whole answer and then the end of the stream, never a reset.
#[tokio::test]
async fn a_refused_body_still_arriving_does_not_reset_the_answer() {
    let srv = TestServer::start().await;
    let conn = TcpStream::connect(srv.addr).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    let len = 32 << 20;
    let head = format!("PUT /fw.img HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    tx.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..len / chunk.len() {
            if tx.write_all(&chunk).await.is_err() {
                return false;
            }
        }
        true
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rx.read_to_end(&mut got))
        .await
        .expect("the server closes within 10 s");
    let got = String::from_utf8_lossy(&got);
    assert!(read.is_ok(), "{read:?} after {got:?}");
    assert!(got.starts_with("HTTP/1.1 405"), "{got}");
    sender.abort();
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"first");
    srv.put("b.txt", b"second");
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    for (path, want) in [
        ("/a.txt", "first"),
        ("/b.txt", "second"),
        ("/a.txt", "first"),
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.write_all(req.as_bytes()).await.unwrap();
        let resp = read_response(&mut conn)
            .await
            .expect("response on the same connection");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, want.as_bytes());
    }
}

#[tokio::test]
async fn http2_prior_knowledge_is_served_on_the_same_port() {
    let srv = TestServer::start().await;
    let data = pattern(300_000);
    srv.put("img.bin", &data);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let resp = h2.get(srv.url("/img.bin")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);
    // And HTTP/1.1 still works on the same listener.
    let resp = client().get(srv.url("/img.bin")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl; bash scripts/test runs it"]
async fn directory_without_slash_redirects_keeping_the_query() {
    let srv = TestServer::start().await;
    srv.put("images/a.bin", b"a");
    let resp = client()
        .get(srv.url("/images?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(resp.headers()[header::LOCATION], "./images/?format=json");
    // A folder named like a host is never a redirect to that host (`//evil.example/`).
    srv.put("evil.example/x", b"x");
    let resp = client()
        .get(srv.url("//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(resp.headers()[header::LOCATION], "./evil.example/");
    let url = srv.url("//evil.example");
    // curl blocks: off the runtime that serves.
    let followed = tokio::task::spawn_blocking(move || {
        common::command("curl")
            .args(["-s", "-L", "--noproxy", "*", "-o", "/dev/null"])
            .args(["-w", "%{url_effective}", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let landed = String::from_utf8_lossy(&followed.stdout);
    assert!(landed.starts_with(&srv.url("/")), "{landed}");
}

#[tokio::test]
async fn index_html_is_served_for_a_directory() {
    let srv = TestServer::start().await;
    srv.put("site/index.html", b"<h1>hello</h1>");
    srv.put("site/other.txt", b"x");
    let resp = client().get(srv.url("/site/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(resp.text().await.unwrap(), "<h1>hello</h1>");
}

#[tokio::test]
async fn html_listing_is_sorted_with_sizes_and_escaped_links() {
    let srv = TestServer::start().await;
    srv.put("b.img", &[0; 1234]);
    srv.put("A.img", &[0; 10]);
    srv.put("c d<x>.bin", b"12345");
    srv.put("sub/inner", b"");
    let resp = client().get(srv.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let html = resp.text().await.unwrap();
    let pos = |s: &str| {
        html.find(s)
            .unwrap_or_else(|| panic!("{s} missing from\n{html}"))
    };
    // Directories first, then the files by name.
    assert!(pos(">sub/<") < pos(">A.img<"));
    assert!(pos(">A.img<") < pos(">b.img<"));
    assert!(pos(">b.img<") < pos(">c d&lt;x&gt;.bin<"));
    assert!(html.contains("href=\"c%20d%3Cx%3E.bin\""), "{html}");
    // Sizes for people, exact bytes on hover.
    assert!(
        html.contains("title=\"1234 bytes\">1.2 KiB<"),
        "size missing: {html}"
    );
    assert!(html.contains("href=\"sub/\""));
    // Sorting and checksums are the page's buttons, not links a crawler would follow.
    assert!(!html.contains("href=\"?"), "{html}");
    assert!(!html.contains("?sha256\""), "{html}");
    assert!(html.contains("data-q=\"?sort=size\""), "{html}");
    assert!(html.contains("data-f=\"b.img\""), "{html}");
}

#[tokio::test]
async fn json_listing_by_accept_header_or_query() {
    let srv = TestServer::start().await;
    srv.put("fw/b.img", &[1; 300]);
    srv.put("fw/a.img", &[1; 200]);
    srv.put("fw/dir/x", b"");
    let by_accept = get_with(
        &client(),
        srv.url("/fw/"),
        header::ACCEPT,
        "application/json",
    )
    .await;
    assert_eq!(
        by_accept.headers()[header::CONTENT_TYPE],
        "application/json"
    );
    let by_query = client()
        .get(srv.url("/fw/?format=json"))
        .send()
        .await
        .unwrap();
    for resp in [by_accept, by_query] {
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["path"], "/fw/");
        let names: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a.img", "b.img", "dir"]);
        assert_eq!(v["entries"][0]["size"], 200);
        assert_eq!(v["entries"][0]["type"], "file");
        assert_eq!(v["entries"][2]["type"], "dir");
        assert!(v["entries"][0]["modified"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn files_dated_before_1970_are_served_and_listed() {
    // A board without a clock, or an old tarball, leaves files dated before 1970.
    let srv = TestServer::start().await;
    let path = srv.put("old/ancient.img", b"from the sixties");
    let sixties = std::time::UNIX_EPOCH - Duration::from_secs(315_619_200); // 1960-01-01
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(sixties)
        .unwrap();
    let c = client();
    let resp = c.get(srv.url("/old/ancient.img")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // No HTTP date can say 1960: the ETag alone tells versions apart.
    assert!(resp.headers().get(header::LAST_MODIFIED).is_none());
    let etag = resp.headers()[header::ETAG].clone();
    assert_eq!(resp.text().await.unwrap(), "from the sixties");
    let again = get_with(
        &c,
        srv.url("/old/ancient.img"),
        header::IF_NONE_MATCH,
        etag.to_str().unwrap(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let html = get_text(&c, srv.url("/old/")).await;
    assert!(
        html.contains("<time datetime=\"1960-01-01T00:00:00Z\">1960-01-01</time>"),
        "{html}"
    );
    let json: serde_json::Value = c
        .get(srv.url("/old/?format=json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["entries"][0]["modified"], "1960-01-01T00:00:00Z");
}

#[tokio::test]
async fn single_and_suffix_ranges() {
    let srv = TestServer::start().await;
    let data = pattern(10_000);
    srv.put("f.bin", &data);
    let c = client();
    let resp = get_with(&c, srv.url("/f.bin"), header::RANGE, "bytes=100-199").await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes 100-199/10000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[100..200]);

    let resp = get_with(&c, srv.url("/f.bin"), header::RANGE, "bytes=-500").await;
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        "bytes 9500-9999/10000"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[9500..]);

    let resp = get_with(&c, srv.url("/f.bin"), header::RANGE, "bytes=9000-").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[9000..]);
}

#[tokio::test]
async fn ranges_on_a_large_streamed_file() {
    let srv = TestServer::start().await;
    let data = pattern(3 * 1024 * 1024);
    srv.put("big.bin", &data);
    let resp = get_with(
        &client(),
        srv.url("/big.bin"),
        header::RANGE,
        "bytes=1000000-2999999",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &data[1_000_000..3_000_000]
    );
}

/// Splits a multipart/byteranges body into (Content-Range, bytes) parts.
fn parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("\r\n--{boundary}");
    let text = body;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest
        .windows(delim.len())
        .position(|w| w == delim.as_bytes())
    {
        rest = &rest[start + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        rest = &rest[head_end + 4..];
        let next = rest
            .windows(delim.len())
            .position(|w| w == delim.as_bytes())
            .unwrap();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_string();
        out.push((range, rest[..next].to_vec()));
        rest = &rest[next..];
    }
    out
}

#[tokio::test]
async fn multiple_ranges_come_as_multipart_byteranges() {
    for size in [5000, 200_000] {
        let srv = TestServer::start().await;
        let data = pattern(size);
        srv.put("f.bin", &data);
        let resp = get_with(
            &client(),
            srv.url("/f.bin"),
            header::RANGE,
            "bytes=0-9, 4000-4099, -5",
        )
        .await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let boundary = ct
            .strip_prefix("multipart/byteranges; boundary=")
            .expect("multipart content type");
        let declared: usize = resp.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len(), declared);
        let got = parts(&body, boundary);
        assert_eq!(
            got,
            vec![
                (format!("bytes 0-9/{size}"), data[0..10].to_vec()),
                (format!("bytes 4000-4099/{size}"), data[4000..4100].to_vec()),
                (
                    format!("bytes {}-{}/{size}", size - 5, size - 1),
                    data[size - 5..].to_vec()
                ),
            ]
        );
    }
}

#[tokio::test]
async fn unsatisfiable_range_gets_416_with_length() {
    let srv = TestServer::start().await;
    srv.put("f.bin", &pattern(1000));
    let resp = get_with(
        &client(),
        srv.url("/f.bin"),
        header::RANGE,
        "bytes=1000-2000",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes */1000");
}

#[tokio::test]
async fn if_range_honours_the_range_only_for_the_same_version() {
    let srv = TestServer::start().await;
    let data = pattern(2000);
    srv.put("f.bin", &data);
    let c = client();
    let first = c.get(srv.url("/f.bin")).send().await.unwrap();
    let etag = first.headers()[header::ETAG].clone();
    let modified = first.headers()[header::LAST_MODIFIED].clone();
    for validator in [etag, modified] {
        let resp = c
            .get(srv.url("/f.bin"))
            .header(header::RANGE, "bytes=1000-")
            .header(header::IF_RANGE, validator)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[1000..]);
    }
    let resp = c
        .get(srv.url("/f.bin"))
        .header(header::RANGE, "bytes=1000-")
        .header(header::IF_RANGE, "\"some-other-version\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "changed file: whole body");
    assert_eq!(resp.bytes().await.unwrap().len(), 2000);
}

#[tokio::test]
async fn conditional_requests_get_304_until_the_file_changes() {
    let srv = TestServer::start().await;
    let path = srv.put("f.txt", b"version one");
    let c = client();
    let first = c.get(srv.url("/f.txt")).send().await.unwrap();
    let etag = first.headers()[header::ETAG].clone();
    let modified = first.headers()[header::LAST_MODIFIED].clone();

    let resp = c
        .get(srv.url("/f.txt"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[header::ETAG], etag);
    let resp = c
        .get(srv.url("/f.txt"))
        .header(header::IF_MODIFIED_SINCE, modified)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    // A new version (different size) is a new ETag: served in full.
    std::fs::write(&path, b"version two, longer").unwrap();
    let resp = c
        .get(srv.url("/f.txt"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "version two, longer");
}

#[tokio::test]
async fn a_rewritten_file_is_served_fresh_every_time() {
    let srv = TestServer::start().await;
    let path = srv.put("manifest.txt", b"v1");
    let c = client();
    for version in ["v2", "v3", "v4"] {
        std::fs::write(&path, version).unwrap();
        let body = get_text(&c, srv.url("/manifest.txt")).await;
        assert_eq!(body, version);
    }
    // Replaced by rename, as build scripts do.
    let tmp = srv.put("manifest.tmp", b"v5");
    std::fs::rename(tmp, &path).unwrap();
    let body = get_text(&c, srv.url("/manifest.txt")).await;
    assert_eq!(body, "v5");
}

#[tokio::test]
async fn content_types_come_from_the_builtin_table() {
    let srv = TestServer::start().await;
    for (name, want) in [
        ("notes.txt", "text/plain; charset=utf-8"),
        ("page.html", "text/html; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("photo.png", "image/png"),
        ("fw_update.img", "application/octet-stream"),
        ("blob.zzz-unknown", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ] {
        srv.put(name, b"x");
        let resp = client()
            .get(srv.url(&format!("/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], want, "{name}");
    }
}

#[tokio::test]
async fn missing_files_get_404() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"x");
    for path in ["/nope.img", "/a.txt/inside", "/no/such/dir/"] {
        let resp = client().get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn traversal_attempts_never_reach_outside_the_root() {
    let srv = TestServer::start().await;
    srv.put("ok.txt", b"inside");
    // A secret next to the served directory.
    std::fs::write(srv.dir.path().join("secret.txt"), b"TOP-SECRET").unwrap();
    let secret = srv.dir.path().join("secret.txt");
    let absolute = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        secret.display()
    );
    let attempts: Vec<Vec<u8>> = vec![
        b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /%2E%2E%2Fsecret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /ok.txt/../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /..%5csecret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /ok.txt%00../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET http://x/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        absolute.into_bytes(),
    ];
    for req in attempts {
        let resp = raw(srv.addr, &req).await;
        let line = String::from_utf8_lossy(&req)
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(
            matches!(resp.status, 400 | 404),
            "{line}: status {}",
            resp.status
        );
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("TOP-SECRET"),
            "{line} leaked the secret"
        );
    }
    // The server is still fine.
    let resp = raw(
        srv.addr,
        b"GET /ok.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.body, b"inside");
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_are_followed_unless_told_otherwise() {
    use std::os::unix::fs::symlink;
    for follow in [true, false] {
        let srv = TestServer::start_with(|c| c.follow_symlinks = follow).await;
        let outside = srv.dir.path().join("build");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("out.img"), b"built elsewhere").unwrap();
        srv.put("real.img", b"real");
        symlink(outside.join("out.img"), srv.root().join("latest.img")).unwrap();
        symlink(srv.root().join("real.img"), srv.root().join("alias.img")).unwrap();
        symlink(&outside, srv.root().join("builddir")).unwrap();

        let c = client();
        let alias = c.get(srv.url("/alias.img")).send().await.unwrap();
        assert_eq!(
            alias.text().await.unwrap(),
            "real",
            "inside links always work"
        );
        let latest = c.get(srv.url("/latest.img")).send().await.unwrap();
        let via_dir = c.get(srv.url("/builddir/out.img")).send().await.unwrap();
        if follow {
            assert_eq!(latest.text().await.unwrap(), "built elsewhere");
            assert_eq!(via_dir.text().await.unwrap(), "built elsewhere");
        } else {
            assert_eq!(latest.status(), StatusCode::NOT_FOUND);
            assert_eq!(via_dir.status(), StatusCode::NOT_FOUND);
        }
    }
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"x");
    let big = "a".repeat(70 * 1024);
    let req = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let resp = raw(srv.addr, req.as_bytes()).await;
    assert_eq!(resp.status, 431);
    // Large but allowed headers still work.
    let ok = "a".repeat(30 * 1024);
    let req = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: {ok}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(srv.addr, req.as_bytes()).await.status, 200);
}

/// Like nginx, the head's size is the limit, not its number of headers: 101 small headers
/// (700 bytes), and as many of the shortest kind as fit 64 KiB, are served.
#[tokio::test]
async fn many_headers_within_the_size_limit_are_served() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"x");
    let head = |headers: String| {
        format!("GET /a.txt HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n")
    };
    let some: String = (0..101).map(|i| format!("X-{i}: a\r\n")).collect();
    let resp = raw(srv.addr, head(some).as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    let fill = "a:\r\n".repeat(60 * 1024 / 4);
    let resp = raw(srv.addr, head(fill).as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    // Past the size, still 431.
    let over = "a:\r\n".repeat(70 * 1024 / 4);
    assert_eq!(raw(srv.addr, head(over).as_bytes()).await.status, 431);
}

#[tokio::test]
async fn a_uri_too_long_gets_414_and_the_server_goes_on() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"x");
    let long = "a".repeat(100 * 1024);
    let req = format!("GET /{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let resp = raw(srv.addr, req.as_bytes()).await;
    assert_eq!(resp.status, 414, "{}", resp.head);
    // Long but allowed: an ordinary 404.
    let long = "a".repeat(20 * 1024);
    let req = format!("GET /{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(srv.addr, req.as_bytes()).await.status, 404);
    let req = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(srv.addr, req).await.status, 200);
}

#[tokio::test]
async fn slowloris_does_not_block_others_and_is_dropped() {
    let srv =
        TestServer::start_with(|c| c.http.limits.header_timeout = Duration::from_millis(300)).await;
    srv.put("a.txt", b"still served");
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    let slow_since = Instant::now();
    slow.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();

    let start = Instant::now();
    let resp = client().get(srv.url("/a.txt")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "still served");
    assert!(start.elapsed() < Duration::from_secs(1));

    // The slow client is cut off once its headers are overdue.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("slow connection closed by the server")
        .unwrap_or(0);
    assert_eq!(n, 0, "no response for an unfinished request");
    let waited = slow_since.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "dropped after {waited:?}, header timeout 300 ms"
    );
}

#[tokio::test]
async fn a_client_silent_after_connecting_then_slow_to_send_is_served() {
    let srv = TestServer::start().await;
    srv.put("a.txt", b"served late");
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    // Longer than the kernel holds a silent connection back from the server (about 1 s),
    // then the head in two parts: the server must wait for each, not give up or spin.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    conn.write_all(b"GET /a.txt HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(b"st: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let resp = read_response(&mut conn).await.expect("a response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"served late");
    // At once, not when some timer next happens to look at the connection.
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_closes_its_sending_side_still_gets_a_whole_download() {
    // The watchdog looks at a running request at least every 300 ms here.
    let srv =
        TestServer::start_with(|c| c.http.limits.header_timeout = Duration::from_millis(300)).await;
    let data = pattern(4 * 1024 * 1024);
    srv.put("big.bin", &data);
    // As `nc -N` does: the request, then the sending side shut, then a read to the end.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut conn = socket.connect(srv.addr).await.unwrap();
    conn.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
    // Read at about 3 MB/s, so the download lasts over a second, several of the
    // watchdog's looks, with bytes moving all along.
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let start = Instant::now();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .expect("the download goes on")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(got.len() - head_end, data.len(), "the whole file");
    assert!(got[head_end..] == data[..]);
    assert!(
        start.elapsed() > Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn idle_keep_alive_outlives_the_header_timeout_then_closes() {
    let srv = TestServer::start_with(|c| {
        c.http.limits.header_timeout = Duration::from_millis(200);
        c.http.limits.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    srv.put("a.txt", b"x");
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut conn).await.unwrap().status, 200);
    let idle_since = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("idle connection closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(1400),
        "closed after {idle:?}: an idle keep-alive connection is not a slow request"
    );
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_starve_a_new_client() {
    let _ = rlimit::increase_nofile_limit(4096);
    let srv = TestServer::start().await;
    srv.put("a.txt", b"served");
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    let start = Instant::now();
    let resp = client().get(srv.url("/a.txt")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "served");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn shutdown_lets_a_running_download_finish_and_refuses_new_ones() {
    let srv = TestServer::start().await;
    let data = pattern(16 * 1024 * 1024);
    srv.put("big.bin", &data);
    let mut resp = client().get(srv.url("/big.bin")).send().await.unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    let addr = srv.addr;
    let stopping = tokio::spawn(srv.stop());
    let mut got = first.to_vec();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == data, "download cut short by shutdown");
    stopping.await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn shutdown_cuts_stalled_responses_after_the_drain_limit() {
    let srv = TestServer::start_with(|c| c.http.limits.drain = Duration::from_millis(300)).await;
    srv.put("big.bin", &pattern(64 * 1024 * 1024));
    // A client that asks and then never reads.
    let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    stalled.read_exact(&mut byte).await.unwrap();
    let start = Instant::now();
    srv.stop().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}

/// Small writes (a streamed app's chunks, HTTP/2 frames, TLS records) go out at once
/// rather than waiting on the client's delayed ACK: every connection is accepted with
/// TCP_NODELAY, which the kernel copies from the listening socket.
#[tokio::test]
async fn connections_are_accepted_without_nagles_delay() {
    let (_dir, root) = common::fresh_root("www");
    common::put(&root, "a.txt", b"a");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let same_socket = listener.try_clone().unwrap();
    assert!(!socket2::SockRef::from(&same_socket).tcp_nodelay().unwrap());
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let shutdown = labserv::Shutdown::new();
    let config = labserv::http::HttpConfig::new(&root);
    let task = tokio::spawn(labserv::http::serve(
        listener,
        config,
        None,
        shutdown.clone(),
    ));
    let resp = raw(
        addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(socket2::SockRef::from(&same_socket).tcp_nodelay().unwrap());
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_missing_root_is_an_error_not_a_panic() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = labserv::http::HttpConfig::new("/definitely/not/here");
    let err = labserv::http::serve(listener, config, None, labserv::Shutdown::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot serve /definitely/not/here: no such directory"
    );
    assert_eq!(err.exit_code(), 1);
}

/// Runs a client program to completion; returns its exit code.
async fn run(program: &str, args: &[&str]) -> Option<i32> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let status = tokio::time::timeout(Duration::from_secs(60), cmd.status())
        .await
        .expect("client finishes within 60 s")
        .unwrap_or_else(|e| panic!("{program} could not run: {e} (is it installed?)"));
    status.code()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl and wget; bash scripts/test runs it"]
async fn interrupted_downloads_resume_byte_identical_with_curl_and_wget() {
    let srv = TestServer::start().await;
    let data = pattern(6 * 1024 * 1024 + 321);
    srv.put("fw_update.img", &data);
    let url = srv.url("/fw_update.img");
    let out = srv.dir.path().join("curl.img");
    let out_s = out.to_str().unwrap();

    // A download that stops part-way, as when a board loses its link: read some of the
    // body, keep it in the output file, drop the connection.
    let mut resp = client().get(&url).send().await.unwrap();
    let mut partial = Vec::new();
    while partial.len() < 1_000_000 {
        partial.extend_from_slice(&resp.chunk().await.unwrap().expect("more body"));
    }
    drop(resp);
    assert!(partial.len() < data.len());
    std::fs::write(&out, &partial).unwrap();

    assert_eq!(
        run("curl", &["-s", "-C", "-", "-o", out_s, &url]).await,
        Some(0)
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "curl -C - result differs"
    );

    // wget -c continuing the same kind of partial file.
    let wout = srv.dir.path().join("wget.img");
    std::fs::write(&wout, &data[..1_234_567]).unwrap();
    let wout_s = wout.to_str().unwrap();
    assert_eq!(
        run("wget", &["-q", "-c", "-O", wout_s, &url]).await,
        Some(0)
    );
    assert!(
        std::fs::read(&wout).unwrap() == data,
        "wget -c result differs"
    );
}

#[tokio::test]
async fn a_file_truncated_mid_download_ends_the_response_and_the_next_request_sees_it() {
    let srv = TestServer::start().await;
    let data = pattern(32 * 1024 * 1024);
    let path = srv.put("fw.img", &data);
    let mut resp = client().get(srv.url("/fw.img")).send().await.unwrap();
    let mut got = resp.chunk().await.unwrap().expect("first chunk").to_vec();
    // The build system rewrites the image in place while the board downloads it.
    std::fs::write(&path, b"rebuilt").unwrap();
    let outcome = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // The old length can no longer be honoured: the body must end short, never pad.
    assert!(
        outcome.is_err(),
        "a truncated download must not look complete"
    );
    assert!(got.len() < data.len());
    assert!(
        got[..] == data[..got.len()],
        "bytes sent before the rewrite are the old file's"
    );

    let fresh = client().get(srv.url("/fw.img")).send().await.unwrap();
    assert_eq!(fresh.text().await.unwrap(), "rebuilt");
}

#[tokio::test]
async fn a_client_leaving_mid_download_frees_its_connection() {
    let srv = TestServer::start_with(|c| c.http.limits.drain = Duration::from_millis(500)).await;
    srv.put("big.bin", &pattern(64 * 1024 * 1024));
    for _ in 0..20 {
        let mut conn = TcpStream::connect(srv.addr).await.unwrap();
        conn.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut some = [0u8; 4096];
        conn.read_exact(&mut some).await.unwrap();
        drop(conn);
    }
    // Still serving, and shutdown finds nothing left to wait for.
    srv.put("a.txt", b"ok");
    let resp = client().get(srv.url("/a.txt")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    let start = Instant::now();
    srv.stop().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "abandoned downloads were still held open at shutdown ({:?})",
        start.elapsed()
    );
}

#[tokio::test]
async fn idle_http2_connections_get_the_idle_limit_not_the_header_limit() {
    let srv = TestServer::start_with(|c| {
        c.http.limits.header_timeout = Duration::from_millis(200);
        c.http.limits.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame: a client that connected and waits.
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let since = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // the server's SETTINGS, and its GOAWAY when it closes
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle h2 connection never closed");
    let idle = since.elapsed();
    assert!(
        idle >= Duration::from_millis(1400),
        "closed after {idle:?}: an idle HTTP/2 connection is not a slow request head"
    );
}

/// Drops `len` bytes of `path` at `offset` from the page cache (where the file system
/// lets it), so that a download meets both cached and uncached parts.
fn evict(path: &std::path::Path, offset: i64, len: i64) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: advice on an open descriptor; it changes no memory of this process.
    let rc =
        unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

#[tokio::test]
async fn concurrent_downloads_are_byte_identical_cached_or_not() {
    // Six boards at once, their downloads going out by sendfile where the image is cached
    // and read where it is not; each connection asks three times (keep-alive), the last
    // time for two ranges.
    let srv = TestServer::start().await;
    let data = pattern(9 * 1024 * 1024 + 4321);
    let path = srv.put("rootfs.img", &data);
    let board = |n: usize| {
        let (data, path) = (&data, &path);
        async move {
            let mut conn = TcpStream::connect(srv.addr).await.unwrap();
            for (round, range) in [
                (0, None),
                (1, None),
                (2, Some("bytes=1000-2999999,5000000-")),
            ] {
                // The middle of the image leaves the page cache before each round.
                evict(path, 2 * 1024 * 1024 + 999, 3 * 1024 * 1024);
                let extra = range.map_or_else(String::new, |r| format!("Range: {r}\r\n"));
                let req = format!("GET /rootfs.img HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
                conn.write_all(req.as_bytes()).await.unwrap();
                let resp = read_response(&mut conn).await.expect("a response");
                let what = format!("board {n}, round {round}");
                if range.is_none() {
                    assert_eq!(resp.status, 200, "{what}");
                    assert!(resp.body == *data, "{what}: the bytes differ");
                } else {
                    assert_eq!(resp.status, 206, "{what}");
                    let ct = resp.header("content-type").unwrap();
                    let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
                    let got = parts(&resp.body, &boundary);
                    assert_eq!(got.len(), 2, "{what}");
                    assert!(got[0].1 == data[1000..3_000_000], "{what}: first part");
                    assert!(got[1].1 == data[5_000_000..], "{what}: second part");
                }
            }
        }
    };
    futures_lite::future::zip(
        futures_lite::future::zip(board(0), board(1)),
        futures_lite::future::zip(
            futures_lite::future::zip(board(2), board(3)),
            futures_lite::future::zip(board(4), board(5)),
        ),
    )
    .await;
}

#[tokio::test]
async fn a_file_that_shrinks_during_a_download_ends_it_short() {
    let srv = TestServer::start().await;
    let data = pattern(48 * 1024 * 1024);
    let path = srv.put("update.img", &data);
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(b"GET /update.img HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = vec![0u8; 64 * 1024];
    conn.read_exact(&mut got).await.unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut got))
        .await
        .expect("the connection ends instead of hanging")
        .ok();
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    assert!(
        head.contains(&format!("content-length: {}", data.len())),
        "{head}"
    );
    // The client can tell: fewer bytes than announced, then the end of the connection.
    // (What the kernel already had in hand reflects the file as it now is, as with
    // nginx's sendfile: replace images by renaming a new file over them.)
    let body = &got[head_end..];
    assert!(
        body.len() < data.len(),
        "the whole file cannot have been sent"
    );
    assert!(body[..1000] == data[..1000], "the start is the file's");
}

/// The body of a GET of `url`, as text.
async fn text_of(c: &reqwest::Client, url: String) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn dotfiles_are_hidden_and_refused_unless_asked_for() {
    let srv = TestServer::start().await;
    srv.put(".git/config", b"[core]");
    srv.put(".env", b"TOKEN=secret");
    srv.put("fw.img", b"image");
    let c = client();
    for hidden in ["/.git/config", "/.env", "/.git/", "/%2eenv"] {
        let resp = c.get(srv.url(hidden)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{hidden}");
    }
    let listing = text_of(&c, srv.url("/")).await;
    assert!(listing.contains(">fw.img<"), "{listing}");
    assert!(
        !listing.contains(".git") && !listing.contains(".env"),
        "{listing}"
    );
    let json = text_of(&c, srv.url("/?format=json")).await;
    assert!(!json.contains(".env"), "{json}");

    let open = TestServer::start_with(|c| c.dotfiles = true).await;
    open.put(".env", b"TOKEN=shown");
    let resp = c.get(open.url("/.env")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listing = text_of(&c, open.url("/")).await;
    assert!(listing.contains(">.env<"), "{listing}");
}

#[tokio::test]
async fn from_a_writable_root_files_are_never_sniffed_and_html_runs_sandboxed() {
    let srv = TestServer::start_with(|c| {
        c.uploads = Some(labserv::http::Uploads {
            overwrite: true,
            max_size: 1 << 20,
            cross_site: false,
            min_free: Some(0),
        });
    })
    .await;
    let c = client();
    let resp = c
        .put(srv.url("/page.html"))
        .body("<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c.get(srv.url("/page.html")).send().await.unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["content-security-policy"], "sandbox");
    // No client may write over another upload's temporary file, nor a hidden name.
    for name in ["/.fw.img.41-3.part", "/.ssh/authorized_keys"] {
        let resp = c.put(srv.url(name)).body("x").send().await.unwrap();
        assert!(resp.status().is_client_error(), "{name}: {}", resp.status());
    }
}

/// `--only` and `--hide`: what does not match is neither served nor listed, in HTML or
/// JSON, from the cache or not; folders stay to reach the files, unless hidden.
#[tokio::test]
async fn only_and_hide_keep_names_out_of_listings_and_answers() {
    let srv = TestServer::start_with(|c| {
        c.rules = labserv::http::FileRules::new(
            &["*.img,*.bin".to_string()],
            &["secret*,*.key".to_string()],
            &[],
        )
        .unwrap();
    })
    .await;
    for (name, body) in [
        ("fw.img", "image"),
        ("boards/7/boot.bin", "boot"),
        ("notes.txt", "notes"),
        ("secret-fw.img", "hidden"),
        ("secrets/fw.img", "hidden too"),
        ("tls/server.key", "key"),
    ] {
        srv.put(name, body.as_bytes());
    }
    let c = client();
    let status = |path: &str| {
        let c = c.clone();
        let url = srv.url(path);
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    for (path, want) in [
        ("/fw.img", 200),
        ("/boards/7/boot.bin", 200),
        ("/boards/", 200),
        ("/notes.txt", 404),
        ("/notes.txt?sha256", 404),
        ("/secret-fw.img", 404),
        ("/secrets/fw.img", 404),
        ("/secrets/", 404),
        ("/tls/server.key", 404),
    ] {
        // Twice: the second answer may come from the cache.
        assert_eq!(status(path).await, want, "{path}");
        assert_eq!(status(path).await, want, "{path} again");
    }
    let html = get_text(&c, srv.url("/")).await;
    assert!(
        html.contains("fw.img") && html.contains("boards/"),
        "{html}"
    );
    for hidden in ["notes.txt", "secret-fw.img", "secrets/", "server.key"] {
        assert!(!html.contains(hidden), "{hidden} listed:\n{html}");
    }
    let json = get_text(&c, srv.url("/?format=json")).await;
    assert!(
        json.contains("\"fw.img\"") && !json.contains("notes.txt"),
        "{json}"
    );
}
