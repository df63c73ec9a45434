//! `Condition`: wait for a notification while holding a lock.

use curio_core::{WaitKind, at_site};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::error::SyncError;
use crate::lock::{Lock, LockGuard};
use crate::waiters::{Key, WaitList};

/// A condition variable for tasks (Curio's `Condition`), with its own [`Lock`].
/// Kernel-local: `!Send`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn, yield_now}; pub mod sync { pub use curio_sync::Condition; } }
/// use std::rc::Rc;
/// use curio::sync::Condition;
///
/// curio::run(async {
///     let cond = Rc::new(Condition::new());
///     let c = cond.clone();
///     let waiter = curio::spawn(async move {
///         let guard = c.lock().await;
///         let _guard = c.wait(guard).await.unwrap();
///         "notified"
///     });
///     curio::yield_now().await;
///     let guard = cond.lock().await;
///     cond.notify(1).unwrap();
///     drop(guard);
///     assert_eq!(waiter.join().await.unwrap(), "notified");
/// });
/// ```
#[derive(Default, Clone)]
pub struct Condition {
    lock: Lock,
    waiters: Rc<RefCell<WaitList<()>>>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.lock.locked())
            .field("waiting", &self.waiters.borrow().waiting())
            .finish()
    }
}

impl Condition {
    /// A condition with a new lock.
    pub fn new() -> Condition {
        Condition::default()
    }

    /// Whether its lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Takes the condition's lock.
    ///
    /// # Cancel safety
    ///
    /// As [`Lock::lock`].
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = LockGuard<'_>> {
        self.lock.lock()
    }

    /// Releases the lock held by `guard`, waits for a notification, takes the lock again and
    /// returns the new guard.
    ///
    /// # Errors
    ///
    /// [`SyncError::WrongLock`] (at once, without waiting) if `guard` holds another lock.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the task stops waiting and does not hold the lock any more. A notification it
    /// had received but not yet returned from (it was still waiting to take the lock again)
    /// passes to the next waiter, so `notify(1)` followed by a cancel wakes someone; Curio loses
    /// it.
    #[track_caller]
    pub fn wait<'a>(
        &'a self,
        guard: LockGuard<'a>,
    ) -> impl Future<Output = Result<LockGuard<'a>, SyncError>> {
        at_site(WaitKind::Condition, self.wait_inner(guard))
    }

    async fn wait_inner<'a>(&'a self, guard: LockGuard<'a>) -> Result<LockGuard<'a>, SyncError> {
        if !self.lock.same(guard.lock) {
            return Err(SyncError::WrongLock);
        }
        // No other task runs between the release and the first poll of the wait, which
        // registers it: a notification cannot slip in between.
        drop(guard);
        CondWait {
            cond: self,
            key: None,
        }
        .await;
        // Notified: if this wait is dropped before it has the lock again, the notification
        // passes on.
        let owed = PassOn(self);
        // Part of this wait: reported as the condition's, not as a lock taken here.
        let guard = self.lock.lock_inner().await;
        std::mem::forget(owed);
        Ok(guard)
    }

    /// Waits (as [`wait`](Self::wait)) until `predicate` returns `true`; checks it first.
    ///
    /// # Errors
    ///
    /// [`SyncError::WrongLock`] if `guard` holds another lock.
    ///
    /// # Cancel safety
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_for<'a>(
        &'a self,
        guard: LockGuard<'a>,
        predicate: impl FnMut() -> bool,
    ) -> impl Future<Output = Result<LockGuard<'a>, SyncError>> {
        at_site(WaitKind::Condition, self.wait_for_inner(guard, predicate))
    }

    async fn wait_for_inner<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<LockGuard<'a>, SyncError> {
        while !predicate() {
            guard = self.wait_inner(guard).await?;
        }
        Ok(guard)
    }

    /// Wakes up to `n` waiters, in the order they started waiting.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotLocked`] if the condition's lock is not held.
    pub fn notify(&self, n: usize) -> Result<(), SyncError> {
        if !self.lock.locked() {
            return Err(SyncError::NotLocked);
        }
        let mut w = self.waiters.borrow_mut();
        for _ in 0..n {
            if !w.notify_one(|_| {}) {
                break;
            }
        }
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotLocked`] if the condition's lock is not held.
    pub fn notify_all(&self) -> Result<(), SyncError> {
        if !self.lock.locked() {
            return Err(SyncError::NotLocked);
        }
        self.waiters.borrow_mut().notify_all();
        Ok(())
    }
}

struct CondWait<'a> {
    cond: &'a Condition,
    key: Option<Key>,
}

impl Future for CondWait<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.cond
            .waiters
            .borrow_mut()
            .poll_wait(&mut this.key, cx, || ())
            .map(drop)
    }
}

impl Drop for CondWait<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut waiters = self.cond.waiters.borrow_mut();
            if waiters.remove(k).is_some_and(|e| e.notified) {
                // Notified but never woken up to take it: the next waiter gets it.
                waiters.notify_one(|_| {});
            }
        }
    }
}

/// A notification received by a wait that has not returned yet; dropped (the wait was
/// cancelled), it goes to the next waiter.
struct PassOn<'a>(&'a Condition);

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        self.0.waiters.borrow_mut().notify_one(|_| {});
    }
}
