//! The TFTP server over real UDP sockets on loopback, driven by a small TFTP client.

mod common;

use std::time::Duration;

use common::pattern;
use common::tftp::{
    TftpServer, read, read_in, read_then_abort, request_mode, start_read_and_stall, write, write_in,
};
use tokio::net::UdpSocket;

#[tokio::test]
async fn reads_at_every_block_size_are_byte_identical() {
    let srv = TftpServer::start_with(|_| {}).await;
    let data = pattern(300_000);
    srv.put("zImage", &data);
    let plain = read(srv.addr, "zImage", &[]).await.unwrap();
    assert!(plain.data == data, "default 512-byte blocks");
    assert!(plain.oack.is_empty(), "no options asked, none acknowledged");
    for blksize in ["512", "1468", "8192", "65464"] {
        let t = read(srv.addr, "zImage", &[("blksize", blksize)])
            .await
            .unwrap();
        // Only what was asked for: EFI firmware rejects an OACK with other options.
        assert_eq!(t.oack, [("blksize".to_string(), blksize.to_string())]);
        assert!(t.data == data, "blksize {blksize}");
    }
}

#[tokio::test]
async fn the_timeout_option_is_acknowledged() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("initrd.img", &pattern(10_000));
    let t = read(srv.addr, "initrd.img", &[("timeout", "3")])
        .await
        .unwrap();
    assert_eq!(t.oack, [("timeout".to_string(), "3".to_string())]);
    assert_eq!(t.data, pattern(10_000));
}

#[tokio::test]
async fn tsize_reports_the_file_size() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("initrd.img", &pattern(123_457));
    let t = read(srv.addr, "initrd.img", &[("tsize", "0")])
        .await
        .unwrap();
    assert_eq!(t.option("tsize"), Some("123457"));
    assert_eq!(t.data.len(), 123_457);
}

#[tokio::test]
async fn windowed_reads_at_ethernet_block_size() {
    let srv = TftpServer::start_with(|_| {}).await;
    let data = pattern(2_000_000);
    srv.put("rootfs.img", &data);
    for window in ["1", "16"] {
        let t = read(
            srv.addr,
            "rootfs.img",
            &[("blksize", "1468"), ("windowsize", window)],
        )
        .await
        .unwrap();
        assert_eq!(t.option("windowsize"), Some(window));
        assert!(t.data == data, "windowsize {window}");
    }
}

#[tokio::test]
async fn big_blocks_get_a_window_that_fits_a_clients_receive_buffer() {
    // A window of big blocks overflows a client's default 208 KiB receive buffer, and the
    // transfer crawls through timeouts: the OACK grants what fits (RFC 7440 allows less).
    let srv = TftpServer::start_with(|_| {}).await;
    let data = pattern(3_000_000);
    srv.put("kernel.itb", &data);
    for (blksize, asked, granted) in [
        ("1468", "64", "64"),
        ("2048", "64", "48"),
        ("4096", "64", "25"),
        ("8192", "16", "12"),
        ("8192", "4", "4"),
        ("65464", "64", "1"),
    ] {
        let t = read(
            srv.addr,
            "kernel.itb",
            &[("blksize", blksize), ("windowsize", asked)],
        )
        .await
        .unwrap();
        assert_eq!(t.option("windowsize"), Some(granted), "blksize {blksize}");
        assert!(t.data == data, "blksize {blksize} windowsize {granted}");
        // The whole window waits in the client's kernel if the client is slow to read
        // (atftp asking 16 blocks of 8192 once got 13, lost the last on every round, and
        // its transfer failed).
        let (block, window): (usize, usize) = (blksize.parse().unwrap(), granted.parse().unwrap());
        let held = datagrams_held(4 + block, window + 1);
        assert!(
            window <= held,
            "a window of {window} blocks of {blksize}, the kernel holds {held}"
        );
    }
}

/// How many of `count` datagrams of `len` bytes sent to a loopback UDP socket with
/// Linux's default 208 KiB receive buffer, which reads nothing meanwhile, its kernel
/// keeps (it drops the rest).
fn datagrams_held(len: usize, count: usize) -> usize {
    use std::os::fd::AsRawFd;
    let slow = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // The kernel doubles what is asked: 212,992 bytes, `net.core.rmem_default`.
    let asked: libc::c_int = 106_496;
    // SAFETY: a valid socket, and a pointer to a c_int of the size passed.
    let set = unsafe {
        libc::setsockopt(
            slow.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const asked).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let packet = vec![7u8; len];
    for _ in 0..count {
        sender.send_to(&packet, slow.local_addr().unwrap()).unwrap();
    }
    // Everything kept is queued by now (loopback delivers within the send); the timeout
    // only ends the count once the queue is empty.
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; len];
    let mut held = 0;
    while slow.recv(&mut buf).is_ok() {
        held += 1;
    }
    held
}

#[tokio::test]
async fn files_that_end_on_a_block_boundary_end_with_an_empty_block() {
    // A file of whole blocks ends with an empty DATA packet (RFC 1350); the server reads
    // a window ahead, so the end must be seen however the blocks fall in the windows.
    let srv = TftpServer::start_with(|_| {}).await;
    for (blksize, window) in [("512", "1"), ("1468", "16"), ("8192", "12"), ("65464", "1")] {
        let block: usize = blksize.parse().unwrap();
        let blocks_per_window: usize = window.parse().unwrap();
        for len in [
            0,
            block,
            block * blocks_per_window,
            block * blocks_per_window * 3,
            block * blocks_per_window * 3 + 1,
            block * blocks_per_window * 3 - 1,
        ] {
            let data = pattern(len);
            srv.put("u-boot.itb", &data);
            let t = read(
                srv.addr,
                "u-boot.itb",
                &[("blksize", blksize), ("windowsize", window)],
            )
            .await
            .unwrap();
            assert_eq!(t.data.len(), len, "blksize {blksize} window {window}");
            assert!(
                t.data == data,
                "blksize {blksize} window {window} {len} bytes"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn block_numbers_roll_over_on_large_files() {
    let srv = TftpServer::start_with(|_| {}).await;
    // 100 MiB at 512-byte blocks is 204,800 blocks: the 16-bit counter wraps three times.
    let data = pattern(100 * 1024 * 1024 + 100);
    srv.put("big.img", &data);
    let t = read(
        srv.addr,
        "big.img",
        &[("blksize", "512"), ("windowsize", "16")],
    )
    .await
    .unwrap();
    assert_eq!(t.data.len(), data.len());
    assert!(t.data == data, "bytes differ after rollover");
}

#[tokio::test]
async fn missing_files_get_error_1() {
    let srv = TftpServer::start_with(|_| {}).await;
    let err = read(srv.addr, "no-such-kernel", &[]).await.unwrap_err();
    assert_eq!(err.code, 1);
}

#[tokio::test]
async fn leading_slash_is_relative_to_the_root() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("boot/pxelinux.0", b"loader");
    let t = read(srv.addr, "/boot/pxelinux.0", &[]).await.unwrap();
    assert_eq!(t.data, b"loader");
}

#[tokio::test]
async fn escapes_get_access_violation() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("ok.bin", b"inside");
    std::fs::write(srv.dir.path().join("secret"), b"TOP-SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(srv.dir.path().join("secret"), srv.root().join("link")).unwrap();
    // Absolute names are never the host's file system.
    for name in [
        "../secret",
        "ok/../../secret",
        "..\\secret",
        "link",
        "/etc/passwd",
    ] {
        let err = read(srv.addr, name, &[]).await.unwrap_err();
        assert_eq!(err.code, 2, "{name}: {err:?}");
    }
    assert_eq!(read(srv.addr, "ok.bin", &[]).await.unwrap().data, b"inside");
}

#[tokio::test]
async fn writes_are_refused_unless_uploads_are_on() {
    let srv = TftpServer::start_with(|_| {}).await;
    let err = write(srv.addr, "new.img", b"data", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, 2);
    assert!(!srv.root().join("new.img").exists());
}

/// Checks that `path` holds `want` the moment the client has heard the upload succeed:
/// the last block is acknowledged only once the file is in place.
async fn landed(path: &std::path::Path, want: &[u8]) {
    assert_eq!(
        std::fs::read(path).ok().as_deref(),
        Some(want),
        "{}",
        path.display()
    );
}

#[tokio::test]
async fn uploads_land_whole_and_respect_overwrite() {
    let srv = TftpServer::start_with(|c| c.upload = true).await;
    let data = pattern(50_000);
    write(srv.addr, "dump.bin", &data, &[], None).await.unwrap();
    landed(&srv.root().join("dump.bin"), &data).await;
    // Exactly two blocks' worth ends with an empty block.
    write(srv.addr, "exact.bin", &pattern(1024), &[], None)
        .await
        .unwrap();
    landed(&srv.root().join("exact.bin"), &pattern(1024)).await;

    let err = write(srv.addr, "dump.bin", b"replacement", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, 6, "an existing file is kept without --overwrite");
    assert!(std::fs::read(srv.root().join("dump.bin")).unwrap() == data);

    let srv = TftpServer::start_with(|c| {
        c.upload = true;
        c.overwrite = true;
    })
    .await;
    srv.put("dump.bin", b"old");
    write(
        srv.addr,
        "dump.bin",
        b"replacement",
        &[("blksize", "1468")],
        None,
    )
    .await
    .unwrap();
    landed(&srv.root().join("dump.bin"), b"replacement").await;
    let leftovers = std::fs::read_dir(srv.root()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary files remain");
}

#[tokio::test]
async fn uploads_keep_to_max_upload_and_leave_the_disk_its_floor() {
    let srv = TftpServer::start_with(|c| {
        c.upload = true;
        c.room.max_size = 100_000;
    })
    .await;
    let big = pattern(200_000);
    // Announced too large (tsize): refused before a block is sent.
    let err = write(srv.addr, "big.bin", &big, &[("tsize", "200000")], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, 3, "disk full or allocation exceeded");
    // Not announced: ended as it grows past the limit.
    let err = write(srv.addr, "big.bin", &big, &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, 3);
    let fits = pattern(100_000);
    write(srv.addr, "fits.bin", &fits, &[("tsize", "100000")], None)
        .await
        .unwrap();
    landed(&srv.root().join("fits.bin"), &fits).await;
    let names: Vec<_> = std::fs::read_dir(srv.root()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "nothing else stored: {names:?}");

    // A disk with less free than the floor takes nothing.
    let srv = TftpServer::start_with(|c| {
        c.upload = true;
        c.room.min_free = Some(u64::MAX / 4);
    })
    .await;
    let err = write(srv.addr, "small.bin", b"tiny", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, 3);
    assert_eq!(std::fs::read_dir(srv.root()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_aborted_upload_leaves_nothing_behind() {
    let srv = TftpServer::start_with(|c| {
        c.upload = true;
        c.overwrite = true;
        c.ack_timeout = Duration::from_millis(100);
        c.conn_timeout = Duration::from_millis(400);
    })
    .await;
    srv.put("good.img", b"the good image");
    write(srv.addr, "good.img", &pattern(100_000), &[], Some(5))
        .await
        .unwrap();
    // The server gives up on the silent client; only the good file may remain.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = std::fs::read_dir(srv.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if names == ["good.img"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read(srv.root().join("good.img")).unwrap(),
        b"the good image"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_reads_are_byte_identical() {
    // Fifty from one address: past the per-address cap a lab would keep.
    let srv = TftpServer::start_with(|c| c.max_per_client = 64).await;
    let data = std::sync::Arc::new(pattern(1_000_000));
    srv.put("fw.img", &data);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let addr = srv.addr;
        let blksize = if i % 2 == 0 { "1468" } else { "8192" };
        tasks.push(tokio::spawn(async move {
            read(addr, "fw.img", &[("blksize", blksize)]).await
        }));
    }
    for task in tasks {
        let t = task.await.unwrap().unwrap();
        assert!(t.data == *data);
    }
}

#[tokio::test]
async fn transfers_past_the_cap_get_a_clear_error() {
    let srv = TftpServer::start_with(|c| c.max_transfers = 1).await;
    srv.put("a.img", &pattern(10_000));
    let (_held, op) = start_read_and_stall(srv.addr, "a.img").await;
    assert_eq!(op, 3, "first client got data");
    let err = read(srv.addr, "a.img", &[]).await.unwrap_err();
    assert_eq!(err.code, 0);
    assert!(err.message.contains("busy"), "{}", err.message);
}

#[tokio::test]
async fn a_silent_client_holds_up_no_other_transfer() {
    // A board that went quiet mid-transfer must not delay another board's download
    // until its retransmit: transfers wait for their clients without blocking a thread
    // that others need.
    let srv = TftpServer::start_with(|c| {
        c.ack_timeout = Duration::from_secs(10);
        c.conn_timeout = Duration::from_secs(30);
    })
    .await;
    srv.put("kernel.img", &pattern(300_000));
    let mut silent = Vec::new();
    for _ in 0..3 {
        let (held, op) = start_read_and_stall(srv.addr, "kernel.img").await;
        assert_eq!(op, 3, "the silent client got its first block");
        silent.push(held);
    }
    let t = tokio::time::timeout(
        Duration::from_secs(5),
        read(srv.addr, "kernel.img", &[("blksize", "1468")]),
    )
    .await
    .expect("a read beside three silent clients finishes well before their 10 s timeout")
    .unwrap();
    assert!(t.data == pattern(300_000));
}

#[tokio::test]
async fn a_client_error_packet_ends_its_transfer_at_once() {
    // Default timeouts: without the abort, the slot would stay taken for seconds.
    let srv = TftpServer::start_with(|c| c.max_transfers = 1).await;
    srv.put("pxe.img", &pattern(500_000));
    let _rom = read_then_abort(srv.addr, "pxe.img").await;
    let start = std::time::Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(2) {
        match read(srv.addr, "pxe.img", &[("blksize", "1468")]).await {
            Ok(t) => {
                assert_eq!(t.data.len(), 500_000);
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    panic!("slot still taken 2 s after the client's ERROR: {last:?}");
}

/// netascii as tftpd-hpa sends it: LF as CR LF, a bare CR as CR NUL, the rest as it is.
fn netascii(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() * 2);
    for &b in file {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

#[tokio::test]
async fn netascii_reads_are_translated_as_tftpd_hpa_translates_them() {
    let srv = TftpServer::start_with(|_| {}).await;
    // LF, CR LF, a bare CR, NUL and a binary byte; tftpd-hpa 5.2 sent exactly the bytes
    // below for this file.
    let notes = b"line1\nline2\r\nbare\rcr\0nul\xff\n";
    srv.put("notes.txt", notes);
    let t = read_in(srv.addr, "notes.txt", "netascii", &[])
        .await
        .unwrap();
    assert_eq!(t.data, b"line1\r\nline2\r\0\r\nbare\r\0cr\0nul\xff\r\n");

    // Pairs split across block boundaries, at every block size.
    let mut long = vec![b'x'; 511];
    for i in 0..3000u32 {
        long.push(match i % 5 {
            0 => b'\n',
            1 => b'\r',
            2 => 0,
            _ => (i % 251) as u8,
        });
    }
    srv.put("long.txt", &long);
    for blksize in ["512", "1468"] {
        let t = read_in(srv.addr, "long.txt", "netascii", &[("blksize", blksize)])
            .await
            .unwrap();
        assert!(t.data == netascii(&long), "blksize {blksize}");
    }
    // octet is untouched.
    assert!(read(srv.addr, "long.txt", &[]).await.unwrap().data == long);
}

#[tokio::test]
async fn a_netascii_read_asking_for_tsize_gets_error_8_as_from_tftpd_hpa() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("notes.txt", b"line\n");
    let err = read_in(srv.addr, "notes.txt", "netascii", &[("tsize", "0")])
        .await
        .expect_err("an ERROR packet");
    assert_eq!(err.code, 8, "{err:?}");
}

#[tokio::test]
async fn netascii_uploads_are_translated_back() {
    let srv = TftpServer::start_with(|c| c.upload = true).await;
    let wire = b"a\r\nb\r\0c\rd\r";
    write_in(srv.addr, "new.txt", "netascii", wire, &[], None)
        .await
        .unwrap();
    // As tftpd-hpa lands it: CR LF is LF, CR NUL is CR, any other CR stays.
    assert_eq!(
        std::fs::read(srv.root().join("new.txt")).unwrap(),
        b"a\nb\rc\rd\r"
    );
}

#[tokio::test]
async fn a_clients_error_is_never_answered() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("pxe.img", &pattern(500_000));
    // After the first block, and (as a PXE ROM does after its tsize probe) after the OACK.
    let after_data = read_then_abort(srv.addr, "pxe.img").await;
    let after_oack = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    after_oack
        .send_to(
            &request_mode(1, "pxe.img", "octet", &[("tsize", "0")]),
            srv.addr,
        )
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = after_oack.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..2], &[0, 6], "an OACK: {:?}", &buf[..n]);
    after_oack
        .send_to(b"\0\x05\0\x08tsize probe done\0", from)
        .await
        .unwrap();
    // The transfers end at once; an answer would be as quick. A second of silence is
    // ten times the slowest answer seen on this machine.
    for rom in [after_data, after_oack] {
        let answer = tokio::time::timeout(Duration::from_secs(1), rom.recv_from(&mut buf)).await;
        assert!(
            answer.is_err(),
            "the server answered the client's ERROR: {:?}",
            answer.map(|r| r.map(|(n, _)| buf[..n].to_vec()))
        );
    }
}

/// What the server answers to a raw datagram within `wait`, as (opcode, body).
async fn answer(
    server: std::net::SocketAddr,
    packet: &[u8],
    wait: Duration,
) -> Option<(u16, Vec<u8>)> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n >= 2).then(|| (u16::from_be_bytes([buf[0], buf[1]]), buf[2..n].to_vec()))
}

#[tokio::test]
async fn malformed_packets_get_an_error_or_nothing_and_break_nothing() {
    let srv = TftpServer::start_with(|_| {}).await;
    let data = pattern(100_000);
    srv.put("zImage", &data);
    let cases: [(&str, &[u8]); 10] = [
        ("empty", b""),
        ("too short", b"\x00"),
        ("unknown opcode", b"\x00\x09zImage\x00octet\x00"),
        ("missing NUL", b"\x00\x01zImage"),
        ("no mode", b"\x00\x01zImage\x00"),
        ("unknown mode", b"\x00\x01zImage\x00bogus\x00"),
        ("blksize 7", b"\x00\x01zImage\x00octet\x00blksize\x007\x00"),
        (
            "blksize 70000",
            b"\x00\x01zImage\x00octet\x00blksize\x0070000\x00",
        ),
        (
            "blksize text",
            b"\x00\x01zImage\x00octet\x00blksize\x00abc\x00",
        ),
        ("stray ACK", b"\x00\x04\x00\x01"),
    ];
    for (what, packet) in cases {
        match answer(srv.addr, packet, Duration::from_millis(300)).await {
            None => {}
            Some((5, _)) => {}
            // A server may serve a request whose bad option it ignored or capped, but
            // never with an invalid block size.
            Some((6, body)) => {
                let text = String::from_utf8_lossy(&body).to_string();
                let fields: Vec<&str> = text.split('\0').collect();
                if let Some(i) = fields.iter().position(|f| *f == "blksize") {
                    let size: u32 = fields[i + 1].parse().unwrap();
                    assert!((8..=65464).contains(&size), "{what}: OACK blksize {size}");
                }
            }
            Some((3, _)) => {}
            Some((op, _)) => panic!("{what}: unexpected opcode {op}"),
        }
    }
    let t = read(srv.addr, "zImage", &[("blksize", "1468")])
        .await
        .unwrap();
    assert!(t.data == data, "still serving after malformed packets");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_flood_does_not_break_a_transfer() {
    let srv = TftpServer::start_with(|_| {}).await;
    let data = pattern(4 * 1024 * 1024);
    srv.put("fw.img", &data);
    let addr = srv.addr;
    let flood = tokio::spawn(async move {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0u32..20_000 {
            let junk = i.to_le_bytes().repeat(1 + (i % 7) as usize);
            let _ = sock.send_to(&junk, addr).await;
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let t = read(
        srv.addr,
        "fw.img",
        &[("blksize", "1468"), ("windowsize", "16")],
    )
    .await
    .unwrap();
    assert!(t.data == data, "transfer during a flood");
    flood.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_tells_running_transfers_and_stops_within_a_second() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("kernel.img", &pattern(200_000));
    // A client that took the first block and then went quiet, as a board mid-boot.
    let (sock, op) = start_read_and_stall(srv.addr, "kernel.img").await;
    assert_eq!(op, 3);
    let start = std::time::Instant::now();
    let stopping = tokio::spawn(srv.stop());
    let mut buf = vec![0u8; 2048];
    let message = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .expect("an ERROR packet within 2 s of shutdown")
            .unwrap();
        // Retransmitted DATA may come first.
        if u16::from_be_bytes([buf[0], buf[1]]) == 5 {
            break String::from_utf8_lossy(&buf[4..n])
                .trim_end_matches('\0')
                .to_string();
        }
    };
    assert!(message.contains("shutting down"), "{message}");
    stopping.await.unwrap().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}

/// Request datagrams with random file names, modes and options, as a fuzzer would send
/// them: the server answers each with an ERROR, a well-formed OACK or DATA, or nothing,
/// and still serves a normal read afterwards. 64 cases by default; PROPTEST_CASES sets more.
#[test]
fn random_requests_and_options_get_sane_answers() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let srv = runtime.block_on(TftpServer::start_with(|_| {}));
    let data = pattern(10_000);
    srv.put("zImage", &data);
    let addr = srv.addr;

    let name = prop_oneof![
        Just("zImage".to_string()),
        Just("../etc/passwd".to_string()),
        Just("/zImage".to_string()),
        Just(String::new()),
        "[ -~]{0,40}",
        any::<String>(),
    ];
    let mode = prop_oneof![
        Just("octet".to_string()),
        Just("OCTET".to_string()),
        Just("netascii".to_string()),
        Just("mail".to_string()),
        "[a-z]{0,8}",
    ];
    let option = (
        prop_oneof![
            Just("blksize".to_string()),
            Just("tsize".to_string()),
            Just("timeout".to_string()),
            Just("windowsize".to_string()),
            Just("BLKSIZE".to_string()),
            "[a-z]{0,10}",
        ],
        prop_oneof![
            (0u64..70_000).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            Just("-1".to_string()),
            Just(String::new()),
            "[ -~]{0,12}",
        ],
    );
    let opcode = prop_oneof![4 => Just(1u16), 1 => Just(2u16), 1 => any::<u16>()];
    let packet = (
        opcode,
        name,
        mode,
        proptest::collection::vec(option, 0..6),
        any::<bool>(),
    )
        .prop_map(|(op, name, mode, options, terminated)| {
            let options: Vec<(&str, &str)> = options
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut p = request_mode(op, &name, &mode, &options);
            if !terminated {
                p.pop();
            }
            p
        });

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&packet, |packet| {
            runtime.block_on(async {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                sock.send_to(&packet, addr).await.unwrap();
                let mut buf = vec![0u8; 70_000];
                let got =
                    tokio::time::timeout(Duration::from_millis(100), sock.recv_from(&mut buf))
                        .await;
                let Ok(Ok((n, from))) = got else {
                    return Ok(()); // Silence is a fine answer to garbage.
                };
                prop_assert!(n >= 4, "a {n}-byte answer");
                let op = u16::from_be_bytes([buf[0], buf[1]]);
                match op {
                    5 => {}
                    3 => {
                        prop_assert!(n - 4 <= 65464);
                    }
                    6 => {
                        let text = String::from_utf8_lossy(&buf[2..n]).to_string();
                        let fields: Vec<&str> = text.split('\0').collect();
                        for pair in fields.chunks(2) {
                            let [name, value] = pair else { continue };
                            let value: u64 = value.parse().map_err(|_| {
                                TestCaseError::fail(format!("OACK {name}={value:?}"))
                            })?;
                            let ok = match name.to_ascii_lowercase().as_str() {
                                "blksize" => (8..=65464).contains(&value),
                                "windowsize" => (1..=65535).contains(&value),
                                "timeout" => (1..=255).contains(&value),
                                "tsize" => true,
                                other => {
                                    return Err(TestCaseError::fail(format!(
                                        "OACK holds an option nobody asked for: {other}"
                                    )));
                                }
                            };
                            prop_assert!(ok, "OACK {name}={value}");
                        }
                    }
                    other => prop_assert!(false, "opcode {other} in answer to a request"),
                }
                if op == 3 || op == 6 {
                    // A transfer started: end it, as a client giving up would.
                    let _ = sock.send_to(b"\x00\x05\x00\x00done\x00", from).await;
                }
                Ok(())
            })
        })
        .unwrap();

    let t = runtime
        .block_on(read(addr, "zImage", &[("blksize", "1468")]))
        .unwrap();
    assert!(t.data == data, "still serving after the random requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_under_the_root_is_refused_at_once_and_hangs_nothing() {
    let srv = TftpServer::start_with(|_| {}).await;
    srv.put("zImage", &pattern(3000));
    let fifo = std::ffi::CString::new(srv.root().join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // A FIFO with no writer: a blocking open would wait for one forever.
    let refused = tokio::time::timeout(Duration::from_secs(5), read(srv.addr, "pipe", &[]))
        .await
        .expect("answered at once");
    assert!(refused.is_err(), "{refused:?}");
    let got = tokio::time::timeout(Duration::from_secs(5), read(srv.addr, "zImage", &[]))
        .await
        .expect("other transfers go on")
        .unwrap();
    assert!(got.data == pattern(3000));
}

/// Sends an RRQ for `file` asking for a 255 s timeout from a socket of its own; returns
/// the socket and the opcode of the server's first answer (6 OACK, 5 ERROR).
async fn ask_for_a_long_timeout(server: std::net::SocketAddr, file: &str) -> (UdpSocket, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rrq = request_mode(1, file, "octet", &[("timeout", "255")]);
    sock.send_to(&rrq, server).await.unwrap();
    let mut buf = [0u8; 1024];
    let (_, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    (sock, u16::from_be_bytes([buf[0], buf[1]]))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_holds_at_most_16_slots_and_no_longer_than_conn_timeout() {
    let srv = TftpServer::start_with(|c| {
        c.ack_timeout = Duration::from_millis(500);
        c.conn_timeout = Duration::from_secs(2);
    })
    .await;
    srv.put("zImage", &pattern(3000));
    // 16 transfers from one address that ask for a 255 s timeout and never acknowledge.
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let (sock, op) = ask_for_a_long_timeout(srv.addr, "zImage").await;
        assert_eq!(op, 6, "an OACK");
        stalled.push(sock);
    }
    let started = std::time::Instant::now();
    let (_, op) = ask_for_a_long_timeout(srv.addr, "zImage").await;
    assert_eq!(op, 5, "the 17th from the same address is refused");
    // The stalled ones end within --conn-timeout, not 255 s a wait: the address is let
    // in again.
    loop {
        let (_, op) = ask_for_a_long_timeout(srv.addr, "zImage").await;
        if op == 6 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still held");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_never_acknowledged_gets_two_copies_not_one_per_retry() {
    let srv = TftpServer::start_with(|c| {
        c.ack_timeout = Duration::from_millis(200);
        c.conn_timeout = Duration::from_secs(5);
    })
    .await;
    srv.put("zImage", &pattern(3000));
    // What a victim of a forged request sees: DATA 1 (or an OACK) again and again.
    for opts in [&[][..], &[("blksize", "1468")][..]] {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&request_mode(1, "zImage", "octet", opts), srv.addr)
            .await
            .unwrap();
        let mut copies = 0;
        let mut buf = [0u8; 2048];
        // Until the server has been silent for longer than its whole 5 s allowance
        // would leave between copies.
        while let Ok(got) =
            tokio::time::timeout(Duration::from_millis(1500), sock.recv_from(&mut buf)).await
        {
            got.unwrap();
            // DATA 1 or the OACK; the ERROR that ends the transfer is not a copy.
            if buf[1] == 3 || buf[1] == 6 {
                copies += 1;
            }
            assert!(copies <= 2, "{opts:?}: more than two copies");
        }
        assert_eq!(copies, 2, "{opts:?}");
    }
}
