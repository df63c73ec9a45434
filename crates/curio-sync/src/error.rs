//! Errors of the synchronisation primitives: misuse is a value, never a panic or a hang.

use std::fmt;

/// Misuse of a lock, semaphore, condition, promise or queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// An `RLock` released by a task that does not own it.
    NotOwner,
    /// A `Condition` notified without its lock held.
    NotLocked,
    /// A `Condition` waited on with the guard of another lock.
    WrongLock,
    /// A `BoundedSemaphore` released above its initial value.
    TooManyReleases,
    /// `task_done` called more times than items were put.
    TaskDoneTooManyTimes,
    /// A task-only operation (an `RLock`'s owner) used outside a curio task.
    NotInTask,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncError::NotOwner => "lock released by a task that does not own it",
            SyncError::NotLocked => "condition notified without holding its lock",
            SyncError::WrongLock => "condition waited on with the guard of another lock",
            SyncError::TooManyReleases => "semaphore released too many times",
            SyncError::TaskDoneTooManyTimes => "task_done() called too many times",
            SyncError::NotInTask => "not inside a curio task",
        })
    }
}

impl std::error::Error for SyncError {}

/// A put that could not complete: the queue is full (or, for a timed put, stayed full).
/// The item comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> std::error::Error for Full<T> {}

/// A get that found nothing: the queue is empty (or, for a timed get, stayed empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is empty")
    }
}

impl std::error::Error for Empty {}

/// A promise set twice: the second value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AlreadySet<T>(pub T);

impl<T> fmt::Debug for AlreadySet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlreadySet(..)")
    }
}

impl<T> fmt::Display for AlreadySet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("promise already set")
    }
}

impl<T> std::error::Error for AlreadySet<T> {}

/// A blocking wait that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeout;

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait timed out")
    }
}

impl std::error::Error for WaitTimeout {}

/// The queue was closed ([`Queue::close`](crate::BaseQueue::close),
/// [`UniversalQueue::close`](crate::UniversalQueue::close)): a get that found it closed and
/// drained gets `Closed(())`, a put gets its item back in `Closed(item)`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Closed<T = ()>(pub T);

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is closed")
    }
}

impl<T> std::error::Error for Closed<T> {}

/// Why a put that does not wait (or waits for a limited time) did not add its item; the item
/// comes back either way.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryPutError<T> {
    /// The queue was full (for a timed put: stayed full).
    Full(T),
    /// The queue was closed.
    Closed(T),
}

impl<T> TryPutError<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t) | TryPutError::Closed(t) => t,
        }
    }

    /// Whether the queue was full (rather than closed).
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryPutError::Full(_) => "Full(..)",
            TryPutError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryPutError::Full(_) => "queue is full",
            TryPutError::Closed(_) => "queue is closed",
        })
    }
}

impl<T> std::error::Error for TryPutError<T> {}

impl<T> From<Full<T>> for TryPutError<T> {
    fn from(Full(t): Full<T>) -> Self {
        TryPutError::Full(t)
    }
}

/// Why a timed get returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetTimeoutError {
    /// No item came in time.
    TimedOut,
    /// The queue was closed and drained.
    Closed,
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetTimeoutError::TimedOut => "timed out waiting for an item",
            GetTimeoutError::Closed => "queue is closed",
        })
    }
}

impl std::error::Error for GetTimeoutError {}
