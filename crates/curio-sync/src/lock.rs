//! `Lock` and `RLock`.

use curio_core::{WaitKind, at_site};
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use std::num::NonZeroU64;

use crate::error::SyncError;
use crate::gate::Gate;

/// A mutual-exclusion lock for tasks (Curio's `Lock`). Kernel-local: `!Send`.
///
/// Ownership is handed off FIFO: a release passes the lock to the first waiter, so a newcomer
/// cannot barge in.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod sync { pub use curio_sync::Lock; } }
/// use std::rc::Rc;
/// use curio::sync::Lock;
///
/// curio::run(async {
///     let lock = Rc::new(Lock::new());
///     let guard = lock.lock().await;
///     assert!(lock.locked());
///     drop(guard);
///     assert!(!lock.locked());
/// });
/// ```
#[derive(Clone)]
pub struct Lock {
    gate: Gate,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Lock {
        Lock { gate: Gate::new(1) }
    }

    /// Whether the lock is held.
    pub fn locked(&self) -> bool {
        self.gate.permits() == 0
    }

    /// Waits for the lock (Curio's `async with lock`); the guard releases it when dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a waiter dropped before or after the lock was handed to it never ends up
    /// owning it; the lock passes to the next waiter.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = LockGuard<'_>> {
        at_site(WaitKind::Lock, self.lock_inner())
    }

    /// [`lock`](Self::lock) without a wait site of its own, for a wait that reports itself
    /// (a `Condition` taking its lock back).
    pub(crate) async fn lock_inner(&self) -> LockGuard<'_> {
        self.gate.acquire().await;
        LockGuard { lock: self }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.gate.try_acquire().then(|| LockGuard { lock: self })
    }

    pub(crate) fn same(&self, other: &Lock) -> bool {
        self.gate.same(&other.gate)
    }
}

/// Holds a [`Lock`]; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(crate) lock: &'a Lock,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.gate.release();
    }
}

/// A re-entrant lock (Curio's `RLock`): its owner task may take it again; only the owner may
/// release it. Kernel-local: `!Send`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod sync { pub use curio_sync::RLock; } }
/// use curio::sync::RLock;
///
/// curio::run(async {
///     let lock = RLock::new();
///     lock.acquire().await.unwrap();
///     lock.acquire().await.unwrap();
///     lock.release().unwrap();
///     assert!(lock.locked());
///     lock.release().unwrap();
///     assert!(!lock.locked());
/// });
/// ```
#[derive(Clone)]
pub struct RLock {
    gate: Gate,
    st: Rc<RLockState>,
}

/// The owner and depth of an [`RLock`], shared by its clones.
struct RLockState {
    owner: Cell<Option<NonZeroU64>>,
    count: Cell<usize>,
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.st.owner.get())
            .field("count", &self.st.count.get())
            .finish()
    }
}

/// The running task's id, through the hook the kernel sets for each task turn (so this crate
/// needs no kernel).
fn me() -> Result<NonZeroU64, SyncError> {
    curio_core::current_task_id().ok_or(SyncError::NotInTask)
}

impl RLock {
    /// An unlocked re-entrant lock.
    pub fn new() -> RLock {
        RLock {
            gate: Gate::new(1),
            st: Rc::new(RLockState {
                owner: Cell::new(None),
                count: Cell::new(0),
            }),
        }
    }

    /// Whether the lock is held.
    pub fn locked(&self) -> bool {
        self.st.owner.get().is_some()
    }

    /// Takes the lock, or takes it once more if the running task owns it.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotInTask`] outside a curio task.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped waiter never ends up owning the lock.
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<(), SyncError>> {
        at_site(WaitKind::Lock, self.acquire_inner())
    }

    async fn acquire_inner(&self) -> Result<(), SyncError> {
        let id = me()?;
        if self.st.owner.get() == Some(id) {
            self.st.count.set(self.st.count.get() + 1);
            return Ok(());
        }
        self.gate.acquire().await;
        self.st.owner.set(Some(id));
        self.st.count.set(1);
        Ok(())
    }

    /// Releases one level of the lock.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotOwner`] if the running task does not own it; [`SyncError::NotInTask`]
    /// outside a task.
    pub fn release(&self) -> Result<(), SyncError> {
        let id = me()?;
        if self.st.owner.get() != Some(id) {
            return Err(SyncError::NotOwner);
        }
        self.release_level();
        Ok(())
    }

    fn release_level(&self) {
        let n = self.st.count.get() - 1;
        self.st.count.set(n);
        if n == 0 {
            self.st.owner.set(None);
            self.gate.release();
        }
    }

    /// Takes the lock (see [`acquire`](Self::acquire)) and returns a guard that releases one level.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotInTask`] outside a curio task.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    pub async fn lock(&self) -> Result<RLockGuard<'_>, SyncError> {
        self.acquire().await?;
        Ok(RLockGuard { lock: self })
    }
}

/// Holds one level of an [`RLock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // The guard was made by the owner; it releases on the owner's behalf wherever it drops.
        self.lock.release_level();
    }
}
