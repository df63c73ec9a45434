//! The task harness: what every task turn goes through. It gives the turn its cancellation, its
//! cascade into the groups the task owns and its panic containment, ends the task, and holds the
//! future and the output where async-task keeps them.
//!
//! Each turn makes the task current (for the kernel and for `curio-core`'s current-task hook),
//! refills the cooperative budget, clears the wait-site hook, and polls the future under
//! `catch_unwind`.
//! A due cancellation is checked before the poll and again after a `Pending` one; then the owned
//! groups are cancelled first and the future is dropped in this turn (`cancel.rs` and `group.rs`
//! describe the rules).
//!
//! # Panics
//!
//! A panicking task is dropped, the kernel writes one line on stderr (`curio: task 7 (name)
//! panicked: message`, besides whatever the process's panic hook prints), and `join()` returns a
//! `TaskError` with `is_panic()`; `into_panic()` hands back the payload for `resume_unwind`.
//! A panic never takes the kernel down, except a panic in the main task, which propagates out of
//! `Kernel::run` after the main future has been dropped.
//! User code that runs in a `Drop` is contained the same way wherever the kernel drops it: a task's
//! future (in its turn, or in `FutureSlot` when async-task drops it unrun), its task-locals
//! (`Header::drop_contained`), and its output (`Output<T>`, which async-task drops under
//! abort-on-panic when nobody joins the task); each such panic is one `curio: task ... panicked
//! while dropping ...` line and never aborts or unwinds into the run loop.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::activation::Ended;
use crate::core::{Core, recycle};
use crate::error::{ErrorKind, TaskError, panic_message};
use crate::header::{Header, State};
use crate::id::TaskId;

/// Sets the current task for the duration of a poll, restoring the previous one after.
struct CurrentGuard<'a> {
    core: &'a Core,
    prev: Option<Rc<Header>>,
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        *self.core.current.borrow_mut() = self.prev.take();
    }
}

/// Marks a task suspended, keeping its waker from the first suspension on (for cancel requests;
/// a task that finishes in its first turn never needs it).
fn suspend(h: &Header, cx: &Context<'_>) {
    h.keep_waker(cx.waker());
    h.state.set(State::Suspended);
}

/// Polls one task turn: drops the future instead of polling it when a cancellation is due,
/// contains panics, and marks the task terminated when it finishes either way.
pub(crate) fn poll_task<F: Future>(
    core: &Core,
    h: &Rc<Header>,
    mut slot: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, TaskError>> {
    if h.is_terminated() {
        // Only a stale wake of a finished main task can get here.
        return Poll::Pending;
    }
    let prev = core.current.borrow_mut().replace(h.clone());
    let _guard = CurrentGuard { core, prev };
    // The hook crates below the kernel read (the owner of an `RLock`).
    let _scope = curio_core::TaskScope::enter(h.id.non_zero());
    h.cycles.set(h.cycles.get().wrapping_add(1));
    curio_core::reset_budget();
    h.state.set(State::Running);
    h.wait.set(None);
    #[allow(
        clippy::let_unit_value,
        reason = "a guard with the tracing feature, () without"
    )]
    let _span = h.span.enter();
    core.hook(h, |a, t| a.running(t));
    if !h.cancel.due() {
        // Cleared before the turn; the innermost waiting operation of the turn writes it.
        curio_core::take_wait_site();
        let res = catch_unwind(AssertUnwindSafe(|| match slot.as_mut().as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Pending,
        }));
        match res {
            Ok(Poll::Ready(v)) => {
                drop_future(h, slot.as_mut());
                core.hook(h, |a, t| a.suspended(t));
                terminate(h, core);
                core.hook(h, |a, t| a.terminated(t, Ended::Returned));
                return Poll::Ready(Ok(v));
            }
            Ok(Poll::Pending) => {
                h.wait.set(curio_core::take_wait_site());
                if !h.cancel.due() {
                    suspend(h, cx);
                    core.hook(h, |a, t| a.suspended(t));
                    return Poll::Pending;
                }
            }
            Err(payload) => {
                drop_future(h, slot.as_mut());
                let msg = panic_message(&*payload);
                eprintln!(
                    "curio: task {} ({}, spawned at {}:{}) panicked: {msg}",
                    h.id,
                    h.name.as_str(),
                    h.location.file(),
                    h.location.line(),
                );
                core.hook(h, |a, t| a.suspended(t));
                terminate(h, core);
                core.hook(h, |a, t| a.terminated(t, Ended::Panicked(msg)));
                return Poll::Ready(Err(h.error(ErrorKind::Panic(payload))));
            }
        }
    }
    // Cancellation cascades through the groups this task owns, innermost first: their members
    // are cancelled and waited for (the last one to finish wakes this task) before the owner's
    // future is dropped.
    if h.cascade(cx.waker()) {
        suspend(h, cx);
        core.hook(h, |a, t| a.suspended(t));
        return Poll::Pending;
    }
    // Cancellation: the future is dropped here, in the task's own turn, with the task current.
    drop_future(h, slot.as_mut());
    core.hook(h, |a, t| a.suspended(t));
    terminate(h, core);
    core.hook(h, |a, t| a.terminated(t, Ended::Cancelled));
    Poll::Ready(Err(h.error(ErrorKind::Cancelled)))
}

fn drop_future<F>(h: &Header, mut slot: Pin<&mut Option<F>>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| slot.set(None))) {
        eprintln!(
            "curio: task {} ({}) panicked while being dropped: {}",
            h.id,
            h.name.as_str(),
            panic_message(&*payload)
        );
    }
}

/// The pinned slot of a task's future, owned by the wrapper that async-task runs. Async-task
/// drops a future it never completed (a kernel dropped where it cannot run its tasks) under
/// abort-on-panic, so the slot drops the future itself and contains a panic in its `Drop`.
pub(crate) struct FutureSlot<'a, F> {
    pub(crate) header: Rc<Header>,
    pub(crate) slot: Pin<&'a mut Option<F>>,
}

impl<F> Drop for FutureSlot<'_, F> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            drop_future(&self.header, self.slot.as_mut());
        }
        recycle(&self.header);
    }
}

/// A task's output as async-task stores it. Async-task drops the output of a detached task
/// under abort-on-panic, so a panic in the output's `Drop` is contained and reported here.
pub(crate) struct Output<T> {
    pub(crate) value: Option<T>,
    pub(crate) id: TaskId,
}

impl<T> Output<T> {
    pub(crate) fn into_inner(mut self) -> T {
        self.value.take().expect("an output is taken once")
    }
}

impl<T> Output<Result<T, Box<TaskError>>> {
    /// The task's result, its error unboxed.
    pub(crate) fn into_result(self) -> Result<T, TaskError> {
        self.into_inner().map_err(|e| *e)
    }
}

impl<T> Drop for Output<T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take()
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(v)))
        {
            eprintln!(
                "curio: the output of task {} panicked while being dropped: {}",
                self.id,
                panic_message(&*payload)
            );
        }
    }
}

/// Ends task `h`: marks it terminated, takes it out of the registry, tells its group, drops its
/// extras (task-locals among them, with panics contained) and wakes whoever waits for it.
pub(crate) fn terminate(h: &Rc<Header>, core: &Core) {
    h.state.set(State::Terminated);
    core.unregister(h);
    h.take_waker();
    // The extras die with the task, not with the last handle; they are dropped with no borrow
    // held, since a value's Drop may run any code.
    let ext = h.ext.borrow_mut().take();
    if let Some(mut ext) = ext {
        if let Some(g) = ext.group.member_of.take().and_then(|g| g.upgrade()) {
            g.member_terminated(h.id);
        }
        let waiters = std::mem::take(&mut ext.waiters);
        h.drop_contained("its task-locals", ext);
        for w in waiters {
            w.wake();
        }
    }
}
