//! `run_tls_server` and `tls_server` with `open_tls_connection` over TCP on loopback (Curio's
//! `test_ssl_server`).

use std::io;
use std::time::Duration;

use curio_net::TcpStream;
use curio_net::tls::rustls::{CertificateError, Error as TlsError};
use curio_net::tls::{open_tls_connection, run_tls_server, tls_server};

use super::{acceptor, connector, echo, loopback_listener, run, tls_error, untrusting_connector};

#[test]
fn ssl_server_echoes_through_open_tls_connection() {
    run(async {
        let listener = loopback_listener();
        let port = listener.local_addr().unwrap().port();
        let server = curio_kernel::spawn(run_tls_server(listener, acceptor(&[]), echo));
        let connector = connector(&[]);
        // Both names are in the certificate; "localhost" may also resolve to ::1, where nothing
        // listens, and Happy Eyeballs moves on to 127.0.0.1.
        for host in ["127.0.0.1", "localhost"] {
            let mut s = open_tls_connection(host, port, &connector).await.unwrap();
            assert_eq!(s.server_name(), Some(host));
            assert!(!s.is_server());
            for msg in [&b"hello"[..], b"world", &[0u8; 20_000][..]] {
                s.sendall(msg).await.unwrap();
                let mut got = Vec::new();
                while got.len() < msg.len() {
                    let chunk = s.recv(65536).await.unwrap();
                    assert!(!chunk.is_empty(), "the server closed early");
                    got.extend(chunk);
                }
                assert_eq!(got, msg);
            }
            s.close().await.unwrap();
            // The server answers the close with its own: a clean end-of-file.
            assert_eq!(s.recv(100).await.unwrap(), b"");
        }
        server.cancel().await;
    });
}

#[test]
fn ssl_server_echoes_a_megabyte_in_lockstep() {
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 256) as u8).collect();
    let got = run(async {
        let listener = loopback_listener();
        let port = listener.local_addr().unwrap().port();
        let server = curio_kernel::spawn(run_tls_server(listener, acceptor(&[]), echo));
        let mut s = open_tls_connection("127.0.0.1", port, &connector(&[]))
            .await
            .unwrap();
        // One task cannot write and read at once, so each 64 KiB block is read back before the
        // next one goes out: the server never blocks on a full socket.
        let mut got = Vec::with_capacity(data.len());
        for block in data.chunks(64 * 1024) {
            s.sendall(block).await.unwrap();
            let want = got.len() + block.len();
            while got.len() < want {
                let chunk = s.recv(want - got.len()).await.unwrap();
                assert!(!chunk.is_empty(), "the server closed early");
                got.extend(chunk);
            }
        }
        s.close().await.unwrap();
        server.cancel().await;
        got
    });
    assert!(got == data, "echoed bytes differ");
}

#[test]
fn untrusting_client_fails_and_the_server_keeps_serving() {
    run(async {
        let listener = loopback_listener();
        let port = listener.local_addr().unwrap().port();
        let server = curio_kernel::spawn(run_tls_server(listener, acceptor(&[]), echo));
        for _ in 0..3 {
            let err = open_tls_connection("localhost", port, &untrusting_connector())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            assert!(
                matches!(
                    tls_error(&err),
                    Some(TlsError::InvalidCertificate(
                        CertificateError::UnknownIssuer
                    ))
                ),
                "{err:?}"
            );
        }
        let mut s = open_tls_connection("localhost", port, &connector(&[]))
            .await
            .unwrap();
        s.sendall(b"still here").await.unwrap();
        assert_eq!(s.recv(100).await.unwrap(), b"still here");
        server.cancel().await;
    });
}

#[test]
fn client_checks_the_name_it_connects_to() {
    run(async {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let server = curio_kernel::spawn(run_tls_server(listener, acceptor(&[]), echo));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connector(&[])
            .connect("example.com", tcp)
            .await
            .unwrap_err();
        assert!(
            matches!(tls_error(&err), Some(TlsError::InvalidCertificate(_))),
            "{err:?}"
        );
        server.cancel().await;
    });
}

#[test]
fn plaintext_client_and_handler_errors_do_not_stop_the_server() {
    run(async {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let server = curio_kernel::spawn(run_tls_server(
            listener,
            acceptor(&[]),
            |mut s: curio_net::tls::TlsStream<TcpStream>, _| async move {
                let data = s.recv(100).await?;
                if data == b"fail" {
                    // Nothing waits between this reply and the failure: when the client has the
                    // reply, the handler has failed.
                    s.sendall(b"failing").await?;
                    return Err(io::Error::other("asked to fail"));
                }
                s.sendall(&data).await
            },
        ));
        // A client that is not TLS at all (a record type rustls rejects at once): the server's
        // handshake fails and it answers with an alert or closes the connection.
        let plain = TcpStream::connect(addr).await.unwrap();
        plain.sendall(b"\x47\x03\x01\x00\x04junk").await.unwrap();
        if let Ok(answer) = plain.recv(1000).await {
            // A TLS alert record, or the end of the connection.
            assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        }
        // A client that leaves in the middle of its handshake: the server closes too.
        let quitter = TcpStream::connect(addr).await.unwrap();
        quitter.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(quitter.recv(1000).await.unwrap_or_default().is_empty());
        let connector = connector(&[]);
        let mut s = open_tls_connection("localhost", addr.port(), &connector)
            .await
            .unwrap();
        s.sendall(b"fail").await.unwrap();
        assert_eq!(s.recv(100).await.unwrap(), b"failing");
        // The handler failed and its connection ends: the end of file comes with the reply.
        assert!(s.recv(100).await.unwrap_or_default().is_empty());
        let mut s = open_tls_connection("localhost", addr.port(), &connector)
            .await
            .unwrap();
        s.sendall(b"ok").await.unwrap();
        assert_eq!(s.recv(100).await.unwrap(), b"ok");
        server.cancel().await;
    });
}

#[test]
fn handshake_timeout_drops_a_silent_client() {
    run(async {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let acceptor = acceptor(&[]).handshake_timeout(Duration::from_millis(50));
        let server = curio_kernel::spawn(run_tls_server(listener, acceptor, echo));
        let silent = TcpStream::connect(addr).await.unwrap();
        // The server gives up on the handshake and closes the socket: end-of-file (or a reset).
        match silent.recv(100).await {
            Ok(d) => assert!(d.is_empty(), "{d:?}"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        }
        let mut s = open_tls_connection("localhost", addr.port(), &connector(&[]))
            .await
            .unwrap();
        s.sendall(b"after").await.unwrap();
        assert_eq!(s.recv(100).await.unwrap(), b"after");
        server.cancel().await;
    });
}

#[test]
fn accept_times_out_with_timed_out() {
    run(async {
        let (a, _b) = curio_net::UnixStream::pair().unwrap();
        let acceptor = acceptor(&[]).handshake_timeout(Duration::from_millis(20));
        let err = acceptor.accept(a).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
}

#[test]
fn tls_server_reports_bind_errors() {
    run(async {
        let taken = loopback_listener();
        let addr = taken.local_addr().unwrap();
        let err = tls_server(addr, acceptor(&[]), echo).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    });
}
