//! `Http` and the servers: serving connections with hyper, and stopping gracefully.

use std::any::Any;
use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;

use curio_net::{Listener, ServerOptions, ServerShutdown, run_server_with};
use futures_io::{AsyncRead, AsyncWrite};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;

use crate::{CurioExecutor, CurioIo, CurioTimer};

/// An error that a service, a body or a connection may return.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How a server speaks HTTP: hyper's HTTP/1 and HTTP/2 connection builders, set up with
/// [`CurioExecutor`] and [`CurioTimer`].
///
/// With the timer set, hyper's HTTP/1 header-read timeout (30 s unless changed with
/// `http1().header_read_timeout(..)`) closes a connection whose client is slow to send its
/// headers, and the HTTP/2 keep-alive pings work; all of them run on the kernel's clock.
///
/// Code that serves TCP connections itself should turn Nagle's algorithm off
/// (`TcpStream::set_nodelay(true)`), as [`http_server`] does: TLS records and HTTP/2 frames are
/// small writes that it would hold back until the peer's delayed ACK.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } pub mod hyper { pub use curio_hyper::*; } }
/// use std::time::Duration;
/// use curio::hyper::Http;
///
/// let mut http = Http::new();
/// http.http1().header_read_timeout(Duration::from_secs(5));
/// http.http2().max_concurrent_streams(100);
/// ```
#[derive(Debug, Clone)]
pub struct Http {
    http1: http1::Builder,
    http2: http2::Builder<CurioExecutor>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// hyper's defaults, with curio's executor and timer.
    pub fn new() -> Http {
        let mut http1 = http1::Builder::new();
        http1.timer(CurioTimer);
        let mut http2 = http2::Builder::new(CurioExecutor);
        http2.timer(CurioTimer);
        Http { http1, http2 }
    }

    /// The HTTP/1 settings.
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.http1
    }

    /// The HTTP/2 settings.
    pub fn http2(&mut self) -> &mut http2::Builder<CurioExecutor> {
        &mut self.http2
    }

    /// Serves HTTP/1.1 (and 1.0) on `io` with `service` until the client closes the connection
    /// or, once `shutdown` is triggered, until the request in flight is answered.
    ///
    /// # Errors
    ///
    /// hyper's error when the connection fails: an I/O error, a malformed request, a client
    /// that closed mid-message or took longer than the header-read timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection, abandoning any request in flight.
    pub async fn serve_http1<I, S, B>(
        &self,
        io: I,
        service: S,
        shutdown: Option<&ServerShutdown>,
    ) -> Result<(), hyper::Error>
    where
        I: AsyncRead + AsyncWrite + Unpin + 'static,
        S: HttpService<Incoming, ResBody = B>,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let conn = self.http1.serve_connection(CurioIo::new(io), service);
        drive(pin!(conn), shutdown, |c| c.graceful_shutdown()).await
    }

    /// Serves HTTP/2 (with prior knowledge, or after ALPN chose `h2`) on `io` with `service`
    /// until the client closes the connection or, once `shutdown` is triggered, until the
    /// streams in flight are answered. Each stream runs in a task of its own on the kernel.
    ///
    /// # Errors
    ///
    /// hyper's error when the connection fails.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection; the stream tasks it spawned end with it.
    pub async fn serve_http2<I, S, B>(
        &self,
        io: I,
        service: S,
        shutdown: Option<&ServerShutdown>,
    ) -> Result<(), hyper::Error>
    where
        I: AsyncRead + AsyncWrite + Unpin + 'static,
        S: HttpService<Incoming, ResBody = B> + 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let conn = self.http2.serve_connection(CurioIo::new(io), service);
        drive(pin!(conn), shutdown, |c| c.graceful_shutdown()).await
    }

    /// Serves a TLS connection: HTTP/2 if ALPN chose `h2`, HTTP/1.1 otherwise.
    ///
    /// The server offers `h2` when its `rustls::ServerConfig` lists it in `alpn_protocols`
    /// (`TlsAcceptor::from_pem(cert, key, &[b"h2", b"http/1.1"])`).
    ///
    /// # Errors
    ///
    /// As [`serve_http1`](Self::serve_http1) and [`serve_http2`](Self::serve_http2).
    ///
    /// # Cancel safety
    ///
    /// As [`serve_http1`](Self::serve_http1) and [`serve_http2`](Self::serve_http2).
    #[cfg(feature = "tls")]
    pub async fn serve_tls<T, S, B>(
        &self,
        io: curio_net::tls::TlsStream<T>,
        service: S,
        shutdown: Option<&ServerShutdown>,
    ) -> Result<(), hyper::Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + 'static,
        S: HttpService<Incoming, ResBody = B> + 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        if io.alpn_protocol() == Some(b"h2") {
            self.serve_http2(io, service, shutdown).await
        } else {
            self.serve_http1(io, service, shutdown).await
        }
    }
}

/// Polls `conn` to completion; when `shutdown` triggers, asks it once to stop gracefully and
/// goes on polling it, so the requests in flight are answered.
async fn drive<C>(
    mut conn: Pin<&mut C>,
    shutdown: Option<&ServerShutdown>,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let Some(shutdown) = shutdown else {
        return conn.await;
    };
    let mut wait = pin!(shutdown.wait());
    let mut graceful = Some(graceful);
    poll_fn(|cx| {
        if graceful.is_some()
            && wait.as_mut().poll(cx).is_ready()
            && let Some(g) = graceful.take()
        {
            g(conn.as_mut());
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// Turns Nagle's algorithm off on a TCP connection, and leaves any other stream alone.
///
/// hyper writes each message whole, but TLS records and HTTP/2 frames are small writes that
/// Nagle's algorithm holds back until the peer's delayed ACK (40 ms on Linux); on a kernel with
/// a virtual clock, that wait looks like idleness, and the clock jumps to the next deadline.
fn no_delay<S: 'static>(stream: &S) {
    if let Some(tcp) = (stream as &dyn Any).downcast_ref::<curio_net::TcpStream>() {
        // Best effort: a connection that refuses works all the same, only slower.
        let _ = tcp.set_nodelay(true);
    }
}

/// Serves HTTP/1.1 on every connection `listener` accepts, each in a task of the server's
/// [`TaskGroup`](curio_kernel::TaskGroup), with the service `make_service(peer)` returns.
///
/// This is [`curio_net::run_server_with`] with an HTTP handler, so the options and the
/// behaviour are the same: a failing connection is reported on stderr and never stops the
/// server, running out of descriptors backs off, and cancelling the server cancels its
/// connections. With a [`ServerShutdown`] in `options`, triggering it closes the listener,
/// closes idle keep-alive connections, lets each connection answer its request in flight
/// within the grace period, and then returns `Ok(())`. TCP connections get `TCP_NODELAY`.
///
/// # Errors
///
/// When `accept` fails in a way that leaves the listener unusable.
///
/// # Cancel safety
///
/// As [`curio_net::run_server`]: cancelling the server's task cancels every connection and
/// waits until they have terminated.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } pub mod hyper { pub use curio_hyper::*; } }
/// use std::convert::Infallible;
/// use curio::hyper::http_body_util::Full;
/// use curio::hyper::hyper::body::{Bytes, Incoming};
/// use curio::hyper::hyper::{Request, Response};
/// use curio::hyper::{Http, http_server, hyper};
/// use curio::net::{ServerOptions, TcpListener};
///
/// async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from("Hello, world!\n"))))
/// }
///
/// curio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:8080")?;
///     let make = |_peer| hyper::service::service_fn(hello);
///     http_server(listener, Http::new(), make, ServerOptions::default()).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn http_server<L, M, S, B>(
    listener: L,
    http: Http,
    make_service: M,
    options: ServerOptions,
) -> io::Result<()>
where
    L: Listener,
    L::Stream: AsyncRead + AsyncWrite + Unpin,
    M: Fn(L::Addr) -> S + 'static,
    S: HttpService<Incoming, ResBody = B> + 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let http = Rc::new(http);
    let shutdown = options.shutdown.clone();
    let handler = move |stream: L::Stream, peer: L::Addr| {
        let http = Rc::clone(&http);
        let shutdown = shutdown.clone();
        let service = make_service(peer);
        no_delay(&stream);
        async move { http.serve_http1(stream, service, shutdown.as_ref()).await }
    };
    run_server_with(listener, handler, options).await
}

/// Serves HTTPS on every connection `listener` accepts: a TLS handshake with `acceptor`, then
/// HTTP/2 if ALPN chose `h2` and HTTP/1.1 otherwise ([`Http::serve_tls`]); otherwise as
/// [`http_server`].
///
/// # Errors
///
/// As [`http_server`]; a failed handshake only ends its connection, reported on stderr.
///
/// # Cancel safety
///
/// As [`http_server`].
#[cfg(feature = "tls")]
pub async fn https_server<L, M, S, B>(
    listener: L,
    acceptor: curio_net::tls::TlsAcceptor,
    http: Http,
    make_service: M,
    options: ServerOptions,
) -> io::Result<()>
where
    L: Listener,
    L::Stream: AsyncRead + AsyncWrite + Unpin,
    M: Fn(L::Addr) -> S + 'static,
    S: HttpService<Incoming, ResBody = B> + 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let http = Rc::new(http);
    let acceptor = Rc::new(acceptor);
    let shutdown = options.shutdown.clone();
    let handler = move |stream: L::Stream, peer: L::Addr| {
        let http = Rc::clone(&http);
        let acceptor = Rc::clone(&acceptor);
        let shutdown = shutdown.clone();
        let service = make_service(peer);
        no_delay(&stream);
        async move {
            let tls = acceptor.accept(stream).await?;
            http.serve_tls(tls, service, shutdown.as_ref())
                .await
                .map_err(io::Error::other)
        }
    };
    run_server_with(listener, handler, options).await
}
