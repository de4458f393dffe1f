//! `serv --upload`: PUT and multipart POST through the built binary with curl, and what
//! is left on disk after every way an upload can go wrong.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;

use common::{Running, SmallFs, command, curl_head, names, pattern};

fn serv(dir: &Path, args: &[&str]) -> (Running, u16) {
    common::serv_binary(dir, args, &[])
}

/// Runs curl; returns the body and the status code.
fn curl(args: &[&str]) -> (String, u16) {
    let out = command("curl")
        .args(["-s", "--noproxy", "*", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.trim_end().to_string(), code.parse().unwrap())
}

fn sha256(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn put_lands_whole_and_answers_its_size_and_sha256() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let data = pattern(300_000);
    let upload = file(src.path(), "fw.img", &data);
    let (srv, port) = serv(www.path(), &["--upload"]);
    let url = format!("http://127.0.0.1:{port}/boards/rev2/fw.img");
    let (body, code) = curl(&["-T", &upload, &url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body,
        format!(
            "stored /boards/rev2/fw.img (300000 bytes, sha256 {})",
            sha256(&data)
        )
    );
    let landed = www.path().join("boards/rev2/fw.img");
    assert!(std::fs::read(&landed).unwrap() == data);
    assert_eq!(
        names(&www.path().join("boards/rev2")),
        ["fw.img"],
        "no temporary left"
    );
    // The log has it too.
    let mut srv = srv.with_log_lines();
    srv.wait_line(|l| {
        l.contains(&format!(
            "stored /boards/rev2/fw.img: 300000 bytes, sha256 {}",
            sha256(&data)
        ))
    });

    // An existing file stays unless --overwrite.
    let newer = file(src.path(), "newer.img", b"newer");
    let (body, code) = curl(&["-T", &newer, &url]);
    assert_eq!(code, 409, "{body}");
    assert!(std::fs::read(&landed).unwrap() == data);
    drop(srv);
    let (_srv, port) = serv(www.path(), &["--upload", "--overwrite"]);
    let url = format!("http://127.0.0.1:{port}/boards/rev2/fw.img");
    let (_, code) = curl(&["-T", &newer, &url]);
    assert_eq!(code, 200);
    assert_eq!(std::fs::read(&landed).unwrap(), b"newer");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn without_upload_serv_stays_read_only() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let upload = file(src.path(), "fw.img", b"image");
    let (_srv, port) = serv(www.path(), &[]);
    let (head, code) = curl_head(&["-T", &upload, &format!("http://127.0.0.1:{port}/fw.img")]);
    assert_eq!(code, 405, "{head}");
    assert!(head.contains("allow: get, head\r\n"), "{head}");
    assert!(names(www.path()).is_empty());
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn the_form_uploads_several_files_and_refuses_hostile_names() {
    let outer = tempfile::tempdir().unwrap();
    let www = outer.path().join("www");
    std::fs::create_dir_all(www.join("logs")).unwrap();
    let src = tempfile::tempdir().unwrap();
    let a = file(src.path(), "a.log", b"first board");
    let b = file(src.path(), "b.core", &pattern(70_000));
    let (_srv, port) = serv(&www, &["--upload"]);
    let url = format!("http://127.0.0.1:{port}/logs/");
    let (body, code) = curl(&["-F", &format!("one=@{a}"), "-F", &format!("two=@{b}"), &url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(body.contains(&format!(
        "stored /logs/b.core (70000 bytes, sha256 {})",
        sha256(&pattern(70_000))
    )));
    assert_eq!(names(&www.join("logs")), ["a.log", "b.core"]);

    for hostile in ["../escape.log", "/etc/escape.log", "sub/escape.log"] {
        let (body, code) = curl(&["-F", &format!("f=@{a};filename={hostile}"), &url]);
        assert_eq!(code, 400, "{hostile}: {body}");
    }
    for hostile in [
        "/%2e%2e/escape.log",
        "/logs/..%2fescape.log",
        "/logs/a%00b.log",
    ] {
        let (body, code) = curl(&["-T", &a, &format!("http://127.0.0.1:{port}{hostile}")]);
        assert_eq!(code, 400, "{hostile}: {body}");
    }
    assert_eq!(
        names(outer.path()),
        ["www"],
        "nothing written outside the root"
    );
    assert_eq!(names(&www.join("logs")), ["a.log", "b.core"]);
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn too_large_or_cut_short_leaves_nothing_and_the_old_file_intact() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("fw.img"), b"the good image").unwrap();
    let src = tempfile::tempdir().unwrap();
    let big = file(src.path(), "big.img", &pattern(200_000));
    let (_srv, port) = serv(
        www.path(),
        &["--upload", "--overwrite", "--max-upload", "100K"],
    );
    let url = format!("http://127.0.0.1:{port}/fw.img");
    for chunked in [false, true] {
        let mut args = vec!["-T", big.as_str(), url.as_str()];
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        let (body, code) = curl(&args);
        assert_eq!(code, 413, "chunked {chunked}: {body}");
    }
    // A client that leaves halfway through its body.
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"PUT /fw.img HTTP/1.1\r\nHost: x\r\nContent-Length: 90000\r\n\r\n")
        .unwrap();
    conn.write_all(&pattern(40_000)).unwrap();
    drop(conn);
    // Once the server has noticed, nothing is left but the good image.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names(www.path()) != ["fw.img"] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            names(www.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (_, code) = curl(&[&url]);
    assert_eq!(code, 200, "the server still serves");
    assert_eq!(
        std::fs::read(www.path().join("fw.img")).unwrap(),
        b"the good image"
    );
}

#[test]
#[ignore = "needs root to mount a small tmpfs; bash scripts/test runs it"]
fn a_full_disk_is_507_and_the_old_file_stays() {
    let fs = SmallFs::mount("256k").expect("mounting a 256 KiB tmpfs (this test needs root)");
    std::fs::write(fs.path().join("fw.img"), b"the good image").unwrap();
    let src = tempfile::tempdir().unwrap();
    let big = file(src.path(), "big.img", &pattern(1024 * 1024));
    let (_srv, port) = serv(&fs.path(), &["--upload", "--overwrite"]);
    for name in ["fw.img", "new.img"] {
        let (body, code) = curl(&["-T", &big, &format!("http://127.0.0.1:{port}/{name}")]);
        // Refused before a byte is written: the announced size does not fit.
        assert_eq!(code, 507, "{name}: {body}");
        assert!(body.starts_with("the disk is nearly full ("), "{body}");
    }
    assert_eq!(names(&fs.path()), ["fw.img"]);
    assert_eq!(
        std::fs::read(fs.path().join("fw.img")).unwrap(),
        b"the good image"
    );
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn uploads_leave_the_disk_its_floor_of_free_space() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let img = file(src.path(), "fw.img", &pattern(10_000));
    // A floor higher than any disk's free space: nothing is taken, by PUT or form.
    let (_srv, port) = serv(www.path(), &["--upload", "--min-free", "999999G"]);
    let (body, code) = curl(&["-T", &img, &format!("http://127.0.0.1:{port}/fw.img")]);
    assert_eq!(code, 507, "{body}");
    let (body, code) = curl(&[
        "-F",
        &format!("f=@{img}"),
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(code, 507, "{body}");
    assert!(names(www.path()).is_empty(), "{:?}", names(www.path()));
    // With no floor, the same upload lands.
    let (_srv, port) = serv(www.path(), &["--upload", "--min-free", "0"]);
    let (body, code) = curl(&["-T", &img, &format!("http://127.0.0.1:{port}/fw.img")]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(names(www.path()), ["fw.img"]);
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn the_form_makes_a_missing_folder_as_put_does() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let log = file(src.path(), "app.log", b"board 7 booted");
    std::fs::write(www.path().join("notes"), b"a file").unwrap();
    let (_srv, port) = serv(www.path(), &["--upload"]);
    // The README's own example, into a folder that is not there yet.
    let (body, code) = curl(&[
        "-F",
        &format!("f=@{log}"),
        &format!("http://127.0.0.1:{port}/logs/rev2/"),
    ]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        std::fs::read(www.path().join("logs/rev2/app.log")).unwrap(),
        b"board 7 booted"
    );
    // A file in the folder's place is not a folder.
    let (body, code) = curl(&[
        "-F",
        &format!("f=@{log}"),
        &format!("http://127.0.0.1:{port}/notes/"),
    ]);
    assert_eq!(code, 409, "{body}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn the_forms_files_together_count_against_max_upload() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let a = file(src.path(), "a.bin", &pattern(90_000));
    let b = file(src.path(), "b.bin", &pattern(90_000));
    let (_srv, port) = serv(www.path(), &["--upload", "--max-upload", "100K"]);
    let url = format!("http://127.0.0.1:{port}/");
    // Each alone fits; together they do not.
    let (body, code) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-F",
        &format!("one=@{a}"),
        "-F",
        &format!("two=@{b}"),
        &url,
    ]);
    assert_eq!(code, 413, "{body}");
    assert_eq!(names(www.path()), ["a.bin"]);
    // A declared length past the limit is refused before a byte is read.
    let (body, code) = curl(&["-F", &format!("one=@{a}"), "-F", &format!("two=@{b}"), &url]);
    assert_eq!(code, 413, "{body}");
}

/// The most memory `pid` has held, in KiB (VmHWM).
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_form_whose_boundary_never_comes_is_refused_without_holding_it() {
    let www = tempfile::tempdir().unwrap();
    let (srv, port) = serv(www.path(), &["--upload"]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
          Content-Length: 500000000\r\n\r\n",
    )
    .unwrap();
    // Up to 500 MB of bytes with no boundary in them, until the server answers (as a
    // browser stops sending once it has an answer).
    let junk = vec![b'a'; 1 << 20];
    let mut sent = 0u64;
    let answered = |conn: &TcpStream| {
        conn.set_nonblocking(true).unwrap();
        let got = conn.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0);
        conn.set_nonblocking(false).unwrap();
        got
    };
    while sent < 500_000_000 && !answered(&conn) && conn.write_all(&junk).is_ok() {
        sent += junk.len() as u64;
    }
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        sent < 100 << 20,
        "the server read {sent} bytes before refusing"
    );
    let peak = peak_kib(srv.child.id());
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn a_page_of_another_site_cannot_plant_a_file() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let image = file(src.path(), "fw.img", b"planted");
    let (_srv, port) = serv(www.path(), &["--upload", "--cors"]);
    let url = format!("http://127.0.0.1:{port}/");
    // What a browser adds to a form another site's page submits (fetch or a form post).
    for headers in [
        ["-H", "Origin: http://evil.example"],
        ["-H", "Sec-Fetch-Site: cross-site"],
    ] {
        let (body, code) = curl(&[headers[0], headers[1], "-F", &format!("f=@{image}"), &url]);
        assert_eq!(code, 403, "{headers:?}: {body}");
        let (_, code) = curl(&[
            headers[0],
            headers[1],
            "-T",
            &image,
            &format!("{url}fw.img"),
        ]);
        assert_eq!(code, 403, "{headers:?}");
    }
    assert!(names(www.path()).is_empty());
    // The listing's own form (same origin) and curl still upload.
    let origin = format!("Origin: http://127.0.0.1:{port}");
    let (body, code) = curl(&["-H", &origin, "-F", &format!("f=@{image}"), &url]);
    assert_eq!(code, 201, "{body}");
    drop(_srv);
    // Asked for, a flasher page elsewhere may upload.
    let (_srv, port) = serv(www.path(), &["--upload", "--cross-site-uploads"]);
    let (body, code) = curl(&[
        "-H",
        "Origin: http://flasher.example",
        "-T",
        &image,
        &format!("http://127.0.0.1:{port}/other.img"),
    ]);
    assert_eq!(code, 201, "{body}");
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn delete_and_mkcol_change_the_tree_and_nothing_outside_it() {
    let base = tempfile::tempdir().unwrap();
    let www = base.path().join("www");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.img"), b"not theirs").unwrap();
    std::os::unix::fs::symlink(&outside, www.join("elsewhere")).unwrap();
    let (_srv, port) = serv(&www, &["--upload"]);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let run = |method: &str, path: &str| curl(&["-X", method, &url(path)]);

    assert_eq!(run("MKCOL", "/logs/board-7/").1, 201);
    assert!(www.join("logs/board-7").is_dir(), "made, with its parent");
    assert_eq!(run("MKCOL", "/logs/board-7/").1, 405, "the name is taken");
    assert_eq!(
        curl(&["-X", "PUT", &url("/images/")]).1,
        201,
        "PUT to a folder name"
    );
    assert!(www.join("images").is_dir());
    std::fs::write(www.join("logs/board-7/boot.log"), b"log").unwrap();

    let (body, code) = run("DELETE", "/logs/");
    assert_eq!(
        code, 409,
        "a folder with files stays without ?recursive: {body}"
    );
    assert!(body.contains("?recursive"), "{body}");
    assert_eq!(run("DELETE", "/logs/board-7/boot.log").1, 204);
    assert!(!www.join("logs/board-7/boot.log").exists());
    assert_eq!(run("DELETE", "/logs/board-7/boot.log").1, 404);
    std::fs::write(www.join("logs/board-7/again.log"), b"log").unwrap();
    assert_eq!(run("DELETE", "/logs/?recursive").1, 204);
    assert!(!www.join("logs").exists(), "the whole tree went");
    assert_eq!(run("DELETE", "/images/").1, 204, "an empty folder");
    assert!(!www.join("images").exists());
    assert_eq!(names(&www), ["elsewhere"], "no hidden leftovers");

    assert_eq!(run("DELETE", "/").1, 403, "never the served folder itself");
    for path in ["/elsewhere/keep.img", "/elsewhere/?recursive", "/elsewhere"] {
        assert_eq!(run("DELETE", path).1, 400, "{path}");
    }
    assert_eq!(
        std::fs::read(outside.join("keep.img")).unwrap(),
        b"not theirs"
    );
    let (_, code) = curl(&[
        "-X",
        "DELETE",
        "-H",
        "Origin: http://evil.example",
        &url("/elsewhere"),
    ]);
    assert_eq!(code, 403, "not from another site's page");
    drop(_srv);

    // Read-only, and with passwords for writes.
    std::fs::write(www.join("fw.img"), b"image").unwrap();
    let (_srv, port) = serv(&www, &[]);
    let (head, code) = curl_head(&["-X", "DELETE", &format!("http://127.0.0.1:{port}/fw.img")]);
    assert_eq!(code, 405, "{head}");
    drop(_srv);
    let (_srv, port) = serv(
        &www,
        &["--upload", "--auth", "lab:pw", "--auth-scope", "writes"],
    );
    let fw = format!("http://127.0.0.1:{port}/fw.img");
    assert_eq!(curl(&["-X", "DELETE", &fw]).1, 401);
    assert!(www.join("fw.img").exists());
    assert_eq!(curl(&["-u", "lab:pw", "-X", "DELETE", &fw]).1, 204);
    assert!(!www.join("fw.img").exists());
}

#[test]
#[ignore = "needs curl; bash scripts/test runs it"]
fn read_only_and_only_keep_writes_off_their_names() {
    let www = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("golden")).unwrap();
    std::fs::write(www.path().join("golden/fw.img"), b"golden").unwrap();
    let image = file(src.path(), "fw.img", b"new");
    let (_srv, port) = serv(
        www.path(),
        &[
            "--upload",
            "--overwrite",
            "--read-only",
            "golden",
            "--only",
            "*.img",
        ],
    );
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    for (args, want) in [
        (vec!["-T", &image, &url("/golden/fw.img")], 403),
        (vec!["-X", "DELETE", &url("/golden/fw.img")], 403),
        (vec!["-X", "DELETE", &url("/golden/?recursive")], 403),
        (vec!["-X", "MKCOL", &url("/golden/new/")], 403),
        (vec!["-F", &format!("f=@{image}"), &url("/golden/")], 403),
        (vec!["-T", &image, &url("/notes.txt")], 403),
        (vec!["-T", &image, &url("/scratch/fw.img")], 201),
    ] {
        let (body, code) = curl(&args);
        assert_eq!(code, want, "{args:?}: {body}");
    }
    assert_eq!(
        std::fs::read(www.path().join("golden/fw.img")).unwrap(),
        b"golden"
    );
    assert!(!www.path().join("notes.txt").exists());
    drop(_srv);

    // A glob that does not parse is one line and exit 2, before anything starts.
    let err = common::fails_in_one_line(
        command(env!("CARGO_BIN_EXE_serv")).args(["--hide", "[a", "--show-settings"]),
        2,
    );
    assert!(err.contains("--hide"), "{err}");
    let out = command(env!("CARGO_BIN_EXE_serv"))
        .args([
            "--only",
            "*.img",
            "--read-only",
            "golden",
            "--show-settings",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  names        only *.img; read-only golden\n"),
        "{text}"
    );
}
