//! One Python worker process: starting it, and the frames it and the front exchange (the
//! format is described at the top of `worker.py`).

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::UnixStream;
use tracing::{info, warn};

/// The Python side, run with `python -c`.
const WORKER_PY: &str = include_str!("worker.py");

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

/// A frame's kind byte and payload.
pub(crate) type Frame = (u8, Bytes);

/// A running worker and its end of the socket.
pub(crate) struct Worker {
    child: Child,
    io: Io,
    /// Which start of the app this worker belongs to (`--reload` starts a new one).
    pub(crate) generation: u64,
}

enum Io {
    /// Before the worker's first request (started outside the runtime).
    Std(StdStream),
    Async(BufStream<UnixStream>),
    Taken,
}

impl Worker {
    /// Starts a worker process; it has not said yet whether its app imported.
    ///
    /// Call on a thread that lives as long as the server: the worker is killed when the
    /// thread that started it ends (so that it never outlives a front killed with -9).
    pub(crate) fn spawn(launch: &Launch, index: usize) -> io::Result<Self> {
        let (front, back) = StdStream::pair()?;
        let mut cmd = Command::new(&launch.python);
        cmd.arg("-c")
            .arg(WORKER_PY)
            .arg(&launch.app)
            .current_dir(&launch.dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::from(OwnedFd::from(back)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !launch.write_bytecode {
            cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Its own process group: a Ctrl-C at the terminal is the front's to
                // handle, and a worker's subprocesses go with it when it is killed.
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        if let Some(out) = child.stdout.take() {
            forward_lines(out, pid, index, false);
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, pid, index, true);
        }
        Ok(Self {
            child,
            io: Io::Std(front),
            generation: 0,
        })
    }

    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (blocking) for the worker to say its app imported.
    ///
    /// # Errors
    /// What the worker said went wrong (the exception, in one line), or that it died.
    pub(crate) fn ready_blocking(&mut self, within: Duration) -> Result<(), String> {
        let Io::Std(sock) = &mut self.io else {
            return Err("the worker is already running".into());
        };
        sock.set_read_timeout(Some(within))
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 5];
        let frame = sock.read_exact(&mut head).and_then(|()| {
            let mut payload = vec![0; frame_len(&head)];
            sock.read_exact(&mut payload)?;
            Ok((head[0], Bytes::from(payload)))
        });
        let _ = sock.set_read_timeout(None);
        self.answer_to_start(frame)
    }

    /// Waits for the worker to say its app imported.
    ///
    /// # Errors
    /// As [`Worker::ready_blocking`].
    pub(crate) async fn ready(&mut self, within: Duration) -> Result<(), String> {
        let frame = match tokio::time::timeout(within, self.read()).await {
            Ok(frame) => frame,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        };
        self.answer_to_start(frame)
    }

    fn answer_to_start(&mut self, frame: io::Result<Frame>) -> Result<(), String> {
        match frame {
            Ok((b'O', _)) => Ok(()),
            Ok((b'X', why)) => Err(String::from_utf8_lossy(&why).into_owned()),
            Ok((kind, _)) => Err(format!("the worker said {:?} first", char::from(kind))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(format!(
                "the worker exited at start ({})",
                self.exit_status()
            )),
            Err(e) => Err(format!("no word from the worker: {e}")),
        }
    }

    fn stream(&mut self) -> io::Result<&mut BufStream<UnixStream>> {
        if let Io::Std(_) = self.io
            && let Io::Std(sock) = std::mem::replace(&mut self.io, Io::Taken)
        {
            sock.set_nonblocking(true)?;
            self.io = Io::Async(BufStream::with_capacity(
                64 * 1024,
                64 * 1024,
                UnixStream::from_std(sock)?,
            ));
        }
        match &mut self.io {
            Io::Async(stream) => Ok(stream),
            _ => Err(io::Error::other("the worker's socket is gone")),
        }
    }

    /// Reads one frame.
    pub(crate) async fn read(&mut self) -> io::Result<Frame> {
        let stream = self.stream()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await?;
        let len = frame_len(&head);
        let mut payload = BytesMut::zeroed(len);
        stream.read_exact(&mut payload).await?;
        Ok((head[0], payload.freeze()))
    }

    /// Sends one frame.
    pub(crate) async fn send(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let mut framed = Vec::with_capacity(payload.len() + 5);
        put_frame(&mut framed, kind, payload);
        send_raw(self, &framed).await
    }

    /// Kills the worker and its process group at once.
    pub(crate) fn kill(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals the worker's own process group (it made itself leader).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
    }

    /// How the worker ended, for the log: "exit code 1", "signal 11", or "still running".
    pub(crate) fn exit_status(&mut self) -> String {
        use std::os::unix::process::ExitStatusExt;
        // A worker whose socket closed is gone or going: give it a moment to be reaped.
        for _ in 0..50 {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return match (status.code(), status.signal()) {
                        (Some(code), _) => format!("exit code {code}"),
                        (_, Some(signal)) => format!("signal {signal}"),
                        _ => status.to_string(),
                    };
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return e.to_string(),
            }
        }
        "still running".to_string()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

fn frame_len(head: &[u8; 5]) -> usize {
    u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize
}

/// Sends what a worker prints to the log, line by line: standard error (tracebacks,
/// `wsgi.errors`) as warnings, standard output (an app's `print`) as information.
fn forward_lines(pipe: impl Read + Send + 'static, pid: u32, index: usize, errors: bool) {
    let spawned = std::thread::Builder::new()
        .name(format!("labserv-py{index}"))
        .spawn(move || {
            let mut lines = io::BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match io::BufRead::read_until(&mut lines, b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end();
                        if errors {
                            warn!(target: "labserv::wsgi", "worker {pid}: {text}");
                        } else {
                            info!(target: "labserv::wsgi", "worker {pid}: {text}");
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!(target: "labserv::wsgi", "worker {pid}: its output is lost: {e}");
    }
}

/// Writes a frame into `out` (for building a request in one piece).
pub(crate) fn put_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(payload);
}

/// Sends bytes already framed with [`put_frame`].
pub(crate) async fn send_raw(worker: &mut Worker, bytes: &[u8]) -> io::Result<()> {
    let stream = worker.stream()?;
    stream.write_all(bytes).await?;
    stream.flush().await
}
