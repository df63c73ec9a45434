//! Synchronisation primitives and queues for curio-rt: kernel-local ones for tasks, and
//! Universal ones shared with threads and other runtimes.
//!
//! The kernel-local primitives ([`Event`], [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Promise`], [`Queue`], [`LifoQueue`],
//! [`PriorityQueue`]) are `!Send`: their wait lists need no lock and no atomic operation. They hand
//! off FIFO: a release gives the resource to the first waiter, so a newcomer cannot barge; a
//! cancelled waiter never keeps what it was handed. They need nothing of the kernel but wakers
//! (and, for `RLock`, the running task's id through curio-core's hook), so they work on any
//! single-threaded executor. Each is a cheap `Clone` handle, like the Universal types: clones
//! share one state, so tasks take a clone instead of an `Rc`.
//!
//! The Universal types ([`UniversalQueue`], [`UniversalEvent`], [`UniversalPromise`]) are
//! `Send + Sync` and work the same from a curio task (`.await`), a plain thread (blocking calls,
//! with timeouts) and a task of another runtime (they are plain `Future`s), built on
//! `event-listener`.
//!
//! # Implementation
//!
//! This crate starts no threads and uses no `unsafe`.
//!
//! # Examples
//!
//! ```
//! use curio_sync::{Lock, Queue};
//!
//! curio_kernel::run(async {
//!     let q = Queue::new(1);
//!     let lock = Lock::new();
//!     let (q2, l2) = (q.clone(), lock.clone());
//!     let producer = curio_kernel::spawn(async move {
//!         for i in 0..3 {
//!             let _g = l2.lock().await;
//!             q2.put(i).await;
//!         }
//!     });
//!     let mut got = Vec::new();
//!     for _ in 0..3 {
//!         got.push(q.get().await);
//!     }
//!     producer.join().await.unwrap();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```
#![forbid(unsafe_code)]

mod condition;
mod error;
mod event;
mod gate;
mod lock;
mod promise;
mod queue;
mod semaphore;
mod sync;
mod universal;
mod waiters;

#[cfg(all(loom, test))]
mod loom_tests;

pub use condition::Condition;
pub use error::{AlreadySet, Empty, Full, SyncError, WaitTimeout};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use promise::Promise;
pub use queue::{
    BaseQueue, Fifo, Get, Lifo, LifoQueue, PriorityQueue, Put, Queue, Smallest, Storage,
};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
pub use universal::{UniversalEvent, UniversalPromise, UniversalQueue};

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
