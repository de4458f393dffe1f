//! The config step of each server: typed arguments over the environment's settings.
//! Arguments win over the environment; the environment wins over the defaults.

use std::path::Path;
use std::sync::Arc;

use super::{HttpService, ServerConfig, Service};
use crate::cli::values::given;
use crate::cli::{FaultArgs, ListenArgs, LogArgs, ServOptions, TftpdOptions, TlsArgs, WsgiArgs};
use crate::confine::check_root;
use crate::error::{Error, Result};
use crate::http::HttpConfig;
use crate::logging::LogConfig;
use crate::server::HttpOptions;
use crate::server::faults::Faults;
use crate::server::tls::CertSource;
use crate::settings::{Settings, SettingsError};
use crate::tftp::TftpConfig;
use crate::wsgi::{self, Cgi, Scripts, WsgiConfig};

/// The settings with the listen options folded in, and the log config they imply.
fn common(listen: &ListenArgs, log: &LogArgs, settings: &Settings) -> (Settings, LogConfig) {
    let mut settings = settings.clone();
    if let Some(port) = given(listen.port) {
        settings.port = Some(port);
    }
    if let Some(host) = given(listen.host) {
        settings.iface = Some(host);
    }
    let log = LogConfig {
        debug: settings.debug || log.verbose,
        quiet: log.quiet,
        file: settings.log.clone(),
        slow: log.slow,
    };
    (settings, log)
}

fn server(settings: Settings, log: LogConfig, quiet: bool, service: Service) -> ServerConfig {
    ServerConfig {
        ip: settings.iface(),
        port: settings.port(),
        settings,
        log,
        quiet,
        service,
        qr: false,
    }
}

/// A seed for random faults when none was given (std's per-process random keys).
fn new_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        .max(1)
}

/// The faults asked for on the command line.
fn faults(args: &FaultArgs) -> Faults {
    Faults {
        limit_rate: args.limit_rate,
        drop_after: args.drop_after,
        fail_every: args.fail_every,
        delay: args.delay,
        ..Faults::default()
    }
}

/// What every HTTP server runs with: default limits, and the faults, access and
/// certificate asked for.
///
/// # Errors
/// As [`tls`].
fn http_options(
    faults_asked: &FaultArgs,
    gate: &crate::cli::GateArgs,
    tls_asked: &TlsArgs,
    settings: &Settings,
) -> Result<HttpOptions> {
    Ok(HttpOptions {
        limits: crate::server::Limits::default(),
        tls: tls(tls_asked, settings)?,
        faults: faults(faults_asked),
        access: access(gate),
    })
}

/// Where HTTPS gets its certificate: the files given (made absolute, as a daemon runs
/// from `/`), else the one kept in the user's data directory; `None` for plain HTTP.
///
/// # Errors
/// The current directory cannot be read.
fn tls(args: &TlsArgs, settings: &Settings) -> Result<Option<CertSource>> {
    let absolute =
        |p: &Path| std::path::absolute(p).map_err(|e| Error::io("resolving --cert/--key", e));
    Ok(match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(CertSource::Files {
            cert: absolute(cert)?,
            key: absolute(key)?,
        }),
        _ if args.tls || args.tls_rsa => Some(CertSource::Kept {
            dir: settings.dirs.tls_dir(),
            rsa: args.tls_rsa,
        }),
        _ => None,
    })
}

/// The HTTP file server's config (`serv`, `httpdaemon`).
///
/// # Errors
/// None today; the signature leaves room for options that can conflict.
pub fn serv(options: &ServOptions, settings: &Settings) -> Result<ServerConfig> {
    let (settings, log) = common(&options.listen, &options.log, settings);
    let mut files = HttpConfig::new(
        options
            .directory
            .clone()
            .unwrap_or_else(|| settings.docroot()),
    );
    files.follow_symlinks = !options.no_follow_symlinks;
    files.dotfiles = options.dotfiles;
    // The globs were checked when the command line was read.
    files.rules = crate::http::FileRules::new(&options.only, &options.hide, &options.read_only)
        .unwrap_or_default();
    files.debug = log.debug;
    files.http = http_options(&options.faults, &options.gate, &options.tls, &settings)?;
    files.uploads = options.upload.then(|| crate::http::Uploads {
        overwrite: options.overwrite,
        cross_site: options.cross_site_uploads,
        max_size: options
            .max_upload
            .unwrap_or(crate::http::DEFAULT_MAX_UPLOAD),
        min_free: options.min_free,
    });
    let mut config = server(
        settings,
        log,
        options.log.quiet,
        Service::Http(HttpService::Files(files)),
    );
    config.qr = options.qr;
    Ok(config)
}

/// The TFTP server's config (`tftpd`, `tftpdaemon`, `atftpdaemon`).
///
/// # Errors
/// None today; the signature leaves room for options that can conflict.
pub fn tftpd(options: &TftpdOptions, settings: &Settings) -> Result<ServerConfig> {
    let (settings, log) = common(&options.listen, &options.log, settings);
    let mut tftp = TftpConfig::new(
        options
            .directory
            .clone()
            .unwrap_or_else(|| settings.docroot()),
    );
    tftp.upload = options.upload;
    tftp.overwrite = options.overwrite;
    tftp.room = crate::landing::Room {
        max_size: options
            .max_upload
            .unwrap_or(crate::landing::DEFAULT_MAX_UPLOAD),
        min_free: options.min_free,
    };
    tftp.ack_timeout = options.ack_timeout;
    tftp.conn_timeout = given(options.conn_timeout).unwrap_or(settings.sock_timeout);
    tftp.max_blksize = options.max_blksize;
    tftp.max_window = options.max_window;
    tftp.max_per_client = options.max_per_client;
    let loss = options.loss.filter(|l| l.0 > 0);
    let delay = options.packet_delay.filter(|d| !d.is_zero());
    if loss.is_some() || delay.is_some() {
        tftp.faults = Some(crate::tftp::Faults {
            loss: loss.unwrap_or(crate::tftp::Loss(0)),
            delay: delay.unwrap_or_default(),
            seed: options.seed.unwrap_or_else(new_seed),
        });
    }
    Ok(server(
        settings,
        log,
        options.log.quiet,
        Service::Tftp(tftp),
    ))
}

/// The app host's config (`wsgi`): picks the app.
///
/// A lone number where the app goes is the port (`wsgi 8000`, `wsgi --cgi-dir DIR 8000`).
/// With `--cgi-dir` the app is the directory's scripts, so no other app may be named.
///
/// # Errors
/// An unknown app, an app beside `--cgi-dir`, or a CGI directory that cannot be served.
pub fn wsgi(args: &WsgiArgs, settings: &Settings) -> Result<ServerConfig> {
    let mut named = args.app.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let mut port = given(args.port_arg);
    if let Some(n) = named.filter(|a| a.bytes().all(|b| b.is_ascii_digit()))
        && port.is_none()
    {
        port = Some(crate::settings::parse_port("PORT", n)?);
        named = None;
    }
    let listen = args.listen.or(port, None);
    let (settings, log) = common(&listen, &args.log, settings);
    let cgi = |scripts| -> Result<wsgi::SharedApp> {
        let gateway =
            Cgi::new(scripts, args.cgi_timeout).map_err(|e| Error::io("setting up CGI", e))?;
        Ok(Arc::new(gateway))
    };
    let (name, app) = match (&args.cgi_dir, named) {
        (Some(dir), None) => {
            let dir = check_root(dir)?;
            let name = format!("the CGI scripts in {}", dir.display());
            (name, cgi(Scripts::Dir(dir))?)
        }
        (Some(_), Some(app)) => {
            return Err(bad_app(
                app,
                "expected no app beside --cgi-dir (its scripts are the app)",
            ));
        }
        (None, Some(app)) if is_python_app(app) => {
            let http = http_options(&args.faults, &args.gate, &args.tls, &settings)?;
            let service = python_app(app, args, http)?;
            return Ok(server(settings, log, args.log.quiet, service));
        }
        (None, app) => {
            let app = app.unwrap_or("demo");
            if let Some(builtin) = wsgi::builtin(app) {
                (format!("the {app} app"), builtin)
            } else if app.contains('/') || Path::new(app).is_file() {
                if !Path::new(app).exists() {
                    return Err(bad_app(
                        app,
                        "expected a built-in app (demo, hello, echo) or an existing script",
                    ));
                }
                (format!("the {app} app"), cgi(Scripts::One(app.into()))?)
            } else {
                return Err(bad_app(
                    app,
                    "expected a Python app (module:app, file.py), a built-in app (demo, hello, echo) or a CGI script",
                ));
            }
        }
    };
    let config = WsgiConfig {
        max_body: args.max_body,
        validate: !args.no_validate,
        http: http_options(&args.faults, &args.gate, &args.tls, &settings)?,
    };
    let service = Service::Http(HttpService::App { name, app, config });
    Ok(server(settings, log, args.log.quiet, service))
}

/// Whether APP names a Python WSGI app. The rule, in order: a built-in name is the
/// built-in app; `target:callable` is Python; an existing executable file is a CGI
/// script; `file.py` or a dotted module name is Python.
fn is_python_app(app: &str) -> bool {
    let module = |target: &str| {
        !target.is_empty()
            && target.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    if wsgi::builtin(app).is_some() {
        return false;
    }
    // `C:\labs\mock.py`: a Windows drive, not `target:callable`.
    let drive = app.len() > 2
        && app.as_bytes()[0].is_ascii_alphabetic()
        && app.as_bytes()[1] == b':'
        && matches!(app.as_bytes()[2], b'\\' | b'/');
    let after_drive = if drive { &app[2..] } else { app };
    let executable = crate::wsgi::cgi::executable(std::path::Path::new(app));
    if let Some((target, _)) = after_drive.split_once(':') {
        return module(target) || target.ends_with(".py");
    }
    // A `.py` file Windows runs as a CGI script stays one there; elsewhere a script needs
    // its executable bit to be CGI.
    !executable && (app.ends_with(".py") || module(app))
}

/// The Python app's service: its interpreter found, its directory made absolute.
fn python_app(app: &str, args: &WsgiArgs, http: HttpOptions) -> Result<Service> {
    let python =
        wsgi::python::find_python(args.python.as_deref()).map_err(|reason| Error::App {
            app: app.to_string(),
            // A bare word may have been meant as a built-in app.
            reason: if app.contains([':', '/', '\\', '.']) {
                reason
            } else {
                format!(
                    "{reason}; nor is it a built-in app: {}",
                    wsgi::APP_NAMES.join(", ")
                )
            },
        })?;
    let dir = match &args.chdir {
        Some(dir) => check_root(dir)?,
        None => {
            std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?
        }
    };
    // One by default, as gunicorn and granian: a mock keeping state in memory must not
    // answer from two states.
    let workers = args.workers.unwrap_or(1);
    let name = format!(
        "{app} ({workers} Python worker{}{})",
        if workers == 1 { "" } else { "s" },
        if args.reload {
            ", reloaded on changes"
        } else {
            ""
        }
    );
    let config = wsgi::python::PythonConfig {
        launch: wsgi::python::Launch {
            python,
            app: app.to_string(),
            dir,
            write_bytecode: !args.reload,
        },
        workers,
        timeout: args.timeout,
        queue_timeout: args.queue_timeout,
        root_path: args.root_path.clone(),
        max_body: args.max_body,
        validate: !args.no_validate,
        http,
        reload: args.reload,
    };
    Ok(Service::Http(HttpService::Python { name, config }))
}

/// Who may ask what: the same for the file server and the app host.
fn access(gate: &crate::cli::GateArgs) -> crate::server::gate::Access {
    crate::server::gate::Access {
        users: gate
            .auth
            .iter()
            .filter_map(|u| crate::server::gate::User::parse(u).ok())
            .collect(),
        scope: gate.auth_scope,
        cors: gate.cors,
        allowed_hosts: gate.allow_host.clone(),
        max_conns_per_client: Some(gate.max_conns_per_client),
        max_conns: Some(gate.max_conns),
    }
}

fn bad_app(value: &str, expected: &'static str) -> Error {
    SettingsError::new("APP", value, expected).into()
}
