//! The workspace's HTTP examples, run through their `serve` and `fetch` functions on
//! `127.0.0.1:0`.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../../../examples/http_server.rs"]
mod http_server;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../../../examples/http_client.rs"]
mod http_client;

use curio_hyper::hyper::{StatusCode, Version};
use curio_net::ServerShutdown;
use curio_net::tls::TlsConnector;

use super::*;

#[test]
fn http_client_example_fetches_from_the_http_server_example() {
    run_virtual(async {
        let (plain, tls) = (listener(), listener());
        let (plain_port, tls_port) = (
            plain.local_addr().unwrap().port(),
            tls.local_addr().unwrap().port(),
        );
        let stop = ServerShutdown::new();
        let acceptor = http_server::acceptor(super::http2::CERTS).unwrap();
        let s = stop.clone();
        let server =
            curio_kernel::spawn(async move { http_server::serve(plain, tls, acceptor, &s).await });
        let ca = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../curio-net/tests/certs/ca.pem"
        );
        let paths = ["/", "/stream", "/nothing"];
        for (alpn, version) in [
            (&[&b"h2"[..], b"http/1.1"][..], Version::HTTP_2),
            (&[&b"http/1.1"[..]][..], Version::HTTP_11),
        ] {
            let connector = TlsConnector::from_pem_file(ca, alpn).unwrap();
            let got = http_client::fetch("localhost", tls_port, Some(&connector), &paths)
                .await
                .unwrap();
            check(&got, version);
        }
        let got = http_client::fetch("localhost", plain_port, None, &paths)
            .await
            .unwrap();
        check(&got, Version::HTTP_11);
        stop.shutdown();
        server.join().await.unwrap().unwrap();
    });
}

/// Checks the answers to `/`, `/stream` and a path that does not exist.
fn check(got: &[http_client::Fetched], version: Version) {
    assert!(got.iter().all(|f| f.version == version), "{got:?}");
    assert_eq!(got[0].status, StatusCode::OK);
    assert_eq!(got[0].frames.concat(), b"Hello, world!\n");
    // The stream's lines arrive one frame each, since the server sends each after a sleep.
    assert_eq!(got[1].status, StatusCode::OK);
    let lines: Vec<String> = (1..=http_server::TICKS)
        .map(|i| format!("tick {i} of {}\n", http_server::TICKS))
        .collect();
    let frames: Vec<String> = got[1]
        .frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    assert_eq!(frames, lines);
    assert_eq!(got[2].status, StatusCode::NOT_FOUND);
}
