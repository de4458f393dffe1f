//! The listing page in a real browser: headless Chromium, driven with selenium, at a
//! phone's 390x844 and a desktop's 1280x800 (`tests/browser/listing.py` says what is
//! checked). Screenshots land in the target directory's `listing-*.png`.

mod common;

use std::path::Path;

use common::{Running, command, pattern};

const SERV: &str = env!("CARGO_BIN_EXE_serv");

#[test]
#[ignore = "needs Chromium and Selenium from PyPI; bash scripts/test runs it"]
fn the_listing_works_on_a_phone_and_a_desktop() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("fw.img"), pattern(2 * 1024 * 1024)).unwrap();
    std::fs::write(www.path().join("small.txt"), "boot log\n").unwrap();
    std::fs::create_dir(www.path().join("sub")).unwrap();
    for long in ["fw-1.2.3.img", "rpi4-bootloader-update-2026-11-30.bin"] {
        std::fs::write(www.path().join(long), b"image").unwrap();
    }
    let fifo = std::ffi::CString::new(www.path().join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/nonexistent/target", www.path().join("dangling")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let downloads = work.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let upload = work.path().join("crash.core");
    std::fs::write(&upload, pattern(5000)).unwrap();

    let mut cmd = command(SERV);
    cmd.args(["0", "127.0.0.1", "--upload", "-d"])
        .arg(www.path());
    let mut srv = Running::spawn(cmd);
    let port = srv.wait_port();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/listing.py");
    let out = std::process::Command::new(common::python_venv().join("bin/python"))
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&downloads)
        .arg(&upload)
        .arg(shots)
        .output()
        .expect("python runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("ok the form uploads"), "{said}");
    assert!(
        said.contains("ok delete asks, then removes the row"),
        "{said}"
    );
    assert!(!www.path().join("small.txt").exists(), "deleted on disk");
    assert!(
        std::fs::read(downloads.join("fw.img")).unwrap() == pattern(2 * 1024 * 1024),
        "the download is byte for byte"
    );
    assert!(std::fs::read(www.path().join("sub/crash.core")).unwrap() == pattern(5000));
}
