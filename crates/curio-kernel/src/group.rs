//! `TaskGroup`: a set of tasks that are joined, or cancelled, together.
//!
//! A `TaskGroup<T>` holds its members' `Task<T>` handles in creation order, and a queue of the
//! non-daemon members that finished, in completion order.
//! A member's header points back at its group (`Membership::member_of` in `group/link.rs`, a weak
//! `dyn GroupLink`), and a terminating member reports through it; the header knows no generic group
//! type.
//!
//! - The wait policies are types: `Wait` is a module of the unit structs `All`, `Any`, `Object` and
//!   `None`. `TaskGroup::new` takes `All`, `Any` or `None` (the `WaitPolicy` trait) for any `T`,
//!   and counts only panics and cancellation by someone else as failures.
//!   `TaskGroup::with_outcomes` takes any of the four (the `OutcomePolicy` trait) and needs `T:
//!   Outcome`, so `Wait::Object`, which needs to know what an object is, compiles only there.
//! - `Outcome` is implemented for `Option<U>` (`Some` is an object, nothing is a failure) and
//!   `Result<U, E>` (`Ok` is an object, `Err` is a failure, as a raised exception is in Curio).
//! - `spawn` and `spawn_daemon` return a `TaskRef`; `add_task` adopts a task and gives it back in
//!   `AddTaskError` when the group was joined or the task already belongs to a group.
//! - `join` waits as the policy says (`All`: every non-daemon member; `Any`: the first to finish;
//!   `Object`: the first object or failure; `None`: nothing), and returns early when a member
//!   fails. It then cancels the members still running, non-daemons first, then daemons, and waits
//!   for each batch. Cancellations made by the group itself are not failures.
//! - After `join`, `completed()` names the member that decided the join, and `outcomes()` (every
//!   member's `Result<T, TaskError>`, creation order), `result()`, `results()`, `exceptions()` and
//!   `tasks()` report on the members; before `join` they give `GroupError::NotJoined`.
//! - A member's outcome lives in its own `Task` handle (`Task::settle`) until a call moves it out,
//!   so a sibling's failure, `exceptions()` (which hands out copies) or a failed `results()` never
//!   makes a good output unreachable, and a member taken out by `remove` or `next_done` after the
//!   join still joins to its real outcome.
//! - `next_done()` and `next_result()` hand out finished members in completion order, taking them
//!   out of the group, and give `None` when no non-daemon member is left; `try_next_done()` takes
//!   one without waiting, and the group is also a `Stream` of finished tasks.
//! - `remove(&task_ref)` takes a member out, to be joined on its own; its siblings are not
//!   affected, even if it failed.
//! - `cancel_remaining()` cancels the running non-daemon members and waits for them; they leave the
//!   group, and the group stays usable.
//!
//! # Cascades
//!
//! A group stops its members only through cancellation requests, the same as `Task::cancel`, so
//! shields and cascades apply to members as to any task.
//!
//! - The task that creates a `TaskGroup` owns it: the group is listed, weakly, in the owner's
//!   header (`Membership::owned`).
//! - When a request on the owner is due, the harness (`poll_task`) does not poll the owner's
//!   future. It requests cancellation of the members of the innermost owned group that still has
//!   live members (`Header::cascade`) and returns `Pending`; each member that terminates wakes the
//!   owner, and a later turn moves on to the next group outwards. The owner's future is dropped
//!   only when no group it owns has a live member, so members (shielded ones after their shields)
//!   finish before their owner.
//! - A group dropped without being joined (a timeout expired around it, an early `?`), or a `join`
//!   dropped half-way, requests cancellation of all its members at once; none of them is polled
//!   again except to finish a shield. The dropped group's live members become the owner's
//!   *orphans*: a curio scope that dropped the group (an expiring `timeout_*`/`ignore_*`) reports
//!   only once they have terminated, and so does the owner's own cancellation (`cascade`), so
//!   nothing started inside a scope outlives it. A drop that curio does not control (`select!`,
//!   `?`, a user's `drop`) cannot wait; `cancel_remaining().await` before leaving does.
//! - Shutdown cancels the remaining tasks newest first under the same rules (`kernel.rs`).
//! - No group code holds the group's state across a member's termination or a hand join
//!   (`member_terminated`, `forget`), so their borrows cannot fail; since a skipped notification
//!   would hang `join`, a failure panics with a message instead of being skipped.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

pub(crate) mod link;

use curio_core::{WaitKind, at_site};

use crate::core::current_header;
use crate::error::TaskError;
use crate::group::link::GroupLink;
use crate::header::Header;
use crate::id::TaskId;
use crate::task::{Builder, Task, TaskRef};

/// The wait policies of a [`TaskGroup`] (Curio's `wait=all`, `any`, `object`, `None`).
///
/// They are types, so that `Wait::Object`, which needs to know what an "object" is, only compiles
/// with [`TaskGroup::with_outcomes`] on a `T: Outcome`.
#[allow(
    non_snake_case,
    reason = "reads as the enum Curio users expect: Wait::All"
)]
pub mod Wait {
    /// Wait for every member (the default).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct All;
    /// Wait for the first member to finish. A member taken out by `next_done` or `next_result`
    /// counts: once one has finished that way, the group is decided, and `join` cancels the
    /// others without waiting for another to finish (the reader/writer pair pattern: take the
    /// first with `next_result`, then `join` to stop the other).
    #[derive(Debug, Clone, Copy)]
    pub struct Any;
    /// Wait for the first member that returns an object (`Some`, `Ok`) or fails.
    #[derive(Debug, Clone, Copy)]
    pub struct Object;
    /// Do not wait: `join` cancels every member.
    #[derive(Debug, Clone, Copy)]
    pub struct None;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    All,
    Any,
    Object,
    None,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Wait::All {}
    impl Sealed for super::Wait::Any {}
    impl Sealed for super::Wait::Object {}
    impl Sealed for super::Wait::None {}
}

/// A wait policy for any [`TaskGroup`]: `Wait::All`, `Wait::Any`, `Wait::None`.
pub trait WaitPolicy: sealed::Sealed {
    #[doc(hidden)]
    fn policy(&self) -> PolicyTag;
}

/// A wait policy for a group whose outputs are [`Outcome`]s: the above and `Wait::Object`.
pub trait OutcomePolicy: sealed::Sealed {
    #[doc(hidden)]
    fn policy(&self) -> PolicyTag;
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PolicyTag(Policy);

macro_rules! policy {
    ($trait:ident for $ty:ident => $p:ident) => {
        impl $trait for Wait::$ty {
            fn policy(&self) -> PolicyTag {
                PolicyTag(Policy::$p)
            }
        }
    };
}

policy!(WaitPolicy for All => All);
policy!(WaitPolicy for Any => Any);
policy!(WaitPolicy for None => None);
policy!(OutcomePolicy for All => All);
policy!(OutcomePolicy for Any => Any);
policy!(OutcomePolicy for None => None);
policy!(OutcomePolicy for Object => Object);

/// What a member's output says for the group: whether it failed (Curio: raised) and whether it is
/// an "object" for `Wait::Object`.
pub trait Outcome {
    /// Whether the output counts as a failure: `join` returns early on it.
    fn is_failure(&self) -> bool;
    /// Whether the output is an object (`Wait::Object` waits for the first one).
    fn is_object(&self) -> bool;
}

impl<U> Outcome for Option<U> {
    fn is_failure(&self) -> bool {
        false
    }
    fn is_object(&self) -> bool {
        self.is_some()
    }
}

impl<U, E> Outcome for Result<U, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
    fn is_object(&self) -> bool {
        self.is_ok()
    }
}

/// Misuse of a [`TaskGroup`], or a result that is not there.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupError {
    /// The group was joined: it takes no new members.
    Joined,
    /// The group has not been joined yet: results are not known.
    NotJoined,
    /// No member completed (an empty group, or `Wait::None`).
    NoCompleted,
    /// An output asked for was already moved out by an earlier call.
    Taken,
    /// The member failed: here is its error.
    Failed(TaskError),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Joined => f.write_str("task group already joined"),
            GroupError::NotJoined => f.write_str("task group not yet joined"),
            GroupError::NoCompleted => f.write_str("no task successfully completed"),
            GroupError::Taken => f.write_str("task group results already taken"),
            GroupError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GroupError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// The error of [`TaskGroup::add_task`], with the task given back.
pub struct AddTaskError<T> {
    /// Why the task could not be added.
    pub error: GroupError,
    /// The task, unchanged.
    pub task: Task<T>,
}

impl<T> fmt::Debug for AddTaskError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddTaskError")
            .field("error", &self.error)
            .field("task", &self.task)
            .finish()
    }
}

impl<T> fmt::Display for AddTaskError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for AddTaskError<T> {}

struct Member<T> {
    task: Task<T>,
    daemon: bool,
    /// Cancelled by the group itself (join, cancel_remaining, drop): not a failure.
    by_group: bool,
    done: bool,
    /// The member's outcome was moved out by `result`, `results` or `outcomes`; `Some(true)`
    /// if it was an error.
    taken: Option<bool>,
}

struct State<T> {
    members: Vec<Member<T>>,
    /// Non-daemon members that finished and were not processed yet, in completion order.
    done: VecDeque<TaskId>,
    waker: Option<Waker>,
    joined: bool,
    completed: Option<TaskRef>,
    completed_id: Option<TaskId>,
    /// A member taken out by `next_done`/`next_result` decided the join under the group's
    /// policy (the first to finish under `Wait::Any`, an object or a failure under
    /// `Wait::Object`, a failure under any policy): `join` waits for no other.
    decided: bool,
}

/// Says of an output whether it is a failure and whether it is an object.
type Classify<T> = fn(&T) -> (bool, bool);

struct Inner<T> {
    policy: Policy,
    classify: Option<Classify<T>>,
    owner: Option<Rc<Header>>,
    state: RefCell<State<T>>,
}

impl<T: 'static> GroupLink for Inner<T> {
    fn member_terminated(&self, id: TaskId) {
        let waker = {
            // No group code holds the state across a member's termination (members end in
            // their own turns, never inside a group method), so this borrow cannot fail; a
            // failure would lose the notification and hang `join`, so it is loud.
            let mut st = self
                .state
                .try_borrow_mut()
                .expect("curio: a task group's state was busy when a member terminated");
            if let Some(m) = st.members.iter_mut().find(|m| m.task.id() == id) {
                m.done = true;
                if !m.daemon {
                    st.done.push_back(id);
                }
            }
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        // An owner being cancelled waits for its members: the last one wakes it.
        if let Some(owner) = &self.owner
            && owner.cancel.requested()
        {
            owner.wake();
        }
    }

    fn forget(&self, id: TaskId) {
        // Called by a member's `join`, in user code, never inside a group method.
        let mut st = self
            .state
            .try_borrow_mut()
            .expect("curio: a task group's state was busy when a member was joined");
        st.members.retain(|m| m.task.id() != id);
        st.done.retain(|d| *d != id);
    }

    fn cancel_members(&self) -> bool {
        !self.cancel_live(|_| true).is_empty()
    }
}

impl<T: 'static> Inner<T> {
    /// Requests cancellation of the live members that `which` selects, marking them as
    /// cancelled by the group (not a failure), and returns them.
    fn cancel_live(&self, which: impl Fn(&Member<T>) -> bool) -> Vec<TaskRef> {
        let live: Vec<TaskRef> = {
            let mut st = self.state.borrow_mut();
            st.members
                .iter_mut()
                .filter(|m| !m.done && !m.task.is_terminated() && which(m))
                .map(|m| {
                    m.by_group = true;
                    m.task.task_ref()
                })
                .collect()
        };
        for t in &live {
            t.cancel_nowait();
        }
        live
    }
}

/// A group of tasks joined or cancelled together (Curio's `TaskGroup`).
///
/// The task that creates a group owns it: cancelling the owner cancels the group's members first
/// (innermost group first) and waits for them. A group dropped without being joined (its owner
/// timed out or returned early) requests cancellation of all its members at once. When a curio
/// scope drops it (a `timeout_after`/`ignore_after` expiring around it, the owner's
/// cancellation, kernel shutdown), the scope waits until those members have terminated before it
/// reports, so code after the scope sees nothing it started still alive. **A drop that curio
/// does not control (a `select!`, `?`, an explicit `drop`) cannot wait**: call
/// [`cancel_remaining`](Self::cancel_remaining)`.await` first when that matters.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{TaskGroup, Wait, run}; }
/// use curio::{TaskGroup, Wait};
///
/// curio::run(async {
///     let g = TaskGroup::new(Wait::All);
///     for x in 1..=3 {
///         g.spawn(async move { x * 2 });
///     }
///     g.join().await;
///     assert_eq!(g.results().unwrap(), [2, 4, 6]);
/// });
/// ```
pub struct TaskGroup<T: 'static> {
    inner: Rc<Inner<T>>,
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("TaskGroup")
            .field("policy", &self.inner.policy)
            .field("members", &st.members.len())
            .field("joined", &st.joined)
            .finish()
    }
}

impl<T: 'static> Default for TaskGroup<T> {
    fn default() -> Self {
        TaskGroup::new(Wait::All)
    }
}

impl<T: 'static> TaskGroup<T> {
    /// A group with a wait policy; only panics and cancellations by someone else count as member
    /// failures. The running task, if any, owns it (outside a task it has no owner).
    pub fn new(wait: impl WaitPolicy) -> TaskGroup<T> {
        TaskGroup::build(wait.policy().0, None)
    }

    fn build(policy: Policy, classify: Option<Classify<T>>) -> TaskGroup<T> {
        let owner = current_header();
        let inner = Rc::new(Inner {
            policy,
            classify,
            owner: owner.clone(),
            state: RefCell::new(State {
                members: Vec::new(),
                done: VecDeque::new(),
                waker: None,
                joined: false,
                completed: None,
                completed_id: None,
                decided: false,
            }),
        });
        if let Some(owner) = owner {
            let link: Rc<dyn GroupLink> = inner.clone();
            let mut e = owner.ext_mut();
            e.group.owned.retain(|g| g.strong_count() > 0);
            e.group.owned.push(Rc::downgrade(&link));
        }
        TaskGroup { inner }
    }

    fn check_open(&self) -> Result<(), GroupError> {
        if self.inner.state.borrow().joined {
            Err(GroupError::Joined)
        } else {
            Ok(())
        }
    }

    fn link(&self) -> Weak<dyn GroupLink> {
        let rc: Rc<dyn GroupLink> = self.inner.clone();
        Rc::downgrade(&rc)
    }

    fn attach(&self, task: Task<T>, daemon: bool) -> TaskRef {
        let r = task.task_ref();
        task.header().ext_mut().group.member_of = Some(self.link());
        let done = task.is_terminated();
        let mut st = self.inner.state.borrow_mut();
        if done && !daemon {
            st.done.push_back(task.id());
        }
        st.members.push(Member {
            task,
            daemon,
            by_group: false,
            done,
            taken: None,
        });
        r
    }

    /// Spawns `fut` as a member and returns a reference to it.
    ///
    /// # Panics
    ///
    /// When the group was joined already (it takes no new members: Curio's `RuntimeError`);
    /// [`try_spawn`](Self::try_spawn) reports that as an error instead.
    #[track_caller]
    pub fn spawn<F: Future<Output = T> + 'static>(&self, fut: F) -> TaskRef {
        self.try_spawn(fut)
            .expect("TaskGroup::spawn on a joined group")
    }

    /// Spawns `fut` as a member, unless the group was joined.
    ///
    /// # Errors
    ///
    /// [`GroupError::Joined`] once the group was joined (nothing is spawned).
    #[track_caller]
    pub fn try_spawn<F: Future<Output = T> + 'static>(
        &self,
        fut: F,
    ) -> Result<TaskRef, GroupError> {
        self.check_open()?;
        Ok(self.attach(Builder::new().spawn(fut), false))
    }

    /// Spawns `fut` as a member with the options of `builder` (a name; a daemon flag makes a
    /// daemon member, as [`spawn_daemon`](Self::spawn_daemon)).
    ///
    /// # Panics
    ///
    /// When the group was joined already; [`try_spawn_with`](Self::try_spawn_with) reports it
    /// as an error.
    #[track_caller]
    pub fn spawn_with<F: Future<Output = T> + 'static>(&self, builder: Builder, fut: F) -> TaskRef {
        self.try_spawn_with(builder, fut)
            .expect("TaskGroup::spawn_with on a joined group")
    }

    /// As [`spawn_with`](Self::spawn_with), unless the group was joined.
    ///
    /// # Errors
    ///
    /// [`GroupError::Joined`] once the group was joined (nothing is spawned).
    #[track_caller]
    pub fn try_spawn_with<F: Future<Output = T> + 'static>(
        &self,
        builder: Builder,
        fut: F,
    ) -> Result<TaskRef, GroupError> {
        self.check_open()?;
        let task = builder.spawn(fut);
        let daemon = task.is_daemon();
        Ok(self.attach(task, daemon))
    }

    /// Spawns `fut` as a daemon member: ignored for results, cancelled when the group is joined.
    ///
    /// # Panics
    ///
    /// When the group was joined already.
    #[track_caller]
    pub fn spawn_daemon<F: Future<Output = T> + 'static>(&self, fut: F) -> TaskRef {
        self.check_open()
            .expect("TaskGroup::spawn_daemon on a joined group");
        self.attach(Builder::new().daemon().spawn(fut), true)
    }

    /// Adds an existing task (a terminated one counts as already finished; a daemon is tracked for
    /// cancellation only). A task in a group is owned by its group, so a `Task` handle in the
    /// caller's hands is never in another group.
    ///
    /// # Errors
    ///
    /// [`GroupError::Joined`] once the group was joined; the task is given back.
    pub fn add_task(&self, task: Task<T>) -> Result<TaskRef, AddTaskError<T>> {
        if let Err(error) = self.check_open() {
            return Err(AddTaskError { error, task });
        }
        let daemon = task.is_daemon();
        Ok(self.attach(task, daemon))
    }

    /// Takes a member out of the group (Curio's explicit `join` of a member): its siblings are not
    /// affected, even if it failed. Joining the returned task gives its outcome, also after the
    /// group was joined.
    ///
    /// `None` if `task` is not a member, or if its outcome was already moved out by
    /// [`result`](Self::result), [`results`](Self::results) or [`outcomes`](Self::outcomes).
    pub fn remove(&self, task: &TaskRef) -> Option<Task<T>> {
        let mut st = self.inner.state.borrow_mut();
        let pos = st
            .members
            .iter()
            .position(|m| m.task.id() == task.id() && m.taken.is_none())?;
        let m = st.members.remove(pos);
        st.done.retain(|d| *d != task.id());
        drop(st);
        m.task.header().take_member_of();
        Some(m.task)
    }

    /// Members still in the group, non-daemon, in creation order.
    fn live_non_daemon(st: &State<T>) -> usize {
        st.members.iter().filter(|m| !m.daemon && !m.done).count()
    }

    fn poll_next_done(&self, cx: &mut Context<'_>) -> Poll<Option<Task<T>>> {
        let mut st = self.inner.state.borrow_mut();
        while let Some(id) = st.done.pop_front() {
            let Some(pos) = st
                .members
                .iter()
                .position(|m| m.task.id() == id && m.taken.is_none())
            else {
                continue;
            };
            let mut m = st.members.remove(pos);
            // A member taken out still counts for the group's policy: under `Wait::Any` the
            // first one decides the join, so a later `join` does not wait for another.
            let by_group = m.by_group;
            if let Some((failure, object)) = m.task.settle().map(|r| self.classify(r, by_group)) {
                let decides = match self.inner.policy {
                    Policy::Any => true,
                    Policy::Object => object || failure,
                    Policy::All => failure,
                    Policy::None => false,
                };
                if decides {
                    st.decided = true;
                    if st.completed.is_none() {
                        st.completed = Some(m.task.task_ref());
                        st.completed_id = Some(id);
                    }
                }
            }
            drop(st);
            m.task.header().take_member_of();
            return Poll::Ready(Some(m.task));
        }
        if Self::live_non_daemon(&st) == 0 {
            return Poll::Ready(None);
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// A member that has finished, taken out of the group, without waiting; `None` if none has.
    /// Long-running owners (servers) use it to reap finished members.
    pub fn try_next_done(&self) -> Option<Task<T>> {
        match self.poll_next_done(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(t) => t,
            Poll::Pending => {
                self.inner.state.borrow_mut().waker = None;
                None
            }
        }
    }

    /// The next member to finish, in completion order, taken out of the group; `None` when no
    /// non-daemon member is left.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a member is taken only by the poll that returns it.
    #[track_caller]
    pub fn next_done(&self) -> impl Future<Output = Option<Task<T>>> + '_ {
        at_site(WaitKind::Group, poll_fn(|cx| self.poll_next_done(cx)))
    }

    /// The output of the next member to finish (see [`next_done`](Self::next_done)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn next_result(&self) -> impl Future<Output = Option<Result<T, TaskError>>> + '_ {
        let next = self.next_done();
        async move { next.await?.try_take() }
    }

    fn classify(&self, r: &Result<T, TaskError>, by_group: bool) -> (bool, bool) {
        match r {
            Err(e) => (!(by_group && e.is_cancelled()), false),
            Ok(v) => match self.inner.classify {
                Some(f) => f(v),
                None => (false, true),
            },
        }
    }

    /// Waits for the members as the policy says, then cancels and waits for every member still
    /// running, daemons included. It returns early when a member fails (panics, is cancelled by
    /// someone else, or, with [`with_outcomes`](Self::with_outcomes), returns a failure).
    /// Member failures are not returned: inspect them with [`outcomes`](Self::outcomes),
    /// [`results`](Self::results) and [`exceptions`](Self::exceptions). Joining again does
    /// nothing.
    ///
    /// # Cancel safety
    ///
    /// If the join is dropped (its task cancelled, a timeout around it), every member is asked to
    /// cancel at once; a cancelled owner also waits for them (see the type's docs).
    #[track_caller]
    pub fn join(&self) -> impl Future<Output = ()> + '_ {
        at_site(WaitKind::Group, self.join_inner())
    }

    async fn join_inner(&self) {
        if self.inner.state.borrow().joined {
            return;
        }
        let guard = JoinGuard { group: self };
        if self.inner.policy != Policy::None {
            poll_fn(|cx| self.poll_wait(cx)).await;
        }
        // Cancel what is still running: non-daemons first, then daemons, waiting for each batch.
        for daemons in [false, true] {
            let live = self.inner.cancel_live(|m| m.daemon == daemons);
            for t in &live {
                t.wait().await;
            }
        }
        std::mem::forget(guard);
        let mut st = self.inner.state.borrow_mut();
        for m in st.members.iter_mut() {
            m.task.settle();
        }
        st.joined = true;
    }

    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let next = {
                let mut st = self.inner.state.borrow_mut();
                if st.decided {
                    return Poll::Ready(());
                }
                match st.done.pop_front() {
                    Some(id) => id,
                    None => {
                        if Self::live_non_daemon(&st) == 0 {
                            return Poll::Ready(());
                        }
                        st.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            let mut st = self.inner.state.borrow_mut();
            let Some(m) = st.members.iter_mut().find(|m| m.task.id() == next) else {
                continue;
            };
            let by_group = m.by_group;
            let task_ref = m.task.task_ref();
            let (failure, object) = match m.task.settle() {
                Some(r) => self.classify(r, by_group),
                None => (false, false),
            };
            let decides = match self.inner.policy {
                Policy::Object => object || failure,
                _ => true,
            };
            if st.completed.is_none() && decides {
                st.completed = Some(task_ref);
                st.completed_id = Some(next);
            }
            let stop = failure
                || self.inner.policy == Policy::Any
                || (self.inner.policy == Policy::Object && object);
            if stop {
                return Poll::Ready(());
            }
        }
    }

    /// Cancels the running non-daemon members and waits for them; they leave the group. The group
    /// stays usable.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the requests in place; only the waiting stops.
    pub async fn cancel_remaining(&self) {
        let live = self.inner.cancel_live(|m| !m.daemon);
        for t in &live {
            t.wait().await;
            self.remove(t);
        }
    }

    fn joined_state(&self) -> Result<std::cell::RefMut<'_, State<T>>, GroupError> {
        let st = self.inner.state.borrow_mut();
        if st.joined {
            Ok(st)
        } else {
            Err(GroupError::NotJoined)
        }
    }

    /// The first member to finish that decided the join (for `Wait::Object`, the first object or
    /// failure); `None` if none did.
    ///
    /// # Errors
    ///
    /// [`GroupError::NotJoined`] before [`join`](Self::join).
    pub fn completed(&self) -> Result<Option<TaskRef>, GroupError> {
        Ok(self.joined_state()?.completed.clone())
    }

    /// The output of [`completed`](Self::completed), moved out.
    ///
    /// # Errors
    ///
    /// `NotJoined`; `NoCompleted`; `Failed` with a copy of the member's error (see
    /// [`exceptions`](Self::exceptions)), which stays in the group; `Taken` once the output was
    /// moved out.
    pub fn result(&self) -> Result<T, GroupError> {
        let mut st = self.joined_state()?;
        let id = st.completed_id.ok_or(GroupError::NoCompleted)?;
        let m = st
            .members
            .iter_mut()
            .find(|m| m.task.id() == id)
            .ok_or(GroupError::Taken)?;
        if m.taken.is_some() {
            return Err(GroupError::Taken);
        }
        match m.task.settle() {
            Some(Err(e)) => Err(GroupError::Failed(e.summary())),
            Some(Ok(_)) => {
                m.taken = Some(false);
                match m.task.try_take() {
                    Some(Ok(v)) => Ok(v),
                    _ => unreachable!("the output was just looked at"),
                }
            }
            None => Err(GroupError::Taken),
        }
    }

    /// The outputs of the non-daemon members still in the group, in creation order, moved out:
    /// Curio's `results`, a shortcut for groups in which nothing failed.
    ///
    /// # Errors
    ///
    /// `NotJoined`; `Failed` with a copy of the first failed member's error when any member
    /// failed (nothing is moved out: every outcome stays for [`outcomes`](Self::outcomes));
    /// `Taken` when an output was already moved out (nothing more is).
    pub fn results(&self) -> Result<Vec<T>, GroupError> {
        let mut st = self.joined_state()?;
        for m in st.members.iter_mut().filter(|m| !m.daemon) {
            if m.taken == Some(true) {
                return Err(GroupError::Taken);
            }
            if let Some(Err(e)) = m.task.settle() {
                return Err(GroupError::Failed(e.summary()));
            }
        }
        if st.members.iter().any(|m| !m.daemon && m.taken.is_some()) {
            return Err(GroupError::Taken);
        }
        let mut out = Vec::new();
        for m in st.members.iter_mut().filter(|m| !m.daemon) {
            m.taken = Some(false);
            match m.task.try_take() {
                Some(Ok(v)) => out.push(v),
                _ => unreachable!("every member was looked at and is a value"),
            }
        }
        Ok(out)
    }

    /// Every non-daemon member's outcome, in creation order, moved out: its output, or the
    /// [`TaskError`] that says how it failed (panicked, or was cancelled, by someone else or by
    /// the group's join). A sibling's failure never makes a good output unreachable.
    ///
    /// # Errors
    ///
    /// `NotJoined`; `Taken` when an outcome was already moved out by this call,
    /// [`result`](Self::result) or [`results`](Self::results) (nothing more is).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::{TaskGroup, Wait, run}; }
    /// use curio::{TaskGroup, Wait};
    ///
    /// curio::run(async {
    ///     let g = TaskGroup::new(Wait::Any);
    ///     g.spawn(async { 1 });
    ///     g.spawn(std::future::pending()); // cancelled by the join
    ///     g.join().await;
    ///     let outcomes = g.outcomes().unwrap();
    ///     assert_eq!(*outcomes[0].as_ref().unwrap(), 1);
    ///     assert!(outcomes[1].as_ref().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn outcomes(&self) -> Result<Vec<Result<T, TaskError>>, GroupError> {
        let mut st = self.joined_state()?;
        if st.members.iter().any(|m| !m.daemon && m.taken.is_some()) {
            return Err(GroupError::Taken);
        }
        Ok(st
            .members
            .iter_mut()
            .filter(|m| !m.daemon)
            .map(|m| {
                let r = m
                    .task
                    .try_take()
                    .expect("a joined group's members have terminated");
                m.taken = Some(r.is_err());
                r
            })
            .collect())
    }

    /// The errors of the non-daemon members still in the group, in creation order (`None` for a
    /// member that did not fail). They are copies: the same task and kind, a panic's payload
    /// replaced by its message (a `String`); the originals stay for
    /// [`outcomes`](Self::outcomes), so this can be called any number of times.
    ///
    /// # Errors
    ///
    /// `NotJoined` before [`join`](Self::join); `Taken` once [`outcomes`](Self::outcomes) moved
    /// an error out.
    pub fn exceptions(&self) -> Result<Vec<Option<TaskError>>, GroupError> {
        let mut st = self.joined_state()?;
        st.members
            .iter_mut()
            .filter(|m| !m.daemon)
            .map(|m| match m.taken {
                Some(true) => Err(GroupError::Taken),
                Some(false) => Ok(None),
                None => Ok(match m.task.settle() {
                    Some(Err(e)) => Some(e.summary()),
                    _ => None,
                }),
            })
            .collect()
    }

    /// The non-daemon members still in the group, in creation order.
    ///
    /// # Errors
    ///
    /// [`GroupError::NotJoined`] before [`join`](Self::join).
    pub fn tasks(&self) -> Result<Vec<TaskRef>, GroupError> {
        let st = self.joined_state()?;
        Ok(st
            .members
            .iter()
            .filter(|m| !m.daemon)
            .map(|m| m.task.task_ref())
            .collect())
    }

    /// Members not yet taken out by [`remove`](Self::remove), [`next_done`](Self::next_done) or
    /// [`next_result`](Self::next_result), daemons included. After [`join`](Self::join) it still
    /// counts the members the join cancelled: they stay in the group with their outcomes (see
    /// [`outcomes`](Self::outcomes)) until taken out.
    pub fn len(&self) -> usize {
        self.inner.state.borrow().members.len()
    }

    /// Whether the group has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Outcome + 'static> TaskGroup<T> {
    /// A group whose members' outputs are [`Outcome`]s: an `Err` output counts as a failure, and
    /// `Wait::Object` waits for the first object (`Some`, `Ok`) or failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::{TaskGroup, Wait, run}; }
    /// use curio::{TaskGroup, Wait};
    ///
    /// curio::run(async {
    ///     let g = TaskGroup::with_outcomes(Wait::Object);
    ///     g.spawn(async { None });
    ///     g.spawn(async { Some("found") });
    ///     g.spawn(std::future::pending());
    ///     g.join().await;
    ///     assert_eq!(g.result().unwrap(), Some("found"));
    /// });
    /// ```
    pub fn with_outcomes(wait: impl OutcomePolicy) -> TaskGroup<T> {
        TaskGroup::build(
            wait.policy().0,
            Some(|v: &T| (v.is_failure(), v.is_object())),
        )
    }
}

struct JoinGuard<'a, T: 'static> {
    group: &'a TaskGroup<T>,
}

impl<T: 'static> Drop for JoinGuard<'_, T> {
    fn drop(&mut self) {
        // The join was dropped half-way: everybody is asked to stop.
        self.group.inner.cancel_members();
    }
}

impl<T: 'static> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        if !self.inner.state.borrow().joined {
            let live = self.inner.cancel_live(|_| true);
            // The owner keeps the members it could not wait for: a curio scope that dropped the
            // group (an expired timeout) waits for them before it reports, and so does the
            // owner's own cancellation.
            if let Some(owner) = &self.inner.owner
                && !live.is_empty()
            {
                let mut ext = owner.ext_mut();
                ext.orphans.retain(|h| !h.is_terminated());
                ext.orphans.extend(live.iter().map(|t| t.header.clone()));
            }
        }
        let members = std::mem::take(&mut self.inner.state.borrow_mut().members);
        for m in &members {
            m.task.header().take_member_of();
        }
        drop(members);
    }
}

impl<T: 'static> Stream for TaskGroup<T> {
    type Item = Task<T>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Task<T>>> {
        self.poll_next_done(cx)
    }
}
