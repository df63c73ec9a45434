//! The current-task hook: which task the kernel on this thread is polling.

use std::cell::Cell;
use std::marker::PhantomData;
use std::num::NonZeroU64;

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// The id of the task the kernel on this thread is polling, or `None` outside a task turn.
///
/// Task ids are non-zero; the kernel sets the hook for the length of each task turn (see
/// [`TaskScope`]).
pub fn current_task_id() -> Option<NonZeroU64> {
    NonZeroU64::new(CURRENT.with(Cell::get))
}

/// Reports a blocking call made inside a curio task, which blocks the kernel's thread and every
/// task on it: a panic in debug builds, a warning on stderr (once per process) in release
/// builds. `what` names the call and says what to do instead; the report shows the caller's
/// line. Outside a task it does nothing.
///
/// # Panics
///
/// Inside a task, in a debug build.
///
/// # Examples
///
/// ```
/// // Outside a task (here, the test's own thread) it does nothing.
/// curio_core::forbid_blocking("a blocking call");
/// ```
#[track_caller]
pub fn forbid_blocking(what: &str) {
    if current_task_id().is_none() {
        return;
    }
    let at = std::panic::Location::caller();
    let msg = format!(
        "curio: {what} at {}:{} runs inside a curio task: it blocks the kernel's thread and every \
         task on it",
        at.file(),
        at.line()
    );
    if cfg!(debug_assertions) {
        panic!("{msg}");
    }
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{msg} (reported once)");
    }
}

/// Names `id` as the running task until dropped, then restores the one before (turns nest when
/// a task's drop runs inside another task's turn).
#[must_use = "the task is current only while the scope lives"]
#[derive(Debug)]
pub struct TaskScope {
    prev: u64,
    // Restored on the thread it was set on.
    _local: PhantomData<*const ()>,
}

impl TaskScope {
    /// Makes `id` the current task.
    pub fn enter(id: NonZeroU64) -> TaskScope {
        TaskScope {
            prev: CURRENT.with(|c| c.replace(id.get())),
            _local: PhantomData,
        }
    }
}

impl Drop for TaskScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(current_task_id(), None);
        let a = NonZeroU64::new(3).unwrap();
        let b = NonZeroU64::new(9).unwrap();
        let outer = TaskScope::enter(a);
        {
            let _inner = TaskScope::enter(b);
            assert_eq!(current_task_id(), Some(b));
        }
        assert_eq!(current_task_id(), Some(a));
        drop(outer);
        assert_eq!(current_task_id(), None);
    }
}
