//! curio-hyper's tests: hyper servers and clients on loopback, over TCP, Unix sockets and TLS.
//!
//! Every test runs on a fresh kernel under a deadline, so a hang fails instead of sticking;
//! timer tests run on the virtual clock.

#[cfg(feature = "tls")]
mod examples;
mod http1;
#[cfg(feature = "tls")]
mod http2;
mod shutdown;
mod timeouts;

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use curio_hyper::http_body_util::combinators::UnsyncBoxBody;
use curio_hyper::http_body_util::{BodyExt, Empty, Full};
use curio_hyper::hyper::body::{Body, Bytes, Frame, Incoming};
use curio_hyper::hyper::client::conn::http1::SendRequest;
use curio_hyper::hyper::{Request, Response, StatusCode};
use curio_hyper::{BoxError, CurioIo, Http, http_server};
use curio_net::{ServerOptions, TcpListener, TcpStream};

/// The response body every test service returns.
type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// One MiB.
const MIB: usize = 1 << 20;

/// Runs `fut` on a fresh kernel with the real clock, failing the test after 60 s.
fn run<F: Future>(fut: F) -> F::Output {
    curio_kernel::run(async {
        curio_kernel::timeout_after(Duration::from_secs(60), fut)
            .await
            .expect("the test took longer than 60 s")
    })
}

/// Runs `fut` on a fresh kernel with a virtual clock, failing the test after an hour of it.
fn run_virtual<F: Future>(fut: F) -> F::Output {
    let mut kernel = curio_kernel::Kernel::builder().virtual_clock(true).build();
    kernel.run(async {
        curio_kernel::timeout_after(Duration::from_secs(3600), fut)
            .await
            .expect("the test took longer than an hour of virtual time")
    })
}

/// A listener on a free loopback port.
fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A body of `len` bytes that cycle through the alphabet, so misplaced bytes show.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A body of `count` chunks of `chunk` without a length, so HTTP/1.1 sends it chunked.
struct Chunks {
    left: usize,
    chunk: Bytes,
}

impl Chunks {
    fn new(count: usize, chunk: Bytes) -> Chunks {
        Chunks { left: count, chunk }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

fn full(data: impl Into<Bytes>) -> ResBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The test service:
/// - `GET /bytes/N`: N bytes of [`pattern`], with a length;
/// - `GET /chunks/N`: N chunks of 1 KiB of [`pattern`], chunked;
/// - `POST /echo`: the request's body, streamed back as it arrives;
/// - anything else: `hello`.
async fn service(req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = if let Some(n) = path.strip_prefix("/bytes/") {
        full(pattern(n.parse().unwrap()))
    } else if let Some(n) = path.strip_prefix("/chunks/") {
        Chunks::new(n.parse().unwrap(), pattern(1024)).boxed_unsync()
    } else if path == "/echo" {
        req.into_body().map_err(BoxError::from).boxed_unsync()
    } else {
        full("hello")
    };
    Ok(Response::new(body))
}

/// A running HTTP/1.1 server on loopback.
struct Server {
    addr: SocketAddr,
    task: curio_kernel::Task<std::io::Result<()>>,
    /// How many connections it has accepted.
    connections: Rc<Cell<usize>>,
}

/// Starts [`service`] with `http` on a loopback port.
fn start(http: Http) -> Server {
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let options = ServerOptions::default();
    let connections = Rc::new(Cell::new(0));
    let count = Rc::clone(&connections);
    let make = move |_peer| {
        count.set(count.get() + 1);
        curio_hyper::hyper::service::service_fn(service)
    };
    let task = curio_kernel::spawn(http_server(listener, http, make, options));
    Server {
        addr,
        task,
        connections,
    }
}

/// An HTTP/1.1 client connection to `addr`; its connection task runs until the sender is dropped.
async fn connect<B>(addr: SocketAddr) -> SendRequest<B>
where
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = curio_hyper::hyper::client::conn::http1::handshake(CurioIo::new(stream))
        .await
        .unwrap();
    drop(curio_kernel::spawn(conn));
    sender
}

/// Sends a GET of `path`, returning the status and the whole body.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> (StatusCode, Bytes) {
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

// The workspace's HTTP examples are written against the facade (`curio::hyper`, `curio::net`,
// `curio::run`), which this crate cannot depend on. These few names stand in for it, so the
// tests compile the examples' own files: `extern crate self` puts this test crate in the
// extern prelude as `curio`.
#[cfg(feature = "tls")]
extern crate self as curio;

/// The facade's `curio::hyper`, for the examples compiled by these tests.
#[cfg(feature = "tls")]
pub mod hyper {
    pub use curio_hyper::*;
}

/// The facade's `curio::net`, for the examples compiled by these tests.
#[cfg(feature = "tls")]
pub mod net {
    pub use curio_net::*;
}

/// The facade's `curio::time`, for the examples compiled by these tests.
#[cfg(feature = "tls")]
pub mod time {
    pub use curio_time::Sleep;
}

/// The facade's `curio::signal`, for the examples compiled by these tests.
#[cfg(feature = "tls")]
pub mod signal {
    pub use curio_process::signal::ctrl_c;
}

// `curio::run` is this binary's own `run`, which has the same signature.
#[cfg(feature = "tls")]
pub use curio_kernel::{TaskError, sleep, spawn};
