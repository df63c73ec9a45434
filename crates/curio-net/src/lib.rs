//! Networking for curio-rt: TCP, UDP and Unix sockets with Curio's operations, buffered
//! streams, name resolution, Happy Eyeballs, and servers.
//!
//! Sockets are non-blocking descriptors registered with the running kernel's reactor. Each
//! operation tries the syscall first and waits only if it would block, so a message costs one
//! `recv` and one `send`. Two tasks reading (or writing) the same socket at once get
//! `io::ErrorKind::ResourceBusy`; one reader and one writer is fine.
//! Streams implement `futures_io::{AsyncRead, AsyncWrite}` (also on `&TcpStream`), and
//! [`SocketStream`] adds Curio's buffered, cancel-safe `read_line`, `read_exactly` and friends.
//! [`tcp_server`], [`unix_server`] and [`run_server`] run one task per client in a task group.
//! [`channel`] passes whole messages, bytes or serde values, between programs that authenticate
//! each other with a shared key.
//!
//! # Implementation
//!
//! This crate starts no threads of its own; [`getaddrinfo`] and [`getnameinfo`] run on the
//! kernel's worker pool. Its only `unsafe` is the FFI call of `getnameinfo`.
//!
//! # Examples
//!
//! ```
//! use curio_net::{TcpListener, TcpStream};
//!
//! curio_kernel::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = curio_kernel::spawn(async move {
//!         let (client, _) = listener.accept().await?;
//!         let data = client.recv(100).await?;
//!         client.sendall(&data).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let s = TcpStream::connect(addr).await?;
//!     s.sendall(b"ping").await?;
//!     assert_eq!(s.recv(100).await?, b"ping");
//!     server.join().await.unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(unsafe_code)]

pub mod channel;
mod connect;
mod multicore;
mod resolve;
mod server;
mod socket;
mod stream;
mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
mod udp;
mod unix;

pub use connect::{
    ConnectErrors, HAPPY_EYEBALLS_DELAY, create_connection, happy_eyeballs, interleave,
    open_connection, open_unix_connection,
};
pub use multicore::{Spread, reuse_port_listeners, tcp_server_multi, tcp_server_multi_on};
pub use resolve::{getaddrinfo, gethostname, getnameinfo};
pub use server::{
    ClientOutcome, Listener, ServerOptions, ServerShutdown, run_server, run_server_with,
    tcp_server, tcp_server_with, unix_server,
};
pub use socket::AcceptStream;
pub use stream::{IncompleteRead, Lines, SocketStream};
pub use tcp::{Incoming, TcpListener, TcpStream, tcp_server_socket};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
