//! `CurioIo`: hyper's `Read` and `Write` over any of curio's streams.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;

/// The most a single read copies through the scratch buffer.
const SCRATCH_MAX: usize = 64 * 1024;

/// One of curio's streams as hyper's [`Read`](hyper::rt::Read) and [`Write`](hyper::rt::Write).
///
/// `S` is any `futures_io` stream: [`TcpStream`](curio_net::TcpStream),
/// [`UnixStream`](curio_net::UnixStream), `TlsStream` (feature `tls`), or a type of yours.
///
/// Reads go through a scratch buffer that the wrapper keeps and hands to hyper with
/// `ReadBufCursor::put_slice`, the cursor's safe API: hyper's buffer may be uninitialised, and
/// filling it in place would take `unsafe`, which the workspace denies. The copy costs one
/// `memcpy` per read; the `http_hello` benchmark row measures the whole path.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } pub mod hyper { pub use curio_hyper::*; } }
/// use curio::hyper::{CurioIo, hyper};
/// use curio::net::TcpStream;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let stream = TcpStream::connect("127.0.0.1:8080").await?;
/// let (sender, connection) =
///     hyper::client::conn::http1::handshake::<_, String>(CurioIo::new(stream)).await?;
/// curio::spawn(connection);
/// # drop(sender);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CurioIo<S> {
    inner: S,
    scratch: Vec<u8>,
}

impl<S> CurioIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> CurioIo<S> {
        CurioIo {
            inner,
            scratch: Vec::new(),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably; what it reads bypasses hyper.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for CurioIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(SCRATCH_MAX);
        if want == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.scratch.len() < want {
            this.scratch.resize(want, 0);
        }
        match Pin::new(&mut this.inner).poll_read(cx, &mut this.scratch[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for CurioIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
