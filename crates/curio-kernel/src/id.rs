//! Task ids: a process-wide counter starting at 1.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identity: a process-wide counter starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The number, which is never zero for a task (ids start at 1).
    pub(crate) fn non_zero(self) -> std::num::NonZeroU64 {
        std::num::NonZeroU64::new(self.0).unwrap_or(std::num::NonZeroU64::MAX)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> TaskId {
    TaskId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}
