//! Uploads that land whole or not at all.

use super::*;
use std::fs;
use std::io::Write;

#[test]
fn an_upload_lands_whole_or_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fw.img");
    let (landing, mut file) = Landing::begin(dir.path(), &target, false, false).unwrap();
    file.write_all(b"half").unwrap();
    if cfg!(target_os = "linux") {
        // Being written, it has no name: nothing to list, guess or write over.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    drop(landing);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left");

    let (landing, mut file) = Landing::begin(dir.path(), &target, false, false).unwrap();
    file.write_all(b"whole").unwrap();
    landing.land().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"whole");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );

    // Written out as it grows: every byte lands, past several writeback steps.
    let big = dir.path().join("big.img");
    let data: Vec<u8> = (0..(10u32 << 20) + 123).map(|i| (i % 251) as u8).collect();
    let (landing, file) = Landing::begin(dir.path(), &big, false, false).unwrap();
    let mut upload = Upload::new(file, &landing, Room::default()).unwrap();
    for piece in data.chunks(8192) {
        upload.write_all(piece).unwrap();
    }
    if cfg!(target_os = "linux") {
        assert_eq!(upload.writeback.started, 2 * STEP, "{upload:?}");
    }
    drop(upload);
    landing.land().unwrap();
    assert!(fs::read(&big).unwrap() == data, "the bytes landed whole");

    let err = Landing::begin(dir.path(), &target, false, false).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    let (landing, mut file) = Landing::begin(dir.path(), &target, true, false).unwrap();
    file.write_all(b"newer").unwrap();
    landing.land().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"newer");
}
