//! The TFTP server on labserv's TFTP engine: `serve(socket, config, shutdown)`.
//!
//! Boards, boot ROMs and busybox fetch kernels and images from here. The server is
//! read-only unless uploads are switched on; every path is confined to the root.

mod files;
pub(crate) mod handler;
mod transfers;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tftp_engine::server::{LinkFaults, TftpServerBuilder};

use crate::error::{Error, Result};
use crate::shutdown::Shutdown;

/// Default for [`TftpConfig::ack_timeout`]: the retransmit interval.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_millis(500);
/// Default for [`TftpConfig::max_blksize`]: the largest block RFC 2348 allows.
pub const DEFAULT_MAX_BLKSIZE: u16 = 65464;
/// Default for [`TftpConfig::max_window`].
pub const DEFAULT_MAX_WINDOW: u16 = 64;
/// How long a stopping server waits for its transfers to send their clients an ERROR.
const STOP_GRACE: Duration = Duration::from_millis(900);

/// Default for [`TftpConfig::max_transfers`].
pub const DEFAULT_MAX_TRANSFERS: usize = 256;
/// Default for [`TftpConfig::max_per_client`]: a board fetches a kernel, a device tree
/// and an initrd, not dozens at once.
pub const DEFAULT_MAX_PER_CLIENT: usize = 16;

/// What the TFTP server serves and how.
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// The directory to serve.
    pub root: PathBuf,
    /// Accept write requests.
    pub upload: bool,
    /// Let a write replace an existing file.
    pub overwrite: bool,
    /// How large an upload may be, and the free space uploads leave.
    pub room: crate::landing::Room,
    /// How long to wait for an acknowledgement before sending again.
    pub ack_timeout: Duration,
    /// How long a silent peer is given before its transfer is abandoned.
    pub conn_timeout: Duration,
    /// Largest block size granted (clients behind a small MTU ask for less).
    pub max_blksize: u16,
    /// Largest window size granted (RFC 7440).
    pub max_window: u16,
    /// Transfers running at once; clients past it get an error.
    pub max_transfers: usize,
    /// Transfers one client address may run at once.
    pub max_per_client: usize,
    /// Packets lost or held back on purpose.
    pub faults: Option<Faults>,
}

/// A share of packets, in hundredths of a percent (500 is 5 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss(pub u16);

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", f64::from(self.0) / 100.0)
    }
}

/// What happens on purpose to the packets transfers send, to test a boot loader's
/// retransmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Packets lost at random.
    pub loss: Loss,
    /// How long each packet is held back.
    pub delay: Duration,
    /// Seeds the losses: the same seed loses the same packets of each transfer.
    pub seed: u64,
}

impl Faults {
    /// The faults in words, for the banner and the log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.loss.0 > 0 {
            parts.push(format!(
                "{} of packets lost (--seed {} repeats them)",
                self.loss, self.seed
            ));
        }
        if !self.delay.is_zero() {
            parts.push(format!("{:?} before each packet", self.delay));
        }
        parts.join(", ")
    }
}

impl TftpConfig {
    /// Serves `root` read-only with default timeouts and limits.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            upload: false,
            overwrite: false,
            room: crate::landing::Room::default(),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            conn_timeout: crate::settings::DEFAULT_SOCK_TIMEOUT,
            max_blksize: DEFAULT_MAX_BLKSIZE,
            max_window: DEFAULT_MAX_WINDOW,
            max_transfers: DEFAULT_MAX_TRANSFERS,
            max_per_client: DEFAULT_MAX_PER_CLIENT,
            faults: None,
        }
    }
}

/// Serves TFTP on `socket` until `shutdown` is triggered.
///
/// # Errors
/// [`Error::Directory`] if the root cannot be served, or an I/O error from the socket.
pub async fn serve(socket: UdpSocket, config: TftpConfig, shutdown: Shutdown) -> Result<()> {
    crate::memory::trim_arena_tops_early();
    let root = crate::confine::check_root(&config.root)?;
    let handler = handler::Handler::new(
        root,
        config.upload,
        config.overwrite,
        config.room,
        config.max_transfers.max(1),
        config.max_per_client.max(1),
    );
    let transfers = handler.transfers();
    // The engine counts retries, not time: give a silent peer conn_timeout in all.
    let retries = (config.conn_timeout.as_secs_f64() / config.ack_timeout.as_secs_f64().max(0.001))
        .ceil()
        .max(1.0) as u32;
    let mut builder = TftpServerBuilder::with_handler(handler);
    if let Some(faults) = config.faults {
        builder = builder.link_faults(LinkFaults {
            loss: f64::from(faults.loss.0) / 10_000.0,
            delay: faults.delay,
            seed: faults.seed,
        });
    }
    let server = builder
        .std_socket(socket)
        .map_err(|e| Error::io("using the TFTP socket", std::io::Error::other(e)))?
        .timeout(config.ack_timeout)
        .max_send_retries(retries)
        .block_size_limit(config.max_blksize.max(8))
        .window_size_limit(config.max_window.max(1))
        .build()
        .await
        .map_err(|e| Error::io("starting the TFTP server", std::io::Error::other(e)))?;
    // Each transfer runs on a thread of its own; the listener needs none.
    let stop = server.stop_handle();
    let served = tokio::select! {
        served = server.serve() => served.map_err(|e| e.to_string()),
        () = shutdown.triggered() => {
            // Each running transfer answers its client with an ERROR at its next step
            // (at the latest one ACK timeout later); give them that long, within the one
            // second a stop may take.
            stop.stop();
            let deadline = Instant::now() + STOP_GRACE;
            while transfers.count() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        }
    };
    served.map_err(|e| Error::io("serving TFTP", std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::handler::resolve;
    use std::path::{Path, PathBuf};

    #[test]
    fn names_resolve_below_the_root() {
        let root = Path::new("/srv/tftp");
        assert_eq!(
            resolve(root, Path::new("pxelinux.0")),
            Ok(PathBuf::from("/srv/tftp/pxelinux.0"))
        );
        assert_eq!(
            resolve(root, Path::new("/boot/zImage")),
            Ok(PathBuf::from("/srv/tftp/boot/zImage"))
        );
        assert_eq!(
            resolve(root, Path::new("./a//b")),
            Ok(PathBuf::from("/srv/tftp/a/b"))
        );
    }

    #[test]
    fn escapes_are_refused() {
        let root = Path::new("/srv/tftp");
        for bad in ["../etc/passwd", "a/../../x", "a\\..\\b", "", "/", "."] {
            assert!(resolve(root, Path::new(bad)).is_err(), "{bad}");
        }
    }
}
