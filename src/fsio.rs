//! File reads shared by the servers: from the page cache without blocking, or at an
//! offset on a blocking thread.

use std::fs::File;
use std::io;

use bytes::Bytes;

/// Opens `path` for reading without ever blocking on what it is: a FIFO (or a device)
/// under the served root opens at once instead of hanging the server until a writer
/// comes. Read its metadata from the handle to see what it is.
pub(crate) fn open_nonblocking(path: &std::path::Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads up to `len` bytes at `offset` only if they are in the page cache
/// (`preadv2` with `RWF_NOWAIT`): never waits for the disk. `WouldBlock` when nothing
/// is cached; a short read when only the start is.
#[cfg(target_os = "linux")]
pub(crate) fn read_cached(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    // SAFETY: the spare capacity of `buf` is `len` bytes and lives across the call.
    let n = unsafe { preadv2_nowait(file, buf.as_mut_ptr(), len, offset)? };
    // SAFETY: the kernel initialised the first `n` bytes, and `n <= len == capacity`.
    unsafe { buf.set_len(n) };
    if n < len / 2 {
        // Do not pin a large allocation for a short read.
        buf.shrink_to_fit();
    }
    Ok(Bytes::from(buf))
}

/// Reads into `buf` at `offset` only what is in the page cache, as [`read_cached`] does,
/// but into the caller's memory: no allocation, and no copy after it.
#[cfg(target_os = "linux")]
pub(crate) fn read_cached_into(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the whole call.
    unsafe { preadv2_nowait(file, buf.as_mut_ptr(), buf.len(), offset) }
}

/// `preadv2(RWF_NOWAIT)` of up to `len` bytes at `offset` into `dst`; the bytes read.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes until the call returns.
#[cfg(target_os = "linux")]
unsafe fn preadv2_nowait(file: &File, dst: *mut u8, len: usize, offset: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let iov = libc::iovec {
        iov_base: dst.cast(),
        iov_len: len,
    };
    // SAFETY: the caller promises `dst` is writable for `len` bytes; the kernel writes at
    // most `iov_len` bytes there.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn read_cached(_file: &File, _offset: u64, _len: usize) -> io::Result<Bytes> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn read_cached_into(_file: &File, _offset: u64, _buf: &mut [u8]) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Reads up to `len` bytes at `offset` (fewer only at the end of the file). Blocking:
/// call it off the async runtime.
///
/// # Errors
/// The read fails.
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = pread(file, &mut buf[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, offset)
}

#[cfg(windows)]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::windows::fs::FileExt;
    file.seek_read(buf, offset)
}
