//! The vocabulary curio-rt's crates share: `Park` and `Unpark`, the cooperative budget, the
//! current-task hook, typed kernel extensions.
//!
//! These are the small public traits and hooks through which the crates compose without knowing
//! each other's internals:
//!
//! - a kernel sleeps on a [`Park`] and is woken from other threads through an [`Unparker`]; the
//!   reactor of `curio-reactor` is the default parker, and any crate can write another;
//! - the cooperative budget ([`reset_budget`], [`consume_budget`], [`poll_budget`]) is refilled by the kernel
//!   before each task turn and spent by operations that complete without waiting;
//! - the current-task hook ([`current_task_id`], [`TaskScope`]) lets crates below the kernel
//!   (the `RLock` of `curio-sync`) know which task runs;
//! - [`Extensions`] carry the settings of crates above the kernel (the worker pool's limits)
//!   through the kernel's builder without the kernel knowing them;
//! - the wait-site hook ([`waiting`], [`at_site`], [`WaitSite`]) records where a task waits:
//!   curio's waiting operations are `#[track_caller]` functions whose futures report their
//!   call's location when they suspend, and the kernel keeps it per task for the monitor.
//!
//! # Implementation
//!
//! This crate starts no threads; its one dependency is `pin-project-lite` (a macro). The budget,
//! the current task and the wait site are thread-locals, set by the kernel that runs on the
//! thread.
//!
//! # Examples
//!
//! A parker that only waits for an unpark, the kind a kernel without I/O could sleep on:
//!
//! ```
//! use std::io;
//! use std::sync::{Arc, Condvar, Mutex};
//! use std::time::Duration;
//! use curio_core::{Park, Unpark, Unparker};
//!
//! #[derive(Default)]
//! struct Flag {
//!     set: Mutex<bool>,
//!     cond: Condvar,
//! }
//!
//! impl Unpark for Flag {
//!     fn unpark(&self) {
//!         *self.set.lock().unwrap() = true;
//!         self.cond.notify_one();
//!     }
//! }
//!
//! struct CondvarPark(Arc<Flag>);
//!
//! impl Park for CondvarPark {
//!     fn park(&self, timeout: Option<Duration>) -> io::Result<usize> {
//!         let mut set = self.0.set.lock().unwrap();
//!         if !*set {
//!             set = match timeout {
//!                 Some(t) => self.0.cond.wait_timeout(set, t).unwrap().0,
//!                 None => self.0.cond.wait(set).unwrap(),
//!             };
//!         }
//!         *set = false;
//!         Ok(0)
//!     }
//!     fn unparker(&self) -> Unparker {
//!         Unparker::new(self.0.clone())
//!     }
//! }
//!
//! let park = CondvarPark(Arc::default());
//! let unparker = park.unparker();
//! std::thread::spawn(move || unparker.unpark());
//! park.park(None)?; // returns once the other thread has unparked it
//! # Ok::<(), io::Error>(())
//! ```
#![forbid(unsafe_code)]

mod budget;
mod extensions;
mod park;
mod spin;
mod task;
mod wait;

pub use crate::budget::{BUDGET_PER_TURN, consume_budget, poll_budget, reset_budget};
pub use crate::extensions::Extensions;
pub use crate::park::{Park, ParkEnter, Unpark, Unparker};
pub use crate::spin::spin_until;
pub use crate::task::{TaskScope, current_task_id, forbid_blocking};
pub use crate::wait::{AtSite, WaitKind, WaitSite, at_site, take_wait_site, waiting};

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
