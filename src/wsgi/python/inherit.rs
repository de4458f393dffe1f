//! What a worker inherits besides its own descriptors: the extension module it loads
//! (a sealed memory file on Linux, a private file where workers are portable) and, where
//! workers are portable, the pipe by which it notices that the supervisor is gone.

use std::io::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

/// The pipe by which a portable worker notices that the supervisor is gone (where
/// `PR_SET_PDEATHSIG` does not exist): the supervisor holds its write end open, never
/// writing, until the process ends however it ends, and then each worker's read of it
/// returns end of file (see `worker.py`). Made once; the read end is what workers get.
pub(super) fn life_pipe() -> io::Result<BorrowedFd<'static>> {
    static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
    if let Some((read, _)) = PIPE.get() {
        return Ok(read.as_fd());
    }
    #[cfg(not(target_vendor = "apple"))]
    let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    #[cfg(target_vendor = "apple")]
    let pipe = {
        // No pipe2 here: closed on exec right after.
        let pipe = rustix::pipe::pipe()?;
        for fd in [&pipe.0, &pipe.1] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
        }
        pipe
    };
    Ok(PIPE.get_or_init(|| pipe).0.as_fd())
}

/// Where a worker loads the extension module from: a sealed memory file it inherits
/// (Linux), or a private file (where workers are portable).
pub(super) struct Extension {
    pub(super) fd: Option<BorrowedFd<'static>>,
    pub(super) path: String,
}

/// The extension module, made once and shared by every worker.
pub(super) fn extension() -> io::Result<Extension> {
    let module = super::EXTENSION
        .get()
        .filter(|module| !module.is_empty())
        .ok_or_else(|| io::Error::other("this binary carries no Python extension module"))?;
    #[cfg(target_os = "linux")]
    if !super::portable() {
        // Sealed: no worker can change the code the next one loads.
        static FILE: OnceLock<OwnedFd> = OnceLock::new();
        let fd = match FILE.get() {
            Some(fd) => fd.as_fd(),
            None => {
                let fd = super::ctl::sealed_file("labserv-ext", module)?;
                FILE.get_or_init(|| fd).as_fd()
            }
        };
        return Ok(Extension {
            // The worker inherits it under the same number.
            path: format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
            fd: Some(fd),
        });
    }
    static PATH: OnceLock<String> = OnceLock::new();
    let path = match PATH.get() {
        Some(path) => path.clone(),
        None => {
            let path = private_copy(module)?;
            PATH.get_or_init(|| path).clone()
        }
    };
    Ok(Extension { fd: None, path })
}

/// The extension module in a file only this user can reach, named by its contents: one
/// per version of labserv, reused by every run (a run killed with -9 leaves nothing new
/// behind), written whole under a temporary name, then moved into place.
fn private_copy(module: &[u8]) -> io::Result<String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, module);
    let name = format!("_labserv-{}.so", crate::human::hex(&digest.as_ref()[..8]));
    let dir = crate::settings::UserDirs::detect().ext_dir();
    crate::private::create_dir_all(&dir)?;
    let path = dir.join(name);
    let same = std::fs::read(&path).is_ok_and(|there| there == module);
    if !same {
        let mut temp = tempfile::NamedTempFile::new_in(&dir)?;
        temp.write_all(module)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|e| e.error)?;
    }
    path.into_os_string()
        .into_string()
        .map_err(|_| io::Error::other("the extension's folder is not named in UTF-8"))
}
