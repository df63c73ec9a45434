//! `CurioExecutor` and `CurioTimer`: hyper's `Executor` and `Timer` on the running kernel.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's [`Executor`](hyper::rt::Executor): spawns hyper's background tasks (an HTTP/2
/// connection's streams, its ping and its client connection task) on the running kernel.
///
/// The futures need not be `Send`: they never leave the kernel's thread, so a service that
/// holds `Rc`s or kernel-local primitives works over HTTP/2 too. The tasks are detached, named
/// `hyper`; each ends when its stream or connection does, and a kernel's shutdown cancels what
/// is left.
///
/// # Panics
///
/// `execute` panics outside a curio kernel, as [`curio::spawn`](curio_kernel::spawn) does;
/// hyper calls it only while a connection is polled, which happens in a task.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurioExecutor;

impl CurioExecutor {
    /// The executor.
    pub fn new() -> CurioExecutor {
        CurioExecutor
    }
}

impl<F> hyper::rt::Executor<F> for CurioExecutor
where
    F: Future + 'static,
{
    #[track_caller]
    fn execute(&self, fut: F) {
        // Detached: hyper keeps no handle, and the task ends with its stream or connection.
        drop(curio_kernel::Builder::new().name("hyper").spawn(fut));
    }
}

/// hyper's [`Timer`](hyper::rt::Timer) on the kernel's clock: header-read and keep-alive
/// timeouts, and HTTP/2 pings, wait on curio's timer queue, and `now()` is
/// [`curio::clock()`](curio_time::clock), so a kernel with a virtual clock drives hyper's
/// timers as it drives every other sleep.
///
/// hyper requires its sleeps to be `Send + Sync`; curio's [`Sleep`](curio_time::Sleep) holds
/// only plain data (a deadline, a timer key and a sequence number), so it is both, which this
/// crate checks at compile time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurioTimer;

impl CurioTimer {
    /// The timer.
    pub fn new() -> CurioTimer {
        CurioTimer
    }
}

impl hyper::rt::Timer for CurioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CurioSleep(curio_time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // `curio_time::sleep_until` panics outside a kernel; a duration from now is the same
        // deadline in a kernel, and outside one counts from the first poll. A deadline that
        // has passed becomes a zero sleep, a yield, which ends at the next poll.
        let left = deadline.saturating_duration_since(curio_time::clock());
        Box::pin(CurioSleep(curio_time::sleep(left)))
    }

    fn now(&self) -> Instant {
        curio_time::clock()
    }
}

/// The sleep [`CurioTimer`] hands to hyper.
#[derive(Debug)]
struct CurioSleep(curio_time::Sleep);

// hyper's `Sleep` needs `Send + Sync`: fail the build if curio's sleep ever stops being both.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<curio_time::Sleep>();
};

impl Future for CurioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for CurioSleep {}
