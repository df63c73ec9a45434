//! The synchronisation types of the thread pool's hand-off (its queue, its idle threads, a call's
//! result and cancel flag): std's, or loom's under `--cfg loom`, so the model checks in
//! `loom_tests.rs` run the real pool.
//!
//! A `Waker` needs std's `Arc`, so a waker's own reference count is never modelled.

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};
#[cfg(loom)]
pub(crate) use loom::thread::{Builder, JoinHandle};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};
#[cfg(not(loom))]
pub(crate) use std::thread::{Builder, JoinHandle};

/// Locks `m`, ignoring poisoning: the pool's state is updated in single statements, and a
/// panic cannot leave it half-changed.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
