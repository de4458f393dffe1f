//! `tftpd`'s options (which the TFTP daemons flatten too) and its command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use super::values::{self, Endpoint, Given};
use super::{CommonArgs, ListenArgs, LogArgs};

/// The TFTP server's options: what `tftpd`, `tftpdaemon` and `atftpdaemon` all take.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TftpdOptions {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Seconds to wait for an acknowledgement before sending again
    #[arg(
        long,
        value_name = "SECS",
        default_value = "0.5",
        allow_hyphen_values = true,
        value_parser = values::seconds("--ack-timeout")
    )]
    pub ack_timeout: Duration,

    /// Seconds before a silent client's transfer is abandoned [default: $SOCK_TIMEOUT, else 5]
    #[arg(
        long,
        value_name = "SECS",
        allow_hyphen_values = true,
        value_parser = values::seconds_or_blank("--conn-timeout")
    )]
    pub conn_timeout: Option<Given<Duration>>,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Largest block size granted, 8 to 65464 (lower it for clients behind a small MTU)
    #[arg(
        long,
        value_name = "N",
        default_value = "65464",
        allow_hyphen_values = true,
        value_parser = values::blksize("--max-blksize")
    )]
    pub max_blksize: u16,

    /// Largest window size granted (RFC 7440), 1 to 65535
    #[arg(
        long,
        value_name = "N",
        default_value = "64",
        allow_hyphen_values = true,
        value_parser = values::window("--max-window")
    )]
    pub max_window: u16,

    /// Transfers one client address may run at once; past it, an error (so that one
    /// host on the network cannot take every slot)
    #[arg(long, value_name = "N", default_value = "16", value_parser = values::count("--max-per-client"))]
    pub max_per_client: usize,

    /// Accept write requests (uploads); off by default
    #[arg(long)]
    pub upload: bool,

    /// Let an upload replace an existing file; off by default
    #[arg(long, requires = "upload")]
    pub overwrite: bool,

    /// The largest file an upload may be (K, M, G suffixes); a larger announced size
    /// (tsize) is refused up front, and a transfer that grows past it is ended with a
    /// disk-full error [default: 4G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--max-upload"))]
    pub max_upload: Option<u64>,

    /// The free space uploads leave on the disk (K, M, G suffixes; 0: none); an upload
    /// that would go below it ends with a disk-full error [default: 1% of the disk, at
    /// most 1G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--min-free"))]
    pub min_free: Option<u64>,

    /// Lose PERCENT of the packets sent (DATA, ACK, OACK) at random, to test a client's
    /// retransmits: 5, 2.5
    #[arg(long, value_name = "PERCENT", value_parser = values::percent("--loss"))]
    pub loss: Option<crate::tftp::Loss>,

    /// Hold each packet sent back for DURATION (20ms, 1s), as a slow link would
    #[arg(long = "delay", value_name = "DURATION", value_parser = values::duration("--delay"))]
    pub packet_delay: Option<Duration>,

    /// Seed the random losses, so that a run can be repeated [default: a new seed each
    /// start, printed in the banner]
    #[arg(long, value_name = "N", value_parser = values::positive("--seed"))]
    pub seed: Option<u64>,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Default for TftpdOptions {
    fn default() -> Self {
        Self {
            listen: ListenArgs::default(),
            ack_timeout: crate::tftp::DEFAULT_ACK_TIMEOUT,
            conn_timeout: None,
            max_per_client: crate::tftp::DEFAULT_MAX_PER_CLIENT,
            directory: None,
            max_blksize: crate::tftp::DEFAULT_MAX_BLKSIZE,
            max_window: crate::tftp::DEFAULT_MAX_WINDOW,
            upload: false,
            overwrite: false,
            max_upload: None,
            min_free: None,
            loss: None,
            packet_delay: None,
            seed: None,
            log: LogArgs::default(),
        }
    }
}

/// `tftpd [IFACE] [PORT]`: serve a directory over TFTP.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tftpd",
    version,
    about = "Serve a directory over TFTP to boards, boot ROMs and busybox",
    after_help = "A lone number is a port: `tftpd 9069` and `tftpd 9069 0.0.0.0` both work.\n\
                  Environment: IFACE, PORT, DOCROOT, SOCK_TIMEOUT, LOG, DEBUG (see --show-settings).\n\
                  Port 69 needs root or: sudo setcap cap_net_bind_service=+ep $(command -v tftpd)"
)]
pub struct TftpdArgs {
    /// Listen address and/or port, in either order [default: $IFACE, else 127.0.0.1;
    /// $PORT, else 9069]
    #[arg(value_name = "IFACE|PORT", num_args = 0..=2, value_parser = values::endpoint)]
    pub positional: Vec<Endpoint>,

    #[command(flatten)]
    pub options: TftpdOptions,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl TftpdArgs {
    /// The options with the positional address and port folded in.
    ///
    /// # Errors
    /// A second number, which cannot be an address.
    pub fn options(&self) -> Result<TftpdOptions, crate::settings::SettingsError> {
        let (mut port, mut iface) = (None, None);
        for endpoint in &self.positional {
            match *endpoint {
                Endpoint::Blank => {}
                Endpoint::Port(p) if port.is_none() => port = Some(p),
                // A second number is not an address, and says so in IFACE's words.
                Endpoint::Port(p) => {
                    iface = Some(crate::settings::parse_addr("IFACE", &p.to_string())?);
                }
                Endpoint::Addr(a) => iface = Some(a),
            }
        }
        let mut options = self.options.clone();
        options.listen = options.listen.or(port, iface);
        Ok(options)
    }
}
