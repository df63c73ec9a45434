//! Activation hooks (Curio's `Activation`): code the kernel calls as tasks are created, run,
//! suspend and terminate, and the built-ins `schedtrace`, `logcrash` and `longblock`.
//!
//! Hooks are installed on the builder ([`KernelBuilder::activation`](crate::KernelBuilder)) and
//! called on the kernel's thread, in Curio's order: `created` once, then per turn `running` and
//! `suspended`, and on the last turn `suspended` then `terminated`. With no hook installed the
//! scheduler only tests that the list is empty.
//!
//! The monitor (`curio-monitor`) is an activation: it mirrors each task's state into a table its
//! own thread reads.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use curio_core::WaitSite;

use crate::header::Header;
use crate::id::TaskId;

/// A view of a task for the hooks: what the kernel knows about it at the moment of the event.
/// (A leaf type: hooks are called from the kernel's core, below the task handles.)
#[derive(Clone, Copy)]
pub struct TaskInfo<'a> {
    h: &'a Header,
}

impl<'a> TaskInfo<'a> {
    pub(crate) fn new(h: &'a Header) -> TaskInfo<'a> {
        TaskInfo { h }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.h.id
    }

    /// Its name.
    pub fn name(&self) -> &'a str {
        self.h.name.as_str()
    }

    /// The task that spawned it, if any.
    pub fn parent_id(&self) -> Option<TaskId> {
        self.h.parent_id()
    }

    /// Where it was spawned.
    pub fn location(&self) -> &'static Location<'static> {
        self.h.location
    }

    /// Turns it has had.
    pub fn cycles(&self) -> u64 {
        u64::from(self.h.cycles.get())
    }

    /// Its state as Curio names it: `INITIAL`, `RUNNING`, `SUSPENDED` or `TERMINATED`.
    pub fn state(&self) -> &'static str {
        self.h.state.get().as_str()
    }

    /// Where it waits, as its last turn left it (see `TaskRef::wait_site`).
    pub fn wait_site(&self) -> Option<WaitSite> {
        self.h.wait.get()
    }

    /// Whether its cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.h.cancel.requested()
    }

    /// Whether it is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.h.daemon
    }
}

impl fmt::Debug for TaskInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

/// How a task ended, for [`Activation::terminated`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Ended<'a> {
    /// Its future returned.
    Returned,
    /// It was cancelled: its future was dropped.
    Cancelled,
    /// It panicked, with this message.
    Panicked(&'a str),
}

/// Hooks the kernel calls around each task (Curio's `Activation`). Every method has an empty
/// default; implement the ones you need.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; pub mod activation { pub use curio_kernel::{Activation, Ended, TaskInfo}; } }
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use curio::Kernel;
/// use curio::activation::{Activation, Ended, TaskInfo};
///
/// struct Log(Rc<RefCell<Vec<&'static str>>>);
/// impl Activation for Log {
///     fn activate(&self) { self.0.borrow_mut().push("activate") }
///     fn created(&self, _: &TaskInfo<'_>) { self.0.borrow_mut().push("created") }
///     fn running(&self, _: &TaskInfo<'_>) { self.0.borrow_mut().push("running") }
///     fn suspended(&self, _: &TaskInfo<'_>) { self.0.borrow_mut().push("suspended") }
///     fn terminated(&self, _: &TaskInfo<'_>, _: Ended<'_>) { self.0.borrow_mut().push("terminated") }
/// }
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let mut kernel = Kernel::builder().activation(Log(log.clone())).build();
/// kernel.run(async {});
/// assert_eq!(*log.borrow(), ["activate", "created", "running", "suspended", "terminated"]);
/// ```
pub trait Activation {
    /// The kernel starts its first run (`Kernel::run` or `step`): it is current, so
    /// `curio_kernel::try_handle()` reaches it (a handle other threads can use).
    fn activate(&self) {}
    /// A task was created.
    fn created(&self, task: &TaskInfo<'_>) {
        let _ = task;
    }
    /// A task's turn begins.
    fn running(&self, task: &TaskInfo<'_>) {
        let _ = task;
    }
    /// A task's turn ended (it waits, or it is about to terminate).
    fn suspended(&self, task: &TaskInfo<'_>) {
        let _ = task;
    }
    /// A task terminated.
    fn terminated(&self, task: &TaskInfo<'_>, how: Ended<'_>) {
        let _ = (task, how);
    }
}

/// Where a built-in reports: stderr by default.
type Sink = Box<dyn Fn(&str)>;

fn stderr_sink() -> Sink {
    Box::new(|line| eprintln!("{line}"))
}

fn describe(t: &TaskInfo<'_>) -> String {
    let at = t.location();
    format!(
        "task {} ({}, spawned at {}:{})",
        t.id(),
        t.name(),
        at.file(),
        at.line()
    )
}

/// Logs every scheduling event, one line each (Curio's `schedtrace`): `CREATE`, `RUN`,
/// `SUSPEND` and `TERMINATED` with the kernel's clock and the task.
pub fn schedtrace() -> SchedTrace {
    SchedTrace {
        sink: stderr_sink(),
        start: Cell::new(None),
    }
}

/// The activation of [`schedtrace`].
pub struct SchedTrace {
    sink: Sink,
    start: Cell<Option<Instant>>,
}

impl SchedTrace {
    /// Sends the lines to `sink` instead of stderr.
    pub fn report_to(mut self, sink: impl Fn(&str) + 'static) -> SchedTrace {
        self.sink = Box::new(sink);
        self
    }

    fn line(&self, event: &str, t: &TaskInfo<'_>) {
        let now = curio_time::clock();
        let start = *self.start.get().get_or_insert(now);
        self.start.set(Some(start));
        let at = now.saturating_duration_since(start).as_secs_f64();
        (self.sink)(&format!("{event}:{at:.6}:{}", describe(t)));
    }
}

impl fmt::Debug for SchedTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SchedTrace")
    }
}

impl Activation for SchedTrace {
    fn created(&self, t: &TaskInfo<'_>) {
        self.line("CREATE", t);
    }
    fn running(&self, t: &TaskInfo<'_>) {
        self.line("RUN", t);
    }
    fn suspended(&self, t: &TaskInfo<'_>) {
        self.line("SUSPEND", t);
    }
    fn terminated(&self, t: &TaskInfo<'_>, _: Ended<'_>) {
        self.line("TERMINATED", t);
    }
}

/// Reports each task that panics, with its name, spawn site and message (Curio's `logcrash`).
pub fn logcrash() -> LogCrash {
    LogCrash {
        sink: stderr_sink(),
    }
}

/// The activation of [`logcrash`].
pub struct LogCrash {
    sink: Sink,
}

impl LogCrash {
    /// Sends the reports to `sink` instead of stderr.
    pub fn report_to(mut self, sink: impl Fn(&str) + 'static) -> LogCrash {
        self.sink = Box::new(sink);
        self
    }
}

impl fmt::Debug for LogCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogCrash")
    }
}

impl Activation for LogCrash {
    fn terminated(&self, t: &TaskInfo<'_>, how: Ended<'_>) {
        if let Ended::Panicked(msg) = how {
            (self.sink)(&format!("curio: {} crashed: {msg}", describe(t)));
        }
    }
}

/// Reports any single turn of a task that ran longer than `max` on the kernel's clock (Curio's
/// `longblock`): blocking detection. The report names the task, its spawn site and the line of
/// its last wait.
///
/// The kernel's clock is read twice per turn while this is installed; on a clock given to the
/// builder (a manual clock in tests) the measurement is exact.
pub fn longblock(max: Duration) -> LongBlock {
    LongBlock {
        max,
        sink: stderr_sink(),
        started: RefCell::new(None),
    }
}

/// The activation of [`longblock`].
pub struct LongBlock {
    max: Duration,
    sink: Sink,
    started: RefCell<Option<(TaskId, Instant)>>,
}

impl LongBlock {
    /// Sends the reports to `sink` instead of stderr.
    pub fn report_to(mut self, sink: impl Fn(&str) + 'static) -> LongBlock {
        self.sink = Box::new(sink);
        self
    }

    fn end_turn(&self, t: &TaskInfo<'_>) {
        let started = self.started.borrow_mut().take();
        if let Some((id, start)) = started
            && id == t.id()
        {
            let ran = curio_time::clock().saturating_duration_since(start);
            if ran > self.max {
                let waits = t
                    .wait_site()
                    .and_then(|s| s.location)
                    .map(|l: &Location<'_>| format!(", then waited at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                (self.sink)(&format!(
                    "curio: {} ran for {ran:?} without suspending (limit {:?}){waits}",
                    describe(t),
                    self.max
                ));
            }
        }
    }
}

impl fmt::Debug for LongBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LongBlock").field("max", &self.max).finish()
    }
}

impl Activation for LongBlock {
    fn running(&self, t: &TaskInfo<'_>) {
        *self.started.borrow_mut() = Some((t.id(), curio_time::clock()));
    }
    fn suspended(&self, t: &TaskInfo<'_>) {
        self.end_turn(t);
    }
}
