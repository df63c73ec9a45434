//! Where a task waits: the wait-site hook that curio's waiting operations write and the kernel
//! keeps per task, for the monitor's `where`.
//!
//! `#[track_caller]` has no effect on an `async fn`, so curio's public waiting operations are
//! plain `#[track_caller]` functions that return futures holding [`Location::caller`]; when such
//! a future returns `Pending`, it calls [`waiting`] with what it waits for and where it was
//! created. The kernel clears the hook before each task turn and, when the turn ends with the
//! task suspended, stores the site in the task's header. The innermost operation wins: a site
//! recorded in a turn is not overwritten by the futures around it (a timeout scope around a
//! queue `get` reports the `get`).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// What a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitKind {
    /// A `sleep` or `sleep_until`.
    Sleep,
    /// A `yield_now` (or `sleep(0)`).
    Yield,
    /// A task's `join`.
    Join,
    /// A task's `wait`, or `cancel` waiting for the task to end.
    Terminate,
    /// A task group's `join` or `next_done`.
    Group,
    /// A queue's `get`.
    QueueGet,
    /// A queue's `put`.
    QueuePut,
    /// A queue's `join`.
    QueueJoin,
    /// A lock.
    Lock,
    /// A semaphore.
    Semaphore,
    /// An event.
    Event,
    /// A condition.
    Condition,
    /// A promise.
    Promise,
    /// A descriptor to become readable (a socket or pipe read, an accept).
    Read,
    /// A descriptor to become writable (a socket or pipe write, a connect).
    Write,
    /// A thread or another process (`run_in_thread`, a child process).
    External,
}

/// Where a task waits: what for, and the line of the waiting operation's call, when the
/// operation knows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WaitSite {
    /// What the task waits for.
    pub kind: WaitKind,
    /// The call of the waiting operation (`None` for waits recorded below the public API, such
    /// as a socket's readiness).
    pub location: Option<&'static Location<'static>>,
}

impl fmt::Debug for WaitSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(l) => write!(f, "{:?} at {}:{}", self.kind, l.file(), l.line()),
            None => write!(f, "{:?}", self.kind),
        }
    }
}

thread_local! {
    static SITE: Cell<Option<WaitSite>> = const { Cell::new(None) };
}

/// Records that the running task is about to wait for `kind`, at `location`; a site already
/// recorded in this turn (by an inner operation) stays.
pub fn waiting(kind: WaitKind, location: Option<&'static Location<'static>>) {
    SITE.with(|s| {
        if s.get().is_none() {
            s.set(Some(WaitSite { kind, location }));
        }
    });
}

/// Takes the site recorded since the last call: the kernel calls it before a task turn (to
/// clear it) and after (to keep it).
pub fn take_wait_site() -> Option<WaitSite> {
    SITE.with(Cell::take)
}

pin_project! {
    /// A future that records its wait site whenever it returns `Pending`; made by [`at_site`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct AtSite<F> {
        #[pin]
        inner: F,
        kind: WaitKind,
        location: &'static Location<'static>,
    }
}

impl<F> fmt::Debug for AtSite<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtSite")
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Wraps `fut`, a wait for `kind`, so that it records where it was created (the caller of the
/// `#[track_caller]` chain that reaches here) each time it suspends.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use curio_core::{WaitKind, at_site, take_wait_site};
///
/// #[track_caller]
/// fn pending_once() -> impl Future<Output = ()> {
///     let mut first = true;
///     at_site(WaitKind::Event, std::future::poll_fn(move |cx| {
///         if std::mem::take(&mut first) {
///             cx.waker().wake_by_ref();
///             std::task::Poll::Pending
///         } else {
///             std::task::Poll::Ready(())
///         }
///     }))
/// }
///
/// let mut fut = Box::pin(pending_once()); let line = line!();
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// assert!(fut.as_mut().poll(&mut cx).is_pending());
/// let site = take_wait_site().unwrap();
/// assert_eq!(site.kind, WaitKind::Event);
/// assert_eq!(site.location.unwrap().line(), line);
/// ```
#[track_caller]
pub fn at_site<F: Future>(kind: WaitKind, fut: F) -> AtSite<F> {
    AtSite {
        inner: fut,
        kind,
        location: Location::caller(),
    }
}

impl<F: Future> Future for AtSite<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = this.inner.poll(cx);
        if out.is_pending() {
            waiting(*this.kind, Some(*this.location));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_site_of_a_turn_wins() {
        take_wait_site();
        let here = Location::caller();
        waiting(WaitKind::QueueGet, Some(here));
        waiting(WaitKind::Sleep, None);
        assert_eq!(
            take_wait_site(),
            Some(WaitSite {
                kind: WaitKind::QueueGet,
                location: Some(here)
            })
        );
        assert_eq!(take_wait_site(), None);
    }
}
