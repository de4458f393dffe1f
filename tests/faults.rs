//! Faults: files truncated or replaced under a running TFTP read, uploads onto a full
//! filesystem. (Clients leaving mid-download, mid-upload and mid-CGI are in http.rs,
//! tftp.rs and cgi.rs; a killed daemon and unwritable pid and log directories in
//! daemon_cli.rs; a file truncated under an HTTP download in http.rs.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::tftp::{TftpServer, read, write};
use common::{SmallFs, names, pattern};
use tokio::net::UdpSocket;

/// A lock-step read of `file` (512-byte blocks, no options) that calls `between` after
/// each DATA block it acknowledges. Returns the bytes received, or the server's ERROR.
async fn read_stepwise(
    server: SocketAddr,
    file: &str,
    mut between: impl FnMut(u16),
) -> Result<Vec<u8>, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(file.as_bytes());
    rrq.extend_from_slice(b"\0octet\0");
    sock.send_to(&rrq, server).await.unwrap();
    let mut data = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .map_err(|_| "the server went silent".to_string())?
            .unwrap();
        match u16::from_be_bytes([buf[0], buf[1]]) {
            3 => {
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                data.extend_from_slice(&buf[4..n]);
                sock.send_to(&[0, 4, buf[2], buf[3]], from).await.unwrap();
                if n - 4 < 512 {
                    return Ok(data);
                }
                between(block);
            }
            5 => return Err(String::from_utf8_lossy(&buf[4..n]).into_owned()),
            op => return Err(format!("opcode {op}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_truncated_under_a_tftp_read_ends_it_cleanly() {
    let srv = TftpServer::start_with(|_| {}).await;
    let path = srv.put("zImage", &pattern(100_000));
    let got = read_stepwise(srv.addr, "zImage", |block| {
        if block == 3 {
            // 1536 bytes are out; the file shrinks below that.
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(1000)
                .unwrap();
        }
    })
    .await;
    // Either a short last block or an error, but an end: never a hang or a crash.
    if let Ok(data) = &got {
        assert!(data.len() <= 100_000);
        assert_eq!(&data[..1536], &pattern(100_000)[..1536]);
    }
    let next = read(srv.addr, "zImage", &[]).await.unwrap();
    assert_eq!(
        next.data,
        pattern(1000),
        "the next read sees the file as it is now"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_replaced_under_a_tftp_read_is_served_whole_from_the_old_one() {
    let srv = TftpServer::start_with(|_| {}).await;
    let old = pattern(60_000);
    let path = srv.put("zImage", &old);
    let staged = srv.root().join(".new");
    let got = read_stepwise(srv.addr, "zImage", |block| {
        if block == 5 {
            // A build replaces the image the way installers do: write, then rename.
            std::fs::write(&staged, b"the new image").unwrap();
            std::fs::rename(&staged, &path).unwrap();
        }
    })
    .await
    .unwrap();
    assert!(
        got == old,
        "the read that began on the old image finishes it"
    );
    let next = read(srv.addr, "zImage", &[]).await.unwrap();
    assert_eq!(next.data, b"the new image");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root to mount a small tmpfs; bash scripts/test runs it"]
async fn an_upload_onto_a_full_filesystem_fails_and_leaves_nothing() {
    let fs = SmallFs::mount("256k").expect("mounting a 256 KiB tmpfs (this test needs root)");
    let srv = TftpServer::start_with(|c| {
        c.root = fs.path();
        c.upload = true;
        c.overwrite = true;
    })
    .await;
    std::fs::write(fs.path().join("good.img"), b"the good image").unwrap();

    for target in ["new.img", "good.img"] {
        let err = write(srv.addr, target, &pattern(1024 * 1024), &[], None)
            .await
            .expect_err("a 1 MiB upload cannot fit in 256 KiB");
        assert_eq!(err.code, 3, "{target}: TFTP error 3, disk full: {err:?}");
    }
    // Nothing half-written, no temporary file (removed as the failed transfer winds
    // down, a moment after its ERROR), the good image untouched.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while names(&fs.path()) != ["good.img"] {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {:?}",
            names(&fs.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        std::fs::read(fs.path().join("good.img")).unwrap(),
        b"the good image"
    );
    // Space freed: the same server takes an upload that fits.
    write(srv.addr, "small.img", &pattern(10_000), &[], None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(fs.path().join("small.img")).unwrap(),
        pattern(10_000)
    );
    drop(srv);
}
