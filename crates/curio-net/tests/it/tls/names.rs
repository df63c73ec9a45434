//! SNI and ALPN: what each side sees after the handshake.

use curio_net::UnixStream;
use curio_net::tls::rustls::Error as TlsError;
use curio_net::tls::{TlsAcceptor, TlsConnector};

use super::{acceptor, connector, run, tls_error};

/// What one side saw: its SNI and ALPN protocol, or its handshake error.
type Seen = Result<(Option<String>, Option<Vec<u8>>), std::io::Error>;

/// Runs one handshake over a socket pair, the client verifying against `name`.
fn handshake(acceptor: TlsAcceptor, connector: TlsConnector, name: &'static str) -> (Seen, Seen) {
    run(async move {
        let (a, b) = UnixStream::pair().unwrap();
        let server = curio_kernel::spawn(async move {
            let s = acceptor.accept(b).await?;
            Ok((
                s.server_name().map(str::to_owned),
                s.alpn_protocol().map(<[u8]>::to_vec),
            ))
        });
        // The client is kept until the server is done: after the client's last handshake
        // message, the server still sends its session tickets.
        let client = connector.connect(name, a).await;
        let server = server.join().await.unwrap();
        let client = client.map(|c| {
            (
                c.server_name().map(str::to_owned),
                c.alpn_protocol().map(<[u8]>::to_vec),
            )
        });
        (client, server)
    })
}

#[test]
fn sni_and_alpn_are_negotiated() {
    let (client, server) = handshake(
        acceptor(&[b"h2", b"http/1.1"]),
        connector(&[b"spdy/1", b"http/1.1"]),
        "localhost",
    );
    let sni = Some("localhost".to_owned());
    let alpn = Some(b"http/1.1".to_vec());
    assert_eq!(server.unwrap(), (sni.clone(), alpn.clone()));
    assert_eq!(client.unwrap(), (sni, alpn));
}

#[test]
fn the_server_prefers_its_own_alpn_order() {
    let (client, server) = handshake(
        acceptor(&[b"h2", b"http/1.1"]),
        connector(&[b"http/1.1", b"h2"]),
        "localhost",
    );
    assert_eq!(server.unwrap().1.as_deref(), Some(&b"h2"[..]));
    assert_eq!(client.unwrap().1.as_deref(), Some(&b"h2"[..]));
}

#[test]
fn no_alpn_when_the_client_offers_none() {
    let (client, server) = handshake(acceptor(&[b"h2"]), connector(&[]), "localhost");
    assert_eq!(server.unwrap().1, None);
    assert_eq!(client.unwrap().1, None);
}

#[test]
fn no_sni_for_an_ip_address() {
    // The certificate is valid for 127.0.0.1 too, but clients send no SNI for an address.
    let (client, server) = handshake(acceptor(&[]), connector(&[]), "127.0.0.1");
    assert_eq!(server.unwrap().0, None);
    assert_eq!(client.unwrap().0.as_deref(), Some("127.0.0.1"));
}

#[test]
fn alpn_mismatch_fails_both_sides() {
    let (client, server) = handshake(acceptor(&[b"h2"]), connector(&[b"imap"]), "localhost");
    let server = server.unwrap_err();
    assert!(
        matches!(tls_error(&server), Some(TlsError::NoApplicationProtocol)),
        "{server:?}"
    );
    let client = client.unwrap_err();
    assert!(
        matches!(tls_error(&client), Some(TlsError::AlertReceived(_))),
        "{client:?}"
    );
}
