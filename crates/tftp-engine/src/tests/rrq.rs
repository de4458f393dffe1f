//! Reads by a real client (atftp) of files of every awkward size: empty, under a block,
//! a block exactly, over one, and large; lock-step and with windows.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use super::handlers::RandomHandler;
use crate::server::TftpServerBuilder;

/// What atftp fetched of `name` from `server`.
fn atftp_get(
    server: SocketAddr,
    block_size: Option<u16>,
    window_size: Option<u16>,
) -> std::io::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let mut cmd = Command::new("atftp");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(block_size) = block_size {
        cmd.arg("--option").arg(format!("blksize {block_size}"));
    }
    if let Some(window_size) = window_size {
        cmd.arg("--option").arg(format!("windowsize {window_size}"));
    }
    let status = cmd
        .args(["-g", "-l"])
        .arg(&path)
        .args(["-r", "test"])
        .arg(server.ip().to_string())
        .arg(server.port().to_string())
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!("atftp: {status}")));
    }
    std::fs::read(path)
}

/// Serves a random file of `size` bytes to atftp; checks that it got every byte.
fn transfer(
    size: usize,
    block_size: Option<u16>,
    server_window_size: Option<u16>,
    client_window_size: Option<u16>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (served_tx, served_rx) = std::sync::mpsc::channel();
        let tftpd = TftpServerBuilder::with_handler(RandomHandler::new(size, served_tx))
            .bind("127.0.0.1:0".parse().unwrap())
            .window_size_limit(server_window_size.unwrap_or(1))
            .build()
            .await
            .unwrap();
        let addr = tftpd.listen_addr().unwrap();
        let server = tokio::spawn(async move { tftpd.serve().await });
        let got =
            tokio::task::spawn_blocking(move || atftp_get(addr, block_size, client_window_size))
                .await
                .unwrap()
                .expect("atftp fetches the file");
        let sent = served_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the server read the whole file");
        assert_eq!(got.len(), size);
        assert!(got == sent, "atftp got other bytes than were sent");
        server.abort();
    });
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_0_bytes() {
    transfer(0, None, None, None);
    transfer(0, Some(1024), None, None);
    transfer(0, Some(1024), Some(8), Some(8));
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_less_than_block() {
    transfer(1, None, None, None);
    transfer(123, None, None, None);
    transfer(511, None, None, None);
    transfer(1023, Some(1024), None, None);
    transfer(1, None, Some(8), Some(8));
    transfer(123, None, Some(8), Some(8));
    transfer(511, None, Some(8), Some(8));
    transfer(1023, Some(1024), Some(8), Some(8));
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_block() {
    transfer(512, None, None, None);
    transfer(1024, Some(1024), None, None);
    transfer(1024, Some(1024), Some(8), Some(8));
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_more_than_block() {
    transfer(512 + 1, None, None, None);
    transfer(512 + 123, None, None, None);
    transfer(512 + 511, None, None, None);
    transfer(1024 + 1, Some(1024), None, None);
    transfer(1024 + 123, Some(1024), None, None);
    transfer(1024 + 1023, Some(1024), None, None);
    transfer(1024 + 1023, Some(1024), Some(8), Some(4));
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_1mb() {
    transfer(1024 * 1024, None, None, None);
    transfer(1024 * 1024, Some(1024), None, None);
    transfer(1024 * 1024, Some(1024), Some(16), Some(8));
}

#[test]
#[ignore = "needs atftp; labserv's scripts/test runs it"]
fn transfer_past_the_block_number_roll_over() {
    // 65536 blocks of 512 bytes and more: block numbers wrap past 65535.
    transfer(33 * 1024 * 1024 + 123, None, None, None);
}
