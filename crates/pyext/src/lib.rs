//! `_labserv`, the extension module every Python worker of `wsgi APP` loads: labserv's
//! HTTP code run inside the worker, calling the app in-process (no hop to another
//! process per request), as granian does.
//!
//! The supervisor (`wsgi APP`) binds the socket, resolves the configuration and starts
//! the workers. Each worker imports the app (`worker.py`), then calls `serve` here: the
//! app's thread (`pep3333.rs`) calls the app one request at a time, and labserv's worker
//! side (`labserv::wsgi::python::inside`) serves HTTP on the shared socket with the
//! configuration the supervisor handed down as data. Nothing here parses a command line
//! or reads the environment.

mod calls;
mod pep3333;

use std::os::fd::{FromRawFd, OwnedFd};

use labserv::wsgi::python::inside::{Inherited, Worker};
use pyo3::prelude::*;

/// Serves `app` until SIGTERM (or until a request outlasts `--timeout`), then ends the
/// process. Never returns normally.
///
/// `fds` are the descriptors the worker inherited: the listening socket, the control
/// socket, the slot, the log, the board and the configuration; `seat` is the worker's
/// place on the board.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)] // Python hands over owned references
fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    helpers: Bound<'_, pyo3::types::PyDict>,
    fds: (i32, i32, i32, i32, i32, i32),
    seat: usize,
) -> PyResult<()> {
    let error = |e: String| pyo3::exceptions::PyRuntimeError::new_err(e);
    let (listener, ctl, slot, log, board, config) = fds;
    // SAFETY: the supervisor handed over these descriptors for this process to own, and
    // worker.py passes each number once.
    let inherited = unsafe {
        Inherited {
            listener: OwnedFd::from_raw_fd(listener),
            ctl: OwnedFd::from_raw_fd(ctl),
            slot: OwnedFd::from_raw_fd(slot),
            log: OwnedFd::from_raw_fd(log),
            board: OwnedFd::from_raw_fd(board),
            config: OwnedFd::from_raw_fd(config),
        }
    };
    // Anything that stops the worker from serving is said to the supervisor, in one
    // line, as an app that does not import is.
    let worker = Worker::prepare(inherited, seat).map_err(error)?;
    let app = pep3333::Caller::new(app, &helpers, worker.marks())
        .map_err(|e| e.to_string())
        .and_then(|caller| pep3333::start(caller).map_err(|e| e.to_string()));
    let app = match app {
        Ok(app) => app,
        Err(why) => {
            worker.failed(&why);
            return Err(error(why));
        }
    };
    let code = py.detach(move || worker.serve(app));
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
