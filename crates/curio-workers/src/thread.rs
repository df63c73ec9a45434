//! Async threads: real OS threads that behave like tasks and can wait for futures on the kernel
//! (Curio's `spawn_thread` and `AWAIT`).
//!
//! [`spawn_thread`] starts a thread and a kernel task that stands for it. The task is what the
//! kernel sees: it has the id and name that [`AsyncThread::id`] reports, it can be joined,
//! waited for, cancelled and added to a [`TaskGroup`](curio_kernel::TaskGroup), and inside the
//! futures it runs for the thread, [`current_task`](curio_kernel::current_task) is that task.
//!
//! Inside the thread, [`await_with`] hands a closure to that task, which calls it on the kernel's
//! thread and awaits the future it returns; the thread blocks until the future completes.
//! Kernel-local values (`Rc`, [`Lock`](https://docs.rs/curio-sync), a kernel `Queue`, a socket
//! registered with the kernel) are `!Send`, so they never cross to the thread: the closure is
//! `Send`, builds the future on the kernel, and reaches kernel-local state there, through
//! task-locals (the stand-in task inherits the task-locals of the task that called
//! `spawn_thread`) or through `Send` values it carries in and out.
//! [`await_future`] is the short form for a future that is itself `Send`.
//!
//! # What a thread can reach
//!
//! - Universal types (`UniversalQueue`, `UniversalEvent`, ...) directly, with their blocking
//!   methods: no `AWAIT` needed.
//! - Kernel queues, locks and events through `await_with`, with the whole wait (a critical
//!   section, a `get`) inside one closure: a `LockGuard` cannot leave the kernel's thread.
//! - Sockets as `std` values carried into the closure and back: `from_std` makes a curio socket
//!   on the kernel, `into_std` gives the std socket back to the thread (the facade's test
//!   `workers::async_thread_uses_a_socket_through_await_with` shows it); or kept in a task-local
//!   of the stand-in task.
//! - Timeouts around any of these: `await_with(|| timeout_after(d, fut))`.
//!
//! While the thread runs its own code, a kernel on a virtual clock does not jump its time (as
//! for [`run_in_thread`](crate::run_in_thread)); while it waits in `await_with`, it does.
//!
//! ```
//! # mod curio { pub use curio_kernel::{Kernel, sleep, task_local, timeout_after}; pub use curio_workers::{await_with, spawn_thread}; }
//! use std::time::Duration;
//! use curio::{sleep, timeout_after};
//!
//! curio::task_local! {
//!     static LOG: std::rc::Rc<std::cell::RefCell<Vec<u32>>>;
//! }
//!
//! let mut kernel = curio::Kernel::builder().virtual_clock(true).build();
//! let log = kernel.run(async {
//!     LOG.set(Default::default()).unwrap();
//!     let t = curio::spawn_thread(|| {
//!         for i in 0..3 {
//!             // Kernel-local state, reached through the stand-in's task-locals.
//!             curio::await_with(move || async move {
//!                 LOG.get().unwrap().unwrap().borrow_mut().push(i);
//!             })
//!             .unwrap();
//!         }
//!         // A timeout on the kernel: the sleep is dropped after 1 s (of virtual time).
//!         curio::await_with(|| timeout_after(Duration::from_secs(1), sleep(Duration::from_secs(5))))
//!             .unwrap()
//!             .is_err()
//!     });
//!     assert!(t.join().await.unwrap(), "timed out");
//!     LOG.get().unwrap().unwrap().take()
//! });
//! assert_eq!(log, [0, 1, 2]);
//! ```
//!
//! # Cancellation
//!
//! Cancelling an [`AsyncThread`] cancels its stand-in task, which the kernel drops like any
//! task: promptly, wherever the thread is. A future the thread is waiting for is dropped on the
//! kernel's thread (its cleanup is its `Drop`), and that `await_with` returns
//! [`AwaitError::Cancelled`]; a thread that is running its own code sees the error at its next
//! `await_with`. Either way the thread runs on, as a zombie, until it returns: its cleanup runs
//! on the thread, its later `await_with` calls all return `Cancelled` at once, and its result is
//! dropped. A thread that never calls `await_with` is a zombie like a cancelled
//! [`run_in_thread`](crate::run_in_thread).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use curio_kernel::{ExternalWork, KernelHandle, Task, TaskError, TaskId, TaskRef};

use crate::lock;

type AnyBox = Box<dyn Any + Send>;
type LocalFuture = Pin<Box<dyn Future<Output = AnyBox>>>;
type Job = Box<dyn FnOnce() -> LocalFuture + Send>;

/// The error of [`await_with`] and [`await_future`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwaitError {
    /// The async thread was cancelled (or its kernel shut down): the future was dropped, or never
    /// started.
    Cancelled,
    /// Called on a thread that is not an async thread (Curio's `AsyncOnlyError`).
    NotAsyncThread,
}

impl fmt::Display for AwaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwaitError::Cancelled => f.write_str("the async thread was cancelled"),
            AwaitError::NotAsyncThread => f.write_str("not called from an async thread"),
        }
    }
}

impl std::error::Error for AwaitError {}

/// What the thread and its stand-in task share.
struct Link {
    state: Mutex<LinkState>,
    /// The thread waits here for its reply.
    cond: Condvar,
    handle: KernelHandle,
}

struct LinkState {
    /// A request from the thread that the task has not taken yet.
    request: Option<Job>,
    /// The reply to the thread's current request, with the guard that keeps a virtual clock
    /// still while the thread runs on.
    reply: Option<(std::thread::Result<AnyBox>, ExternalWork)>,
    /// The thread's outcome, once it has returned.
    done: Option<std::thread::Result<AnyBox>>,
    /// The stand-in task's waker.
    waker: Option<Waker>,
    /// The stand-in task is gone: every request fails with `Cancelled`.
    closed: bool,
}

impl Link {
    /// Hands something to the task and wakes it.
    fn post(&self, f: impl FnOnce(&mut LinkState)) -> bool {
        let mut st = lock(&self.state);
        if st.closed {
            return false;
        }
        f(&mut st);
        let w = st.waker.take();
        drop(st);
        if let Some(w) = w {
            w.wake();
        }
        true
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<ThreadCtx>> = const { std::cell::RefCell::new(None) };
}

/// The async thread's side of the link.
struct ThreadCtx {
    link: Arc<Link>,
    /// Held while the thread runs its own code, so a virtual clock does not jump meanwhile.
    work: Option<ExternalWork>,
    id: TaskId,
}

/// Whether the calling thread is an async thread (Curio's `is_async_thread`).
pub fn is_async_thread() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// The id of the calling async thread's stand-in task, or `None` on any other thread.
pub fn thread_task_id() -> Option<TaskId> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| c.id))
}

/// Runs a future on the kernel that owns the calling async thread and blocks the thread until it
/// completes (Curio's `AWAIT`).
///
/// `make` is called on the kernel's thread, inside the thread's stand-in task, and the future it
/// returns is awaited there; so it may use kernel-local values, reached through task-locals (the
/// stand-in inherits those of the task that called [`spawn_thread`]) or built inside the closure.
/// Only `make` and the output cross between threads.
///
/// # Errors
///
/// [`AwaitError::Cancelled`] when the async thread was cancelled (the future was dropped on the
/// kernel, or never built) or its kernel shut down; [`AwaitError::NotAsyncThread`] on a thread
/// that [`spawn_thread`] did not start.
///
/// # Panics
///
/// A panic in `make` or in the future is resumed on the calling thread.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{current_task, run, sleep}; pub use curio_workers::{await_with, spawn_thread}; }
/// use std::time::Duration;
///
/// let n = curio::run(async {
///     let t = curio::spawn_thread(|| {
///         curio::await_with(|| async {
///             curio::sleep(Duration::from_millis(1)).await;
///             curio::current_task().id()
///         })
///     });
///     let id = t.id();
///     (t.join().await.unwrap().unwrap(), id)
/// });
/// assert_eq!(n.0, n.1);
/// ```
#[doc(alias = "AWAIT")]
pub fn await_with<F, Fut>(make: F) -> Result<Fut::Output, AwaitError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let job: Job = Box::new(move || -> LocalFuture {
        let fut = make();
        Box::pin(async move { Box::new(fut.await) as AnyBox })
    });
    let out = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let ctx = c.as_mut().ok_or(AwaitError::NotAsyncThread)?;
        let link = ctx.link.clone();
        if !link.post(|st| st.request = Some(job)) {
            ctx.work = None;
            return Err(AwaitError::Cancelled);
        }
        // After the wake: the task is scheduled, so a virtual clock cannot jump past it.
        drop(ctx.work.take());
        let mut st = lock(&link.state);
        loop {
            if let Some((r, work)) = st.reply.take() {
                ctx.work = Some(work);
                return Ok(r);
            }
            if st.closed {
                // The thread can no longer wake the kernel: a virtual clock need not wait for it.
                ctx.work = None;
                return Err(AwaitError::Cancelled);
            }
            st = link.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    })?;
    match out {
        Ok(v) => Ok(*v
            .downcast::<Fut::Output>()
            .unwrap_or_else(|_| unreachable!("the reply to this request"))),
        Err(payload) => resume_unwind(payload),
    }
}

/// Runs a `Send` future on the kernel that owns the calling async thread and blocks until it
/// completes: [`await_with`] for a future that can cross threads.
///
/// # Errors
///
/// As [`await_with`].
///
/// # Panics
///
/// A panic in the future is resumed on the calling thread.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub use curio_workers::{await_future, spawn_thread}; }
/// let v = curio::run(async {
///     curio::spawn_thread(|| curio::await_future(async { 7 }))
///         .join()
///         .await
/// });
/// assert_eq!(v.unwrap(), Ok(7));
/// ```
#[doc(alias = "AWAIT")]
pub fn await_future<Fut>(fut: Fut) -> Result<Fut::Output, AwaitError>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    await_with(move || fut)
}

/// An OS thread that behaves like a task (Curio's `AsyncThread`): it is represented on the
/// kernel by a stand-in task, whose id, join, wait and cancel it offers.
///
/// Dropping it detaches the thread, as dropping a [`Task`] does.
#[must_use = "dropping an AsyncThread detaches it"]
pub struct AsyncThread<T> {
    task: Task<T>,
}

impl<T> fmt::Debug for AsyncThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncThread")
            .field("id", &self.task.id())
            .field("name", &self.task.name())
            .finish()
    }
}

impl<T: 'static> AsyncThread<T> {
    /// The stand-in task's id.
    pub fn id(&self) -> TaskId {
        self.task.id()
    }

    /// The stand-in task's name (`"thread"` unless set by [`spawn_thread_named`]).
    pub fn name(&self) -> &str {
        self.task.name()
    }

    /// A reference to the stand-in task.
    pub fn task_ref(&self) -> TaskRef {
        self.task.task_ref()
    }

    /// Whether the thread has finished, or its stand-in task was cancelled.
    pub fn is_terminated(&self) -> bool {
        self.task.is_terminated()
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.task.is_cancelled()
    }

    /// Whether the stand-in task is a daemon ([`spawn_thread_daemon`]).
    pub fn is_daemon(&self) -> bool {
        self.task.is_daemon()
    }

    /// Waits for the thread and returns its result.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] that `is_panic()` when the thread panicked (the payload comes back with
    /// `into_panic`), or `is_cancelled()` when the thread was cancelled.
    ///
    /// # Cancel safety
    ///
    /// As [`Task::join`]: dropping the future leaves the thread running.
    pub async fn join(self) -> Result<T, TaskError> {
        self.task.join().await
    }

    /// Waits until the thread has terminated, without taking its result.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) {
        self.task.wait().await;
    }

    /// Cancels the thread and waits until its stand-in task has terminated.
    ///
    /// The thread itself runs on until it returns: a future it was waiting for is dropped on the
    /// kernel's thread and that `await_with` returns [`AwaitError::Cancelled`], as does every
    /// later `await_with`, and its result is dropped.
    ///
    /// # Cancel safety
    ///
    /// The request stays made if the future is dropped.
    pub async fn cancel(&self) {
        self.task.cancel().await;
    }

    /// Requests cancellation without waiting.
    pub fn cancel_nowait(&self) {
        self.task.cancel_nowait();
    }

    /// The stand-in task's handle, for a [`TaskGroup`](curio_kernel::TaskGroup)'s `add_task`.
    pub fn into_task(self) -> Task<T> {
        self.task
    }
}

impl<T> From<AsyncThread<T>> for Task<T> {
    fn from(t: AsyncThread<T>) -> Task<T> {
        t.task
    }
}

/// Starts `f` on a new OS thread that can wait for futures on this kernel with [`await_with`]
/// (Curio's `spawn_thread`).
///
/// Like [`spawn`](curio_kernel::spawn) it never switches tasks. The stand-in task is named
/// `"thread"`.
///
/// # Panics
///
/// Outside a curio kernel. A panic in `f` is
/// reported like a task's and comes back from [`AsyncThread::join`] as `is_panic()`; so does a
/// thread the operating system refuses to start, with the reason as the panic's message.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; pub use curio_workers::spawn_thread; }
/// let mut kernel = curio::Kernel::new();
/// let out = kernel.run(async {
///     let t = curio::spawn_thread(|| 2 + 3);
///     t.join().await.unwrap()
/// });
/// assert_eq!(out, 5);
/// ```
#[track_caller]
pub fn spawn_thread<F, T>(f: F) -> AsyncThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_thread_named("thread", f)
}

/// [`spawn_thread`] with a name for the stand-in task (and the OS thread).
///
/// # Panics
///
/// As [`spawn_thread`].
#[track_caller]
pub fn spawn_thread_named<F, T>(name: &'static str, f: F) -> AsyncThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    start(name, false, f)
}

/// [`spawn_thread`] whose stand-in task is a daemon (Curio's `spawn_thread(daemon=True)`): a
/// task group's `join` does not wait for it, and shutdown cancels it with the rest.
///
/// # Panics
///
/// As [`spawn_thread`].
#[track_caller]
pub fn spawn_thread_daemon<F, T>(f: F) -> AsyncThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    start("thread", true, f)
}

#[track_caller]
fn start<F, T>(name: &'static str, daemon: bool, f: F) -> AsyncThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let site = std::panic::Location::caller();
    let handle = curio_kernel::try_handle().expect("curio::spawn_thread called outside a kernel");
    let link = Arc::new(Link {
        state: Mutex::new(LinkState {
            request: None,
            reply: None,
            done: None,
            waker: None,
            closed: false,
        }),
        cond: Condvar::new(),
        handle: handle.clone(),
    });
    let mut builder = curio_kernel::Builder::new().name(name);
    if daemon {
        builder = builder.daemon();
    }
    let task = builder.spawn(stand_in::<T>(link.clone(), site));
    let id = task.id();
    let work = handle.external_work();
    let l2 = link.clone();
    let started = std::thread::Builder::new()
        .name(format!("curio-{name}"))
        .spawn(move || {
            let ctx = ThreadCtx {
                link: link.clone(),
                work: Some(work),
                id,
            };
            CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
            let out = catch_unwind(AssertUnwindSafe(f)).map(|v| Box::new(v) as AnyBox);
            let ctx = CURRENT.with(|c| c.borrow_mut().take());
            let mut st = lock(&link.state);
            if st.closed {
                drop(st);
                // The stand-in is gone: the result belongs to nobody. Its `Drop` may panic.
                crate::contain("dropping a cancelled async thread's result", || drop(out));
            } else {
                st.done = Some(out);
                let w = st.waker.take();
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
            }
            // After the wake, so a virtual clock cannot jump in between.
            drop(ctx);
        });
    if let Err(e) = started {
        // The stand-in ends as a panic with the reason, which `join` reports.
        let msg = format!("curio: cannot start an async thread: {e}");
        l2.post(|st| st.done = Some(Err(Box::new(msg))));
    }
    AsyncThread { task }
}

/// Ends the link when the stand-in task's future is dropped (cancelled, or finished): the
/// thread's current and later requests fail with `Cancelled`.
struct CloseOnDrop(Arc<Link>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.closed = true;
        st.waker = None;
        let req = st.request.take();
        drop(st);
        self.0.cond.notify_all();
        drop(req);
    }
}

enum Next {
    Run(Job),
    Done(std::thread::Result<AnyBox>),
}

/// The stand-in task: runs the thread's requests until the thread returns.
fn stand_in<T: 'static>(
    link: Arc<Link>,
    site: &'static std::panic::Location<'static>,
) -> impl Future<Output = T> {
    // Made before the future, so that it also closes the link when a cancel drops the task
    // before its first poll.
    let close = CloseOnDrop(link.clone());
    async move {
        let _close = close;
        stand_in_loop(&link, site).await
    }
}

async fn stand_in_loop<T: 'static>(link: &Link, site: &'static std::panic::Location<'static>) -> T {
    loop {
        let next = std::future::poll_fn(|cx| {
            let mut st = lock(&link.state);
            if let Some(job) = st.request.take() {
                return Poll::Ready(Next::Run(job));
            }
            if let Some(done) = st.done.take() {
                return Poll::Ready(Next::Done(done));
            }
            st.waker = Some(cx.waker().clone());
            // Waiting for the thread: reported at the `spawn_thread` call.
            curio_core::waiting(curio_core::WaitKind::External, Some(site));
            Poll::Pending
        })
        .await;
        match next {
            Next::Run(job) => {
                let out = match catch_unwind(AssertUnwindSafe(job)) {
                    Ok(fut) => CatchUnwind(fut).await,
                    Err(p) => Err(p),
                };
                // A fresh guard before the reply: the thread runs on from here.
                let work = link.handle.external_work();
                lock(&link.state).reply = Some((out, work));
                link.cond.notify_all();
            }
            Next::Done(Ok(v)) => {
                return *v
                    .downcast::<T>()
                    .unwrap_or_else(|_| unreachable!("the thread's own output type"));
            }
            Next::Done(Err(p)) => resume_unwind(p),
        }
    }
}

/// Catches a panic of the future a thread waits for, so it reaches the thread.
struct CatchUnwind(LocalFuture);

impl Future for CatchUnwind {
    type Output = std::thread::Result<AnyBox>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}
