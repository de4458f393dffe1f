//! The app's side of a worker: one thread that holds the interpreter, takes requests
//! one at a time, calls the app (PEP 3333) and hands back its head and body.
//!
//! What is easier said in Python stays in `worker.py` and comes here as helpers:
//! `wsgi.input` (pulling the body through [`Pull`]), `wsgi.file_wrapper`, and the
//! traceback report.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyIOError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use tokio::sync::mpsc;

use crate::calls::{Pull, StartResponse, bytes_of, not_bytes};
use labserv::wsgi::python::inside::{Answer, AppLink, Head, Job, Marks, Piece, Progress};

/// The app and the Python helpers from `worker.py`.
pub(crate) struct Caller {
    app: Py<PyAny>,
    /// The environ keys every request shares (`wsgi.version` and the like).
    base: Py<PyDict>,
    /// `wsgi.input` of a request without a body.
    empty: Py<PyAny>,
    /// `Input(pull)`: `wsgi.input` of a request with one.
    input: Py<PyAny>,
    file_wrapper: Py<PyAny>,
    /// `file_fd(result)`: `(fd, offset)` when the result is a file_wrapper of a real file.
    file_fd: Py<PyAny>,
    /// `report(environ, error)`: prints the traceback to wsgi.errors, returns one line.
    report: Py<PyAny>,
    pub(crate) progress: Arc<Progress>,
    /// Requests queued for the app and not taken up yet.
    pub(crate) waiting: Arc<AtomicUsize>,
    /// Told each time the app is done with a request.
    pub(crate) done: Arc<tokio::sync::Notify>,
    marks: Marks,
}

impl Caller {
    pub(crate) fn new(app: Py<PyAny>, helpers: &Bound<'_, PyDict>, marks: Marks) -> PyResult<Self> {
        let get = |name: &str| -> PyResult<Py<PyAny>> {
            helpers
                .get_item(name)?
                .map(Bound::unbind)
                .ok_or_else(|| PyTypeError::new_err(format!("no helper {name}")))
        };
        Ok(Self {
            app,
            base: get("base")?
                .bind(helpers.py())
                .cast::<PyDict>()?
                .clone()
                .unbind(),
            empty: get("empty")?,
            input: get("Input")?,
            file_wrapper: get("FileWrapper")?,
            file_fd: get("file_fd")?,
            report: get("report")?,
            progress: Arc::default(),
            waiting: Arc::default(),
            done: Arc::default(),
            marks,
        })
    }
}

/// Starts the app's thread; requests go to it through the returned sender.
pub(crate) fn start(caller: Caller) -> io::Result<AppLink> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let link = AppLink {
        jobs: tx,
        progress: caller.progress.clone(),
        waiting: caller.waiting.clone(),
        done: caller.done.clone(),
    };
    std::thread::Builder::new()
        .name("labserv-app".into())
        .spawn(move || {
            Python::attach(|py| {
                let mut jobs = rx;
                loop {
                    // The interpreter is free for others while no request waits.
                    let (next, back) = py.detach(move || (jobs.recv(), jobs));
                    jobs = back;
                    let Ok(job) = next else { break };
                    // Busy before no longer waiting: the worker never looks idle between.
                    caller.progress.mark();
                    caller.marks.busy();
                    caller.waiting.fetch_sub(1, Ordering::AcqRel);
                    if !job.turn.start(caller.progress.now()) {
                        // Its client got a 503 while it waited.
                        caller.progress.idle();
                        caller.idle();
                        caller.done.notify_waiters();
                        continue;
                    }
                    caller.marks.in_app(job.tag);
                    caller.run(py, job);
                    caller.marks.head_out();
                    caller.progress.idle();
                    caller.idle();
                    caller.done.notify_waiters();
                }
            });
        })?;
    Ok(link)
}
/// A latin-1 string from bytes (ASCII, the usual case, without a copy through chars).
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.is_ascii() => PyString::new(py, text),
        _ => PyString::new(
            py,
            &bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        ),
    }
}

impl Caller {
    /// Tells the other workers this one takes connections again, unless requests wait.
    fn idle(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            self.marks.idle();
        }
    }

    /// Answers one request.
    fn run(&self, py: Python<'_>, job: Job) {
        let Job {
            environ,
            secure,
            input,
            head,
            body,
            ..
        } = job;
        let too_large = Arc::new(AtomicBool::new(false));
        let start = match Bound::new(
            py,
            StartResponse {
                status: None,
                headers: Vec::new(),
                head: Some(head),
                body: Some(body),
                gone: false,
                too_large: too_large.clone(),
                progress: self.progress.clone(),
                marks: self.marks.clone(),
            },
        ) {
            Ok(start) => start,
            Err(e) => {
                tracing::warn!(target: "labserv::wsgi", "a request could not be set up: {e}");
                return;
            }
        };
        let mut pull = None;
        let env = match self.environ(py, &environ, secure, input, &too_large, &mut pull) {
            Ok(env) => env,
            Err(e) => {
                start.borrow_mut().send(Head::Failed(e.to_string()));
                return;
            }
        };
        let mut result = None;
        let outcome = (|| -> PyResult<()> {
            let returned = self.app.bind(py).call1((&env, &start))?;
            result = Some(returned.clone());
            self.respond(&start, &returned)
        })();
        if let Err(e) = outcome {
            self.failed(py, &start, &env, &e);
        }
        if let Some(result) = result
            && !result.is_exact_instance_of::<PyList>()
            && let Ok(close) = result.getattr("close")
            && let Err(e) = close.call0()
        {
            let _ = self
                .report
                .bind(py)
                .call1((&env, e.value(py), e.traceback(py)));
        }
        // A response the app ended without a head still needs one.
        let mut this = start.borrow_mut();
        if !this.head_sent() {
            let _ = this.send_head(Answer::Whole(Bytes::new()));
        }
        // The body ends here, and the rest of the request body is not wanted.
        this.body = None;
        drop(this);
        if let Some(pull) = pull {
            pull.bind(py).borrow_mut().rx = None;
        }
    }

    fn environ<'py>(
        &self,
        py: Python<'py>,
        flat: &[u8],
        secure: bool,
        input: Option<mpsc::Receiver<Piece>>,
        too_large: &Arc<AtomicBool>,
        pull: &mut Option<Py<Pull>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.base.bind(py).copy()?;
        let mut fields = flat.split(|&b| b == 0);
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            env.set_item(latin1(py, name), latin1(py, value))?;
        }
        if secure {
            env.set_item("wsgi.url_scheme", "https")?;
        }
        match input {
            Some(rx) => {
                let made = Py::new(
                    py,
                    Pull {
                        rx: Some(rx),
                        too_large: too_large.clone(),
                    },
                )?;
                env.set_item(
                    "wsgi.input",
                    self.input.bind(py).call1((made.clone_ref(py),))?,
                )?;
                *pull = Some(made);
            }
            None => env.set_item("wsgi.input", self.empty.bind(py))?,
        }
        Ok(env)
    }

    /// Sends what the app returned.
    fn respond(&self, start: &Bound<'_, StartResponse>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = start.py();
        if !start.borrow().head_sent() {
            // A list: the whole body at once, the common case.
            if let Ok(list) = result.cast::<PyList>() {
                let mut body = BytesMut::new();
                for item in list.iter() {
                    let chunk = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
                    body.extend_from_slice(chunk.as_bytes());
                }
                // What is left is done at once: other workers may leave connections to
                // this one from now (before its client has the answer and asks again).
                self.idle();
                return start.borrow_mut().send_head(Answer::Whole(body.freeze()));
            }
            // A file_wrapper of a real file: labserv sends it, the bytes skip Python.
            if result.get_type().is(self.file_wrapper.bind(py)) && start.borrow().status.is_some() {
                let found = self.file_fd.bind(py).call1((result,))?;
                if !found.is_none() {
                    let (fd, offset): (i32, u64) = found.extract()?;
                    // SAFETY: `fd` is open (file_fd just used it); the duplicate is ours.
                    let dup = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
                        .try_clone_to_owned()
                        .map_err(|e| PyIOError::new_err(e.to_string()))?;
                    let file = std::fs::File::from(dup);
                    return start.borrow_mut().send_head(Answer::File { file, offset });
                }
            }
        }
        for item in result.try_iter()? {
            let data = bytes_of(&item?)?;
            if data.is_empty() {
                continue;
            }
            if !StartResponse::send_chunk(start, data)? {
                break;
            }
        }
        Ok(())
    }

    /// The app raised: a 500 if its head is not out yet, else the response is cut.
    fn failed(
        &self,
        py: Python<'_>,
        start: &Bound<'_, StartResponse>,
        env: &Bound<'_, PyDict>,
        error: &PyErr,
    ) {
        let line = self
            .report
            .bind(py)
            .call1((env, error.value(py), error.traceback(py)))
            .and_then(|l| l.extract::<String>())
            .unwrap_or_else(|_| error.to_string());
        let mut this = start.borrow_mut();
        if this.head_sent() {
            let var = |name: &str| -> String {
                env.get_item(name)
                    .ok()
                    .flatten()
                    .and_then(|v| v.extract::<String>().ok())
                    .unwrap_or_default()
            };
            tracing::warn!(
                target: "labserv::wsgi",
                "{} {} {}: the app failed while sending: {line}",
                var("REMOTE_ADDR"), var("REQUEST_METHOD"), var("PATH_INFO")
            );
            if let Some(body) = &this.body {
                let _ = body.try_send(Err(io::Error::other("the app failed")));
            }
        } else {
            this.send(Head::Failed(line));
        }
    }
}
