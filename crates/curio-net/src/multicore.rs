//! Servers across kernels: a TCP server on every kernel of a [`MultiKernel`], so a program that
//! outgrows one core keeps Curio's model (one task per client, on the kernel that accepted it).
//!
//! Two ways to spread connections ([`Spread`]):
//!
//! - [`Spread::ReusePort`] (the default): each kernel has a listener of its own, all bound with
//!   `SO_REUSEPORT` to the same address, and the operating system spreads incoming connections
//!   between them (Linux hashes each connection's addresses and ports).
//! - [`Spread::SingleAcceptor`]: kernel 0 accepts every connection and hands them to the kernels
//!   in turn, for systems where `SO_REUSEPORT` balances badly (few clients, one source address):
//!   through a `UniversalQueue` per kernel, which that kernel's server accepts from, so its
//!   clients belong to its server as they would with a listener of its own.
//!
//! `SO_REUSEPORT` pitfalls: every listener must bind the same concrete port, so a port of 0 is
//! resolved once and reused ([`reuse_port_listeners`] does it); and closing one listener resets
//! the connections still queued on it, so the listeners live as long as their servers.
//!
//! Shutdown is per kernel, in Curio's order: when the runtime stops (a [`ServerShutdown`] in
//! the options, or a kernel's server failing), each kernel cancels its client tasks.
//!
//! [`ServerShutdown`]: crate::ServerShutdown

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use curio_kernel::{KernelFailed, MultiKernel};

use curio_sync::UniversalQueue;

use crate::server::{ClientOutcome, Listener, ServerOptions, ServerShutdown, run_server_with};
use crate::tcp::{TcpListener, TcpStream, tcp_server_socket};

/// How a multi-kernel server ([`tcp_server_multi`]) spreads connections over its kernels.
///
/// With `SO_REUSEPORT`, Linux hashes each connection's addresses and ports to pick a
/// listener, so few clients from one address may land unevenly; one acceptor spreads them
/// exactly, at the cost of a hand-off between kernels per connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Spread {
    /// A listener per kernel, bound with `SO_REUSEPORT`: the operating system picks.
    #[default]
    ReusePort,
    /// One acceptor (on kernel 0) hands the connections to the kernels in turn.
    SingleAcceptor,
}

/// `n` standard listeners bound with `SO_REUSEADDR` and `SO_REUSEPORT` to the same concrete
/// address (a port of 0 is chosen once, by the first), in listening mode, for `n` kernels.
///
/// # Errors
///
/// When a socket cannot be made, bound or put in listening mode.
///
/// # Examples
///
/// ```
/// # mod curio { pub mod net { pub use curio_net::*; } }
/// let ls = curio::net::reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 2)?;
/// assert_eq!(ls[0].local_addr()?, ls[1].local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn reuse_port_listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    // Plain std listeners: each is registered with a reactor only once a kernel wraps it.
    let bind = |addr| io::Result::Ok(tcp_server_socket(addr, 1024, true, true)?.into_std());
    let first = bind(addr)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind(addr)?);
    }
    Ok(all)
}

/// Serves `addr` on every kernel of `rt` with `handler(stream, peer)` in a task per client (as
/// [`run_server_with`] on each kernel), spreading the connections as `spread` says, until the
/// options' [`ServerShutdown`](crate::ServerShutdown) is triggered or a kernel's server fails;
/// then every kernel is shut down. Blocks the calling thread.
///
/// The handler is `Clone + Send + Sync`: each kernel gets a copy, and builds each client's
/// future on its own thread (so the future need not be `Send`).
///
/// # Errors
///
/// When the listeners cannot be bound, a kernel's server fails (the first error), or a kernel
/// panicked.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::{KernelFailed, MultiKernel}; pub mod net { pub use curio_net::*; } }
/// use curio::net::{ServerOptions, Spread, TcpStream, tcp_server_multi};
///
/// async fn echo(client: TcpStream, _: std::net::SocketAddr) -> std::io::Result<()> {
///     loop {
///         let data = client.recv(65536).await?;
///         if data.is_empty() {
///             return Ok(());
///         }
///         client.sendall(&data).await?;
///     }
/// }
///
/// let rt = curio::MultiKernel::builder().build()?;
/// tcp_server_multi(rt, "0.0.0.0:25000", Spread::ReusePort, ServerOptions::default(), echo)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn tcp_server_multi<H, Fut>(
    rt: MultiKernel,
    addr: impl ToSocketAddrs,
    spread: Spread,
    options: ServerOptions,
    handler: H,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
    let listeners = match spread {
        Spread::ReusePort => reuse_port_listeners(addr, rt.len())?,
        Spread::SingleAcceptor => vec![tcp_server_socket(addr, 1024, true, false)?.into_std()],
    };
    tcp_server_multi_on(rt, listeners, options, handler)
}

/// As [`tcp_server_multi`], on listeners the caller has bound (so it knows the address before
/// the server starts): one listener per kernel (as [`reuse_port_listeners`] makes) serves as
/// [`Spread::ReusePort`]; a single listener on a runtime of several kernels serves as
/// [`Spread::SingleAcceptor`].
///
/// # Errors
///
/// `InvalidInput` when the number of listeners is neither 1 nor the number of kernels; else as
/// [`tcp_server_multi`].
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::{KernelFailed, MultiKernel}; pub mod net { pub use curio_net::*; } }
/// use curio::net::{ServerOptions, TcpStream, reuse_port_listeners, tcp_server_multi_on};
///
/// let rt = curio::MultiKernel::builder().kernels(2).build()?;
/// let listeners = reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 2)?;
/// println!("serving on {}", listeners[0].local_addr()?);
/// let hello = |c: TcpStream, _| async move { c.sendall(b"hello\n").await };
/// tcp_server_multi_on(rt, listeners, ServerOptions::default(), hello)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn tcp_server_multi_on<H, Fut>(
    rt: MultiKernel,
    mut listeners: Vec<std::net::TcpListener>,
    options: ServerOptions,
    handler: H,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    // One stop for every kernel's server: the caller's shutdown, forwarded, or any kernel's
    // server failing, so that no kernel serves on alone (and `run` returns).
    let mut options = options;
    let user = options.shutdown.take();
    let stop = ServerShutdown::new();
    let options = options.shutdown(&stop);
    let outcomes = if listeners.len() == rt.len() {
        let slots: Arc<Mutex<Vec<Option<std::net::TcpListener>>>> =
            Arc::new(Mutex::new(listeners.into_iter().map(Some).collect()));
        rt.run(move |index| {
            let listener = slots.lock().unwrap_or_else(|e| e.into_inner())[index].take();
            let (handler, options) = (handler.clone(), options.clone());
            kernel_part(stop.clone(), user.clone(), async move {
                let listener = listener.ok_or_else(|| io::Error::other("listener taken twice"))?;
                run_server_with(TcpListener::from_std(listener)?, handler, options).await
            })
        })
    } else if listeners.len() == 1 {
        let listener = listeners.remove(0);
        single_acceptor(rt, listener, options, (stop, user), handler)
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} listeners for {} kernels: give one, or one per kernel",
                listeners.len(),
                rt.len()
            ),
        ));
    };
    match outcomes {
        Ok(results) => results.into_iter().collect(),
        Err(failed) => Err(io::Error::other(failed.to_string())),
    }
}

/// The connections kernel 0 accepted for one kernel, waiting for that kernel's server.
type HandOff = UniversalQueue<(std::net::TcpStream, SocketAddr)>;

/// A kernel's end of the single acceptor: its server accepts from the queue kernel 0 fills, so
/// its clients are its own server's, with the same grace period and cancellation as a
/// listener's.
struct HandOffListener(HandOff);

impl Listener for HandOffListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (std, peer) = self
            .0
            .get()
            .await
            .map_err(|_| io::Error::other("the acceptor's hand-off queue was closed"))?;
        // `into_std` left it non-blocking: only the registration with this kernel is new.
        Ok((TcpStream::from_nonblocking(std), peer))
    }
}

/// Kernel 0 accepts on the one listener and hands each connection to the kernels in turn,
/// through a queue per kernel; every kernel (kernel 0 too) serves its queue with
/// [`run_server_with`], so a stop gives each kernel's clients the grace period and then cancels
/// them together, as with a listener per kernel.
fn single_acceptor<H, Fut>(
    rt: MultiKernel,
    listener: std::net::TcpListener,
    options: ServerOptions,
    (stop, user): (ServerShutdown, Option<ServerShutdown>),
    handler: H,
) -> Result<Vec<io::Result<()>>, KernelFailed>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let slot = Arc::new(Mutex::new(Some(listener)));
    let queues: Arc<[HandOff]> = (0..rt.len()).map(|_| UniversalQueue::new(0)).collect();
    let next = Arc::new(AtomicUsize::new(0));
    rt.run(move |index| {
        let listener = if index == 0 {
            slot.lock().unwrap_or_else(|e| e.into_inner()).take()
        } else {
            None
        };
        let (handler, options, queues, next) = (
            handler.clone(),
            options.clone(),
            queues.clone(),
            next.clone(),
        );
        let stopped = stop.clone();
        kernel_part(stop.clone(), user.clone(), async move {
            let mine = HandOffListener(queues[index].clone());
            let Some(listener) = listener else {
                return run_server_with(mine, handler, options).await;
            };
            // Kernel 0 also accepts: a server of its own on the listener, whose "clients" only
            // pass each connection on (so accept errors are handled as any server's are).
            let dispatch = move |stream: TcpStream, peer: SocketAddr| {
                let k = next.fetch_add(1, Ordering::Relaxed) % queues.len();
                // Off this kernel's reactor; the chosen kernel registers it with its own. The
                // queue is unbounded, and closed by no one: the put cannot fail.
                let _ = queues[k].try_put((stream.into_std(), peer));
                async {}
            };
            // A failing acceptor stops every kernel's server (which would wait for ever on its
            // queue otherwise), as a failing server does.
            let acceptor = curio_kernel::spawn(kernel_part(
                stopped.clone(),
                None,
                run_server_with(TcpListener::from_std(listener)?, dispatch, options.clone()),
            ));
            let served = run_server_with(mine, handler, options).await;
            if served.is_err() {
                stopped.shutdown();
            }
            let accepted = acceptor
                .join()
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
            served.and(accepted)
        })
    })
}

/// A kernel's part of a multi-kernel server: forwards the caller's shutdown `user` to `stop`
/// (from a daemon task, cancelled when the kernel shuts down), runs `serve`, and triggers
/// `stop` if it fails, so that the other kernels' servers stop too.
async fn kernel_part(
    stop: ServerShutdown,
    user: Option<ServerShutdown>,
    serve: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    if let Some(user) = user {
        let stop = stop.clone();
        drop(curio_kernel::spawn_daemon(async move {
            user.wait().await;
            stop.shutdown();
        }));
    }
    let outcome = serve.await;
    if outcome.is_err() {
        stop.shutdown();
    }
    outcome
}
