//! `TcpListener` and `TcpStream`.
//!
//! Syscalls go through `rustix`: `recv`, `send` with `MSG_NOSIGNAL`, `accept4` with `SOCK_NONBLOCK
//! | SOCK_CLOEXEC`, and `connect` with `EINPROGRESS`, then a writability wait and `SO_ERROR`.
//! `tcp_server_socket` sets `SO_REUSEADDR` and `SO_REUSEPORT` before `bind` and `listen`;
//! `incoming()` is the accept loop as a `Stream`.
//! Datagram sockets (`udp.rs`, `unix.rs`) use the standard library's non-blocking calls inside
//! `read_with` and `write_with`.

use std::fmt;
use std::io;
use std::net::{self, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use curio_reactor::Async;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::socket::{AcceptStream, Socket, new_socket, stream_socket};

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

fn resolve_now(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<_> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        ));
    }
    Ok(addrs)
}

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

/// Makes a listening TCP socket (Curio's `tcp_server_socket`): `SO_REUSEADDR` and
/// `SO_REUSEPORT` as asked, bound to `addr`, listening with `backlog`.
///
/// # Errors
///
/// When the socket cannot be made, bound (`AddrInUse`, `PermissionDenied` for a privileged port)
/// or put in listening mode.
///
/// # Examples
///
/// ```
/// # mod curio { pub mod net { pub use curio_net::*; } }
/// let l = curio::net::tcp_server_socket("127.0.0.1:0".parse().unwrap(), 128, true, false)?;
/// assert!(l.local_addr()?.port() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn tcp_server_socket(
    addr: SocketAddr,
    backlog: u32,
    reuse_address: bool,
    reuse_port: bool,
) -> io::Result<TcpListener> {
    let fd = new_socket(family(&addr), SocketType::STREAM)?;
    if reuse_address {
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    if reuse_port {
        rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener {
        io: Async::new(net::TcpListener::from(fd)),
    })
}

impl TcpListener {
    /// Binds a listening socket (with `SO_REUSEADDR`, backlog 128) to the first address that works.
    ///
    /// Names are resolved by the standard library, blocking; use
    /// [`getaddrinfo`](crate::getaddrinfo) first to resolve on the thread pool.
    ///
    /// # Errors
    ///
    /// When the address cannot be resolved, or every address fails to bind (the last error).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve_now(addr)? {
            match tcp_server_socket(a, 128, true, false) {
                Ok(l) => return Ok(l),
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

    fn accept_once(
        l: &net::TcpListener,
    ) -> io::Result<(OwnedFd, Option<rustix::net::SocketAddrAny>)> {
        Ok(rustix::net::acceptfrom_with(
            l,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        )?)
    }

    fn finish_accept(
        (fd, addr): (OwnedFd, Option<rustix::net::SocketAddrAny>),
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let std = net::TcpStream::from(fd);
        let addr = match addr.and_then(|a| SocketAddr::try_from(a).ok()) {
            Some(a) => a,
            None => std.peer_addr()?,
        };
        Ok((TcpStream::from_nonblocking(std), addr))
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
        Self::finish_accept(self.io.read_with(Self::accept_once).await?)
    }

    /// The accepted connections as a `Stream` (Curio's `async for client in sock`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection is taken only by the poll that returns it.
    pub fn incoming(&self) -> Incoming<'_> {
        AcceptStream {
            io: &self.io,
            token: 0,
            accept: |l| TcpListener::accept_once(l).and_then(TcpListener::finish_accept),
        }
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// The `Stream` of [`TcpListener::incoming`].
pub type Incoming<'a> = AcceptStream<'a, net::TcpListener, (TcpStream, SocketAddr)>;

/// A TCP connection.
///
/// One task may read while another writes; two tasks reading (or two writing) at once get
/// [`io::ErrorKind::ResourceBusy`].
///
/// # A reader and a writer on one connection
///
/// Every operation takes `&self`, and `AsyncRead`/`AsyncWrite` are implemented for `&TcpStream`
/// too, so a connection is split by sharing it: put it in an `Rc` (tasks run on one thread) and
/// give a clone to each task.
/// A task that wants buffered reads wraps the shared reference, `SocketStream::new(&*rc)`, and
/// keeps the stream itself free for the writer.
/// The connection closes when the last `Rc` is dropped; a half-close is
/// [`shutdown(Shutdown::Write)`](Self::shutdown).
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } }
/// use std::net::Shutdown;
/// use std::rc::Rc;
///
/// use curio::net::{SocketStream, TcpListener, TcpStream};
///
/// curio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     // An echo peer, so the example is self-contained.
///     let peer = curio::spawn(async move {
///         let (client, _) = listener.accept().await?;
///         let mut client = client.as_stream();
///         loop {
///             let line = client.read_line(1024).await?;
///             if line.is_empty() {
///                 break;
///             }
///             client.write(&line).await?;
///         }
///         std::io::Result::Ok(())
///     });
///
///     let conn = Rc::new(TcpStream::connect(addr).await?);
///     let writer = curio::spawn({
///         let conn = Rc::clone(&conn);
///         async move {
///             for word in ["hello", "world"] {
///                 conn.sendall(format!("{word}\n").as_bytes()).await?;
///             }
///             conn.shutdown(Shutdown::Write)
///         }
///     });
///     let reader = curio::spawn({
///         let conn = Rc::clone(&conn);
///         async move {
///             let mut lines = SocketStream::new(&*conn);
///             lines.read_lines().await
///         }
///     });
///
///     let lines = reader.join().await.unwrap()?;
///     assert_eq!(lines, [b"hello\n".to_vec(), b"world\n".to_vec()]);
///     writer.join().await.unwrap()?;
///     peer.join().await.unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Socket options
///
/// The common options have methods: [`set_nodelay`](Self::set_nodelay) (`TCP_NODELAY`),
/// [`set_keepalive`](Self::set_keepalive) (`SO_KEEPALIVE`), [`set_ttl`](Self::set_ttl),
/// [`set_send_buffer_size`](Self::set_send_buffer_size) (`SO_SNDBUF`) and
/// [`set_recv_buffer_size`](Self::set_recv_buffer_size) (`SO_RCVBUF`), each with a getter.
/// For any other option, every curio socket is [`AsFd`]: pass the socket (or `as_fd()`) to
/// `rustix::net::sockopt`, or to `socket2::SockRef::from(&stream)`.
/// Options that must be set before `connect` or `listen` go on a standard or `socket2` socket
/// that is then wrapped with [`from_std`](Self::from_std).
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// use std::time::Duration;
///
/// use curio::net::{TcpListener, TcpStream};
///
/// curio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let s = TcpStream::connect(listener.local_addr()?).await?;
///     s.set_nodelay(true)?;
///     s.set_keepalive(true)?;
///     s.set_send_buffer_size(256 * 1024)?;
///     assert!(s.nodelay()?);
///     // Any other option, here with rustix (`socket2::SockRef::from(&s)` works too).
///     rustix::net::sockopt::set_tcp_keepidle(&s, Duration::from_secs(60))?;
///     assert_eq!(rustix::net::sockopt::tcp_keepidle(&s)?, Duration::from_secs(60));
///     std::io::Result::Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    s: Socket<net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

stream_socket!(TcpStream, net::TcpStream);

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn (for Happy Eyeballs over names,
    /// see [`open_connection`](crate::open_connection)).
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
        for a in resolve_now(addr)? {
            match TcpStream::connect_from(a, None).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    /// Connects to `addr` from `source` if given (Curio's `create_connection`).
    ///
    /// # Errors
    ///
    /// When binding `source` or connecting fails.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the half-open socket.
    pub async fn connect_from(
        addr: SocketAddr,
        source: Option<SocketAddr>,
    ) -> io::Result<TcpStream> {
        let fd = new_socket(family(&addr), SocketType::STREAM)?;
        if let Some(src) = source {
            rustix::net::bind(&fd, &src)?;
        }
        let pending = match rustix::net::connect(&fd, &addr) {
            Ok(()) => false,
            Err(rustix::io::Errno::INPROGRESS) => true,
            Err(e) => return Err(e.into()),
        };
        let stream = TcpStream::from_nonblocking(net::TcpStream::from(fd));
        if pending {
            stream.s.io.writable().await?;
            if let Err(e) = rustix::net::sockopt::socket_error(&stream)? {
                return Err(e.into());
            }
        }
        Ok(stream)
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

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.s.get_ref().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.s.get_ref().nodelay()
    }

    /// Sets `SO_KEEPALIVE`.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        Ok(rustix::net::sockopt::set_socket_keepalive(self, on)?)
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(rustix::net::sockopt::socket_keepalive(self)?)
    }

    /// Sets the time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.s.get_ref().set_ttl(ttl)
    }

    /// The time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.s.get_ref().ttl()
    }
}
