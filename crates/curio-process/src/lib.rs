//! Subprocesses and Unix signals for curio-rt: async children, pipes, reaping, signal queues.
//!
//! [`Command`] builds a child like `std::process::Command`; [`Command::spawn`] gives a [`Child`]
//! whose piped stdin, stdout and stderr are [`FileStream`]s (non-blocking, registered with the
//! kernel's reactor, `futures_io::{AsyncRead, AsyncWrite}`), and whose [`wait`](Child::wait)
//! and [`communicate`](Child::communicate) suspend only the calling task.
//! [`run`] and [`check_output`] are Curio's one-call forms, with [`CalledProcessError`] and,
//! when the command's timeout expires, [`TimeoutExpired`] carrying the output read so far.
//!
//! Reaping is never the caller's problem: each child has a pidfd (Linux), readable when it
//! exits; without pidfd, waiting listens for `SIGCHLD`. A [`Child`] dropped before its process
//! ended is handed to a process-wide reaper (after a `SIGKILL` if the command asked for
//! [`kill_on_drop`](Command::kill_on_drop)), so no zombie is left, even after the kernel is gone.
//!
//! [`signal`] turns Unix signals into events tasks wait for: [`signal::SignalQueue`],
//! [`signal::SignalEvent`] and [`signal::ctrl_c`].
//!
//! # Implementation
//!
//! The crate starts one thread, `curio-reaper`, and only when a `Child` is dropped before its
//! process was reaped; it waits in `poll` on the orphans' pidfds (or for `SIGCHLD`) and reaps
//! them. Each kernel that listens for signals runs a daemon task, `curio-signals`, that hands
//! the signals to its listeners.
//! The crate denies `unsafe`; only the module that installs the signal handler (`sys`) opts in,
//! with a `// SAFETY:` comment on every block.
//!
//! # Examples
//!
//! ```
//! use curio_process::{Command, Stdio, check_output};
//!
//! curio_kernel::run(async {
//!     // A pipeline: `printf` into `wc -l`, the pipe passed from one child to the other.
//!     let mut printf = Command::new("printf").arg("a\nb\nc\n").stdout(Stdio::piped()).spawn()?;
//!     let pipe = printf.stdout.take().unwrap();
//!     let out = check_output(Command::new("wc").arg("-l").stdin(pipe)).await?;
//!     assert_eq!(String::from_utf8_lossy(&out).trim(), "3");
//!     assert!(printf.wait().await?.success());
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

mod child;
mod command;
mod reaper;
mod run;
pub mod signal;
mod stream;
mod sys;

use std::sync::atomic::{AtomicBool, Ordering};

pub use child::{Child, CompletedProcess};
pub use command::{Command, Stdio};
pub use run::{CalledProcessError, SubprocessError, TimeoutExpired, check_output, run};
pub use stream::FileStream;

static USE_PIDFD: AtomicBool = AtomicBool::new(true);

/// Whether children spawned from now on get a pidfd (the default, where the system has
/// pidfd); `false` makes them use the `SIGCHLD` fallback, as on systems without pidfd.
/// Process-wide; meant for tests of the fallback.
pub fn set_use_pidfd(on: bool) {
    USE_PIDFD.store(on, Ordering::Relaxed);
}

pub(crate) fn use_pidfd() -> bool {
    USE_PIDFD.load(Ordering::Relaxed)
}

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
