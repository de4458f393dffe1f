//! One config step per server: [`serv`], [`tftpd`] and [`wsgi`] turn typed arguments and
//! the [`Settings`] into a [`ServerConfig`], and every entry point (the foreground
//! commands, the daemons, daemontui) goes through them. A [`ServerConfig`] then binds its
//! socket and serves the same way wherever it was made.

mod resolve;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use resolve::{serv, tftpd, wsgi};

use crate::confine::check_root;
use crate::error::{Error, Result};
use crate::http::HttpConfig;
use crate::logging::LogConfig;
use crate::net;
use crate::server::faults::Faults;
use crate::server::tls::{CertSource, Tls};
use crate::settings::Settings;
use crate::tftp::TftpConfig;
use crate::wsgi::python::PythonConfig;
use crate::wsgi::{SharedApp, WsgiConfig};

/// Everything one server needs to run, resolved from arguments and environment.
#[derive(Clone)]
pub struct ServerConfig {
    /// The settings, with the arguments' port and address folded in (what
    /// `--show-settings` reports, and where a daemon's files go).
    pub settings: Settings,
    /// The address to listen on; `None` is every interface, IPv4 and IPv6 (HTTP only).
    pub ip: Option<IpAddr>,
    /// The port to listen on.
    pub port: u16,
    /// How much to log and where.
    pub log: LogConfig,
    /// Print no banner.
    pub quiet: bool,
    /// What is served.
    pub service: Service,
    /// Serve HTTPS with this certificate (the HTTP servers only).
    pub tls: Option<CertSource>,
    /// Print a QR code of the first address in the banner.
    pub qr: bool,
}

/// What a server serves.
#[derive(Clone)]
pub enum Service {
    /// Files over HTTP.
    Files(HttpConfig),
    /// Files over TFTP.
    Tftp(TftpConfig),
    /// An app over HTTP.
    App {
        /// What the banner calls it: `the demo app`, `the CGI scripts in /srv/cgi`.
        name: String,
        /// The app.
        app: SharedApp,
        /// How it is hosted.
        config: WsgiConfig,
    },
    /// A Python WSGI app over HTTP, in worker processes.
    Python {
        /// What the banner calls it: `myapp:app (2 Python workers)`.
        name: String,
        /// The app and how it is hosted.
        config: PythonConfig,
    },
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Service::Files(c) => f.debug_tuple("Files").field(c).finish(),
            Service::Tftp(c) => f.debug_tuple("Tftp").field(c).finish(),
            Service::App { name, config, .. } => f
                .debug_struct("App")
                .field("name", name)
                .field("config", config)
                .finish_non_exhaustive(),
            Service::Python { name, config } => f
                .debug_struct("Python")
                .field("name", name)
                .field("config", config)
                .finish(),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("log", &self.log)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// `text` as a QR code drawn with half blocks, two modules a character: the light modules
/// and the quiet zone are the blocks, so that on a dark terminal (as most are) the screen
/// shows a code the right way round.
fn qr_code(text: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let mut drawn = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            drawn.push('\n');
            drawn
        }
        Err(_) => String::new(),
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Socket {
    /// For the HTTP servers.
    Tcp(std::net::TcpListener),
    /// For the TFTP server.
    Udp(std::net::UdpSocket),
}

impl Socket {
    /// The address it is bound to.
    ///
    /// # Errors
    /// The operating system cannot say.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        }
        .map_err(|e| Error::io("reading the bound address", e))
    }
}

impl ServerConfig {
    /// The directory served, if the service serves one.
    pub fn root(&self) -> Option<&Path> {
        match &self.service {
            Service::Files(c) => Some(&c.root),
            Service::Tftp(c) => Some(&c.root),
            Service::App { .. } | Service::Python { .. } => None,
        }
    }

    /// Checks the served directory and replaces it with its canonical path.
    ///
    /// # Errors
    /// [`Error::Directory`] when it is missing, not a directory, or unreadable.
    pub fn check_root(&mut self) -> Result<()> {
        let root: &mut PathBuf = match &mut self.service {
            Service::Files(c) => &mut c.root,
            Service::Tftp(c) => &mut c.root,
            Service::App { .. } | Service::Python { .. } => return Ok(()),
        };
        *root = check_root(root)?;
        Ok(())
    }

    /// Makes the served directory absolute without touching the file system (a daemon
    /// runs from `/`).
    ///
    /// # Errors
    /// The current directory cannot be read.
    pub fn absolute_root(&mut self) -> Result<()> {
        if let Service::Files(HttpConfig { root, .. }) | Service::Tftp(TftpConfig { root, .. }) =
            &mut self.service
        {
            *root = std::path::absolute(&*root).map_err(|e| Error::io("resolving DOCROOT", e))?;
        }
        Ok(())
    }

    /// Sets up HTTPS when asked for: reads (or makes) the certificate and hands it to the
    /// service.
    ///
    /// # Errors
    /// [`Error::Tls`]: a certificate or key that cannot be read, made or used.
    pub fn start_tls(&mut self) -> Result<()> {
        let Some(source) = &self.tls else {
            return Ok(());
        };
        // Only a kept certificate names anything; given files are used as they are.
        let names = match source {
            CertSource::Kept { .. } => crate::server::tls::local_names(),
            CertSource::Files { .. } => Vec::new(),
        };
        let tls = Tls::new(source, &names).map_err(Error::Tls)?;
        match &mut self.service {
            Service::Files(c) => c.tls = Some(tls),
            Service::App { config, .. } => config.tls = Some(tls),
            Service::Python { config, .. } => config.tls = Some(tls),
            Service::Tftp(_) => {}
        }
        Ok(())
    }

    /// The options that are not environment variables, for `--show-settings` (after
    /// [`Settings::report`]).
    pub fn report_options(&self) -> String {
        let mut out = String::from("options:\n");
        let slow = self.log.slow.map_or_else(
            || "off".to_string(),
            |d| format!("warn of requests and transfers over {}s", d.as_secs_f64()),
        );
        out += &format!("  slow         {slow}\n");
        if let Service::Tftp(c) = &self.service {
            let faults = c
                .faults
                .map_or_else(|| "none".to_string(), |f| f.describe());
            out += &format!("  faults       {faults}\n");
            if c.upload {
                out += &format!("  upload       {}\n", c.room.describe());
            }
            return out;
        }
        let tls = match &self.tls {
            None => "off".to_string(),
            Some(CertSource::Files { cert, key }) => {
                format!("{} with {}", cert.display(), key.display())
            }
            Some(CertSource::Kept { dir, rsa }) => format!(
                "self-signed{}, kept in {}",
                if *rsa { ", ECDSA and RSA" } else { "" },
                dir.display()
            ),
        };
        out += &format!("  tls          {tls}\n");
        if let Service::Files(c) = &self.service {
            let upload = match c.uploads {
                None => "off".to_string(),
                Some(u) => format!(
                    "on, {}, {}, {}",
                    crate::landing::Room {
                        max_size: u.max_size,
                        min_free: u.min_free
                    }
                    .describe(),
                    if u.overwrite {
                        "existing files may be replaced"
                    } else {
                        "existing files kept"
                    },
                    if u.cross_site {
                        "from pages of any origin"
                    } else {
                        "not from other sites' pages"
                    }
                ),
            };
            out += &format!("  upload       {upload}\n");
            out += &format!(
                "  dotfiles     {}\n",
                if c.dotfiles {
                    "listed and served"
                } else {
                    "hidden"
                }
            );
            out += &format!("  names        {}\n", c.rules.describe());
            let access = c.access.describe().unwrap_or_else(|| "open".to_string());
            out += &format!("  access       {access}\n");
            out += &format!("  qr           {}\n", if self.qr { "on" } else { "off" });
        }
        let faults = self
            .faults()
            .map_or_else(|| "none".to_string(), Faults::describe);
        out += &format!("  faults       {faults}\n");
        let app_access = match &self.service {
            Service::App { config, .. } => Some(&config.access),
            Service::Python { config, .. } => Some(&config.access),
            _ => None,
        };
        if let Some(access) = app_access {
            let access = access.describe().unwrap_or_else(|| "open".to_string());
            out += &format!("  access       {access}\n");
        }
        if let Service::Python { config, .. } = &self.service {
            out += &format!(
                "  reload       {}\n",
                if config.reload { "on" } else { "off" }
            );
        }
        out
    }

    /// The faults an HTTP service puts into its connections, if any is on.
    pub fn faults(&self) -> Option<&Faults> {
        let faults = match &self.service {
            Service::Files(c) => &c.faults,
            Service::App { config, .. } => &config.faults,
            Service::Python { config, .. } => &config.faults,
            Service::Tftp(_) => return None,
        };
        faults.any().then_some(faults)
    }

    /// The service's HTTPS, once [`ServerConfig::start_tls`] has set it up.
    pub fn https(&self) -> Option<&Tls> {
        match &self.service {
            Service::Files(c) => c.tls.as_ref(),
            Service::App { config, .. } => config.tls.as_ref(),
            Service::Python { config, .. } => config.tls.as_ref(),
            Service::Tftp(_) => None,
        }
    }

    /// Binds the socket the service listens on.
    ///
    /// # Errors
    /// [`Error::Bind`]: the port is taken, privileged, or the address is not this machine's.
    pub fn bind(&self) -> Result<Socket> {
        match self.service {
            Service::Files(_) | Service::App { .. } | Service::Python { .. } => {
                net::raise_fd_limit();
                net::bind_tcp(self.ip, self.port).map(Socket::Tcp)
            }
            Service::Tftp(_) => {
                let ip = self.ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                net::bind_udp(SocketAddr::new(ip, self.port)).map(Socket::Udp)
            }
        }
    }

    /// The start-up banner: what is served, where to reach it, how to stop.
    pub fn banner(&self, bound: SocketAddr) -> String {
        let mut out = String::new();
        let reachable = net::reachable(bound);
        let https = self.https();
        let url = |ip| {
            let url = net::http_url(ip, bound.port());
            if https.is_some() {
                url.replacen("http://", "https://", 1)
            } else {
                url
            }
        };
        match &self.service {
            Service::Files(c) => {
                let mode = match c.uploads {
                    None => "",
                    Some(u) if u.overwrite => " (uploads on, existing files may be replaced)",
                    Some(_) => " (uploads on, existing files kept)",
                };
                out += &format!("Serving {}{mode}\n", c.root.display());
                for r in &reachable {
                    let url = url(r.ip);
                    if r.interface.is_empty() {
                        out += &format!("  {url}\n");
                    } else {
                        out += &format!("  {url:<40} ({})\n", r.interface);
                    }
                }
            }
            Service::Tftp(c) => {
                let mode = match (c.upload, c.overwrite) {
                    (false, _) => "read-only",
                    (true, false) => "uploads on, existing files kept",
                    (true, true) => "uploads on, existing files may be replaced",
                };
                out += &format!("Serving {} over TFTP ({mode})\n", c.root.display());
                for r in &reachable {
                    let url = match r.ip {
                        IpAddr::V4(v4) => format!("tftp://{v4}:{}/", bound.port()),
                        IpAddr::V6(v6) => format!("tftp://[{v6}]:{}/", bound.port()),
                    };
                    out += &format!("  {url}\n");
                }
                if let Some(faults) = &c.faults {
                    out += &format!("Faults on purpose: {}\n", faults.describe());
                }
            }
            Service::App { name, .. } | Service::Python { name, .. } => {
                out += &format!("Serving {name}\n");
                for r in &reachable {
                    out += &format!("  {}\n", url(r.ip));
                }
            }
        }
        if let Some(tls) = https {
            out += &format!("Certificate: {}\n", tls.cert_path.display());
            out += &format!("  SHA-256 {}\n", tls.fingerprint);
            if let Some((path, fingerprint)) = &tls.rsa {
                out += &format!(
                    "Certificate for clients without ECDSA: {}\n",
                    path.display()
                );
                out += &format!("  SHA-256 {fingerprint}\n");
            }
            if let Some(made) = &tls.made {
                out += &format!("  ({made}: give clients this file to trust)\n");
            }
        }
        if self.qr
            && let Some(first) = reachable.first()
        {
            out += &qr_code(&url(first.ip));
        }
        if let Service::Files(c) = &self.service
            && let Some(access) = c.access.describe()
        {
            out += &format!("Access: {access}\n");
        }
        if let Some(faults) = self.faults() {
            out += &format!("Faults on purpose: {}\n", faults.describe());
        }
        out += "Press Ctrl-C to stop.\n";
        out
    }

    /// The log line that says the server is up.
    pub fn log_started(&self, bound: SocketAddr) {
        if let Some(faults) = self.faults() {
            tracing::info!(target: "labserv::http", "faults on purpose: {}", faults.describe());
        }
        if let Some(tls) = self.https() {
            if let Some(made) = &tls.made {
                tracing::info!(target: "labserv::http", "{made}: {}", tls.cert_path.display());
            }
            tracing::info!(
                target: "labserv::http",
                "HTTPS with {} (SHA-256 {})", tls.cert_path.display(), tls.fingerprint
            );
            if let Some((path, fingerprint)) = &tls.rsa {
                tracing::info!(
                    target: "labserv::http",
                    "and {} for clients without ECDSA (SHA-256 {fingerprint})", path.display()
                );
            }
        }
        match &self.service {
            Service::Files(c) => {
                tracing::info!(target: "labserv::http", "listening on {bound}, serving {}", c.root.display());
            }
            Service::Tftp(c) => {
                if let Some(faults) = &c.faults {
                    tracing::info!(target: "labserv::tftp", "faults on purpose: {}", faults.describe());
                }
                tracing::info!(target: "labserv::tftp", "listening on {bound}, serving {}", c.root.display());
            }
            Service::App { name, .. } | Service::Python { name, .. } => {
                tracing::info!(target: "labserv::wsgi", "listening on {bound}, serving {name}");
            }
        }
    }
}
