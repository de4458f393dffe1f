//! Python WSGI apps (`wsgi myapp:app`), in worker processes.
//!
//! This process, the supervisor, binds the socket and starts the workers: Python
//! processes that import the app once, then load labserv's HTTP code as an extension
//! module (`_labserv`, built from this crate by `build.rs` and shipped inside the
//! binary). Each worker accepts connections on the shared socket and calls the app
//! in-process, one request at a time (sync WSGI, as gunicorn's sync workers), so no
//! request crosses to another process. The supervisor follows the workers: it replaces
//! one that dies (answering 502 for the request it died in) and swaps in new ones on
//! `--reload`.

// The workers stand on Unix (Linux and macOS; see `portable`). On Windows `wsgi APP`
// says so and exits 2 (see `Workers::start`); Rust apps, CGI and the built-in apps run
// everywhere.
#[cfg(unix)]
mod ctl;
// What the extension module (`crates/pyext`) calls inside a worker; not for other use.
#[cfg(unix)]
mod handover;
#[cfg(unix)]
mod inherit;
#[cfg(unix)]
#[doc(hidden)]
pub mod inside;
#[cfg(unix)]
mod pool;
#[cfg(unix)]
mod reload;
#[cfg(unix)]
mod worker;

use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use pool::Pool;
#[cfg(unix)]
use reload::Reloader;
#[cfg(unix)]
use worker::{Shared, Worker};

use crate::error::{Error, Result};
use crate::server::HttpOptions;
use crate::server::tls::Tls;
use crate::shutdown::Shutdown;

/// Whether the workers stand on what every Unix has rather than on Linux's own means: a
/// stream control socket (macOS has no `SOCK_SEQPACKET` for local sockets) in place of a
/// packet one, the extension module in a private file and the shared pages in unnamed
/// temporary files in place of memfds, and a pipe whose end closes when the supervisor
/// dies in place of `PR_SET_PDEATHSIG`. Always so off Linux. On Linux only when
/// `LABSERV_PORTABLE_WORKERS=1`: the tests set it, so that this way is run here and
/// not only compiled.
#[cfg(unix)]
pub(crate) fn portable() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| {
        !cfg!(target_os = "linux")
            || std::env::var_os("LABSERV_PORTABLE_WORKERS").is_some_and(|v| v == "1")
    })
}

/// The extension module the workers load, which only the `wsgi` binary carries (see
/// [`provide_extension`]).
static EXTENSION: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();

/// Hands over the extension module the workers load (`_labserv`, built by `build.rs`).
/// The `wsgi` binary embeds it and calls this first; no other binary carries its
/// megabytes.
pub fn provide_extension(module: &'static [u8]) {
    let _ = EXTENSION.set(module);
}

/// Default for [`PythonConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`PythonConfig::queue_timeout`].
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a worker is started: the interpreter, the app and where it runs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The Python interpreter.
    pub python: PathBuf,
    /// `module:callable`, `path/file.py:callable`, or either without `:callable`.
    pub app: String,
    /// The directory the workers run in (and import from).
    pub dir: PathBuf,
    /// Let Python write `__pycache__`. Off with `--reload`: a cached module compiled in the
    /// same second as an edit of the same size would hide the edit.
    pub write_bytecode: bool,
}

/// How a Python app is hosted.
#[derive(Debug, Clone)]
pub struct PythonConfig {
    /// The interpreter, the app and its directory.
    pub launch: Launch,
    /// Worker processes.
    pub workers: usize,
    /// A request the app has not answered in this long gets 504, and its worker is
    /// replaced.
    pub timeout: Duration,
    /// A request waits this long for its worker's app before it gets 503.
    pub queue_timeout: Duration,
    /// The path the app is mounted at (`SCRIPT_NAME`), without a trailing slash.
    pub root_path: String,
    /// Request bodies larger than this get 413.
    pub max_body: u64,
    /// Check what the app sends, as for Rust apps.
    pub validate: bool,
    /// Limits, HTTPS, faults and access, as for the file server.
    pub http: HttpOptions,
    /// Start new workers when a `.py` file under the app's directory changes.
    pub reload: bool,
}

/// Started workers, ready to serve (and the watch on the app's files, with `--reload`).
#[cfg(unix)]
pub struct Workers {
    pool: Arc<Pool>,
    ready: Vec<Worker>,
    reloader: Option<Reloader>,
}

#[cfg(unix)]
impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("pids", &self.pool.pids())
            .field("reload", &self.reloader.is_some())
            .finish()
    }
}

#[cfg(unix)]
impl Workers {
    /// Starts the workers on `listener` and waits until every one has imported the app.
    /// Call on the thread that will run the server: a worker dies with the thread that
    /// started it. The workers get `config` as this process resolved it (see
    /// `inside::WorkerConfig`), and log as `log` says.
    ///
    /// # Errors
    /// [`Error::App`] naming the app and what went wrong, in one line.
    pub fn start(
        config: &PythonConfig,
        tls: Option<&Tls>,
        log: &crate::logging::LogConfig,
        listener: &std::net::TcpListener,
    ) -> Result<Self> {
        let app_error = |reason: String| Error::App {
            app: config.launch.app.clone(),
            reason,
        };
        let reloader = if config.reload {
            Some(Reloader::watch(reload::watched_dirs(&config.launch)).map_err(app_error)?)
        } else {
            None
        };
        let worker_config = inside::WorkerConfig::new(config, tls, log);
        let shared = Shared::new(
            std::os::fd::AsFd::as_fd(listener),
            &worker_config,
            log.file.as_deref(),
        )
        .map_err(|e| app_error(format!("cannot prepare the workers: {e}")))?;
        Pool::start(config.launch.clone(), shared, config.workers)
            .map(|(pool, ready)| Workers {
                pool,
                ready,
                reloader,
            })
            .map_err(|reason| {
                let app = &config.launch.app;
                // A bare word that is no module may have been meant as a built-in app.
                let hint = if !app.contains([':', '/'])
                    && reason.contains(&format!("No module named '{app}'"))
                {
                    format!(
                        " (nor is it a built-in app: {})",
                        crate::wsgi::APP_NAMES.join(", ")
                    )
                } else {
                    String::new()
                };
                app_error(reason + &hint)
            })
    }

    /// The workers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.pool.pids()
    }
}

/// Python workers, which this platform does not have (they stand on Unix).
#[cfg(not(unix))]
#[derive(Debug)]
pub struct Workers {
    never: std::convert::Infallible,
}

#[cfg(not(unix))]
impl Workers {
    /// Says that Python apps need Linux here, in one line.
    ///
    /// # Errors
    /// Always: [`Error::App`], which exits 2.
    pub fn start(
        config: &PythonConfig,
        _tls: Option<&Tls>,
        _log: &crate::logging::LogConfig,
        _listener: &std::net::TcpListener,
    ) -> Result<Self> {
        Err(Error::App {
            app: config.launch.app.clone(),
            reason: "Python apps run in labserv's workers on Linux and macOS only (WSL \
                     works); here, serve it with waitress or granian, or give wsgi a built-in \
                     app, a Rust app or a CGI script"
                .to_string(),
        })
    }

    /// The workers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        match self.never {}
    }
}

/// The interpreter to run: `--python`, else the active virtualenv's, else `python3` on
/// `PATH`.
///
/// # Errors
/// None of those is there, in words that say where to point labserv.
pub fn find_python(given: Option<&Path>) -> std::result::Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("no Python at --python {}", path.display()))
        };
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let python = Path::new(&venv).join("bin").join("python");
        if python.is_file() {
            return Ok(python);
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no python3 on PATH (give --python PATH, or activate a virtualenv)".into())
}

/// Lets the workers serve on the listener they share until `shutdown`, then stops them
/// (each finishes its requests for up to the drain time). The listener stays open here
/// so that connections wait in its backlog while a worker is being replaced.
#[cfg(unix)]
pub async fn serve(
    listener: std::net::TcpListener,
    workers: Workers,
    config: PythonConfig,
    shutdown: Shutdown,
) -> Result<()> {
    let Workers {
        pool,
        ready,
        reloader,
    } = workers;
    for worker in ready {
        pool.follow(worker);
    }
    if let Some(reloader) = reloader {
        reloader.run(pool.clone(), shutdown.clone());
    }
    shutdown.triggered().await;
    pool.close(config.http.limits.drain).await;
    drop(listener);
    Ok(())
}

/// See the Unix `serve`: no workers ever start here.
///
/// # Errors
/// Never: there are no workers to serve with.
#[cfg(not(unix))]
pub async fn serve(
    _listener: std::net::TcpListener,
    workers: Workers,
    _config: PythonConfig,
    _shutdown: Shutdown,
) -> Result<()> {
    match workers.never {}
}
