//! How an upload lands, for TFTP and HTTP alike: written to a hidden temporary file beside
//! its target, made durable, then moved into place whole. Until then the target is
//! untouched, and an upload that does not finish leaves nothing behind.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Uploads started by this process, to keep their temporary names apart.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// An upload on its way to `target`; dropped before [`Landing::land`] succeeds, its
/// temporary file is removed.
#[derive(Debug)]
pub(crate) struct Landing {
    temp: PathBuf,
    target: PathBuf,
    overwrite: bool,
    landed: bool,
}

impl Landing {
    /// Starts an upload to `target` (a name already confined to the served directory),
    /// returning the temporary file to write.
    ///
    /// # Errors
    /// [`io::ErrorKind::AlreadyExists`] when `target` exists and `overwrite` is off;
    /// [`io::ErrorKind::InvalidInput`] for a target with no file name; or why the
    /// temporary file could not be made.
    pub(crate) fn begin(target: PathBuf, overwrite: bool) -> io::Result<(Self, File)> {
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ));
        };
        if !overwrite && fs::symlink_metadata(&target).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file exists (replacing needs --overwrite)",
            ));
        }
        let temp = dir.join(format!(
            ".{}.{}-{}.part",
            name.to_string_lossy(),
            std::process::id(),
            UPLOADS.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok((
            Self {
                temp,
                target,
                overwrite,
                landed: false,
            },
            file,
        ))
    }

    /// Makes the written file durable and puts it in place: `rename` when replacing is
    /// allowed, otherwise `link`, which fails rather than replace a file that appeared
    /// meanwhile. Blocks: run it on a blocking thread.
    ///
    /// # Errors
    /// The sync, rename or link failed (the target is then as it was).
    pub(crate) fn land(mut self) -> io::Result<()> {
        // Opened for writing: Windows flushes only a file open for writing.
        OpenOptions::new()
            .write(true)
            .open(&self.temp)?
            .sync_all()?;
        if self.overwrite {
            fs::rename(&self.temp, &self.target)?;
        } else {
            fs::hard_link(&self.temp, &self.target)?;
            let _ = fs::remove_file(&self.temp);
        }
        self.landed = true;
        // The directory entry too, so that the file is there after a power cut.
        if let Some(dir) = self.target.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed {
            // Never leave a partial file behind. A handle may still be open elsewhere;
            // unlinking the name is enough.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_upload_lands_whole_or_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fw.img");
        let (landing, mut file) = Landing::begin(target.clone(), false).unwrap();
        file.write_all(b"half").unwrap();
        drop(landing);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left");

        let (landing, mut file) = Landing::begin(target.clone(), false).unwrap();
        file.write_all(b"whole").unwrap();
        landing.land().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );

        let err = Landing::begin(target.clone(), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let (landing, mut file) = Landing::begin(target.clone(), true).unwrap();
        file.write_all(b"newer").unwrap();
        landing.land().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"newer");
    }
}
