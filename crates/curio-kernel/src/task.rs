//! Tasks: their shared header, the `Task<T>` handle, `TaskRef`, `TaskError`, and the poll wrapper
//! that gives every task Curio's cancellation and panic containment.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::core::{Core, with_core};
use crate::group::GroupLink;
use crate::local::LocalValue;

/// A task's identity: a process-wide counter starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The number, which is never zero for a task (ids start at 1).
    pub(crate) fn non_zero(self) -> std::num::NonZeroU64 {
        std::num::NonZeroU64::new(self.0).unwrap_or(std::num::NonZeroU64::MAX)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> TaskId {
    TaskId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Where a task is in its life, as the monitor and `Debug` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Initial,
    Running,
    Suspended,
    Terminated,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Initial => "INITIAL",
            State::Running => "RUNNING",
            State::Suspended => "SUSPENDED",
            State::Terminated => "TERMINATED",
        }
    }
}

pub(crate) enum Name {
    /// The type name of the spawned future, trimmed when shown.
    Type(&'static str),
    /// A name given as a `&'static str`.
    Static(&'static str),
    /// A name given as a `String`.
    Owned(Box<str>),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Static(s) => s,
            Name::Owned(s) => s,
            Name::Type(t) => {
                let mut t = *t;
                while let Some(s) = t.strip_suffix("::{{closure}}") {
                    t = s;
                }
                t
            }
        }
    }
}

/// The parts of a task's header that most tasks never use.
#[derive(Default)]
pub(crate) struct Extras {
    /// Wakers of `wait()`/`cancel()` futures waiting for termination.
    pub(crate) waiters: Vec<Waker>,
    /// Wakers of `cancel_requested()` futures.
    pub(crate) cancel_waiters: Vec<Waker>,
    /// Armed timeout scopes: their numbers, deadlines, and whether they wait for an older
    /// expired scope to report first (the outermost expired scope reports).
    pub(crate) scopes: Vec<(u32, std::time::Instant, bool)>,
    /// Task groups this task owns, oldest first.
    pub(crate) groups: Vec<Weak<dyn GroupLink>>,
    /// The group this task is a member of.
    pub(crate) member_of: Option<Weak<dyn GroupLink>>,
    /// Task-local values, keyed by the address of their `TaskLocal`.
    pub(crate) locals: Vec<(usize, Box<dyn LocalValue>)>,
}

/// What the kernel and every handle share about one task.
pub(crate) struct Header {
    pub(crate) id: TaskId,
    /// The parent's id, 0 for none (ids start at 1): half the size of an `Option`.
    parent: u64,
    pub(crate) name: Name,
    pub(crate) daemon: bool,
    pub(crate) location: &'static Location<'static>,
    pub(crate) state: Cell<State>,
    pub(crate) cancel_requested: Cell<bool>,
    pub(crate) shield: Cell<u32>,
    pub(crate) waker: RefCell<Option<Waker>>,
    pub(crate) slot: Cell<u32>,
    pub(crate) cycles: Cell<u32>,
    /// Timeout scopes created by this task so far (each takes the next number).
    pub(crate) timeout_seq: Cell<u32>,
    /// `timeout_seq` when cancellation was requested: scopes numbered below it are disarmed.
    pub(crate) cancel_seq: Cell<u32>,
    /// Timeout scopes that expired while a shield inside them was active.
    pub(crate) timed_out: Cell<u32>,
    /// What most tasks never need, allocated on first use, so an idle task stays small.
    pub(crate) ext: RefCell<Option<Box<Extras>>>,
}

impl Header {
    pub(crate) fn new(
        core: &Core,
        name: Name,
        daemon: bool,
        location: &'static Location<'static>,
    ) -> Rc<Header> {
        let (parent, locals): (_, Vec<(usize, Box<dyn LocalValue>)>) =
            match core.current.borrow().as_ref() {
                // A child starts with a clone of its parent's task-local values (Curio's
                // inheritance).
                Some(p) => (
                    p.id.0,
                    p.with_ext(|e| {
                        e.locals
                            .iter()
                            .map(|(k, v)| (*k, (**v).clone_value()))
                            .collect()
                    })
                    .unwrap_or_default(),
                ),
                None => (0, Vec::new()),
            };
        let ext = (!locals.is_empty()).then(|| {
            Box::new(Extras {
                locals,
                ..Extras::default()
            })
        });
        Rc::new(Header {
            id: next_id(),
            parent,
            name,
            daemon,
            location,
            state: Cell::new(State::Initial),
            cancel_requested: Cell::new(false),
            shield: Cell::new(0),
            waker: RefCell::new(None),
            slot: Cell::new(u32::MAX),
            cycles: Cell::new(0),
            timeout_seq: Cell::new(0),
            cancel_seq: Cell::new(0),
            timed_out: Cell::new(0),
            ext: RefCell::new(ext),
        })
    }

    /// The extras, created if needed.
    pub(crate) fn ext_mut(&self) -> std::cell::RefMut<'_, Extras> {
        std::cell::RefMut::map(self.ext.borrow_mut(), |e| {
            &mut **e.get_or_insert_with(Box::default)
        })
    }

    /// Reads the extras, if there are any.
    pub(crate) fn with_ext<R>(&self, f: impl FnOnce(&Extras) -> R) -> Option<R> {
        self.ext.borrow().as_deref().map(f)
    }

    /// Takes the group membership out.
    pub(crate) fn take_member_of(&self) -> Option<Weak<dyn GroupLink>> {
        self.ext
            .borrow_mut()
            .as_mut()
            .and_then(|e| e.member_of.take())
    }

    /// The parent's id.
    pub(crate) fn parent_id(&self) -> Option<TaskId> {
        (self.parent != 0).then_some(TaskId(self.parent))
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state.get() == State::Terminated
    }

    /// Records a cancellation request and schedules the task so the kernel drops its future in
    /// the task's own next turn. One-shot; a no-op on a terminated task.
    pub(crate) fn request_cancel(&self) {
        if self.is_terminated() || self.cancel_requested.get() {
            return;
        }
        self.cancel_requested.set(true);
        // Timeout scopes entered before the request are disarmed: they never fire during cleanup.
        self.cancel_seq.set(self.timeout_seq.get());
        self.wake_cancel_waiters();
        let w = self.waker.borrow().clone();
        if let Some(w) = w {
            w.wake();
        }
        // A task never polled yet is on the ready queue already: it sees the request when it runs.
    }

    pub(crate) fn wake_cancel_waiters(&self) {
        let waiters = self
            .ext
            .borrow_mut()
            .as_mut()
            .map(|e| std::mem::take(&mut e.cancel_waiters))
            .unwrap_or_default();
        for w in waiters {
            w.wake();
        }
    }

    /// Whether cancellation is due now: requested, and no shield active.
    pub(crate) fn cancel_due(&self) -> bool {
        self.cancel_requested.get() && self.shield.get() == 0
    }

    /// Cancels the members of the innermost owned group that still has live members; `true`
    /// while any group member is still alive (the owner must wait for it).
    fn cascade(&self) -> bool {
        let groups: Vec<_> = self
            .with_ext(|e| e.groups.iter().rev().cloned().collect())
            .unwrap_or_default();
        for g in groups {
            if let Some(g) = g.upgrade()
                && g.cancel_members()
            {
                return true;
            }
        }
        false
    }

    pub(crate) fn terminate(&self, core: &Core) {
        self.state.set(State::Terminated);
        core.unregister(self);
        self.waker.borrow_mut().take();
        // The extras (task-locals among them) die with the task, not with the last handle;
        // they are dropped with no borrow held, since a value's Drop may run any code.
        let ext = self.ext.borrow_mut().take();
        if let Some(mut ext) = ext {
            if let Some(g) = ext.member_of.take().and_then(|g| g.upgrade()) {
                g.member_terminated(self.id);
            }
            let waiters = std::mem::take(&mut ext.waiters);
            self.drop_contained("its task-locals", ext);
            for w in waiters {
                w.wake();
            }
        }
    }

    /// Drops `value`, whose `Drop` may be user code, reporting a panic in it instead of letting
    /// it unwind into the kernel (or abort inside async-task).
    pub(crate) fn drop_contained<V>(&self, what: &str, value: V) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(value))) {
            eprintln!(
                "curio: task {} ({}) panicked while dropping {what}: {}",
                self.id,
                self.name.as_str(),
                panic_message(&*payload)
            );
        }
    }

    /// Drops what a task that will never run again holds in its header (its task-locals),
    /// for a kernel that is dropped where it cannot run its tasks.
    pub(crate) fn discard(&self) {
        self.waker.borrow_mut().take();
        let ext = self.ext.borrow_mut().take();
        self.drop_contained("its task-locals", ext);
    }

    fn error(&self, kind: ErrorKind) -> TaskError {
        TaskError {
            id: self.id,
            name: Cow::Owned(self.name.as_str().to_owned()),
            kind,
        }
    }
}

/// Sets the current task for the duration of a poll, restoring the previous one after.
struct CurrentGuard<'a> {
    core: &'a Core,
    prev: Option<Rc<Header>>,
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        *self.core.current.borrow_mut() = self.prev.take();
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// The header of the running task.
pub(crate) fn current_header() -> Option<Rc<Header>> {
    with_core(|c| c.and_then(|c| c.current.borrow().clone()))
}

/// Marks a task suspended, keeping its waker from the first suspension on (for cancel requests;
/// a task that finishes in its first turn never needs it).
fn suspend(h: &Header, cx: &Context<'_>) {
    if h.waker.borrow().is_none() {
        *h.waker.borrow_mut() = Some(cx.waker().clone());
    }
    h.state.set(State::Suspended);
}

/// Polls one task turn: drops the future instead of polling it when a cancellation is due,
/// contains panics, and marks the task terminated when it finishes either way.
pub(crate) fn poll_task<F: Future>(
    core: &Core,
    h: &Rc<Header>,
    mut slot: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, TaskError>> {
    if h.is_terminated() {
        // Only a stale wake of a finished main task can get here.
        return Poll::Pending;
    }
    let prev = core.current.borrow_mut().replace(h.clone());
    let _guard = CurrentGuard { core, prev };
    // The hook crates below the kernel read (the owner of an `RLock`).
    let _scope = curio_core::TaskScope::enter(h.id.non_zero());
    h.cycles.set(h.cycles.get().wrapping_add(1));
    curio_core::reset_budget();
    if !h.cancel_due() {
        h.state.set(State::Running);
        let res = catch_unwind(AssertUnwindSafe(|| match slot.as_mut().as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Pending,
        }));
        match res {
            Ok(Poll::Ready(v)) => {
                drop_future(h, slot.as_mut());
                h.terminate(core);
                return Poll::Ready(Ok(v));
            }
            Ok(Poll::Pending) => {
                if !h.cancel_due() {
                    suspend(h, cx);
                    return Poll::Pending;
                }
            }
            Err(payload) => {
                drop_future(h, slot.as_mut());
                eprintln!(
                    "curio: task {} ({}) panicked: {}",
                    h.id,
                    h.name.as_str(),
                    panic_message(&*payload)
                );
                h.terminate(core);
                return Poll::Ready(Err(h.error(ErrorKind::Panic(payload))));
            }
        }
    }
    // Cancellation cascades through the groups this task owns, innermost first: their members
    // are cancelled and waited for (the last one to finish wakes this task) before the owner's
    // future is dropped.
    if h.cascade() {
        suspend(h, cx);
        return Poll::Pending;
    }
    // Cancellation: the future is dropped here, in the task's own turn, with the task current.
    drop_future(h, slot.as_mut());
    h.terminate(core);
    Poll::Ready(Err(h.error(ErrorKind::Cancelled)))
}

fn drop_future<F>(h: &Header, mut slot: Pin<&mut Option<F>>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| slot.set(None))) {
        eprintln!(
            "curio: task {} ({}) panicked while being dropped: {}",
            h.id,
            h.name.as_str(),
            panic_message(&*payload)
        );
    }
}

/// The pinned slot of a task's future, owned by the wrapper that async-task runs. Async-task
/// drops a future it never completed (a kernel dropped where it cannot run its tasks) under
/// abort-on-panic, so the slot drops the future itself and contains a panic in its `Drop`.
struct FutureSlot<'a, F> {
    header: Rc<Header>,
    slot: Pin<&'a mut Option<F>>,
}

impl<F> Drop for FutureSlot<'_, F> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            drop_future(&self.header, self.slot.as_mut());
        }
    }
}

/// A task's output as async-task stores it. Async-task drops the output of a detached task
/// under abort-on-panic, so a panic in the output's `Drop` is contained and reported here.
pub(crate) struct Output<T> {
    value: Option<T>,
    id: TaskId,
}

impl<T> Output<T> {
    fn into_inner(mut self) -> T {
        self.value.take().expect("an output is taken once")
    }
}

impl<T> Drop for Output<T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take()
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(v)))
        {
            eprintln!(
                "curio: the output of task {} panicked while being dropped: {}",
                self.id,
                panic_message(&*payload)
            );
        }
    }
}

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
/// let v = curio_kernel::run(async {
///     let child = curio_kernel::spawn(async { 6 * 7 });
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
/// curio_kernel::run(async {
///     let t = curio_kernel::Builder::new().name("worker").daemon().spawn(async {});
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
                Some(Cow::Owned(n)) => Name::Owned(n.into_boxed_str()),
                None => Name::Type(std::any::type_name::<F>()),
            };
            let h = Header::new(core, name, self.daemon, location);
            core.register(&h);
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
                Output {
                    value: Some(value),
                    id,
                }
            };
            let shared = core.shared.clone();
            let (runnable, task) = async_task::Builder::new()
                .spawn_local(move |_| wrapped, move |r| shared.schedule(r));
            runnable.schedule();
            Task {
                header: h,
                kernel: core.shared.id,
                inner: Some(task.fallible()),
                outcome: None,
            }
        })
    }
}

/// A handle to a spawned task. Not `Clone` (use [`Task::task_ref`]); dropping it detaches the task.
#[must_use = "dropping a Task detaches it; join, wait or cancel it, or drop it on purpose"]
pub struct Task<T> {
    header: Rc<Header>,
    /// The id of the kernel that runs the task.
    kernel: u64,
    inner: Option<async_task::FallibleTask<Output<Result<T, TaskError>>>>,
    /// The outcome, once a task group has taken it out of `inner` to look at it; `join` and
    /// [`try_take`](Task::try_take) hand it out from here.
    outcome: Option<Result<T, TaskError>>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_header(&self.header, "Task", f)
    }
}

fn fmt_header(h: &Header, kind: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(kind)
        .field("id", &h.id.0)
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
        self.header.cancel_requested.get()
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
    pub async fn join(mut self) -> Result<T, TaskError> {
        // A member joined by hand leaves its group (Curio), without cancelling its siblings.
        let group = self.header.take_member_of();
        if let Some(g) = group.and_then(|g| g.upgrade()) {
            g.forget(self.header.id);
        }
        // The handle is polled in place: if this future is dropped, `self` drops with it and
        // detaches the task (dropping the bare async-task handle would cancel it).
        if let Some(r) = self.outcome.take() {
            return r;
        }
        poll_fn(|cx| match self.inner.as_mut() {
            Some(t) => {
                if !self.header.is_terminated() {
                    check_kernel(self.kernel, self.header.id);
                }
                Pin::new(t).poll(cx).map(|r| {
                    self.inner = None;
                    r.map_or_else(
                        || Err(self.header.error(ErrorKind::Cancelled)),
                        Output::into_inner,
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
        self.outcome.take()
    }

    /// The output of a terminated task, moved into the handle so it can be looked at and still
    /// be taken later; `None` while it runs or once taken.
    pub(crate) fn settle(&mut self) -> Option<&Result<T, TaskError>> {
        if self.outcome.is_none() {
            self.outcome = self.take_inner();
        }
        self.outcome.as_ref()
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
                Some(r.into_inner())
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
    pub async fn wait(&self) {
        wait_terminated(&self.header).await
    }

    /// Requests cancellation, then waits until the task has terminated and its future is dropped.
    /// A no-op on a terminated task; cancel is one-shot.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request in place; only the waiting stops.
    pub async fn cancel(&self) {
        self.task_ref().cancel().await
    }

    /// Requests cancellation and returns at once.
    pub fn cancel_nowait(&self) {
        self.header.request_cancel();
    }
}

/// Panics when the running kernel is not `kernel`: a task of a kernel that is not running can
/// never finish, and waiting for it would hang without a word.
fn check_kernel(kernel: u64, id: TaskId) {
    let running = with_core(|c| c.map(|c| c.shared.id));
    if running != Some(kernel) {
        panic!(
            "curio: waiting for task {id} of kernel {kernel}, which is not running on this thread \
             (a task can only be joined inside its own kernel)"
        );
    }
}

fn wait_terminated(h: &Header) -> impl Future<Output = ()> + '_ {
    poll_fn(move |cx| {
        if h.is_terminated() {
            return Poll::Ready(());
        }
        let mut e = h.ext_mut();
        if !e.waiters.iter().any(|x| x.will_wake(cx.waker())) {
            e.waiters.push(cx.waker().clone());
        }
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
        self.header.cancel_requested.get()
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
    pub async fn cancel(&self) {
        self.header.request_cancel();
        let is_self = with_core(|c| {
            c.and_then(|c| c.current.borrow().as_ref().map(|h| h.id)) == Some(self.header.id)
        });
        if !is_self {
            wait_terminated(&self.header).await;
        }
    }

    /// Waits until the task has terminated.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) {
        wait_terminated(&self.header).await
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
/// curio_kernel::run(async {
///     let me = curio_kernel::current_task();
///     assert_eq!(me.parent_id(), None);
///     let child = curio_kernel::spawn(async { curio_kernel::current_task().parent_id() });
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

#[derive(Debug)]
pub(crate) enum ErrorKind {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

/// Why a task produced no output: it was cancelled, or it panicked.
pub struct TaskError {
    pub(crate) id: TaskId,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: ErrorKind,
}

impl TaskError {
    pub(crate) fn cancelled(id: TaskId, name: Cow<'static, str>) -> TaskError {
        TaskError {
            id,
            name,
            kind: ErrorKind::Cancelled,
        }
    }

    pub(crate) fn panicked(
        id: TaskId,
        name: Cow<'static, str>,
        payload: Box<dyn Any + Send>,
    ) -> TaskError {
        TaskError {
            id,
            name,
            kind: ErrorKind::Panic(payload),
        }
    }

    /// Whether the task was cancelled (its future was dropped).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, ErrorKind::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, ErrorKind::Panic(_))
    }

    /// The panic payload, to resume the panic with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task did not panic (see [`try_into_panic`](Self::try_into_panic)).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("TaskError::into_panic on a task that did not panic")
    }

    /// The panic payload, or the error back if the task did not panic.
    ///
    /// # Errors
    ///
    /// `self` when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self.kind {
            ErrorKind::Panic(p) => Ok(p),
            _ => Err(self),
        }
    }

    /// A copy to report while the original stays where it is: the same task and kind, with a
    /// panic's payload replaced by its message (a `String`).
    pub(crate) fn summary(&self) -> TaskError {
        let kind = match &self.kind {
            ErrorKind::Cancelled => ErrorKind::Cancelled,
            ErrorKind::Panic(p) => ErrorKind::Panic(Box::new(panic_message(&**p).to_owned())),
        };
        TaskError {
            id: self.id,
            name: self.name.clone(),
            kind,
        }
    }

    /// The failed task's id.
    pub fn task_id(&self) -> TaskId {
        self.id
    }

    /// The failed task's name.
    pub fn task_name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("id", &self.id.0)
            .field("name", &self.name)
            .field(
                "kind",
                &match &self.kind {
                    ErrorKind::Cancelled => "cancelled",
                    ErrorKind::Panic(_) => "panic",
                },
            )
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Cancelled => write!(f, "task {} ({}) was cancelled", self.id, self.name),
            ErrorKind::Panic(p) => write!(
                f,
                "task {} ({}) panicked: {}",
                self.id,
                self.name,
                panic_message(&**p)
            ),
        }
    }
}

impl std::error::Error for TaskError {}
