//! `UnixListener`, `UnixStream` and `UnixDatagram`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

use curio_reactor::Async;

use std::time::Duration;

use crate::socket::{AcceptStream, Socket, new_socket, stream_socket};

/// A Unix-domain socket listening for connections.
pub struct UnixListener {
    io: Async<net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

impl UnixListener {
    /// Binds a listening socket to `path`.
    ///
    /// # Errors
    ///
    /// When `path` exists or cannot be created.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_std(net::UnixListener::bind(path)?)
    }

    /// Wraps a standard listener, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    pub fn from_std(l: net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        Ok(UnixListener { io: Async::new(l) })
    }

    /// Unwraps the standard listener (still non-blocking).
    pub fn into_std(self) -> net::UnixListener {
        self.io.into_inner()
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    fn accept_once(l: &net::UnixListener) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = l.accept()?;
        s.set_nonblocking(true)?;
        Ok((UnixStream::from_nonblocking(s), addr))
    }

    /// Waits for a connection.
    ///
    /// # Errors
    ///
    /// `accept`'s errors; `ResourceBusy` if another task is already accepting here.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        self.io.read_with(Self::accept_once).await
    }

    /// The accepted connections as a `Stream`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection is taken only by the poll that returns it.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        AcceptStream {
            io: &self.io,
            token: 0,
            accept: UnixListener::accept_once,
        }
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// The `Stream` of [`UnixListener::incoming`].
pub type UnixIncoming<'a> = AcceptStream<'a, net::UnixListener, (UnixStream, SocketAddr)>;

/// A Unix-domain stream connection.
pub struct UnixStream {
    s: Socket<net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream").finish()
    }
}

stream_socket!(UnixStream, net::UnixStream);

impl UnixStream {
    /// Connects to the socket at `path` (Curio's `open_unix_connection`).
    ///
    /// # Errors
    ///
    /// When nothing listens there.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future closes the socket.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = rustix::net::SocketAddrUnix::new(path.as_ref())?;
        let fd = new_socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
        )?;
        // A non-blocking Unix-domain connect completes or fails at once, except when the
        // listener's queue is full (EAGAIN): then try again after a short, growing pause, so
        // the kernel thread never blocks in the system call.
        let mut pause = Duration::from_millis(1);
        loop {
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => break,
                Err(rustix::io::Errno::AGAIN) => {
                    curio_kernel::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(rustix::io::Errno::INPROGRESS) => {
                    let s = UnixStream::from_nonblocking(net::UnixStream::from(fd));
                    s.s.io.writable().await?;
                    if let Err(e) = rustix::net::sockopt::socket_error(&s)? {
                        return Err(e.into());
                    }
                    return Ok(s);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(UnixStream::from_nonblocking(net::UnixStream::from(fd)))
    }

    /// A connected pair.
    ///
    /// # Errors
    ///
    /// When the descriptors cannot be made.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_ref().peer_addr()
    }
}

/// A Unix-domain datagram socket.
pub struct UnixDatagram {
    io: Async<net::UnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram").finish()
    }
}

crate::socket::buffer_size_options!(UnixDatagram);

impl UnixDatagram {
    /// Binds a datagram socket to `path`.
    ///
    /// # Errors
    ///
    /// When `path` exists or cannot be created.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind(path)?)
    }

    /// An unbound datagram socket.
    ///
    /// # Errors
    ///
    /// When the descriptor cannot be made.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    ///
    /// # Errors
    ///
    /// When the descriptors cannot be made.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a standard socket, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    pub fn from_std(s: net::UnixDatagram) -> io::Result<UnixDatagram> {
        s.set_nonblocking(true)?;
        Ok(UnixDatagram { io: Async::new(s) })
    }

    /// Unwraps the standard socket (still non-blocking).
    pub fn into_std(self) -> net::UnixDatagram {
        self.io.into_inner()
    }

    /// Connects to the socket at `path`, the default for `send` and `recv`.
    ///
    /// # Errors
    ///
    /// As `connect`.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// As `send`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the datagram is sent whole by the poll that returns, or not at all.
    pub async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(data)).await
    }

    /// Sends a datagram to `path`.
    ///
    /// # Errors
    ///
    /// As `sendto`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send_to(&self, data: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write_with(|s| s.send_to(data, path)).await
    }

    /// Receives a datagram into `buf`.
    ///
    /// # Errors
    ///
    /// As `recv`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf)).await
    }

    /// Receives a datagram into `buf`, with the sender's address.
    ///
    /// # Errors
    ///
    /// As `recvfrom`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf)).await
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}
