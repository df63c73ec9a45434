//! Happy Eyeballs, as in the "complex example" of Curio's README: resolve a host, then try its
//! addresses with staggered, concurrent connection attempts, and keep the first that succeeds.
//!
//! ```text
//! cargo run --example happy_eyeballs -- [HOST] [PORT]
//! ```
//!
//! `HOST` defaults to `localhost` and `PORT` to 25000 (start the `echo_server` example first).
//! The library's [`curio::net::open_connection`] does the same (RFC 8305); this is the README's
//! version, written out with a [`TaskGroup`] that waits for the first object and
//! [`ignore_after`] for the stagger.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use curio::net::{TcpStream, getaddrinfo};
use curio::{TaskGroup, Wait, ignore_after};

/// Connects to `hostname:port`, starting an attempt on each address `delay` after the previous
/// one (sooner when one fails), and returns the first connection made; the other attempts are
/// cancelled (Curio README's `open_tcp_stream`).
///
/// # Errors
///
/// A resolution error, or every attempt's error (in the order they failed) when none connects.
///
/// # Cancel safety
///
/// Dropping the future cancels every attempt.
pub async fn open_tcp_stream(hostname: &str, port: u16, delay: Duration) -> io::Result<TcpStream> {
    // Get all of the possible targets for a given host and port.
    let targets = order_targets(getaddrinfo(hostname, port).await?);

    // The errors of the attempts, to report in case of total failure.
    let errors: Rc<RefCell<Vec<io::Error>>> = Rc::default();

    // A group of attempts that waits for a single one to return an object (`Some`) and cancels
    // the others when it is joined or dropped.
    let group: TaskGroup<Option<TcpStream>> = TaskGroup::with_outcomes(Wait::Object);

    // Walk the targets and start the attempts with a staggered delay.
    for addr in targets {
        let errors = errors.clone();
        group.spawn(async move {
            match TcpStream::connect(addr).await {
                Ok(sock) => Some(sock),
                Err(e) => {
                    errors.borrow_mut().push(e);
                    None
                }
            }
        });
        // Wait up to `delay` for an attempt to finish; a failed one starts the next at once.
        if let Some(Some(Ok(Some(sock)))) = ignore_after(delay, group.next_result()).await {
            group.cancel_remaining().await;
            return Ok(sock);
        }
    }

    // Every attempt has started: wait for the first success, cancelling the rest.
    group.join().await;
    if let Ok(Some(sock)) = group.result() {
        return Ok(sock);
    }
    let errors = errors.take();
    let kind = errors
        .last()
        .map_or(io::ErrorKind::NotFound, io::Error::kind);
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Err(io::Error::new(
        kind,
        format!(
            "could not connect to {hostname}:{port}: {}",
            list.join("; ")
        ),
    ))
}

/// Clusters the addresses by family (as `itertools.groupby` does, runs of the same family) and
/// puts the first of each cluster first, so the first two attempts use different families.
pub fn order_targets(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut families: Vec<Vec<SocketAddr>> = Vec::new();
    for a in addrs {
        match families.last_mut() {
            Some(f) if f[0].is_ipv4() == a.is_ipv4() => f.push(a),
            _ => families.push(vec![a]),
        }
    }
    let mut targets: Vec<SocketAddr> = families.iter_mut().map(|f| f.remove(0)).collect();
    targets.extend(families.into_iter().flatten());
    targets
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".to_owned());
    let port = match args.next() {
        Some(p) => p
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("port {p}: {e}")))?,
        None => 25000,
    };
    curio::run(async {
        let sock = open_tcp_stream(&host, port, Duration::from_millis(300)).await?;
        println!(
            "Connected to {} from {}",
            sock.peer_addr()?,
            sock.local_addr()?
        );
        Ok(())
    })
}
