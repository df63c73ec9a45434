//! `TcpListener` and `TcpStream`.

use std::fmt;
use std::io;
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use curio_reactor::{Async, Direction};
use rustix::buffer::spare_capacity;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// A TCP socket listening for connections.
pub struct TcpListener {
    io: Async<net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<_> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        ));
    }
    Ok(addrs)
}

impl TcpListener {
    /// Binds a listening socket (with `SO_REUSEADDR`, backlog 128) to the first address that works.
    ///
    /// Names are resolved by the standard library, blocking; pass IP addresses in hot paths.
    ///
    /// # Errors
    ///
    /// When the address cannot be resolved, or every address fails to bind (the last error).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match net::TcpListener::bind(a) {
                Ok(l) => return TcpListener::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    /// Wraps a standard listener, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    pub fn from_std(l: net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener { io: Async::new(l) })
    }

    /// Unwraps the standard listener (still non-blocking).
    pub fn into_std(self) -> net::TcpListener {
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

    /// Waits for a connection and returns the new stream with the peer's address.
    ///
    /// # Errors
    ///
    /// `accept`'s errors (`EMFILE`...); `ResourceBusy` if another task is already accepting here.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection is taken only by the poll that returns it.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self
            .io
            .read_with(|l| {
                rustix::net::acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                    .map_err(io::Error::from)
            })
            .await?;
        let std = net::TcpStream::from(fd);
        let addr = match addr.and_then(|a| SocketAddr::try_from(a).ok()) {
            Some(a) => a,
            None => std.peer_addr()?,
        };
        Ok((TcpStream::from_nonblocking(std), addr))
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// A TCP connection.
///
/// One task may read while another writes; two tasks reading (or two writing) at once get
/// [`io::ErrorKind::ResourceBusy`].
pub struct TcpStream {
    io: Async<net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.io.get_ref().local_addr().ok())
            .field("peer", &self.io.get_ref().peer_addr().ok())
            .finish()
    }
}

impl TcpStream {
    fn from_nonblocking(s: net::TcpStream) -> TcpStream {
        TcpStream { io: Async::new(s) }
    }

    /// Connects to `addr`, trying each resolved address in turn.
    ///
    /// # Errors
    ///
    /// The last connection error, or a resolution error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the half-open socket.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            match TcpStream::connect_addr(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let fd: OwnedFd = rustix::net::socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        let pending = match rustix::net::connect(&fd, &addr) {
            Ok(()) => false,
            Err(rustix::io::Errno::INPROGRESS) => true,
            Err(e) => return Err(e.into()),
        };
        let stream = TcpStream::from_nonblocking(net::TcpStream::from(fd));
        if pending {
            stream.io.writable().await?;
            if let Err(e) = rustix::net::sockopt::socket_error(&stream)? {
                return Err(e.into());
            }
        }
        Ok(stream)
    }

    /// Wraps a standard stream, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    pub fn from_std(s: net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        Ok(TcpStream::from_nonblocking(s))
    }

    /// Unwraps the standard stream (still non-blocking).
    pub fn into_std(self) -> net::TcpStream {
        self.io.into_inner()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
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
    pub async fn recv(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(max);
        let io = &self.io;
        self.io
            .read_with(|s| {
                buf.clear();
                let (_, n) = rustix::net::recv(s, spare_capacity(&mut buf), RecvFlags::empty())?;
                if n > 0 && n < max {
                    // A short read drained the socket: the next read waits for the next edge.
                    io.clear_ready(Direction::Read);
                }
                Ok(())
            })
            .await?;
        Ok(buf)
    }

    /// Receives into `buf` and returns the number of bytes read (0: the peer closed its side).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        let io = &self.io;
        let len = buf.len();
        self.io
            .read_with(|s| {
                let (_, n) = rustix::net::recv(s, &mut *buf, RecvFlags::empty())?;
                if n > 0 && n < len {
                    io.clear_ready(Direction::Read);
                }
                Ok(n)
            })
            .await
    }

    /// Sends some of `data` and returns how much was sent.
    ///
    /// # Errors
    ///
    /// `send`'s errors (`EPIPE` comes back as `BrokenPipe`; no `SIGPIPE` is raised);
    /// `ResourceBusy` if another task is already writing.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: bytes are sent only by the poll that returns their count.
    pub async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.io
            .write_with(|s| Ok(rustix::net::send(s, data, SendFlags::NOSIGNAL)?))
            .await
    }

    /// Sends all of `data`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future may have sent part of `data`.
    pub async fn sendall(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.send(data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Shuts down the read side, the write side, or both.
    ///
    /// # Errors
    ///
    /// As `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}
