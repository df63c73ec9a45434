//! The graceful shutdown example, run through its `serve` function in a child process of the
//! test binary (signal dispositions are process-wide).

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/graceful_shutdown.rs"]
mod graceful_shutdown;

use std::time::Duration;

use curio::net::{TcpListener, TcpStream};

use crate::bounded;
use crate::child::in_child;

#[test]
fn sigterm_drains_the_clients_then_the_server_returns() {
    if !in_child(
        "shutdown::sigterm_drains_the_clients_then_the_server_returns",
        &[],
    ) {
        return;
    }
    curio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = curio::spawn(graceful_shutdown::serve(listener, Duration::from_secs(60)));
        let client = TcpStream::connect(addr).await.unwrap();
        client.sendall(b"ping").await.unwrap();
        assert_eq!(bounded("echo", client.recv(100)).await.unwrap(), b"ping");
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
            .unwrap();
        // New connections are refused once the signal has been handled.
        bounded("listener closed", async {
            loop {
                match TcpStream::connect(addr).await {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                    // Accepted before the signal arrived: close it, and try again.
                    _ => curio::yield_now().await,
                }
            }
        })
        .await;
        // The connected client is still served.
        client.sendall(b"pong").await.unwrap();
        assert_eq!(bounded("echo", client.recv(100)).await.unwrap(), b"pong");
        drop(client);
        bounded("server", server.join()).await.unwrap().unwrap();
    });
}
