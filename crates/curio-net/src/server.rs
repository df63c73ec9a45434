//! `tcp_server` and `run_server`: one task per client.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use curio_kernel::{TaskId, TaskRef};

use crate::tcp::{TcpListener, TcpStream};

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

/// The client tasks of a server; cancelled when the server's future is dropped.
#[derive(Default)]
struct Clients {
    live: RefCell<HashMap<TaskId, TaskRef>>,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for (_, t) in self.live.borrow_mut().drain() {
            t.cancel_nowait();
        }
    }
}

/// Binds `addr` and serves each connection with `handler(stream, peer)` in a task of its own,
/// forever (Curio's `tcp_server`).
///
/// # Errors
///
/// When binding fails, or when `accept` fails with an error other than running out of
/// descriptors.
///
/// # Cancel safety
///
/// Dropping (cancelling) the server closes the listener and cancels every client task.
pub async fn tcp_server<H, Fut>(addr: impl ToSocketAddrs, handler: H) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let listener = TcpListener::bind(addr)?;
    run_server(listener, handler).await
}

/// Serves connections from `listener`, one task per client (Curio's `run_server`).
///
/// A handler that fails (returns `Err`) or panics is reported on stderr and never stops the server.
/// When `accept` runs out of descriptors (`EMFILE`, `ENFILE`), the server logs it, backs off for
/// 100 ms and tries again.
///
/// # Errors
///
/// When `accept` fails with any other error.
///
/// # Cancel safety
///
/// Dropping (cancelling) the server cancels every client task.
pub async fn run_server<H, Fut>(listener: TcpListener, handler: H) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ClientOutcome,
{
    let clients = Rc::new(Clients::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) if is_out_of_fds(&e) => {
                eprintln!("curio: tcp_server: accept failed ({e}); retrying in 100 ms");
                curio_kernel::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(e),
        };
        let fut = handler(stream, peer);
        let weak = Rc::downgrade(&clients);
        let task = curio_kernel::Builder::new().daemon().spawn(async move {
            // Leaves the server's client set however the handler ends: return, panic, cancel.
            let _leave = Leave(weak);
            if let Some(msg) = fut.await.failure() {
                eprintln!("curio: client handler for {peer} failed: {msg}");
            }
        });
        if !task.is_terminated() {
            clients.live.borrow_mut().insert(task.id(), task.task_ref());
        }
    }
}

struct Leave(std::rc::Weak<Clients>);

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(c) = self.0.upgrade()
            && let Some(me) = curio_kernel::try_current_task()
            && let Ok(mut live) = c.live.try_borrow_mut()
        {
            live.remove(&me.id());
        }
    }
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    )
}
