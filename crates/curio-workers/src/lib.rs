//! Worker threads and processes for curio-rt: run blocking and CPU-bound work off the kernel's
//! thread.
//!
//! - [`run_in_thread`] hands a closure to a pool of threads that belongs to the running kernel
//!   and waits for its result without blocking the kernel.
//! - [`spawn_thread`] starts an OS thread that behaves like a task (an [`AsyncThread`]: join,
//!   wait, cancel, a member of a task group) and can wait for futures on its kernel with
//!   [`await_with`] (Curio's `AWAIT`); see the [`thread`] module docs for what a thread can
//!   reach and how cancellation reaches it.
//! - [`run_in_process`] runs a registered `fn(A) -> R` in a pool of worker processes (this
//!   program started again, entering [`worker_main`]); see [`process`] for the protocol.
//! - [`fs`] has files whose operations run on the thread pool ([`fs::aopen`]).
//!
//! # Implementation
//!
//! Threads this crate starts: the per-kernel `curio-worker` pool threads (below); one
//! `curio-<name>` thread per [`spawn_thread`]; a short-lived `curio-procpool-reaper` per
//! cancelled process call; in each worker process, a `curio-worker-watch` thread that exits the
//! worker when its parent goes. Worker processes are children of the program, shared by all its
//! kernels while any kernel that used them is alive.
//!
//! Each kernel gets its own pool on first use. The pool starts threads (named `curio-worker`) on
//! demand, up to a limit: 64 by default, or `CURIO_MAX_WORKER_THREADS`, or the kernel builder's
//! [`max_worker_threads`](WorkersBuilderExt::max_worker_threads). A thread that has had
//! no work for the idle timeout (10 s by default,
//! [`worker_idle_timeout`](WorkersBuilderExt::worker_idle_timeout)) exits. A thread that
//! finished a job looks for the next one for up to 50 µs before it sleeps, so a task calling
//! [`run_in_thread`] in a loop hands each job to a thread that is still awake.
//! The pool's settings are this crate's own: [`WorkersBuilderExt`] stores them in the kernel
//! builder as a [`PoolConfig`] extension, and the pool reads them back from the running kernel.
//! Dropping the kernel stops and joins its idle threads; a thread still inside a call is detached
//! and exits when the call returns.
//!
//! Jobs queue in FIFO order when every thread is busy.
//! [`run_in_thread`] returns a [`RunInThread`] future that submits the closure on its first poll
//! and holds an `ExternalWork` guard until the job has woken the task, so a virtual clock cannot
//! jump past a job in flight.
//! Dropping the future (cancelling the call) returns at once: a job that has not started never
//! runs, and a running one finishes on its thread as a zombie whose result is dropped.
//! A panic in the closure is resumed in the calling task, where the kernel contains it like any
//! task panic.
//! A panic that escapes a job anyway (the `Drop` of a cancelled call's result, which runs on the
//! worker) is caught by the worker loop and reported, so no panic ends a worker thread or skips the
//! pool's accounting; unrun jobs are dropped outside the pool's lock, with panics contained too.
//! When the kernel is dropped, the pool drops its queued jobs unrun and joins its idle threads, as
//! well as threads whose call has already delivered its result.
//!
//! # Examples
//!
//! A thread pool call, and an async thread that waits for a kernel future:
//!
//! ```
//! let n = curio_kernel::run(async {
//!     let t = curio_workers::spawn_thread(|| {
//!         curio_workers::await_with(|| async { 6 * 7 }).expect("not cancelled")
//!     });
//!     t.join().await.unwrap()
//! });
//! assert_eq!(n, 42);
//! let sum = curio_kernel::run(async {
//!     curio_workers::run_in_thread(|| (1..=10).sum::<u32>()).await
//! });
//! assert_eq!(sum, 55);
//! ```
#![forbid(unsafe_code)]

pub mod fs;
pub mod process;
mod sync;
pub mod thread;

#[cfg(all(test, loom))]
mod loom_tests;

pub use crate::process::{
    DEFAULT_FRAME_LIMIT, DEFAULT_KILL_GRACE, ProcessError, ProcessFn, ProcessPoolConfig, Registry,
    RunInProcess, WorkerFn, run_in_process, worker_main,
};
pub use crate::thread::{
    AsyncThread, AwaitError, await_future, await_with, is_async_thread, spawn_thread,
    spawn_thread_daemon, spawn_thread_named, thread_task_id,
};

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::sync::{Arc, AtomicBool, Builder, Condvar, JoinHandle, Mutex, Ordering};

/// The thread limit used when neither the builder nor the environment sets one.
pub const DEFAULT_MAX_WORKER_THREADS: usize = 64;
/// How long an idle thread waits for work by default before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// The worker pool's settings for one kernel, kept among the kernel's extension settings
/// (see [`WorkersBuilderExt`]). `None` means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// The most threads `run_in_thread` may use at once.
    pub max_threads: Option<usize>,
    /// How long an idle worker thread waits for work before it exits.
    pub idle_timeout: Option<Duration>,
}

/// The worker pool's options on the kernel builder.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; pub use curio_workers::WorkersBuilderExt; pub mod workers { pub use curio_workers::ThreadPool; } }
/// use curio::WorkersBuilderExt;
///
/// let mut kernel = curio::Kernel::builder().max_worker_threads(2).build();
/// let n = kernel.run(async { curio::workers::ThreadPool::current().max_threads() });
/// assert_eq!(n, 2);
/// ```
pub trait WorkersBuilderExt {
    /// The most threads `run_in_thread` may use at once (default 64, or
    /// `CURIO_MAX_WORKER_THREADS`; at least 1).
    fn max_worker_threads(self, n: usize) -> Self;
    /// How long an idle worker thread waits for work before it exits (default 10 s).
    fn worker_idle_timeout(self, d: Duration) -> Self;
    /// The most worker processes of the process pool (default `available_parallelism`); see
    /// [`ProcessPoolConfig`] for which kernel's setting a process-wide pool uses.
    fn max_worker_processes(self, n: usize) -> Self;
    /// The arguments worker processes are started with (default none); a test binary names the
    /// test that calls [`worker_main`].
    fn worker_process_args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>;
    /// The largest encoded argument or result of [`run_in_process`] (default
    /// [`DEFAULT_FRAME_LIMIT`]).
    fn process_frame_limit(self, bytes: usize) -> Self;
    /// How long a cancelled worker process has between `SIGTERM` and `SIGKILL` (default
    /// [`DEFAULT_KILL_GRACE`]).
    fn worker_kill_grace(self, d: Duration) -> Self;
}

impl WorkersBuilderExt for curio_kernel::KernelBuilder {
    fn max_worker_threads(mut self, n: usize) -> Self {
        self.extensions_mut()
            .get_or_default_mut::<PoolConfig>()
            .max_threads = Some(n);
        self
    }

    fn worker_idle_timeout(mut self, d: Duration) -> Self {
        self.extensions_mut()
            .get_or_default_mut::<PoolConfig>()
            .idle_timeout = Some(d);
        self
    }

    fn max_worker_processes(mut self, n: usize) -> Self {
        self.extensions_mut()
            .get_or_default_mut::<ProcessPoolConfig>()
            .max_processes = Some(n);
        self
    }

    fn worker_process_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        self.extensions_mut()
            .get_or_default_mut::<ProcessPoolConfig>()
            .worker_args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    fn process_frame_limit(mut self, bytes: usize) -> Self {
        self.extensions_mut()
            .get_or_default_mut::<ProcessPoolConfig>()
            .frame_limit = Some(bytes);
        self
    }

    fn worker_kill_grace(mut self, d: Duration) -> Self {
        self.extensions_mut()
            .get_or_default_mut::<ProcessPoolConfig>()
            .kill_grace = Some(d);
        self
    }
}

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Threads that finished a job and look for the next one for a moment before they sleep
    /// (see [`SPIN`]): a job queued while enough of them look needs neither a wake nor a thread.
    spinning: usize,
    shutdown: bool,
    next_id: usize,
    workers: Vec<Worker>,
}

/// A pool thread, as shutdown sees it.
struct Worker {
    id: usize,
    handle: JoinHandle<()>,
    /// Inside a job that has not delivered its result yet: if its caller is gone, the thread is
    /// a zombie and shutdown detaches it; otherwise (idle, or finishing) shutdown joins it.
    busy: Arc<AtomicBool>,
}

#[cfg(not(loom))]
thread_local! {
    static BUSY: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}
// Loom runs its threads on one OS thread: the flag must be a loom thread's own.
#[cfg(loom)]
loom::thread_local! {
    static BUSY: std::cell::RefCell<Option<Arc<AtomicBool>>> = std::cell::RefCell::new(None);
}

/// Tells the pool that the job running on this thread has delivered its result (or will never
/// deliver one): the thread is no zombie, and shutdown may wait for it.
fn mark_finishing() {
    BUSY.with(|f| {
        if let Some(f) = &*f.borrow() {
            f.store(false, Ordering::Release);
        }
    });
}

struct PoolShared {
    state: Mutex<State>,
    cond: Condvar,
    max: usize,
    idle_timeout: Duration,
}

/// Locks a std mutex of the other modules, ignoring poisoning (the pool's own are in `sync`).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A kernel's pool of worker threads.
pub struct ThreadPool {
    shared: Arc<PoolShared>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = sync::lock(&self.shared.state);
        f.debug_struct("ThreadPool")
            .field("threads", &st.threads)
            .field("idle", &st.idle)
            .field("max", &self.shared.max)
            .finish()
    }
}

impl ThreadPool {
    /// A pool of at most `max` threads (at least 1), whose idle threads exit after `idle_timeout`.
    pub fn new(max: usize, idle_timeout: Duration) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    spinning: 0,
                    shutdown: false,
                    next_id: 0,
                    workers: Vec::new(),
                }),
                cond: Condvar::new(),
                max: max.max(1),
                idle_timeout,
            }),
        }
    }

    /// The running kernel's pool, created on first use from the kernel's configuration.
    ///
    /// # Panics
    ///
    /// Outside a curio kernel.
    pub fn current() -> Rc<ThreadPool> {
        curio_kernel::extension(|| {
            let cfg = curio_kernel::config::<PoolConfig>().unwrap_or_default();
            let max = cfg
                .max_threads
                .or_else(|| {
                    std::env::var("CURIO_MAX_WORKER_THREADS")
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(DEFAULT_MAX_WORKER_THREADS);
            ThreadPool::new(max, cfg.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT))
        })
    }

    /// The thread limit.
    pub fn max_threads(&self) -> usize {
        self.shared.max
    }

    /// Threads alive now (busy or idle).
    pub fn thread_count(&self) -> usize {
        sync::lock(&self.shared.state).threads
    }

    /// Queues a job; starts a thread if none is idle and the limit allows.
    ///
    /// # Errors
    ///
    /// When the operating system refuses a new thread and none is running to take the job.
    pub fn execute(&self, job: Job) -> std::io::Result<()> {
        let mut st = sync::lock(&self.shared.state);
        st.jobs.push_back(job);
        if st.idle > 0 {
            drop(st);
            self.shared.cond.notify_one();
            return Ok(());
        }
        // A thread that just finished a job is still looking: it takes this one (each looking
        // thread takes one of the queued jobs).
        if st.spinning >= st.jobs.len() {
            return Ok(());
        }
        if st.threads < self.shared.max {
            let id = st.next_id;
            st.next_id += 1;
            let shared = self.shared.clone();
            let busy = Arc::new(AtomicBool::new(false));
            let b2 = busy.clone();
            match Builder::new()
                .name("curio-worker".into())
                .spawn(move || worker(shared, id, b2))
            {
                Ok(handle) => {
                    st.threads += 1;
                    st.workers.push(Worker { id, handle, busy });
                }
                Err(e) if st.threads == 0 => {
                    st.jobs.pop_back();
                    return Err(e);
                }
                // Some thread will take the job when it finishes its current one.
                Err(_) => {}
            }
        }
        Ok(())
    }
}

/// Runs `f`, reporting a panic in it on stderr instead of unwinding.
fn contain(what: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        eprintln!("curio: {what} panicked: {msg}");
    }
}

/// How long a thread that finished a job looks for the next one before it sleeps on the
/// condition variable.
///
/// A task that calls `run_in_thread` in a loop queues its next job a kernel wake-up after the
/// last one finished (5–40 µs on a virtual machine): a thread that is still looking then takes
/// it without the futex wake of the condition variable and the thread's own wake-up, which cost
/// as much again. A thread that finds nothing has spent at most this long on a core.
#[cfg(not(loom))]
const SPIN: Duration = Duration::from_micros(50);

/// Whether a looking thread should stop looking: a job is queued, or the pool shuts down.
fn work_or_shutdown(shared: &PoolShared) -> bool {
    let st = sync::lock(&shared.state);
    !st.jobs.is_empty() || st.shutdown
}

/// After a job: looks for the next one for up to [`SPIN`], and returns as soon as there is one
/// (or the pool shuts down).
#[cfg(not(loom))]
fn look_for_work(shared: &PoolShared) {
    curio_core::spin_until(SPIN, || work_or_shutdown(shared));
}

/// Under loom: one pause and one look, which interleave with every queueing and keep the model
/// small.
#[cfg(loom)]
fn look_for_work(shared: &PoolShared) {
    loom::thread::yield_now();
    let _ = work_or_shutdown(shared);
}

fn worker(shared: Arc<PoolShared>, id: usize, busy: Arc<AtomicBool>) {
    BUSY.with(|f| *f.borrow_mut() = Some(busy.clone()));
    let mut st = sync::lock(&shared.state);
    // Whether the thread has just finished a job, and so looks for the next before it sleeps.
    let mut ran = false;
    loop {
        if ran && st.jobs.is_empty() && !st.shutdown {
            ran = false;
            st.spinning += 1;
            drop(st);
            look_for_work(&shared);
            st = sync::lock(&shared.state);
            st.spinning -= 1;
            continue;
        }
        if let Some(job) = st.jobs.pop_front() {
            // Set under the lock, so shutdown sees either an idle thread or a busy one.
            busy.store(true, Ordering::Release);
            drop(st);
            // A job's own panics are caught inside it; what can still unwind here is user code
            // run when the job and its call state are dropped (the `Drop` of a cancelled call's
            // result, say). The thread and its place in the pool's accounting survive it.
            contain("a worker thread's job", job);
            busy.store(false, Ordering::Release);
            st = sync::lock(&shared.state);
            ran = true;
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (guard, res) = shared
            .cond
            .wait_timeout(st, shared.idle_timeout)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if res.timed_out() && st.jobs.is_empty() {
            break;
        }
    }
    st.threads -= 1;
    // An exiting thread detaches itself, unless shutdown is about to join it.
    if !st.shutdown
        && let Some(pos) = st.workers.iter().position(|w| w.id == id)
    {
        drop(st.workers.swap_remove(pos));
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let (jobs, idle): (VecDeque<Job>, Vec<JoinHandle<()>>) = {
            let mut st = sync::lock(&self.shared.state);
            st.shutdown = true;
            // Queued jobs belong to calls whose tasks are gone: they are dropped unrun, below,
            // outside the lock (dropping a closure runs its captures' `Drop`).
            let jobs = std::mem::take(&mut st.jobs);
            // Threads still inside an abandoned call are detached: they exit when it returns.
            let idle = std::mem::take(&mut st.workers)
                .into_iter()
                .filter(|w| !w.busy.load(Ordering::Acquire))
                .map(|w| w.handle)
                .collect();
            (jobs, idle)
        };
        for job in jobs {
            contain("dropping an unrun worker job", || drop(job));
        }
        self.shared.cond.notify_all();
        for h in idle {
            let _ = h.join();
        }
    }
}

struct CallState<R> {
    result: Mutex<Option<std::thread::Result<R>>>,
    waker: Mutex<Option<Waker>>,
    cancelled: AtomicBool,
}

/// Runs `f` on a worker thread of the running kernel's pool and waits for its result without
/// blocking the kernel (Curio's `run_in_thread`).
///
/// # Panics
///
/// Outside a curio kernel; if `f` panics, the panic is resumed in the calling task; if the
/// operating system refuses to start the first worker thread.
///
/// # Cancel safety
///
/// Dropping the future returns at once. A call not yet started never runs; a running call
/// finishes on its thread as a zombie and its result is dropped.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub use curio_workers::run_in_thread; }
/// let n = curio::run(async {
///     curio::run_in_thread(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0)).await
/// });
/// assert!(n > 0);
/// ```
#[doc(alias = "spawn_blocking")]
#[track_caller]
pub fn run_in_thread<F, R>(f: F) -> RunInThread<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let state = Arc::new(CallState {
        result: Mutex::new(None),
        waker: Mutex::new(None),
        cancelled: AtomicBool::new(false),
    });
    RunInThread {
        state,
        job: Some(Box::new(f)),
        submitted: false,
        site: std::panic::Location::caller(),
    }
}

/// The future of [`run_in_thread`].
#[must_use = "futures do nothing unless awaited"]
pub struct RunInThread<R> {
    state: Arc<CallState<R>>,
    job: Option<Box<dyn FnOnce() -> R + Send>>,
    submitted: bool,
    /// The call of `run_in_thread`, reported as the task's wait site.
    site: &'static std::panic::Location<'static>,
}

impl<R> fmt::Debug for RunInThread<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunInThread")
            .field("submitted", &self.submitted)
            .finish()
    }
}

impl<R> Unpin for RunInThread<R> {}

impl<R: Send + 'static> RunInThread<R> {
    /// Hands the call to `pool`: its job runs the closure unless the call was dropped first,
    /// stores the result, wakes the task through `waker`, and drops `work` last (the kernel's
    /// `ExternalWork` guard, so a virtual clock cannot jump before the wake).
    fn submit<W: Send + 'static>(
        &mut self,
        waker: &Waker,
        pool: &ThreadPool,
        work: W,
    ) -> std::io::Result<()> {
        *sync::lock(&self.state.waker) = Some(waker.clone());
        let f = self.job.take().expect("job present until submitted");
        let state = self.state.clone();
        let job: Job = Box::new(move || {
            if state.cancelled.load(Ordering::Acquire) {
                mark_finishing();
            } else {
                let r = catch_unwind(AssertUnwindSafe(f));
                *sync::lock(&state.result) = Some(r);
                // Marked before the wake: once the caller can see the result, shutdown
                // may run, and it must wait for this thread rather than detach it.
                mark_finishing();
                if let Some(w) = sync::lock(&state.waker).take() {
                    w.wake();
                }
            }
            // Dropped after the wake, so a virtual clock cannot jump in between.
            drop(work);
        });
        pool.execute(job)?;
        self.submitted = true;
        Ok(())
    }
}

impl<R: Send + 'static> Future for RunInThread<R> {
    type Output = R;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        if !self.submitted {
            let handle = curio_kernel::try_handle()
                .expect("curio::run_in_thread polled outside a curio kernel");
            let work = handle.external_work();
            self.submit(cx.waker(), &ThreadPool::current(), work)
                .expect("curio: cannot start a worker thread");
            curio_core::waiting(curio_core::WaitKind::External, Some(self.site));
            return Poll::Pending;
        }
        if let Some(r) = sync::lock(&self.state.result).take() {
            return match r {
                Ok(v) => Poll::Ready(v),
                Err(p) => resume_unwind(p),
            };
        }
        let mut w = sync::lock(&self.state.waker);
        match &mut *w {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        drop(w);
        // The result may have landed between the two checks.
        if let Some(r) = sync::lock(&self.state.result).take() {
            return match r {
                Ok(v) => Poll::Ready(v),
                Err(p) => resume_unwind(p),
            };
        }
        curio_core::waiting(curio_core::WaitKind::External, Some(self.site));
        Poll::Pending
    }
}

impl<R> Drop for RunInThread<R> {
    fn drop(&mut self) {
        self.state.cancelled.store(true, Ordering::Release);
        sync::lock(&self.state.waker).take();
    }
}

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
