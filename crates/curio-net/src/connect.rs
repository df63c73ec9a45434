//! Opening connections: `create_connection`, `open_connection` with Happy Eyeballs, and
//! `open_unix_connection`.
//!
//! `happy_eyeballs` is generic over targets and connector, so tests can fake both: attempts start a
//! stagger delay apart in a `Wait::Object` task group, a failure starts the next at once, the first
//! success wins, and the losers are cancelled and waited for before it returns; when all fail,
//! `ConnectErrors` lists every error in order.
//! `open_connection` resolves the name, interleaves the address families and runs it;
//! `create_connection` binds a source address, then connects.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use curio_kernel::{TaskGroup, Wait, ignore_after};

use crate::tcp::TcpStream;
use crate::unix::UnixStream;

/// The stagger between Happy Eyeballs attempts that RFC 8305 recommends.
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// Connects to `addr`, from `source_addr` if given (Curio's `create_connection`).
///
/// # Errors
///
/// When binding the source or connecting fails.
///
/// # Cancel safety
///
/// Dropping the future closes the half-open socket.
pub async fn create_connection(
    addr: SocketAddr,
    source_addr: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    TcpStream::connect_from(addr, source_addr).await
}

/// Resolves `host` on a worker thread and connects to it with Happy Eyeballs (RFC 8305):
/// attempts start [`HAPPY_EYEBALLS_DELAY`] apart, alternating address families, the first to
/// connect wins and the others are cancelled (their sockets closed).
///
/// # Errors
///
/// A resolution error, or [`ConnectErrors`] (as an `io::Error` of kind `ConnectionRefused`,
/// or the only error's kind) with every attempt's error when all fail.
///
/// # Cancel safety
///
/// Dropping the future cancels every attempt and closes their sockets.
pub async fn open_connection(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs = crate::getaddrinfo(host, port).await?;
    happy_eyeballs(interleave(addrs), HAPPY_EYEBALLS_DELAY, |a| {
        TcpStream::connect_from(a, None)
    })
    .await
    .map_err(ConnectErrors::into_io)
}

/// Connects to the Unix-domain socket at `path` (Curio's `open_unix_connection`).
///
/// # Errors
///
/// When nothing listens there.
///
/// # Cancel safety
///
/// Cancel safe.
pub async fn open_unix_connection(path: impl AsRef<Path>) -> io::Result<UnixStream> {
    UnixStream::connect(path).await
}

/// Reorders addresses so that families alternate, starting with the first one's (RFC 8305 §4).
pub fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut a, mut b): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(a.len() + b.len());
    loop {
        match (a.pop(), b.pop()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// The errors of every failed attempt, in the order the attempts started.
#[derive(Debug)]
pub struct ConnectErrors(pub Vec<io::Error>);

impl ConnectErrors {
    fn into_io(self) -> io::Error {
        let kind = match self.0.as_slice() {
            [only] => only.kind(),
            _ => io::ErrorKind::ConnectionRefused,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for ConnectErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} connection attempts failed", self.0.len())?;
        for e in &self.0 {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectErrors {}

/// Happy Eyeballs over any targets and connector: starts `connect(target)` for each target in
/// turn, `delay` apart (sooner when an attempt fails), and returns the first success; the other
/// attempts are cancelled. This is Curio README's `open_tcp_stream`, with a [`TaskGroup`].
///
/// # Errors
///
/// [`ConnectErrors`] with every attempt's error when all fail (an empty list when there is no
/// target).
///
/// # Cancel safety
///
/// Dropping the future cancels every attempt.
///
/// # Examples
///
/// A fake connector: the first target hangs, the second connects.
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; pub mod net { pub use curio_net::*; } }
/// use std::time::Duration;
///
/// let mut kernel = curio::Kernel::builder().virtual_clock(true).build();
/// let won = kernel.run(curio::net::happy_eyeballs(
///     vec![1, 2],
///     Duration::from_millis(300),
///     |t| async move {
///         if t == 1 {
///             std::future::pending::<std::io::Result<u32>>().await
///         } else {
///             Ok(t * 10)
///         }
///     },
/// ));
/// assert_eq!(won.unwrap(), 20);
/// ```
pub async fn happy_eyeballs<A, S, F, Fut>(
    targets: Vec<A>,
    delay: Duration,
    connect: F,
) -> Result<S, ConnectErrors>
where
    A: 'static,
    S: 'static,
    F: Fn(A) -> Fut,
    Fut: Future<Output = io::Result<S>> + 'static,
{
    let n = targets.len();
    let group: TaskGroup<io::Result<S>> = TaskGroup::with_outcomes(Wait::Object);
    let mut errors: Vec<(usize, io::Error)> = Vec::new();
    let mut ids = Vec::with_capacity(n);
    for target in targets {
        // The group is joined only after this loop: spawning cannot fail.
        let r = group.spawn(connect(target));
        ids.push(r.id());
        // Wait up to `delay` for a result; a failure starts the next attempt at once.
        let next = ignore_after(delay, async {
            let t = group.next_done().await?;
            let id = t.id().as_u64() as usize;
            match t.join().await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    errors.push((id, e));
                    None
                }
                Err(e) => {
                    errors.push((id, io::Error::other(e.to_string())));
                    None
                }
            }
        })
        .await;
        if let Some(Some(s)) = next {
            // The losers are cancelled, and waited for, so their sockets are closed on return.
            group.cancel_remaining().await;
            return Ok(s);
        }
    }
    // Every attempt has started: wait for the first success among those still running.
    while let Some(t) = group.next_done().await {
        let id = t.id();
        match t.join().await {
            Ok(Ok(s)) => {
                group.cancel_remaining().await;
                return Ok(s);
            }
            Ok(Err(e)) => errors.push((id.as_u64() as usize, e)),
            Err(e) => errors.push((id.as_u64() as usize, io::Error::other(e.to_string()))),
        }
    }
    errors.sort_by_key(|(id, _)| *id);
    Err(ConnectErrors(errors.into_iter().map(|(_, e)| e).collect()))
}
