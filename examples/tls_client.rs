//! A TLS client for the `tls_echo_server` example: sends each argument as a line and prints the
//! echoed lines.
//!
//! ```text
//! cargo run --example tls_client [--host HOST] [--port PORT] [LINE...]
//! ```
//!
//! It trusts only the test CA of `curio-net`, and checks the server's certificate against
//! `HOST` (by default `localhost`). Tests run the same code through [`exchange`].

use std::io;

use curio::net::TcpStream;
use curio::net::tls::{TlsConnector, TlsStream, open_tls_connection};

/// The ALPN protocol asked for, the one the echo server offers.
pub const ALPN: &[u8] = b"curio-echo/1";

/// Sends each of `lines` with a newline, reads each echo back, and closes the connection.
///
/// # Errors
///
/// The connection's errors; `UnexpectedEof` when the server closes before echoing a line.
pub async fn exchange(stream: TlsStream<TcpStream>, lines: &[String]) -> io::Result<Vec<String>> {
    let mut stream = stream.as_stream();
    let mut echoed = Vec::with_capacity(lines.len());
    for line in lines {
        stream.write(format!("{line}\n").as_bytes()).await?;
        let reply = stream.read_line(64 * 1024).await?;
        if reply.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        echoed.push(String::from_utf8_lossy(&reply).trim_end().to_owned());
    }
    stream.close().await?;
    Ok(echoed)
}

fn main() -> io::Result<()> {
    let mut host = "localhost".to_owned();
    let mut port = 25443;
    let mut lines = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().unwrap_or(host),
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad --port"))?;
            }
            _ => lines.push(arg),
        }
    }
    if lines.is_empty() {
        lines.push("hello over TLS".to_owned());
    }
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/curio-net/tests/certs/ca.pem"
    );
    let connector = TlsConnector::from_pem_file(ca, &[ALPN])?;
    curio::run(async {
        let stream = open_tls_connection(&host, port, &connector).await?;
        println!(
            "connected to {host}:{port}: {:?}, ALPN {:?}",
            stream.protocol_version(),
            stream.alpn_protocol().map(String::from_utf8_lossy),
        );
        for line in exchange(stream, &lines).await? {
            println!("{line}");
        }
        Ok(())
    })
}
