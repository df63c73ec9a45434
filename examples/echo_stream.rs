//! A line echo server over buffered streams (Curio's `as_stream()` and `readline`), on port
//! 25000:
//!
//! ```text
//! cargo run --example echo_stream
//! ```
//!
//! Try it with `nc 127.0.0.1 25000` and type lines. Each line comes back once its newline
//! arrives; a line longer than [`MAX_LINE`] bytes ends the connection instead of growing the
//! buffer without bound (Curio's `readline` has no limit). Tests run the same code through
//! [`serve`] on a listener bound to `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;

use curio::net::{TcpListener, TcpStream, run_server};

/// The longest line, newline included, that the server echoes.
pub const MAX_LINE: usize = 64 * 1024;

/// Echoes `client`'s lines until it closes its side.
///
/// # Errors
///
/// The socket's errors, and `InvalidData` for a line longer than [`MAX_LINE`].
pub async fn echo_lines(client: TcpStream, addr: SocketAddr) -> io::Result<()> {
    println!("Connection from {addr}");
    let mut stream = client.as_stream();
    loop {
        let line = stream.read_line(MAX_LINE).await?;
        if line.is_empty() {
            break;
        }
        stream.write(&line).await?;
    }
    println!("Connection closed");
    Ok(())
}

/// Serves `listener` with [`echo_lines`], one task per connection, forever.
///
/// # Errors
///
/// When `accept` fails with anything but running out of descriptors.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    run_server(listener, echo_lines).await
}

fn main() -> io::Result<()> {
    curio::run(async {
        let listener = TcpListener::bind("0.0.0.0:25000")?;
        println!("Server listening at {}", listener.local_addr()?);
        serve(listener).await
    })
}
