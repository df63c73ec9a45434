//! Timeout scopes: `timeout_after`, `timeout_at`, `ignore_after`, `ignore_at`.
//!
//! `timeout_after(d, fut)`, `timeout_at(deadline, fut)` and `timeout_after_opt(Option<Duration>,
//! fut)` give `Result<T, TaskTimeout>`; `ignore_after` and `ignore_at` give `Option<T>`.
//! `TaskTimeout` is a `Copy` error of its own that carries the expired deadline.
//! The cancellation model these scopes are part of is described in `cancel.rs`.
//!
//! - A scope is lazy. Its first poll records the task's shield depth and takes the scope's number
//!   among the task's scopes (`ScopeState::seq`, in `timeout/state.rs`); a future that completes
//!   without suspending costs no clock read and no timer.
//! - When the future first returns `Pending`, the scope reads the clock, computes its deadline (so
//!   a `timeout_after` deadline counts from that first suspension), lists itself on the task (an
//!   `ArmedScope` in the header's extras: number, deadline, and whether it waits for an older
//!   scope), and registers a timer, or expires at once if the deadline has passed.
//! - `timeout_after_opt(None, ..)` and a duration beyond the range of `Instant` set no deadline:
//!   the scope is not listed and registers no timer, and enclosing scopes still apply.
//! - The timer only wakes the task; the scope acts on the expiry the next time it is polled, in the
//!   task's own turn:
//!   - if an older listed scope has expired too, this one stays pending, because the outermost
//!     expired scope reports and drops this one with the rest of its work; if the older scope is a
//!     sibling rather than an ancestor, its end wakes the task and this one reports then;
//!   - if a shield that started inside the scope is active (the task's depth is above the recorded
//!     one), the scope raises the task's `timed_out` count, which `check_cancellation` reports as
//!     `TimedOut`, wakes the `cancel_requested` waiters, and reports at the first suspension after
//!     the shield ends;
//!   - otherwise it drops its future there and returns `Err(TaskTimeout)` once the members of the
//!     task groups that the drop cancelled (the task's new *orphans*) have terminated, so nothing
//!     started inside the scope outlives it.
//! - A future that completes in the poll in which its scope would act on the expiry returns `Ok`.
//! - Nested scopes are independent: an outer expiry drops the inner work and only the outer scope
//!   reports it, and an inner, longer timeout never extends an outer one.
//! - Cancelling a task stores its current scope number in `ScopeState::cancel_seq`; a scope entered
//!   before the cancel disarms at its next poll (cancels its timer and never fires), so timeouts
//!   never interrupt cleanup, while a scope entered after the cancel (inside a shield, for bounded
//!   cleanup) works.
//! - However a scope ends (its future completes, it expires, or it is dropped), it cancels its
//!   timer in O(1), leaves the task's list and gives back its `timed_out` count: it leaves nothing
//!   on the task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use curio_time::TimerKey;
use pin_project_lite::pin_project;

pub(crate) mod state;

use crate::core::with_core;
use std::rc::Rc;

use crate::header::{Header, poll_terminated};
use crate::timeout::state::ArmedScope;

/// A timeout expired: the deadline of the scope that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTimeout {
    deadline: Instant,
}

impl TaskTimeout {
    /// The deadline that expired, on the kernel's clock.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Display for TaskTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation timed out")
    }
}

impl std::error::Error for TaskTimeout {}

#[derive(Debug, Clone, Copy)]
enum Deadline {
    After(Duration),
    At(Instant),
    Never,
}

#[derive(Debug, Default)]
struct Scope {
    started: bool,
    /// The task's shield depth outside this scope.
    depth: u32,
    /// This scope's number among the task's timeout scopes.
    seq: u32,
    key: Option<TimerKey>,
    deadline: Option<Instant>,
    /// Counted in the task's `timed_out` (expired while a shield inside was active).
    flagged: bool,
    /// The deadline has passed (the expiry may still be deferred by a shield).
    fired: bool,
    /// Listed in the task's armed scopes.
    listed: bool,
    disarmed: bool,
}

pin_project! {
    /// The future of [`timeout_after`], [`timeout_at`] and [`timeout_after_opt`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        inner: Option<F>,
        deadline: Deadline,
        scope: Scope,
        // The scope expired and dropped its work: it reports once the members of the task
        // groups that work dropped have terminated.
        expired: Option<Instant>,
        orphans: Vec<Rc<Header>>,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            let scope = this.project().scope;
            if scope.holds_anything() {
                with_header(|h, time| scope.release(h, time));
            }
        }
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.deadline)
            .field("armed", &self.scope.key.is_some())
            .finish()
    }
}

fn with_header<R>(f: impl FnOnce(Option<&Header>, Option<&curio_time::TimeDriver>) -> R) -> R {
    with_core(|c| match c {
        Some(c) => {
            let cur = c.current.borrow();
            f(cur.as_deref(), Some(&c.time))
        }
        None => f(None, None),
    })
}

impl Scope {
    /// Whether `release` has anything to undo (a timer, a listing, a `timed_out` count).
    fn holds_anything(&self) -> bool {
        self.key.is_some() || self.listed || self.flagged
    }

    /// Cancels the timer and gives back the `timed_out` count.
    fn release(&mut self, h: Option<&Header>, time: Option<&curio_time::TimeDriver>) {
        if let (Some(k), Some(t)) = (self.key.take(), time) {
            t.cancel(k);
        }
        if std::mem::take(&mut self.listed)
            && let Some(h) = h
        {
            let seq = self.seq;
            let deferred = match h.ext.borrow_mut().as_mut() {
                Some(e) => {
                    e.scopes.retain(|a| a.seq != seq);
                    e.scopes.iter().any(|a| a.deferred)
                }
                None => false,
            };
            if deferred {
                // A younger expired scope waited for this one to report; it may report now.
                h.wake();
            }
        }
        if std::mem::take(&mut self.flagged)
            && let Some(h) = h
        {
            h.scopes
                .timed_out
                .set(h.scopes.timed_out.get().saturating_sub(1));
        }
    }
}

/// Runs `fut` with a deadline `d` from now; `Err(TaskTimeout)` if it has not completed by then
/// (Curio's `timeout_after`).
///
/// On expiry `fut` is dropped, in the task's own turn. Scopes nest independently: an outer expiry
/// drops the inner work and only the outer scope reports it; an inner, longer timeout never
/// extends an outer one. The deadline counts from the first time `fut` suspends: a future that
/// completes without suspending never reads the clock nor registers a timer. A future that
/// completes in the same turn as its deadline passes (even a poll that overran it) returns `Ok`.
///
/// Inside a shield ([`disable_cancellation`](crate::disable_cancellation)) that started within the
/// scope, the expiry is deferred until the shield ends, and [`check_cancellation`](crate::check_cancellation)
/// reports it as `TimedOut` meanwhile. Cancelling the task disarms the scopes it is in: they never
/// fire during cleanup; a scope created after the cancel works.
///
/// # Errors
///
/// [`TaskTimeout`] with the expired deadline.
///
/// # Panics
///
/// When polled outside a curio task.
///
/// When the deadline passes, the scope drops `fut` in the task's own turn; task groups created
/// inside `fut` are dropped with it, their members are cancelled, and the scope reports only once
/// they have terminated (shielded ones after their shields): nothing started inside the scope
/// is alive when it returns `Err`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the timeout drops `fut` and cancels the timer.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, timeout_after}; pub use curio_time::sleep; }
/// use std::time::Duration;
/// use curio::{sleep, timeout_after};
///
/// curio::run(async {
///     let r = timeout_after(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
///     assert!(r.is_err());
///     let r = timeout_after(Duration::from_secs(60), async { 5 }).await;
///     assert_eq!(r, Ok(5));
/// });
/// ```
pub fn timeout_after<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    Timeout::new(Deadline::After(d), fut)
}

/// Runs `fut` with the absolute deadline `deadline` (on the kernel's clock).
///
/// # Errors
///
/// [`TaskTimeout`] once the deadline has passed.
///
/// # Panics
///
/// When polled outside a curio task.
///
/// # Cancel safety
///
/// As [`timeout_after`].
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout::new(Deadline::At(deadline), fut)
}

/// [`timeout_after`] with an optional duration: `None` sets no deadline of its own (Curio's
/// `timeout_after(None, ...)`); enclosing scopes still apply.
///
/// # Errors
///
/// [`TaskTimeout`] with `Some(d)` once `d` has passed.
///
/// # Panics
///
/// When polled outside a curio task.
///
/// # Cancel safety
///
/// As [`timeout_after`].
pub fn timeout_after_opt<F: Future>(d: Option<Duration>, fut: F) -> Timeout<F> {
    Timeout::new(d.map_or(Deadline::Never, Deadline::After), fut)
}

/// Runs `fut` with a deadline `d` from now; `None` if it expired (Curio's `ignore_after`).
///
/// # Panics
///
/// When polled outside a curio task.
///
/// # Cancel safety
///
/// As [`timeout_after`].
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{ignore_after, run}; }
/// use std::time::Duration;
/// curio::run(async {
///     let r = curio::ignore_after(Duration::from_millis(5), std::future::pending::<()>()).await;
///     assert_eq!(r, None);
/// });
/// ```
pub fn ignore_after<F: Future>(d: Duration, fut: F) -> IgnoreTimeout<F> {
    IgnoreTimeout {
        inner: timeout_after(d, fut),
    }
}

/// Runs `fut` with the absolute deadline `deadline`; `None` if it passed (Curio's `ignore_at`).
///
/// # Panics
///
/// When polled outside a curio task.
///
/// # Cancel safety
///
/// As [`timeout_after`].
pub fn ignore_at<F: Future>(deadline: Instant, fut: F) -> IgnoreTimeout<F> {
    IgnoreTimeout {
        inner: timeout_at(deadline, fut),
    }
}

pin_project! {
    /// The future of [`ignore_after`] and [`ignore_at`].
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct IgnoreTimeout<F> {
        #[pin]
        inner: Timeout<F>,
    }
}

impl<F: Future> Future for IgnoreTimeout<F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Result::ok)
    }
}

impl<F> Timeout<F> {
    fn new(deadline: Deadline, fut: F) -> Timeout<F> {
        Timeout {
            inner: Some(fut),
            deadline,
            scope: Scope::default(),
            expired: None,
            orphans: Vec::new(),
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TaskTimeout>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(deadline) = *this.expired {
            return poll_terminated(this.orphans, cx.waker())
                .map(|()| Err(TaskTimeout { deadline }));
        }
        let scope = &mut *this.scope;
        if !scope.started {
            scope.started = true;
            with_header(|h, _| {
                let h = h.expect("curio timeout polled outside a curio task");
                scope.depth = h.cancel.shields();
                scope.seq = h.scopes.seq.get();
                h.scopes.seq.set(scope.seq + 1);
            });
        }
        let inner = this
            .inner
            .as_mut()
            .as_pin_mut()
            .expect("Timeout polled after completion");
        if let Poll::Ready(v) = inner.poll(cx) {
            this.inner.set(None);
            if scope.holds_anything() {
                with_header(|h, t| scope.release(h, t));
            }
            return Poll::Ready(Ok(v));
        }
        if scope.disarmed {
            return Poll::Pending;
        }
        let deadline = *this.deadline;
        let expired = with_header(|h, time| {
            let (Some(h), Some(time)) = (h, time) else {
                return None;
            };
            if h.cancel.requested() && scope.seq < h.scopes.cancel_seq.get() {
                // Entered before the task was cancelled: never fires during its cleanup.
                scope.disarmed = true;
                scope.release(Some(h), Some(time));
                return None;
            }
            // The clock is read only to arm the timer or to judge an expiry, never per poll.
            let fired = scope.fired
                || match scope.key {
                    Some(k) if time.is_pending(k) => {
                        time.set_waker(k, cx.waker());
                        false
                    }
                    Some(_) => true,
                    None => {
                        let now = time.now();
                        let at = match deadline {
                            Deadline::Never => return None,
                            Deadline::At(t) => t,
                            // A deadline past the clock's range is no deadline at all.
                            Deadline::After(d) => match now.checked_add(d) {
                                Some(t) => t,
                                None => return None,
                            },
                        };
                        scope.deadline = Some(at);
                        h.ext_mut().scopes.push(ArmedScope {
                            seq: scope.seq,
                            deadline: at,
                            deferred: false,
                        });
                        scope.listed = true;
                        if at <= now {
                            true
                        } else {
                            scope.key =
                                Some(time.register(at, time.next_seq(), cx.waker().clone()));
                            false
                        }
                    }
                };
            if !fired {
                return None;
            }
            scope.fired = true;
            scope.key = None;
            let now = time.now();
            let mut ext = h.ext_mut();
            let outer_expired = ext
                .scopes
                .iter()
                .any(|a| a.seq < scope.seq && a.deadline <= now);
            if let Some(me) = ext.scopes.iter_mut().find(|a| a.seq == scope.seq) {
                me.deferred = outer_expired;
            }
            drop(ext);
            if outer_expired {
                // An older scope expired too: it reports, and drops this one with the rest of
                // its work (at once, or when a shield inside it ends). If it is a sibling rather
                // than an ancestor, its release wakes the task and this scope reports then.
                return None;
            }
            if h.cancel.shields() > scope.depth {
                // A shield inside this scope is active: report at its end; tell it meanwhile.
                if !scope.flagged {
                    scope.flagged = true;
                    h.scopes.timed_out.set(h.scopes.timed_out.get() + 1);
                    h.wake_cancel_waiters();
                }
                return None;
            }
            scope.release(Some(h), Some(time));
            scope.deadline
        });
        match expired {
            Some(deadline) => {
                // Dropped here, in the task's own turn, like a cancelled task's future. Task
                // groups created inside are dropped with it: their members are cancelled, and
                // the scope reports only once they have terminated (Curio's and trio's
                // guarantee that nothing started inside a scope outlives it).
                let h = crate::core::current_header();
                let mark = h.as_ref().map_or(0, |h| h.orphan_count());
                this.inner.set(None);
                if let Some(h) = h {
                    *this.orphans = h.take_orphans_since(mark);
                }
                *this.expired = Some(deadline);
                poll_terminated(this.orphans, cx.waker()).map(|()| Err(TaskTimeout { deadline }))
            }
            None => Poll::Pending,
        }
    }
}
