//! The echo server of Curio's README, on port 25000:
//!
//! ```text
//! cargo run --release --example echo_server
//! ```
//!
//! Try it with `nc 127.0.0.1 25000`. Tests run the same code through [`serve`] on a listener
//! bound to `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;

use curio::net::{TcpListener, TcpStream, run_server};

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

/// Serves `listener` with [`echo_client`], one task per connection, forever.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    run_server(listener, echo_client).await
}

#[curio::main]
async fn main() -> io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:25000")?;
    println!("Server listening at {}", listener.local_addr()?);
    serve(listener).await
}
