//! The curio-rt scheduler: kernel, tasks, cancellation, and the handle other threads use.
//!
//! A [`Kernel`] runs tasks on one thread with Curio's semantics: a FIFO ready queue; each cycle
//! runs only the tasks that were ready when it began; [`spawn`] and wakes never switch tasks;
//! [`yield_now`] moves a task to the back of the queue, so no task can starve others.
//! Tasks are `!Send` futures; a [`Task`] handle joins, waits for or cancels one.
//! Cancellation drops the task's future in the task's own next turn (the docs of `src/cancel.rs`
//! describe the model). A panicking task is reported and never takes the kernel down.
//!
//! Other threads reach a kernel through a [`KernelHandle`]: they spawn `Send` futures on it and wake
//! it.
//!
//! # Implementation
//!
//! The kernel starts no threads, except one watcher per [`run_until_thread_done`] call. It parks
//! on a boxed [`Park`], by default the reactor of `curio-reactor`, until I/O, the next deadline
//! of its timer queue (`curio-time`), or a wake from another thread, and reads time through a
//! [`Clock`].
//! Tasks are allocated by `async-task`; wakes from the kernel's own thread push onto a local queue,
//! wakes from other threads go through a `concurrent-queue` and one eventfd write.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let out = curio_kernel::run(async {
//!     let kid = curio_kernel::spawn(async {
//!         curio_kernel::sleep(Duration::from_millis(10)).await;
//!         "done"
//!     });
//!     kid.join().await.unwrap()
//! });
//! assert_eq!(out, "done");
//! ```
#![forbid(unsafe_code)]

mod activation;
mod cancel;
mod core;
mod error;
mod group;
mod harness;
mod header;
mod id;
mod kernel;
mod local;
mod multi;
mod remote;
mod scheduler;
mod sync;
mod task;
mod timeout;
mod trace;

#[cfg(all(test, loom))]
mod loom_tests;

pub use crate::activation::{
    Activation, Ended, LogCrash, LongBlock, SchedTrace, TaskInfo, logcrash, longblock, schedtrace,
};
pub use crate::cancel::{
    CancelReason, CancelRequested, NotInTask, Shield, cancel_requested, check_cancellation,
    disable_cancellation,
};
pub use crate::error::TaskError;
pub use crate::group::{
    AddTaskError, GroupError, Outcome, OutcomePolicy, TaskGroup, Wait, WaitPolicy,
};
pub use crate::id::TaskId;
pub use crate::kernel::{Kernel, KernelBuilder, config, extension, run, run_until_thread_done};
pub use crate::local::TaskLocal;
pub use crate::multi::{KernelFailed, MultiKernel, MultiKernelBuilder};
pub use crate::remote::{ExternalWork, KernelHandle, RemoteTask, try_handle};
pub use crate::task::{
    Builder, Task, TaskRef, current_task, spawn, spawn_daemon, try_current_task,
};
pub use crate::timeout::{
    IgnoreTimeout, TaskTimeout, Timeout, ignore_after, ignore_at, timeout_after, timeout_after_opt,
    timeout_at,
};
pub use curio_core::{Extensions, Park, ParkEnter, Unpark, Unparker, WaitKind, WaitSite};
pub use curio_time::{Clock, advance, clock, sleep, sleep_until, yield_now};

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
