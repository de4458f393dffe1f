//! What the app calls back: `start_response`, the `write` callable it returns, and the
//! pull behind `wsgi.input`; each hands what the app gives to labserv's HTTP side.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use pyo3::exceptions::{PyAssertionError, PyIOError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use tokio::sync::{mpsc, oneshot};

use labserv::wsgi::python::inside::{Answer, Head, Marks, Piece, Progress};

/// `start_response`, and the state of the response it starts.
#[pyclass]
pub(crate) struct StartResponse {
    pub(crate) status: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    /// Until the head is sent.
    pub(crate) head: Option<oneshot::Sender<Head>>,
    /// Until the app is done: the body ends when this goes (a reference cycle in the app
    /// may keep this object alive much longer).
    pub(crate) body: Option<mpsc::Sender<io::Result<Bytes>>>,
    /// The client has gone (or the response was refused): stop producing.
    pub(crate) gone: bool,
    pub(crate) too_large: Arc<AtomicBool>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) marks: Marks,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        slf: &Bound<'_, Self>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<Write>> {
        let mut this = slf.borrow_mut();
        match exc_info.filter(|e| !e.is_none()) {
            // Too late to change the head: the error goes on up.
            Some(exc_info) if this.head_sent() => {
                return Err(PyErr::from_value(exc_info.get_item(1)?));
            }
            None if this.status.is_some() => {
                return Err(PyAssertionError::new_err(
                    "start_response called a second time without exc_info",
                ));
            }
            Some(_) | None => {}
        }
        let status = status.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "status must be a str, not {}",
                status
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        let mut pairs = Vec::new();
        for pair in headers.try_iter()? {
            let pair = pair?;
            let bad = || {
                PyTypeError::new_err(format!(
                    "each header must be a (name, value) tuple of str: {pair}"
                ))
            };
            let tuple = pair.cast::<PyTuple>().map_err(|_| bad())?;
            if tuple.len() != 2 {
                return Err(bad());
            }
            let name = tuple.get_item(0)?;
            let value = tuple.get_item(1)?;
            let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
                return Err(bad());
            };
            pairs.push((name.extract::<String>()?, value.extract::<String>()?));
        }
        this.status = Some(status.extract::<String>()?);
        this.headers = pairs;
        drop(this);
        Py::new(
            slf.py(),
            Write {
                start: slf.clone().unbind(),
            },
        )
    }
}

impl StartResponse {
    pub(crate) fn head_sent(&self) -> bool {
        self.head.is_none()
    }

    /// Sends the head now (the first chunk of the body is ready, or there is none).
    pub(crate) fn send_head(&mut self, body: Answer) -> PyResult<()> {
        if self.head_sent() {
            return Ok(());
        }
        let Some(status) = self.status.take() else {
            return Err(PyAssertionError::new_err(
                "the app returned without calling start_response",
            ));
        };
        let headers = std::mem::take(&mut self.headers);
        self.send(Head::Answer {
            status,
            headers,
            body,
        });
        Ok(())
    }

    /// Sends the head, unless it is out already (a body past `--max-body` makes it 413).
    pub(crate) fn send(&mut self, head: Head) {
        let Some(tx) = self.head.take() else {
            return;
        };
        let head = if self.too_large.load(Ordering::Acquire) {
            Head::TooLarge
        } else {
            head
        };
        // From here a worker that dies cuts the response instead of answering 502.
        self.marks.head_out();
        if tx.send(head).is_err() {
            self.gone = true;
        }
    }

    /// Sends a chunk of the body (after the head); false once the client has gone.
    pub(crate) fn send_chunk(slf: &Bound<'_, Self>, data: Bytes) -> PyResult<bool> {
        let mut this = slf.borrow_mut();
        this.send_head(Answer::Streamed)?;
        if this.gone {
            return Ok(false);
        }
        if data.is_empty() {
            return Ok(true);
        }
        let Some(tx) = this.body.clone() else {
            return Ok(false);
        };
        drop(this);
        let sent = slf.py().detach(move || tx.blocking_send(Ok(data)).is_ok());
        let mut this = slf.borrow_mut();
        this.progress.mark();
        if !sent {
            this.gone = true;
        }
        Ok(sent)
    }
}

/// The `write` callable `start_response` returns.
#[pyclass]
struct Write {
    start: Py<StartResponse>,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_of(data)?;
        let start = self.start.bind(py);
        if start.borrow().status.is_none() && !start.borrow().head_sent() {
            return Err(PyAssertionError::new_err("write() before start_response"));
        }
        StartResponse::send_chunk(start, data)?;
        Ok(())
    }
}

/// What `wsgi.input` pulls the body through.
#[pyclass]
pub(crate) struct Pull {
    pub(crate) rx: Option<mpsc::Receiver<Piece>>,
    pub(crate) too_large: Arc<AtomicBool>,
}

#[pymethods]
impl Pull {
    /// The next piece of the body; empty at its end.
    fn __call__(&mut self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let Some(mut rx) = self.rx.take() else {
            return Ok(PyBytes::new(py, b"").unbind());
        };
        let (piece, rx) = py.detach(move || (rx.blocking_recv(), rx));
        match piece {
            Some(Piece::Data(data)) => {
                self.rx = Some(rx);
                Ok(PyBytes::new(py, &data).unbind())
            }
            None => Ok(PyBytes::new(py, b"").unbind()),
            Some(Piece::TooLarge) => {
                self.too_large.store(true, Ordering::Release);
                Err(PyIOError::new_err(
                    "the request body is larger than --max-body",
                ))
            }
            Some(Piece::Broken) => Err(PyIOError::new_err("the client stopped sending the body")),
        }
    }
}

/// A body chunk as bytes: `bytes` only, as PEP 3333 says.
pub(crate) fn bytes_of(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(item))?;
    Ok(Bytes::copy_from_slice(bytes.as_bytes()))
}

pub(crate) fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "the app's body must be bytes, not {}",
        item.get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string())
    ))
}
