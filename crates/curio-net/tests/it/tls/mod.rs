//! TLS: handshakes over TCP and Unix sockets, SNI and ALPN, failures that must not stop a
//! server, configuration misuse, `SocketStream` over TLS, and the workspace's TLS examples.

mod example;
mod misuse;
mod names;
mod server;
mod stream;
mod unix;

use std::future::Future;
use std::io;
use std::time::Duration;

use curio_net::tls::{TlsAcceptor, TlsConnector, TlsStream};
use curio_net::{TcpListener, tcp_server_socket};
use futures_io::{AsyncRead, AsyncWrite};

/// The directory of the committed test certificates (see its README).
const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs");

/// The bytes of the test file `name`.
fn cert(name: &str) -> Vec<u8> {
    std::fs::read(format!("{CERTS}/{name}")).unwrap()
}

/// A server presenting the `localhost` certificate signed by the test CA.
fn acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    TlsAcceptor::from_pem(&cert("server.pem"), &cert("server.key"), alpn).unwrap()
}

/// A client trusting the test CA only.
fn connector(alpn: &[&[u8]]) -> TlsConnector {
    TlsConnector::from_pem(&cert("ca.pem"), alpn).unwrap()
}

/// A client trusting another CA, which did not sign the server's certificate.
fn untrusting_connector() -> TlsConnector {
    TlsConnector::from_pem(&cert("other-ca.pem"), &[]).unwrap()
}

/// A listener on a free loopback port.
fn loopback_listener() -> TcpListener {
    tcp_server_socket("127.0.0.1:0".parse().unwrap(), 16, true, false).unwrap()
}

/// Runs `fut` on a fresh kernel with the real clock, failing the test after 30 s, so a hang
/// is a failure and not a stuck run.
fn run<F: Future>(fut: F) -> F::Output {
    curio_kernel::run(async {
        curio_kernel::timeout_after(Duration::from_secs(30), fut)
            .await
            .expect("the test took longer than 30 s")
    })
}

/// Echoes what the client sends until it closes, then closes too.
async fn echo<S, A>(mut s: TlsStream<S>, _peer: A) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let data = s.recv(65536).await?;
        if data.is_empty() {
            return s.close().await;
        }
        s.sendall(&data).await?;
    }
}

/// The `rustls::Error` inside an I/O error from a handshake.
fn tls_error(e: &io::Error) -> Option<&curio_net::tls::rustls::Error> {
    e.get_ref()?.downcast_ref()
}
