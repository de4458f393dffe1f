//! A request body held for an app: in memory while small, in an unnamed temporary file
//! past [`SPILL`], so a 64 MiB upload does not sit in memory.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use bytes::{Bytes, BytesMut};

/// Bodies larger than this go to a temporary file.
pub(crate) const SPILL: usize = 1024 * 1024;

/// A body being gathered.
#[derive(Debug, Default)]
pub(crate) struct Spool {
    memory: BytesMut,
    file: Option<File>,
    len: u64,
}

impl Spool {
    /// Adds the next part of the body.
    ///
    /// # Errors
    /// The temporary file cannot be made or written (a full disk).
    pub(crate) fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        if let Some(file) = &mut self.file {
            return file.write_all(data);
        }
        if self.memory.len() + data.len() <= SPILL {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        // Page-cache writes: brief even on the connection's thread.
        let mut file = tempfile::tempfile()?;
        file.write_all(&self.memory)?;
        file.write_all(data)?;
        self.memory = BytesMut::new();
        self.file = Some(file);
        Ok(())
    }

    /// Copies all of `input` in.
    ///
    /// # Errors
    /// Reading `input` or writing the temporary file fails.
    pub(crate) fn fill(&mut self, input: &mut dyn Read) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.push(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The body's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The whole body, to read from the start.
    ///
    /// # Errors
    /// The temporary file cannot be rewound.
    pub(crate) fn finish(self) -> io::Result<Body> {
        match self.file {
            Some(mut file) => {
                file.seek(SeekFrom::Start(0))?;
                Ok(Body::File(file))
            }
            None => Ok(Body::Memory(Cursor::new(self.memory.freeze()))),
        }
    }
}

/// A gathered body, read from its start.
#[derive(Debug)]
pub(crate) enum Body {
    /// Small: in memory.
    Memory(Cursor<Bytes>),
    /// Large: in an unnamed temporary file (gone when closed).
    File(File),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Memory(c) => c.read(buf),
            Body::File(f) => f.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_in_memory_and_large_ones_spill_whole() {
        for len in [0, 10, SPILL, SPILL + 1, 3 * SPILL + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut spool = Spool::default();
            for part in data.chunks(100_000) {
                spool.push(part).unwrap();
            }
            assert_eq!(spool.len(), len as u64);
            let mut body = spool.finish().unwrap();
            assert_eq!(matches!(body, Body::File(_)), len > SPILL, "{len}");
            let mut back = Vec::new();
            body.read_to_end(&mut back).unwrap();
            assert!(back == data, "{len}");
        }
    }
}
