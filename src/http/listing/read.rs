//! Reading a directory for a listing (in one buffer with rustix on Linux), and looking
//! again at the entries that may have changed since.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::{Entry, Kind, Listed};

/// What a listing shows of one entry: its kind, size and modification time.
type Description = (Kind, u64, Option<SystemTime>);

/// Reads `dir`: its entries in name order (see [`Sort::order`]) and which of them
/// [`refresh`] must look at again. Symlinks are described by what they point to; a missing
/// target is a broken link. Blocking: call off the runtime.
///
/// rustix reads the names into one buffer (no allocation per name), and each name is
/// looked up relative to the open directory, asking only for what a listing shows.
///
/// # Errors
/// The directory cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn read(dir: &Path) -> io::Result<Listed> {
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;

    use rustix::fs::{FileType, Mode, OFlags, RawDir};

    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty())?;
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut names = RawDir::new(&fd, &mut buf);
    let mut entries = Vec::new();
    let mut volatile = Vec::new();
    while let Some(entry) = names.next() {
        let entry = entry?;
        let raw = entry.file_name();
        if matches!(raw.to_bytes(), b"." | b"..") {
            continue;
        }
        let (kind, size, modified) = describe(&fd, raw);
        if matches!(
            entry.file_type(),
            FileType::Directory | FileType::Symlink | FileType::Unknown
        ) {
            let name = std::ffi::OsStr::from_bytes(raw.to_bytes());
            volatile.push((entries.len(), name.to_owned()));
        }
        let name = match std::str::from_utf8(raw.to_bytes()) {
            Ok(name) => name.to_owned(),
            Err(_) => String::from_utf8_lossy(raw.to_bytes()).into_owned(),
        };
        entries.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    Ok(Listed::in_name_order(entries, volatile))
}

/// Describes the entry `name` of the open directory `dir`.
#[cfg(target_os = "linux")]
fn describe<Fd: std::os::fd::AsFd, P: rustix::path::Arg>(dir: Fd, name: P) -> Description {
    use std::time::{Duration, UNIX_EPOCH};

    use rustix::fs::{AtFlags, FileType, StatxFlags};

    let wanted = StatxFlags::TYPE | StatxFlags::SIZE | StatxFlags::MTIME;
    let Ok(st) = rustix::fs::statx(dir, name, AtFlags::empty(), wanted) else {
        return (Kind::Broken, 0, None);
    };
    let t = st.stx_mtime;
    let nanos = Duration::from_nanos(t.tv_nsec.into());
    let modified = match u64::try_from(t.tv_sec) {
        Ok(secs) => UNIX_EPOCH.checked_add(Duration::from_secs(secs) + nanos),
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.tv_sec.unsigned_abs()))
            .and_then(|at| at.checked_add(nanos)),
    };
    match FileType::from_raw_mode(st.stx_mode.into()) {
        FileType::Directory => (Kind::Dir, 0, modified),
        FileType::RegularFile => (Kind::File, st.stx_size, modified),
        _ => (Kind::Other, 0, modified),
    }
}

/// Reads `dir`: its entries in name order (see [`Sort::order`]), every one of them for
/// [`refresh`] to look at again. Symlinks are described by what they point to; a missing
/// target is a broken link. Blocking: call off the runtime.
///
/// # Errors
/// The directory cannot be read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn read(dir: &Path) -> io::Result<Listed> {
    let mut entries = Vec::new();
    let mut volatile = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let raw = entry.file_name();
        let (kind, size, modified) = describe(&entry.path());
        volatile.push((entries.len(), raw.clone()));
        let name = raw
            .into_string()
            .unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
        entries.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    Ok(Listed::in_name_order(entries, volatile))
}

/// Describes the entry at `path`.
#[cfg(not(target_os = "linux"))]
fn describe(path: &Path) -> Description {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => (Kind::Dir, 0, m.modified().ok()),
        Ok(m) if m.is_file() => (Kind::File, m.len(), m.modified().ok()),
        Ok(m) => (Kind::Other, 0, m.modified().ok()),
        Err(_) => (Kind::Broken, 0, None),
    }
}

/// The entries of `listed`, a listing of `dir` kept from an earlier read, with its
/// volatile entries looked at again: borrowed when none changed. Blocking.
///
/// # Errors
/// The directory cannot be opened.
pub(crate) fn refresh<'a>(dir: &Path, listed: &'a Listed) -> io::Result<Cow<'a, [Entry]>> {
    let mut entries = Cow::Borrowed(listed.entries.as_slice());
    if listed.volatile.is_empty() {
        return Ok(entries);
    }
    #[cfg(target_os = "linux")]
    let look = {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(dir, flags, Mode::empty())?;
        move |name: &std::ffi::OsStr| describe(&fd, name)
    };
    #[cfg(not(target_os = "linux"))]
    let look = |name: &std::ffi::OsStr| describe(&dir.join(name));
    for (at, name) in &listed.volatile {
        let now = look(name);
        let was = &entries[*at];
        if (was.kind, was.size, was.modified) != now {
            let entry = &mut entries.to_mut()[*at];
            (entry.kind, entry.size, entry.modified) = now;
        }
    }
    Ok(entries)
}
