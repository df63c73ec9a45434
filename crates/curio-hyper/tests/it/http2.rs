//! HTTP/2 over TLS, chosen by ALPN: many concurrent streams on one connection, and HTTP/1.1
//! over TLS for a client that offers only it; on the virtual clock, which hyper's HTTP/2 timers
//! and the TLS handshake timeout both use.

use std::cell::Cell;
use std::rc::Rc;

use curio_hyper::http_body_util::{BodyExt, Empty};
use curio_hyper::hyper::body::Bytes;
use curio_hyper::hyper::{Request, Version};
use curio_hyper::{CurioExecutor, CurioIo, CurioTimer, Http, https_server};
use curio_net::tls::{TlsAcceptor, TlsConnector};
use curio_net::{ServerOptions, TcpStream};
use curio_sync::Event;

use super::*;

/// The committed test certificates of curio-net (see their README).
pub(crate) const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../curio-net/tests/certs");

fn cert(name: &str) -> Vec<u8> {
    std::fs::read(format!("{CERTS}/{name}")).unwrap()
}

fn acceptor() -> TlsAcceptor {
    TlsAcceptor::from_pem(
        &cert("server.pem"),
        &cert("server.key"),
        &[b"h2", b"http/1.1"],
    )
    .unwrap()
}

/// Starts an HTTPS server whose requests all wait until `streams` of them are in flight.
fn start_tls(streams: usize) -> (SocketAddr, curio_kernel::Task<std::io::Result<()>>) {
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let arrived = Rc::new(Cell::new(0));
    let all_in = Event::new();
    let make = move |_peer| {
        let (arrived, all_in) = (Rc::clone(&arrived), all_in.clone());
        curio_hyper::hyper::service::service_fn(move |req: Request<Incoming>| {
            let (arrived, all_in) = (Rc::clone(&arrived), all_in.clone());
            async move {
                arrived.set(arrived.get() + 1);
                if arrived.get() == streams {
                    all_in.set();
                }
                all_in.wait().await;
                let body = format!("{:?} {}", req.version(), req.uri().path());
                Ok::<_, Infallible>(Response::new(full(body)))
            }
        })
    };
    let mut http = Http::new();
    http.http2().max_concurrent_streams(200);
    let options = ServerOptions::default();
    let task = curio_kernel::spawn(https_server(listener, acceptor(), http, make, options));
    (addr, task)
}

#[test]
fn http2_over_tls_with_100_concurrent_streams() {
    run_virtual(async {
        let (addr, server) = start_tls(100);
        let connector = TlsConnector::from_pem(&cert("ca.pem"), &[b"h2"]).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        // Without it, the client's last handshake record waits for the server's delayed ACK,
        // which a virtual clock cannot see: it jumps past the server's handshake timeout.
        tcp.set_nodelay(true).unwrap();
        let tls = connector.connect("localhost", tcp).await.unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
        let mut builder = curio_hyper::hyper::client::conn::http2::Builder::new(CurioExecutor);
        builder.timer(CurioTimer);
        let (sender, conn) = builder
            .handshake::<_, Empty<Bytes>>(CurioIo::new(tls))
            .await
            .unwrap();
        drop(curio_kernel::spawn(conn));
        // Each request waits on the server until all 100 are in: they are concurrent streams.
        let mut streams = Vec::new();
        for i in 0..100 {
            let mut sender = sender.clone();
            streams.push(curio_kernel::spawn(async move {
                let req = Request::get(format!("https://localhost/{i}"))
                    .body(Empty::new())
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                assert_eq!(res.version(), Version::HTTP_2);
                let body = res.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, format!("HTTP/2.0 /{i}"));
            }));
        }
        for s in streams {
            s.join().await.unwrap();
        }
        server.cancel().await;
    });
}

#[test]
fn http1_over_tls_without_h2() {
    run_virtual(async {
        let (addr, server) = start_tls(1);
        let connector = TlsConnector::from_pem(&cert("ca.pem"), &[b"http/1.1"]).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        // Without it, the client's last handshake record waits for the server's delayed ACK,
        // which a virtual clock cannot see: it jumps past the server's handshake timeout.
        tcp.set_nodelay(true).unwrap();
        let tls = connector.connect("localhost", tcp).await.unwrap();
        let (mut sender, conn) =
            curio_hyper::hyper::client::conn::http1::handshake(CurioIo::new(tls))
                .await
                .unwrap();
        drop(curio_kernel::spawn(conn));
        let (status, body) = get(&mut sender, "/x").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "HTTP/1.1 /x");
        server.cancel().await;
    });
}
