//! The kernel's state on its thread (`Core`), the part other threads may touch (`Shared`), and the
//! thread-local that makes the running kernel current.
//!
//! # The ready queue and wakes
//!
//! The ready queue is a `VecDeque` of entries, each an async-task `Runnable` or a marker for the
//! main future of the current `Kernel::run` (`Entry::Main`); it is FIFO: a woken task goes to the
//! back.
//! The main future is not an async-task task: it stays pinned on `run`'s stack and is polled in
//! place when its marker comes up, with a header of its own so `current_task()` works in it; a flag
//! in its waker (`MainWake`) keeps at most one marker in the queue.
//!
//! The schedule function that async-task calls must be `Send + Sync`, so it checks, through the
//! thread-local, whether the task's kernel runs on the calling thread. It is a plain function
//! (`schedule`) that finds the kernel in the task's metadata (`TaskMeta`): a schedule closure
//! holding the kernel would make async-task wake by reference and drop the waker on every
//! by-value wake.
//! If it does, the runnable goes onto the local ready queue: no lock, no system call.
//! If it does not, the runnable goes onto the remote queue (a `concurrent-queue`) and the kernel's
//! `Unparker` wakes it; with the reactor as the parker, only a wake of a parked kernel writes its
//! eventfd (`curio-reactor`'s `wake.rs`), and a running kernel sees the wake at its next park.
//!
//! # Tasks: the registry and the header pool
//!
//! Every live task's header (`header.rs`) sits in the registry, a slab whose slot the task's
//! `TaskId` carries, so finding a task by id (`KernelHandle::cancel`, a shield dropped by another
//! task) is O(1), and shutdown can list every task.
//! When the last reference to a finished task's header goes, the kernel keeps the header in a pool
//! (at most `HEADER_POOL`) and the next spawn rewrites it in place, so in the steady state a task
//! costs one allocation, async-task's.
//! Task ids come from one process-wide counter that starts at 1 (`id.rs`).
//!
//! # Parking, time and extensions
//!
//! `Core` parks on a `Box<dyn Park>` (`curio_core::Park`): a new `curio_reactor::Reactor` by
//! default, or whatever `KernelBuilder::park` was given; the box costs one indirect call per park,
//! at most one per scheduling cycle (two when a virtual clock cannot jump).
//! A kernel whose parker is not a reactor has no I/O: a socket or pipe operation that would have to
//! wait fails with an `io::Error` saying that no reactor runs, and never hangs.
//! Time is read through a `curio_time::TimeDriver` over a `Box<dyn Clock>` (`KernelBuilder::clock`,
//! or the real or virtual clock).
//! `config` holds the settings that crates above the kernel registered on the builder
//! (`curio_core::Extensions`), and `extensions` their per-kernel state (`kernel::extension`),
//! dropped after all tasks at shutdown.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::task::Wake;

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;
use curio_core::{Extensions, Park, ParkEnter, Unparker};
use curio_time::TimeDriver;

use std::panic::Location;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::activation::{Activation, TaskInfo};
use crate::error::panic_message;
use crate::header::{Header, Name};
use crate::id::TaskId;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering};
use crate::trace::Meta;

static NEXT_KERNEL_ID: AtomicU64 = AtomicU64::new(1);

#[cfg(not(loom))]
thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}
// Loom runs its threads on one OS thread: the running kernel must be a loom thread's own.
#[cfg(loom)]
loom::thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = RefCell::new(None);
}

/// Runs `f` with the kernel running on this thread, if any.
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_deref()))
}

/// Makes `core` the running kernel of this thread.
///
/// # Panics
///
/// When a kernel already runs on this thread.
pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
    CURRENT.with(|c| {
        // A borrow in progress means this call comes from inside a running kernel's task.
        match c.try_borrow_mut() {
            Ok(mut c) if c.is_none() => *c = Some(core.clone()),
            _ => panic!(
                "only one curio kernel can run on a thread: a kernel is already running here \
                 (Kernel::run and curio::run cannot be called from inside a task)"
            ),
        }
    });
    EnterGuard {
        _time: core.time.enter(),
        _park: core.park.enter(),
    }
}

pub(crate) struct EnterGuard {
    _time: curio_time::EnterGuard,
    _park: ParkEnter,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// What a task's cell carries besides its future: its kernel (for [`schedule`]) and, with the
/// `tracing` feature, its id.
pub(crate) struct TaskMeta {
    pub(crate) shared: Arc<Shared>,
    pub(crate) trace: Meta,
}

/// The schedule function of every task.
///
/// A plain function, not a closure holding the kernel: async-task turns a by-value wake into a
/// wake by reference plus a drop whenever the schedule function holds data, two atomic
/// operations more on every wake; the kernel is found through the task's metadata instead.
pub(crate) fn schedule(r: Runnable<TaskMeta>) {
    crate::trace::wake(&r.metadata().trace);
    let id = r.metadata().shared.id;
    if let Some(Entry::Task(r)) = push_local(id, Entry::Task(r)) {
        // Another thread's wake: the remote queue, through a handle of the task's own.
        let shared = r.metadata().shared.clone();
        shared.push_remote(Remote::Ready(Entry::Task(r)));
    }
}

/// Pushes `entry` onto the ready queue of kernel `id` if this thread runs it; gives it back
/// otherwise (or while thread-local storage is being torn down).
fn push_local(id: u64, entry: Entry) -> Option<Entry> {
    let mut entry = Some(entry);
    let _ = CURRENT.try_with(|c| {
        if let Ok(c) = c.try_borrow()
            && let Some(core) = c.as_deref()
            && core.shared.id == id
            && let Some(e) = entry.take()
        {
            core.ready.borrow_mut().push_back(e);
        }
    });
    entry
}

/// One entry of the ready queue.
pub(crate) enum Entry {
    Task(Runnable<TaskMeta>),
    /// The main future of `Kernel::run`, with the number of the run that owns it.
    Main(u64),
}

/// Work handed to the kernel by other threads.
pub(crate) enum Remote {
    /// A wake from another thread: the entry joins the ready queue.
    Ready(Entry),
    Call(Box<dyn FnOnce() + Send>),
}

/// The part of a kernel that other threads reach: the remote queue and the wake.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) remote: ConcurrentQueue<Remote>,
    pub(crate) unparker: Unparker,
    /// Jobs running elsewhere that will wake a task (thread-pool calls): while any is
    /// outstanding, a virtual clock does not jump.
    pub(crate) outstanding: AtomicUsize,
    pub(crate) closed: AtomicBool,
    /// The registry's count of live tasks, for other threads (a `MultiKernel` picking the
    /// least loaded kernel).
    pub(crate) live: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(unparker: Unparker) -> Shared {
        Shared {
            id: NEXT_KERNEL_ID.fetch_add(1, Ordering::Relaxed),
            remote: ConcurrentQueue::unbounded(),
            unparker,
            outstanding: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            live: AtomicUsize::new(0),
        }
    }

    /// Queues `entry` to run: a wake on the kernel's own thread pushes to the local ready queue;
    /// any other wake goes through the remote queue and the reactor's notifier.
    pub(crate) fn wake(&self, entry: Entry) {
        if let Some(e) = push_local(self.id, entry) {
            self.push_remote(Remote::Ready(e));
        }
    }

    pub(crate) fn push_remote(&self, item: Remote) {
        // A closed queue belongs to a dropped kernel, whose tasks all terminated: the item is
        // a stale wake or a late call, and dropping it is all that can be done.
        if self.remote.push(item).is_ok() {
            self.unparker.unpark();
        }
    }
}

/// The waker of a kernel run's main future.
pub(crate) struct MainWake {
    pub(crate) shared: Arc<Shared>,
    pub(crate) run: u64,
    pub(crate) queued: AtomicBool,
}

// A `Waker` is built on std's `Arc`, whatever the `sync` module picks.
impl Wake for MainWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.shared.wake(Entry::Main(self.run));
        }
    }
}

/// The kernel's state, owned by its thread.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ready: RefCell<VecDeque<Entry>>,
    pub(crate) tasks: RefCell<Registry>,
    pub(crate) current: RefCell<Option<Rc<Header>>>,
    pub(crate) park: Box<dyn Park>,
    pub(crate) time: Rc<TimeDriver>,
    /// The settings of crates above the kernel, given to its builder.
    pub(crate) config: Extensions,
    pub(crate) extensions: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
    pub(crate) run_counter: Cell<u64>,
    /// Task turns since the reactor was last polled (see `EVENT_INTERVAL`).
    pub(crate) since_poll: Cell<u32>,
    /// Headers of finished tasks that nothing refers to any more, reused for new tasks: in the
    /// steady state a task costs one allocation, async-task's (see [`Core::recycle`]).
    pub(crate) headers: RefCell<Vec<Rc<Header>>>,
    /// The activation hooks given to the builder (empty: the scheduler pays one test per event).
    pub(crate) activations: Box<[Box<dyn Activation>]>,
    /// Whether `activate` was called (at the start of the first run).
    activated: Cell<bool>,
}

/// The most finished headers a kernel keeps for reuse.
const HEADER_POOL: usize = 1024;

/// Every live task, so shutdown can cancel them and the monitor can list them.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Rc<Header>>>,
    free: Vec<u32>,
}

impl Registry {
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether `h` is a live task of this registry.
    pub(crate) fn holds(&self, h: &Rc<Header>) -> bool {
        self.slots
            .get(h.id.slot() as usize)
            .and_then(Option::as_ref)
            .is_some_and(|x| Rc::ptr_eq(x, h))
    }

    /// The live task `id`, found through the slot its id carries: O(1).
    pub(crate) fn get(&self, id: TaskId) -> Option<Rc<Header>> {
        self.slots
            .get(id.slot() as usize)
            .and_then(Option::as_ref)
            .filter(|h| h.id == id)
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Rc<Header>> {
        self.slots.iter().flatten().cloned().collect()
    }
}

impl Core {
    pub(crate) fn new(
        park: Box<dyn Park>,
        clock: Box<dyn curio_time::Clock>,
        config: Extensions,
        activations: Vec<Box<dyn Activation>>,
    ) -> Rc<Core> {
        Rc::new(Core {
            shared: Arc::new(Shared::new(park.unparker())),
            ready: RefCell::new(VecDeque::with_capacity(256)),
            tasks: RefCell::new(Registry::default()),
            current: RefCell::new(None),
            time: TimeDriver::new(clock),
            park,
            config,
            extensions: RefCell::new(Vec::new()),
            run_counter: Cell::new(0),
            since_poll: Cell::new(0),
            headers: RefCell::new(Vec::new()),
            activations: activations.into_boxed_slice(),
            activated: Cell::new(false),
        })
    }

    /// Registers a new task: its header, in a free slot of the registry.
    pub(crate) fn new_task(
        &self,
        name: Name,
        daemon: bool,
        location: &'static Location<'static>,
    ) -> Rc<Header> {
        let slot = {
            let mut t = self.tasks.borrow_mut();
            match t.free.pop() {
                Some(s) => s,
                None => {
                    t.slots.push(None);
                    u32::try_from(t.slots.len() - 1).expect("fewer than 2^32 live tasks")
                }
            }
        };
        let header = Header::new(
            slot,
            self.current.borrow().as_deref(),
            name,
            daemon,
            location,
        );
        let pooled = self.headers.borrow_mut().pop();
        let h = match pooled {
            Some(mut h) => {
                // Only the pool referred to it (see `recycle`).
                *Rc::get_mut(&mut h).expect("a pooled header is not shared") = header;
                h
            }
            None => Rc::new(header),
        };
        let mut t = self.tasks.borrow_mut();
        t.slots[slot as usize] = Some(h.clone());
        // Only this thread writes the count: a store, not a locked read-modify-write.
        self.shared.live.store(t.len(), Ordering::Relaxed);
        drop(t);
        self.hook(&h, |a, t| a.created(t));
        h
    }

    /// Calls `f` on every activation hook for the task `h`, containing a panic in a hook.
    pub(crate) fn hook(&self, h: &Header, f: impl Fn(&dyn Activation, &TaskInfo<'_>)) {
        if self.activations.is_empty() {
            return;
        }
        let t = TaskInfo::new(h);
        for a in self.activations.iter() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&**a, &t))) {
                eprintln!(
                    "curio: an activation hook panicked: {}",
                    panic_message(&*payload)
                );
            }
        }
    }

    /// Calls every hook's `activate` once, when the kernel first runs.
    pub(crate) fn activate(&self) {
        if !self.activated.replace(true) {
            for a in self.activations.iter() {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| a.activate())) {
                    eprintln!(
                        "curio: an activation hook panicked: {}",
                        panic_message(&*payload)
                    );
                }
            }
        }
    }

    /// Takes a task out of the registry (a no-op if it is not there any more).
    pub(crate) fn unregister(&self, h: &Rc<Header>) {
        let removed = {
            let mut t = self.tasks.borrow_mut();
            if !t.holds(h) {
                return;
            }
            let slot = h.id.slot();
            let removed = t.slots[slot as usize].take();
            t.free.push(slot);
            self.shared.live.store(t.len(), Ordering::Relaxed);
            removed
        };
        // The registry's reference is dropped with the registry released.
        if let Some(h) = removed {
            self.recycle(&h);
        }
    }

    /// Keeps `h` for a new task if it belongs to a finished task and `h` is its last reference
    /// (the caller's is about to be dropped): the pool then holds the only one.
    pub(crate) fn recycle(&self, h: &Rc<Header>) {
        // With the `tracing` feature a header's drop closes its task's span: a pooled header
        // would keep a finished task open in tokio-console until reused.
        if cfg!(feature = "tracing") {
            return;
        }
        if Rc::strong_count(h) == 1 && Rc::weak_count(h) == 0 && h.is_terminated() {
            let mut pool = self.headers.borrow_mut();
            if pool.len() < HEADER_POOL {
                pool.push(h.clone());
            }
        }
    }

    /// Drains the remote queue into the ready queue; runs remote calls.
    pub(crate) fn drain_remote(&self) {
        // An empty check is two atomic loads; a pop on an empty queue costs more.
        if self.shared.remote.is_empty() {
            return;
        }
        while let Ok(item) = self.shared.remote.pop() {
            match item {
                Remote::Ready(e) => self.ready.borrow_mut().push_back(e),
                Remote::Call(f) => f(),
            }
        }
    }
}

/// The header of the running task.
pub(crate) fn current_header() -> Option<Rc<Header>> {
    with_core(|c| c.and_then(|c| c.current.borrow().clone()))
}

/// Hands a finished task's header to the running kernel for reuse, if this is its last
/// reference (the caller's is about to be dropped).
pub(crate) fn recycle(h: &Rc<Header>) {
    if Rc::strong_count(h) == 1 {
        with_core(|c| {
            if let Some(c) = c {
                c.recycle(h);
            }
        });
    }
}
