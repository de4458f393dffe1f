//! Acting on a daemon from the terminal UI: running its binary for start, stop and
//! status, and reading its liveness from the pid file lock.
//!
//! The UI never forks itself (it runs threads): each action runs the daemon binary that
//! sits next to `daemontui`, exactly as a user would from a shell, on one worker thread
//! that takes actions in order. Results come back through [`Runner::poll`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::cli::Action;
use crate::cli::values::given;
use crate::daemon::pidfile::{self, State};
use crate::daemon::{DaemonOptions, Kind};

/// The daemon the UI drives, with the settings chosen on the first screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which daemon.
    pub kind: Kind,
    /// The options its binary is run with, typed: the form's port, address, directory
    /// and debug choice, as they go through the daemon's own config step.
    pub options: DaemonOptions,
    /// The device chosen on the form (shown in the summary; the daemons do not use it).
    pub device: Option<String>,
    /// Its pid file (from PID, LPNAME and the user's directories).
    pub pid_file: PathBuf,
    /// Its log file.
    pub log_file: PathBuf,
}

/// A target's settings as text, for the screen and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The port (empty when unset).
    pub port: String,
    /// The listen address (empty when unset).
    pub listen: String,
    /// The directory served.
    pub directory: String,
    /// Debug logging.
    pub debug: bool,
    /// Uploads accepted.
    pub upload: bool,
}

impl Target {
    /// Its settings as text.
    pub fn shown(&self) -> Shown {
        let (listen, directory, log, upload) = match &self.options {
            DaemonOptions::Http(o) => (&o.listen, &o.directory, &o.log, o.upload),
            DaemonOptions::Tftp(o) => (&o.listen, &o.directory, &o.log, o.upload),
        };
        Shown {
            port: given(listen.port).map_or_else(String::new, |p| p.to_string()),
            listen: given(listen.host).map_or_else(String::new, |h| h.to_string()),
            directory: directory
                .as_ref()
                .map_or_else(String::new, |d| d.display().to_string()),
            debug: log.verbose,
            upload,
        }
    }
}

/// The result of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What was asked.
    pub action: Action,
    /// The binary's exit code (`None` when it could not run or was killed).
    pub code: Option<i32>,
    /// What to show the user: the binary's last line of output, or its error.
    pub message: String,
}

impl Outcome {
    /// Whether the action did what was asked (`status` counts as done whatever it found).
    pub fn ok(&self) -> bool {
        match self.action {
            Action::Status => self.code.is_some_and(|c| c == 0 || c == 1 || c == 3),
            _ => self.code == Some(0),
        }
    }
}

/// Runs daemon actions and reads daemon state. A trait so that the UI's state tests can
/// drive it without starting processes.
pub trait Runner {
    /// Queues `action` on `target`; its [`Outcome`] comes back from [`Runner::poll`].
    fn request(&mut self, target: &Target, action: Action);
    /// The next finished action, if any.
    fn poll(&mut self) -> Option<Outcome>;
    /// The daemon's state, read from its pid file's lock.
    fn probe(&mut self, target: &Target) -> State;
}

/// The real runner: the daemon binaries, run on a worker thread one action at a time.
pub struct Binaries {
    requests: mpsc::Sender<(PathBuf, Target, Action)>,
    outcomes: mpsc::Receiver<Outcome>,
    dir: PathBuf,
}

impl Binaries {
    /// Runs the binaries found in `dir` (normally the directory `daemontui` is in).
    pub fn new(dir: PathBuf) -> Self {
        let (requests, jobs) = mpsc::channel::<(PathBuf, Target, Action)>();
        let (done, outcomes) = mpsc::channel();
        std::thread::Builder::new()
            .name("daemontui-actions".into())
            .spawn(move || {
                for (bin, target, action) in jobs {
                    if done.send(run(&bin, &target, action)).is_err() {
                        break;
                    }
                }
            })
            .expect("the UI cannot work without its action thread");
        Self {
            requests,
            outcomes,
            dir,
        }
    }

    /// The directory of the running executable, where `cargo install` puts the daemons too.
    pub fn beside_current_exe() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    }
}

impl Runner for Binaries {
    fn request(&mut self, target: &Target, action: Action) {
        let bin = self.dir.join(target.kind.program());
        let _ = self.requests.send((bin, target.clone(), action));
    }

    fn poll(&mut self) -> Option<Outcome> {
        self.outcomes.try_recv().ok()
    }

    fn probe(&mut self, target: &Target) -> State {
        // Unreadable counts as stopped; the next action says why.
        pidfile::probe(&target.pid_file).unwrap_or(State::Stopped)
    }
}

/// The word an action is given as on the command line, as clap parses it.
pub fn action_word(action: Action) -> String {
    clap::ValueEnum::to_possible_value(&action)
        .map_or_else(String::new, |v| v.get_name().to_string())
}

fn run(bin: &Path, target: &Target, action: Action) -> Outcome {
    let output = Command::new(bin)
        .arg(action_word(action))
        .args(target.options.to_args())
        // The form's Debug box decides, through -v, whatever DEBUG says here.
        .env_remove("DEBUG")
        .stdin(Stdio::null())
        .output();
    match output {
        Err(e) => Outcome {
            action,
            code: None,
            message: format!("failed: cannot run {}: {e}", bin.display()),
        },
        Ok(out) => {
            let code = out.status.code();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = |text: &str| {
                text.lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_string)
            };
            let program = format!("{}: ", target.kind.program());
            let message = match (last(&stderr), last(&stdout)) {
                (Some(err), _) if code != Some(0) => {
                    format!("failed: {}", err.trim_start_matches(program.as_str()))
                }
                (_, Some(line)) => line,
                (Some(err), None) => err,
                (None, None) => format!("{} exited with {:?}", action_word(action), code),
            };
            Outcome {
                action,
                code,
                message,
            }
        }
    }
}
