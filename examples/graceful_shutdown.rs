//! The echo server, stopped gracefully by Ctrl-C or SIGTERM:
//!
//! ```text
//! cargo run --example graceful_shutdown
//! ```
//!
//! On the signal the server stops accepting and closes its listener, lets the connected clients
//! finish (for up to 10 s), cancels those still connected, and the program exits with status 0.
//! Tests run the same code through [`serve`] on a listener bound to `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use curio::net::{ServerOptions, ServerShutdown, TcpListener, TcpStream, run_server_with};
use curio::signal::{SIGINT, SIGTERM, SignalQueue};

/// Echoes everything `client` sends until it closes its side.
pub async fn echo_client(client: TcpStream, addr: SocketAddr) -> io::Result<()> {
    println!("Connection from {addr}");
    loop {
        let data = client.recv(100_000).await?;
        if data.is_empty() {
            break;
        }
        client.sendall(&data).await?;
    }
    println!("Connection closed");
    Ok(())
}

/// Serves `listener` until SIGINT or SIGTERM, then drains the clients for at most `grace`.
pub async fn serve(listener: TcpListener, grace: Duration) -> io::Result<()> {
    let stop = ServerShutdown::new();
    let signals = SignalQueue::new(&[SIGINT, SIGTERM])?;
    let trigger = stop.clone();
    let watcher = curio::spawn(async move {
        let sig = signals.get().await;
        println!("Signal {sig}: no new connections; draining the clients");
        trigger.shutdown();
    });
    let options = ServerOptions::default().shutdown(&stop).grace_period(grace);
    let served = run_server_with(listener, echo_client, options).await;
    watcher.cancel().await;
    served
}

fn main() -> io::Result<()> {
    curio::run(async {
        let listener = TcpListener::bind("0.0.0.0:25000")?;
        println!("Server listening at {}", listener.local_addr()?);
        serve(listener, Duration::from_secs(10)).await?;
        println!("Server stopped");
        Ok(())
    })
}
