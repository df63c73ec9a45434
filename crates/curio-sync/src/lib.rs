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
//! # Design
//!
//! The kernel-local types keep their state in a `RefCell` that their clones share. Their waiters
//! sit in a wait list (`waiters.rs`): a FIFO over a slab, each entry with a waker, a `notified`
//! flag and a slot for what the waiter is handed, with O(1) push and removal.
//! `Lock`, `RLock` and the semaphores are gates (`gate.rs`) of one or `n` permits: a release hands
//! the permit straight to the first waiter (marks it notified) instead of raising the count, and a
//! new acquire takes a free permit only when nobody waits, so neither a newcomer nor a `try_*` call
//! takes what a waiter is owed.
//! The queues (`queue.rs`: `BaseQueue` with the storage orders `Fifo`, `Lifo` and `Smallest`) carry
//! items in their waiters' slots: a put with a getter waiting moves its item into the first
//! getter's slot, and a get from a full queue admits the first waiting putter. An unbounded queue
//! (`maxsize` 0) never makes a putter wait.
//!
//! # Cancel safety
//!
//! Every wait is cancel safe because of what a dropped waiter does in `Drop`:
//!
//! - a lock or semaphore waiter that was handed a permit releases it again, to the next waiter, so
//!   permits are conserved and a cancelled waiter never owns the resource;
//! - a queue getter that was handed an item gives it to the next getter, or puts it back where it
//!   would be taken next (the front of a FIFO queue);
//! - a putter takes its item with it, admitted or not: a get that frees a place only reserves it
//!   for the first waiting putter (the place counts for `is_full` and `try_put`, not for `len`),
//!   the item enters the queue when the putter's task runs and completes the put, and a putter
//!   dropped before that passes the reserved place to the next waiting putter, so a cancelled put
//!   never has an effect;
//! - a `Condition::wait` dropped after its notification, before it has the lock again, passes the
//!   notification to the next waiter;
//! - a Universal waiter leaves items in the shared state until it takes them, and passes on a
//!   notification it received (`universal.rs`).
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
//!             q2.put(i).await.unwrap();
//!         }
//!         q2.close(); // no more items: `get` says so once the rest are taken
//!     });
//!     let mut got = Vec::new();
//!     while let Ok(x) = q.get().await {
//!         got.push(x);
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
pub use error::{
    AlreadySet, Closed, Empty, Full, GetTimeoutError, SyncError, TryPutError, WaitTimeout,
};
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
