//! The small-file cache never answers with an old version: whatever changes a cached file,
//! its name or a directory on its way, the next request gets what is there now.

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;

/// GETs `url` twice (the second answer comes from the cache) and checks both.
async fn twice(c: &reqwest::Client, url: &str, want: &str) {
    for round in ["first", "cached"] {
        let resp = c.get(url).send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{round} answer");
        assert_eq!(resp.text().await.expect("body"), want, "{round} answer");
    }
}

async fn status(c: &reqwest::Client, url: &str) -> StatusCode {
    c.get(url).send().await.expect("request").status()
}

#[tokio::test]
async fn a_cached_file_is_fresh_after_every_kind_of_change() {
    let srv = TestServer::start().await;
    let root = srv.root();
    let c = client();
    let url = srv.url("/fw/board-a/manifest.json");
    let path = srv.put("fw/board-a/manifest.json", b"v1");
    twice(&c, &url, "v1").await;

    // Rewritten in place at the same size, within one tick of the file system's clock.
    std::fs::write(&path, "v2").unwrap();
    twice(&c, &url, "v2").await;

    // Replaced by renaming a new file over it, as build scripts do.
    let tmp = srv.put("fw/board-a/manifest.tmp", b"v3");
    std::fs::rename(tmp, &path).unwrap();
    twice(&c, &url, "v3").await;

    // Removed, then made again.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(status(&c, &url).await, StatusCode::NOT_FOUND);
    srv.put("fw/board-a/manifest.json", b"v4");
    twice(&c, &url, "v4").await;

    // A directory on its way moved away and a new one made in its place (a clean build).
    std::fs::rename(root.join("fw"), root.join("fw.old")).unwrap();
    assert_eq!(status(&c, &url).await, StatusCode::NOT_FOUND);
    srv.put("fw/board-a/manifest.json", b"v5");
    twice(&c, &url, "v5").await;
    // Then one level down: the watches went with the directories that moved, and the
    // new ones need theirs.
    std::fs::rename(root.join("fw/board-a"), root.join("fw/board-a.old")).unwrap();
    srv.put("fw/board-a/manifest.json", b"v5b");
    twice(&c, &url, "v5b").await;

    // Written through a second name made after it was cached.
    let other = root.join("elsewhere.json");
    std::fs::hard_link(&path, &other).unwrap();
    std::fs::write(&other, "v6").unwrap();
    twice(&c, &url, "v6").await;
    std::fs::remove_file(&other).unwrap();
    std::fs::write(&path, "v7, longer").unwrap();
    twice(&c, &url, "v7, longer").await;

    // Turned into a directory: the file is gone and the name redirects to the listing.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert_eq!(status(&c, &url).await, StatusCode::MOVED_PERMANENTLY);
}

#[tokio::test]
async fn both_names_of_a_hard_linked_file_are_fresh_after_a_write_through_either() {
    let srv = TestServer::start().await;
    let c = client();
    let first = srv.put("boards/a/manifest.json", b"v1");
    let second = srv.root().join("boards/b.json");
    std::fs::hard_link(&first, &second).unwrap();
    let (url_a, url_b) = (
        srv.url("/boards/a/manifest.json"),
        srv.url("/boards/b.json"),
    );
    twice(&c, &url_a, "v1").await;
    twice(&c, &url_b, "v1").await;
    for (path, text) in [(&first, "v2"), (&second, "v3")] {
        std::fs::write(path, text).unwrap();
        twice(&c, &url_a, text).await;
        twice(&c, &url_b, text).await;
    }
}

#[tokio::test]
async fn a_file_reached_through_a_symlink_is_fresh_when_the_link_or_its_target_changes() {
    let srv = TestServer::start().await;
    let root = srv.root();
    let c = client();
    // `latest` points at one build's output directory, outside the served tree's watches.
    let builds = srv.dir.path().join("builds");
    for (build, text) in [("1", "build one"), ("2", "build two")] {
        common::put(&builds.join(build), "manifest.json", text.as_bytes());
    }
    std::os::unix::fs::symlink(builds.join("1"), root.join("latest")).unwrap();
    let url = srv.url("/latest/manifest.json");
    twice(&c, &url, "build one").await;

    std::fs::write(builds.join("1/manifest.json"), "build 1b").unwrap();
    twice(&c, &url, "build 1b").await;

    // The link moved to the next build, replaced by rename as `ln -sfn` does.
    std::os::unix::fs::symlink(builds.join("2"), root.join("latest.new")).unwrap();
    std::fs::rename(root.join("latest.new"), root.join("latest")).unwrap();
    twice(&c, &url, "build two").await;
}

/// A write through a shared memory mapping makes no inotify event; the cache still sees it
/// within its recheck period (a second), by the file's changed modification time.
#[tokio::test]
async fn a_change_that_makes_no_event_is_seen_within_a_second_or_two() {
    use std::os::fd::AsRawFd;

    let srv = TestServer::start().await;
    let c = client();
    let url = srv.url("/state.bin");
    let path = srv.put("state.bin", b"old!");
    twice(&c, &url, "old!").await;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: a 4-byte shared mapping of a 4-byte file, written and unmapped here.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            4,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(at, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(b"new!".as_ptr(), at.cast::<u8>(), 4);
        libc::munmap(at, 4);
    }
    let started = std::time::Instant::now();
    loop {
        let body = c.get(&url).send().await.unwrap().text().await.unwrap();
        if body == "new!" {
            break;
        }
        assert_eq!(body, "old!");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the mapped write was never seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A listing as JSON: each entry's type, size and modification time by name.
async fn listing(
    c: &reqwest::Client,
    url: &str,
) -> std::collections::BTreeMap<String, (String, u64, String)> {
    let resp = c.get(format!("{url}?format=json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page: serde_json::Value = resp.json().await.unwrap();
    let entries = page["entries"].as_array().expect("entries").iter();
    entries
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            let size = e["size"].as_u64().expect("size");
            (text("name"), (text("type"), size, text("modified")))
        })
        .collect()
}

/// Lists `url` twice as JSON (the second from kept entries) and once as HTML, checks
/// that the three agree on the names, and returns the JSON listing.
async fn listed(
    c: &reqwest::Client,
    url: &str,
) -> std::collections::BTreeMap<String, (String, u64, String)> {
    let first = listing(c, url).await;
    let again = listing(c, url).await;
    assert_eq!(first, again, "listed twice with no change between");
    let page = c.get(url).send().await.unwrap().text().await.unwrap();
    for name in again.keys() {
        assert!(page.contains(&format!("<span>{name}")), "{name} in\n{page}");
    }
    let parent = usize::from(page.contains("href=\"../\""));
    assert_eq!(
        page.matches("<li>").count() - parent,
        again.len(),
        "the page lists as many entries as the JSON:\n{page}"
    );
    again
}

#[tokio::test]
async fn a_listing_shows_every_change_at_once() {
    use std::time::{Duration, UNIX_EPOCH};

    let srv = TestServer::start().await;
    let root = srv.root();
    let c = client();
    let url = srv.url("/fw/");
    srv.put("fw/a.img", b"aaa");
    srv.put("fw/b.img", b"bbbb");
    srv.put("fw/boards/x/readme", b"x");
    // `latest.img` points outside the served tree, where no watch sees its target.
    let builds = srv.dir.path().join("builds");
    common::put(&builds, "fw.img", b"build 1");
    std::os::unix::fs::symlink(builds.join("fw.img"), root.join("fw/latest.img")).unwrap();
    let names = |l: &std::collections::BTreeMap<String, _>| l.keys().cloned().collect::<Vec<_>>();
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let now = listed(&c, &url).await;
    assert_eq!(names(&now), ["a.img", "b.img", "boards", "latest.img"]);
    assert_eq!(
        now["latest.img"],
        ("file".into(), 7, now["latest.img"].2.clone())
    );

    // Added, removed and renamed.
    srv.put("fw/c.img", b"c");
    assert_eq!(
        names(&listed(&c, &url).await),
        ["a.img", "b.img", "boards", "c.img", "latest.img"]
    );
    std::fs::remove_file(root.join("fw/b.img")).unwrap();
    std::fs::rename(root.join("fw/c.img"), root.join("fw/d.img")).unwrap();
    assert_eq!(
        names(&listed(&c, &url).await),
        ["a.img", "boards", "d.img", "latest.img"]
    );

    // Grown in place, then its time set back (as `touch -d` or an unpacked archive does).
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("fw/a.img"))
        .unwrap();
    std::io::Write::write_all(&mut file, b" and more").unwrap();
    assert_eq!(listed(&c, &url).await["a.img"].1, 12);
    file.set_modified(at(978_307_200)).unwrap();
    assert_eq!(listed(&c, &url).await["a.img"].2, "2001-01-01T00:00:00Z");
    drop(file);

    // A subdirectory's time changes with what is made in it, which the listed directory
    // hears nothing of.
    std::fs::File::open(root.join("fw/boards"))
        .unwrap()
        .set_modified(at(1_009_843_200))
        .unwrap();
    assert_eq!(listed(&c, &url).await["boards"].2, "2002-01-01T00:00:00Z");
    srv.put("fw/boards/y/readme", b"y");
    assert_ne!(listed(&c, &url).await["boards"].2, "2002-01-01T00:00:00Z");

    // A symlink's target grows, far from any watch.
    std::fs::write(builds.join("fw.img"), b"build 2, bigger").unwrap();
    assert_eq!(listed(&c, &url).await["latest.img"].1, 15);

    // The directory moved away and another made in its place (a clean build).
    std::fs::rename(root.join("fw"), root.join("fw.old")).unwrap();
    srv.put("fw/new.img", b"new");
    assert_eq!(names(&listed(&c, &url).await), ["new.img"]);

    // The served root itself.
    let top = srv.url("/");
    assert_eq!(names(&listed(&c, &top).await), ["fw", "fw.old"]);
    srv.put("top.img", b"top");
    assert_eq!(names(&listed(&c, &top).await), ["fw", "fw.old", "top.img"]);
}

/// A write through a name outside the served tree (a hard link) makes no event on the
/// listed directory; the listing still shows it within the recheck period (a second).
#[tokio::test]
async fn a_listed_change_that_makes_no_event_is_seen_within_a_second_or_two() {
    let srv = TestServer::start().await;
    let c = client();
    let url = srv.url("/fw/");
    let path = srv.put("fw/state.bin", b"old");
    let elsewhere = srv.dir.path().join("state.bin");
    std::fs::hard_link(&path, &elsewhere).unwrap();
    assert_eq!(listed(&c, &url).await["state.bin"].1, 3);

    std::fs::write(&elsewhere, b"newer").unwrap();
    let started = std::time::Instant::now();
    loop {
        let size = listing(&c, &url).await["state.bin"].1;
        if size == 5 {
            break;
        }
        assert_eq!(size, 3);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the write through the other name was never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Past the number of listings it keeps, the cache starts over, watches and all; the
/// listings made since are as fresh as ever, the first directories' as well as the last.
#[tokio::test]
async fn listings_stay_fresh_when_more_directories_are_listed_than_are_kept() {
    let srv = TestServer::start().await;
    let c = client();
    // More than the 256 directories whose entries are kept.
    let boards: Vec<String> = (0..300).map(|i| format!("board-{i:03}")).collect();
    for board in &boards {
        srv.put(&format!("{board}/fw.img"), b"v1");
    }
    for board in &boards {
        let url = srv.url(&format!("/{board}/"));
        assert_eq!(listing(&c, &url).await["fw.img"].1, 2);
    }
    for board in [&boards[0], &boards[255], &boards[299]] {
        let url = srv.url(&format!("/{board}/"));
        assert_eq!(
            listing(&c, &url).await["fw.img"].1,
            2,
            "{board} listed again"
        );
        srv.put(&format!("{board}/fw.img"), b"v2, longer");
        let now = listing(&c, &url).await;
        assert_eq!(now["fw.img"].1, 10, "{board} after its image was rewritten");
        srv.put(&format!("{board}/new.img"), b"new");
        assert!(listing(&c, &url).await.contains_key("new.img"), "{board}");
    }
}
