//! `Semaphore` and `BoundedSemaphore`.

use curio_core::{WaitKind, at_site};
use std::fmt;
use std::future::Future;

use crate::error::SyncError;
use crate::gate::Gate;

/// A counting semaphore (Curio's `Semaphore`). Kernel-local: `!Send`.
///
/// Permits are handed off FIFO to waiters; a newcomer cannot barge.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod sync { pub use curio_sync::Semaphore; } }
/// use curio::sync::Semaphore;
///
/// curio::run(async {
///     let sema = Semaphore::new(2);
///     let a = sema.acquire().await;
///     let _b = sema.acquire().await;
///     assert_eq!(sema.value(), 0);
///     assert!(sema.try_acquire().is_none());
///     drop(a);
///     assert_eq!(sema.value(), 1);
/// });
/// ```
#[derive(Clone)]
pub struct Semaphore {
    gate: Gate,
    bound: Option<usize>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("bound", &self.bound)
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            gate: Gate::new(permits),
            bound: None,
        }
    }

    /// Free permits.
    pub fn value(&self) -> usize {
        self.gate.permits()
    }

    /// Whether no permit is free.
    pub fn locked(&self) -> bool {
        self.value() == 0
    }

    /// Tasks waiting for a permit.
    pub fn waiting(&self) -> usize {
        self.gate.waiting()
    }

    /// Waits for a permit; the returned permit gives it back when dropped (Curio's
    /// `async with sema`). [`SemaphorePermit::forget`] keeps it, for an explicit
    /// [`release`](Self::release) later (Curio's `acquire`/`release`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a waiter dropped before or after a permit was handed to it passes the
    /// permit on; permits are conserved.
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = SemaphorePermit<'_>> {
        at_site(WaitKind::Semaphore, self.acquire_inner())
    }

    async fn acquire_inner(&self) -> SemaphorePermit<'_> {
        self.gate.acquire().await;
        SemaphorePermit { sema: self }
    }

    /// Takes a permit if one is free and nobody waits.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.gate
            .try_acquire()
            .then(|| SemaphorePermit { sema: self })
    }

    /// Adds a permit (gives it to the first waiter if there is one).
    ///
    /// # Errors
    ///
    /// [`SyncError::TooManyReleases`] for a [`BoundedSemaphore`] already at its bound.
    pub fn release(&self) -> Result<(), SyncError> {
        if let Some(b) = self.bound
            && self.gate.waiting() == 0
            && self.gate.permits() >= b
        {
            return Err(SyncError::TooManyReleases);
        }
        self.gate.release();
        Ok(())
    }
}

/// A permit of a [`Semaphore`]; dropping it gives the permit back.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sema: &'a Semaphore,
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken; give it back with [`Semaphore::release`].
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sema.gate.release();
    }
}

/// A semaphore that refuses to be released above its initial value (Curio's
/// `BoundedSemaphore`). It dereferences to [`Semaphore`].
///
/// # Examples
///
/// ```
/// # mod curio { pub mod sync { pub use curio_sync::{BoundedSemaphore, SyncError}; } }
/// use curio::sync::{BoundedSemaphore, SyncError};
///
/// let sema = BoundedSemaphore::new(1);
/// assert_eq!(sema.release(), Err(SyncError::TooManyReleases));
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits that can never hold more.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            inner: Semaphore {
                bound: Some(permits),
                ..Semaphore::new(permits)
            },
        }
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.inner
    }
}
