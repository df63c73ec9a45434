//! Other threads' way in: `KernelHandle`, `RemoteTask`, `ExternalWork`.
//!
//! `Kernel::handle()` (or `try_handle()` inside a task) returns a `KernelHandle`, which is `Send +
//! Sync + Clone` and holds only the kernel's `Shared` part (`core.rs`).
//! `spawn(fut)` takes a `Send` future, sends it to the kernel's remote queue and returns a
//! `RemoteTask`; the kernel spawns the task in its next cycle, names it `remote`, and gives it no
//! parent.
//! A `RemoteTask` is `Send`, is a `Future` of `Result<T, TaskError>` that any executor can await,
//! has `join_blocking()` for plain threads (it panics on the kernel's own thread, where it would
//! deadlock), `cancel()` and `id()`.
//! `wake()` wakes a parked kernel, `cancel(task_id)` requests cancellation of one of its tasks
//! (found in O(1) through the slot the id carries), and `is_closed()` tells whether it has shut
//! down; a late `spawn` on a closed kernel reports the task as cancelled.
//! `external_work()` returns an `ExternalWork` guard that keeps a virtual clock still while work on
//! another thread will wake a task; the worker pool holds one per job until the job has woken its
//! task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crate::core::{Remote, Shared, with_core};
use crate::error::TaskError;
use crate::id::TaskId;
use crate::sync::{self, Arc, AtomicBool, Condvar, Ordering};

/// A handle to a kernel for other threads: `Send + Sync + Clone`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; pub mod rt { pub use curio_kernel::run_until_thread_done; } }
/// let mut kernel = curio::Kernel::new();
/// let handle = kernel.handle();
/// let t = std::thread::spawn(move || handle.spawn(async { 40 + 2 }).join_blocking());
/// // The kernel runs the remote task while its main task waits for the thread.
/// let out = kernel.run(async move {
///     curio::rt::run_until_thread_done(t).await
/// });
/// assert_eq!(out.unwrap().unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct KernelHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for KernelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelHandle")
            .field("kernel", &self.shared.id)
            .finish()
    }
}

impl KernelHandle {
    /// The kernel's live tasks now (as other threads see it, a moment late).
    pub(crate) fn live_tasks(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// Spawns a `Send` future on the kernel from any thread. It starts at the kernel's next cycle.
    ///
    /// If the kernel has shut down, the returned handle reports the task as cancelled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned [`RemoteTask`] (or a poll of it) detaches the task: it keeps
    /// running, and its output is dropped.
    pub fn spawn<F>(&self, fut: F) -> RemoteTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(move || fut)
    }

    /// Runs `factory()` as a task on the kernel, from any thread: the factory is `Send` and
    /// builds the future on the kernel's thread, so the future itself need not be `Send` (it
    /// may hold the kernel's `!Send` primitives and task-locals). Only its output crosses back.
    ///
    /// If the kernel has shut down, the returned handle reports the task as cancelled.
    ///
    /// # Cancel safety
    ///
    /// As [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::*; }
    /// use std::rc::Rc;
    ///
    /// let mut kernel = curio::Kernel::new();
    /// let handle = kernel.handle();
    /// let t = std::thread::spawn(move || {
    ///     // An `Rc` lives only on the kernel's thread, inside the task.
    ///     handle.spawn_with(|| async { Rc::new(21).as_ref() * 2 }).join_blocking()
    /// });
    /// let out = kernel.run(curio::run_until_thread_done(t));
    /// assert_eq!(out.unwrap().unwrap(), 42);
    /// ```
    pub fn spawn_with<F, Fut>(&self, factory: F) -> RemoteTask<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let slot = Arc::new(RemoteSlot::new());
        // The guard travels with the call: if the kernel drops the call unrun (it shut down
        // first), the guard reports the task as cancelled, so no waiter hangs.
        let guard = DeliverOnDrop {
            slot: slot.clone(),
            delivered: false,
        };
        let call: Box<dyn FnOnce() + Send> = Box::new(move || {
            let s2 = guard.slot.clone();
            let fut = Box::pin(factory());
            let task = crate::task::Builder::new()
                .name("remote")
                .spawn(RemoteFuture {
                    fut,
                    guard: Some(guard),
                });
            if s2.started(task.id()) {
                task.cancel_nowait();
            }
            drop(task);
        });
        if self.shared.remote.push(Remote::Call(call)).is_ok() {
            self.shared.unparker.unpark();
        } else {
            slot.deliver(Err(TaskError::cancelled(TaskId::none(), "remote".into())));
        }
        RemoteTask {
            slot,
            shared: self.shared.clone(),
        }
    }

    /// Wakes the kernel if it is parked.
    pub fn wake(&self) {
        self.shared.unparker.unpark();
    }

    /// Requests cancellation of task `id` of this kernel (a no-op if it is not alive).
    pub fn cancel(&self, id: TaskId) {
        self.shared.push_remote(Remote::Call(Box::new(move || {
            with_core(|c| {
                if let Some(c) = c
                    && let Some(h) = c.tasks.borrow().get(id)
                {
                    h.request_cancel();
                }
            })
        })));
    }

    /// Whether the kernel has shut down.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Marks work that will wake a task from another thread as outstanding until the guard is
    /// dropped: a virtual clock does not jump while any is. Drop the guard after the wake.
    pub fn external_work(&self) -> ExternalWork {
        self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
        ExternalWork {
            shared: self.shared.clone(),
        }
    }
}

/// See [`KernelHandle::external_work`].
#[must_use = "the work counts as outstanding only while the guard lives"]
pub struct ExternalWork {
    shared: Arc<Shared>,
}

impl fmt::Debug for ExternalWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalWork")
    }
}

impl Drop for ExternalWork {
    fn drop(&mut self) {
        self.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.shared.unparker.unpark();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct RemoteState<T> {
    result: Option<Result<T, TaskError>>,
    waker: Option<Waker>,
    id: Option<TaskId>,
    cancel: bool,
}

/// Where a remote task's result meets its waiters: the protocol between the kernel's thread
/// (`started`, `deliver`) and the `RemoteTask`'s (`request_cancel`, `wait`, `poll_result`),
/// model-checked in `loom_tests.rs`.
pub(crate) struct RemoteSlot<T> {
    state: sync::Mutex<RemoteState<T>>,
    cond: Condvar,
    /// Set (after the result is stored) by `deliver`: what a blocked waiter polls while it spins,
    /// without taking the lock the kernel needs to deliver.
    delivered: AtomicBool,
}

/// How long [`RemoteSlot::wait`] polls for the result before it sleeps on the condition
/// variable: a remote task that finishes within a kernel wake-up then costs the waiter no
/// futex wake and no thread wake-up.
#[cfg(not(loom))]
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

impl<T> RemoteSlot<T> {
    pub(crate) fn new() -> RemoteSlot<T> {
        RemoteSlot {
            state: sync::Mutex::new(RemoteState {
                result: None,
                waker: None,
                id: None,
                cancel: false,
            }),
            cond: Condvar::new(),
            delivered: AtomicBool::new(false),
        }
    }

    /// Stores the result (the first one wins) and wakes every waiter.
    pub(crate) fn deliver(&self, r: Result<T, TaskError>) {
        let mut st = sync::lock(&self.state);
        if st.result.is_none() {
            st.result = Some(r);
        }
        let w = st.waker.take();
        drop(st);
        self.delivered.store(true, Ordering::Release);
        self.cond.notify_all();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// On the kernel's thread, once the task is spawned: records its id and returns whether a
    /// cancellation was requested before the id was known, which the caller must carry out.
    pub(crate) fn started(&self, id: TaskId) -> bool {
        let mut st = sync::lock(&self.state);
        st.id = Some(id);
        st.cancel
    }

    /// Records a cancellation request; returns the task's id if it is known, to which the
    /// caller must send the request (otherwise [`started`](Self::started) reports it).
    pub(crate) fn request_cancel(&self) -> Option<TaskId> {
        let mut st = sync::lock(&self.state);
        st.cancel = true;
        st.id
    }

    /// The task's id, once the kernel has spawned it.
    pub(crate) fn id(&self) -> Option<TaskId> {
        sync::lock(&self.state).id
    }

    /// Blocks the thread until the result is delivered, and takes it.
    pub(crate) fn wait(&self) -> Result<T, TaskError> {
        self.spin_until_delivered();
        let mut st = sync::lock(&self.state);
        loop {
            if let Some(r) = st.result.take() {
                return r;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Polls for the delivery for up to [`SPIN`].
    #[cfg(not(loom))]
    fn spin_until_delivered(&self) {
        curio_core::spin_until(SPIN, || self.delivered.load(Ordering::Acquire));
    }

    /// Under loom: one look, so the model still reaches the condition variable's wait.
    #[cfg(loom)]
    fn spin_until_delivered(&self) {
        let _ = self.delivered.load(Ordering::Acquire);
    }

    /// Takes the result if it is delivered; otherwise keeps `waker` to wake at delivery.
    pub(crate) fn poll_result(&self, waker: &Waker) -> Poll<Result<T, TaskError>> {
        let mut st = sync::lock(&self.state);
        if let Some(r) = st.result.take() {
            return Poll::Ready(r);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(waker) => {}
            w => *w = Some(waker.clone()),
        }
        Poll::Pending
    }
}

/// Travels with a remote task's call and then its future: if either is dropped before the
/// result is delivered (the kernel shut down first, or the task was cancelled), it reports a
/// cancellation, so no waiter hangs.
pub(crate) struct DeliverOnDrop<T> {
    pub(crate) slot: Arc<RemoteSlot<T>>,
    pub(crate) delivered: bool,
}

impl<T> DeliverOnDrop<T> {
    /// The task's id, once the kernel has spawned it (0 before).
    fn id(&self) -> TaskId {
        self.slot.id().unwrap_or(TaskId::none())
    }
}

impl<T> Drop for DeliverOnDrop<T> {
    fn drop(&mut self) {
        if self.delivered {
            return;
        }
        // Reached without a result only when the task's future was dropped: a cancellation.
        let id = self.id();
        self.slot
            .deliver(Err(TaskError::cancelled(id, "remote".into())));
    }
}

struct RemoteFuture<F: Future> {
    fut: Pin<Box<F>>,
    guard: Option<DeliverOnDrop<F::Output>>,
}

impl<F: Future> Unpin for RemoteFuture<F> {}

impl<F: Future> Future for RemoteFuture<F> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // The task's own panic handling would keep the payload from the remote waiter.
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| this.fut.as_mut().poll(cx)));
        let out = match res {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(payload) => {
                let id = this
                    .guard
                    .as_ref()
                    .map_or(TaskId::none(), DeliverOnDrop::id);
                eprintln!("curio: remote task {id} panicked");
                Err(TaskError::panicked(id, "remote".into(), payload))
            }
        };
        if let Some(mut g) = this.guard.take() {
            g.slot.deliver(out);
            g.delivered = true;
        }
        Poll::Ready(())
    }
}

/// The handle of a task spawned through a [`KernelHandle`]: `Send`; a `Future` of the result that
/// any runtime (or a plain thread, with [`join_blocking`](Self::join_blocking)) can wait on.
#[must_use = "dropping a RemoteTask detaches the task"]
pub struct RemoteTask<T> {
    pub(crate) slot: Arc<RemoteSlot<T>>,
    pub(crate) shared: Arc<Shared>,
}

impl<T> fmt::Debug for RemoteTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTask")
            .field("id", &self.slot.id())
            .finish()
    }
}

impl<T> RemoteTask<T> {
    /// The task's id, once the kernel has started it.
    pub fn id(&self) -> Option<TaskId> {
        self.slot.id()
    }

    /// Blocks this thread until the task finishes.
    ///
    /// It polls for the result for up to 50 µs before it sleeps, so a short task's result is
    /// taken without the wake-up of a sleeping thread (the poll reads an atomic flag, never the
    /// lock the kernel delivers under).
    ///
    /// # Errors
    ///
    /// A [`TaskError`] when the task panicked or was cancelled (also when its kernel shut down).
    ///
    /// # Panics
    ///
    /// When called on the kernel's own thread while it runs (it would deadlock); in a debug
    /// build, when called inside a task of another kernel (it would block that kernel's thread;
    /// a release build prints a warning).
    ///
    /// # Examples
    ///
    /// A plain thread waits for a task it spawned on a kernel:
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::Kernel; pub mod rt { pub use curio_kernel::run_until_thread_done; } }
    /// let mut kernel = curio::Kernel::new();
    /// let handle = kernel.handle();
    /// let t = std::thread::spawn(move || handle.spawn(async { 2 + 2 }).join_blocking());
    /// let out = kernel.run(curio::rt::run_until_thread_done(t));
    /// assert_eq!(out.unwrap().unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn join_blocking(self) -> Result<T, TaskError> {
        assert!(
            !with_core(|c| c.is_some_and(|c| c.shared.id == self.shared.id)),
            "RemoteTask::join_blocking called on its own kernel's thread: it would deadlock"
        );
        curio_core::forbid_blocking("RemoteTask::join_blocking (await the RemoteTask instead)");
        self.slot.wait()
    }

    /// Requests cancellation of the task.
    pub fn cancel(&self) {
        if let Some(id) = self.slot.request_cancel() {
            KernelHandle {
                shared: self.shared.clone(),
            }
            .cancel(id);
        }
    }
}

impl<T> Future for RemoteTask<T> {
    type Output = Result<T, TaskError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_result(cx.waker())
    }
}

/// A handle to the running kernel, or `None` outside one.
pub fn try_handle() -> Option<KernelHandle> {
    with_core(|c| {
        c.map(|c| KernelHandle {
            shared: c.shared.clone(),
        })
    })
}
