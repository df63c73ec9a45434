//! `UdpSocket`.

use std::fmt;
use std::io;
use std::net::{self, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};

use curio_reactor::Async;

/// A UDP socket.
pub struct UdpSocket {
    io: Async<net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

crate::socket::buffer_size_options!(UdpSocket);

impl UdpSocket {
    /// Binds a UDP socket to `addr`.
    ///
    /// # Errors
    ///
    /// When the address cannot be resolved or bound.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        UdpSocket::from_std(net::UdpSocket::bind(addr)?)
    }

    /// Wraps a standard socket, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    pub fn from_std(s: net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket { io: Async::new(s) })
    }

    /// Unwraps the standard socket (still non-blocking).
    pub fn into_std(self) -> net::UdpSocket {
        self.io.into_inner()
    }

    /// Sets the default peer for `send` and `recv`.
    ///
    /// # Errors
    ///
    /// As `connect`.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.io.get_ref().connect(addr)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// As `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// As `send`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram is sent whole by the poll that returns, or not at all.
    pub async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(data)).await
    }

    /// Sends a datagram to `addr`.
    ///
    /// # Errors
    ///
    /// As `sendto`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send_to(&self, data: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.io.write_with(|s| s.send_to(data, addr)).await
    }

    /// Receives a datagram from the connected peer into `buf`.
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

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}
