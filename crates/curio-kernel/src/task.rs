//! Task handles: `spawn` and its `Builder`, `Task<T>`, `TaskRef`, `current_task`.

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::Location;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use curio_core::{WaitKind, WaitSite, at_site};

use crate::core::{Entry, recycle, with_core};
use crate::error::{ErrorKind, TaskError};
use crate::harness::{FutureSlot, Output, poll_task};
use crate::header::{Header, Name};
use crate::id::TaskId;

/// Spawns `fut` as a new task on the running kernel and returns its handle.
///
/// The task is appended to the ready queue; the caller keeps running (spawning never switches
/// tasks), and the child runs in the next cycle, in FIFO order.
/// `fut` need not be `Send`: tasks never leave the kernel's thread.
/// Dropping the returned [`Task`] detaches the task; it keeps running (as in Curio).
///
/// # Panics
///
/// Outside a curio kernel.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; }
/// let v = curio::run(async {
///     let child = curio::spawn(async { 6 * 7 });
///     child.join().await.unwrap()
/// });
/// assert_eq!(v, 42);
/// ```
#[track_caller]
pub fn spawn<F: Future + 'static>(fut: F) -> Task<F::Output> {
    Builder::new().spawn(fut)
}

/// Spawns a daemon task: one nobody is expected to join. Shutdown cancels it like any other.
///
/// # Panics
///
/// Outside a curio kernel.
#[track_caller]
pub fn spawn_daemon<F: Future + 'static>(fut: F) -> Task<F::Output> {
    Builder::new().daemon().spawn(fut)
}

/// Options for spawning a task: a name, the daemon flag.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{Builder, run}; }
/// curio::run(async {
///     let t = curio::Builder::new().name("worker").daemon().spawn(async {});
///     assert_eq!(t.name(), "worker");
///     assert!(t.is_daemon());
/// });
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until spawn is called"]
pub struct Builder {
    name: Option<Cow<'static, str>>,
    daemon: bool,
}

impl Builder {
    /// A builder with no name (the future's type name is used) and `daemon` off.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task (Curio's `name`, shown by the monitor and in errors).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Marks the task as a daemon.
    pub fn daemon(mut self) -> Builder {
        self.daemon = true;
        self
    }

    /// Spawns the task; see [`spawn`].
    ///
    /// # Panics
    ///
    /// Outside a curio kernel.
    #[track_caller]
    pub fn spawn<F: Future + 'static>(self, fut: F) -> Task<F::Output> {
        let location = Location::caller();
        with_core(|core| {
            let core = core.expect("curio::spawn called outside a curio kernel");
            let name = match self.name {
                Some(Cow::Borrowed(n)) => Name::Static(n),
                Some(Cow::Owned(n)) => Name::Owned(Box::new(n.into_boxed_str())),
                None => Name::of_type(std::any::type_name::<F>()),
            };
            let h = core.new_task(name, self.daemon, location);
            let h2 = h.clone();
            let id = h.id;
            let wrapped = async move {
                let slot = pin!(Some(fut));
                let mut guard = FutureSlot { header: h2, slot };
                let value = poll_fn(move |cx| {
                    with_core(|core| match core {
                        Some(core) => poll_task(core, &guard.header, guard.slot.as_mut(), cx),
                        // Never polled outside the kernel: runnables only run on its thread.
                        None => Poll::Pending,
                    })
                })
                .await;
                // The error boxed: the cell holds the future or the output, so a small output
                // keeps a small task's cell small.
                Output {
                    value: Some(value.map_err(Box::new)),
                    id,
                }
            };
            let meta = crate::core::TaskMeta {
                shared: core.shared.clone(),
                trace: crate::trace::meta(h.id.as_u64()),
            };
            let (runnable, task) = async_task::Builder::new()
                .metadata(meta)
                .spawn_local(move |_| wrapped, crate::core::schedule);
            // On the kernel's own thread with its core in hand: straight onto the ready queue,
            // not through the wake path that other threads need.
            core.ready.borrow_mut().push_back(Entry::Task(runnable));
            Task {
                header: h,
                inner: Some(task.fallible()),
                outcome: None,
            }
        })
    }
}

/// What async-task hands back for a task: its output, the error boxed so a small task's cell
/// stays small.
type TaskCell<T> =
    async_task::FallibleTask<Output<Result<T, Box<TaskError>>>, crate::core::TaskMeta>;

/// A handle to a spawned task. Not `Clone` (use [`Task::task_ref`]); dropping it detaches the task.
#[must_use = "dropping a Task detaches it; join, wait or cancel it, or drop it on purpose"]
pub struct Task<T> {
    header: Rc<Header>,
    inner: Option<TaskCell<T>>,
    /// The outcome, once a task group has taken it out of `inner` to look at it; `join` and
    /// [`try_take`](Task::try_take) hand it out from here. Boxed: most handles never need it,
    /// and an idle task's handle stays three words.
    outcome: Option<Box<Result<T, TaskError>>>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_header(&self.header, "Task", f)
    }
}

fn fmt_header(h: &Header, kind: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(kind)
        .field("id", &h.id.as_u64())
        .field("name", &h.name.as_str())
        .field("state", &h.state.get().as_str())
        .finish()
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(t) = self.inner.take() {
            // Detach rather than cancel: a dropped handle leaves the task running, as in Curio.
            t.detach();
        }
        recycle(&self.header);
    }
}

impl<T> Task<T> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header.id
    }

    /// The task's name: the one given to the [`Builder`], or the future's type name.
    pub fn name(&self) -> &str {
        self.header.name.as_str()
    }

    /// The id of the task that spawned it (`None` for a kernel's main task or a remote spawn).
    pub fn parent_id(&self) -> Option<TaskId> {
        self.header.parent_id()
    }

    /// A cloneable reference to the task.
    pub fn task_ref(&self) -> TaskRef {
        TaskRef {
            header: self.header.clone(),
        }
    }

    /// Whether the task has finished (returned, panicked, or was cancelled).
    pub fn is_terminated(&self) -> bool {
        self.header.is_terminated()
    }

    /// Whether cancellation was requested (Curio's `cancelled`), even if the task then finished
    /// normally inside a shield.
    pub fn is_cancelled(&self) -> bool {
        self.header.cancel.requested()
    }

    /// Whether the task is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.header.daemon
    }

    /// Waits for the task to finish and returns its output.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] when the task panicked or was cancelled.
    ///
    /// # Panics
    ///
    /// When polled while the task's kernel is not the one running on this thread (another
    /// kernel runs, or none does) and the task has not finished: it could never finish there.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future detaches the task (it keeps running); its output is then lost.
    #[track_caller]
    pub fn join(self) -> impl Future<Output = Result<T, TaskError>> {
        at_site(WaitKind::Join, self.join_inner())
    }

    async fn join_inner(mut self) -> Result<T, TaskError> {
        // A member joined by hand leaves its group (Curio), without cancelling its siblings.
        let group = self.header.take_member_of();
        if let Some(g) = group.and_then(|g| g.upgrade()) {
            g.forget(self.header.id);
        }
        // The handle is polled in place: if this future is dropped, `self` drops with it and
        // detaches the task (dropping the bare async-task handle would cancel it).
        if let Some(r) = self.outcome.take() {
            return *r;
        }
        poll_fn(|cx| match self.inner.as_mut() {
            Some(t) => {
                if !self.header.is_terminated() {
                    check_kernel(&self.header);
                }
                Pin::new(t).poll(cx).map(|r| {
                    self.inner = None;
                    r.map_or_else(
                        || Err(self.header.error(ErrorKind::Cancelled)),
                        Output::into_result,
                    )
                })
            }
            None => Poll::Ready(Err(self.header.error(ErrorKind::Cancelled))),
        })
        .await
    }

    /// The output of a terminated task, taken without waiting; `None` while it runs or once taken.
    pub(crate) fn try_take(&mut self) -> Option<Result<T, TaskError>> {
        self.settle();
        self.outcome.take().map(|r| *r)
    }

    /// The output of a terminated task, moved into the handle so it can be looked at and still
    /// be taken later; `None` while it runs or once taken.
    pub(crate) fn settle(&mut self) -> Option<&Result<T, TaskError>> {
        if self.outcome.is_none() {
            self.outcome = self.take_inner().map(Box::new);
        }
        self.outcome.as_deref()
    }

    fn take_inner(&mut self) -> Option<Result<T, TaskError>> {
        if !self.header.is_terminated() {
            return None;
        }
        let inner = self.inner.as_mut()?;
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(inner).poll(&mut cx) {
            Poll::Ready(Some(r)) => {
                self.inner = None;
                Some(r.into_result())
            }
            Poll::Ready(None) => {
                self.inner = None;
                Some(Err(self.header.error(ErrorKind::Cancelled)))
            }
            Poll::Pending => None,
        }
    }

    pub(crate) fn header(&self) -> &Rc<Header> {
        &self.header
    }

    /// Waits until the task has terminated, without taking its output.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        at_site(WaitKind::Terminate, wait_terminated(&self.header))
    }

    /// Requests cancellation, then waits until the task has terminated and its future is dropped.
    /// A no-op on a terminated task; cancel is one-shot.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request in place; only the waiting stops.
    #[track_caller]
    pub fn cancel(&self) -> impl Future<Output = ()> + '_ {
        at_site(WaitKind::Terminate, cancel_and_wait(&self.header))
    }

    /// Requests cancellation and returns at once.
    pub fn cancel_nowait(&self) {
        self.header.request_cancel();
    }
}

/// Panics when the running kernel is not the one task `h` (alive) belongs to: a task of a
/// kernel that is not running can never finish, and waiting for it would hang without a word.
fn check_kernel(h: &Rc<Header>) {
    if !with_core(|c| c.is_some_and(|c| c.tasks.borrow().holds(h))) {
        panic!(
            "curio: waiting for task {} of a kernel that is not running on this thread (a task \
             can only be joined inside its own kernel)",
            h.id
        );
    }
}

fn wait_terminated(h: &Rc<Header>) -> impl Future<Output = ()> + '_ {
    let mut checked = false;
    poll_fn(move |cx| {
        if h.is_terminated() {
            return Poll::Ready(());
        }
        if !checked {
            check_kernel(h);
            checked = true;
        }
        crate::header::add_termination_waiter(h, cx.waker());
        Poll::Pending
    })
}

/// A cloneable reference to a task: its identity, and cancellation.
#[derive(Clone)]
pub struct TaskRef {
    pub(crate) header: Rc<Header>,
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_header(&self.header, "TaskRef", f)
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.header.id == other.header.id
    }
}

impl Eq for TaskRef {}

impl TaskRef {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header.id
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        self.header.name.as_str()
    }

    /// The id of the task that spawned it.
    pub fn parent_id(&self) -> Option<TaskId> {
        self.header.parent_id()
    }

    /// Whether the task is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.header.daemon
    }

    /// Whether the task has terminated.
    pub fn is_terminated(&self) -> bool {
        self.header.is_terminated()
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.header.cancel.requested()
    }

    /// How many turns the task has had.
    pub fn cycles(&self) -> u64 {
        u64::from(self.header.cycles.get())
    }

    /// Where the task was spawned.
    pub fn location(&self) -> &'static Location<'static> {
        self.header.location
    }

    /// Requests cancellation and returns at once.
    pub fn cancel_nowait(&self) {
        self.header.request_cancel();
    }

    /// Requests cancellation and waits until the task has terminated. On the calling task itself
    /// it only requests and returns: the cancellation takes effect at its next suspension.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request in place; only the waiting stops.
    #[track_caller]
    pub fn cancel(&self) -> impl Future<Output = ()> + '_ {
        at_site(WaitKind::Terminate, cancel_and_wait(&self.header))
    }

    /// Waits until the task has terminated.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        at_site(WaitKind::Terminate, wait_terminated(&self.header))
    }

    /// Where the task waits, as its last turn left it: what for, and the line of the waiting
    /// operation's call (see [`WaitSite`]); `None` if it has not waited, or runs now.
    pub fn wait_site(&self) -> Option<WaitSite> {
        self.header.wait.get()
    }
}

/// Requests cancellation of `h`, then waits until it has terminated; on the calling task itself
/// it only requests.
async fn cancel_and_wait(h: &Rc<Header>) {
    h.request_cancel();
    let is_self =
        with_core(|c| c.and_then(|c| c.current.borrow().as_ref().map(|c| c.id)) == Some(h.id));
    if !is_self {
        wait_terminated(h).await;
    }
}

/// The running task.
///
/// # Panics
///
/// Outside a task of a curio kernel (see [`try_current_task`]).
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{current_task, run, spawn}; }
/// curio::run(async {
///     let me = curio::current_task();
///     assert_eq!(me.parent_id(), None);
///     let child = curio::spawn(async { curio::current_task().parent_id() });
///     assert_eq!(child.join().await.unwrap(), Some(me.id()));
/// });
/// ```
pub fn current_task() -> TaskRef {
    try_current_task().expect("curio::current_task called outside a curio task")
}

/// The running task, or `None` outside one.
pub fn try_current_task() -> Option<TaskRef> {
    with_core(|c| {
        c.and_then(|c| {
            c.current
                .borrow()
                .as_ref()
                .map(|h| TaskRef { header: h.clone() })
        })
    })
}
