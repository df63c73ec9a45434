//! The echo server on every core: a kernel per core, each with its own `SO_REUSEPORT` listener
//! on port 25000, so the operating system spreads the clients over the kernels.
//!
//! ```text
//! cargo run --release --example echo_server_multicore
//! ```
//!
//! Each client is one task on the kernel that accepted it, exactly as in `echo_server`; only
//! `main` changes. Set `CURIO_KERNELS` to choose how many kernels (default: one per core).

use std::io;
use std::net::SocketAddr;

use curio::MultiKernel;
use curio::net::{ServerOptions, Spread, TcpStream, tcp_server_multi};

/// Echoes everything `client` sends until it closes its side.
async fn echo_client(client: TcpStream, _addr: SocketAddr) -> io::Result<()> {
    loop {
        let data = client.recv(100_000).await?;
        if data.is_empty() {
            return Ok(());
        }
        client.sendall(&data).await?;
    }
}

fn main() -> io::Result<()> {
    let mut builder = MultiKernel::builder();
    if let Some(n) = std::env::var("CURIO_KERNELS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        builder = builder.kernels(n);
    }
    let rt = builder.build()?;
    println!("Server listening at 0.0.0.0:25000 on {} kernels", rt.len());
    tcp_server_multi(
        rt,
        "0.0.0.0:25000",
        Spread::ReusePort,
        ServerOptions::default(),
        echo_client,
    )
}
