//! The foreground commands, from parsed arguments to exit code.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{ServArgs, TftpdArgs, WsgiArgs, non_empty};
use crate::error::{Error, Result};
use crate::http::HttpConfig;
use crate::logging::{self, LogConfig};
use crate::net;
use crate::runner::{
    ServeOnCore, block_until_signal, run_until_signal, runtime_with_signals,
    serve_files_until_signal,
};
use crate::settings::{self, Defaults, Settings};
use crate::tftp::{self, TftpConfig};

/// Prints `program: message` for a failed command and picks its exit code
/// (2 for usage mistakes, 1 for runtime failures).
pub fn exit(program: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("{program}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs `serv` until SIGINT or SIGTERM.
///
/// # Errors
/// Bad arguments or environment, a missing directory, a port that cannot be bound.
pub fn serv(args: ServArgs) -> Result<()> {
    let mut settings = Settings::from_env(Defaults::HTTP)?;
    if let Some(port) = non_empty(&args.port) {
        settings.port = Some(settings::parse_port("PORT", port)?);
    }
    if let Some(iface) = non_empty(&args.iface) {
        settings.iface = Some(settings::parse_addr("IFACE", iface)?);
    }
    if args.common.show_settings {
        print!("{}", settings.report("serv"));
        return Ok(());
    }
    // The runtime and the signal handlers exist before anything is announced, so a
    // SIGTERM right after the banner is a clean stop, never a kill.
    let (runtime, signals) = runtime_with_signals()?;
    let root = args.directory.clone().unwrap_or_else(|| settings.docroot());
    let root = crate::confine::check_root(&root)?;
    let (_log, listener, bound) = log_and_listen(&settings)?;

    println!("Serving {}", root.display());
    for r in net::reachable(bound) {
        let url = net::http_url(r.ip, bound.port());
        if r.interface.is_empty() {
            println!("  {url}");
        } else {
            println!("  {url:<40} ({})", r.interface);
        }
    }
    println!("Press Ctrl-C to stop.");
    tracing::info!(target: "labserv::http", "listening on {bound}, serving {}", root.display());

    let mut config = HttpConfig::new(root);
    config.follow_symlinks = !args.no_follow_symlinks;
    config.debug = settings.debug;
    serve_files_until_signal(runtime, signals, listener, config)
}

/// Starts logging as the settings say, then binds the TCP listener they name.
fn log_and_listen(
    settings: &Settings,
) -> Result<(
    logging::LogGuard,
    std::net::TcpListener,
    std::net::SocketAddr,
)> {
    let log = logging::init(&LogConfig {
        debug: settings.debug,
        quiet: false,
        file: settings.log.clone(),
    })?;
    net::raise_fd_limit();
    let listener = net::bind_tcp(settings.iface(), settings.port())?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    Ok((log, listener, bound))
}

/// Runs `tftpd` until SIGINT or SIGTERM.
///
/// # Errors
/// Bad arguments or environment, a missing directory, a port that cannot be bound.
pub fn tftpd(args: TftpdArgs) -> Result<()> {
    let mut settings = Settings::from_env(Defaults::TFTP)?;
    // `tftpd [IFACE] [PORT]`, in either order: a lone number is a port.
    let mut port_given = false;
    for arg in args
        .positional
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        if !port_given && arg.bytes().all(|b| b.is_ascii_digit()) {
            settings.port = Some(settings::parse_port("PORT", arg)?);
            port_given = true;
        } else {
            settings.iface = Some(settings::parse_addr("IFACE", arg)?);
        }
    }
    if let Some(host) = non_empty(&args.net.host) {
        settings.iface = Some(settings::parse_addr("--host", host)?);
    }
    if let Some(port) = non_empty(&args.net.port) {
        settings.port = Some(settings::parse_port("--port", port)?);
    }
    let ack_timeout = settings::parse_seconds("--ack-timeout", &args.net.ack_timeout)?;
    let conn_timeout = match non_empty(&args.net.conn_timeout) {
        Some(v) => settings::parse_seconds("--conn-timeout", v)?,
        None => settings.sock_timeout,
    };
    let max_blksize = settings::parse_number(
        "--max-blksize",
        &args.max_blksize,
        8,
        tftp::DEFAULT_MAX_BLKSIZE,
        "expected a block size from 8 to 65464",
    )?;
    let max_window = settings::parse_number(
        "--max-window",
        &args.max_window,
        1,
        u16::MAX,
        "expected a window size from 1 to 65535",
    )?;
    if args.common.show_settings {
        print!("{}", settings.report("tftpd"));
        return Ok(());
    }

    let (runtime, signals) = runtime_with_signals()?;
    let root = args.directory.clone().unwrap_or_else(|| settings.docroot());
    let root = crate::confine::check_root(&root)?;
    let _log = logging::init(&LogConfig {
        debug: settings.debug || args.verbose,
        quiet: args.quiet,
        file: settings.log.clone(),
    })?;
    let addr = std::net::SocketAddr::new(
        settings
            .iface()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        settings.port(),
    );
    let socket = net::bind_udp(addr)?;
    let bound = socket
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let mode = match (args.upload, args.overwrite) {
        (false, _) => "read-only",
        (true, false) => "uploads on, existing files kept",
        (true, true) => "uploads on, existing files may be replaced",
    };
    if !args.quiet {
        println!("Serving {} over TFTP ({mode})", root.display());
        for r in net::reachable(bound) {
            let url = match r.ip {
                std::net::IpAddr::V4(v4) => format!("tftp://{v4}:{}/", bound.port()),
                std::net::IpAddr::V6(v6) => format!("tftp://[{v6}]:{}/", bound.port()),
            };
            println!("  {url}");
        }
        println!("Press Ctrl-C to stop.");
    }
    tracing::info!(target: "labserv::tftp", "listening on {bound}, serving {}", root.display());

    let mut config = TftpConfig::new(root);
    config.upload = args.upload;
    config.overwrite = args.overwrite;
    config.ack_timeout = ack_timeout;
    config.conn_timeout = conn_timeout;
    config.max_blksize = max_blksize;
    config.max_window = max_window;
    block_until_signal(&runtime, signals, |shutdown| async move {
        tftp::serve(socket, config, shutdown).await
    })
}

/// Runs `wsgi` until SIGINT or SIGTERM.
///
/// # Errors
/// An unknown app, bad arguments or environment, a port that cannot be bound.
pub fn wsgi(args: WsgiArgs) -> Result<()> {
    let mut settings = Settings::from_env(Defaults::WSGI)?;
    if let Some(port) = non_empty(&args.port) {
        settings.port = Some(settings::parse_port("PORT", port)?);
    }
    if let Some(host) = non_empty(&args.host) {
        settings.iface = Some(settings::parse_addr("--host", host)?);
    }
    let max_body = settings::parse_size("--max-body", &args.max_body)?;
    let cgi_timeout = settings::parse_seconds("--cgi-timeout", &args.cgi_timeout)?;
    let name = non_empty(&args.app).unwrap_or("demo").to_string();
    let cgi = |scripts| -> Result<crate::wsgi::SharedApp> {
        let gateway = crate::wsgi::Cgi::new(scripts, cgi_timeout)
            .map_err(|e| Error::io("setting up CGI", e))?;
        Ok(std::sync::Arc::new(gateway))
    };
    let app = if let Some(dir) = &args.cgi_dir {
        let dir = crate::confine::check_root(dir)?;
        cgi(crate::wsgi::Scripts::Dir(dir))?
    } else if let Some(app) = crate::wsgi::builtin(&name) {
        app
    } else if name.contains('/') || std::path::Path::new(&name).is_file() {
        if !std::path::Path::new(&name).exists() {
            return Err(settings::SettingsError {
                name: "APP".to_string(),
                value: name,
                expected: "expected a built-in app (demo, hello, echo) or an existing script",
            }
            .into());
        }
        let script = std::path::PathBuf::from(&name);
        cgi(crate::wsgi::Scripts::One(script))?
    } else {
        return Err(settings::SettingsError {
            name: "APP".to_string(),
            value: name,
            expected: "expected a built-in app: demo, hello or echo (or a script path)",
        }
        .into());
    };
    if args.common.show_settings {
        print!("{}", settings.report("wsgi"));
        return Ok(());
    }
    let (runtime, signals) = runtime_with_signals()?;
    let (_log, listener, bound) = log_and_listen(&settings)?;
    println!("Serving the {name} app");
    for r in net::reachable(bound) {
        println!("  {}", net::http_url(r.ip, bound.port()));
    }
    println!("Press Ctrl-C to stop.");
    tracing::info!(target: "labserv::wsgi", "listening on {bound}, app {name}");
    let config = crate::wsgi::WsgiConfig {
        max_body,
        validate: !args.no_validate,
        ..Default::default()
    };
    let serve: ServeOnCore = Arc::new(move |listener, shutdown| {
        Box::pin(crate::wsgi::serve(
            listener,
            app.clone(),
            config.clone(),
            shutdown,
        ))
    });
    run_until_signal(runtime, signals, listener, serve)
}
