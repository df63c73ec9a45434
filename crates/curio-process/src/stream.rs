//! `FileStream`: a pipe, tty or other pollable descriptor, non-blocking and registered with the
//! kernel's reactor (Curio's `FileStream`).
//!
//! A `FileStream` is an `Async` over a descriptor with the flags to restore (`Fd`); its reads try
//! first and clear readiness after a short read, as sockets do, and `AsyncRead`/`AsyncWrite` are
//! implemented on `FileStream` and `&FileStream`, with one waiter slot per direction.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use curio_reactor::{Async, Direction};
use futures_io::{AsyncRead, AsyncWrite};
use rustix::buffer::spare_capacity;
use rustix::fs::OFlags;

/// How much a read asks for at a time.
const CHUNK: usize = 64 * 1024;

/// A pollable descriptor (a pipe, a tty, a character device) as an async stream.
///
/// The descriptor is switched to non-blocking mode and registered with the running kernel's
/// reactor the first time an operation would block; every operation tries the syscall first.
/// It implements `futures_io::{AsyncRead, AsyncWrite}` (also on `&FileStream`), so it works
/// inside curio-net's `SocketStream` for `read_line`, `lines` and `read_exactly`.
/// Two tasks reading (or writing) at once get [`io::ErrorKind::ResourceBusy`], as with sockets.
///
/// `O_NONBLOCK` lives on the open file description, which a duplicated descriptor shares: a
/// `FileStream` made with [`new`](Self::new) remembers the descriptor's flags and restores them
/// when it is dropped or given back with [`into_fd`](Self::into_fd), so a borrowed tty is left
/// as it was found.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod process { pub use curio_process::FileStream; } }
/// use curio::process::FileStream;
///
/// curio::run(async {
///     let (r, w) = rustix::pipe::pipe()?;
///     let (r, w) = (FileStream::new(r)?, FileStream::new(w)?);
///     w.write_all(b"hello").await?;
///     drop(w);
///     assert_eq!(r.read_to_end().await?, b"hello");
///     std::io::Result::Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileStream {
    io: Async<Fd>,
    read_token: Cell<u64>,
    write_token: Cell<u64>,
}

impl fmt::Debug for FileStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStream")
            .field("fd", &self.io.as_fd())
            .finish()
    }
}

impl FileStream {
    /// Wraps `fd`, switching it to non-blocking mode; its original flags come back when the
    /// stream is dropped or [`into_fd`](Self::into_fd) is called.
    ///
    /// # Errors
    ///
    /// When the flags cannot be read or set (for example, `fd` is not open).
    pub fn new(fd: OwnedFd) -> io::Result<FileStream> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        let restore = if flags.contains(OFlags::NONBLOCK) {
            None
        } else {
            rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
            Some(flags)
        };
        Ok(FileStream {
            io: Async::new(Fd {
                fd: Some(fd),
                restore,
            }),
            read_token: Cell::new(0),
            write_token: Cell::new(0),
        })
    }

    /// Wraps the parent's end of a child's pipe, which nobody else shares: made non-blocking,
    /// and not switched back when dropped.
    pub(crate) fn from_pipe(fd: OwnedFd) -> io::Result<FileStream> {
        let mut s = FileStream::new(fd)?;
        s.io.get_mut().restore = None;
        Ok(s)
    }

    /// Deregisters the descriptor and gives it back, with the flags it had before [`new`].
    ///
    /// [`new`]: Self::new
    pub fn into_fd(self) -> OwnedFd {
        let mut inner = self.io.into_inner();
        let fd = inner.fd.take().expect("present until given back");
        if let Some(flags) = inner.restore.take() {
            let _ = rustix::fs::fcntl_setfl(&fd, flags);
        }
        fd
    }

    /// Reads up to `max` bytes; an empty vector means end-of-file (the writer closed).
    ///
    /// # Errors
    ///
    /// `read`'s errors; `ResourceBusy` if another task is already reading.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: bytes are taken from the descriptor only by the poll that returns them.
    pub async fn read(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(max);
        self.io
            .read_with(|fd| {
                buf.clear();
                let n = rustix::io::read(fd, spare_capacity(&mut buf))?;
                self.after_read(n, max);
                Ok(())
            })
            .await?;
        Ok(buf)
    }

    /// Reads into `buf`; 0 means end-of-file.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|fd| self.read_once(fd, buf)).await
    }

    /// Reads until end-of-file.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the bytes read before the future is dropped are lost. Use
    /// curio-net's `SocketStream` over the stream to keep them.
    pub async fn read_to_end(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let before = out.len();
            out.reserve(CHUNK);
            self.io
                .read_with(|fd| {
                    let n = rustix::io::read(fd, spare_capacity(&mut out))?;
                    self.after_read(n, CHUNK);
                    Ok(())
                })
                .await?;
            if out.len() == before {
                return Ok(out);
            }
        }
    }

    /// Writes some of `data` and returns how much.
    ///
    /// # Errors
    ///
    /// `write`'s errors (`BrokenPipe` when the reader has closed); `ResourceBusy` if another task
    /// is already writing.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future has written nothing.
    pub async fn write(&self, data: &[u8]) -> io::Result<usize> {
        self.io
            .write_with(|fd| Ok(rustix::io::write(fd, data)?))
            .await
    }

    /// Writes all of `data`.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future may have written part of `data`.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// A short read drained the descriptor: the next read waits for the next edge.
    fn after_read(&self, n: usize, wanted: usize) {
        if n > 0 && n < wanted {
            self.io.clear_ready(Direction::Read);
        }
    }

    fn read_once(&self, fd: &Fd, buf: &mut [u8]) -> io::Result<usize> {
        let n = rustix::io::read(fd, &mut *buf)?;
        self.after_read(n, buf.len());
        Ok(n)
    }

    /// Polls one read, appending to `out`.
    pub(crate) fn poll_read_vec(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        out.reserve(CHUNK);
        let mut token = self.read_token.get();
        let r = self.io.poll_op(Direction::Read, &mut token, cx, &mut |fd| {
            let n = rustix::io::read(fd, spare_capacity(&mut *out))?;
            self.after_read(n, CHUNK);
            Ok(n)
        });
        self.read_token.set(token);
        r
    }

    /// Gives up the read slot of the poll-based reads (`poll_read_vec`, `AsyncRead`), so another
    /// reader does not find it taken.
    pub(crate) fn release_read(&self) {
        let mut token = self.read_token.get();
        self.io.release(Direction::Read, &mut token);
        self.read_token.set(token);
    }

    /// Appends what can be read right now, without waiting, until end-of-file or `EAGAIN`.
    pub(crate) fn read_available(&self, out: &mut Vec<u8>) {
        loop {
            out.reserve(CHUNK);
            match rustix::io::read(self.io.get_ref(), spare_capacity(&mut *out)) {
                Ok(n) if n > 0 => {}
                Err(rustix::io::Errno::INTR) => {}
                _ => return,
            }
        }
    }

    fn poll_read_slice(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut token = self.read_token.get();
        let r = self.io.poll_op(Direction::Read, &mut token, cx, &mut |fd| {
            self.read_once(fd, buf)
        });
        self.read_token.set(token);
        r
    }

    fn poll_write_slice(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut token = self.write_token.get();
        let r = self
            .io
            .poll_op(Direction::Write, &mut token, cx, &mut |fd| {
                Ok(rustix::io::write(fd, data)?)
            });
        self.write_token.set(token);
        r
    }
}

/// The descriptor, and the flags to put back when it is dropped or given back, if
/// [`FileStream::new`] changed them.
struct Fd {
    fd: Option<OwnedFd>,
    restore: Option<OFlags>,
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until given back").as_fd()
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if let (Some(fd), Some(flags)) = (&self.fd, self.restore) {
            let _ = rustix::fs::fcntl_setfl(fd, flags);
        }
    }
}

impl AsFd for FileStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsyncRead for FileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_slice(cx, buf)
    }
}

impl AsyncRead for &FileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_slice(cx, buf)
    }
}

impl AsyncWrite for FileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_slice(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for &FileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_slice(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
