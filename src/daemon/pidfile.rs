//! The pid file, and liveness decided by its lock rather than by its existence.
//!
//! A running daemon holds an exclusive `flock` on its pid file for its whole life; the
//! kernel drops the lock the moment the process ends, however it ends. So a pid file
//! nobody holds is stale (a crash, a `kill -9`, a reboot), whatever pid it names and
//! whether or not some other process has that pid now.
//!
//! Next to the pid file, `<name>.addr` holds the address the daemon listens on, so
//! `status` can say it. The pid file itself holds only the pid, as `kill $(cat file)`,
//! `pkill -F` and systemd's `PIDFile=` expect.

use std::fs::{File, TryLockError};
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the pid file at a path says about its daemon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum State {
    /// The daemon holds the lock: it runs. `pid` is `None` for the instant between its
    /// lock and its write; `addr` is `None` until it has bound its socket.
    Running {
        /// The daemon's process id.
        pid: Option<u32>,
        /// Where it listens.
        addr: Option<SocketAddr>,
    },
    /// A pid file that nobody holds: the daemon died without cleaning up.
    Stale {
        /// The pid the file names (now gone, or some other process's).
        pid: Option<u32>,
    },
    /// No pid file.
    #[default]
    Stopped,
}

/// The `.addr` file that goes with a pid file.
pub fn addr_path(pid_file: &Path) -> PathBuf {
    let addr = pid_file.with_extension("addr");
    if addr == pid_file {
        // A pid file that is itself called `*.addr`: keep the two apart.
        pid_file.with_extension("addr.addr")
    } else {
        addr
    }
}

/// Reads what the pid file at `path` says, without changing anything.
///
/// # Errors
/// The file exists but cannot be opened or read (permissions).
pub fn probe(path: &Path) -> io::Result<State> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if missing(&e) => return Ok(State::Stopped),
        Err(e) => return Err(e),
    };
    let pid = read_pid(&mut file);
    match file.try_lock_shared() {
        // Someone holds it exclusively: the daemon runs.
        Err(TryLockError::WouldBlock) => Ok(State::Running {
            pid,
            addr: read_addr(&addr_path(path)),
        }),
        Err(TryLockError::Error(e)) => Err(e),
        // Got it (only for this instant; dropping the file releases it).
        Ok(()) => Ok(State::Stale { pid }),
    }
}

/// No such file, or no such directory: either way, no pid file.
fn missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.lines().next()?.trim().parse().ok().filter(|&p| p > 0)
}

fn read_addr(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Removes a stale pid file (and its `.addr` file). Returns the pid it named, or `None`
/// when there was nothing stale to remove (no file, or the daemon is running).
///
/// # Errors
/// The file cannot be opened, locked or removed.
pub fn remove_stale(path: &Path) -> io::Result<Option<Option<u32>>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(e),
        Ok(()) => {}
    }
    // Holding the lock, and the path still names this very file: nobody can be starting
    // on it, so removing it cannot pull the floor from under a new daemon.
    if !same_file(&file, path) {
        return Ok(None);
    }
    let pid = read_pid(&mut file);
    remove_if_present(&addr_path(path))?;
    remove_if_present(path)?;
    Ok(Some(pid))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether the open `file` is the one `path` names now (it may have been removed and
/// re-created between our open and our lock).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Why a daemon could not take its pid file.
#[derive(Debug)]
pub enum AcquireError {
    /// Another daemon holds it; the pid it wrote, if any.
    Running(Option<u32>),
    /// The file or its directory cannot be created, opened or locked.
    Io(io::Error),
}

/// A pid file held by the running daemon. Dropping it removes the file (and the `.addr`
/// file), then releases the lock.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// How long [`acquire`] keeps trying while only a [`probe`] (a shared lock held for an
/// instant, say by a terminal UI refreshing every second) is in the way.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);

/// Creates and locks the pid file at `path` (and its directory), for a daemon about to
/// start. A stale file is taken over.
///
/// # Errors
/// [`AcquireError::Running`] when a daemon holds the file; [`AcquireError::Io`] when it
/// cannot be created or locked.
pub fn acquire(path: &Path) -> Result<PidFile, AcquireError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private::create_dir_all(dir).map_err(AcquireError::Io)?;
    }
    let deadline = Instant::now() + PROBE_PATIENCE;
    loop {
        let mut file = crate::private::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(AcquireError::Io)?;
        match file.try_lock() {
            Ok(()) => {
                if same_file(&file, path) {
                    file.set_len(0).map_err(AcquireError::Io)?;
                    return Ok(PidFile {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                // Removed as stale between our open and our lock: start over on the
                // file the path names now.
            }
            Err(TryLockError::Error(e)) => return Err(AcquireError::Io(e)),
            Err(TryLockError::WouldBlock) => {
                // A daemon holds it exclusively, so a shared lock fails too; a probe
                // holds it shared, so a shared lock succeeds and we wait it out.
                let probing = file.try_lock_shared().is_ok();
                if !probing || Instant::now() >= deadline {
                    return Err(AcquireError::Running(read_pid(&mut file)));
                }
                drop(file);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl PidFile {
    /// Writes the daemon's pid.
    ///
    /// # Errors
    /// The write fails (a full or read-only filesystem).
    pub fn write_pid(&mut self, pid: u32) -> io::Result<()> {
        self.file.write_all(format!("{pid}\n").as_bytes())?;
        self.file.flush()
    }

    /// Records the address the daemon listens on, for `status`. Written whole to a
    /// temporary name, then renamed, so a reader never sees half of it.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_addr(&self, addr: SocketAddr) -> io::Result<()> {
        let target = addr_path(&self.path);
        let temp = target.with_extension("addr.tmp");
        std::fs::write(&temp, format!("{addr}\n"))?;
        std::fs::rename(&temp, &target)
    }

    /// The pid file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so no newcomer can lock the old file and then
        // see it vanish; the lock goes with the file handle right after.
        let _ = remove_if_present(&addr_path(&self.path));
        let _ = remove_if_present(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_pid_file_reads_as_running_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("x.pid");
        assert_eq!(probe(&path).unwrap(), State::Stopped);

        let mut held = acquire(&path).unwrap();
        held.write_pid(4242).unwrap();
        held.write_addr("127.0.0.1:8080".parse().unwrap()).unwrap();
        assert_eq!(
            probe(&path).unwrap(),
            State::Running {
                pid: Some(4242),
                addr: Some("127.0.0.1:8080".parse().unwrap())
            }
        );
        assert!(matches!(
            acquire(&path),
            Err(AcquireError::Running(Some(4242)))
        ));
        assert_eq!(
            remove_stale(&path).unwrap(),
            None,
            "a held file is not stale"
        );

        drop(held);
        assert!(!path.exists());
        assert!(!addr_path(&path).exists());
        assert_eq!(probe(&path).unwrap(), State::Stopped);
    }

    #[test]
    fn an_unheld_pid_file_is_stale_whatever_pid_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        // Our own pid: alive, but not holding the lock, so not the daemon.
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(
            probe(&path).unwrap(),
            State::Stale {
                pid: Some(std::process::id())
            }
        );
        assert_eq!(remove_stale(&path).unwrap(), Some(Some(std::process::id())));
        assert!(!path.exists());

        // A daemon takes a stale file over.
        std::fs::write(&path, "garbage").unwrap();
        let mut held = acquire(&path).unwrap();
        held.write_pid(7).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "7\n");
    }

    #[test]
    fn addr_file_never_collides_with_the_pid_file() {
        assert_eq!(
            addr_path(Path::new("/run/httpd.pid")),
            Path::new("/run/httpd.addr")
        );
        assert_eq!(
            addr_path(Path::new("/run/httpd")),
            Path::new("/run/httpd.addr")
        );
        assert_ne!(
            addr_path(Path::new("/run/x.addr")),
            Path::new("/run/x.addr")
        );
    }
}
