//! `_labserv`, the extension module every Python worker loads: labserv's HTTP code run
//! inside the worker, calling the app in-process (no hop to another process per
//! request). The supervisor (`wsgi APP`) binds the socket and starts the workers; each
//! worker accepts on the shared socket, serves its connections on one thread and runs
//! the app on another, one request at a time.

mod host;
mod pep3333;

use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use pyo3::prelude::*;

use super::PythonConfig;
use super::ctl::{ARGS_VAR, CWD_VAR, Slot};
use crate::config::Service;
use crate::logging::LogGuard;
use crate::shutdown::Shutdown;

/// The descriptors a worker gets, by number.
#[derive(Debug, Clone, Copy)]
struct Fds {
    listener: i32,
    ctl: i32,
    slot: i32,
    log: i32,
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
    listener: i32,
    ctl: i32,
    slot: i32,
    log: i32,
) -> PyResult<()> {
    let fds = Fds {
        listener,
        ctl,
        slot,
        log,
    };
    let error = |e: String| pyo3::exceptions::PyRuntimeError::new_err(e);
    // SAFETY: the supervisor handed over these descriptors for this process to own.
    let (listener, ctl, slot, log) = unsafe {
        (
            std::net::TcpListener::from_raw_fd(fds.listener),
            OwnedFd::from_raw_fd(fds.ctl),
            OwnedFd::from_raw_fd(fds.slot),
            OwnedFd::from_raw_fd(fds.log),
        )
    };
    let (config, log) = configure(log).map_err(error)?;
    crate::memory::tune_malloc();
    let slot = Arc::new(Slot::map(slot).map_err(|e| error(e.to_string()))?);
    listener
        .set_nonblocking(true)
        .map_err(|e| error(e.to_string()))?;
    let local = listener.local_addr().map_err(|e| error(e.to_string()))?;
    let caller = pep3333::Caller::new(app, &helpers, slot)?;
    let progress = caller.progress.clone();
    let waiting = caller.waiting.clone();
    let jobs = pep3333::start(caller).map_err(|e| error(e.to_string()))?;
    let code = py.detach(move || {
        let Ok(runtime) = crate::runner::current_thread_runtime() else {
            return 1;
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return 1;
            };
            let shutdown = Shutdown::new();
            let stop = shutdown.clone();
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                tokio::spawn(async move {
                    term.recv().await;
                    stop.trigger();
                });
            }
            let host = Arc::new(host::PyHost::new(
                jobs,
                progress,
                waiting,
                &config,
                local,
                ctl,
                shutdown.clone(),
            ));
            tokio::spawn(host.clone().watch());
            crate::server::conn::run(
                listener,
                host.clone(),
                config.limits,
                config.tls.clone(),
                config.faults.clone(),
                crate::server::gate::Access::default(),
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
