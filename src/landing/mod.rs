//! How an upload lands, for TFTP and HTTP alike: written to a hidden temporary file beside
//! its target, made durable, then moved into place whole. Until then the target is
//! untouched, and an upload that does not finish leaves nothing behind.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

mod folder;

pub(crate) use folder::Folder;
use std::sync::atomic::{AtomicU64, Ordering};

/// What uploads may take: files up to a size, and never the file system's last free
/// bytes (so that an upload cannot fill the disk the lab's other work needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// The largest file taken, in bytes.
    pub max_size: u64,
    /// The free space every upload leaves; `None`: 1% of the file system, at most 1 GiB;
    /// 0: no floor.
    pub min_free: Option<u64>,
}

/// Default for [`Room::max_size`].
pub const DEFAULT_MAX_UPLOAD: u64 = 4 << 30;

impl Default for Room {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_UPLOAD,
            min_free: None,
        }
    }
}

impl Room {
    /// The floor on a file system of `total` bytes.
    fn floor(&self, total: u64) -> u64 {
        self.min_free.unwrap_or((total / 100).min(1 << 30))
    }

    /// Whether `more` bytes can still be written on the file system holding `path`
    /// and leave the floor free. A file system that cannot tell passes.
    ///
    /// # Errors
    /// [`io::ErrorKind::StorageFull`], saying how much is free and what is kept.
    pub(crate) fn check(&self, path: &Path, more: u64) -> io::Result<()> {
        let Ok(stats) = fs4::statvfs(path) else {
            return Ok(());
        };
        let floor = self.floor(stats.total_space());
        let free = stats.available_space();
        if floor > 0 && free < more.saturating_add(floor) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the disk is nearly full ({} free; uploads leave {} free, see --min-free)",
                    crate::human::bytes(free),
                    crate::human::bytes(floor)
                ),
            ));
        }
        Ok(())
    }

    /// The limits in words, for `--show-settings`.
    pub fn describe(&self) -> String {
        let floor = match self.min_free {
            None => "1% of the disk (at most 1 GiB)".to_string(),
            Some(0) => "nothing".to_string(),
            Some(n) => format!("{n} bytes"),
        };
        format!("up to {} bytes a file, leaving {floor} free", self.max_size)
    }

    /// Whether a file of `size` bytes may be taken.
    ///
    /// # Errors
    /// [`io::ErrorKind::FileTooLarge`] past [`Room::max_size`].
    pub(crate) fn fits(&self, size: u64) -> io::Result<()> {
        if size > self.max_size {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "larger than the {} an upload may be (--max-upload)",
                    crate::human::bytes(self.max_size)
                ),
            ));
        }
        Ok(())
    }
}

/// Uploads started by this process, to keep their temporary names apart.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// An upload on its way to its name; dropped before [`Landing::land`] succeeds, it
/// leaves nothing behind.
///
/// On Linux the file being written has no name at all (`O_TMPFILE`) until it lands: no
/// listing shows it, no client can guess it, and a crash leaves nothing to clean up.
/// Elsewhere (or on a file system without it) it is a hidden file beside the target with
/// a random name, removed if the upload does not land. Either way every step goes
/// through the [`Folder`] it lands in.
#[derive(Debug)]
pub(crate) struct Landing {
    /// The named temporary file, when there is one.
    temp: Option<OsString>,
    /// The nameless file, kept open to sync it and give it its name.
    #[cfg(target_os = "linux")]
    nameless: Option<File>,
    folder: Folder,
    name: OsString,
    overwrite: bool,
    landed: bool,
}

impl Landing {
    /// Starts an upload to `target` (a name the confinement rule gave below `root`),
    /// returning the file to write. With `make_folders`, missing folders on the way are
    /// made.
    ///
    /// # Errors
    /// [`io::ErrorKind::AlreadyExists`] when `target` exists and `overwrite` is off;
    /// [`io::ErrorKind::InvalidInput`] for a target with no file name; or why its folder
    /// or the temporary file could not be made.
    pub(crate) fn begin(
        root: &Path,
        target: &Path,
        overwrite: bool,
        make_folders: bool,
    ) -> io::Result<(Self, File)> {
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ));
        };
        let folder = Folder::open(root, dir, make_folders)?;
        if !overwrite && folder.has(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file exists (replacing needs --overwrite)",
            ));
        }
        let mut landing = Self {
            temp: None,
            #[cfg(target_os = "linux")]
            nameless: None,
            folder,
            name: name.to_os_string(),
            overwrite,
            landed: false,
        };
        #[cfg(target_os = "linux")]
        if let Some(file) = landing.folder.nameless() {
            landing.nameless = Some(file.try_clone()?);
            return Ok((landing, file));
        }
        let temp = hidden_name(name);
        let file = landing.folder.create_new(&temp)?;
        landing.temp = Some(temp);
        Ok((landing, file))
    }

    /// Whether an upload announced as `size` bytes (when the client said) fits `room`,
    /// before any of it is written.
    ///
    /// # Errors
    /// As [`Room::fits`] and [`Room::check`].
    pub(crate) fn make_room(&self, room: &Room, size: Option<u64>) -> io::Result<()> {
        room.fits(size.unwrap_or(0))?;
        room.check(self.dir(), size.unwrap_or(0))
    }

    /// The directory the upload lands in.
    pub(crate) fn dir(&self) -> &Path {
        self.folder.path()
    }

    /// Makes the written file durable and puts it in place: replacing the target only
    /// when that is allowed (else the name is taken with a link, which fails rather than
    /// replace a file that appeared meanwhile). Blocks: run it on a blocking thread.
    ///
    /// # Errors
    /// The sync, rename or link failed (the target is then as it was).
    pub(crate) fn land(mut self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(file) = self.nameless.take() {
            file.sync_all()?;
            if self.overwrite {
                // A name of its own first, then moved over the target in one step.
                let temp = hidden_name(&self.name);
                self.folder.name(&file, &temp)?;
                self.temp = Some(temp.clone());
                self.folder.rename(&temp, &self.name)?;
                self.temp = None;
            } else {
                self.folder.name(&file, &self.name)?;
            }
            return self.landed();
        }
        let Some(temp) = self.temp.clone() else {
            return Err(io::Error::other("the upload has no file"));
        };
        // Opened for writing: Windows flushes only a file open for writing.
        self.folder.open_write(&temp)?.sync_all()?;
        if self.overwrite {
            self.folder.rename(&temp, &self.name)?;
        } else {
            self.folder.hard_link(&temp, &self.name)?;
            let _ = self.folder.remove(&temp);
        }
        self.temp = None;
        self.landed()
    }

    /// The upload has its name: the directory entry is synced too, so that the file is
    /// there after a power cut.
    fn landed(mut self) -> io::Result<()> {
        self.landed = true;
        let _ = self.folder.sync();
        Ok(())
    }
}

/// A hidden name beside `name` that no client can guess: `.NAME.RANDOM.part`.
pub(crate) fn hidden_name(name: &OsStr) -> OsString {
    let mut random = [0u8; 8];
    if getrandom::fill(&mut random).is_err() {
        // No system randomness: unique all the same, if guessable.
        random = UPLOADS.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    }
    let mut hidden = OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".{}.part", crate::human::hex(&random)));
    hidden
}

/// How much of an upload gathers before the disk is told to start writing it.
pub(crate) const STEP: u64 = 4 << 20;

/// Has the disk write an upload while it arrives, so that the sync before it lands (see
/// [`Landing::land`]) finds little left to do: every [`STEP`] bytes, writeback of those
/// bytes starts (`sync_file_range`, which does not wait; the kernel's own dirty-page
/// limits bound what is left unwritten). Elsewhere than on Linux it does nothing, and
/// the final sync does it all.
#[derive(Debug)]
pub(crate) struct Writeback {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// Where the writeback started last ends.
    started: u64,
}

impl Writeback {
    /// Follows `file` (through its own handle).
    ///
    /// # Errors
    /// The handle could not be duplicated.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn new(file: &File) -> io::Result<Self> {
        Ok(Self {
            #[cfg(target_os = "linux")]
            fd: std::os::fd::AsFd::as_fd(file).try_clone_to_owned()?,
            started: 0,
        })
    }

    /// Whether `written` bytes (all there is in the file) make [`Writeback::advance`]
    /// worth calling.
    pub(crate) fn due(&self, written: u64) -> bool {
        cfg!(target_os = "linux") && written - self.started >= STEP
    }

    /// `written` bytes are in the file: starts writing out what has gathered since the
    /// last call, if a step has. It waits for nothing to reach the disk, but the kernel
    /// may block it while its queue to the disk is full: run it where blocking is allowed.
    pub(crate) fn advance(&mut self, written: u64) {
        if !self.due(written) {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let fd = self.fd.as_raw_fd();
            // SAFETY: a hint about ranges of a file this struct holds open; a failure
            // (a file system without it) only leaves the work to the final sync.
            unsafe {
                libc::sync_file_range(
                    fd,
                    to_i64(self.started),
                    to_i64(written - self.started),
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.started = written;
    }
}

/// An upload's temporary file, written out to disk as it grows (see [`Writeback`]),
/// within its [`Room`]: a write past the size limit, or one made when the disk is down
/// to its floor (looked at every writeback step), fails.
#[derive(Debug)]
pub(crate) struct Upload {
    file: File,
    writeback: Writeback,
    written: u64,
    /// How much was written when free space was last looked at.
    checked: u64,
    room: Room,
    /// Where free space is looked at.
    dir: PathBuf,
}

impl Upload {
    /// # Errors
    /// As [`Writeback::new`].
    pub(crate) fn new(file: File, landing: &Landing, room: Room) -> io::Result<Self> {
        let writeback = Writeback::new(&file)?;
        Ok(Self {
            file,
            writeback,
            written: 0,
            checked: 0,
            room,
            dir: landing.dir().to_path_buf(),
        })
    }
}

impl io::Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.room.fits(self.written + buf.len() as u64)?;
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.checked >= STEP {
            self.room.check(&self.dir, 0)?;
            self.checked = self.written;
        }
        self.writeback.advance(self.written);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        // Never leave a partial file behind. A nameless one goes with its last handle; a
        // named one may still be open elsewhere, and unlinking the name is enough.
        if !self.landed
            && let Some(temp) = &self.temp
        {
            let _ = self.folder.remove(temp);
        }
    }
}

#[cfg(test)]
mod tests;
