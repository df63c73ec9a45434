//! Graceful server shutdown: `ServerShutdown` stops accepting, lets clients finish within the
//! grace period, then cancels the rest.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use curio_kernel::Kernel;
use curio_net::{ServerOptions, ServerShutdown, TcpListener, TcpStream, run_server_with};

async fn echo(client: TcpStream, _: std::net::SocketAddr) -> std::io::Result<()> {
    loop {
        let data = client.recv(1000).await?;
        if data.is_empty() {
            return Ok(());
        }
        client.sendall(&data).await?;
    }
}

#[test]
fn shutdown_lets_clients_finish_and_refuses_new_ones() {
    curio_kernel::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = ServerShutdown::new();
        let options = ServerOptions::default()
            .shutdown(&stop)
            .grace_period(Duration::from_secs(60));
        let server = curio_kernel::spawn(run_server_with(listener, echo, options));
        let client = TcpStream::connect(addr).await.unwrap();
        client.sendall(b"before").await.unwrap();
        assert_eq!(client.recv(100).await.unwrap(), b"before");
        stop.shutdown();
        assert!(stop.is_shutdown());
        // The connected client is still served after the shutdown began.
        client.sendall(b"after").await.unwrap();
        assert_eq!(client.recv(100).await.unwrap(), b"after");
        // The listener is closed: new connections are refused.
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(!server.is_terminated(), "the server waits for its client");
        drop(client);
        server.join().await.unwrap().unwrap();
    });
}

#[test]
fn grace_period_expiry_cancels_the_remaining_clients() {
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    Kernel::builder()
        .virtual_clock(true)
        .build()
        .run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = ServerShutdown::new();
            let options = ServerOptions::default()
                .shutdown(&stop)
                .grace_period(Duration::from_secs(5));
            let handler = move |client: TcpStream, _| {
                let c = c.clone();
                async move {
                    struct Flag(Rc<Cell<bool>>);
                    impl Drop for Flag {
                        fn drop(&mut self) {
                            self.0.set(true);
                        }
                    }
                    let _flag = Flag(c);
                    client.sendall(b"hi").await.unwrap();
                    // Never ends by itself.
                    curio_kernel::sleep(Duration::from_secs(3600)).await;
                }
            };
            let server = curio_kernel::spawn(run_server_with(listener, handler, options));
            let client = TcpStream::connect(addr).await.unwrap();
            assert_eq!(client.recv(100).await.unwrap(), b"hi");
            let started = curio_kernel::clock();
            stop.shutdown();
            server.join().await.unwrap().unwrap();
            assert_eq!(curio_kernel::clock() - started, Duration::from_secs(5));
        });
    assert!(cancelled.get(), "the client was cancelled");
}

#[test]
fn shutdown_before_the_server_starts_returns_at_once() {
    curio_kernel::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stop = ServerShutdown::new();
        stop.shutdown();
        let options = ServerOptions::default().shutdown(&stop);
        run_server_with(listener, echo, options).await.unwrap();
    });
}

#[test]
fn shutdown_from_another_thread() {
    curio_kernel::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stop = ServerShutdown::new();
        let options = ServerOptions::default().shutdown(&stop);
        let remote = stop.clone();
        let t = std::thread::spawn(move || remote.shutdown());
        curio_kernel::timeout_after(
            Duration::from_secs(30),
            run_server_with(listener, echo, options),
        )
        .await
        .expect("the server stops")
        .unwrap();
        t.join().unwrap();
    });
}
