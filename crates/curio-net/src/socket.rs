//! What every curio socket shares: a non-blocking descriptor registered with the kernel's
//! reactor, and Curio's operations on it, each trying the syscall first.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll};

use curio_reactor::{Async, Direction};
use rustix::buffer::spare_capacity;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// A new non-blocking, close-on-exec socket.
pub(crate) fn new_socket(family: AddressFamily, kind: SocketType) -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        family,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?)
}

/// A registered stream socket with Curio's operations.
///
/// `read_token` and `write_token` are the waiter slots of the poll-based `AsyncRead` and
/// `AsyncWrite` impls, which have no future of their own to keep them in.
pub(crate) struct Socket<T: AsFd> {
    pub(crate) io: Async<T>,
    read_token: Cell<u64>,
    write_token: Cell<u64>,
}

impl<T: AsFd> Socket<T> {
    pub(crate) fn new(io: T) -> Socket<T> {
        Socket {
            io: Async::new(io),
            read_token: Cell::new(0),
            write_token: Cell::new(0),
        }
    }

    pub(crate) fn get_ref(&self) -> &T {
        self.io.get_ref()
    }

    pub(crate) fn into_inner(self) -> T {
        self.io.into_inner()
    }

    /// After a read of `n` of `wanted` bytes: a short read drained the stream, so the next
    /// read waits for the next edge instead of making a syscall that would fail.
    fn after_read(&self, n: usize, wanted: usize) {
        if n > 0 && n < wanted {
            self.io.clear_ready(Direction::Read);
        }
    }

    /// One `recv` into `buf`.
    fn recv_once(&self, s: &T, buf: &mut [u8]) -> io::Result<usize> {
        let (_, n) = rustix::net::recv(s, &mut *buf, RecvFlags::empty())?;
        self.after_read(n, buf.len());
        Ok(n)
    }

    pub(crate) async fn recv(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(max);
        self.io
            .read_with(|s| {
                buf.clear();
                let (_, n) = rustix::net::recv(s, spare_capacity(&mut buf), RecvFlags::empty())?;
                self.after_read(n, max);
                Ok(())
            })
            .await?;
        Ok(buf)
    }

    pub(crate) async fn recv_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| self.recv_once(s, buf)).await
    }

    pub(crate) async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.io
            .write_with(|s| Ok(rustix::net::send(s, data, SendFlags::NOSIGNAL)?))
            .await
    }

    pub(crate) async fn sendall(&self, mut data: &[u8], sent: &Cell<usize>) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.send(data).await?;
            sent.set(sent.get() + n);
            data = &data[n..];
        }
        Ok(())
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut token = self.read_token.get();
        let r = self.io.poll_op(Direction::Read, &mut token, cx, &mut |s| {
            self.recv_once(s, buf)
        });
        self.read_token.set(token);
        r
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut token = self.write_token.get();
        let r = self.io.poll_op(Direction::Write, &mut token, cx, &mut |s| {
            Ok(rustix::net::send(s, data, SendFlags::NOSIGNAL)?)
        });
        self.write_token.set(token);
        r
    }
}

impl<T: AsFd> AsFd for Socket<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// An accept loop as a `Stream`: each item is one `accept`, tried first and waited for on
/// `EAGAIN`, like every other operation. Named by [`crate::Incoming`] and [`crate::UnixIncoming`].
#[must_use = "streams do nothing unless polled"]
pub struct AcceptStream<'a, T: AsFd, R> {
    pub(crate) io: &'a Async<T>,
    pub(crate) token: u64,
    pub(crate) accept: fn(&T) -> io::Result<R>,
}

impl<T: AsFd, R> std::fmt::Debug for AcceptStream<'_, T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptStream").finish()
    }
}

impl<T: AsFd, R> Unpin for AcceptStream<'_, T, R> {}

impl<T: AsFd, R> futures_core::Stream for AcceptStream<'_, T, R> {
    type Item = io::Result<R>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<R>>> {
        let this = self.get_mut();
        let mut accept = this.accept;
        this.io
            .poll_op(Direction::Read, &mut this.token, cx, &mut accept)
            .map(Some)
    }
}

impl<T: AsFd, R> Drop for AcceptStream<'_, T, R> {
    fn drop(&mut self) {
        self.io.release(Direction::Read, &mut self.token);
    }
}

/// The methods and trait impls that TCP and Unix streams share, written once.
macro_rules! stream_socket {
    ($ty:ident, $std:ty) => {
        impl $ty {
            pub(crate) fn from_nonblocking(s: $std) -> $ty {
                $ty {
                    s: $crate::socket::Socket::new(s),
                }
            }

            /// Wraps a standard stream, switching it to non-blocking mode.
            ///
            /// # Errors
            ///
            /// When the mode cannot be set.
            pub fn from_std(s: $std) -> std::io::Result<$ty> {
                s.set_nonblocking(true)?;
                Ok($ty::from_nonblocking(s))
            }

            /// Unwraps the standard stream (still non-blocking).
            pub fn into_std(self) -> $std {
                self.s.into_inner()
            }

            /// Receives up to `max` bytes; an empty vector means the peer closed its side.
            ///
            /// # Errors
            ///
            /// `recv`'s errors; `ResourceBusy` if another task is already reading.
            ///
            /// # Cancel safety
            ///
            /// Cancel safe: bytes are taken from the socket only by the poll that returns them.
            pub async fn recv(&self, max: usize) -> std::io::Result<Vec<u8>> {
                self.s.recv(max).await
            }

            /// Receives into `buf` and returns the number of bytes read (0: the peer closed its
            /// side).
            ///
            /// # Errors
            ///
            /// As [`recv`](Self::recv).
            ///
            /// # Cancel safety
            ///
            /// Cancel safe.
            pub async fn recv_into(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.s.recv_into(buf).await
            }

            /// Sends some of `data` and returns how much was sent.
            ///
            /// # Errors
            ///
            /// `send`'s errors (`EPIPE` is `BrokenPipe`; no `SIGPIPE` is raised);
            /// `ResourceBusy` if another task is already writing.
            ///
            /// # Cancel safety
            ///
            /// Cancel safe: bytes are sent only by the poll that returns their count.
            pub async fn send(&self, data: &[u8]) -> std::io::Result<usize> {
                self.s.send(data).await
            }

            /// Sends all of `data`.
            ///
            /// # Errors
            ///
            /// As [`send`](Self::send).
            ///
            /// # Cancel safety
            ///
            /// Not cancel safe: a dropped future may have sent part of `data`; use
            /// [`sendall_counted`](Self::sendall_counted) to know how much.
            pub async fn sendall(&self, data: &[u8]) -> std::io::Result<()> {
                self.s.sendall(data, &std::cell::Cell::new(0)).await
            }

            /// Sends all of `data`, adding to `sent` as bytes go out, so the count survives a
            /// cancellation or a timeout (Curio's `bytes_sent`).
            ///
            /// # Errors
            ///
            /// As [`send`](Self::send).
            ///
            /// # Cancel safety
            ///
            /// After a drop, `sent` tells how many bytes were sent.
            pub async fn sendall_counted(
                &self,
                data: &[u8],
                sent: &std::cell::Cell<usize>,
            ) -> std::io::Result<()> {
                self.s.sendall(data, sent).await
            }

            /// Shuts down the read side, the write side, or both.
            ///
            /// # Errors
            ///
            /// As `shutdown`.
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.s.get_ref().shutdown(how)
            }

            /// Wraps the stream in a buffered [`SocketStream`](crate::SocketStream) (Curio's
            /// `as_stream()`).
            pub fn as_stream(self) -> $crate::SocketStream<$ty> {
                $crate::SocketStream::new(self)
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.s.as_fd()
            }
        }

        $crate::socket::async_io_impls!($ty);
        $crate::socket::async_io_impls!(&$ty);
    };
}

pub(crate) use stream_socket;

/// `AsyncRead` and `AsyncWrite` for a stream type, or for a shared reference to one.
macro_rules! async_io_impls {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.s.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.s.poll_write(cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.s.get_ref().shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

pub(crate) use async_io_impls;
