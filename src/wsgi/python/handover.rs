//! What the supervisor does with a connection a worker let go of: the worker's copy is
//! closed, the supervisor still holds its own (see `ctl.rs`).
//!
//! - A client whose request the worker had taken, then died with: a 502.
//! - A client with a request on its way that the worker never read (it was stopping,
//!   for `--reload`, or it died): the connection goes to another worker, which serves
//!   it as if it had just accepted it; without one, a 502.
//! - Anything else: closed as the worker closed it.
//!
//! A stopping worker closes its idle keep-alive connections; a client may have sent its
//! next request at that very moment. So such a connection is held for a moment, without
//! a FIN, to see whether a request comes.

use std::io::{self, Write as _};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// How long a connection a stopping worker closed is held, waiting for a request that
/// may be on its way, before it is closed.
const GRACE: Duration = Duration::from_millis(250);

/// How long a connection answered with a 502 goes on being read (and what is read
/// thrown away) before it is closed: closing with unread bytes would reset it, and the
/// client could lose the answer.
const LINGER: Duration = Duration::from_secs(2);

/// Where a connection can go.
pub(crate) trait Handover: Send + Sync + 'static {
    /// Gives a connection to a serving worker other than `from`; gives it back when
    /// none took it.
    ///
    /// # Errors
    /// The connection, untaken.
    fn hand_over(&self, conn: OwnedFd, from: u32) -> Result<(), OwnedFd>;

    /// Whether the worker `pid` was asked to stop.
    fn stopping(&self, pid: u32) -> bool;
}

/// What a connection holds for the server to read.
enum Pending {
    /// The start of an HTTP/1 request (never read by its worker).
    Request,
    /// Nothing yet.
    Nothing,
    /// The client has gone, or sent something else (TLS, HTTP/2): not ours to answer.
    Other,
}

/// A glance at what is waiting on `conn`, leaving it there.
fn pending(conn: &OwnedFd) -> Pending {
    let mut head = [0u8; 8];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    match rustix::net::recv(conn, &mut head, flags) {
        Ok((n, _)) if n > 0 && looks_like_http1(&head[..n]) => Pending::Request,
        Err(rustix::io::Errno::AGAIN) => Pending::Nothing,
        _ => Pending::Other,
    }
}

/// Whether bytes start an HTTP/1 request line: a method (capital letters) and a space,
/// as far as they go. HTTP/2's preface (`PRI * ...`) and TLS records do not count.
fn looks_like_http1(head: &[u8]) -> bool {
    let method_len = head.iter().position(|&b| b == b' ').unwrap_or(head.len());
    method_len > 0
        && head[..method_len].iter().all(u8::is_ascii_uppercase)
        && !head.starts_with(b"PRI ")
}

/// A connection the worker `from` closed, while alive (it answered its last request).
pub(crate) fn closed_by_worker(conn: OwnedFd, to: &Arc<dyn Handover>, from: u32) {
    match pending(&conn) {
        Pending::Request => hand_over_or_fail(conn, to.as_ref(), from),
        Pending::Nothing if to.stopping(from) => {
            let to = to.clone();
            tokio::spawn(async move {
                if let Some(conn) = request_within(conn, GRACE).await {
                    hand_over_or_fail(conn, to.as_ref(), from);
                }
            });
        }
        Pending::Nothing | Pending::Other => {}
    }
}

/// A connection the worker `from` held when it died, its request not in the app.
pub(crate) fn left_by_dead_worker(conn: OwnedFd, to: &dyn Handover, from: u32) {
    if matches!(pending(&conn), Pending::Request) {
        hand_over_or_fail(conn, to, from);
    }
}

/// Waits up to `within` for a request to start on `conn`; the connection back if one
/// did.
async fn request_within(conn: OwnedFd, within: Duration) -> Option<OwnedFd> {
    // SAFETY: the AsyncFd owns the descriptor it watches, so it stays open while
    // registered; nothing here reads from it, only peeks.
    let watched = unsafe { AsyncFd::register(conn) }.ok()?;
    let _ = tokio::time::timeout(within, watched.readable()).await;
    let conn = watched.into_inner();
    matches!(pending(&conn), Pending::Request).then_some(conn)
}

fn hand_over_or_fail(conn: OwnedFd, to: &dyn Handover, from: u32) {
    if let Err(conn) = to.hand_over(conn, from) {
        answer_bad_gateway(conn);
    }
}

/// Answers 502 on a plain HTTP/1 connection and closes it without a reset.
pub(crate) fn answer_bad_gateway(conn: OwnedFd) {
    const BODY: &str = "the app's worker failed\n";
    let answer = format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut stream = std::net::TcpStream::from(conn);
    // The socket is non-blocking (the worker made it so); an answer this small fits.
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    tokio::spawn(linger(stream));
}

/// Reads and drops what the client still sends, until it closes (or for [`LINGER`]):
/// a socket closed with unread bytes is reset, which can lose what was written last.
async fn linger(stream: std::net::TcpStream) {
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let drain = async {
        let mut sink = [0u8; 4096];
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::looks_like_http1;

    #[test]
    fn only_an_http1_request_line_counts_as_a_request() {
        assert!(looks_like_http1(b"GET / HT"));
        assert!(looks_like_http1(b"POST"));
        assert!(looks_like_http1(b"DELETE /"));
        assert!(!looks_like_http1(b"PRI * HT"));
        assert!(!looks_like_http1(&[0x16, 0x03, 0x01, 0x02]));
        assert!(!looks_like_http1(b"get / "));
        assert!(!looks_like_http1(b" GET"));
        assert!(!looks_like_http1(b""));
    }
}
