//! Opening a confined name so that the check cannot be raced.
//!
//! [`super::confine`] resolves a name's symlinks and checks that it stays inside the root,
//! but a file is opened afterwards, by path: someone who can write under the root (a
//! local user, a build job) could swap a folder on the way for a symlink in between and
//! have a read or an upload land outside. On Linux the open itself is made beneath the
//! root instead (`openat2` with `RESOLVE_BENEATH`, kernel 5.6 and later): the kernel
//! refuses any step that leaves it, whatever changed since the check. An upload's folder
//! is opened the same way, missing folders made one by one through handles, and every
//! later step of the upload names its files through that folder's handle (see
//! `crate::landing`). Elsewhere, and on older kernels, names are opened by path after
//! the check, as before.

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `full`, a name [`super::confine`] returned below `root` with
/// [`super::Symlinks::StayInside`], for reading, without blocking on a FIFO.
///
/// # Errors
/// As opening the file; [`io::ErrorKind::PermissionDenied`] when a symlink now leads
/// outside the root.
pub(crate) fn open_file(root: &Path, full: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        if let Some(opened) = linux::open(root, full, OFlags::RDONLY | OFlags::NONBLOCK) {
            return opened.map(File::from);
        }
    }
    let _ = root;
    crate::fsio::open_nonblocking(full)
}

/// Opens the folder `dir` (a name [`super::confine`] returned below `root` with
/// [`super::Symlinks::StayInside`]) to land an upload in, first making it and any missing
/// folders above it when `create`.
///
/// # Errors
/// As opening or making the folders; [`io::ErrorKind::PermissionDenied`] when a symlink
/// now leads outside the root.
#[cfg(unix)]
pub(crate) fn open_dir(root: &Path, dir: &Path, create: bool) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    #[cfg(target_os = "linux")]
    match linux::open(root, dir, flags) {
        None => {}
        Some(Err(e)) if create && e.kind() == io::ErrorKind::NotFound => {
            return linux::make_dirs(root, dir, flags);
        }
        Some(opened) => return opened,
    }
    let _ = root;
    if create {
        std::fs::create_dir_all(dir)?;
    }
    Ok(rustix::fs::open(
        dir,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    /// Whether the kernel has `openat2`; looked at by the first open, then known.
    static HAS_OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

    fn outside() -> io::Error {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a symlink leads outside the root",
        )
    }

    /// `openat2(root, rel, RESOLVE_BENEATH)`; magic links (`/proc/self/fd/N`) refused too.
    fn beneath(root: &OwnedFd, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Opens `full` (below `root`) beneath `root`; `None` when the kernel cannot.
    ///
    /// `RESOLVE_BENEATH` refuses every absolute symlink, even one that points inside the
    /// root (`current -> /srv/tftp/builds/42`), which labs make. So a refusal is looked
    /// at once more: the name with its symlinks resolved now, if inside the root, is
    /// opened beneath the root in turn; a symlink swapped in meanwhile fails that open.
    pub(super) fn open(root: &Path, full: &Path, flags: OFlags) -> Option<io::Result<OwnedFd>> {
        use std::sync::atomic::Ordering;
        if !HAS_OPENAT2.load(Ordering::Relaxed) {
            return None;
        }
        let root_fd = match open_root(root) {
            Ok(fd) => fd,
            Err(e) => return Some(Err(e)),
        };
        let Ok(rel) = full.strip_prefix(root) else {
            return Some(Err(outside()));
        };
        match beneath(&root_fd, rel, flags) {
            Ok(fd) => Some(Ok(fd)),
            Err(Errno::NOSYS) => {
                HAS_OPENAT2.store(false, Ordering::Relaxed);
                None
            }
            Err(Errno::XDEV) => Some(again_resolved(&root_fd, root, full, flags)),
            Err(e) => Some(Err(e.into())),
        }
    }

    fn open_root(root: &Path) -> io::Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(rustix::fs::open(root, flags, Mode::empty())?)
    }

    /// The second look [`open`] describes.
    fn again_resolved(
        root_fd: &OwnedFd,
        root: &Path,
        full: &Path,
        flags: OFlags,
    ) -> io::Result<OwnedFd> {
        let real = full.canonicalize()?;
        let rel = real.strip_prefix(root).map_err(|_| outside())?;
        beneath(root_fd, rel, flags).map_err(|e| match e {
            Errno::XDEV => outside(),
            e => e.into(),
        })
    }

    /// Makes the folder `dir` (below `root`) and the missing ones above it, one at a
    /// time through the handle of the one above, never leaving the root; opens it.
    pub(super) fn make_dirs(root: &Path, dir: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let walk = OFlags::PATH | OFlags::DIRECTORY;
        // The nearest folder that exists, opened beneath the root.
        let mut existing = dir;
        let mut fd = loop {
            existing = existing
                .parent()
                .filter(|p| p.starts_with(root))
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no folder to make it in")
                })?;
            match open(root, existing, walk) {
                Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Some(opened) => break opened?,
                None => return Err(io::Error::from(io::ErrorKind::Unsupported)),
            }
        };
        let missing: Vec<_> = dir
            .strip_prefix(existing)
            .map_err(|_| outside())?
            .components()
            .map(|part| part.as_os_str())
            .collect();
        for (i, part) in missing.iter().enumerate() {
            match rustix::fs::mkdirat(&fd, *part, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let last = i + 1 == missing.len();
            let how = if last { flags } else { walk };
            // A symlink put there meanwhile may not lead out (nor anywhere else: the
            // folder was just made, and a link in its place is refused).
            fd = rustix::fs::openat(
                &fd,
                *part,
                how | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                Errno::LOOP => outside(),
                e => e.into(),
            })?;
        }
        Ok(fd)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::confine::{Symlinks, confine};
    use std::os::unix::fs::symlink;

    /// A served root and a folder outside it holding a secret.
    fn lab() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let base_path = base.path().canonicalize().unwrap();
        let root = base_path.join("root");
        let outside = base_path.join("outside");
        std::fs::create_dir_all(root.join("fw")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(root.join("fw/boot.img"), b"inside").unwrap();
        std::fs::write(outside.join("boot.img"), b"secret").unwrap();
        (base, root, outside)
    }

    /// The name passes the check; then `fw` becomes a symlink out, before the open.
    fn swapped_after_the_check(root: &Path, outside: &Path, name: &[u8]) -> std::path::PathBuf {
        let full = confine(root, name, Symlinks::StayInside).unwrap();
        std::fs::rename(root.join("fw"), root.join("fw.old")).unwrap();
        symlink(outside, root.join("fw")).unwrap();
        full
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_folder_swapped_for_a_link_out_after_the_check_is_not_read_through() {
        let (_base, root, outside) = lab();
        let full = swapped_after_the_check(&root, &outside, b"fw/boot.img");
        let err = open_file(&root, &full).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_folder_swapped_for_a_link_out_after_the_check_gets_no_upload() {
        let (_base, root, outside) = lab();
        let full = swapped_after_the_check(&root, &outside, b"fw/new/fw.bin");
        let err = open_dir(&root, full.parent().unwrap(), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(!outside.join("new").exists(), "no folder made outside");
    }

    #[test]
    fn links_that_stay_inside_still_open_absolute_ones_too() {
        let (_base, root, _outside) = lab();
        symlink(root.join("fw"), root.join("current")).unwrap();
        symlink("fw/boot.img", root.join("relative.img")).unwrap();
        for name in [&b"current/boot.img"[..], b"relative.img"] {
            let full = confine(&root, name, Symlinks::StayInside).unwrap();
            let mut text = String::new();
            io::Read::read_to_string(&mut open_file(&root, &full).unwrap(), &mut text).unwrap();
            assert_eq!(text, "inside");
        }
        // Folders are made through an absolute link that stays inside, too.
        let dir = confine(&root, b"current/a/b", Symlinks::StayInside).unwrap();
        open_dir(&root, &dir, true).unwrap();
        assert!(root.join("fw/a/b").is_dir());
    }
}
