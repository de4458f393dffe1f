//! tracing-subscriber setup: one event per line to stderr, or appended to the LOG file.
//!
//! Lines are gathered in memory and written by a flusher thread within [`FLUSH_EVERY`], or
//! as soon as 64 KiB are waiting. A request therefore costs a memcpy, never a
//! write system call or a wait on the disk, which matters at tens of thousands of requests
//! per second; `tail -f` still sees each line within a few tens of milliseconds.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::error::{Error, Result};

mod access;

pub(crate) use access::{access, access_enabled, access_with, push_padded};

/// The target of access-log events (one per request or transfer).
pub const ACCESS: &str = "access";

/// `--slow`: requests and transfers that take longer are warned of.
static SLOW: OnceLock<Duration> = OnceLock::new();

/// How long `elapsed` was past `--slow`: `Some` (the threshold) when it was slow.
pub(crate) fn slow(elapsed: Duration) -> Option<Duration> {
    SLOW.get().copied().filter(|&slow| elapsed > slow)
}

/// The installed sink, for access lines (see [`access`]).
static ACCESS_SINK: OnceLock<(Arc<Sink>, bool)> = OnceLock::new();

/// The longest a logged line waits in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Buffered bytes that wake the flusher at once.
const BUFFER: usize = 64 * 1024;

/// How much to log and where.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LogConfig {
    /// Per-request detail (DEBUG=1 or `-v`).
    pub debug: bool,
    /// Warnings and errors only (`-q`); access lines are dropped too.
    pub quiet: bool,
    /// Append to this file instead of writing to stderr.
    pub file: Option<PathBuf>,
    /// Warn of every request or transfer that takes longer (`--slow`).
    pub slow: Option<Duration>,
}

/// Where buffered lines end up.
enum Target {
    Stderr,
    File {
        path: PathBuf,
        file: File,
    },
    /// Where another process's stderr goes (a Python worker writes its log there).
    Stream(File),
}

impl Target {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Target::Stderr => io::stderr().lock().write_all(bytes),
            Target::File { file, .. } | Target::Stream(file) => file.write_all(bytes),
        }
    }
}

/// The shared line buffer and its flusher thread.
///
/// Request threads only append to `buf`; the flusher swaps it out and writes with no lock
/// on `buf` held, so a slow or throttled disk never stalls a request. Only when more than
/// [`BACKLOG`] bytes are waiting does a request thread write itself (back-pressure rather
/// than unbounded memory).
struct Sink {
    buf: Mutex<Vec<u8>>,
    target: Mutex<Target>,
    /// Set when the buffer holds bytes the flusher has not been told about.
    dirty: AtomicBool,
    stop: AtomicBool,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// Pending bytes past which appending threads write the backlog themselves.
const BACKLOG: usize = 8 * 1024 * 1024;

impl Sink {
    fn append(&self, bytes: &[u8]) {
        let pending = {
            let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
            buf.extend_from_slice(bytes);
            buf.len()
        };
        if pending >= BACKLOG {
            self.flush();
        } else if (pending >= BUFFER || !self.dirty.swap(true, Ordering::AcqRel))
            && let Some(flusher) = self
                .flusher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
        {
            flusher.thread().unpark();
        }
    }

    /// Writes everything buffered so far, in order.
    fn flush(&self) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = {
            let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *buf, Vec::with_capacity(BUFFER))
        };
        if batch.is_empty() {
            return;
        }
        // A log that cannot be written must not take the server down; stderr is the
        // last place left to say so.
        if let Err(e) = target.write_all(&batch) {
            eprintln!("labserv: cannot write log: {e}");
        }
    }

    fn run_flusher(self: Arc<Self>) {
        while !self.stop.load(Ordering::Acquire) {
            thread::park();
            // Gather what else arrives in the next moments into the same write, unless
            // the buffer is already full.
            let full = self.buf.lock().map_or(true, |b| b.len() >= BUFFER);
            if !full {
                thread::sleep(FLUSH_EVERY);
            }
            self.dirty.store(false, Ordering::Release);
            self.flush();
        }
        self.flush();
    }
}

/// A handle for the fmt layer: every event's line goes into the shared buffer.
#[derive(Clone)]
struct SinkWriter(Arc<Sink>);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Keeps the logger's flusher alive; dropping it writes out what is still buffered.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    sink: Arc<Sink>,
}

impl LogGuard {
    /// Reopens the log file at its path, for logrotate after a SIGHUP. No-op on stderr.
    ///
    /// # Errors
    /// The file cannot be opened again; logging goes on into the old file.
    pub fn reopen(&self) -> io::Result<()> {
        self.sink.flush();
        let mut target = self
            .sink
            .target
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Target::File { path, file } = &mut *target {
            *file = open_append(path)?;
        }
        Ok(())
    }

    /// Writes out everything logged so far.
    pub fn flush(&self) {
        self.sink.flush();
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.sink.stop.store(true, Ordering::Release);
        let flusher = self
            .sink
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            flusher.thread().unpark();
            let _ = flusher.join();
        }
        self.sink.flush();
    }
}

/// Opens `path` for appending, creating it and its parent directories.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::private::create_dir_all(parent)?;
    }
    crate::private::options()
        .create(true)
        .append(true)
        .open(path)
}

/// Whether to colour stderr: only on a terminal, and never when `NO_COLOR` is set.
fn use_colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. Call once, from a binary.
///
/// # Errors
/// The LOG file cannot be opened, or a subscriber is already installed.
pub fn init(config: &LogConfig) -> Result<LogGuard> {
    install(config, None)
}

/// As [`init`], but lines that would go to stderr go to `stderr` instead (a Python
/// worker's own stderr is a pipe the supervisor reads; this is the supervisor's).
///
/// # Errors
/// As [`init`].
#[cfg_attr(not(unix), allow(dead_code))] // used by the Python workers
pub(crate) fn init_to(config: &LogConfig, stderr: File) -> Result<LogGuard> {
    install(config, Some(stderr))
}

fn install(config: &LogConfig, stderr: Option<File>) -> Result<LogGuard> {
    if let Some(slow) = config.slow {
        let _ = SLOW.set(slow);
    }
    let level = if config.quiet {
        LevelFilter::WARN
    } else if config.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    // With debug on, the TFTP engine's per-packet trace (bridged from the `log` crate).
    let packets = if config.debug && !config.quiet {
        LevelFilter::TRACE
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_target("labserv", level)
        .with_target(ACCESS, level)
        .with_target("tftp_engine", packets);
    let (target, ansi) = match &config.file {
        Some(path) => {
            let file = open_append(path).map_err(|error| Error::LogFile {
                path: path.clone(),
                error,
            })?;
            let target = Target::File {
                path: path.clone(),
                file,
            };
            (target, false)
        }
        None => match stderr {
            Some(file) => {
                let colour = use_colour(file.is_terminal());
                (Target::Stream(file), colour)
            }
            None => (Target::Stderr, use_colour(io::stderr().is_terminal())),
        },
    };
    let sink = Arc::new(Sink {
        buf: Mutex::new(Vec::with_capacity(BUFFER)),
        target: Mutex::new(target),
        dirty: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        flusher: Mutex::new(None),
    });
    let flusher = {
        let sink = sink.clone();
        thread::Builder::new()
            .name("labserv-log".into())
            .spawn(move || sink.run_flusher())
            .map_err(|e| Error::io("starting the log writer", e))?
    };
    *sink.flusher.lock().unwrap_or_else(PoisonError::into_inner) = Some(flusher);

    let layer = tracing_subscriber::fmt::layer()
        .with_writer(SinkWriter(sink.clone()))
        .with_ansi(ansi)
        .with_target(true);
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| Error::io("installing the logger", io::Error::other(e)))?;
    if !config.quiet {
        // Only the first logger installed gets access lines; `try_init` above already
        // refused any second one.
        let _ = ACCESS_SINK.set((sink.clone(), ansi));
    }
    Ok(LogGuard { sink })
}

#[cfg(test)]
mod tests;
