//! curio-rt: Curio's concurrent I/O model in Rust.
//!
//! A small, explicit kernel runs tasks on one thread. Tasks are cancellable, join through
//! handles, sleep on the kernel's clock, and talk to other threads through a [`KernelHandle`].
//! Blocking work goes to a thread pool with [`run_in_thread`], CPU work to worker processes with
//! [`run_in_process`], and [`spawn_thread`] starts a thread that can wait for futures on the
//! kernel ([`await_with`], Curio's `AWAIT`); files live in [`fs`], sockets in [`net`],
//! authenticated messages between programs in [`channel`], child processes in [`process`] and
//! Unix signals in [`signal`].
//!
//! This crate is the facade: it only re-exports the workspace's crates
//! (`curio-kernel`, `curio-time`, `curio-reactor`, `curio-sync`, `curio-net`, `curio-process`,
//! `curio-workers`), each of which
//! can also be used on its own.
//!
//! # Examples
//!
//! The echo server of Curio's README:
//!
//! ```no_run
//! use curio::net::{TcpStream, tcp_server};
//! use std::net::SocketAddr;
//!
//! async fn echo_client(client: TcpStream, addr: SocketAddr) -> std::io::Result<()> {
//!     println!("Connection from {addr}");
//!     loop {
//!         let data = client.recv(100_000).await?;
//!         if data.is_empty() {
//!             break;
//!         }
//!         client.sendall(&data).await?;
//!     }
//!     println!("Connection closed");
//!     Ok(())
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     curio::run(tcp_server("0.0.0.0:25000", echo_client))
//! }
//! ```
//!
//! Tasks:
//!
//! ```
//! use std::time::Duration;
//!
//! let out = curio::run(async {
//!     let kid = curio::spawn(async {
//!         curio::sleep(Duration::from_millis(1)).await;
//!         37
//!     });
//!     kid.join().await
//! });
//! assert_eq!(out.unwrap(), 37);
//! ```
#![forbid(unsafe_code)]

pub use curio_kernel::{
    AddTaskError, Builder, CancelReason, CancelRequested, GroupError, IgnoreTimeout, Kernel,
    KernelBuilder, KernelFailed, KernelHandle, MultiKernel, MultiKernelBuilder, NotInTask, Outcome,
    OutcomePolicy, RemoteTask, Shield, Task, TaskError, TaskGroup, TaskId, TaskLocal, TaskRef,
    TaskTimeout, Timeout, Wait, WaitPolicy, cancel_requested, check_cancellation, current_task,
    disable_cancellation, ignore_after, ignore_at, run, spawn, spawn_daemon, task_local,
    timeout_after, timeout_after_opt, timeout_at, try_current_task,
};
pub use curio_macros::{main, test};

/// Activation hooks (Curio's `Activation`): code the kernel calls as tasks are created, run,
/// suspend and terminate, installed with `Kernel::builder().activation(..)`; the built-ins are
/// `schedtrace`, `logcrash` and `longblock` (blocking detection).
pub mod activation {
    pub use curio_kernel::{
        Activation, Ended, LogCrash, LongBlock, SchedTrace, TaskInfo, logcrash, longblock,
        schedtrace,
    };
}
pub use curio_time::{clock, sleep, sleep_until, yield_now};
pub use curio_workers::{
    AsyncThread, WorkersBuilderExt, await_future, await_with, run_in_process, run_in_thread,
    spawn_thread,
};

/// The kernel builder's options from every crate, as extension traits: `use curio::prelude::*;`
/// makes `Kernel::builder().max_worker_threads(4)` and the like available.
///
/// # Examples
///
/// ```
/// use curio::prelude::*;
///
/// let mut kernel = curio::Kernel::builder()
///     .virtual_clock(true)
///     .max_worker_threads(2)
///     .build();
/// assert_eq!(kernel.run(async { 1 + 1 }), 2);
/// ```
pub mod prelude {
    pub use crate::WorkersBuilderExt as _;
    pub use curio_monitor::MonitorBuilderExt as _;
}

/// The live monitor: `Kernel::builder().monitor(true)` (or `CURIOMONITOR` with
/// `#[curio::main]`), then `curio-monitor` or `nc 127.0.0.1 48802` and `ps`.
pub mod monitor {
    pub use curio_monitor::{DEFAULT_ADDR, MonitorBuilderExt, MonitorConfig, local_addr};
}

/// Time: the kernel's clock, sleeping, and the virtual clock's manual advance.
pub mod time {
    pub use curio_time::{
        Clock, RealClock, Sleep, VirtualClock, advance, clock, sleep, sleep_until, yield_now,
    };
}

/// Synchronisation primitives: kernel-local (`!Send`) and Universal (shared with threads and
/// other runtimes).
pub mod sync {
    pub use curio_sync::{
        AlreadySet, BoundedSemaphore, Condition, Event, EventWait, Lock, LockGuard, Promise, RLock,
        RLockGuard, Semaphore, SemaphorePermit, SyncError, UniversalEvent, UniversalPromise,
        WaitTimeout,
    };
}

/// Queues between tasks, and between tasks and threads.
pub mod queue {
    pub use curio_sync::{
        BaseQueue, Closed, Empty, Fifo, Full, Get, GetTimeoutError, Lifo, LifoQueue, PriorityQueue,
        Put, Queue, Smallest, Storage, SyncError, TryPutError, UniversalQueue, WaitTimeout,
    };
}

/// Sockets and servers.
pub mod net {
    pub use curio_net::*;
}

/// Authenticated message passing between programs: `Channel` and `Connection` (also
/// `curio::net::channel`).
pub use curio_net::channel;

/// TLS on rustls (feature `tls`, on by default): also `curio::net::tls`.
#[cfg(feature = "tls")]
pub use curio_net::tls;

/// Child processes: `Command`, `Child`, pipes as `FileStream`s, `run` and `check_output`.
pub mod process {
    pub use curio_process::{
        CalledProcessError, Child, Command, CompletedProcess, FileStream, Stdio, SubprocessError,
        TimeoutExpired, check_output, run, set_use_pidfd,
    };
}

// Re-exported whole, so that the module's own docs (how handlers chain, what happens to a signal
// nobody waits for) are on the facade's page.
pub use curio_process::signal;

/// Worker threads, async threads (`spawn_thread`, `await_with`) and the process pool
/// (`run_in_process`, `worker_main`).
pub mod workers {
    pub use curio_workers::{
        AsyncThread, AwaitError, DEFAULT_FRAME_LIMIT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KILL_GRACE,
        DEFAULT_MAX_WORKER_THREADS, PoolConfig, ProcessError, ProcessFn, ProcessPoolConfig,
        Registry, RunInProcess, RunInThread, ThreadPool, WorkerFn, WorkersBuilderExt, await_future,
        await_with, is_async_thread, run_in_process, run_in_thread, spawn_thread,
        spawn_thread_daemon, spawn_thread_named, thread_task_id, worker_main,
    };
}

// Re-exported whole, so that the module's own docs (cancellation, errors) are on the facade's page.
pub use curio_workers::fs;

/// HTTP/1 and HTTP/2 with hyper (feature `hyper`, off by default): hyper's runtime traits for
/// curio's streams, kernel and clock, and HTTP servers with graceful shutdown.
#[cfg(feature = "hyper")]
pub mod hyper {
    pub use curio_hyper::*;
}

/// The lower layers, for crates that extend the kernel.
pub mod rt {
    pub use curio_core::{
        AtSite, BUDGET_PER_TURN, Extensions, Park, ParkEnter, TaskScope, Unpark, Unparker,
        WaitKind, WaitSite, at_site, consume_budget, current_task_id, reset_budget, take_wait_site,
        waiting,
    };
    pub use curio_kernel::{ExternalWork, config, extension, run_until_thread_done, try_handle};
    pub use curio_reactor::{Async, Direction, EnterGuard, Notifier, PollOutcome, Reactor};
}

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
