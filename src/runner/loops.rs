//! The runtimes a server runs on and the wait for SIGINT or SIGTERM: one event loop per
//! core sharing the listener (HTTP), or one runtime blocked on the server (TFTP, the
//! Python supervisor).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::runtime::current_thread_runtime;
use crate::server::balance::{self, Balance};
use crate::shutdown::{Shutdown, Signals};

/// What one core serves on its copy of the listener.
pub(super) type ServeOnCore = Arc<
    dyn Fn(tokio::net::TcpListener, Shutdown) -> Pin<Box<dyn Future<Output = Result<()>>>>
        + Send
        + Sync,
>;

/// Runs the server on one single-threaded runtime per core, all accepting from the same
/// listening socket and sharing one shutdown, until SIGINT or SIGTERM.
///
/// A runtime per core keeps a connection on the thread that accepted it: no work-stealing
/// wake-ups between threads, which on a small machine is a measurable share of the cost
/// of a small request.
///
/// Since a connection never moves, the threads take turns by their counts of open
/// connections ([`balance`]) rather than by which wakes first.
pub(super) fn run_until_signal(
    runtime: tokio::runtime::Runtime,
    mut signals: Signals,
    listener: std::net::TcpListener,
    serve: ServeOnCore,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let balance = (threads > 1).then(|| Balance::new(threads));
    let seat = |i| balance.as_ref().map(|b| b.seat(i));
    let shutdown = Shutdown::new();
    let mut workers = Vec::new();
    for i in 1..threads {
        let listener = listener
            .try_clone()
            .map_err(|e| Error::io("sharing the listener", e))?;
        let serve = serve.clone();
        let shutdown = shutdown.clone();
        let seat = seat(i);
        let worker = std::thread::Builder::new()
            .name(format!("labserv-{i}"))
            .spawn(move || {
                let runtime = current_thread_runtime()?;
                let result = runtime.block_on(async {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| Error::io("registering the listener", e))?;
                    balance::seated(seat, serve(listener, shutdown.clone())).await
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
            let served = balance::seated(seat(0), serve(listener, shutdown.clone())).await;
            shutdown.trigger();
            served
        };
        let stop = async {
            tokio::select! {
                name = signals.recv() => {
                    tracing::info!(target: "labserv", "{name} received, stopping");
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

/// A single-threaded runtime with SIGINT/SIGTERM handlers installed, made before
/// anything is announced so that a signal right after the banner is a clean stop.
pub(super) fn runtime_with_signals() -> Result<(tokio::runtime::Runtime, Signals)> {
    crate::memory::tune_malloc();
    let runtime = current_thread_runtime()?;
    let signals = {
        let _context = runtime.enter();
        Signals::install().map_err(|e| Error::io("installing signal handlers", e))?
    };
    Ok((runtime, signals))
}

/// Runs the server that `serve` starts until it ends by itself or a signal arrives; on a
/// signal, triggers its shutdown and waits for it to finish.
pub(super) fn block_until_signal<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    mut signals: Signals,
    serve: F,
) -> Result<()>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        let server = serve(shutdown.clone());
        tokio::pin!(server);
        tokio::select! {
            served = &mut server => served,
            name = signals.recv() => {
                tracing::info!(target: "labserv", "{name} received, stopping");
                shutdown.trigger();
                server.await
            }
        }
    })
}
