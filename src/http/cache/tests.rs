//! The small-file cache: kept, checked, dropped and refreshed.

use super::*;
use crate::http::listing::{Entry, Kind};

fn listed(count: usize) -> Arc<Listed> {
    let entry = Entry {
        name: "fw.img".into(),
        kind: Kind::File,
        size: 4096,
        modified: None,
    };
    Arc::new(Listed {
        entries: vec![entry; count],
        volatile: Vec::new(),
    })
}

/// Reads `dir` for a listing as a request would: watches first, then the entries.
fn read(cache: &Cache, root: &Path, dir: &Path, listed: &Arc<Listed>) {
    let prepared = cache.prepare_listing(root, dir);
    assert!(prepared.is_some(), "no watch on {}", dir.display());
    cache.keep_listing(dir, listed.clone(), prepared);
}

fn kept(cache: &Cache) -> usize {
    cache.lock().listings.len()
}

// A kept listing is read once more after `RECHECK`; that read must replace it, not
// count it twice and throw the whole cache away.
#[test]
fn a_big_directory_read_again_stays_kept() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    let cache = Cache::new();
    let big = listed(MAX_LISTED / 2 + 1);
    read(&cache, root.path(), &dir, &big);
    assert_eq!(kept(&cache), 1);
    read(&cache, root.path(), &dir, &big);
    assert_eq!(kept(&cache), 1, "reading it again started the cache over");
}

#[test]
fn a_directory_read_again_at_the_limit_stays_kept_with_the_others() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    let small = listed(3);
    let dirs: Vec<_> = (0..MAX_LISTINGS)
        .map(|i| {
            let dir = root.path().join(format!("board{i}"));
            std::fs::create_dir(&dir).unwrap();
            read(&cache, root.path(), &dir, &small);
            dir
        })
        .collect();
    assert_eq!(kept(&cache), MAX_LISTINGS);
    read(&cache, root.path(), &dirs[0], &small);
    assert_eq!(kept(&cache), MAX_LISTINGS, "reading one again started over");
}
