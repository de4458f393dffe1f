//! Stand-ins turned into sendfile calls, checked against real sockets.

use super::*;

/// Whether a connection under congestion control `ca` is told to keep little unsent.
#[cfg(target_os = "linux")]
async fn kept_little_unsent_under(ca: &[u8]) -> bool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let sock = socket2::SockRef::from(&server);
    let name = String::from_utf8_lossy(ca);
    sock.set_tcp_congestion(ca)
        .unwrap_or_else(|e| panic!("{name} not available here: {e}"));
    assert_ne!(sock.tcp_notsent_lowat().unwrap(), NOTSENT_LOWAT);
    let limited = keep_little_unsent(&server);
    let lowat = sock.tcp_notsent_lowat().unwrap();
    assert_eq!(lowat == NOTSENT_LOWAT, limited, "{name}: {lowat}");
    limited
}

// reno, which paces nothing (as cubic), is the one congestion control any user may pick.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_connection_not_under_bbr_keeps_the_default_unsent_limit() {
    assert!(!kept_little_unsent_under(b"reno").await);
}

#[cfg(target_os = "linux")]
#[tokio::test]
#[ignore = "needs BBR, which only root may pick where it is not the default; bash scripts/test runs it"]
async fn a_connection_under_bbr_is_told_to_keep_little_unsent() {
    assert!(kept_little_unsent_under(b"bbr").await);
}

/// Sends a 4 MiB file through `poll_send` on a real loopback connection under
/// congestion control `ca`, to a client that reads it all, and returns the largest
/// number of bytes sent between two pauses and how many pauses were the download
/// giving way (its own waker woken before the call returned) rather than a full
/// socket.
#[cfg(target_os = "linux")]
async fn send_4_mib_under(ca: &[u8]) -> (usize, usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Wake, Waker};
    use tokio::io::AsyncReadExt as _;

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.img");
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = Arc::new(File::open(&path).unwrap());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    socket2::SockRef::from(&server)
        .set_tcp_congestion(ca)
        .unwrap_or_else(|e| panic!("{} not available here: {e}", String::from_utf8_lossy(ca)));
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });

    let outbox = Outbox::default();
    for offset in (0..data.len()).step_by(STAND_IN_LEN) {
        outbox.push(&file, offset as u64, STAND_IN_LEN);
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    // On this single-threaded runtime nothing else runs during a call, so a waker
    // woken by the time it returns was woken by the call itself.
    let (mut at, mut run, mut longest, mut gave_way) = (0, 0, 0, 0);
    let mut left = data.len();
    while left > 0 {
        flag.0.store(false, Ordering::SeqCst);
        match poll_send(&outbox, &server, &mut cx, at, STAND_IN_LEN - at) {
            Poll::Ready(n) => {
                let n = n.unwrap();
                (run, left) = (run + n, left - n);
                at = (at + n) % STAND_IN_LEN;
            }
            Poll::Pending => {
                longest = longest.max(run);
                run = 0;
                if flag.0.load(Ordering::SeqCst) {
                    gave_way += 1;
                    // Let the client read, as the event loop's other work would.
                    tokio::task::yield_now().await;
                } else {
                    server.writable().await.unwrap();
                }
            }
        }
    }
    drop(server);
    assert!(
        reader.await.unwrap() == data,
        "the client got other bytes than the file's"
    );
    (longest.max(run), gave_way)
}

#[cfg(target_os = "linux")]
#[tokio::test]
#[ignore = "needs BBR, which only root may pick where it is not the default; bash scripts/test runs it"]
async fn a_download_under_bbr_gives_way_after_each_turn() {
    let (longest, gave_way) = send_4_mib_under(b"bbr").await;
    assert!(longest <= TURN, "{longest} bytes in one turn");
    assert!(gave_way > 0, "never gave way to other connections");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_download_not_under_bbr_sends_until_the_socket_is_full() {
    let (_, gave_way) = send_4_mib_under(b"reno").await;
    assert_eq!(gave_way, 0, "gave way {gave_way} times under reno");
}

#[test]
fn a_write_is_split_at_its_first_stand_in() {
    let head = b"HTTP/1.1 200 OK\r\n\r\n";
    let s = stand_in(100);
    let bufs = [IoSlice::new(head), IoSlice::new(&s), IoSlice::new(head)];
    assert!(matches!(plan(&bufs), Plan::Bytes(1)));
    let bufs = [IoSlice::new(&s[10..]), IoSlice::new(head)];
    assert!(matches!(plan(&bufs), Plan::File { at: 10, len: 90 }));
    let bufs = [IoSlice::new(head), IoSlice::new(head)];
    assert!(matches!(plan(&bufs), Plan::Bytes(2)));
    let bufs = [IoSlice::new(&[]), IoSlice::new(&s)];
    assert!(matches!(plan(&bufs), Plan::File { at: 0, len: 100 }));
}

#[test]
fn the_page_cache_is_asked_about_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    std::fs::write(&path, vec![7u8; 3 * 4096 + 5]).unwrap();
    let file = File::open(&path).unwrap();
    // Just written, so cached (where the kernel can tell at all).
    if let Some(answer) = cached(&file, 100, 3 * 4096) {
        assert!(answer);
    }
    assert_ne!(
        cached(&file, 0, 8 * 4096),
        Some(true),
        "past the end is not cached"
    );
}
