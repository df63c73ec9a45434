//! `TlsStream` over a Unix socket pair: the handshake needs no TCP (Curio's `test_ssl_socketpair`
//! idea, with rustls).

use std::sync::Arc;

use curio_net::UnixStream;
use curio_net::tls::TlsConnector;
use curio_net::tls::rustls::{self, ClientConfig, ProtocolVersion};

use super::{acceptor, cert, connector, run};

#[test]
fn tls_over_a_unix_socket_pair() {
    run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let acceptor = acceptor(&[]);
        let server = curio_kernel::spawn(async move {
            let mut s = acceptor.accept(b).await.unwrap();
            assert!(s.is_server());
            assert_eq!(s.protocol_version(), Some(ProtocolVersion::TLSv1_3));
            assert!(s.cipher_suite().is_some());
            // The server did not ask for a client certificate.
            assert!(s.peer_certificates().is_none());
            let request = s.recv(100).await.unwrap();
            s.sendall(&[&request[..], b" back"].concat()).await.unwrap();
            // The client's close is a clean end-of-file here.
            assert_eq!(s.recv(100).await.unwrap(), b"");
            s.close().await.unwrap();
        });
        let mut c = connector(&[]).connect("localhost", a).await.unwrap();
        assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(c.peer_certificates().map(<[_]>::len), Some(1));
        c.sendall(b"there").await.unwrap();
        assert_eq!(c.recv(100).await.unwrap(), b"there back");
        c.close().await.unwrap();
        assert_eq!(c.recv(100).await.unwrap(), b"");
        server.join().await.unwrap();
    });
}

#[test]
fn tls12_handshake_over_a_unix_socket_pair() {
    run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let acceptor = acceptor(&[b"x/1"]);
        let server = curio_kernel::spawn(async move {
            let mut s = acceptor.accept(b).await.unwrap();
            assert_eq!(s.protocol_version(), Some(ProtocolVersion::TLSv1_2));
            let data = s.recv(100).await.unwrap();
            s.sendall(&data).await.unwrap();
        });
        // A configuration made with the re-exported rustls: TLS 1.2 only, the same roots.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(root_store(&cert("ca.pem")))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"x/1".to_vec()];
        let mut c = TlsConnector::new(Arc::new(config))
            .connect("localhost", a)
            .await
            .unwrap();
        assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        assert_eq!(c.alpn_protocol(), Some(&b"x/1"[..]));
        c.sendall(b"twelve").await.unwrap();
        assert_eq!(c.recv(100).await.unwrap(), b"twelve");
        server.join().await.unwrap();
    });
}

fn root_store(pem: &[u8]) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}
