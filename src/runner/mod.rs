//! Running a server until a signal: the runtimes, the per-core runner and the wait for
//! SIGINT or SIGTERM, shared by the foreground commands and the daemons.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tracing::info;

use crate::config::{HttpService, ServerConfig, Service};
use crate::error::{Error, Result};
use crate::logging::{self, LogConfig, LogGuard};
use crate::net;
use crate::server::tls::{CertSource, Tls};
use crate::shutdown::Signals;
use crate::tftp::TftpConfig;
use crate::wsgi::python::Workers;

mod loops;

use loops::{ServeOnCore, block_until_signal, run_until_signal, runtime_with_signals};

/// A server ready to serve: its runtime and signal handlers made, its directory checked,
/// its logging started, its socket bound and what it serves readied.
pub(crate) struct Prepared {
    runtime: tokio::runtime::Runtime,
    /// The SIGINT/SIGTERM handlers (a daemon adds SIGHUP).
    pub(crate) signals: Signals,
    /// The logging, kept until the server ends (a daemon reopens it on SIGHUP).
    pub(crate) log: Arc<LogGuard>,
    /// The address the socket is bound to.
    pub(crate) bound: SocketAddr,
    /// What is served, on its socket.
    pub(crate) serving: Serving,
    /// Print a QR code of the first address in the banner.
    pub(crate) qr: bool,
    /// Print no banner.
    pub(crate) quiet: bool,
    engine: &'static Engine,
}

/// What is served, with the socket it is served on: a TCP listener for an HTTP service
/// and a UDP socket for TFTP, paired when the socket is bound, so that a service never
/// meets a socket of the other kind.
#[allow(clippy::large_enum_variant)] // one per server, never in a collection
pub(crate) enum Serving {
    /// Files or an app over HTTP.
    Http {
        /// The listening socket.
        listener: std::net::TcpListener,
        /// What is served.
        service: HttpService,
        /// HTTPS, once the engine has loaded (or made) the certificate.
        tls: Option<Tls>,
        /// A Python app's workers, started (and their app imported) before anything is
        /// announced.
        workers: Option<Workers>,
    },
    /// Files over TFTP.
    Tftp {
        /// The bound socket.
        socket: std::net::UdpSocket,
        /// What is served.
        config: TftpConfig,
    },
}

/// How one kind of server starts and runs. Each command passes its own, so that a
/// binary links only the servers it runs (`tftpd` carries no HTTP, TLS or Python code).
#[derive(Debug)]
pub(crate) struct Engine {
    /// Readies what the service needs once its socket is bound: HTTPS, Python workers.
    ready: fn(&mut Serving, &LogConfig) -> Result<()>,
    /// Serves until SIGINT or SIGTERM.
    serve: fn(Prepared) -> Result<()>,
}

/// `serv` and `httpdaemon`: files over HTTP.
pub(crate) const FILES: Engine = Engine {
    ready: ready_tls,
    serve: serve_files,
};

/// `tftpd` and the TFTP daemons.
pub(crate) const TFTP: Engine = Engine {
    ready: |_, _| Ok(()),
    serve: serve_tftp,
};

/// `wsgi`: an app in this process, or a Python app in workers.
pub(crate) const APPS: Engine = Engine {
    ready: ready_apps,
    serve: serve_apps,
};

/// Gets `config` ready to serve, in the order that makes every failure a clean one: the
/// runtime and the signal handlers first (so a SIGTERM right after the banner is a clean
/// stop, never a kill), then the directory, the log and the socket.
///
/// # Errors
/// A missing directory, a log file that cannot be opened, a port that cannot be bound.
pub(crate) fn prepare(mut config: ServerConfig, engine: &'static Engine) -> Result<Prepared> {
    let (runtime, signals) = runtime_with_signals()?;
    config.check_root()?;
    let log = Arc::new(logging::init(&config.log)?);
    let mut serving = match config.service {
        Service::Http(service) => {
            net::raise_fd_limit();
            Serving::Http {
                listener: net::bind_tcp(config.ip, config.port)?,
                service,
                tls: None,
                workers: None,
            }
        }
        Service::Tftp(tftp) => {
            let ip = config.ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            Serving::Tftp {
                socket: net::bind_udp(SocketAddr::new(ip, config.port))?,
                config: tftp,
            }
        }
    };
    let bound = match &serving {
        Serving::Http { listener, .. } => listener.local_addr(),
        Serving::Tftp { socket, .. } => socket.local_addr(),
    }
    .map_err(|e| Error::io("reading the bound address", e))?;
    (engine.ready)(&mut serving, &config.log)?;
    Ok(Prepared {
        runtime,
        signals,
        log,
        bound,
        serving,
        qr: config.qr,
        quiet: config.quiet,
        engine,
    })
}

/// Loads (or makes) the certificate when HTTPS is asked for.
fn ready_tls(serving: &mut Serving, _: &LogConfig) -> Result<()> {
    if let Serving::Http { service, tls, .. } = serving
        && let Some(source) = &service.options().tls
    {
        // Only a kept certificate names anything; given files are used as they are.
        let names = match source {
            CertSource::Kept { .. } => crate::server::tls::local_names(),
            CertSource::Files { .. } => Vec::new(),
        };
        *tls = Some(Tls::new(source, &names).map_err(Error::Tls)?);
    }
    Ok(())
}

/// HTTPS, then a Python app's workers (which get the certificate's keys).
fn ready_apps(serving: &mut Serving, log: &LogConfig) -> Result<()> {
    ready_tls(serving, log)?;
    if let Serving::Http {
        listener,
        service: HttpService::Python { config, .. },
        tls,
        workers,
    } = serving
    {
        *workers = Some(Workers::start(config, tls.as_ref(), log, listener)?);
    }
    Ok(())
}

impl Prepared {
    /// Serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// The server fails.
    pub(crate) fn serve(self) -> Result<()> {
        self.log_started();
        // Keep the logging until the server is done with it.
        let log = self.log.clone();
        let served = (self.engine.serve)(self);
        drop(log);
        served
    }

    /// The directory served (checked and canonical), if the service serves one.
    #[cfg_attr(not(unix), allow(dead_code))] // the daemons' log line (Unix only)
    pub(crate) fn root(&self) -> Option<&std::path::Path> {
        match &self.serving {
            Serving::Http {
                service: HttpService::Files(c),
                ..
            } => Some(&c.root),
            Serving::Tftp { config, .. } => Some(&config.root),
            Serving::Http { .. } => None,
        }
    }

    /// Enters the runtime, for installing more signal handlers (daemons, on Unix).
    #[cfg(unix)]
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.runtime.enter()
    }

    /// The log lines that say the server is up.
    fn log_started(&self) {
        let bound = self.bound;
        match &self.serving {
            Serving::Http { service, tls, .. } => {
                let faults = &service.options().faults;
                if faults.any() {
                    info!(target: "labserv::http", "faults on purpose: {}", faults.describe());
                }
                if let Some(tls) = tls {
                    if let Some(made) = &tls.made {
                        info!(target: "labserv::http", "{made}: {}", tls.cert_path.display());
                    }
                    info!(
                        target: "labserv::http",
                        "HTTPS with {} (SHA-256 {})", tls.cert_path.display(), tls.fingerprint
                    );
                    if let Some((path, fingerprint)) = &tls.rsa {
                        info!(
                            target: "labserv::http",
                            "and {} for clients without ECDSA (SHA-256 {fingerprint})", path.display()
                        );
                    }
                }
                match service {
                    HttpService::Files(c) => {
                        info!(target: "labserv::http", "listening on {bound}, serving {}", c.root.display());
                    }
                    HttpService::App { name, .. } | HttpService::Python { name, .. } => {
                        info!(target: "labserv::wsgi", "listening on {bound}, serving {name}");
                    }
                }
            }
            Serving::Tftp { config, .. } => {
                if let Some(faults) = &config.faults {
                    info!(target: "labserv::tftp", "faults on purpose: {}", faults.describe());
                }
                info!(target: "labserv::tftp", "listening on {bound}, serving {}", config.root.display());
            }
        }
    }
}

/// The HTTP file server on every core (see [`run_until_signal`]).
fn serve_files(p: Prepared) -> Result<()> {
    let Serving::Http {
        listener,
        service: HttpService::Files(config),
        tls,
        ..
    } = p.serving
    else {
        return Err(misfit());
    };
    let serve: ServeOnCore = Arc::new(move |listener, shutdown| {
        Box::pin(crate::http::serve(
            listener,
            config.clone(),
            tls.clone(),
            shutdown,
        ))
    });
    run_until_signal(p.runtime, p.signals, listener, serve)
}

/// TFTP: the listener on this thread, each transfer on a thread of its own.
fn serve_tftp(p: Prepared) -> Result<()> {
    let Serving::Tftp { socket, config } = p.serving else {
        return Err(misfit());
    };
    block_until_signal(&p.runtime, p.signals, |shutdown| async move {
        crate::tftp::serve(socket, config, shutdown).await
    })
}

/// An app in this process on every core, or a Python app's workers, which do the HTTP
/// while this thread follows them (they are started from it, and die with it).
fn serve_apps(p: Prepared) -> Result<()> {
    let Serving::Http {
        listener,
        service,
        tls,
        workers,
    } = p.serving
    else {
        return Err(misfit());
    };
    match service {
        HttpService::Python { config, .. } => {
            let workers = workers.ok_or_else(|| {
                Error::io(
                    "serving",
                    std::io::Error::other("the workers were not started"),
                )
            })?;
            block_until_signal(&p.runtime, p.signals, |shutdown| async move {
                crate::wsgi::python::serve(listener, workers, config, shutdown).await
            })
        }
        HttpService::App { app, config, .. } => {
            let serve: ServeOnCore = Arc::new(move |listener, shutdown| {
                Box::pin(crate::wsgi::serve(
                    listener,
                    app.clone(),
                    config.clone(),
                    tls.clone(),
                    shutdown,
                ))
            });
            run_until_signal(p.runtime, p.signals, listener, serve)
        }
        HttpService::Files(_) => Err(misfit()),
    }
}

/// A service given to the engine of another command (a slip in the code, not in the
/// input): each command passes the engine of the services it resolves.
fn misfit() -> Error {
    Error::io(
        "serving",
        std::io::Error::other("this command does not serve that"),
    )
}
