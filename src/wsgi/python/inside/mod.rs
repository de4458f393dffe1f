//! The Rust side of a Python worker: what the extension module (`crates/pyext`) calls
//! once the app has imported. A worker takes the descriptors its supervisor handed down
//! and the configuration the supervisor resolved (read from one of them as data, never
//! parsed again from a command line), then serves HTTP on the shared socket and queues
//! each request for the app's thread, which the extension module runs.

mod arriving;
mod host;
mod jobs;
mod respond;

use std::io::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

pub use jobs::{Answer, AppLink, Head, Job, Piece, Progress, Turn};

use super::PythonConfig;
use super::ctl::{self, BUSY, Board, IDLE, Slot};
use crate::logging::{LogConfig, LogGuard};
use crate::server::faults::Faults;
use crate::server::gate::Access;
use crate::server::tls::{Keys, Tls};
use crate::server::{HttpOptions, Limits};
use crate::shutdown::Shutdown;

/// What a worker serves with: the supervisor's configuration, resolved there, as data.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct WorkerConfig {
    workers: usize,
    timeout: Duration,
    queue_timeout: Duration,
    root_path: String,
    max_body: u64,
    validate: bool,
    limits: Limits,
    faults: Faults,
    access: Access,
    tls: Option<Keys>,
    /// How much to log; where is the descriptor the worker is handed.
    log: LogConfig,
}

impl WorkerConfig {
    /// The part of `config` a worker serves with.
    pub(crate) fn new(config: &PythonConfig, tls: Option<&Tls>, log: &LogConfig) -> Self {
        Self {
            workers: config.workers,
            timeout: config.timeout,
            queue_timeout: config.queue_timeout,
            root_path: config.root_path.clone(),
            max_body: config.max_body,
            validate: config.validate,
            limits: config.http.limits,
            faults: config.http.faults.clone(),
            access: config.http.access.clone(),
            tls: tls.map(|tls| tls.keys().clone()),
            log: LogConfig {
                file: None,
                ..log.clone()
            },
        }
    }

    /// Writes it to a memory file every worker inherits and reads (it holds the TLS
    /// key: a file no other process can open, not an environment variable that the
    /// app's own subprocesses would inherit).
    ///
    /// # Errors
    /// The file cannot be made or written.
    pub(crate) fn to_file(&self) -> io::Result<OwnedFd> {
        let text = serde_json::to_vec(self).map_err(io::Error::other)?;
        ctl::sealed_file("labserv-config", &text)
    }

    /// Reads what [`WorkerConfig::to_file`] wrote. Every worker's descriptor shares one
    /// file offset (they are copies of the supervisor's), and workers start at the same
    /// moment: so each reads at fixed positions (`pread`), never moving the offset.
    fn read(fd: OwnedFd) -> Result<Self, String> {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::File::from(fd);
        let read = || -> io::Result<Vec<u8>> {
            let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
            let mut text = vec![0; len];
            file.read_exact_at(&mut text, 0)?;
            Ok(text)
        };
        let text = read().map_err(|e| format!("cannot read the configuration: {e}"))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("a configuration of another labserv: {e}"))
    }
}

/// The descriptors a worker inherits from its supervisor.
#[derive(Debug)]
pub struct Inherited {
    /// The listening socket every worker accepts on.
    pub listener: OwnedFd,
    /// This worker's control socket to the supervisor.
    pub ctl: OwnedFd,
    /// This worker's slot (see `ctl::Slot`).
    pub slot: OwnedFd,
    /// Where log lines go: the supervisor's stderr, or its LOG file.
    pub log: OwnedFd,
    /// The board every worker shares (see `ctl::Board`).
    pub board: OwnedFd,
    /// The configuration, resolved by the supervisor, as data.
    pub config: OwnedFd,
}

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

/// What the app's thread marks as it works: which request is in the app (for the
/// supervisor to answer 502 if the worker dies in it), and whether the app is free for
/// new connections (for the other workers to see).
#[derive(Clone)]
pub struct Marks {
    slot: Arc<Slot>,
    seat: Seat,
}

impl Marks {
    /// The app has a request: new connections are left to idle workers.
    pub fn busy(&self) {
        self.seat.set(BUSY);
    }

    /// The request of [`Job::tag`] is in the app.
    pub fn in_app(&self, tag: u64) {
        self.slot.set(tag);
    }

    /// No request is in the app any more, or the one in it has its head on the way: a
    /// worker that dies from here cuts the response instead of answering 502.
    pub fn head_out(&self) {
        self.slot.set(0);
    }

    /// The app is free for new connections.
    pub fn idle(&self) {
        self.seat.set(IDLE);
    }
}

/// A worker ready to serve, once its app's thread runs.
pub struct Worker {
    config: WorkerConfig,
    log: LogGuard,
    tls: Option<Tls>,
    listener: std::net::TcpListener,
    ctl: OwnedFd,
    slot: Arc<Slot>,
    seat: Seat,
}

impl Worker {
    /// Takes up what the supervisor handed down: its configuration, logging, the slot
    /// and the board. What fails is told to the supervisor too, in one line.
    ///
    /// # Errors
    /// That line.
    pub fn prepare(inherited: Inherited, seat: usize) -> Result<Self, String> {
        let Inherited {
            listener,
            ctl,
            slot,
            log,
            board,
            config,
        } = inherited;
        let prepared = (|| -> Result<_, String> {
            let config = WorkerConfig::read(config)?;
            let log = crate::logging::init_to(&config.log, std::fs::File::from(log))
                .map_err(|e| e.to_string())?;
            crate::memory::tune_malloc();
            let tls = config.tls.clone().map(Tls::from_keys).transpose()?;
            let slot = Arc::new(Slot::map(slot).map_err(|e| e.to_string())?);
            let listener = std::net::TcpListener::from(listener);
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let board = Arc::new(Board::map(board).map_err(|e| e.to_string())?);
            Ok((config, log, tls, listener, slot, Seat { board, seat }))
        })();
        match prepared {
            Ok((config, log, tls, listener, slot, seat)) => Ok(Self {
                config,
                log,
                tls,
                listener,
                ctl,
                slot,
                seat,
            }),
            Err(why) => {
                let _ = ctl::send(ctl.as_fd(), ctl::FAILED, why.as_bytes(), None);
                Err(why)
            }
        }
    }

    /// What the app's thread marks.
    pub fn marks(&self) -> Marks {
        Marks {
            slot: self.slot.clone(),
            seat: self.seat.clone(),
        }
    }

    /// Tells the supervisor that the worker cannot serve, in one line.
    pub fn failed(&self, why: &str) {
        let _ = ctl::send(self.ctl.as_fd(), ctl::FAILED, why.as_bytes(), None);
    }

    /// Serves until SIGTERM (or until a request outlasts `--timeout`), queueing each
    /// request for the app through `app`; then writes out the log. Blocks.
    ///
    /// Returns the worker's exit code: 0, or what tells the supervisor the app timed out.
    pub fn serve(self, app: AppLink) -> i32 {
        let Self {
            config,
            log,
            tls,
            listener,
            ctl,
            slot,
            seat,
        } = self;
        let code = (|| {
            let Ok(local) = listener.local_addr() else {
                return 1;
            };
            let Ok(runtime) = crate::runtime::current_thread_runtime() else {
                return 1;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return 1;
                };
                let shutdown = Shutdown::new();
                // Others to leave connections to while busy: a board to look at.
                let others = (config.workers > 1).then_some(seat);
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
                // Serving from here on: the supervisor announces the server once every
                // worker has said so.
                host.ready();
                let options = HttpOptions {
                    limits: config.limits,
                    // Loaded already, from the supervisor's keys.
                    tls: None,
                    faults: config.faults,
                    access: config.access,
                };
                crate::server::conn::run(listener, host.clone(), options, tls, shutdown).await;
                host.exit_code()
            })
        })();
        log.flush();
        drop(log);
        let _ = io::stderr().flush();
        code
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerConfig;
    use crate::logging::LogConfig;
    use crate::wsgi::python::{Launch, PythonConfig};

    #[test]
    fn workers_reading_the_configuration_at_once_each_read_all_of_it() {
        let config = PythonConfig {
            launch: Launch {
                python: "python3".into(),
                app: "app:app".into(),
                dir: std::env::temp_dir(),
                write_bytecode: false,
            },
            workers: 4,
            timeout: std::time::Duration::from_secs(30),
            queue_timeout: std::time::Duration::from_secs(30),
            root_path: "/api".into(),
            max_body: 1 << 20,
            validate: true,
            http: crate::server::HttpOptions::default(),
            reload: false,
        };
        let file = WorkerConfig::new(&config, None, &LogConfig::default())
            .to_file()
            .unwrap();
        // Copies of one descriptor share its offset, as the workers' copies do.
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let fd = file.try_clone().unwrap();
                std::thread::spawn(move || {
                    (0..300).all(|_| {
                        let copy = fd.try_clone().unwrap();
                        WorkerConfig::read(copy).is_ok_and(|c| c.root_path == "/api")
                    })
                })
            })
            .collect();
        for reader in readers {
            assert!(
                reader.join().unwrap(),
                "a reader got less than the whole file"
            );
        }
    }
}
