//! An HTTP server with hyper on curio-rt: HTTP/1.1 with keep-alive on port 8080, and HTTPS on
//! port 8443, where ALPN picks HTTP/2 or HTTP/1.1; the certificate is the test one of
//! `curio-net`.
//!
//! ```text
//! cargo run --features hyper --example http_server
//! cargo run --features hyper --example http_client
//! curl http://127.0.0.1:8080/stream
//! curl --http2 --cacert crates/curio-net/tests/certs/ca.pem https://localhost:8443/
//! ```
//!
//! `/` answers `Hello, world!`, `/stream` streams five lines a tenth of a second apart, chunked
//! over HTTP/1.1 and as data frames over HTTP/2. Ctrl-C stops it gracefully: the listeners
//! close, idle connections close, and requests in flight are answered first. Tests run the same
//! code through [`serve`] on listeners bound to `127.0.0.1:0`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use curio::hyper::http_body_util::combinators::UnsyncBoxBody;
use curio::hyper::http_body_util::{BodyExt, Full};
use curio::hyper::hyper::body::{Body, Bytes, Frame, Incoming};
use curio::hyper::hyper::{Request, Response, StatusCode};
use curio::hyper::{Http, http_server, https_server, hyper};
use curio::net::tls::TlsAcceptor;
use curio::net::{ServerOptions, ServerShutdown, TcpListener};
use curio::time::Sleep;

/// The body of every response.
pub type ResBody = UnsyncBoxBody<Bytes, Infallible>;

/// How many lines `/stream` sends.
pub const TICKS: usize = 5;

/// The service: `/`, `/stream`, and 404 for the rest.
pub async fn hello(req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    let response = match req.uri().path() {
        "/" => Response::new(Full::new(Bytes::from("Hello, world!\n")).boxed_unsync()),
        "/stream" => Response::new(Ticks::new(TICKS, Duration::from_millis(100)).boxed_unsync()),
        _ => {
            let mut r = Response::new(Full::new(Bytes::from("not found\n")).boxed_unsync());
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(response)
}

/// A streaming body: `count` lines, `every` apart on the kernel's clock. It has no length, so
/// HTTP/1.1 sends it chunked, and each line leaves as soon as it is made.
pub struct Ticks {
    sent: usize,
    count: usize,
    every: Duration,
    wait: Option<Sleep>,
}

impl Ticks {
    /// `count` lines, `every` apart.
    pub fn new(count: usize, every: Duration) -> Ticks {
        Ticks {
            sent: 0,
            count,
            every,
            wait: None,
        }
    }
}

impl Body for Ticks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent == self.count {
            return Poll::Ready(None);
        }
        if self.sent > 0 {
            let every = self.every;
            let wait = self.wait.get_or_insert_with(|| curio::sleep(every));
            if Pin::new(wait).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        self.sent += 1;
        let line = format!("tick {} of {}\n", self.sent, self.count);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
    }
}

/// The TLS settings: the certificate and key in `certs` (`server.pem`, `server.key`),
/// offering HTTP/2 and HTTP/1.1.
pub fn acceptor(certs: &str) -> io::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from_pem_files(
        format!("{certs}/server.pem"),
        format!("{certs}/server.key"),
        &[b"h2", b"http/1.1"],
    )?
    .handshake_timeout(Duration::from_secs(10)))
}

/// Serves HTTP on `plain` and HTTPS on `tls` until `stop` is triggered, then stops both
/// gracefully.
pub async fn serve(
    plain: TcpListener,
    tls: TcpListener,
    acceptor: TlsAcceptor,
    stop: &ServerShutdown,
) -> io::Result<()> {
    let mut http = Http::new();
    // A client that takes longer than this to send a request's head is disconnected.
    http.http1().header_read_timeout(Duration::from_secs(10));
    let options = ServerOptions::default()
        .shutdown(stop)
        .grace_period(Duration::from_secs(5));
    let make = |_peer| hyper::service::service_fn(hello);
    let http_task = curio::spawn(http_server(plain, http.clone(), make, options.clone()));
    let https_task = curio::spawn(https_server(tls, acceptor, http, make, options));
    // A server's task fails only by a panic, which `curio::run` would report anyway.
    let failed = |e: curio::TaskError| io::Error::other(e.to_string());
    let a = http_task.join().await.map_err(failed)?;
    let b = https_task.join().await.map_err(failed)?;
    a.and(b)
}

fn main() -> io::Result<()> {
    let acceptor = acceptor(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/curio-net/tests/certs"
    ))?;
    curio::run(async {
        let plain = TcpListener::bind("127.0.0.1:8080")?;
        let tls = TcpListener::bind("127.0.0.1:8443")?;
        println!("HTTP on http://{}", plain.local_addr()?);
        println!(
            "HTTPS (HTTP/2 and HTTP/1.1) on https://localhost:{}",
            tls.local_addr()?.port()
        );
        let stop = ServerShutdown::new();
        let on_ctrl_c = stop.clone();
        let signal = curio::spawn(async move {
            if curio::signal::ctrl_c().await.is_ok() {
                println!("Ctrl-C: stopping gracefully");
                on_ctrl_c.shutdown();
            }
        });
        let served = serve(plain, tls, acceptor, &stop).await;
        signal.cancel().await;
        served
    })
}
