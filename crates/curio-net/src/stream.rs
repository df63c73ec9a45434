//! `SocketStream`: buffered, line-aware reads and whole writes over a stream socket (Curio's
//! `SocketStream`, from `as_stream()`).
//!
//! Its read buffer is initialized storage with a start and an end, zeroed only when it grows; what
//! a read took from the socket stays there until a call returns it, so a cancelled or timed-out
//! read loses nothing.
//! `read_exactly` at end-of-file returns an `IncompleteRead` with the partial bytes inside an
//! `io::Error`; `read_line` honours `max_len`; `bytes_written` tells how much of a cancelled write
//! went out.
//! It works over any `AsyncRead + AsyncWrite + Unpin`: sockets, `FileStream`s and TLS streams.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// How much a read asks the socket for at a time.
const CHUNK: usize = 64 * 1024;

/// A read that reached end-of-file before the bytes it needed: what it got is here.
/// It comes inside an `io::Error` of kind `UnexpectedEof` (`err.get_ref()` and downcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteRead {
    /// The bytes read before end-of-file.
    pub partial: Vec<u8>,
    /// How many bytes were wanted.
    pub expected: usize,
}

impl fmt::Display for IncompleteRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "end of file after {} of {} bytes",
            self.partial.len(),
            self.expected
        )
    }
}

impl std::error::Error for IncompleteRead {}

/// A buffered stream over a socket (or any `AsyncRead + AsyncWrite`, such as a TLS stream).
///
/// What a read has taken from the socket stays in the stream's buffer until a call returns it,
/// so a read that is cancelled or times out loses nothing: the next read returns it.
/// A write that is cancelled leaves the number of bytes it sent in
/// [`bytes_written`](Self::bytes_written).
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// use curio::net::UnixStream;
///
/// curio::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let mut a = a.as_stream();
///     let mut b = b.as_stream();
///     a.write(b"line 1\nline 2\n").await.unwrap();
///     a.close().await.unwrap();
///     assert_eq!(b.read_line(100).await.unwrap(), b"line 1\n");
///     assert_eq!(b.read_lines().await.unwrap(), [b"line 2\n".to_vec()]);
/// });
/// ```
pub struct SocketStream<S> {
    inner: S,
    /// Initialized storage; `buf[pos..end]` is read but not yet returned. It is zeroed only when
    /// it grows, not on every read.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    written: usize,
}

impl<S> fmt::Debug for SocketStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("buffered", &(self.end - self.pos))
            .field("eof", &self.eof)
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SocketStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> SocketStream<S> {
        SocketStream {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            written: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the stream, with the bytes read but not yet returned.
    pub fn into_inner(self) -> (S, Vec<u8>) {
        let rest = self.buf[self.pos..self.end].to_vec();
        (self.inner, rest)
    }

    /// Bytes read from the socket and not yet returned.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Bytes sent by the last [`write`](Self::write) or [`write_lines`](Self::write_lines) so far,
    /// also after it was cancelled or timed out (Curio's `bytes_written`).
    pub fn bytes_written(&self) -> usize {
        self.written
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        out
    }

    /// Reads one chunk from the socket into the buffer; `Ok(0)` at end-of-file.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.eof {
            return Poll::Ready(Ok(0));
        }
        if self.buf.len() - self.end < CHUNK / 4 {
            if self.pos > 0 {
                // Move the unreturned bytes to the front, making room without growing.
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.buf.len() - self.end < CHUNK / 4 {
                let len = (self.buf.len() * 2).max(CHUNK);
                self.buf.resize(len, 0);
            }
        }
        let end = self.end;
        match Pin::new(&mut self.inner).poll_read(cx, &mut self.buf[end..]) {
            Poll::Ready(Ok(n)) => {
                self.end += n;
                if n == 0 {
                    self.eof = true;
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// A read served from the buffer makes no system call and never suspends, so it spends the
    /// cooperative budget itself: a client with thousands of buffered lines yields after a
    /// budget's worth, and cannot keep the other tasks waiting (nothing is taken first, so this
    /// is cancel safe).
    async fn coop(&self) {
        std::future::poll_fn(curio_core::poll_budget).await
    }

    /// Reads up to `max` bytes: what is buffered, or else one read from the socket. An empty
    /// vector means end-of-file.
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: data stays buffered until returned.
    pub async fn read(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buffered().is_empty() {
            self.fill().await?;
        } else {
            self.coop().await;
        }
        let n = self.buffered().len().min(max);
        Ok(self.take(n))
    }

    /// Reads until end-of-file (Curio's `readall`).
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what was read stays buffered and a later call returns it.
    pub async fn read_all(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? > 0 {}
        let n = self.buffered().len();
        Ok(self.take(n))
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` carrying an [`IncompleteRead`] with the bytes read when the stream ends
    /// first; the socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what was read stays buffered.
    pub async fn read_exactly(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if self.buffered().len() >= n {
            self.coop().await;
        }
        while self.buffered().len() < n {
            if self.fill().await? == 0 {
                let got = self.buffered().len();
                let partial = self.take(got);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    IncompleteRead {
                        partial,
                        expected: n,
                    },
                ));
            }
        }
        Ok(self.take(n))
    }

    fn line_end(&self, max_len: usize) -> Option<usize> {
        let b = self.buffered();
        let limit = b.len().min(max_len);
        b[..limit].iter().position(|&c| c == b'\n').map(|i| i + 1)
    }

    fn poll_line(&mut self, cx: &mut Context<'_>, max_len: usize) -> Poll<io::Result<Vec<u8>>> {
        // A line this poll read from the socket was paid for by the read.
        let mut filled = false;
        loop {
            if let Some(end) = self.line_end(max_len) {
                // Served from the buffer alone: spend the budget (see `coop`).
                if !filled {
                    std::task::ready!(curio_core::poll_budget(cx));
                }
                return Poll::Ready(Ok(self.take(end)));
            }
            if self.buffered().len() >= max_len {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line longer than {max_len} bytes"),
                )));
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    let n = self.buffered().len();
                    return Poll::Ready(Ok(self.take(n)));
                }
                Poll::Ready(Ok(_)) => filled = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads one line, with its `\n`; at end-of-file, what is left (empty at the very end).
    /// Unlike Curio's, it honours `max_len`.
    ///
    /// # Errors
    ///
    /// `InvalidData` when no newline comes within `max_len` bytes (the bytes stay buffered); the
    /// socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a partial line stays buffered.
    pub async fn read_line(&mut self, max_len: usize) -> io::Result<Vec<u8>> {
        std::future::poll_fn(|cx| self.poll_line(cx, max_len)).await
    }

    /// Reads every line until end-of-file (Curio's `readlines`).
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is taken from the buffer until end-of-file, so a cancelled call loses
    /// no line.
    pub async fn read_lines(&mut self) -> io::Result<Vec<Vec<u8>>> {
        while self.fill().await? > 0 {}
        let mut lines = Vec::new();
        loop {
            let line = match self.line_end(usize::MAX) {
                Some(end) => self.take(end),
                None => {
                    let n = self.buffered().len();
                    self.take(n)
                }
            };
            if line.is_empty() {
                return Ok(lines);
            }
            lines.push(line);
        }
    }

    /// The lines of the stream as a `Stream`, each at most `max_len` bytes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a partial line stays buffered between polls and after the stream is dropped.
    pub fn lines(&mut self, max_len: usize) -> Lines<'_, S> {
        Lines {
            stream: self,
            max_len,
            done: false,
        }
    }

    /// Writes all of `data` (Curio's `write`), and returns its length.
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// After a drop, [`bytes_written`](Self::bytes_written) tells how much of `data` was sent.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written = 0;
        self.write_more(data).await?;
        Ok(data.len())
    }

    async fn write_more(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n =
                std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_write(cx, data)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes every line in turn (Curio's `writelines`).
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// After a drop, [`bytes_written`](Self::bytes_written) tells how many bytes were sent.
    pub async fn write_lines<I>(&mut self, lines: I) -> io::Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.written = 0;
        for line in lines {
            self.write_more(line.as_ref()).await?;
        }
        Ok(())
    }

    /// Flushes and shuts down the write side (the peer reads end-of-file).
    ///
    /// # Errors
    ///
    /// The socket's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn close(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_flush(cx)).await?;
        std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_close(cx)).await
    }
}

/// The `Stream` of [`SocketStream::lines`].
#[must_use = "streams do nothing unless polled"]
pub struct Lines<'a, S> {
    stream: &'a mut SocketStream<S>,
    max_len: usize,
    done: bool,
}

impl<S> fmt::Debug for Lines<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines").field("done", &self.done).finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for Lines<'_, S> {
    type Item = io::Result<Vec<u8>>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.stream.poll_line(cx, this.max_len) {
            Poll::Ready(Ok(line)) if line.is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}
