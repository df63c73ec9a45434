//! What every curio socket shares: a non-blocking descriptor registered with the kernel's
//! reactor, and Curio's operations on it, each trying the syscall first.
//!
//! `Socket<T>` is the core every stream socket shares: an `Async<T>` plus the waiter tokens of the
//! poll-based `AsyncRead`/`AsyncWrite` impls.
//! The `stream_socket!` macro gives `TcpStream` and `UnixStream` the same methods (`recv`,
//! `recv_into`, `send`, `sendall`, `sendall_counted`, `shutdown`, `as_stream`) and trait impls
//! (`AsyncRead`/`AsyncWrite` on the type and on `&T`, so one task can read while another writes).
//! The `buffer_size_options!` macro gives every socket type the `SO_SNDBUF`/`SO_RCVBUF` accessors.
//! A short stream read clears read readiness, so the next read waits for the next edge instead of
//! making a failing syscall, while the reactor's sticky hang-up bit keeps a close that came with
//! the data visible.

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
    /// The buffer size `recv` allocates next (see [`RecvHint`]).
    recv_hint: Cell<RecvHint>,
}

/// How large a buffer `recv(max)` allocates: sized by what recent reads brought, not by `max`.
///
/// An echo server's `recv(100_000)` used to allocate and free 100 KB per 64-byte message, which
/// cost more instructions than the rest of the message's user-space path; a buffer of a few
/// hundred bytes comes from the allocator's per-thread cache. A read that fills the buffer
/// grows the next one eightfold (more data is waiting, and the readiness is kept, so the next
/// `recv` reads it at once); a short read shrinks it by half at most, so a stream that
/// alternates sizes does not keep reading in small pieces.
#[derive(Clone, Copy, Debug)]
struct RecvHint(u32);

impl RecvHint {
    /// Small enough for the allocator's per-thread cache, large enough for most messages.
    const MIN: u32 = 512;

    fn size(self, max: usize) -> usize {
        (self.0 as usize).min(max)
    }

    /// The hint after a read of `n` bytes into a buffer of `cap`.
    fn after(self, n: usize, cap: usize) -> RecvHint {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n as usize >= cap {
            RecvHint(self.0.saturating_mul(8))
        } else {
            let needed = n.saturating_mul(2).next_power_of_two();
            RecvHint(needed.max(self.0 / 2).max(Self::MIN))
        }
    }
}

impl<T: AsFd> Socket<T> {
    pub(crate) fn new(io: T) -> Socket<T> {
        Socket {
            io: Async::new(io),
            read_token: Cell::new(0),
            write_token: Cell::new(0),
            recv_hint: Cell::new(RecvHint(RecvHint::MIN)),
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
        // Allocated at the first attempt, so a wait holds no buffer.
        let mut buf = Vec::new();
        self.io
            .read_with(|s| {
                if buf.capacity() == 0 {
                    // `with_capacity`, not `reserve_exact`: no growth path for an empty vector.
                    buf = Vec::with_capacity(self.recv_hint.get().size(max));
                }
                buf.clear();
                let cap = buf.capacity();
                let n = if cap <= max {
                    rustix::net::recv(s, spare_capacity(&mut buf), RecvFlags::empty())?.1
                } else {
                    // Vec may round a capacity up; never read more than `max`.
                    buf.resize(max, 0);
                    let n = rustix::net::recv(s, &mut buf[..], RecvFlags::empty())?.0;
                    buf.truncate(n);
                    n
                };
                let cap = cap.min(max);
                self.after_read(n, cap);
                self.recv_hint.set(self.recv_hint.get().after(n, cap));
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
/// `EAGAIN`, like every other operation. Named by [`Incoming`](crate::Incoming) and
/// [`UnixIncoming`](crate::UnixIncoming).
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
        $crate::socket::buffer_size_options!($ty);
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

/// The `SO_SNDBUF` and `SO_RCVBUF` accessors every socket type has, written once.
macro_rules! buffer_size_options {
    ($ty:ident) => {
        impl $ty {
            /// Sets `SO_SNDBUF`, the size in bytes of the kernel's send buffer for this socket.
            ///
            /// The kernel clamps the size to its limits (on Linux `net.core.wmem_max`) and may
            /// round it; Linux doubles it to make room for its bookkeeping, so
            /// [`send_buffer_size`](Self::send_buffer_size) reports the doubled value.
            ///
            /// # Errors
            ///
            /// As `setsockopt`.
            #[doc(alias = "SO_SNDBUF")]
            pub fn set_send_buffer_size(&self, size: usize) -> std::io::Result<()> {
                Ok(rustix::net::sockopt::set_socket_send_buffer_size(
                    self, size,
                )?)
            }

            /// The size in bytes of the kernel's send buffer for this socket (`SO_SNDBUF`).
            ///
            /// # Errors
            ///
            /// As `getsockopt`.
            #[doc(alias = "SO_SNDBUF")]
            pub fn send_buffer_size(&self) -> std::io::Result<usize> {
                Ok(rustix::net::sockopt::socket_send_buffer_size(self)?)
            }

            /// Sets `SO_RCVBUF`, the size in bytes of the kernel's receive buffer for this socket.
            ///
            /// The kernel clamps the size to its limits (on Linux `net.core.rmem_max`) and may
            /// round it; Linux doubles it to make room for its bookkeeping, so
            /// [`recv_buffer_size`](Self::recv_buffer_size) reports the doubled value.
            ///
            /// # Errors
            ///
            /// As `setsockopt`.
            #[doc(alias = "SO_RCVBUF")]
            pub fn set_recv_buffer_size(&self, size: usize) -> std::io::Result<()> {
                Ok(rustix::net::sockopt::set_socket_recv_buffer_size(
                    self, size,
                )?)
            }

            /// The size in bytes of the kernel's receive buffer for this socket (`SO_RCVBUF`).
            ///
            /// # Errors
            ///
            /// As `getsockopt`.
            #[doc(alias = "SO_RCVBUF")]
            pub fn recv_buffer_size(&self) -> std::io::Result<usize> {
                Ok(rustix::net::sockopt::socket_recv_buffer_size(self)?)
            }
        }
    };
}

pub(crate) use buffer_size_options;

#[cfg(test)]
mod tests {
    use super::RecvHint;

    #[test]
    fn recv_hint_grows_on_full_reads_and_shrinks_slowly() {
        let h = RecvHint(RecvHint::MIN);
        assert_eq!(h.size(100_000), 512);
        assert_eq!(h.size(100), 100, "never more than max");
        // Full reads grow it eightfold.
        let h = h.after(512, 512);
        assert_eq!(h.size(100_000), 4096);
        let h = h.after(4096, 4096).after(32768, 32768);
        assert_eq!(h.size(100_000), 100_000);
        // A short read shrinks it by half at most.
        let h = h.after(64, 100_000);
        assert_eq!(h.0, 262_144 / 2);
        // Small messages settle at the minimum.
        let mut h = h;
        for _ in 0..20 {
            h = h.after(64, h.size(100_000));
        }
        assert_eq!(h.0, RecvHint::MIN);
        // A short read of a large message keeps room for twice as much.
        assert_eq!(h.after(3000, 512).0, 4096, "a full read grows eightfold");
        assert_eq!(RecvHint(512).after(300, 512).0, 1024);
        assert_eq!(RecvHint(1024).after(1000, 4096).0, 2048);
    }
}
