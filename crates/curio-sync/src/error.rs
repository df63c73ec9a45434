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
