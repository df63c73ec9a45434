//! Async files: blocking file I/O on the kernel's thread pool (Curio's `aopen`).
//!
//! Files have no readiness that a reactor could wait for, so every operation runs as a
//! [`run_in_thread`] call and the kernel's thread never blocks on the disk.
//! [`aopen`] opens a file (with [`OpenOptions`], std's type) and returns an [`AsyncFile`];
//! [`read`], [`read_to_string`], [`write`](fn@write) and [`metadata`] are one-shots.
//!
//! A missing file is an [`io::Error`] of kind [`NotFound`](io::ErrorKind::NotFound), as with
//! std; no operation panics on an I/O error.
//!
//! # Cancel safety
//!
//! Dropping an operation's future returns at once, and the operation finishes on its thread.
//! What that means for each operation is under its `# Cancel safety` heading; in short, reads
//! lose nothing (what a dropped read took from the file is kept for the next read) and writes,
//! seeks, truncates and closes may still take effect.
//!
//! # Examples
//!
//! ```
//! # mod curio { pub use curio_kernel::run; pub mod fs { pub use curio_workers::fs::*; } }
//! use curio::fs::{self, OpenOptions};
//!
//! curio::run(async {
//!     let path = std::env::temp_dir().join(format!("curio-fs-doc-{}", std::process::id()));
//!     let mut f = fs::aopen(&path, OpenOptions::new().write(true).create(true).truncate(true))
//!         .await?;
//!     f.write_all(b"one\ntwo\n").await?;
//!     f.close().await?;
//!     let mut f = fs::aopen(&path, OpenOptions::new().read(true)).await?;
//!     assert_eq!(f.read_line().await?, "one\n");
//!     assert_eq!(f.read_to_end().await?, b"two\n");
//!     fs::remove_file(&path).await
//! })
//! .unwrap();
//! ```

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use std::fs::{Metadata, OpenOptions};
pub use std::io::SeekFrom;

use crate::{lock, run_in_thread};

/// How much a `read_line` reads from the file at a time.
const LINE_CHUNK: usize = 8 * 1024;

/// Opens `path` with `options` on the thread pool (Curio's `aopen`).
///
/// # Errors
///
/// The errors of [`OpenOptions::open`]: a missing file is
/// [`NotFound`](io::ErrorKind::NotFound).
///
/// # Panics
///
/// Outside a curio kernel.
///
/// # Cancel safety
///
/// A dropped open may still open the file on its thread; the file is then closed there.
pub async fn aopen(path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<AsyncFile> {
    let path = path.as_ref().to_owned();
    let options = options.clone();
    let file = run_in_thread(move || options.open(path)).await?;
    Ok(AsyncFile::from_std(file))
}

/// Reads a whole file (std's `fs::read`) on the thread pool.
///
/// # Errors
///
/// As [`std::fs::read`].
///
/// # Cancel safety
///
/// Nothing is lost: the read has no effect but its result.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    run_in_thread(move || std::fs::read(path)).await
}

/// Reads a whole file as UTF-8 on the thread pool.
///
/// # Errors
///
/// As [`std::fs::read_to_string`] (invalid UTF-8 is [`InvalidData`](io::ErrorKind::InvalidData)).
///
/// # Cancel safety
///
/// Nothing is lost: the read has no effect but its result.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    run_in_thread(move || std::fs::read_to_string(path)).await
}

/// Writes a whole file, creating or truncating it, on the thread pool.
///
/// # Errors
///
/// As [`std::fs::write`].
///
/// # Cancel safety
///
/// A dropped write may still happen, completely or in part.
pub async fn write(path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.into();
    run_in_thread(move || std::fs::write(path, contents)).await
}

/// A file's metadata (std's `fs::metadata`, following symbolic links) from the thread pool.
///
/// # Errors
///
/// As [`std::fs::metadata`].
///
/// # Cancel safety
///
/// Cancel safe.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    run_in_thread(move || std::fs::metadata(path)).await
}

/// Removes a file on the thread pool.
///
/// # Errors
///
/// As [`std::fs::remove_file`].
///
/// # Cancel safety
///
/// A dropped remove may still happen.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path: PathBuf = path.as_ref().to_owned();
    run_in_thread(move || std::fs::remove_file(path)).await
}

/// What the operations of one file share with their threads.
struct Inner {
    /// `None` once closed. Every operation holds it while it runs, so operations (and the zombies
    /// of dropped ones) run one at a time.
    file: Mutex<Option<File>>,
    /// Bytes read from the file but not yet returned: a `read_line`'s read-ahead, or what a
    /// dropped read took. Locked only briefly, never across a system call, so the kernel's
    /// thread may take from it.
    buf: Mutex<Vec<u8>>,
    /// Set by `close`, so the kernel's thread can tell without waiting for `file`'s lock.
    closed: AtomicBool,
}

fn closed() -> io::Error {
    io::Error::other("I/O operation on a closed file")
}

impl Inner {
    /// Runs `f` on the open file; the read-ahead is given back to the file first when `rewind`
    /// (before a write, a seek or a truncate, which work at the caller's position).
    fn with_file<R>(
        &self,
        rewind: bool,
        f: impl FnOnce(&mut File) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut g = lock(&self.file);
        let file = g.as_mut().ok_or_else(closed)?;
        if rewind {
            let ahead = std::mem::take(&mut *lock(&self.buf));
            if !ahead.is_empty() {
                let back = i64::try_from(ahead.len()).map_err(io::Error::other)?;
                if let Err(e) = file.seek(SeekFrom::Current(-back)) {
                    *lock(&self.buf) = ahead;
                    return Err(e);
                }
            }
        }
        f(file)
    }

    fn buffered(&self) -> usize {
        lock(&self.buf).len()
    }

    /// Reads one chunk of at most `max` bytes into the read-ahead, unless it already holds some.
    fn fill(&self, max: usize) -> io::Result<()> {
        self.with_file(false, |file| {
            if self.buffered() > 0 {
                return Ok(());
            }
            let mut chunk = vec![0; max];
            let n = file.read(&mut chunk)?;
            chunk.truncate(n);
            lock(&self.buf).extend_from_slice(&chunk);
            Ok(())
        })
    }

    /// Reads until the read-ahead holds a newline or the file ends.
    fn fill_line(&self) -> io::Result<()> {
        self.with_file(false, |file| {
            loop {
                if lock(&self.buf).contains(&b'\n') {
                    return Ok(());
                }
                let mut chunk = vec![0; LINE_CHUNK];
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                lock(&self.buf).extend_from_slice(&chunk[..n]);
            }
        })
    }

    fn fill_all(&self) -> io::Result<()> {
        self.with_file(false, |file| {
            let mut all = Vec::new();
            file.read_to_end(&mut all)?;
            lock(&self.buf).extend_from_slice(&all);
            Ok(())
        })
    }

    fn take(&self, max: usize) -> Vec<u8> {
        let mut b = lock(&self.buf);
        let n = max.min(b.len());
        b.drain(..n).collect()
    }
}

/// A file whose operations run on the kernel's thread pool (Curio's `AsyncFile`).
///
/// Reads are buffered only as far as [`read_line`](Self::read_line) needs (it reads ahead in
/// chunks) and as far as a dropped read left data behind; [`tell`](Self::tell),
/// [`seek`](Self::seek) and the writes account for that buffer, so positions are always the
/// caller's.
///
/// Dropping an `AsyncFile` closes the file on whichever thread drops the last reference (the
/// kernel's, unless an operation is still running); [`close`](Self::close) closes it on the
/// thread pool and reports errors.
pub struct AsyncFile {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AsyncFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFile")
            .field("buffered", &self.inner.buffered())
            .finish()
    }
}

impl AsyncFile {
    /// Wraps an open std file.
    pub fn from_std(file: File) -> AsyncFile {
        AsyncFile {
            inner: Arc::new(Inner {
                file: Mutex::new(Some(file)),
                buf: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        }
    }

    async fn op<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> io::Result<R> + Send + 'static,
    ) -> io::Result<R> {
        let inner = self.inner.clone();
        run_in_thread(move || f(&inner)).await
    }

    /// Reads at most `max` bytes; an empty vector means end of file (or `max` of 0).
    ///
    /// # Errors
    ///
    /// The file's read errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what a dropped read took from the file is returned by the next read.
    pub async fn read(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if self.inner.buffered() == 0 {
            self.op(move |i| i.fill(max)).await?;
        }
        Ok(self.inner.take(max))
    }

    /// Reads to the end of the file.
    ///
    /// # Errors
    ///
    /// The file's read errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what a dropped call read is returned by the next read.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        self.op(Inner::fill_all).await?;
        Ok(self.inner.take(usize::MAX))
    }

    /// Reads one line, with its `'\n'`; an empty string at end of file (Curio's `readline`).
    ///
    /// # Errors
    ///
    /// The file's read errors; [`InvalidData`](io::ErrorKind::InvalidData) when the line is not
    /// UTF-8 (its bytes stay buffered, for [`read`](Self::read)); an error when the file was
    /// closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what a dropped call read stays buffered for the next read.
    pub async fn read_line(&mut self) -> io::Result<String> {
        let has_line = lock(&self.inner.buf).contains(&b'\n');
        if !has_line {
            self.op(Inner::fill_line).await?;
        }
        let mut b = lock(&self.inner.buf);
        let end = b
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |p| p + 1);
        match std::str::from_utf8(&b[..end]) {
            Ok(s) => {
                let line = s.to_owned();
                b.drain(..end);
                Ok(line)
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// The remaining lines, without their line endings (Curio's `async for line in f`).
    pub fn lines(&mut self) -> Lines<'_> {
        Lines { file: self }
    }

    /// Writes some of `data` and returns how much.
    ///
    /// # Errors
    ///
    /// The file's write errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// A dropped write may still happen.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let data = data.to_vec();
        self.op(move |i| i.with_file(true, |f| f.write(&data)))
            .await
    }

    /// Writes all of `data`.
    ///
    /// # Errors
    ///
    /// The file's write errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// A dropped call may still write all or part of the data.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let data = data.to_vec();
        self.op(move |i| i.with_file(true, |f| f.write_all(&data)))
            .await
    }

    /// Flushes the file (std's `File` does not buffer, so this only reports errors).
    ///
    /// # Errors
    ///
    /// The file's errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.op(|i| i.with_file(false, File::flush)).await
    }

    /// Moves the position, and returns the new one from the start of the file.
    ///
    /// # Errors
    ///
    /// The file's seek errors (a position before the start); an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// A dropped seek may still move the position.
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.op(move |i| i.with_file(true, |f| f.seek(pos))).await
    }

    /// The position from the start of the file.
    ///
    /// # Errors
    ///
    /// The file's errors; an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn tell(&mut self) -> io::Result<u64> {
        self.op(|i| {
            i.with_file(false, |f| {
                let pos = f.stream_position()?;
                Ok(pos - i.buffered() as u64)
            })
        })
        .await
    }

    /// Truncates or extends the file to `size` bytes; the position does not move.
    ///
    /// # Errors
    ///
    /// The file's errors (it must be open for writing); an error when the file was closed.
    ///
    /// # Cancel safety
    ///
    /// A dropped truncate may still happen.
    pub async fn truncate(&mut self, size: u64) -> io::Result<()> {
        self.op(move |i| i.with_file(true, |f| f.set_len(size)))
            .await
    }

    /// Closes the file on the thread pool, after any operation still running on it; later
    /// operations fail. Closing twice is not an error.
    ///
    /// # Errors
    ///
    /// None today (std's `File` ignores the errors of `close`); the `Result` leaves room for a
    /// close that reports them.
    ///
    /// # Cancel safety
    ///
    /// A dropped close still closes the file.
    pub async fn close(&mut self) -> io::Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.op(|i| {
            let file = lock(&i.file).take();
            lock(&i.buf).clear();
            drop(file);
            Ok(())
        })
        .await
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

/// The lines of an [`AsyncFile`]; see [`AsyncFile::lines`].
#[derive(Debug)]
pub struct Lines<'a> {
    file: &'a mut AsyncFile,
}

impl Lines<'_> {
    /// The next line without its `"\n"` (or `"\r\n"`), or `None` at end of file.
    ///
    /// # Errors
    ///
    /// As [`AsyncFile::read_line`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`AsyncFile::read_line`].
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut line = self.file.read_line().await?;
        if line.is_empty() {
            return Ok(None);
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }
}
