//! Shielding from cancellation, and asking whether a cancellation is pending.
//!
//! # The cancellation model
//!
//! Cancellation is Rust's: the task's future is dropped, and cleanup is `Drop`.
//! What Curio adds is where and when that happens, and structured concurrency on top of it: shields
//! (this module), timeout scopes (`timeout.rs`) and task groups (`group.rs`).
//! Each keeps its per-task state in a type of its own in the task's header (`cancel/state.rs`,
//! `timeout/state.rs`, `group/link.rs`).
//!
//! ## Requests
//!
//! - `cancel_nowait()` (on `Task` or `TaskRef`), `KernelHandle::cancel(id)` and
//!   `RemoteTask::cancel()` only record a request (`CancelState::requested`, through
//!   `Header::request_cancel`) and wake the target; the kernel never drops another task's future
//!   inline.
//! - The kernel drops the target's future in the target's own next turn, instead of polling it,
//!   with `current_task()` being the target; `Drop` code therefore runs as the cancelled task,
//!   never inline in the canceller.
//! - A request is due when it is recorded and the task's shield depth is zero; the harness
//!   (`poll_task` in `harness.rs`) checks before it polls the future and again when the poll
//!   returns `Pending`, so a request that becomes due during a turn (the task cancels itself, or
//!   its last shield ends) takes effect at the end of that turn.
//! - `task.cancel().await` records the request and then waits until the target has terminated and
//!   its future has been dropped; dropping that future leaves the request in place. On the calling
//!   task itself, `TaskRef::cancel` only records the request.
//! - Cancel is one-shot: a second request is a no-op, and so is cancelling a terminated task.
//! - `is_cancelled()` means that cancellation was requested, as Curio's `cancelled` attribute does,
//!   even if the task then returned normally inside a shield.
//! - `join()` of a task whose future was dropped by cancellation gives `Err(e)` with
//!   `e.is_cancelled()`; a task that returned despite a request gives `Ok`.
//! - A panic inside a `Drop` that cancellation runs is caught and reported like a task panic.
//! - Cancelling the main task makes `Kernel::run` panic, since it has no output to return.
//! - A task cancelled before it has ever been polled is dropped in its first turn, so none of its
//!   code runs.
//!
//! ## Shields
//!
//! - `disable_cancellation(fut)` returns a `Shield`, which raises the task's shield depth
//!   (`CancelState::shield`) on its first poll and lowers it when `fut` completes or the `Shield`
//!   is dropped; shields nest.
//! - While the depth is above zero the kernel polls the task as usual and the request stays
//!   pending. When the outermost shield ends with a request pending, the `Shield` wakes the task,
//!   so the request takes effect at its next suspension; a task that returns without suspending
//!   again finishes normally.
//! - Timeout scopes, groups and shutdown go through the same depth: each compares the task's depth
//!   with the depth it recorded, so nothing in curio-rt drops a future while a shield inside it is
//!   active. User code can still drop a shield (`select`, `?`, a panic); that is documented, not
//!   prevented. A shield that never ends makes its task impossible to cancel, and shutdown waits
//!   for it.
//! - A shield dropped by another task than its own (it was moved out) finds its task by id in the
//!   registry, in O(1).
//! - Inside a shield, `check_cancellation()` returns `Ok(Some(reason))` while a request is pending:
//!   `Cancelled`, or `TimedOut` when an enclosing timeout scope expired during the shield;
//!   `Cancelled` wins when both are pending. `cancel_requested().await` completes with the reason
//!   when one arrives (its waker waits among the header's cancel waiters). Neither clears the
//!   request, and outside a task both return `Err(NotInTask)`.
//! - Curio's "catch `CancelledError`, clean up, return" becomes `disable_cancellation(async {
//!   race(work, cancel_requested()).await; cleanup().await })`, with any select combinator as
//!   `race`.
//!
//! ## Cleanup
//!
//! - Curio's `try: ... finally: cleanup()` is a guard value whose `Drop` does the cleanup: a
//!   dropped future drops its locals, so the guard runs on return, `?`, panic, cancellation and
//!   timeout alike, in the task's own turn. `disable_cancellation`'s docs show the idiom with a
//!   runnable example, and the shield for cleanup that must await.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::core::with_core;
pub(crate) mod state;

use crate::core::current_header;
use crate::header::Header;
use crate::id::TaskId;

/// Why a task is asked to stop: it was cancelled, or an enclosing timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The task was cancelled ([`Task::cancel`](crate::Task::cancel) and friends).
    Cancelled,
    /// A `timeout_*` scope around the running code expired.
    TimedOut,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Cancelled => "cancelled",
            CancelReason::TimedOut => "timed out",
        })
    }
}

/// The error of task-only operations used outside a curio task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInTask;

impl fmt::Display for NotInTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not inside a curio task")
    }
}

impl std::error::Error for NotInTask {}

fn reason(h: &Header) -> Option<CancelReason> {
    if h.cancel.requested() {
        Some(CancelReason::Cancelled)
    } else if h.scopes.timed_out.get() > 0 {
        Some(CancelReason::TimedOut)
    } else {
        None
    }
}

/// The cancellation pending on the running task, if any: `Cancelled` wins over `TimedOut`.
///
/// Outside a shield a pending request takes effect at the task's next suspension, so this is
/// mostly useful inside [`disable_cancellation`]. It does not clear the request.
///
/// # Errors
///
/// [`NotInTask`] outside a curio task.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{CancelReason, check_cancellation, disable_cancellation, run, spawn}; pub use curio_time::yield_now; }
/// use curio::{CancelReason, check_cancellation, disable_cancellation};
///
/// curio::run(async {
///     let t = curio::spawn(disable_cancellation(async {
///         curio::yield_now().await;
///         check_cancellation()
///     }));
///     curio::yield_now().await; // let it enter its shield
///     t.cancel_nowait();
///     assert_eq!(t.join().await.unwrap(), Ok(Some(CancelReason::Cancelled)));
/// });
/// ```
pub fn check_cancellation() -> Result<Option<CancelReason>, NotInTask> {
    let h = current_header().ok_or(NotInTask)?;
    Ok(reason(&h))
}

/// Completes when a cancellation (or an enclosing timeout) is pending on the running task.
///
/// Inside a shield, race it against the work, then clean up:
/// `disable_cancellation(async { race(work, cancel_requested()).await; cleanup().await })` is
/// Curio's "catch `CancelledError`, clean up, return". It does not clear the request.
///
/// # Errors
///
/// [`NotInTask`] when polled outside a curio task.
///
/// # Cancel safety
///
/// Cancel safe: it holds no state.
pub fn cancel_requested() -> CancelRequested {
    CancelRequested { _priv: () }
}

/// The future of [`cancel_requested`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct CancelRequested {
    _priv: (),
}

impl Future for CancelRequested {
    type Output = Result<CancelReason, NotInTask>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(h) = current_header() else {
            return Poll::Ready(Err(NotInTask));
        };
        if let Some(r) = reason(&h) {
            return Poll::Ready(Ok(r));
        }
        let mut e = h.ext_mut();
        if !e.cancel_waiters.iter().any(|x| x.will_wake(cx.waker())) {
            e.cancel_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

pin_project! {
    /// The future of [`disable_cancellation`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Shield<F> {
        #[pin]
        inner: F,
        task: Option<TaskId>,
    }

    impl<F> PinnedDrop for Shield<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(id) = this.project().task.take() {
                leave(id);
            }
        }
    }
}

impl<F> fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield")
            .field("active", &self.task.is_some())
            .finish()
    }
}

/// Runs `fut` to completion even if the task is cancelled or an enclosing curio timeout expires
/// meanwhile (Curio's `disable_cancellation`). Nestable.
///
/// A request that arrives meanwhile stays pending and takes effect at the task's first
/// suspension after the outermost shield ends; an enclosing timeout that expired is reported
/// by its scope then. [`check_cancellation`] and [`cancel_requested`] see the request inside.
/// A timeout created inside the shield works as usual.
///
/// A shield protects against the kernel, `timeout_*`, `ignore_*`, task groups and shutdown;
/// user code can still drop it (`select`, `?`, a panic). A shield that never ends makes its
/// task impossible to cancel, and kernel shutdown waits for it.
///
/// # Panics
///
/// When polled outside a curio task.
///
/// # Cancel safety
///
/// This is what cancel safety is made of: the shielded future is not dropped by cancellation.
/// If user code drops the `Shield` itself, `fut` is dropped with it.
///
/// # Cleanup on cancellation (Curio's `finally`)
///
/// A cancelled task, or the future inside an expired timeout scope, is dropped at the `.await`
/// where it was suspended, so code after that `.await` never runs: there is no
/// `CancelledError` to catch.
/// Cleanup that must run however the code ends goes in the `Drop` of a guard value, which runs on
/// return, on `?`, on a panic, on cancellation and on a timeout alike, in the task's own turn
/// (so [`current_task`](crate::current_task) still names the task).
/// `Drop` cannot await: cleanup that must (a goodbye message, a flush) runs inside a shield,
/// `disable_cancellation(async { work_or_cancel_requested.await; cleanup.await })`, racing the
/// work against [`cancel_requested`] with any select combinator, or in a task the guard's `Drop`
/// spawns.
///
/// ```
/// # mod curio { pub use curio_kernel::{ignore_after, run, spawn}; pub use curio_time::{sleep, yield_now}; }
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// /// Runs its closure when dropped, however the code that owns it ends.
/// struct Finally<F: FnMut()>(F);
///
/// impl<F: FnMut()> Drop for Finally<F> {
///     fn drop(&mut self) {
///         (self.0)()
///     }
/// }
///
/// async fn worker(cleaned_up: Rc<Cell<u32>>) {
///     let _finally = Finally(move || cleaned_up.set(cleaned_up.get() + 1));
///     curio::sleep(Duration::from_secs(3600)).await; // dropped here
///     unreachable!("cancelled or timed out before this");
/// }
///
/// curio::run(async {
///     let cleaned_up = Rc::new(Cell::new(0));
///     // Cancelled: the guard runs before `cancel().await` returns.
///     let task = curio::spawn(worker(Rc::clone(&cleaned_up)));
///     curio::yield_now().await; // let it reach its sleep
///     task.cancel().await;
///     assert_eq!(cleaned_up.get(), 1);
///     // Timed out: the guard runs before `ignore_after` returns.
///     let r = curio::ignore_after(Duration::from_millis(1), worker(Rc::clone(&cleaned_up))).await;
///     assert!(r.is_none());
///     assert_eq!(cleaned_up.get(), 2);
/// });
/// ```
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{disable_cancellation, run, spawn}; pub use curio_time::{sleep, yield_now}; }
/// use std::time::Duration;
/// use curio::{disable_cancellation, sleep, spawn};
///
/// curio::run(async {
///     let t = spawn(disable_cancellation(async {
///         sleep(Duration::from_millis(10)).await;
///         "finished anyway"
///     }));
///     curio::yield_now().await;
///     t.cancel().await;
///     // The shielded task returned normally; its cancellation was requested all the same.
///     assert!(t.is_cancelled());
///     assert_eq!(t.join().await.unwrap(), "finished anyway");
/// });
/// ```
#[doc(alias = "shield")]
pub fn disable_cancellation<F: Future>(fut: F) -> Shield<F> {
    Shield {
        inner: fut,
        task: None,
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.task.is_none() {
            let h = current_header().expect("curio::disable_cancellation polled outside a task");
            h.cancel.enter_shield();
            *this.task = Some(h.id);
        }
        let out = this.inner.poll(cx);
        if out.is_ready()
            && let Some(id) = this.task.take()
        {
            leave(id);
        }
        out
    }
}

/// Ends a shield of task `id`.
fn leave(id: TaskId) {
    let h: Option<Rc<Header>> = current_header().filter(|h| h.id == id).or_else(|| {
        // Dropped by another task (it was moved out of its own): find its header.
        with_core(|c| c.and_then(|c| c.tasks.borrow().get(id)))
    });
    if let Some(h) = h {
        h.cancel.exit_shield();
        if h.cancel.due() {
            // The deferred cancellation is due: make sure the task gets its turn.
            h.wake();
        }
    }
}
