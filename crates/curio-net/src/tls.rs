//! TLS over any stream with rustls (Curio's `ssl=` arguments): [`TlsConnector`] and
//! [`TlsAcceptor`] run the handshake, [`TlsStream`] carries the encrypted connection,
//! [`open_tls_connection`] and [`tls_server`] put them together with TCP.
//!
//! The cryptography is rustls's `ring` provider, chosen explicitly by every configuration made
//! here, so no process-wide default provider is needed (and none is installed).
//! [`client_config`] and [`server_config`] make configurations from PEM data with ALPN
//! protocols; any other `rustls` configuration (client certificates, session resumption, other
//! roots) can be built with the re-exported [`rustls`] crate and given to
//! [`TlsConnector::new`] or [`TlsAcceptor::new`].
//!
//! A [`TlsStream`] implements `futures_io::{AsyncRead, AsyncWrite}`, so it works with
//! [`SocketStream`] through [`TlsStream::as_stream`], and it has Curio's socket methods
//! (`recv`, `recv_into`, `sendall`, `close`) of its own. It is used by one task at a time: unlike
//! a socket, it cannot be read by one task while another writes.
//!
//! A peer that closes without a TLS `close_notify` is an `UnexpectedEof` error by default,
//! since it may be a truncation; [`TlsStream::set_eof_without_close_notify`] (or
//! [`TlsAcceptor::eof_without_close_notify`] for a server) makes such a close at a record
//! boundary an ordinary end of file, for protocols that delimit their own messages.
//!
//! This module exists with the `tls` feature, which is on by default.
//!
//! # Examples
//!
//! A handshake and an echo over a Unix socket pair, with the test certificates of this crate:
//!
//! ```
//! # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } }
//! use curio::net::UnixStream;
//! use curio::net::tls::{TlsAcceptor, TlsConnector};
//!
//! # macro_rules! cert { ($f:literal) => { include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/", $f)) } }
//! let ca: &[u8] = cert!("ca.pem");
//! let chain: &[u8] = cert!("server.pem");
//! let key: &[u8] = cert!("server.key");
//! curio::run(async {
//!     let acceptor = TlsAcceptor::from_pem(chain, key, &[b"echo/1"])?;
//!     let connector = TlsConnector::from_pem(ca, &[b"echo/1"])?;
//!     let (a, b) = UnixStream::pair()?;
//!     let server = curio::spawn(async move {
//!         let mut s = acceptor.accept(b).await?;
//!         let data = s.recv(100).await?;
//!         s.sendall(&data).await?;
//!         s.close().await
//!     });
//!     let mut client = connector.connect("localhost", a).await?;
//!     assert_eq!(client.alpn_protocol(), Some(&b"echo/1"[..]));
//!     client.sendall(b"ping").await?;
//!     assert_eq!(client.recv(100).await?, b"ping");
//!     assert_eq!(client.recv(100).await?, b""); // The server closed.
//!     server.join().await.unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub use rustls;
pub use rustls::{ClientConfig, ServerConfig};

use crate::connect::open_connection;
use crate::server::{ClientOutcome, Listener, ServerOptions, run_server_with};
use crate::stream::SocketStream;
use crate::tcp::{TcpStream, tcp_server_socket};

/// The crypto provider of every configuration made here: `ring`, which builds quickly.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Reads a whole file, naming it in the error.
fn read_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the {what} {}: {e}", path.display()),
        )
    })
}

/// Every certificate in `pem`; at least one.
fn parse_certs(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM in the {what}: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "no certificate in the {what} (expected PEM with `-----BEGIN CERTIFICATE-----`)"
        )));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(
            "no private key in the key PEM (expected `-----BEGIN PRIVATE KEY-----`, \
             `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
                .to_owned(),
        ),
        e => invalid(format!("bad PEM in the private key: {e}")),
    })
}

fn server_name(name: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| invalid(format!("bad TLS server name {name:?}: {e}")))
}

fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}

/// Makes a client configuration that trusts the CA certificates in `ca_pem` (and no others) and
/// offers the ALPN protocols `alpn`, most preferred first (none when empty).
///
/// The server's certificate is checked against the name given to [`TlsConnector::connect`] or
/// [`open_tls_connection`]; TLS 1.2 and 1.3 are enabled.
///
/// # Errors
///
/// `InvalidInput` when `ca_pem` holds no certificate, bad PEM, or a certificate that cannot be
/// parsed.
///
/// # Examples
///
/// ```
/// # mod curio { pub mod net { pub use curio_net::*; } }
/// let ca = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/ca.pem"));
/// let config = curio::net::tls::client_config(ca, &[b"h2", b"http/1.1"])?;
/// assert_eq!(config.alpn_protocols.len(), 2);
///
/// let err = curio::net::tls::client_config(b"not PEM", &[]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn client_config(ca_pem: &[u8], alpn: &[&[u8]]) -> io::Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certs(ca_pem, "CA certificates")? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("bad CA certificate: {e}")))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("cannot make a TLS client configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn_list(alpn);
    Ok(config)
}

/// [`client_config`] with the CA certificates read from the PEM file at `ca_path`.
///
/// # Errors
///
/// The file's read error (its kind, with the path in the message), or as [`client_config`].
pub fn client_config_from_file(
    ca_path: impl AsRef<Path>,
    alpn: &[&[u8]],
) -> io::Result<ClientConfig> {
    client_config(&read_file(ca_path.as_ref(), "CA file")?, alpn)
}

/// Makes a server configuration that presents the certificate chain in `cert_chain_pem` (the
/// server's own certificate first, then any intermediates) with the private key in `key_pem`
/// (PKCS#8, PKCS#1 or SEC1), and accepts the ALPN protocols `alpn`, most preferred first.
///
/// With a non-empty `alpn`, a client that offers ALPN but none of these protocols fails the
/// handshake; a client that offers no ALPN is accepted. Client certificates are not asked for.
///
/// # Errors
///
/// `InvalidInput` when the chain is empty or is not PEM, when there is no private key, when the
/// key cannot be used, or when it does not match the certificate.
///
/// # Examples
///
/// ```
/// # mod curio { pub mod net { pub use curio_net::*; } }
/// # macro_rules! cert { ($f:literal) => { include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/", $f)) } }
/// let chain: &[u8] = cert!("server.pem");
/// let key: &[u8] = cert!("server.key");
/// let config = curio::net::tls::server_config(chain, key, &[b"http/1.1"])?;
/// assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
///
/// // The CA's key is not the server certificate's key.
/// let wrong_key: &[u8] = cert!("ca.key");
/// let err = curio::net::tls::server_config(chain, wrong_key, &[]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    alpn: &[&[u8]],
) -> io::Result<ServerConfig> {
    let chain = parse_certs(cert_chain_pem, "certificate chain")?;
    let key = parse_key(key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("cannot make a TLS server configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => invalid(format!(
                "the private key does not match the certificate ({e})"
            )),
            e => invalid(format!("unusable certificate or private key: {e}")),
        })?;
    config.alpn_protocols = alpn_list(alpn);
    Ok(config)
}

/// [`server_config`] with the chain and the key read from the PEM files at `cert_chain_path` and
/// `key_path` (they may be the same file).
///
/// # Errors
///
/// A file's read error (its kind, with the path in the message), or as [`server_config`].
pub fn server_config_from_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
    alpn: &[&[u8]],
) -> io::Result<ServerConfig> {
    let chain = read_file(cert_chain_path.as_ref(), "certificate file")?;
    let key = read_file(key_path.as_ref(), "key file")?;
    server_config(&chain, &key, alpn)
}

/// The client side of TLS: runs the client handshake over a connected stream (Curio's
/// `ssl.SSLContext.wrap_socket` on a client). Cloning it is cheap.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols.len())
            .finish_non_exhaustive()
    }
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }
}

impl From<ClientConfig> for TlsConnector {
    fn from(config: ClientConfig) -> TlsConnector {
        TlsConnector::new(Arc::new(config))
    }
}

impl TlsConnector {
    /// Uses `config` for every connection.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// A connector trusting the CA certificates in `ca_pem`, offering `alpn` (see
    /// [`client_config`]).
    ///
    /// # Errors
    ///
    /// As [`client_config`].
    pub fn from_pem(ca_pem: &[u8], alpn: &[&[u8]]) -> io::Result<TlsConnector> {
        Ok(TlsConnector::from(client_config(ca_pem, alpn)?))
    }

    /// A connector trusting the CA certificates in the PEM file at `ca_path` (see
    /// [`client_config_from_file`]).
    ///
    /// # Errors
    ///
    /// As [`client_config_from_file`].
    pub fn from_pem_file(ca_path: impl AsRef<Path>, alpn: &[&[u8]]) -> io::Result<TlsConnector> {
        Ok(TlsConnector::from(client_config_from_file(ca_path, alpn)?))
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client handshake over `stream` and returns the encrypted stream.
    ///
    /// `server_name` is the DNS name or IP address that the server's certificate must be valid
    /// for (Curio's `server_hostname`); a DNS name is also sent to the server as SNI, an address
    /// is not.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `server_name` is neither a DNS name nor an IP address; `InvalidData`
    /// carrying a [`rustls::Error`] (see `io::Error::get_ref`) when the handshake fails, for
    /// example when the server's certificate is not trusted or not valid for `server_name`; the
    /// stream's errors.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `stream` mid-handshake.
    pub async fn connect<S>(&self, server_name: &str, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connect_to(self::server_name(server_name)?, stream)
            .await
    }

    async fn connect_to<S>(&self, name: ServerName<'static>, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shown = name.to_str().into_owned();
        let s = futures_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(name, Io::new(stream))
            .await?;
        Ok(TlsStream {
            inner: s.into(),
            name: Some(shown),
            eof_without_close_notify: false,
        })
    }
}

/// The server side of TLS: runs the server handshake over an accepted stream (Curio's
/// `ssl.SSLContext.wrap_socket(server_side=True)`). Cloning it is cheap.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Option<Duration>,
    eof_without_close_notify: bool,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols.len())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::new(config)
    }
}

impl From<ServerConfig> for TlsAcceptor {
    fn from(config: ServerConfig) -> TlsAcceptor {
        TlsAcceptor::new(Arc::new(config))
    }
}

/// How long a server handshake may take by default before [`TlsAcceptor::accept`] gives up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsAcceptor {
    /// Uses `config` for every connection, with the default handshake timeout
    /// ([`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            eof_without_close_notify: false,
        }
    }

    /// An acceptor presenting the chain and key in `cert_chain_pem` and `key_pem` and accepting
    /// `alpn` (see [`server_config`]).
    ///
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        alpn: &[&[u8]],
    ) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(server_config(
            cert_chain_pem,
            key_pem,
            alpn,
        )?))
    }

    /// An acceptor presenting the chain and key in the PEM files at `cert_chain_path` and
    /// `key_path` (see [`server_config_from_files`]).
    ///
    /// # Errors
    ///
    /// As [`server_config_from_files`].
    pub fn from_pem_files(
        cert_chain_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
        alpn: &[&[u8]],
    ) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(server_config_from_files(
            cert_chain_path,
            key_path,
            alpn,
        )?))
    }

    /// Makes [`accept`](Self::accept) fail with `TimedOut` when the handshake has not finished
    /// `timeout` after it started, so a client that connects and says nothing does not hold its
    /// task forever ([`DEFAULT_HANDSHAKE_TIMEOUT`] unless set).
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Removes the handshake timeout: a silent client holds its task until it leaves.
    pub fn no_handshake_timeout(mut self) -> TlsAcceptor {
        self.handshake_timeout = None;
        self
    }

    /// Sets [`TlsStream::set_eof_without_close_notify`] on every stream this acceptor makes:
    /// for servers whose clients close without a TLS `close_notify` (Python's `ssl`, many HTTP
    /// clients) and whose protocol frames its own messages.
    pub fn eof_without_close_notify(mut self, allow: bool) -> TlsAcceptor {
        self.eof_without_close_notify = allow;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server handshake over `stream` and returns the encrypted stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` carrying a [`rustls::Error`] (see `io::Error::get_ref`) when the handshake
    /// fails, for example when the client rejects the certificate or offers no common protocol;
    /// `TimedOut` after the [`handshake_timeout`](Self::handshake_timeout); the stream's errors
    /// (`UnexpectedEof` when the client closes first).
    ///
    /// # Panics
    ///
    /// With a handshake timeout, when polled outside a curio task.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `stream` mid-handshake.
    pub async fn accept<S>(&self, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake =
            futures_rustls::TlsAcceptor::from(Arc::clone(&self.config)).accept(Io::new(stream));
        let s = match self.handshake_timeout {
            // The timeout is the acceptor's own deadline, not the caller's timeout scope (an
            // expiring outer scope drops this one and reports itself), so it is an I/O error.
            Some(d) => curio_kernel::timeout_after(d, handshake)
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the TLS handshake took longer than {d:?}"),
                    )
                })??,
            None => handshake.await?,
        };
        Ok(TlsStream {
            inner: s.into(),
            name: None,
            eof_without_close_notify: self.eof_without_close_notify,
        })
    }
}

/// A TLS connection over the stream `S` (a [`TcpStream`], a [`UnixStream`](crate::UnixStream),
/// or any `AsyncRead + AsyncWrite + Unpin`), on the client or the server side.
///
/// It implements `AsyncRead` and `AsyncWrite`; like any buffered writer, what `poll_write`
/// accepted is only sure to be on its way after `poll_flush`. [`sendall`](Self::sendall) and
/// [`close`](Self::close) flush, and a read sends what an earlier write left queued, so a
/// request-reply exchange never stalls on data stuck in the TLS buffer.
///
/// One task uses it at a time: a read and a write from two tasks at once are not supported.
pub struct TlsStream<S> {
    inner: futures_rustls::TlsStream<Io<S>>,
    /// The name the server's certificate was verified against, on the client side.
    name: Option<String>,
    /// Whether an end of stream at a record boundary without `close_notify` reads as EOF.
    eof_without_close_notify: bool,
}

impl<S: fmt::Debug> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("side", &if self.is_server() { "server" } else { "client" })
            .field("server_name", &self.server_name())
            .field(
                "alpn_protocol",
                &self.alpn_protocol().map(String::from_utf8_lossy),
            )
            .field("stream", self.get_ref())
            .finish()
    }
}

impl<S> TlsStream<S> {
    fn state(&self) -> &rustls::CommonState {
        self.inner.get_ref().1
    }

    /// Whether a peer that closes the underlying stream without a TLS `close_notify` reads as
    /// an end of file (`recv` returns an empty vector, `poll_read` 0) rather than an
    /// `UnexpectedEof` error, provided the stream ended at a TLS record boundary. Off by default.
    ///
    /// The `close_notify` is how TLS tells a clean end from a truncation by an attacker who
    /// closes the TCP connection. Python's `ssl` module (its default `suppress_ragged_eofs`)
    /// and many HTTP clients close without it, so a server that logs `UnexpectedEof` as a
    /// failure reports every normal disconnect of theirs. Turn it on when the application
    /// protocol delimits its own messages (lines, length prefixes, HTTP's `Content-Length`),
    /// so a cut between records is still seen by the protocol. A stream that ends in the
    /// middle of a record is still an `UnexpectedEof` error.
    #[doc(alias = "suppress_ragged_eofs")]
    pub fn set_eof_without_close_notify(&mut self, allow: bool) {
        self.eof_without_close_notify = allow;
    }

    /// Whether [`set_eof_without_close_notify`](Self::set_eof_without_close_notify) is on.
    pub fn eof_without_close_notify(&self) -> bool {
        self.eof_without_close_notify
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().0.io
    }

    /// Whether this is the server side of the connection.
    pub fn is_server(&self) -> bool {
        matches!(self.inner, futures_rustls::TlsStream::Server(_))
    }

    /// The ALPN protocol agreed on in the handshake, if any (Curio's `selected_alpn_protocol`).
    #[doc(alias = "selected_alpn_protocol")]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.state().alpn_protocol()
    }

    /// The server name: on the server side, the name the client sent as SNI (`None` when it sent
    /// none, as clients do when they connect to an IP address); on the client side, the name or
    /// address the server's certificate was verified against.
    #[doc(alias = "server_hostname")]
    pub fn server_name(&self) -> Option<&str> {
        match &self.inner {
            futures_rustls::TlsStream::Server(s) => s.get_ref().1.server_name(),
            futures_rustls::TlsStream::Client(_) => self.name.as_deref(),
        }
    }

    /// The TLS version in use.
    #[doc(alias = "version")]
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.state().protocol_version()
    }

    /// The cipher suite in use.
    #[doc(alias = "cipher")]
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.state().negotiated_cipher_suite()
    }

    /// The certificate chain the peer presented, its own certificate first: the server's on the
    /// client side; on the server side, the client's if it was asked for one.
    #[doc(alias = "getpeercert")]
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.state().peer_certificates()
    }

    /// The rest of the connection's state, for what the methods above do not cover.
    pub fn tls_state(&self) -> &rustls::CommonState {
        self.state()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Wraps the stream in a buffered [`SocketStream`] (Curio's `as_stream()`).
    pub fn as_stream(self) -> SocketStream<TlsStream<S>> {
        SocketStream::new(self)
    }

    /// Receives up to `max` bytes (at most 64 KiB at a time); an empty vector means the peer
    /// closed the connection (with a TLS `close_notify`).
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` when the peer closed the underlying stream without `close_notify` (the
    /// data may have been cut short); `InvalidData` for a TLS protocol error; the stream's
    /// errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: decrypted data stays in the TLS buffer until a call returns it.
    pub async fn recv(&mut self, max: usize) -> io::Result<Vec<u8>> {
        // A TLS record holds at most 16 KiB, so a larger buffer would mostly be zeroed for nothing.
        let mut buf = vec![0; max.min(64 * 1024)];
        let n = self.recv_into(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Receives into `buf` and returns the number of bytes read (0: the peer closed the
    /// connection).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_read(cx, buf)).await
    }

    /// Encrypts and sends all of `data`, and flushes.
    ///
    /// # Errors
    ///
    /// The stream's errors.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future may have sent part of `data`, and the rest of what it
    /// encrypted goes out with the next write, flush or close.
    pub async fn sendall(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_write(cx, data)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        self.flush().await
    }

    /// Sends what the TLS buffer holds.
    ///
    /// # Errors
    ///
    /// The stream's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: what is not sent stays buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Sends a TLS `close_notify`, flushes, and closes the write side of the underlying stream:
    /// the peer reads end-of-file, and this side can still read what the peer sends.
    ///
    /// # Errors
    ///
    /// The stream's errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: calling it again finishes the job.
    pub async fn close(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_close(cx)).await
    }
}

impl<S: AsFd> AsFd for TlsStream<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.state().wants_write() {
            // A write that found the socket full left records queued, and a caller that now waits
            // for a reply (as `SocketStream::write` then `read_line` does) would wait forever.
            // Send them while reading: `Pending` leaves this task woken when the socket is
            // writable, and a write error shows up again on the next write.
            let _ = Pin::new(&mut this.inner).poll_flush(cx);
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e))
                if e.kind() == io::ErrorKind::UnexpectedEof
                    && this.eof_without_close_notify
                    && this.inner.get_ref().0.at_record_boundary() =>
            {
                Poll::Ready(Ok(0))
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// The stream under TLS, with a `poll_write_vectored` that writes every buffer it can.
///
/// rustls hands its queued records over as one vectored write, and the default
/// `poll_write_vectored` writes only the first buffer. When a handshake fails, futures-rustls
/// makes one last write of what is queued before it drops the connection: with the default, a
/// server that rejects the client's ALPN would send its ServerHello but not the alert after it,
/// and the client would see a broken pipe instead of the reason.
///
/// It also follows the TLS record framing of what it reads (a 5-byte header whose last two
/// bytes give the body's length), so that an end of stream can be told to fall between records
/// or inside one (see [`TlsStream::set_eof_without_close_notify`]).
struct Io<S> {
    io: S,
    /// Header bytes of the next record seen so far (0 to 4).
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current record still to come.
    body_left: usize,
}

impl<S> Io<S> {
    fn new(io: S) -> Io<S> {
        Io {
            io,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    /// Whether every record read so far is complete.
    fn at_record_boundary(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }

    /// Follows the record framing through `data`, the next bytes read.
    fn track(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                self.header_len = 0;
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Io<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.track(&buf[..n]);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Io<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let inner = &mut self.get_mut().io;
        let mut total = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            match Pin::new(&mut *inner).poll_write(cx, buf) {
                Poll::Ready(Ok(n)) => {
                    total += n;
                    if n < buf.len() {
                        break;
                    }
                }
                // What was written counts; the error or the wait comes back on the next call.
                Poll::Ready(Err(_)) | Poll::Pending if total > 0 => break,
                other => return other,
            }
        }
        Poll::Ready(Ok(total))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}

/// Connects to `host` with [`open_connection`] (Happy Eyeballs) and runs the TLS handshake,
/// verifying the server's certificate against `host` (Curio's `open_connection(host, port,
/// ssl=...)`).
///
/// To verify against another name than the one connected to, use [`open_connection`] and
/// [`TlsConnector::connect`].
///
/// # Errors
///
/// `InvalidInput` when `host` is neither a DNS name nor an IP address; the errors of
/// [`open_connection`] and of [`TlsConnector::connect`].
///
/// # Cancel safety
///
/// Dropping the future cancels the connection attempts or the handshake and closes the socket.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// use curio::net::tls::{TlsConnector, open_tls_connection};
///
/// curio::run(async {
///     let connector = TlsConnector::from_pem_file("ca.pem", &[b"http/1.1"])?;
///     let mut s = open_tls_connection("localhost", 25443, &connector).await?;
///     s.sendall(b"hello\n").await?;
///     println!("{:?}", s.recv(1000).await?);
///     s.close().await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn open_tls_connection(
    host: &str,
    port: u16,
    connector: &TlsConnector,
) -> io::Result<TlsStream<TcpStream>> {
    // Checked first, so that a name TLS cannot verify fails without touching the network.
    let name = server_name(host)?;
    let stream = open_connection(host, port).await?;
    connector.connect_to(name, stream).await
}

/// Binds `addr` like [`tcp_server`](crate::tcp_server) and serves each connection with
/// `handler(tls_stream, peer)` in a task of its own, forever, after a TLS handshake that runs in
/// that task (Curio's `tcp_server(..., ssl=...)`).
///
/// A failed handshake is reported on stderr like a failed handler and never stops the server.
///
/// # Errors
///
/// When binding fails, or `accept` fails with an error other than running out of descriptors.
///
/// # Cancel safety
///
/// As [`tcp_server`](crate::tcp_server): cancelling the server's task, or a curio scope around
/// it expiring, closes the listener and cancels every client task and waits for them; a drop
/// curio does not control only requests their cancellation.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// use curio::net::TcpStream;
/// use curio::net::tls::{TlsAcceptor, TlsStream, tls_server};
///
/// async fn echo(mut s: TlsStream<TcpStream>, _peer: std::net::SocketAddr) -> std::io::Result<()> {
///     loop {
///         let data = s.recv(65536).await?;
///         if data.is_empty() {
///             return s.close().await;
///         }
///         s.sendall(&data).await?;
///     }
/// }
///
/// let acceptor = TlsAcceptor::from_pem_files("server.pem", "server.key", &[])?;
/// curio::run(tls_server("0.0.0.0:25443", acceptor, echo))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn tls_server<H, Fut>(
    addr: impl ToSocketAddrs,
    acceptor: TlsAcceptor,
    handler: H,
) -> io::Result<()>
where
    H: Fn(TlsStream<TcpStream>, SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match tcp_server_socket(a, 100, true, false) {
            Ok(l) => return run_tls_server(l, acceptor, handler).await,
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| invalid("the address resolved to nothing".to_owned())))
}

/// Serves connections from `listener` over TLS, one task per client (Curio's `run_server` with
/// an SSL context): [`run_server`](crate::run_server) with the handshake first in each client's
/// task.
///
/// # Errors
///
/// As [`run_server`](crate::run_server).
///
/// # Cancel safety
///
/// As [`run_server`](crate::run_server): cancelling the server's task, or a curio scope around
/// it expiring, cancels every client task and waits for them; a drop curio does not control
/// only requests their cancellation.
pub async fn run_tls_server<L, H, Fut>(
    listener: L,
    acceptor: TlsAcceptor,
    handler: H,
) -> io::Result<()>
where
    L: Listener,
    L::Stream: AsyncRead + AsyncWrite + Unpin,
    H: Fn(TlsStream<L::Stream>, L::Addr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    run_tls_server_with(listener, acceptor, handler, ServerOptions::default()).await
}

/// [`run_tls_server`] with [`ServerOptions`].
///
/// # Errors
///
/// As [`run_server`](crate::run_server).
///
/// # Cancel safety
///
/// As [`run_server`](crate::run_server): cancelling the server's task, or a curio scope around
/// it expiring, cancels every client task and waits for them; a drop curio does not control
/// only requests their cancellation.
pub async fn run_tls_server_with<L, H, Fut>(
    listener: L,
    acceptor: TlsAcceptor,
    handler: H,
    options: ServerOptions,
) -> io::Result<()>
where
    L: Listener,
    L::Stream: AsyncRead + AsyncWrite + Unpin,
    H: Fn(TlsStream<L::Stream>, L::Addr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    // The handler is called inside each client's task, after its handshake, so the tasks share it.
    let handler = Rc::new(handler);
    let serve_one = move |stream: L::Stream, peer: L::Addr| {
        let handler = Rc::clone(&handler);
        let acceptor = acceptor.clone();
        async move {
            let tls = acceptor
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            match handler(tls, peer).await.failure() {
                Some(message) => Err(message),
                None => Ok(()),
            }
        }
    };
    run_server_with(listener, serve_one, options).await
}
