//! `wsgi --reload`: when a `.py` file under the app's directory changes, a new generation
//! of workers imports the app, then takes over from the old one (see [`Pool::reload`]).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Launch;
use super::pool::Pool;
use crate::shutdown::Shutdown;

/// Changes that come closer together than this are one change (an editor saving writes,
/// renames and touches in a burst).
const QUIET: Duration = Duration::from_millis(200);

/// A watch on the app's sources, started before the server announces itself so that a
/// directory that cannot be watched is an error at start.
pub(crate) struct Reloader {
    /// Kept for as long as the server runs: dropping it ends the watch.
    watcher: RecommendedWatcher,
    changes: mpsc::UnboundedReceiver<PathBuf>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// The directories to watch: where the workers run and, for a `file.py` app elsewhere,
/// the file's own directory.
pub(crate) fn watched_dirs(launch: &Launch) -> Vec<PathBuf> {
    let mut dirs = vec![launch.dir.clone()];
    let target = launch.app.split_once(':').map_or(&*launch.app, |(t, _)| t);
    if target.ends_with(".py")
        && let Some(parent) = launch.dir.join(target).parent()
        && let Ok(parent) = parent.canonicalize()
        && !parent.starts_with(&launch.dir)
    {
        dirs.push(parent);
    }
    dirs
}

/// Whether a change to `path` (under `dir`) is a change to the app's code: a `.py` file,
/// not in a hidden directory or a bytecode cache (Python writes those itself).
fn is_source(dir: &Path, path: &Path) -> bool {
    let inside = path.strip_prefix(dir).unwrap_or(path);
    path.extension().is_some_and(|e| e == "py")
        && inside.components().all(|c| match c {
            Component::Normal(name) => {
                let name = name.as_encoded_bytes();
                name != b"__pycache__" && !name.starts_with(b".")
            }
            _ => true,
        })
}

impl Reloader {
    /// Watches `dirs` and everything under them.
    ///
    /// # Errors
    /// A directory that cannot be watched, in words that say what to do.
    pub(crate) fn watch(dirs: Vec<PathBuf>) -> Result<Self, String> {
        let (tx, changes) = mpsc::unbounded_channel();
        let roots = dirs.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                for path in event.paths {
                    if roots.iter().any(|dir| is_source(dir, &path)) {
                        let _ = tx.send(path);
                    }
                }
            })
            .map_err(|e| format!("--reload cannot watch files: {e}"))?;
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::Recursive)
                .map_err(|e| match e.kind {
                    notify::ErrorKind::MaxFilesWatch => format!(
                        "--reload cannot watch {}: too many directories for the system's \
                         limit (raise fs.inotify.max_user_watches, or --chdir to a smaller tree)",
                        dir.display()
                    ),
                    _ => format!("--reload cannot watch {}: {e}", dir.display()),
                })?;
        }
        Ok(Self { watcher, changes })
    }

    /// Reloads `pool` after each burst of changes until `shutdown`. Runs on the server's
    /// thread (the workers are started from it).
    pub(crate) fn run(self, pool: Arc<Pool>, shutdown: Shutdown) {
        let Self {
            watcher,
            mut changes,
        } = self;
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                let first = tokio::select! {
                    () = shutdown.triggered() => return,
                    path = changes.recv() => match path {
                        Some(path) => path,
                        None => return,
                    },
                };
                // Wait for the burst to end; the reload reads the files as they are then.
                while let Ok(Some(_)) = tokio::time::timeout(QUIET, changes.recv()).await {}
                info!(
                    target: "labserv::wsgi",
                    "{} changed; starting workers with the new code", first.display()
                );
                match pool.reload().await {
                    Ok(count) => info!(
                        target: "labserv::wsgi",
                        "reloaded: {count} worker{} with the new code",
                        if count == 1 { "" } else { "s" }
                    ),
                    Err(why) => warn!(
                        target: "labserv::wsgi",
                        "reload failed, the previous code still serves: {why}"
                    ),
                }
            }
        });
    }
}
