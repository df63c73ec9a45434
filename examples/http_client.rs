//! An HTTP client with hyper on curio-rt, for the `http_server` example: fetches `/` and
//! `/stream` over HTTPS (HTTP/2 when the server agrees through ALPN) and over plain HTTP/1.1,
//! each on one keep-alive connection.
//!
//! ```text
//! cargo run --features hyper --example http_client [--host HOST] [PATH...]
//! ```
//!
//! Connections go through `curio::net::open_connection` (name lookup and Happy Eyeballs), and
//! TLS trusts only the test CA of `curio-net`, so `HOST` must be a name in the test certificate
//! (`localhost`, the default). Tests run the same code through [`fetch`].

use curio::hyper::http_body_util::{BodyExt, Empty};
use curio::hyper::hyper::body::Bytes;
use curio::hyper::hyper::{Request, StatusCode, Version};
use curio::hyper::{BoxError, CurioExecutor, CurioIo, CurioTimer, hyper};
use curio::net::open_connection;
use curio::net::tls::TlsConnector;

/// One response: its protocol version, status, and body in the frames it arrived in.
#[derive(Debug)]
pub struct Fetched {
    /// The protocol version the response came in.
    pub version: Version,
    /// The status.
    pub status: StatusCode,
    /// The body's data frames, in order.
    pub frames: Vec<Bytes>,
}

/// Fetches each of `paths` in turn on one connection to `host:port`: over TLS with `connector`
/// when given (HTTP/2 if ALPN chose `h2`, HTTP/1.1 otherwise), over plain HTTP/1.1 when not.
///
/// # Errors
///
/// Connecting, the TLS handshake, or HTTP failed.
pub async fn fetch(
    host: &str,
    port: u16,
    connector: Option<&TlsConnector>,
    paths: &[&str],
) -> Result<Vec<Fetched>, BoxError> {
    let stream = open_connection(host, port).await?;
    // TLS records and HTTP/2 frames are small writes: without this, Nagle's algorithm holds
    // some of them until the server's delayed ACK, 40 ms later.
    stream.set_nodelay(true)?;
    let Some(connector) = connector else {
        return fetch_http1(CurioIo::new(stream), host, "http", paths).await;
    };
    let tls = connector.connect(host, stream).await?;
    if tls.alpn_protocol() != Some(b"h2") {
        return fetch_http1(CurioIo::new(tls), host, "https", paths).await;
    }
    let mut builder = hyper::client::conn::http2::Builder::new(CurioExecutor);
    builder.timer(CurioTimer);
    let (mut sender, connection) = builder.handshake(CurioIo::new(tls)).await?;
    // The connection runs in a task of its own; it ends when `sender` is dropped.
    drop(curio::spawn(connection));
    let mut fetched = Vec::new();
    for path in paths {
        let req = Request::get(format!("https://{host}{path}")).body(Empty::<Bytes>::new())?;
        fetched.push(read(sender.send_request(req).await?).await?);
    }
    Ok(fetched)
}

/// [`fetch`] over HTTP/1.1, all requests on one keep-alive connection.
async fn fetch_http1<I>(
    io: I,
    host: &str,
    scheme: &str,
    paths: &[&str],
) -> Result<Vec<Fetched>, BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    drop(curio::spawn(connection));
    let mut fetched = Vec::new();
    for path in paths {
        let req = Request::get(format!("{scheme}://{host}{path}"))
            .header("host", host)
            .body(Empty::<Bytes>::new())?;
        fetched.push(read(sender.send_request(req).await?).await?);
    }
    Ok(fetched)
}

/// Reads a response's body frame by frame.
async fn read(response: hyper::Response<hyper::body::Incoming>) -> Result<Fetched, hyper::Error> {
    let (version, status) = (response.version(), response.status());
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        // HTTP/2 may end a stream with an empty data frame; it carries nothing.
        if let Ok(data) = frame?.into_data()
            && !data.is_empty()
        {
            frames.push(data);
        }
    }
    Ok(Fetched {
        version,
        status,
        frames,
    })
}

fn main() -> Result<(), BoxError> {
    let mut host = "localhost".to_owned();
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().unwrap_or(host),
            _ => paths.push(arg),
        }
    }
    if paths.is_empty() {
        paths = vec!["/".to_owned(), "/stream".to_owned()];
    }
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/curio-net/tests/certs/ca.pem"
    );
    let connector = TlsConnector::from_pem_file(ca, &[b"h2", b"http/1.1"])?;
    curio::run(async {
        for (port, connector) in [(8443, Some(&connector)), (8080, None)] {
            for (path, got) in paths
                .iter()
                .zip(fetch(&host, port, connector, &paths).await?)
            {
                println!(
                    "GET {path} on port {port}: {:?} {}",
                    got.version, got.status
                );
                for frame in &got.frames {
                    print!("  | {}", String::from_utf8_lossy(frame));
                }
                println!();
            }
        }
        Ok(())
    })
}
