//! File streams read ahead, sent through the kernel or read, on Linux.

use std::fs::File;
use std::num::NonZeroU64;

use super::*;
use crate::server::sendfile::{self, Outbox};

#[tokio::test]
async fn a_download_that_meets_a_hole_in_the_page_cache_stays_with_the_kernel() {
    // On the source tree's disk: a file system that can drop a file's pages.
    let dir = tempfile::Builder::new()
        .prefix(".body-test")
        .tempdir_in(env!("CARGO_MANIFEST_DIR"))
        .unwrap();
    let path = dir.path().join("fw.img");
    let len: u64 = 6 << 20;
    std::fs::write(&path, vec![0x5a; len as usize]).unwrap();
    let file = File::open(&path).unwrap();
    file.sync_all().unwrap();
    // Whole MiBs: the page cache may hold the file in folios of up to 2 MiB, and
    // drops only whole ones.
    let hole = 2 << 20;
    rustix::fs::fadvise(
        &file,
        hole,
        NonZeroU64::new(2 << 20),
        rustix::fs::Advice::DontNeed,
    )
    .unwrap();
    assert_eq!(
        sendfile::cached(&file, hole, 4096),
        Some(false),
        "the test needs part of the file out of the page cache"
    );

    let outbox = Outbox::default();
    let mut stream = FileStream::new(Some(file), vec![Segment::File { offset: 0, len }]);
    stream.send_through(&outbox);
    let (mut by_kernel, mut copied) = (0, 0);
    while let Some(frame) = std::future::poll_fn(|cx| stream.poll_next(cx)).await {
        let data = frame.unwrap().into_data().unwrap();
        if sendfile::is_stand_in(&data) {
            by_kernel += data.len();
        } else {
            copied += data.len();
        }
    }
    assert_eq!(by_kernel + copied, len as usize);
    assert_eq!(
        copied, 0,
        "bytes copied through user space instead of sent by the kernel"
    );
}
