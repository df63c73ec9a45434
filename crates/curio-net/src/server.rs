//! Servers: one task per client, in a task group the server owns.
//!
//! `run_server_with(listener, handler, options)` works over a small `Listener` trait (TCP and
//! Unix); `tcp_server`, `unix_server` and `run_server` are its short forms.
//!
//! - Each client runs in a task of a `TaskGroup` the server task owns, so cancelling the server
//!   cancels the clients first; finished clients are reaped with `try_next_done` at each accept.
//! - A failing handler (an `Err` output, through `ClientOutcome`) or a panicking one is reported on
//!   stderr and never stops the server.
//! - An accept error that a resource or a rule caused (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`,
//!   `EPERM`, `EPROTO`) is logged and retried after `ServerOptions::accept_backoff`; one that a
//!   single failed connection caused (`ECONNABORTED` and the network errors Linux passes on from
//!   the new socket) is skipped; only the rest (an unusable listener) stop the server.
//! - A `ServerShutdown` handle in the options (an atomic flag plus a waker slot per waiting
//!   future, freed when the future is dropped; any thread may trigger it) races every accept: triggered, the server drops its listener, waits for its
//!   clients with `next_done` up to `ServerOptions::grace_period`, cancels the rest with
//!   `cancel_remaining`, and returns `Ok(())`.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use curio_kernel::{TaskGroup, Wait};

use crate::tcp::{TcpListener, TcpStream, tcp_server_socket};
use crate::unix::{UnixListener, UnixStream};

/// What a client handler returns: `()` or a `Result` whose error is reported.
pub trait ClientOutcome {
    /// A description of the failure, if the handler failed.
    fn failure(self) -> Option<String>;
}

impl ClientOutcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<T, E: fmt::Display> ClientOutcome for Result<T, E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// A listening socket a server can accept connections from.
#[allow(
    async_fn_in_trait,
    reason = "servers are kernel-local; no Send bound is wanted"
)]
pub trait Listener {
    /// The connection type.
    type Stream: 'static;
    /// The peer address type.
    type Addr: fmt::Debug + 'static;
    /// Accepts one connection.
    ///
    /// # Errors
    ///
    /// `accept`'s errors.
    async fn accept(&self) -> io::Result<(Self::Stream, Self::Addr)>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = std::os::unix::net::SocketAddr;
    async fn accept(&self) -> io::Result<(UnixStream, std::os::unix::net::SocketAddr)> {
        UnixListener::accept(self).await
    }
}

/// Server settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// How long to wait before accepting again after running out of descriptors.
    pub accept_backoff: Duration,
    /// The handle that stops the server gracefully, if any.
    pub shutdown: Option<ServerShutdown>,
    /// How long a graceful shutdown lets the clients finish before it cancels them (10 s by
    /// default).
    pub grace_period: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            accept_backoff: Duration::from_millis(100),
            shutdown: None,
            grace_period: Duration::from_secs(10),
        }
    }
}

impl ServerOptions {
    /// Sets [`accept_backoff`](Self::accept_backoff).
    pub fn accept_backoff(mut self, d: Duration) -> ServerOptions {
        self.accept_backoff = d;
        self
    }

    /// Sets [`shutdown`](Self::shutdown): the server stops gracefully when `handle` is
    /// triggered.
    pub fn shutdown(mut self, handle: &ServerShutdown) -> ServerOptions {
        self.shutdown = Some(handle.clone());
        self
    }

    /// Sets [`grace_period`](Self::grace_period).
    pub fn grace_period(mut self, d: Duration) -> ServerOptions {
        self.grace_period = d;
        self
    }
}

/// Stops servers gracefully: each server given this handle (with [`ServerOptions::shutdown`])
/// stops accepting and closes its listener, lets its clients finish within its
/// [`grace_period`](ServerOptions::grace_period), cancels those still running, and returns
/// `Ok(())`.
///
/// The handle is `Send + Sync` and cheap to clone: a signal task, another server or another
/// thread may trigger it. Triggering it before the server starts makes the server return at
/// once.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod net { pub use curio_net::*; } }
/// use std::time::Duration;
/// use curio::net::{ServerOptions, ServerShutdown, TcpListener, TcpStream, run_server_with};
///
/// curio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let stop = ServerShutdown::new();
///     let options = ServerOptions::default()
///         .shutdown(&stop)
///         .grace_period(Duration::from_secs(1));
///     let server = curio::spawn(run_server_with(
///         listener,
///         |_client: TcpStream, _peer| async {},
///         options,
///     ));
///     stop.shutdown();
///     server.join().await.unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ServerShutdown(Arc<ShutdownState>);

#[derive(Default)]
struct ShutdownState {
    requested: AtomicBool,
    /// The waiting futures' wakers, a slot each; a future frees its slot when dropped, so a
    /// server that lives long does not keep one waker per connection it ever served.
    waiters: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl fmt::Debug for ServerShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerShutdown")
            .field("requested", &self.is_shutdown())
            .finish()
    }
}

impl ServerShutdown {
    /// A handle not yet triggered.
    pub fn new() -> ServerShutdown {
        ServerShutdown::default()
    }

    /// Asks every server with this handle to shut down gracefully; a no-op the second time.
    pub fn shutdown(&self) {
        self.0.requested.store(true, Ordering::Release);
        let wakers: Vec<Waker> = {
            let mut w = self.0.waiters.lock().unwrap_or_else(|e| e.into_inner());
            w.slots.iter_mut().filter_map(Option::take).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.0.requested.load(Ordering::Acquire)
    }

    /// Waits until [`shutdown`](Self::shutdown) is called; returns at once if it was.
    ///
    /// A connection handler races its work against it to stop gracefully itself, as
    /// `curio-hyper` does to let an HTTP connection finish its request in flight.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the future holds nothing but its waker's slot, which it frees when dropped.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        ShutdownWait {
            shutdown: self,
            slot: None,
        }
    }
}

/// [`ServerShutdown::wait`]'s future.
struct ShutdownWait<'a> {
    shutdown: &'a ServerShutdown,
    slot: Option<usize>,
}

impl Future for ShutdownWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let state = &self.shutdown.0;
        if state.requested.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut w = state.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match self.slot {
            Some(i) => i,
            None => w.free.pop().unwrap_or_else(|| {
                w.slots.push(None);
                w.slots.len() - 1
            }),
        };
        match &mut w.slots[slot] {
            Some(old) if old.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        drop(w);
        self.slot = Some(slot);
        // A `shutdown` between the first check and the registration has taken the list already.
        if state.requested.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for ShutdownWait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let mut w = self
                .shutdown
                .0
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            w.slots[i] = None;
            w.free.push(i);
        }
    }
}

/// Runs `fut` until it completes (`Some`) or the shutdown wait `stopped` does (`None`).
///
/// The wait is made once per server and polled here for every accept, so an accept costs no
/// registration with the shutdown handle.
async fn until_shutdown<S, F>(mut stopped: Pin<&mut Option<S>>, fut: F) -> Option<F::Output>
where
    S: Future<Output = ()>,
    F: Future,
{
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Some(s) = stopped.as_mut().as_pin_mut()
            && s.poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Binds `addr` (Curio's `tcp_server_socket` with `SO_REUSEADDR`, backlog 100) and serves each
/// connection with `handler(stream, peer)` in a task of its own, forever (Curio's
/// `tcp_server`).
///
/// # Errors
///
/// When binding fails, or `accept` fails with an error other than running out of descriptors.
///
/// # Cancel safety
///
/// Cancelling the server's task, or a curio scope around it expiring (`timeout_after`,
/// `ignore_after`), closes the listener, cancels every client task and waits until they have
/// terminated. A drop that curio does not control (`select!`, an explicit `drop` of the future)
/// only requests their cancellation: they end in their own turns, after the drop returns.
pub async fn tcp_server<H, Fut>(addr: impl ToSocketAddrs, handler: H) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    tcp_server_with(addr, handler, ServerOptions::default()).await
}

/// [`tcp_server`] with [`ServerOptions`], for example a [`ServerShutdown`] handle that stops it
/// gracefully.
///
/// # Errors
///
/// As [`tcp_server`].
///
/// # Cancel safety
///
/// As [`tcp_server`].
pub async fn tcp_server_with<H, Fut>(
    addr: impl ToSocketAddrs,
    handler: H,
    options: ServerOptions,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match tcp_server_socket(a, 100, true, false) {
            Ok(l) => return run_server_with(l, handler, options).await,
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// Binds a Unix-domain socket at `path` and serves it like [`tcp_server`] (Curio's
/// `unix_server`).
///
/// # Errors
///
/// When binding fails, or `accept` fails.
///
/// # Cancel safety
///
/// Cancelling the server's task, or a curio scope around it expiring (`timeout_after`,
/// `ignore_after`), cancels every client task and waits until they have terminated. A drop
/// that curio does not control (`select!`, an explicit `drop` of the future) only requests
/// their cancellation: they end in their own turns, after the drop returns.
pub async fn unix_server<H, Fut>(path: impl AsRef<Path>, handler: H) -> io::Result<()>
where
    H: Fn(UnixStream, std::os::unix::net::SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    run_server(UnixListener::bind(path)?, handler).await
}

/// Serves connections from `listener`, one task per client (Curio's `run_server`).
///
/// The clients run in a [`TaskGroup`] that the server's task owns: cancelling the server cancels
/// them first. A handler that fails (returns `Err`) or panics is reported on stderr and never
/// stops the server.
///
/// Accept errors that say nothing about the listener keep it serving:
/// - running out of a resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), a connection refused
///   by a firewall rule (`EPERM`) or a protocol error (`EPROTO`): the server logs it, backs off
///   ([`ServerOptions::accept_backoff`], 100 ms) and tries again;
/// - a connection that failed before it was accepted (`ECONNABORTED`, `ECONNRESET`, `EINTR`,
///   and the network errors Linux passes on from the new socket: `ENETDOWN`, `ENOPROTOOPT`,
///   `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`, `EOPNOTSUPP`, `ENETUNREACH`, `ETIMEDOUT`): the
///   server accepts the next one at once.
///
/// # Errors
///
/// When `accept` fails with any other error: the listener itself is unusable (`EBADF`,
/// `EINVAL`, `ENOTSOCK`, ...).
///
/// # Cancel safety
///
/// Cancelling the server's task, or a curio scope around it expiring (`timeout_after`,
/// `ignore_after`), cancels every client task and waits until they have terminated. A drop
/// that curio does not control (`select!`, an explicit `drop` of the future) only requests
/// their cancellation: they end in their own turns, after the drop returns.
pub async fn run_server<L, H, Fut>(listener: L, handler: H) -> io::Result<()>
where
    L: Listener,
    H: Fn(L::Stream, L::Addr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    run_server_with(listener, handler, ServerOptions::default()).await
}

/// [`run_server`] with [`ServerOptions`].
///
/// With a [`ServerShutdown`] handle in the options, triggering it stops the server gracefully:
/// it stops accepting and closes the listener, waits up to
/// [`grace_period`](ServerOptions::grace_period) for the clients to finish, cancels those still
/// running, and returns `Ok(())`.
///
/// # Errors
///
/// As [`run_server`].
///
/// # Cancel safety
///
/// As [`run_server`].
pub async fn run_server_with<L, H, Fut>(
    listener: L,
    handler: H,
    options: ServerOptions,
) -> io::Result<()>
where
    L: Listener,
    H: Fn(L::Stream, L::Addr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let clients: TaskGroup<()> = TaskGroup::new(Wait::None);
    let stop = options.shutdown.as_ref();
    let mut stopped = pin!(stop.map(ServerShutdown::wait));
    loop {
        let Some(accepted) = until_shutdown(stopped.as_mut(), listener.accept()).await else {
            break;
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => match accept_error(&e) {
                AcceptError::BackOff => {
                    eprintln!(
                        "curio: server: accept failed ({e}); retrying in {:?}",
                        options.accept_backoff
                    );
                    if until_shutdown(
                        stopped.as_mut(),
                        curio_kernel::sleep(options.accept_backoff),
                    )
                    .await
                    .is_none()
                    {
                        break;
                    }
                    continue;
                }
                AcceptError::Next => continue,
                AcceptError::Fatal => return Err(e),
            },
        };
        // Reap the clients that have finished, so a long-running server does not keep them.
        while clients.try_next_done().is_some() {}
        let builder = curio_kernel::Builder::new().name(format!("client {peer:?}"));
        let fut = handler(stream, peer);
        // The client group is joined only after this loop: spawning cannot fail.
        clients.spawn_with(builder, async move {
            if let Some(msg) = fut.await.failure() {
                // The task's name says which client: `client <peer>`.
                eprintln!(
                    "curio: {} failed: {msg}",
                    curio_kernel::current_task().name()
                );
            }
        });
    }
    // A graceful shutdown: refuse new connections, let the clients finish within the grace
    // period, then cancel the rest.
    drop(listener);
    let drained = async { while clients.next_done().await.is_some() {} };
    if curio_kernel::timeout_after(options.grace_period, drained)
        .await
        .is_err()
    {
        clients.cancel_remaining().await;
    }
    Ok(())
}

/// What a server does after an accept error.
#[derive(Debug, PartialEq, Eq)]
enum AcceptError {
    /// A resource ran out, or a rule refused the connection: wait, then accept again.
    BackOff,
    /// One connection failed before it was accepted: accept the next.
    Next,
    /// The listener is unusable.
    Fatal,
}

fn accept_error(e: &io::Error) -> AcceptError {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return match e.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted => AcceptError::Next,
            _ => AcceptError::Fatal,
        };
    };
    let errno = Errno::from_raw_os_error(code);
    const BACK_OFF: [Errno; 6] = [
        Errno::MFILE,
        Errno::NFILE,
        Errno::NOBUFS,
        Errno::NOMEM,
        Errno::PERM,
        Errno::PROTO,
    ];
    const NEXT: [Errno; 11] = [
        Errno::CONNABORTED,
        Errno::CONNRESET,
        Errno::INTR,
        Errno::NETDOWN,
        Errno::NOPROTOOPT,
        Errno::HOSTDOWN,
        Errno::NONET,
        Errno::HOSTUNREACH,
        Errno::OPNOTSUPP,
        Errno::NETUNREACH,
        Errno::TIMEDOUT,
    ];
    if BACK_OFF.contains(&errno) {
        AcceptError::BackOff
    } else if NEXT.contains(&errno) {
        AcceptError::Next
    } else {
        AcceptError::Fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker of its own, which `will_wake` tells apart from every other.
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropped_shutdown_waits_give_their_waker_slots_back() {
        let stop = ServerShutdown::new();
        // A thousand connections come and go, each waiting with a waker of its own.
        for _ in 0..1000 {
            let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
            let mut wait = pin!(stop.wait());
            assert!(
                wait.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        assert_eq!(
            stop.0.waiters.lock().unwrap().slots.len(),
            1,
            "a slot was kept"
        );
        // A live waiter is still woken by the shutdown, and then completes.
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut wait = pin!(stop.wait());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        stop.shutdown();
        assert!(flag.0.load(Ordering::SeqCst), "the waiter was not woken");
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
    }

    #[test]
    fn accept_errors_are_classified() {
        use rustix::io::Errno;
        let os = |e: Errno| io::Error::from_raw_os_error(e.raw_os_error());
        for e in [
            Errno::MFILE,
            Errno::NOBUFS,
            Errno::NOMEM,
            Errno::PERM,
            Errno::PROTO,
        ] {
            assert_eq!(accept_error(&os(e)), AcceptError::BackOff, "{e:?}");
        }
        for e in [Errno::CONNABORTED, Errno::NETUNREACH, Errno::INTR] {
            assert_eq!(accept_error(&os(e)), AcceptError::Next, "{e:?}");
        }
        for e in [Errno::BADF, Errno::INVAL, Errno::NOTSOCK] {
            assert_eq!(accept_error(&os(e)), AcceptError::Fatal, "{e:?}");
        }
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_error(&aborted), AcceptError::Next);
        assert_eq!(accept_error(&io::Error::other("x")), AcceptError::Fatal);
    }
}
