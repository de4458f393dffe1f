//! The one rule that keeps every server inside its root: a client's file name becomes a
//! path below the served directory, or it is refused.
//!
//! Each protocol decodes its own input at its edge (HTTP percent-decodes the request path,
//! TFTP reads a leading `/` as the root, the CGI gateway takes the first segment of
//! PATH_INFO) and then asks [`confine`]. Nothing else in labserv joins a client's name to
//! a root.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

mod beneath;

#[cfg(unix)]
pub(crate) use beneath::open_dir;
pub(crate) use beneath::open_file;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A `..` segment.
    Parent,
    /// A backslash, which some clients mean as a separator.
    Backslash,
    /// A NUL byte, which would cut the name short in the operating system.
    Nul,
    /// A segment the platform cannot take as a plain file name.
    Encoding,
    /// A name Windows reads as something else: a device (`CON`, `NUL`, `aux.txt`), a
    /// drive or an alternate data stream (`:`), or one ending in a dot or a space.
    Reserved,
    /// A symlink on the way leads outside the root.
    Outside,
}

impl Refused {
    /// The reason, as the logs give it.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Parent => "'..' in file name",
            Refused::Backslash => "backslash in file name",
            Refused::Nul => "NUL byte in file name",
            Refused::Encoding => "not a valid file name",
            Refused::Reserved => "a name Windows reserves",
            Refused::Outside => "symlink leads outside the root",
        }
    }
}

/// Whether symlinks may lead a name outside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Follow them wherever they lead (`serv`'s default: firmware directories often link
    /// to build outputs elsewhere).
    Follow,
    /// Refuse a name that, with every symlink resolved, lies outside the root.
    StayInside,
}

/// Maps `name` (already decoded by the protocol, `/`-separated, relative to the root) to a
/// path below `root`, which must be canonical (see [`check_root`]).
///
/// Empty and `.` segments are dropped, so an empty name is the root itself. `..`,
/// backslashes and NUL bytes are refused outright rather than normalised: no honest client
/// sends them. With [`Symlinks::StayInside`], the path with every symlink resolved must lie
/// inside the root; a name that does not exist yet is judged by the nearest ancestor that
/// does, and a dangling symlink is refused (writing through it could land anywhere).
///
/// # Errors
/// The [`Refused`] reason.
pub fn confine(root: &Path, name: &[u8], symlinks: Symlinks) -> Result<PathBuf, Refused> {
    if name.contains(&0) {
        return Err(Refused::Nul);
    }
    if name.contains(&b'\\') {
        return Err(Refused::Backslash);
    }
    // Room for the whole name at once: pushing segment by segment then never reallocates.
    let mut full = PathBuf::with_capacity(root.as_os_str().len() + 1 + name.len());
    full.push(root);
    for segment in name.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(Refused::Parent),
            _ => {
                if cfg!(windows) && windows_reserved(segment) {
                    return Err(Refused::Reserved);
                }
                let segment = plain_name(segment)?;
                // Whatever the platform makes of a segment, it must stay one plain name.
                let mut parts = Path::new(segment).components();
                match (parts.next(), parts.next()) {
                    (Some(Component::Normal(_)), None) => full.push(segment),
                    _ => return Err(Refused::Encoding),
                }
            }
        }
    }
    if symlinks == Symlinks::StayInside && !stays_inside(root, &full) {
        return Err(Refused::Outside);
    }
    Ok(full)
}

/// Whether Windows would take `segment` as something other than a plain name in its
/// folder: a device name with or without an extension (`CON`, `nul.txt`, `COM1`), a
/// drive or an alternate data stream (any `:`), or a name ending in a dot or a space
/// (Windows drops them, so `fw.img.` would be `fw.img`). Checked on Windows only; other
/// systems take such names as they are.
fn windows_reserved(segment: &[u8]) -> bool {
    if segment.contains(&b':') || segment.ends_with(b".") || segment.ends_with(b" ") {
        return true;
    }
    let stem = segment.split(|&b| b == b'.').next().unwrap_or_default();
    let stem = stem.trim_ascii_end().to_ascii_uppercase();
    matches!(
        stem.as_slice(),
        b"CON" | b"PRN" | b"AUX" | b"NUL" | b"CONIN$" | b"CONOUT$"
    ) || (stem.len() == 4
        && (stem.starts_with(b"COM") || stem.starts_with(b"LPT"))
        && stem[3].is_ascii_digit())
}

#[cfg(unix)]
fn plain_name(bytes: &[u8]) -> Result<&std::ffi::OsStr, Refused> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn plain_name(bytes: &[u8]) -> Result<&std::ffi::OsStr, Refused> {
    std::str::from_utf8(bytes)
        .map(std::ffi::OsStr::new)
        .map_err(|_| Refused::Encoding)
}

/// Whether `path` (below `root`), with every symlink resolved, lies inside `root`. A path
/// that does not exist is judged by its nearest existing ancestor.
fn stays_inside(root: &Path, path: &Path) -> bool {
    let mut probe = path;
    loop {
        match probe.canonicalize() {
            Ok(real) => return real.starts_with(root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(probe).is_ok() {
                    // It exists as a link to nowhere.
                    return false;
                }
                match probe.parent() {
                    Some(parent) if parent.starts_with(root) && parent != probe => probe = parent,
                    _ => return true,
                }
            }
            // ELOOP, ENOTDIR and the like: the lookup that follows reports it.
            Err(_) => return true,
        }
    }
}

/// Checks that `root` is a readable directory and returns its canonical path, the form
/// [`confine`] needs.
///
/// # Errors
/// [`Error::Directory`] when it is missing, not a directory, or unreadable.
pub fn check_root(root: &Path) -> Result<PathBuf> {
    let fail = |reason: String| Error::Directory {
        path: root.to_path_buf(),
        reason,
    };
    let canonical = root.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => fail("no such directory".to_string()),
        _ => fail(e.to_string()),
    })?;
    if !canonical.is_dir() {
        return Err(fail("not a directory".to_string()));
    }
    std::fs::read_dir(&canonical).map_err(|e| fail(e.to_string()))?;
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_windows_reserves_are_known() {
        for reserved in [
            &b"CON"[..],
            b"con",
            b"NUL.txt",
            b"aux.tar.gz",
            b"Com1",
            b"lpt9.log",
            b"file.txt::$DATA",
            b"C:",
            b"fw.img.",
            b"fw.img ",
            b"CON .txt",
        ] {
            assert!(
                windows_reserved(reserved),
                "{:?}",
                String::from_utf8_lossy(reserved)
            );
        }
        for plain in [
            &b"console.log"[..],
            b"fw.img",
            b"COM10",
            b"nullable",
            b".hidden",
            b"a b",
        ] {
            assert!(
                !windows_reserved(plain),
                "{:?}",
                String::from_utf8_lossy(plain)
            );
        }
    }

    const ROOT: &str = "/srv/fw";

    fn rel(name: &str) -> Result<PathBuf, Refused> {
        confine(Path::new(ROOT), name.as_bytes(), Symlinks::Follow)
            .map(|p| p.strip_prefix(ROOT).unwrap().to_path_buf())
    }

    #[test]
    fn plain_names_land_below_the_root() {
        assert_eq!(rel("").unwrap(), PathBuf::new());
        assert_eq!(
            rel("fw/update.img").unwrap(),
            PathBuf::from("fw/update.img")
        );
        assert_eq!(rel("//a/./b//").unwrap(), PathBuf::from("a/b"));
        assert_eq!(rel("my file.bin").unwrap(), PathBuf::from("my file.bin"));
    }

    #[test]
    fn hostile_names_are_refused() {
        for (name, why) in [
            ("../etc/passwd", Refused::Parent),
            ("a/../../x", Refused::Parent),
            ("a/..", Refused::Parent),
            ("a\\..\\b", Refused::Backslash),
            ("fw.img\0.txt", Refused::Nul),
        ] {
            assert_eq!(rel(name), Err(why), "{name:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused_when_asked() {
        let outside = tempfile::tempdir().unwrap();
        let served = tempfile::tempdir().unwrap();
        let root = served.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).unwrap();
        std::fs::create_dir(root.join("in")).unwrap();
        let inside = |name: &str| confine(&root, name.as_bytes(), Symlinks::StayInside);
        assert_eq!(inside("out"), Err(Refused::Outside));
        // A file not there yet, in a linked directory: judged by the directory.
        assert_eq!(inside("out/new.img"), Err(Refused::Outside));
        assert_eq!(inside("dangling"), Err(Refused::Outside));
        assert_eq!(
            inside("in/new/deeper.img").unwrap(),
            root.join("in/new/deeper.img")
        );
        assert!(confine(&root, b"out/new.img", Symlinks::Follow).is_ok());
    }
}
