//! CGI (RFC 3875): run an executable per request, so users can host a script in any
//! language. Never through a shell; confined to its directory; killed on timeout or when
//! the client goes away.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tracing::warn;

use crate::confine::{Symlinks, confine};

use super::spool::{Body as Input, Spool};
use super::{App, BodyIter, ClientGone, Environ, StartResponse, once, text_plain};

/// How long a CGI script may run by default before it is killed (`wsgi --cgi-timeout`).
pub const DEFAULT_CGI_TIMEOUT: Duration = Duration::from_secs(30);
/// A header block larger than this is not a header block.
const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub enum Scripts {
    /// One script answers every request.
    One(PathBuf),
    /// `/name/rest` runs `DIR/name` with `/rest` as PATH_INFO.
    Dir(PathBuf),
}

/// A CGI gateway as an [`App`].
#[derive(Debug, Clone)]
pub struct Cgi {
    /// The script or directory of scripts, canonical.
    scripts: Scripts,
    /// A script still running after this long is killed (504 if it had not answered).
    timeout: Duration,
}

fn fixed(start: &mut StartResponse, status: &str, text: &str) -> std::io::Result<BodyIter> {
    start.start(status, text_plain());
    Ok(once(format!("{text}\n")))
}

impl Cgi {
    /// A gateway to `scripts`; a script still running after `timeout` is killed. The path
    /// is resolved once here, so each request only resolves its script.
    ///
    /// # Errors
    /// The script or directory does not exist.
    pub fn new(scripts: Scripts, timeout: Duration) -> std::io::Result<Self> {
        let scripts = match scripts {
            Scripts::One(path) => Scripts::One(path.canonicalize()?),
            Scripts::Dir(path) => Scripts::Dir(path.canonicalize()?),
        };
        Ok(Self { scripts, timeout })
    }

    /// Finds the script for a request: its path, SCRIPT_NAME and PATH_INFO.
    fn locate(
        &self,
        path_info: &str,
    ) -> Result<(PathBuf, String, String), (&'static str, &'static str)> {
        match &self.scripts {
            Scripts::One(script) => Ok((script.clone(), String::new(), path_info.to_string())),
            Scripts::Dir(dir) => {
                // CGI's edge: the script is the first segment of PATH_INFO, the rest is
                // its own PATH_INFO. A missing script passes here and gets its 404 from
                // the caller.
                let rest = path_info.trim_start_matches('/');
                let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let script = match confine(dir, name.as_bytes(), Symlinks::StayInside) {
                    Ok(script) if script != *dir => script,
                    _ => return Err(("404 Not Found", "no such script")),
                };
                let info = if tail.is_empty() {
                    String::new()
                } else {
                    format!("/{tail}")
                };
                Ok((script, format!("/{name}"), info))
            }
        }
    }
}

#[cfg(unix)]
pub(crate) fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Windows has no executable bit: what runs is what Explorer would run, by extension:
/// programs (`.exe`, `.com`), batch files (`.bat`, `.cmd`) and Python scripts (`.py`,
/// through the Python launcher or `python` on PATH).
#[cfg(windows)]
pub(crate) fn executable(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    path.is_file() && matches!(ext.as_deref(), Some("exe" | "com" | "bat" | "cmd" | "py"))
}

/// The command that runs `script`: the script itself, or on Windows a `.py` through
/// Python (`py`, the launcher python.org installs, else `python`).
fn script_command(script: &Path) -> Command {
    #[cfg(windows)]
    if script
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("py"))
    {
        let on_path = |name: &str| {
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .any(|dir| dir.join(format!("{name}.exe")).is_file())
        };
        let python = if on_path("py") { "py" } else { "python" };
        let mut cmd = Command::new(python);
        cmd.arg(script);
        return cmd;
    }
    Command::new(script)
}

impl App for Cgi {
    fn call(
        &self,
        environ: &Environ,
        input: &mut dyn Read,
        start: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        let path_info = environ.get("PATH_INFO").cloned().unwrap_or_default();
        let (script, script_name, path_info) = match self.locate(&path_info) {
            Ok(found) => found,
            Err((status, text)) => return fixed(start, status, text),
        };
        if !script.exists() {
            return fixed(start, "404 Not Found", "no such script");
        }
        if !executable(&script) {
            warn!(target: "labserv::cgi", "{} is not executable", script.display());
            return fixed(start, "403 Forbidden", "script is not executable");
        }
        // The body whole, de-chunked: the script gets its real length and no
        // Transfer-Encoding (CGI has none). Past a size it waits in a temporary file.
        let mut spool = Spool::default();
        spool.fill(input)?;
        let body_len = spool.len();
        let body = spool.finish()?;

        let mut cmd = script_command(&script);
        cmd.env_clear();
        // The RFC 3875 variables and PATH; nothing else of the server's environment.
        for (k, v) in environ {
            let framing = k == "CONTENT_LENGTH" || k == "HTTP_TRANSFER_ENCODING";
            if !k.starts_with("wsgi.") && !framing {
                cmd.env(k, v);
            }
        }
        if body_len > 0 || environ.contains_key("CONTENT_LENGTH") {
            cmd.env("CONTENT_LENGTH", body_len.to_string());
        }
        cmd.env("SCRIPT_NAME", &script_name)
            .env("PATH_INFO", &path_info)
            .env("SCRIPT_FILENAME", &script);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        // Windows programs (Python among them) do not start without these.
        #[cfg(windows)]
        for name in ["SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "TEMP", "TMP"] {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        if let Some(dir) = script.parent() {
            cmd.current_dir(dir);
        }
        let (stdin, body) = match body {
            // A file is the script's stdin as it is.
            Input::File(file) => (Stdio::from(file), None),
            memory => (Stdio::piped(), Some(memory)),
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so a timeout or a departed client ends everything the
        // script started, not only the script (a shell's `sleep` would hold the pipe).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                warn!(target: "labserv::cgi", "cannot run {}: {e}", script.display());
                return fixed(start, "502 Bad Gateway", "script could not be started");
            }
        };
        let name = script.display().to_string();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        if let (Some(mut stdin), Some(mut body)) = (child.stdin.take(), body) {
            // A thread, so a script that writes before it reads cannot deadlock us.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut body, &mut stdin);
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let name = name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    warn!(target: "labserv::cgi", "{name}: {line}");
                }
            });
        }
        let running = Running::supervise(child, self.timeout, start.client_gone(), name.clone());
        let mut out = BufReader::new(stdout);
        match read_head(&mut out) {
            Ok((status, headers)) => {
                start.start(&status, headers);
                Ok(Box::new(Output { out, running }))
            }
            Err(_) if running.timed_out() => {
                warn!(target: "labserv::cgi", "{name}: no answer within {:?}, killed", self.timeout);
                fixed(
                    start,
                    "504 Gateway Timeout",
                    "script did not answer in time",
                )
            }
            Err(why) => {
                warn!(target: "labserv::cgi", "{name}: {why}");
                fixed(
                    start,
                    "502 Bad Gateway",
                    "script sent no valid header block",
                )
            }
        }
    }
}

/// Reads a CGI header block: `Name: value` lines up to an empty line. A line with a
/// control character inside it (a stray CR, say) is refused: passed on, it could split
/// or forge a header of the response.
pub(crate) fn read_head(out: &mut impl BufRead) -> Result<(String, Vec<(String, String)>), String> {
    let mut status = None;
    let mut headers = Vec::new();
    let mut location = false;
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = out
            .read_line(&mut line)
            .map_err(|e| format!("reading its output: {e}"))?;
        if n == 0 {
            return Err("output ended before the header block did".to_string());
        }
        read += n;
        if read > MAX_HEADER_BLOCK {
            return Err("header block over 64 KiB".to_string());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("control character in header line {line:?}"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            status = Some(value.to_string());
            continue;
        }
        location |= name.eq_ignore_ascii_case("location");
        headers.push((name.to_string(), value.to_string()));
    }
    if headers.is_empty() && status.is_none() {
        return Err("empty header block".to_string());
    }
    // A redirect (RFC 3875 6.2.3) may come without a Content-Type; the response the
    // client gets still has one.
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.extend(text_plain());
    }
    let status =
        status.unwrap_or_else(|| if location { "302 Found" } else { "200 OK" }.to_string());
    Ok((status, headers))
}

/// The script process: killed by its supervisor at the timeout, or when dropped (the client
/// went away, or the response ended).
struct Running {
    child: Arc<Mutex<Option<Child>>>,
    timed_out: Arc<AtomicBool>,
}

impl Running {
    fn supervise(child: Child, timeout: Duration, gone: Option<ClientGone>, name: String) -> Self {
        let child = Arc::new(Mutex::new(Some(child)));
        let timed_out = Arc::new(AtomicBool::new(false));
        let (c, t) = (child.clone(), timed_out.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                {
                    let mut guard = c.lock().unwrap_or_else(PoisonError::into_inner);
                    let Some(proc) = guard.as_mut() else { return };
                    if let Ok(Some(_)) = proc.try_wait() {
                        return;
                    }
                    // A silent script never writes, so only this notices that its client
                    // left (or that shutdown cut the connection at its drain deadline).
                    if gone.as_ref().is_some_and(ClientGone::check) {
                        warn!(target: "labserv::cgi", "{name}: the client has gone, killed");
                        kill_group(proc);
                        let _ = proc.wait();
                        *guard = None;
                        return;
                    }
                    if std::time::Instant::now() >= deadline {
                        t.store(true, Ordering::Release);
                        kill_group(proc);
                        let _ = proc.wait();
                        *guard = None;
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { child, timed_out }
    }

    fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut guard = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut proc) = guard.take() {
            if !matches!(proc.try_wait(), Ok(Some(_))) {
                kill_group(&mut proc);
            }
            let _ = proc.wait();
        }
    }
}

/// Kills the script and everything in its process group.
fn kill_group(proc: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(proc.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the script leads
        // (it was spawned with process_group(0)); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = proc.kill();
}

/// The script's output after the header block, streamed as it comes. Dropping it (the
/// response ended, or the client went away) kills the script if it still runs.
struct Output {
    out: BufReader<ChildStdout>,
    #[allow(dead_code)] // held for its Drop
    running: Running,
}

impl Iterator for Output {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = vec![0u8; 16 * 1024];
        match self.out.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}
