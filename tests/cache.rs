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
