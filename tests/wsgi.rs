//! The WSGI-style app host over real sockets, with the built-in apps and apps written
//! in a few lines, as a library user would.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{client, get_text, raw};
use labserv::Shutdown;
use labserv::wsgi::{self, BodyIter, Environ, SharedApp, StartResponse, WsgiConfig};
use reqwest::StatusCode;

struct Host {
    addr: SocketAddr,
    shutdown: Shutdown,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn host(app: SharedApp, config: WsgiConfig) -> Host {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(wsgi::serve(listener, app, config, None, shutdown.clone()));
    Host { addr, shutdown }
}

async fn builtin(name: &str) -> Host {
    host(
        wsgi::builtin(name).expect("built-in app"),
        WsgiConfig::default(),
    )
    .await
}

#[tokio::test]
async fn demo_prints_hello_world_and_the_sorted_environ() {
    let h = builtin("demo").await;
    let resp = client()
        .get(format!("http://{}/board/status?rev=2&x=%41", h.addr))
        .header("X-Board", "rev2 'quoted'")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text = resp.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Hello world!");
    assert_eq!(lines[1], "");
    let mut env = BTreeMap::new();
    let mut keys = Vec::new();
    for line in &lines[2..] {
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        keys.push(k.to_string());
        env.insert(k.to_string(), v.to_string());
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "environ sorted by key");
    let want = [
        ("REQUEST_METHOD", "'GET'".to_string()),
        ("PATH_INFO", "'/board/status'".to_string()),
        ("QUERY_STRING", "'rev=2&x=%41'".to_string()),
        ("SCRIPT_NAME", "''".to_string()),
        ("SERVER_PROTOCOL", "'HTTP/1.1'".to_string()),
        ("SERVER_NAME", "'127.0.0.1'".to_string()),
        ("SERVER_PORT", format!("'{}'", h.addr.port())),
        ("REMOTE_ADDR", "'127.0.0.1'".to_string()),
        ("HTTP_X_BOARD", "\"rev2 'quoted'\"".to_string()),
        ("wsgi.url_scheme", "'http'".to_string()),
    ];
    for (k, v) in want {
        assert_eq!(env.get(k), Some(&v), "{k} in:\n{text}");
    }
    assert!(env.contains_key("HTTP_HOST"));
}

#[tokio::test]
async fn hello_greets() {
    let h = builtin("hello").await;
    let resp = client()
        .get(format!("http://{}/", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "Hello, world!\n");
}

#[tokio::test]
async fn echo_answers_with_the_request_as_json() {
    let h = builtin("echo").await;
    let resp = client()
        .post(format!("http://{}/api/report?id=7", h.addr))
        .header("X-Board", "rev2")
        .header("Content-Type", "application/json")
        .body(r#"{"temp": 41}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api/report");
    assert_eq!(v["query"], "id=7");
    assert_eq!(v["headers"]["x-board"], "rev2");
    assert_eq!(v["headers"]["content-type"], "application/json");
    assert_eq!(v["body"], r#"{"temp": 41}"#);
    assert_eq!(v["body_length"], 12);
}

#[tokio::test]
async fn echo_reports_the_headers_the_client_sent_for_a_chunked_body() {
    let h = builtin("echo").await;
    let req = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let resp = raw(h.addr, req).await;
    assert_eq!(resp.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["body"], "hello world");
    assert_eq!(v["body_length"], 11);
    assert_eq!(v["headers"]["transfer-encoding"], "chunked");
    assert!(
        v["headers"].get("content-length").is_none(),
        "no Content-Length was sent: {}",
        v["headers"]
    );
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let config = WsgiConfig {
        max_body: 1000,
        ..Default::default()
    };
    let h = host(wsgi::builtin("echo").unwrap(), config).await;
    let resp = client()
        .post(format!("http://{}/", h.addr))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length the limit applies while reading.
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n".to_vec();
    req.extend_from_slice(&[b'y'; 2000]);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(raw(h.addr, &req).await.status, 413);
    // Within the limit is fine.
    let resp = client()
        .post(format!("http://{}/", h.addr))
        .body(vec![b'x'; 900])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A streaming app written in a few lines: numbered lines, each its own chunk.
fn counter(
    _env: &Environ,
    _input: &mut dyn Read,
    start: &mut StartResponse,
) -> std::io::Result<BodyIter> {
    start.start("200 OK", vec![("Content-Type".into(), "text/plain".into())]);
    Ok(Box::new(
        (0..10_000).map(|i| Ok(Bytes::from(format!("line {i}\n")))),
    ))
}

#[tokio::test]
async fn app_bodies_are_streamed_in_order() {
    let h = host(Arc::new(counter), WsgiConfig::default()).await;
    let text = get_text(&client(), format!("http://{}/", h.addr)).await;
    let want: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    assert!(text == want, "streamed body differs");
}

#[tokio::test]
async fn broken_apps_get_500_and_the_server_keeps_serving() {
    fn fails(_: &Environ, _: &mut dyn Read, _: &mut StartResponse) -> std::io::Result<BodyIter> {
        Err(std::io::Error::other("database unplugged"))
    }
    fn forgets_start(
        _: &Environ,
        _: &mut dyn Read,
        _: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        Ok(wsgi::once("body without a status"))
    }
    fn bad_status(
        _: &Environ,
        _: &mut dyn Read,
        s: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        s.start("OK", vec![]);
        Ok(wsgi::once(""))
    }
    fn bad_header(
        _: &Environ,
        _: &mut dyn Read,
        s: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        s.start("200 OK", vec![("Bad Name".into(), "x".into())]);
        Ok(wsgi::once(""))
    }
    fn panics(_: &Environ, _: &mut dyn Read, _: &mut StartResponse) -> std::io::Result<BodyIter> {
        panic!("app bug")
    }
    let apps: [(&str, SharedApp); 5] = [
        ("fails", Arc::new(fails)),
        ("forgets_start", Arc::new(forgets_start)),
        ("bad_status", Arc::new(bad_status)),
        ("bad_header", Arc::new(bad_header)),
        ("panics", Arc::new(panics)),
    ];
    for (what, app) in apps {
        let h = host(app, WsgiConfig::default()).await;
        for _ in 0..2 {
            let resp = client()
                .get(format!("http://{}/", h.addr))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        }
    }
}

/// An app that answers with `status`, `headers` and `body` as given.
fn fixed(
    status: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> SharedApp {
    Arc::new(
        move |_: &Environ, _: &mut dyn Read, s: &mut StartResponse| -> std::io::Result<BodyIter> {
            s.start(
                status,
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            Ok(Box::new(
                body.as_bytes()
                    .chunks(3)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ))
        },
    )
}

#[tokio::test]
async fn the_validator_turns_app_mistakes_into_500() {
    let cases: [(&str, SharedApp); 5] = [
        ("no Content-Type", fixed("200 OK", &[], "hello")),
        (
            "short body",
            fixed(
                "200 OK",
                &[("Content-Type", "text/plain"), ("Content-Length", "10")],
                "hello",
            ),
        ),
        (
            "long body",
            fixed(
                "200 OK",
                &[("Content-Type", "text/plain"), ("Content-Length", "2")],
                "hello",
            ),
        ),
        (
            "hop-by-hop header",
            fixed(
                "200 OK",
                &[("Content-Type", "text/plain"), ("Connection", "close")],
                "x",
            ),
        ),
        (
            "Content-Type on 304",
            fixed("304 Not Modified", &[("Content-Type", "text/plain")], ""),
        ),
    ];
    for (what, app) in cases {
        let h = host(app, WsgiConfig::default()).await;
        let resp = client()
            .get(format!("http://{}/", h.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        // The server keeps serving.
        let again = client()
            .get(format!("http://{}/", h.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
    }
}

#[tokio::test]
async fn a_correct_content_length_passes_and_no_validate_allows_sloppy_apps() {
    let h = host(
        fixed(
            "200 OK",
            &[("Content-Type", "text/plain"), ("Content-Length", "11")],
            "hello world",
        ),
        WsgiConfig::default(),
    )
    .await;
    let resp = client()
        .get(format!("http://{}/", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "hello world");

    let sloppy = WsgiConfig {
        validate: false,
        ..Default::default()
    };
    let h = host(fixed("200 OK", &[], "no content type"), sloppy).await;
    let resp = client()
        .get(format!("http://{}/", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "no content type");
}

/// An app that promises not to block, and then panics: the inline path must also turn
/// that into a 500 and keep serving.
struct QuickButBuggy;

impl wsgi::App for QuickButBuggy {
    fn call(
        &self,
        env: &Environ,
        _: &mut dyn Read,
        s: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        if env.get("PATH_INFO").map(String::as_str) == Some("/boom") {
            panic!("bug in a quick app");
        }
        s.start("200 OK", vec![("Content-Type".into(), "text/plain".into())]);
        // Which thread ran it: inline, that is the connection's own.
        let thread = std::thread::current().name().unwrap_or("").to_string();
        Ok(wsgi::once(format!("quick on {thread}\n")))
    }

    fn may_block(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn quick_apps_run_inline_and_a_panic_is_still_a_500() {
    let h = host(Arc::new(QuickButBuggy), WsgiConfig::default()).await;
    let boom = client()
        .get(format!("http://{}/boom", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let fine = client()
        .get(format!("http://{}/", h.addr))
        .send()
        .await
        .unwrap();
    // The test's runtime has one thread, this one: an app run on the blocking pool would
    // name another.
    let here = std::thread::current().name().unwrap().to_string();
    assert_eq!(fine.text().await.unwrap(), format!("quick on {here}\n"));
}

/// A device mock with routes: boards keep a status each, set by JSON and read back.
fn board_mock() -> SharedApp {
    use std::sync::Mutex;
    use wsgi::{Reply, Router};
    let boards = Arc::new(Mutex::new(BTreeMap::<String, serde_json::Value>::new()));
    let (read, write) = (boards.clone(), boards);
    Arc::new(
        Router::new()
            .get("/boards/{id}", move |req| {
                let id = req.param("id").unwrap_or_default();
                match read.lock().unwrap().get(id) {
                    Some(status) => Ok(Reply::json(status)),
                    None => Err(Reply::text(404, format!("no board {id}\n"))),
                }
            })
            .put("/boards/{id}", move |req| {
                let status: serde_json::Value = req.json()?;
                let id = req.param("id").unwrap_or_default().to_string();
                write.lock().unwrap().insert(id, status.clone());
                Ok(Reply::json(&status).status(201))
            })
            .get("/files/*", |req| {
                Ok(Reply::text(
                    200,
                    format!("rest={}\n", req.param("*").unwrap()),
                ))
            }),
    )
}

#[tokio::test]
async fn routes_take_json_in_and_out_and_name_their_parameters() {
    let h = host(board_mock(), WsgiConfig::default()).await;
    let url = |path: &str| format!("http://{}{path}", h.addr);
    let put = client()
        .put(url("/boards/7"))
        .body(r#"{"fw": "2.1", "ok": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let got = client().get(url("/boards/7")).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "application/json");
    let got: serde_json::Value = got.json().await.unwrap();
    assert_eq!(got, serde_json::json!({"fw": "2.1", "ok": true}));
    // A handler's Err is an answer too.
    let missing = client().get(url("/boards/8")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await.unwrap(), "no board 8\n");
    // `*` takes the rest of the path.
    assert_eq!(
        get_text(&client(), url("/files/fw/rev2/app.bin")).await,
        "rest=fw/rev2/app.bin\n"
    );
}

#[tokio::test]
async fn routes_refuse_bad_json_an_unknown_method_and_an_unknown_path() {
    let h = host(board_mock(), WsgiConfig::default()).await;
    let url = |path: &str| format!("http://{}{path}", h.addr);
    let bad = client()
        .put(url("/boards/7"))
        .body("fw=2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().starts_with("expected JSON: "));
    // A known path under a method no route takes: 405, saying which it takes.
    let post = client().post(url("/boards/7")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET, HEAD, PUT");
    let head = client().head(url("/files/x")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let unknown = client().get(url("/nothing/here")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
