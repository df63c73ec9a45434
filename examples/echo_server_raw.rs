//! The first echo server of Curio's README, written with the raw pieces: a listening socket, an
//! accept loop, and one spawned task per client. On port 25000:
//!
//! ```text
//! cargo run --example echo_server_raw
//! ```
//!
//! Try it with `nc 127.0.0.1 25000`. The `echo_server` example does the same with
//! `run_server`, which also reports failing clients and cancels them with the server.
//! Tests run this code through [`echo_server`] on a listener bound to `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;

use curio::net::{TcpListener, TcpStream};

/// Accepts connections forever, serving each with [`echo_client`] in a task of its own
/// (Curio's `spawn(echo_client, client, addr, daemon=True)`).
///
/// # Errors
///
/// When `accept` fails.
pub async fn echo_server(listener: TcpListener) -> io::Result<()> {
    println!("Server listening at {}", listener.local_addr()?);
    loop {
        let (client, addr) = listener.accept().await?;
        // Dropping the handle detaches the task: it runs on by itself, as in Curio.
        drop(curio::spawn_daemon(async move {
            if let Err(e) = echo_client(client, addr).await {
                println!("Connection from {addr} failed: {e}");
            }
        }));
    }
}

/// Echoes everything `client` sends until it closes its side; the socket is closed on return.
///
/// # Errors
///
/// The socket's errors.
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

fn main() -> io::Result<()> {
    curio::run(async { echo_server(TcpListener::bind("0.0.0.0:25000")?).await })
}
