//! The task header: what the kernel and every handle share about one task.
//!
//! A leaf of the kernel's modules: it knows the state types of the features that keep state per
//! task (cancellation, timeout scopes, groups, task-locals), each defined by its feature, and
//! nothing of the kernel that runs it.
//!
//! The header keeps what most tasks never use (termination waiters, cancel waiters, armed timeout
//! scopes, group links, task-locals) in `Extras`, a box allocated on first use, and stores the
//! task's waker only at its first suspension, so a task that finishes in its first turn, or idles,
//! stays small (`idle_task_memory` in BENCHMARKS.md).
//! The task's wait site (`curio_core::WaitSite`), as its last turn left it, is kept here for the
//! monitor.
//! Headers are reference counted (`Rc`) beside async-task's cell and recycled by the kernel (see
//! `core.rs`); what their `Drop` would run of user code (task-locals, group links) stays in
//! `Extras`, dropped where a panic is caught.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use curio_core::WaitSite;

use crate::cancel::state::CancelState;
use crate::error::{ErrorKind, TaskError, panic_message};
use crate::group::link::{GroupLink, Membership};
use crate::id::{TaskId, next_id};
use crate::local::value::Locals;
use crate::timeout::state::{ArmedScope, ScopeState};
use crate::trace::TaskSpan;

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
    /// A name given as a `&'static str`, or the spawned future's type name, trimmed.
    Static(&'static str),
    /// A name given as a `String`: a thin pointer, so the name takes 16 bytes of the header
    /// rather than 24 (owned names are the rare case; they cost one allocation more).
    Owned(Box<Box<str>>),
}

impl Name {
    /// The name of a future of type name `t`: without the `::{{closure}}` suffixes of an async
    /// block's type.
    pub(crate) fn of_type(t: &'static str) -> Name {
        let mut t = t;
        while let Some(s) = t.strip_suffix("::{{closure}}") {
            t = s;
        }
        Name::Static(t)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Name::Static(s) => s,
            Name::Owned(s) => s,
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
    /// Armed timeout scopes.
    pub(crate) scopes: Vec<ArmedScope>,
    /// The groups the task owns and the one it belongs to.
    pub(crate) group: Membership,
    /// Task-local values.
    pub(crate) locals: Locals,
    /// Members of groups this task dropped without joining: their cancellation is requested,
    /// and the scope that dropped the group (or this task's own cancellation) waits for them.
    pub(crate) orphans: Vec<Rc<Header>>,
}

/// What the kernel and every handle share about one task.
pub(crate) struct Header {
    pub(crate) id: TaskId,
    /// The parent's id number (0 for none) and registry slot, apart so that the slot shares a
    /// word with `cycles` (a `TaskId` here would take 16 bytes with its padding).
    parent: u64,
    parent_slot: u32,
    pub(crate) name: Name,
    pub(crate) daemon: bool,
    pub(crate) location: &'static Location<'static>,
    pub(crate) state: Cell<State>,
    /// The task's waker, kept from its first suspension on (a cancel request wakes it).
    /// In a `Cell` (16 bytes, where a `RefCell` takes 24): read through [`Header::waker`].
    waker: Cell<Option<Waker>>,
    pub(crate) cycles: Cell<u32>,
    /// Where the task waits, as its last turn left it.
    pub(crate) wait: Cell<Option<WaitSite>>,
    /// Its `tracing` span (empty without the feature).
    pub(crate) span: TaskSpan,
    pub(crate) cancel: CancelState,
    pub(crate) scopes: ScopeState,
    /// What most tasks never need, allocated on first use, so an idle task stays small.
    pub(crate) ext: RefCell<Option<Box<Extras>>>,
}

impl Header {
    /// A header for a new task in registry slot `slot`, spawned by `parent` (`None`: a main or
    /// remote task), which inherits clones of the parent's task-local values.
    pub(crate) fn new(
        slot: u32,
        parent: Option<&Header>,
        name: Name,
        daemon: bool,
        location: &'static Location<'static>,
    ) -> Header {
        let locals = parent
            .and_then(|p| p.with_ext(|e| e.locals.inherit()))
            .unwrap_or_default();
        let ext = (!locals.is_empty()).then(|| {
            Box::new(Extras {
                locals,
                ..Extras::default()
            })
        });
        let id = next_id();
        let span = TaskSpan::new(id, name.as_str(), location);
        Header {
            id: TaskId::new(id, slot),
            parent: parent.map_or(0, |p| p.id.as_u64()),
            parent_slot: parent.map_or(u32::MAX, |p| p.id.slot()),
            name,
            daemon,
            location,
            state: Cell::new(State::Initial),
            waker: Cell::new(None),
            cycles: Cell::new(0),
            wait: Cell::new(None),
            span,
            cancel: CancelState::default(),
            scopes: ScopeState::default(),
            ext: RefCell::new(ext),
        }
    }

    /// A clone of the task's waker, once it has suspended.
    pub(crate) fn waker(&self) -> Option<Waker> {
        let w = self.waker.take();
        let clone = w.clone();
        self.waker.set(w);
        clone
    }

    /// Keeps `waker` as the task's, unless it has one already.
    pub(crate) fn keep_waker(&self, waker: &Waker) {
        let w = self.waker.take();
        self.waker.set(Some(w.unwrap_or_else(|| waker.clone())));
    }

    /// Takes the task's waker out.
    pub(crate) fn take_waker(&self) -> Option<Waker> {
        self.waker.take()
    }

    /// The extras, allocated on first use.
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
            .and_then(|e| e.group.member_of.take())
    }

    /// The parent's id.
    pub(crate) fn parent_id(&self) -> Option<TaskId> {
        (self.parent != 0).then(|| TaskId::new(self.parent, self.parent_slot))
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state.get() == State::Terminated
    }

    /// Wakes the task, if it has suspended once (a task never polled yet is on the ready queue
    /// already).
    pub(crate) fn wake(&self) {
        let w = self.waker();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Records a cancellation request and schedules the task so the kernel drops its future in
    /// the task's own next turn. One-shot; a no-op on a terminated task.
    pub(crate) fn request_cancel(&self) {
        if self.is_terminated() || self.cancel.requested() {
            return;
        }
        self.cancel.request();
        // Timeout scopes entered before the request are disarmed: they never fire during cleanup.
        self.scopes.cancel_seq.set(self.scopes.seq.get());
        self.wake_cancel_waiters();
        self.wake();
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

    /// Cancels the members of the innermost owned group that still has live members; `true`
    /// while any group member is still alive (the owner must wait for it, woken by `waker`).
    pub(crate) fn cascade(&self, waker: &Waker) -> bool {
        // The orphans' groups are gone, so nothing else tells this task when they end. (The
        // waker kept in the header would not do: a task cancelled in its first turn has none.)
        let orphans = self
            .ext
            .borrow_mut()
            .as_mut()
            .map(|e| std::mem::take(&mut e.orphans));
        if let Some(mut orphans) = orphans {
            let waiting = poll_terminated(&mut orphans, waker).is_pending();
            self.ext_mut().orphans = orphans;
            if waiting {
                return true;
            }
        }
        let groups: Vec<_> = self
            .with_ext(|e| e.group.owned.iter().rev().cloned().collect())
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
        self.waker.take();
        let ext = self.ext.borrow_mut().take();
        self.drop_contained("its task-locals", ext);
    }

    /// Takes the orphans added since the list had `mark` entries (the members of the groups a
    /// scope just dropped).
    pub(crate) fn take_orphans_since(&self, mark: usize) -> Vec<Rc<Header>> {
        self.ext
            .borrow_mut()
            .as_mut()
            .map(|e| e.orphans.split_off(mark.min(e.orphans.len())))
            .unwrap_or_default()
    }

    /// How many orphans the task has now.
    pub(crate) fn orphan_count(&self) -> usize {
        self.with_ext(|e| e.orphans.len()).unwrap_or(0)
    }

    /// An error naming this task.
    pub(crate) fn error(&self, kind: ErrorKind) -> TaskError {
        TaskError {
            id: self.id,
            name: Cow::Owned(self.name.as_str().to_owned()),
            spawned_at: Some(self.location),
            kind,
        }
    }
}

/// Drops the terminated tasks from `tasks`; `Ready` when none is left, otherwise makes `waker`
/// wake when each of the rest terminates.
pub(crate) fn poll_terminated(tasks: &mut Vec<Rc<Header>>, waker: &Waker) -> Poll<()> {
    tasks.retain(|h| !h.is_terminated());
    if tasks.is_empty() {
        return Poll::Ready(());
    }
    for h in tasks.iter() {
        add_termination_waiter(h, waker);
    }
    Poll::Pending
}

/// Makes `waker` wake when `h` terminates (at once if it has).
pub(crate) fn add_termination_waiter(h: &Header, waker: &Waker) {
    if h.is_terminated() {
        waker.wake_by_ref();
        return;
    }
    let mut e = h.ext_mut();
    if !e.waiters.iter().any(|w| w.will_wake(waker)) {
        e.waiters.push(waker.clone());
    }
}

#[cfg(all(test, not(feature = "tracing")))]
mod tests {
    /// An idle task's memory is mostly its header's allocation: at 120 bytes, an `Rc<Header>`
    /// (two counts more) takes a 144-byte malloc chunk; at 121, a 160-byte one.
    #[test]
    fn the_header_fits_120_bytes() {
        assert!(
            std::mem::size_of::<super::Header>() <= 120,
            "the header grew to {} bytes",
            std::mem::size_of::<super::Header>()
        );
    }
}
