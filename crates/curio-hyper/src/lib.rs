//! HTTP/1 and HTTP/2 with hyper on curio-rt: hyper's runtime traits for curio's streams, kernel
//! and clock.
//!
//! [hyper](https://hyper.rs) 1.x is runtime-neutral: it speaks HTTP over any type with its
//! [`Read`](hyper::rt::Read) and [`Write`](hyper::rt::Write) traits, spawns its background
//! tasks through an [`Executor`](hyper::rt::Executor), and waits through a
//! [`Timer`](hyper::rt::Timer). This crate implements them on curio-rt:
//!
//! - [`CurioIo<S>`] wraps curio's `TcpStream`, `UnixStream` and `TlsStream` (any `futures_io`
//!   stream) as hyper's `Read` and `Write`;
//! - [`CurioExecutor`] spawns on the running kernel; the futures need not be `Send`, so
//!   services may hold `Rc`s and kernel-local primitives, over HTTP/2 too;
//! - [`CurioTimer`] sleeps on the kernel's timer queue, and its `now()` is `curio::clock()`, so
//!   a virtual clock drives hyper's header-read and keep-alive timeouts;
//! - [`Http`] holds hyper's HTTP/1 and HTTP/2 server settings with those plugged in, and serves
//!   one connection ([`Http::serve_http1`], [`Http::serve_http2`], and [`Http::serve_tls`],
//!   which picks the protocol by ALPN);
//! - [`http_server`] and [`https_server`] run a whole server on `curio_net::run_server_with`:
//!   one task per connection in a task group, and graceful shutdown through
//!   `curio_net::ServerShutdown`, which lets each connection answer its request in flight.
//!
//! Clients use hyper's own `client::conn` handshakes with [`CurioIo`] (and [`CurioExecutor`]
//! and [`CurioTimer`] for HTTP/2), spawning the connection future as a task; the crate's
//! example below and `examples/http_client.rs` show it.
//!
//! # Tokio in the dependency tree
//!
//! This is the one library crate of curio-rt whose dependency tree contains tokio: hyper 1.x
//! depends on `tokio` with its `sync` feature (channels inside its client), and HTTP/2 is the
//! `h2` crate, which is written against tokio's `AsyncRead`/`AsyncWrite` traits and adds the
//! `io-util` feature (hyper adapts its own traits to them internally). tokio's runtime, reactor
//! and timer (`rt`, `net`, `time`) are not built, so no tokio thread, reactor or timer exists
//! in a curio-rt program. The crate sits
//! behind the facade's `hyper` feature, off by default, so programs that do not speak HTTP do
//! not compile any of it.
//!
//! # Implementation
//!
//! This crate starts no threads: every connection, stream and timer runs on the kernel of the
//! task that polls it. It forbids `unsafe`; reads copy through a scratch buffer into hyper's
//! buffer with `ReadBufCursor::put_slice`, the cursor's safe API.
//!
//! # Examples
//!
//! A server and a client on loopback, in one kernel:
//!
//! ```
//! use std::convert::Infallible;
//! use curio_hyper::{CurioIo, Http, http_server};
//! use curio_net::{ServerOptions, TcpListener, TcpStream};
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//!
//! async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from("Hello, world!\n"))))
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! curio_kernel::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let make = |_peer| hyper::service::service_fn(hello);
//!     let server = curio_kernel::spawn(http_server(listener, Http::new(), make, ServerOptions::default()));
//!
//!     let stream = TcpStream::connect(addr).await?;
//!     let (mut sender, connection) = hyper::client::conn::http1::handshake(CurioIo::new(stream)).await?;
//!     curio_kernel::spawn(connection);
//!     let request = Request::get("/").header("host", "localhost").body(Empty::<Bytes>::new())?;
//!     let response = sender.send_request(request).await?;
//!     assert!(response.status().is_success());
//!     let body = response.into_body().collect().await?.to_bytes();
//!     assert_eq!(body, "Hello, world!\n");
//!     server.cancel().await;
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]

mod io;
mod rt;
mod server;

pub use io::CurioIo;
pub use rt::{CurioExecutor, CurioTimer};
#[cfg(feature = "tls")]
pub use server::https_server;
pub use server::{BoxError, Http, http_server};

// The protocol crate and its body helpers, so that `curio::hyper` alone is enough to write a
// service; their versions are the ones this crate was built with.
pub use http_body_util;
pub use hyper;

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
