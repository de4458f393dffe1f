//! Listings as browsers and scripts get them, sorted and refreshed.

use super::{By, Kind, Sort, read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

fn kinds(dir: &std::path::Path) -> Vec<(String, Kind, u64)> {
    let listed = read(dir).unwrap();
    Sort::default()
        .order(&listed.entries, false)
        .into_iter()
        .map(|e| (e.name.clone(), e.kind, e.size))
        .collect()
}

#[test]
fn entries_are_described_by_what_they_are_and_what_links_point_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fw.img"), [0; 300]).unwrap();
    std::fs::create_dir(d.join("boot")).unwrap();
    symlink(d.join("fw.img"), d.join("latest.img")).unwrap();
    symlink(d.join("boot"), d.join("current")).unwrap();
    symlink("/nonexistent/target", d.join("dangling")).unwrap();
    let fifo = std::ffi::CString::new(d.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"caf\xe9.bin")), b"x").unwrap();
    assert_eq!(
        kinds(d),
        [
            ("boot".to_string(), Kind::Dir, 0),
            ("caf\u{fffd}.bin".to_string(), Kind::File, 1),
            ("current".to_string(), Kind::Dir, 0),
            ("dangling".to_string(), Kind::Broken, 0),
            ("fw.img".to_string(), Kind::File, 300),
            ("latest.img".to_string(), Kind::File, 300),
            ("pipe".to_string(), Kind::Other, 0),
        ]
    );
    // Read in name order, with the entries to look at again pointing at their names:
    // the subdirectory and the links, not the files or the pipe.
    let listed = read(d).unwrap();
    let names: Vec<&str> = listed.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "boot",
            "caf\u{fffd}.bin",
            "current",
            "dangling",
            "fw.img",
            "latest.img",
            "pipe"
        ]
    );
    let mut volatile: Vec<&str> = listed
        .volatile
        .iter()
        .map(|(at, name)| {
            assert_eq!(name.to_str(), Some(names[*at]));
            names[*at]
        })
        .collect();
    volatile.sort_unstable();
    assert_eq!(volatile, ["boot", "current", "dangling", "latest.img"]);
}

#[test]
fn a_directory_bigger_than_one_read_is_listed_whole() {
    let dir = tempfile::tempdir().unwrap();
    // 3000 long names: several times the 64 KiB the names are read in.
    for i in 0..3000 {
        std::fs::write(dir.path().join(format!("{i:05}-{}", "x".repeat(40))), b"").unwrap();
    }
    let entries = read(dir.path()).unwrap().entries;
    let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);
    assert!(names[0].starts_with("00000-") && names[2999].starts_with("02999-"));
}

#[test]
fn orders_put_directories_first_fold_case_and_go_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("b.img"), [0; 30]).unwrap();
    std::fs::write(d.join("A.img"), [0; 10]).unwrap();
    std::fs::write(d.join("a.img"), [0; 20]).unwrap();
    std::fs::create_dir(d.join("z")).unwrap();
    let names = |sort: Sort, dirs_first: bool| {
        let listed = read(d).unwrap();
        let ordered = sort.order(&listed.entries, dirs_first);
        ordered
            .into_iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
    };
    let by = |by: By, descending: bool| Sort { by, descending };
    assert_eq!(
        names(Sort::default(), true),
        ["z", "A.img", "a.img", "b.img"]
    );
    assert_eq!(
        names(Sort::default(), false),
        ["A.img", "a.img", "b.img", "z"]
    );
    assert_eq!(
        names(by(By::Name, true), true),
        ["z", "b.img", "a.img", "A.img"]
    );
    assert_eq!(
        names(by(By::Size, false), true),
        ["z", "A.img", "a.img", "b.img"]
    );
    assert_eq!(
        names(by(By::Size, true), true),
        ["z", "b.img", "a.img", "A.img"]
    );
    // Ties keep name order, whichever way the key goes.
    std::fs::write(d.join("B.img"), [0; 30]).unwrap();
    std::fs::write(d.join("c.img"), [0; 30]).unwrap();
    assert_eq!(
        names(by(By::Size, true), false),
        ["B.img", "b.img", "c.img", "a.img", "A.img", "z"]
    );
    assert_eq!(
        names(by(By::Size, false), true),
        ["z", "A.img", "a.img", "B.img", "b.img", "c.img"]
    );
}
