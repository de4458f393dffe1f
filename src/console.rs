//! The foreground commands, from parsed arguments to exit code.

use std::io::Write as _;
use std::process::ExitCode;

use crate::cli::{ServArgs, non_empty};
use crate::error::{Error, Result};
use crate::http::{self, HttpConfig};
use crate::logging::{self, LogConfig};
use crate::net;
use crate::settings::{self, Defaults, Settings};
use crate::shutdown::{Shutdown, Signals};

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
    let runtime = current_thread_runtime()?;
    let signals = {
        let _context = runtime.enter();
        Signals::install().map_err(|e| Error::io("installing signal handlers", e))?
    };
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
    run_until_signal(runtime, signals, listener, config)
}

/// Runs the server on one single-threaded runtime per core, all accepting from the same
/// listening socket and sharing one shutdown, until SIGINT or SIGTERM.
///
/// A runtime per core keeps a connection on the thread that accepted it: no work-stealing
/// wake-ups between threads, which on a small machine is a measurable share of the cost
/// of a small request.
fn run_until_signal(
    runtime: tokio::runtime::Runtime,
    mut signals: Signals,
    listener: std::net::TcpListener,
    config: HttpConfig,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let shutdown = Shutdown::new();
    let mut workers = Vec::new();
    for i in 1..threads {
        let listener = listener
            .try_clone()
            .map_err(|e| Error::io("sharing the listener", e))?;
        let config = config.clone();
        let shutdown = shutdown.clone();
        let worker = std::thread::Builder::new()
            .name(format!("serv-{i}"))
            .spawn(move || {
                let runtime = current_thread_runtime()?;
                let result = runtime.block_on(async {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| Error::io("registering the listener", e))?;
                    http::serve(listener, config, shutdown.clone()).await
                });
                // One thread failing stops them all rather than leaving half a server.
                shutdown.trigger();
                result
            })
            .map_err(|e| Error::io("starting a server thread", e))?;
        workers.push(worker);
    }
    let main = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::io("registering the listener", e))?;
        let server = async {
            let served = http::serve(listener, config, shutdown.clone()).await;
            shutdown.trigger();
            served
        };
        let stop = async {
            tokio::select! {
                name = signals.recv() => {
                    tracing::info!(target: "labserv::http", "{name} received, stopping");
                }
                // Another server thread failed and asked everyone to stop.
                () = shutdown.triggered() => {}
            }
            shutdown.trigger();
        };
        // Both run to the end: after the signal, this thread's connections still drain.
        let (served, ()) = tokio::join!(server, stop);
        shutdown.trigger();
        served
    });
    shutdown.trigger();
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::io(
                    "server thread",
                    std::io::Error::other("panicked"),
                ));
            }
        }
    }
    main
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))
}
