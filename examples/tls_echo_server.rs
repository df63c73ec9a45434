//! A TLS echo server on port 25443, with the test certificates of `curio-net`:
//!
//! ```text
//! cargo run --example tls_echo_server
//! cargo run --example tls_client hello world
//! ```
//!
//! `openssl s_client -connect 127.0.0.1:25443 -CAfile crates/curio-net/tests/certs/ca.pem`
//! talks to it too. Tests run the same code through [`serve`] on a listener bound to
//! `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use curio::net::tls::{TlsAcceptor, TlsStream, run_tls_server};
use curio::net::{TcpListener, TcpStream};

/// The ALPN protocol the server offers and the client asks for.
pub const ALPN: &[u8] = b"curio-echo/1";

/// Echoes everything `client` sends until it closes its side, then closes too.
pub async fn echo_client(mut client: TlsStream<TcpStream>, addr: SocketAddr) -> io::Result<()> {
    println!(
        "TLS connection from {addr}: {:?}, SNI {:?}",
        client.protocol_version(),
        client.server_name(),
    );
    loop {
        let data = client.recv(100_000).await?;
        if data.is_empty() {
            break;
        }
        client.sendall(&data).await?;
    }
    client.close().await?;
    println!("Connection from {addr} closed");
    Ok(())
}

/// Serves `listener` over TLS with [`echo_client`], one task per connection, forever.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<()> {
    run_tls_server(listener, acceptor, echo_client).await
}

fn main() -> io::Result<()> {
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/curio-net/tests/certs");
    let acceptor = TlsAcceptor::from_pem_files(
        format!("{certs}/server.pem"),
        format!("{certs}/server.key"),
        &[ALPN],
    )?
    // A client that connects and never finishes its handshake is dropped.
    .handshake_timeout(Duration::from_secs(10))
    // Python's `ssl` and many other clients close without a TLS `close_notify`; echo data
    // needs no protection against truncation, so such a close is an ordinary end.
    .eof_without_close_notify(true);
    curio::run(async {
        let listener = TcpListener::bind("127.0.0.1:25443")?;
        println!("TLS echo server listening at {}", listener.local_addr()?);
        serve(listener, acceptor).await
    })
}
