//! The foreground commands, from parsed arguments to exit code.

use std::io::Write as _;
use std::process::ExitCode;

use crate::cli::{ServArgs, non_empty};
use crate::error::{Error, Result};
use crate::http::{self, HttpConfig};
use crate::logging::{self, LogConfig};
use crate::net;
use crate::settings::{self, Defaults, Settings};
use crate::shutdown::{self, Shutdown};

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
    let root = args.directory.clone().unwrap_or_else(|| settings.docroot());
    let root = http::check_root(&root)?;
    let _log = logging::init(&LogConfig {
        debug: settings.debug,
        quiet: false,
        file: settings.log.clone(),
    })?;
    net::raise_fd_limit();
    let listener = net::bind_tcp(settings.iface(), settings.port())?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;

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
    run_until_signal(listener, config)
}

fn run_until_signal(listener: std::net::TcpListener, config: HttpConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serv")
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::io("registering the listener", e))?;
        let shutdown = Shutdown::new();
        let signals = shutdown::signal();
        let server = tokio::spawn(http::serve(listener, config, shutdown.clone()));
        match signals.await {
            Ok(name) => tracing::info!(target: "labserv::http", "{name} received, stopping"),
            Err(e) => return Err(Error::io("installing signal handlers", e)),
        }
        shutdown.trigger();
        match server.await {
            Ok(result) => result,
            Err(e) => Err(Error::io("server task", std::io::Error::other(e))),
        }
    })
}
