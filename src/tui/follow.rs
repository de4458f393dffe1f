//! Following a log file as `tail -F` does: start from its last lines, pick up new ones,
//! and carry on across logrotate (the file moved away and a new one created) or a
//! truncation.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// How far back from the end the first read starts.
const TAIL_BYTES: u64 = 64 * 1024;

/// A log file being followed.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    /// The end of a line whose newline has not been written yet.
    partial: Vec<u8>,
}

#[derive(Debug)]
struct Open {
    file: File,
    ino: u64,
    dev: u64,
    pos: u64,
}

impl Follower {
    /// Follows `path`, which need not exist yet.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            open: None,
            partial: Vec::new(),
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the complete lines written since the last call to `out`.
    pub fn poll(&mut self, out: &mut Vec<String>) {
        let named = std::fs::metadata(&self.path).ok();
        let first = self.open.is_none();
        if let Some(open) = &mut self.open {
            let replaced = named
                .as_ref()
                .is_some_and(|m| m.ino() != open.ino || m.dev() != open.dev);
            // Whatever was written to the old file before it was moved goes first.
            let _ = read_new(open, &mut self.partial, out);
            if replaced {
                self.open = None;
                self.partial.clear();
            } else if named.as_ref().is_some_and(|m| m.len() < open.pos) {
                // Truncated in place: start again from its beginning.
                open.pos = 0;
                self.partial.clear();
                let _ = read_new(open, &mut self.partial, out);
            }
        }
        if self.open.is_none()
            && let Some(meta) = named
            && let Ok(file) = File::open(&self.path)
        {
            // The first time, only the tail; after a rotation, the new file from its start.
            let start = if first {
                meta.len().saturating_sub(TAIL_BYTES)
            } else {
                0
            };
            let mut open = Open {
                file,
                ino: meta.ino(),
                dev: meta.dev(),
                pos: start,
            };
            let mut lines = Vec::new();
            let _ = read_new(&mut open, &mut self.partial, &mut lines);
            if start > 0 && !lines.is_empty() {
                // Started mid-line: that first piece is not a whole line.
                lines.remove(0);
            }
            out.append(&mut lines);
            self.open = Some(open);
        }
    }
}

fn read_new(open: &mut Open, partial: &mut Vec<u8>, out: &mut Vec<String>) -> io::Result<()> {
    open.file.seek(SeekFrom::Start(open.pos))?;
    let mut bytes = Vec::new();
    let n = open.file.read_to_end(&mut bytes)?;
    open.pos += n as u64;
    partial.extend_from_slice(&bytes);
    if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
        let rest = partial.split_off(end + 1);
        for line in partial.split(|&b| b == b'\n') {
            if !line.is_empty() {
                out.push(
                    String::from_utf8_lossy(line)
                        .trim_end_matches('\r')
                        .to_string(),
                );
            }
        }
        *partial = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(&mut out);
        out
    }

    #[test]
    fn follows_new_lines_across_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let mut f = Follower::new(&path);
        assert!(poll(&mut f).is_empty(), "no file yet");

        append(&path, "one\ntwo\nthr");
        assert_eq!(poll(&mut f), ["one", "two"]);
        append(&path, "ee\n");
        assert_eq!(poll(&mut f), ["three"]);

        // logrotate: moved away, a last line into the old file, then a new file.
        std::fs::rename(&path, dir.path().join("d.log.1")).unwrap();
        append(&dir.path().join("d.log.1"), "last old\n");
        append(&path, "first new\n");
        assert_eq!(poll(&mut f), ["last old", "first new"]);

        // copytruncate: emptied in place.
        std::fs::write(&path, "").unwrap();
        append(&path, "after\n");
        assert_eq!(poll(&mut f), ["after"]);
    }

    #[test]
    fn starts_from_the_last_lines_of_a_big_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        append(&path, &text);
        let lines = poll(&mut Follower::new(&path));
        assert_eq!(lines.last().unwrap(), "line 19999");
        assert!(
            lines.len() < 20_000 && lines.len() > 1000,
            "{}",
            lines.len()
        );
        assert!(
            lines[0].starts_with("line "),
            "whole lines only: {}",
            lines[0]
        );
    }
}
