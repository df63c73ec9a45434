//! Task ids: a process-wide counter starting at 1.

use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identity: a process-wide counter starting at 1.
///
/// It also carries the task's slot in its kernel's registry, so a task is found by id in O(1)
/// (`KernelHandle::cancel`); two ids are equal when their numbers are.
// Packed to 4-byte alignment: 12 bytes instead of 16, so a task's header, which holds two ids'
// worth of fields, fits a smaller allocation. Fields are only ever copied out, never borrowed.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
pub struct TaskId {
    n: u64,
    /// The task's slot in its kernel's registry (`u32::MAX`: not known).
    slot: u32,
}

impl TaskId {
    pub(crate) fn new(n: u64, slot: u32) -> TaskId {
        TaskId { n, slot }
    }

    /// An id that names no task (0), for a remote task the kernel never started.
    pub(crate) fn none() -> TaskId {
        TaskId::new(0, u32::MAX)
    }

    /// The number.
    pub fn as_u64(self) -> u64 {
        self.n
    }

    /// The registry slot the task had when the id was made.
    pub(crate) fn slot(self) -> u32 {
        self.slot
    }

    /// The number, which is never zero for a task (ids start at 1).
    pub(crate) fn non_zero(self) -> std::num::NonZeroU64 {
        std::num::NonZeroU64::new(self.n).unwrap_or(std::num::NonZeroU64::MAX)
    }
}

impl PartialEq for TaskId {
    fn eq(&self, other: &Self) -> bool {
        self.as_u64() == other.as_u64()
    }
}

impl Eq for TaskId {}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskId {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.as_u64().cmp(&other.as_u64())
    }
}

impl Hash for TaskId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_u64().hash(state);
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskId").field(&self.as_u64()).finish()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_u64().fmt(f)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The next task number.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}
