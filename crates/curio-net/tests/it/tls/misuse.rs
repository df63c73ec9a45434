//! Misuse gives `InvalidInput` (or the file's own error) with a message that says what is wrong,
//! never a panic.

use std::io;

use curio_net::tls::{
    TlsAcceptor, TlsConnector, client_config, client_config_from_file, open_tls_connection,
    server_config, server_config_from_files,
};

use super::{CERTS, cert, connector, run};

/// Asserts `r` failed with `InvalidInput` and a message containing `needle`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: io::Result<T>, needle: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains(needle), "{needle:?} not in {e:?}");
}

#[test]
fn bad_pem_for_the_ca() {
    assert_invalid(client_config(b"", &[]), "no certificate");
    assert_invalid(client_config(b"hello, world", &[]), "no certificate");
    // A key where certificates should be: no certificate either.
    assert_invalid(client_config(&cert("server.key"), &[]), "no certificate");
    assert_invalid(
        client_config(
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            &[],
        ),
        "bad PEM",
    );
    // Good base64 that is not a certificate.
    assert_invalid(
        client_config(
            b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
            &[],
        ),
        "bad CA certificate",
    );
    // A certificate cut short: its end marker is missing.
    let ca = cert("ca.pem");
    assert_invalid(client_config(&ca[..ca.len() / 2], &[]), "bad PEM");
}

#[test]
fn bad_pem_for_the_server() {
    let chain = cert("server.pem");
    let key = cert("server.key");
    assert_invalid(server_config(b"", &key, &[]), "no certificate");
    assert_invalid(server_config(&key, &key, &[]), "no certificate");
    assert_invalid(server_config(&chain, b"", &[]), "no private key");
    assert_invalid(server_config(&chain, &chain, &[]), "no private key");
    assert_invalid(
        server_config(
            &chain,
            b"-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n",
            &[],
        ),
        "unusable",
    );
    assert_invalid(TlsAcceptor::from_pem(b"", &key, &[]), "no certificate");
}

#[test]
fn a_key_that_does_not_match_the_certificate() {
    assert_invalid(
        server_config(&cert("server.pem"), &cert("ca.key"), &[]),
        "does not match",
    );
    // The CA's certificate with the server's key: a mismatch as well.
    assert_invalid(
        TlsAcceptor::from_pem(&cert("ca.pem"), &cert("server.key"), &[]),
        "does not match",
    );
}

#[test]
fn missing_files_name_the_path() {
    let missing = format!("{CERTS}/no-such-file.pem");
    let e = client_config_from_file(&missing, &[]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-file.pem"), "{e}");
    let e = server_config_from_files(&missing, format!("{CERTS}/server.key"), &[]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e = TlsAcceptor::from_pem_files(format!("{CERTS}/server.pem"), &missing, &[]).unwrap_err();
    assert!(e.to_string().contains("no-such-file.pem"), "{e}");
    // The files that exist work.
    TlsConnector::from_pem_file(format!("{CERTS}/ca.pem"), &[]).unwrap();
    TlsAcceptor::from_pem_files(
        format!("{CERTS}/server.pem"),
        format!("{CERTS}/server.key"),
        &[],
    )
    .unwrap();
}

#[test]
fn bad_server_names() {
    run(async {
        let (a, _b) = curio_net::UnixStream::pair().unwrap();
        assert_invalid(
            connector(&[]).connect("not a name!", a).await,
            "bad TLS server name",
        );
        // Checked before any connection is tried: nothing listens on port 9 here.
        assert_invalid(
            open_tls_connection("bad name", 9, &connector(&[])).await,
            "bad TLS server name",
        );
    });
}

#[test]
fn acceptors_have_a_handshake_timeout_by_default() {
    let a = TlsAcceptor::from_pem(&cert("server.pem"), &cert("server.key"), &[]).unwrap();
    let shown = format!("{a:?}");
    assert!(
        shown.contains(&format!(
            "{:?}",
            Some(curio_net::tls::DEFAULT_HANDSHAKE_TIMEOUT)
        )),
        "{shown}"
    );
    let none = format!("{:?}", a.no_handshake_timeout());
    assert!(none.contains("handshake_timeout: None"), "{none}");
}
