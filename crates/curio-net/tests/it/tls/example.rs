//! The workspace's TLS examples, run through their `serve` and `exchange` functions on
//! `127.0.0.1:0`.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../../../../examples/tls_echo_server.rs"]
mod tls_echo_server;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../../../../examples/tls_client.rs"]
mod tls_client;

use curio_net::tls::open_tls_connection;

use super::{acceptor, connector, loopback_listener, run};

#[test]
fn tls_echo_server_example_echoes_the_client_example() {
    assert_eq!(tls_echo_server::ALPN, tls_client::ALPN);
    run(async {
        let listener = loopback_listener();
        let port = listener.local_addr().unwrap().port();
        let server = curio_kernel::spawn(tls_echo_server::serve(
            listener,
            acceptor(&[tls_echo_server::ALPN]),
        ));
        let lines: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        for _ in 0..3 {
            let stream = open_tls_connection("localhost", port, &connector(&[tls_client::ALPN]))
                .await
                .unwrap();
            assert_eq!(stream.alpn_protocol(), Some(tls_client::ALPN));
            assert_eq!(tls_client::exchange(stream, &lines).await.unwrap(), lines);
        }
        server.cancel().await;
    });
}
