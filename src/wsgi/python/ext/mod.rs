//! `_labserv`, the extension module every Python worker loads: labserv's HTTP code run
//! inside the worker, calling the app in-process (no hop to another process per
//! request). The supervisor (`wsgi APP`) binds the socket and starts the workers; each
//! worker accepts on the shared socket, serves its connections on one thread and runs
//! the app on another, one request at a time.

mod host;
mod pep3333;

use std::ffi::OsString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use pyo3::prelude::*;

use super::PythonConfig;
use super::ctl::{self, ARGS_VAR, Board, CWD_VAR, Slot};
use crate::config::Service;
use crate::logging::LogGuard;
use crate::shutdown::Shutdown;

/// A worker's seat on the board the workers share.
#[derive(Clone)]
struct Seat {
    board: Arc<Board>,
    seat: usize,
}

impl Seat {
    fn set(&self, state: u64) {
        self.board.set(self.seat, state);
    }

    fn another_idle(&self) -> bool {
        self.board.another_idle(self.seat)
    }

    fn set_conns(&self, conns: u64) {
        self.board.set_conns(self.seat, conns);
    }

    fn idle_with_fewer(&self, conns: u64) -> bool {
        self.board.idle_with_fewer(self.seat, conns)
    }
}

/// The configuration the supervisor runs with, resolved again here, and the logging set
/// up to write where the supervisor's does.
fn configure(log_fd: OwnedFd) -> Result<(PythonConfig, LogGuard), String> {
    let args: Vec<String> = std::env::var(ARGS_VAR)
        .ok()
        .and_then(|a| serde_json::from_str(&a).ok())
        .ok_or_else(|| format!("{ARGS_VAR} is missing"))?;
    let cwd = std::env::var_os(CWD_VAR).ok_or_else(|| format!("{CWD_VAR} is missing"))?;
    let here = std::env::current_dir().map_err(|e| e.to_string())?;
    // Relative paths in the arguments (a certificate, the LOG file) are the supervisor's.
    std::env::set_current_dir(&cwd).map_err(|e| e.to_string())?;
    let resolved = (|| {
        use clap::Parser;
        let args = crate::cli::WsgiArgs::try_parse_from(args.iter().map(OsString::from))
            .map_err(|e| e.to_string())?;
        let settings = crate::settings::Settings::from_env(crate::settings::Defaults::WSGI)
            .map_err(|e| e.to_string())?;
        let mut config = crate::config::wsgi(&args, &settings).map_err(|e| e.to_string())?;
        config.start_tls().map_err(|e| e.to_string())?;
        let log = crate::logging::init_to(&config.log, std::fs::File::from(log_fd))
            .map_err(|e| e.to_string())?;
        match config.service {
            Service::Python { config, .. } => Ok((config, log)),
            _ => Err("the arguments name no Python app".to_string()),
        }
    })();
    std::env::set_current_dir(here).map_err(|e| e.to_string())?;
    resolved
}

/// Serves `app` until SIGTERM (or until a request outlasts `--timeout`), then ends the
/// process. Never returns normally.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)] // Python hands over owned references
fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    helpers: Bound<'_, pyo3::types::PyDict>,
    fds: (i32, i32, i32, i32, i32),
    seat: usize,
) -> PyResult<()> {
    let error = |e: String| pyo3::exceptions::PyRuntimeError::new_err(e);
    // The listening socket, the control socket, the slot, the supervisor's stderr and
    // the board.
    let (listener, ctl, slot, log, board) = fds;
    // SAFETY: the supervisor handed over these descriptors for this process to own.
    let (listener, ctl, slot, log, board) = unsafe {
        (
            std::net::TcpListener::from_raw_fd(listener),
            OwnedFd::from_raw_fd(ctl),
            OwnedFd::from_raw_fd(slot),
            OwnedFd::from_raw_fd(log),
            OwnedFd::from_raw_fd(board),
        )
    };
    // Anything that stops the worker from serving is said over the control socket, in
    // one line, as an app that does not import is.
    let ready = (|| -> Result<_, String> {
        let (config, log) = configure(log)?;
        crate::memory::tune_malloc();
        let slot = Arc::new(Slot::map(slot).map_err(|e| e.to_string())?);
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Others to leave connections to while busy: a board to look at.
        let board = Arc::new(Board::map(board).map_err(|e| e.to_string())?);
        let seat = Seat { board, seat };
        let caller = pep3333::Caller::new(app, &helpers, slot.clone(), seat.clone())
            .map_err(|e| e.to_string())?;
        let others = (config.workers > 1).then_some(seat);
        Ok((config, log, local, others, caller, slot))
    })();
    let (config, log, local, others, caller, slot) = match ready {
        Ok(ready) => ready,
        Err(why) => {
            let _ = ctl::send(ctl.as_fd(), ctl::FAILED, why.as_bytes(), None);
            return Err(error(why));
        }
    };
    let app = pep3333::start(caller).map_err(|e| error(e.to_string()))?;
    let code = py.detach(move || {
        let Ok(runtime) = crate::runner::current_thread_runtime() else {
            return 1;
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return 1;
            };
            let shutdown = Shutdown::new();
            let host = Arc::new(host::PyHost::new(
                app,
                &config,
                local,
                ctl,
                others,
                slot,
                shutdown.clone(),
            ));
            tokio::spawn(host.clone().enforce_timeout());
            host.take_handovers();
            // SIGTERM from the supervisor: finish what is under way, take nothing new.
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                let host = host.clone();
                tokio::spawn(async move {
                    term.recv().await;
                    host.stop();
                });
            }
            // Serving from here on: the supervisor announces the server once every worker
            // has said so.
            host.ready();
            crate::server::conn::run(
                listener,
                host.clone(),
                config.limits,
                config.tls.clone(),
                config.faults.clone(),
                config.access.clone(),
                shutdown,
            )
            .await;
            host.exit_code()
        })
    });
    log.flush();
    drop(log);
    // Python's own streams, then out: the app's thread may be stuck in the app (that is
    // why a timed-out worker ends), and no interpreter shutdown could wait for it.
    let _ = py.run(
        c"import sys; sys.stdout.flush(); sys.stderr.flush()",
        None,
        None,
    );
    // SAFETY: ends the process at once; nothing of it is used after this.
    unsafe { libc::_exit(code) }
}

#[pymodule]
fn _labserv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    Ok(())
}
