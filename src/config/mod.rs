//! One config step per server: [`serv`], [`tftpd`] and [`wsgi`] turn typed arguments and
//! the [`Settings`] into a [`ServerConfig`], and every entry point (the foreground
//! commands, the daemons, daemontui) goes through them. A [`ServerConfig`] is plain data:
//! the runner binds its socket, loads its certificate and serves it, the console
//! announces it, the same way wherever it was made.

mod resolve;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use resolve::{serv, tftpd, wsgi};

use crate::confine::check_root;
use crate::error::{Error, Result};
use crate::http::HttpConfig;
use crate::logging::LogConfig;
use crate::server::HttpOptions;
use crate::server::tls::CertSource;
use crate::settings::Settings;
use crate::tftp::TftpConfig;
use crate::wsgi::python::PythonConfig;
use crate::wsgi::{SharedApp, WsgiConfig};

/// Everything one server needs to run, resolved from arguments and environment: plain
/// data. Binding its socket, loading its certificate, announcing it and serving it are
/// the runner's and the console's (see `runner::prepare`).
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
    /// Print a QR code of the first address in the banner.
    pub qr: bool,
}

/// What a server serves: over HTTP (on a TCP socket) or over TFTP (on a UDP one).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per command run, never in a collection
pub enum Service {
    /// Files or an app, over HTTP.
    Http(HttpService),
    /// Files over TFTP.
    Tftp(TftpConfig),
}

/// What an HTTP server serves.
#[derive(Clone)]
pub enum HttpService {
    /// Files.
    Files(HttpConfig),
    /// An app in this process.
    App {
        /// What the banner calls it: `the demo app`, `the CGI scripts in /srv/cgi`.
        name: String,
        /// The app.
        app: SharedApp,
        /// How it is hosted.
        config: WsgiConfig,
    },
    /// A Python WSGI app, in worker processes.
    Python {
        /// What the banner calls it: `myapp:app (2 Python workers)`.
        name: String,
        /// The app and how it is hosted.
        config: PythonConfig,
    },
}

impl HttpService {
    /// Limits, HTTPS, faults and access: what every HTTP service runs with.
    pub fn options(&self) -> &HttpOptions {
        match self {
            HttpService::Files(c) => &c.http,
            HttpService::App { config, .. } => &config.http,
            HttpService::Python { config, .. } => &config.http,
        }
    }
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpService::Files(c) => f.debug_tuple("Files").field(c).finish(),
            HttpService::App { name, config, .. } => f
                .debug_struct("App")
                .field("name", name)
                .field("config", config)
                .finish_non_exhaustive(),
            HttpService::Python { name, config } => f
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

impl ServerConfig {
    /// The directory served, if the service serves one.
    pub fn root(&self) -> Option<&Path> {
        match &self.service {
            Service::Http(HttpService::Files(c)) => Some(&c.root),
            Service::Tftp(c) => Some(&c.root),
            Service::Http(_) => None,
        }
    }

    fn root_mut(&mut self) -> Option<&mut PathBuf> {
        match &mut self.service {
            Service::Http(HttpService::Files(c)) => Some(&mut c.root),
            Service::Tftp(c) => Some(&mut c.root),
            Service::Http(_) => None,
        }
    }

    /// Checks the served directory and replaces it with its canonical path.
    ///
    /// # Errors
    /// [`Error::Directory`] when it is missing, not a directory, or unreadable.
    pub fn check_root(&mut self) -> Result<()> {
        if let Some(root) = self.root_mut() {
            *root = check_root(root)?;
        }
        Ok(())
    }

    /// Makes the served directory absolute without touching the file system (a daemon
    /// runs from `/`).
    ///
    /// # Errors
    /// The current directory cannot be read.
    pub fn absolute_root(&mut self) -> Result<()> {
        if let Some(root) = self.root_mut() {
            *root = std::path::absolute(&*root).map_err(|e| Error::io("resolving DOCROOT", e))?;
        }
        Ok(())
    }

    /// The HTTP service's options; `None` for TFTP.
    pub fn http(&self) -> Option<&HttpOptions> {
        match &self.service {
            Service::Http(service) => Some(service.options()),
            Service::Tftp(_) => None,
        }
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
        let service = match &self.service {
            Service::Tftp(c) => {
                let faults = c
                    .faults
                    .map_or_else(|| "none".to_string(), |f| f.describe());
                out += &format!("  faults       {faults}\n");
                if c.upload {
                    out += &format!("  upload       {}\n", c.room.describe());
                }
                return out;
            }
            Service::Http(service) => service,
        };
        let options = service.options();
        let tls = match &options.tls {
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
        let access = options
            .access
            .describe()
            .unwrap_or_else(|| "open".to_string());
        if let HttpService::Files(c) = service {
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
            out += &format!("  access       {access}\n");
            out += &format!("  qr           {}\n", if self.qr { "on" } else { "off" });
        }
        let faults = if options.faults.any() {
            options.faults.describe()
        } else {
            "none".to_string()
        };
        out += &format!("  faults       {faults}\n");
        if !matches!(service, HttpService::Files(_)) {
            out += &format!("  access       {access}\n");
        }
        if let HttpService::Python { config, .. } = service {
            out += &format!(
                "  reload       {}\n",
                if config.reload { "on" } else { "off" }
            );
        }
        out
    }
}
