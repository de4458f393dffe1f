//! `serv`'s options (which `httpdaemon` flattens too) and its command line.

use std::path::PathBuf;

use clap::{Args, Parser};

use super::values::{self, Given};
use super::{CommonArgs, FaultArgs, GateArgs, ListenArgs, LogArgs, TlsArgs};

/// The file server's options: what `serv` and `httpdaemon` both take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ServOptions {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Directory to serve [default: $DOCROOT, else the current directory]
    #[arg(short, long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Refuse files reached through a symlink that leads outside the directory
    #[arg(long)]
    pub no_follow_symlinks: bool,

    /// List and serve names that start with a dot (.git, .ssh, .env), and take uploads
    /// of them; hidden and refused (404) by default
    #[arg(long)]
    pub dotfiles: bool,

    /// Serve and list only files whose names match these globs (comma-separated,
    /// repeatable: '*.img,*.bin'; with a '/', the path below the directory: 'fw/*.img');
    /// others get 404. Folders stay, to reach the files
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--only"))]
    pub only: Vec<String>,

    /// Hide and refuse (404) names matching these globs, and all a matching folder
    /// holds: 'secret*,*.key'
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--hide"))]
    pub hide: Vec<String>,

    /// Keep names matching these globs (and all a matching folder holds) from uploads,
    /// deletes and new folders (403) when writes are on: 'golden,release/*'
    #[arg(long, value_name = "GLOBS", value_parser = values::globs("--read-only"))]
    pub read_only: Vec<String>,

    /// Take uploads: PUT (curl -T) and the listing page's form (multipart POST), and
    /// DELETE and MKCOL; off by default
    #[arg(long)]
    pub upload: bool,

    /// Let an upload replace an existing file (else 409); off by default
    #[arg(long, requires = "upload")]
    pub overwrite: bool,

    /// The largest file an upload may be (K, M, G suffixes); larger gets 413 [default: 4G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--max-upload"))]
    pub max_upload: Option<u64>,

    /// The free space uploads leave on the disk (K, M, G suffixes; 0: none); an upload
    /// that would go below it gets 507 [default: 1% of the disk, at most 1G]
    #[arg(long, value_name = "SIZE", requires = "upload", value_parser = values::size("--min-free"))]
    pub min_free: Option<u64>,

    /// Take uploads from pages of other origins too (a web flasher elsewhere); by default
    /// a browser's write from another site is refused (403), so that no page anyone opens
    /// can plant or replace files here
    #[arg(long, requires = "upload")]
    pub cross_site_uploads: bool,

    #[command(flatten)]
    pub gate: GateArgs,

    /// Print a QR code of the first address in the banner, for a phone's camera
    #[arg(long)]
    pub qr: bool,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub faults: FaultArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `serv [PORT] [IFACE]`: serve a directory over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "serv",
    version,
    about = "Serve a directory over HTTP/1.1 and HTTP/2 so boards and phones can fetch files",
    after_help = "Environment: PORT, IFACE, DOCROOT, LOG, DEBUG (see --show-settings).\n\
                  Empty arguments count as absent, so `serv $PORT $IFACE` works in a Procfile."
)]
pub struct ServArgs {
    /// Port to listen on [default: $PORT, else 8080]
    #[arg(value_name = "PORT", value_parser = values::port("PORT"))]
    pub port_arg: Option<Given<u16>>,

    /// Address to listen on [default: $IFACE, else every interface, IPv4 and IPv6]
    #[arg(value_name = "IFACE", value_parser = values::addr("IFACE"))]
    pub iface_arg: Option<Given<std::net::IpAddr>>,

    #[command(flatten)]
    pub options: ServOptions,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl ServArgs {
    /// The options with the positional PORT and IFACE folded in.
    pub fn options(&self) -> ServOptions {
        let mut options = self.options.clone();
        options.listen = options
            .listen
            .or(values::given(self.port_arg), values::given(self.iface_arg));
        options
    }
}
