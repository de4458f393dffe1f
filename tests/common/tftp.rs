//! A small TFTP client for tests (RFC 1350 with option negotiation and windowsize), and
//! an in-process TFTP server on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use labserv::Shutdown;
use labserv::tftp::TftpConfig;
use tokio::net::UdpSocket;

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

/// A TFTP server running in this test's runtime; stopped when dropped.
pub struct TftpServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<labserv::Result<()>>>,
}

impl TftpServer {
    pub async fn start_with(tune: impl FnOnce(&mut TftpConfig)) -> Self {
        let (dir, root) = super::fresh_root("tftp");
        let mut config = TftpConfig::new(&root);
        tune(&mut config);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind port 0");
        let addr = socket.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(labserv::tftp::serve(socket, config, shutdown.clone()));
        Self {
            addr,
            dir,
            shutdown,
            task: Some(task),
        }
    }

    /// Triggers shutdown and waits (at most 10 s) for `serve` to return.
    pub async fn stop(mut self) -> labserv::Result<()> {
        super::stop(&self.shutdown, self.task.take()).await
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("tftp")
    }

    pub fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        super::put(&self.root(), rel, bytes)
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// An ERROR packet from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpError {
    pub code: u16,
    pub message: String,
}

/// A finished read: the bytes and the options the server acknowledged.
#[derive(Debug)]
pub struct Transfer {
    pub data: Vec<u8>,
    pub oack: Vec<(String, String)>,
}

impl Transfer {
    pub fn option(&self, name: &str) -> Option<&str> {
        self.oack
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request(op: u16, file: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request_mode(op, file, "octet", opts)
}

/// A request datagram (RRQ, WRQ, or any opcode) with its mode and options.
pub fn request_mode(op: u16, file: &str, mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut p = op.to_be_bytes().to_vec();
    for part in [file, mode] {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    for (k, v) in opts {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

fn ack(block: u16) -> Vec<u8> {
    let mut p = ACK.to_be_bytes().to_vec();
    p.extend_from_slice(&block.to_be_bytes());
    p
}

fn parse_oack(body: &[u8]) -> Vec<(String, String)> {
    let fields: Vec<String> = body
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    fields
        .chunks(2)
        .filter(|c| c.len() == 2 && !c[0].is_empty())
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

fn parse_error(body: &[u8]) -> TftpError {
    let code = u16::from_be_bytes([body[0], body[1]]);
    let message = String::from_utf8_lossy(&body[2..])
        .trim_end_matches('\0')
        .to_string();
    TftpError { code, message }
}

async fn client_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("client socket")
}

async fn recv(sock: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    tokio::time::timeout(Duration::from_secs(10), sock.recv_from(buf))
        .await
        .expect("server answered within 10 s")
        .expect("recv")
}

/// Reads `file` with the given options; acknowledges each window (RFC 7440).
pub async fn read(
    server: SocketAddr,
    file: &str,
    opts: &[(&str, &str)],
) -> Result<Transfer, TftpError> {
    read_in(server, file, "octet", opts).await
}

/// [`read`] in a transfer mode of choice; the data is returned as it came on the wire.
pub async fn read_in(
    server: SocketAddr,
    file: &str,
    mode: &str,
    opts: &[(&str, &str)],
) -> Result<Transfer, TftpError> {
    let sock = client_socket().await;
    sock.send_to(&request_mode(RRQ, file, mode, opts), server)
        .await
        .expect("send RRQ");
    let mut buf = vec![0u8; 65536 + 4];
    let mut data = Vec::new();
    let mut oack = Vec::new();
    let (mut blksize, mut window) = (512usize, 1u32);
    let mut last_good: u16 = 0;
    let mut in_window = 0u32;
    loop {
        let (n, from) = recv(&sock, &mut buf).await;
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        match op {
            OACK => {
                oack = parse_oack(&buf[2..n]);
                let get = |k: &str| oack.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                if let Some(b) = get("blksize") {
                    blksize = b.parse().expect("numeric blksize");
                }
                if let Some(w) = get("windowsize") {
                    window = w.parse().expect("numeric windowsize");
                }
                sock.send_to(&ack(0), from).await.expect("ack 0");
            }
            DATA => {
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                let payload = &buf[4..n];
                if block != last_good.wrapping_add(1) {
                    // Out of order or repeated: tell the server where we are.
                    sock.send_to(&ack(last_good), from).await.expect("re-ack");
                    in_window = 0;
                    continue;
                }
                data.extend_from_slice(payload);
                last_good = block;
                in_window += 1;
                let last = payload.len() < blksize;
                if last || in_window == window {
                    sock.send_to(&ack(block), from).await.expect("ack");
                    in_window = 0;
                }
                if last {
                    return Ok(Transfer { data, oack });
                }
            }
            ERROR => return Err(parse_error(&buf[2..n])),
            other => panic!("unexpected opcode {other}"),
        }
    }
}

/// Starts a read, takes the first block, then aborts with an ERROR packet as a PXE ROM
/// does after its tsize probe. The socket is returned so that it stays open, as the
/// ROM's does: only the ERROR packet may end the transfer.
pub async fn read_then_abort(server: SocketAddr, file: &str) -> UdpSocket {
    let sock = client_socket().await;
    sock.send_to(&request(RRQ, file, &[]), server)
        .await
        .expect("send RRQ");
    let mut buf = vec![0u8; 1024];
    let (_, from) = recv(&sock, &mut buf).await;
    let mut p = ERROR.to_be_bytes().to_vec();
    p.extend_from_slice(&0u16.to_be_bytes());
    p.extend_from_slice(b"transfer cancelled\0");
    sock.send_to(&p, from).await.expect("send ERROR");
    sock
}

/// Sends a read request and returns the server's first answer, unacknowledged: the
/// transfer then holds its slot until the server gives up on us.
pub async fn start_read_and_stall(server: SocketAddr, file: &str) -> (UdpSocket, u16) {
    let sock = client_socket().await;
    sock.send_to(&request(RRQ, file, &[]), server)
        .await
        .expect("send RRQ");
    let mut buf = vec![0u8; 1024];
    let (_, _) = recv(&sock, &mut buf).await;
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    (sock, op)
}

/// Writes `data` as `file` (lock-step); `stop_after` sends only that many blocks and
/// then goes silent, as a client that lost its link.
pub async fn write(
    server: SocketAddr,
    file: &str,
    data: &[u8],
    opts: &[(&str, &str)],
    stop_after: Option<usize>,
) -> Result<(), TftpError> {
    write_in(server, file, "octet", data, opts, stop_after).await
}

/// [`write`] in a transfer mode of choice; `data` goes on the wire as it is.
pub async fn write_in(
    server: SocketAddr,
    file: &str,
    mode: &str,
    data: &[u8],
    opts: &[(&str, &str)],
    stop_after: Option<usize>,
) -> Result<(), TftpError> {
    let sock = client_socket().await;
    sock.send_to(&request_mode(WRQ, file, mode, opts), server)
        .await
        .expect("send WRQ");
    let mut buf = vec![0u8; 2048];
    let (n, peer) = recv(&sock, &mut buf).await;
    let mut blksize = 512usize;
    match u16::from_be_bytes([buf[0], buf[1]]) {
        ACK => {}
        OACK => {
            if let Some((_, b)) = parse_oack(&buf[2..n])
                .into_iter()
                .find(|(k, _)| k == "blksize")
            {
                blksize = b.parse().expect("numeric blksize");
            }
        }
        ERROR => return Err(parse_error(&buf[2..n])),
        other => panic!("unexpected opcode {other}"),
    }
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        let mut v: Vec<&[u8]> = data.chunks(blksize).collect();
        if data.len().is_multiple_of(blksize) {
            v.push(&[]);
        }
        v
    };
    for (i, chunk) in blocks.iter().enumerate() {
        if stop_after == Some(i) {
            return Ok(());
        }
        let block = (i + 1) as u16;
        let mut p = DATA.to_be_bytes().to_vec();
        p.extend_from_slice(&block.to_be_bytes());
        p.extend_from_slice(chunk);
        loop {
            sock.send_to(&p, peer).await.expect("send DATA");
            let (n, _) = recv(&sock, &mut buf).await;
            match u16::from_be_bytes([buf[0], buf[1]]) {
                ACK if u16::from_be_bytes([buf[2], buf[3]]) == block => break,
                ACK => continue,
                ERROR => return Err(parse_error(&buf[2..n])),
                other => panic!("unexpected opcode {other}"),
            }
        }
    }
    Ok(())
}
