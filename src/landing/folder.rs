//! The folder an upload lands in, and the few things done in it.
//!
//! On Unix it is held open, and every step of an upload (the temporary file, the move
//! into place, the clean-up) names its files through that handle. On Linux the handle
//! itself is opened beneath the served root (see `crate::confine::open_dir`): a symlink
//! swapped in on the way after the name was checked cannot move an upload elsewhere.
//! On Windows the folder is named by its path.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Folder {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

#[cfg(unix)]
impl Folder {
    /// Opens `path`, a folder below `root` that the confinement rule allowed; makes it
    /// (and missing folders above it) first when `create`.
    pub(crate) fn open(root: &Path, path: &Path, create: bool) -> io::Result<Self> {
        Ok(Self {
            fd: crate::confine::open_dir(root, path, create)?,
            path: path.to_path_buf(),
        })
    }

    /// Whether anything (a symlink included) has `name`.
    pub(crate) fn has(&self, name: &OsStr) -> bool {
        rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// A new file `name`, for writing; fails if anything has the name.
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        use rustix::fs::OFlags;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        self.open_at(name, flags, rustix::fs::Mode::from_raw_mode(0o666))
    }

    /// The file `name`, opened for writing (to sync it).
    pub(crate) fn open_write(&self, name: &OsStr) -> io::Result<File> {
        use rustix::fs::OFlags;
        self.open_at(
            name,
            OFlags::WRONLY | OFlags::NOFOLLOW,
            rustix::fs::Mode::empty(),
        )
    }

    fn open_at(
        &self,
        name: &OsStr,
        flags: rustix::fs::OFlags,
        mode: rustix::fs::Mode,
    ) -> io::Result<File> {
        let flags = flags | rustix::fs::OFlags::CLOEXEC;
        Ok(rustix::fs::openat(&self.fd, name, flags, mode)?.into())
    }

    /// Moves `from` over `to` in one step.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Gives `from` the name `to` too; fails if `to` is taken.
    pub(crate) fn hard_link(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let flags = rustix::fs::AtFlags::empty();
        Ok(rustix::fs::linkat(&self.fd, from, &self.fd, to, flags)?)
    }

    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.fd,
            name,
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// Makes the folder's entries durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Whether `name` is a folder (a symlink is not, wherever it points).
    pub(crate) fn is_dir(&self, name: &OsStr) -> io::Result<bool> {
        let stat = rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory)
    }

    /// Makes the folder `name`; fails if anything has the name.
    pub(crate) fn make_dir(&self, name: &OsStr) -> io::Result<()> {
        let mode = rustix::fs::Mode::from_raw_mode(0o777);
        Ok(rustix::fs::mkdirat(&self.fd, name, mode)?)
    }

    /// Removes the empty folder `name`.
    pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.fd,
            name,
            rustix::fs::AtFlags::REMOVEDIR,
        )?)
    }

    /// Where `name` in this folder can be reached by path without resolving the
    /// folder's own path again: through the handle where `/proc` has it.
    fn by_handle(&self, name: &OsStr) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            if proc_fd() {
                return PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).join(name);
            }
        }
        self.path.join(name)
    }

    /// A file with no name in the folder, when the kernel, the file system and `/proc`
    /// (to give it a name later) allow it.
    #[cfg(target_os = "linux")]
    pub(crate) fn nameless(&self) -> Option<File> {
        if !proc_fd() {
            return None;
        }
        let flags = rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::WRONLY;
        let mode = rustix::fs::Mode::from_raw_mode(0o666);
        self.open_at(OsStr::new("."), flags, mode).ok()
    }

    /// Gives the nameless `file` the name `to`; fails if `to` is taken.
    #[cfg(target_os = "linux")]
    pub(crate) fn name(&self, file: &File, to: &OsStr) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        Ok(rustix::fs::linkat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", file.as_raw_fd()),
            &self.fd,
            to,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        )?)
    }
}

/// Whether `/proc/self/fd` is there, to reach a file through its handle (looked at once:
/// `/proc` does not come or go while labserv runs).
#[cfg(target_os = "linux")]
fn proc_fd() -> bool {
    static PROC_FD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

#[cfg(not(unix))]
impl Folder {
    pub(crate) fn open(root: &Path, path: &Path, create: bool) -> io::Result<Self> {
        let _ = root;
        if create {
            std::fs::create_dir_all(path)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn has(&self, name: &OsStr) -> bool {
        std::fs::symlink_metadata(self.path.join(name)).is_ok()
    }

    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let mut options = std::fs::OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .open(self.path.join(name))
    }

    pub(crate) fn open_write(&self, name: &OsStr) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path.join(name))
    }

    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    pub(crate) fn hard_link(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        std::fs::hard_link(self.path.join(from), self.path.join(to))
    }

    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        // Windows cannot open a folder as a file to flush it; renames there are
        // journalled by NTFS.
        Ok(())
    }

    pub(crate) fn is_dir(&self, name: &OsStr) -> io::Result<bool> {
        Ok(std::fs::symlink_metadata(self.path.join(name))?.is_dir())
    }

    pub(crate) fn make_dir(&self, name: &OsStr) -> io::Result<()> {
        std::fs::create_dir(self.path.join(name))
    }

    pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        std::fs::remove_dir(self.path.join(name))
    }

    fn by_handle(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }
}

impl Folder {
    /// Where it is, for free-space checks and messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the folder `name` with all it holds. It is first moved to a hidden name,
    /// so that it is gone from sight at once, whole; then emptied and removed (the
    /// standard library's removal never follows a symlink inside). A removal that fails
    /// half-way leaves only that hidden folder.
    pub(crate) fn remove_tree(&self, name: &OsStr) -> io::Result<()> {
        let hidden = super::hidden_name(name);
        self.rename(name, &hidden)?;
        std::fs::remove_dir_all(self.by_handle(&hidden))
    }
}
