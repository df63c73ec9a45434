//! Networking for curio-rt: TCP sockets with Curio's operations, and `tcp_server`.
//!
//! [`TcpListener`] and [`TcpStream`] are non-blocking sockets registered with the running kernel's
//! reactor. Each operation tries the syscall first and waits only if it would block, so a message
//! costs one `recv` and one `send`.
//! [`tcp_server`] and [`run_server`] run one task per client.
//!
//! # Implementation
//!
//! This crate starts no threads and uses no `unsafe`; syscalls go through `rustix`.
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
#![forbid(unsafe_code)]

mod server;
mod tcp;

pub use server::{ClientOutcome, run_server, tcp_server};
pub use tcp::{TcpListener, TcpStream};
