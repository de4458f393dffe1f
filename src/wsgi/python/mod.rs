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

mod ctl;
#[cfg(feature = "pyext")]
mod ext;
mod pool;
mod reload;
mod worker;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pool::Pool;
use reload::Reloader;
pub use worker::Launch;
use worker::{Shared, Worker};

use crate::error::{Error, Result};
use crate::server::Limits;
use crate::server::faults::Faults;
use crate::server::tls::Tls;
use crate::shutdown::Shutdown;

/// Default for [`PythonConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`PythonConfig::queue_timeout`].
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Connection limits, as for the file server.
    pub limits: Limits,
    /// Start new workers when a `.py` file under the app's directory changes.
    pub reload: bool,
    /// Serve HTTPS.
    pub tls: Option<Tls>,
    /// Faults put into every connection on purpose.
    pub faults: Faults,
    /// Passwords, CORS and the host names allowed, as for the file server.
    pub access: crate::server::gate::Access,
}

/// Started workers, ready to serve (and the watch on the app's files, with `--reload`).
pub struct Workers {
    pool: Arc<Pool>,
    ready: Vec<Worker>,
    reloader: Option<Reloader>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("pids", &self.pool.pids())
            .field("reload", &self.reloader.is_some())
            .finish()
    }
}

impl Workers {
    /// Starts the workers on `listener` and waits until every one has imported the app.
    /// Call on the thread that will run the server: a worker dies with the thread that
    /// started it. The workers resolve their configuration again from this process's
    /// command line and environment (the `wsgi` command's), so that every option applies
    /// to them as it does here.
    ///
    /// # Errors
    /// [`Error::App`] naming the app and what went wrong, in one line.
    pub fn start(config: &PythonConfig, listener: &std::net::TcpListener) -> Result<Self> {
        let app_error = |reason: String| Error::App {
            app: config.launch.app.clone(),
            reason,
        };
        let reloader = if config.reload {
            Some(Reloader::watch(reload::watched_dirs(&config.launch)).map_err(app_error)?)
        } else {
            None
        };
        let shared = Shared::new(listener.as_fd())
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
    pool.close(config.limits.drain).await;
    drop(listener);
    Ok(())
}
