//! The synchronisation types on the paths other threads take into a kernel (the remote queue's
//! flags, the main future's wake flag, a remote task's slot): std's, or loom's under `--cfg loom`,
//! so the model checks in `loom_tests.rs` run the real code.
//!
//! Only types that cross threads are here; everything on the kernel's own thread stays `Rc` and
//! `Cell`. A `Waker` needs std's `Arc`, so a waker's own reference count is never modelled.

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

/// Locks `m`, ignoring poisoning: every critical section on these paths leaves the state whole.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
