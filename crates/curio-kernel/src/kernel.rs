//! `Kernel` and its builder: running a main future, single steps, shutdown, and the hooks for
//! crates that extend the kernel. The cycle itself is in [`scheduler`](crate::scheduler).
//!
//! # One kernel per thread
//!
//! A thread-local (`core.rs`) records the running kernel.
//! Calling `run` or `step` while a kernel is running on the thread (for example `curio::run` from
//! inside a task) panics with a message that says so.
//! Several `Kernel` values may exist on one thread as long as only one runs at a time, and kernels
//! on different threads are independent.
//! A run's main task ends with the run (`MainGuard` terminates and unregisters it however `run` is
//! left), so shutdown never waits for a main future that no cycle can poll.
//!
//! # Shutdown
//!
//! `run` shuts its kernel down when the main future returns; a `Kernel` shuts down when it is
//! dropped, while tasks left after `Kernel::run` returns stay parked for the next `run` or `step`.
//! Shutdown cancels every remaining task, daemon or not, newest first, and runs cycles until each
//! has terminated before cancelling the next; it repeats until no task is left, so tasks spawned by
//! cleanup code are cancelled too.
//! The rules of the cancellation model (`cancel.rs`) hold: a shielded task finishes its shield
//! first (a shield that never ends makes shutdown wait), and a group owner is dropped after its
//! members.
//! Then the kernel closes its remote queue (a late `KernelHandle::spawn` reports the task as
//! cancelled) and drops its extensions, which stops the worker pool.
//!
//! A `Kernel` dropped inside another kernel's task cannot run its tasks (`discard_tasks`): it
//! closes its remote queue, drops its ready queue and wakes every parked task, whose runnable the
//! closed queue refuses and so drops, which drops the future (the header-waker cycle would
//! otherwise keep it alive); then it drops the tasks' task-locals.
//! Their `Drop` code runs with the outer kernel current.
//! Joining a task whose kernel is not the one running on the thread panics with a message that says
//! so, instead of waiting for ever.
//!
//! # Extending the kernel
//!
//! Crates above the kernel add options to `KernelBuilder` through extension traits that store a
//! settings value with `KernelBuilder::extension` (the worker pool's `PoolConfig`); the crate reads
//! it back in the running kernel with `config`.
//! `extension::<T>(init)` gives such a crate one value of type `T` per kernel, created on first use
//! and dropped after all tasks at shutdown (Curio's shutdown callbacks); the worker pool and the
//! signal listeners live there.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use curio_core::{Extensions, Park};
use curio_time::Clock;

use crate::activation::Activation;
use crate::core::{Core, Entry, MainWake, enter, with_core};
use crate::harness::terminate;
use crate::header::{Header, Name};
use crate::remote::{KernelHandle, lock, try_handle};
use crate::scheduler::{MainCtx, cycle, step_cycle};
use crate::sync::AtomicBool;

/// A kernel: the scheduler, its reactor and its clock, on one thread.
///
/// [`run`](Kernel::run) may be called again: tasks left from an earlier run stay parked and
/// continue. Dropping the kernel shuts it down: every remaining task is cancelled, newest first,
/// and dropped; its worker threads are stopped and its descriptors closed.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::Kernel; }
/// let mut kernel = curio::Kernel::new();
/// assert_eq!(kernel.run(async { 1 + 1 }), 2);
/// assert_eq!(kernel.run(async { 3 }), 3);
/// ```
pub struct Kernel {
    core: Rc<Core>,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("id", &self.core.shared.id)
            .field("tasks", &self.core.tasks.borrow().len())
            .finish()
    }
}

/// Options for a [`Kernel`]: its clock, what it parks on, and the settings of the crates that
/// extend it.
///
/// Crates above the kernel add their own options as extension traits on this builder (the
/// worker pool's `max_worker_threads`, for example), which store their settings with
/// [`extension`](Self::extension); the facade re-exports every such trait.
#[derive(Default)]
#[must_use = "a builder does nothing until build is called"]
pub struct KernelBuilder {
    virtual_clock: bool,
    clock: Option<Box<dyn Clock>>,
    park: Option<Box<dyn Park>>,
    extensions: Extensions,
    activations: Vec<Box<dyn Activation>>,
}

impl fmt::Debug for KernelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBuilder")
            .field("virtual_clock", &self.virtual_clock)
            .field("user_clock", &self.clock.is_some())
            .field("user_park", &self.park.is_some())
            .field("extensions", &self.extensions)
            .field("activations", &self.activations.len())
            .finish()
    }
}

impl KernelBuilder {
    /// Runs the kernel on a virtual clock: when every task is blocked, time jumps to the next
    /// deadline, so timer-heavy tests take no wall time.
    pub fn virtual_clock(mut self, on: bool) -> KernelBuilder {
        self.virtual_clock = on;
        self
    }

    /// Runs the kernel on `clock` instead of the real or virtual one: the timers read it, and
    /// the kernel moves it (with [`Clock::jump_to`]) when every task is blocked if it says it is
    /// virtual. Wins over [`virtual_clock`](Self::virtual_clock).
    pub fn clock(mut self, clock: Box<dyn Clock>) -> KernelBuilder {
        self.clock = Some(clock);
        self
    }

    /// Makes the kernel sleep on `park` instead of a new reactor.
    ///
    /// A kernel whose parker is not a reactor has no I/O: creating a socket or any other
    /// resource that needs a reactor fails with an error that says so (it never hangs).
    pub fn park(mut self, park: Box<dyn Park>) -> KernelBuilder {
        self.park = Some(park);
        self
    }

    /// Sets the value of type `T` among the kernel's extension settings (replacing an earlier
    /// one); the crate that owns `T` reads it with [`config`](crate::config) in the running
    /// kernel. This is how crates above the kernel add options to the builder.
    pub fn extension<T: Any + Clone>(mut self, value: T) -> KernelBuilder {
        self.extensions.insert(value);
        self
    }

    /// Installs an activation hook (Curio's `activations=`): see [`Activation`]; the built-ins
    /// are [`schedtrace`](crate::schedtrace), [`logcrash`](crate::logcrash) and
    /// [`longblock`](crate::longblock). Hooks are called in the order they were installed.
    pub fn activation(mut self, hook: impl Activation + 'static) -> KernelBuilder {
        self.activations.push(Box::new(hook));
        self
    }

    /// The extension settings given so far, to change in place.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Builds the kernel.
    ///
    /// # Errors
    ///
    /// When the operating system refuses the reactor's descriptors.
    pub fn try_build(self) -> std::io::Result<Kernel> {
        let park = match self.park {
            Some(p) => p,
            None => Box::new(curio_reactor::Reactor::new()?),
        };
        let clock: Box<dyn Clock> = match self.clock {
            Some(c) => c,
            None if self.virtual_clock => Box::new(curio_time::VirtualClock::new()),
            None => Box::new(curio_time::RealClock),
        };
        Ok(Kernel {
            core: Core::new(park, clock, self.extensions, self.activations),
        })
    }

    /// Builds the kernel.
    ///
    /// # Panics
    ///
    /// When the operating system refuses the reactor's descriptors (see
    /// [`try_build`](Self::try_build)).
    pub fn build(self) -> Kernel {
        self.try_build()
            .expect("curio: cannot create the kernel's reactor")
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

impl Kernel {
    /// A kernel with default options.
    ///
    /// # Panics
    ///
    /// When the operating system refuses the reactor's descriptors.
    pub fn new() -> Kernel {
        Kernel::builder().build()
    }

    /// A builder for a kernel with options.
    pub fn builder() -> KernelBuilder {
        KernelBuilder::default()
    }

    /// A handle for other threads: spawn `Send` futures here, wake the kernel, cancel a task.
    pub fn handle(&self) -> KernelHandle {
        KernelHandle {
            shared: self.core.shared.clone(),
        }
    }

    /// Number of tasks alive in this kernel (not counting a run's main future).
    pub fn task_count(&self) -> usize {
        self.core.tasks.borrow().len()
    }

    /// The kernel's clock (virtual or real).
    pub fn clock(&self) -> std::time::Instant {
        self.core.time.now()
    }

    /// Moves a virtual clock forward by `d` while the kernel is not running (Curio tests block
    /// the loop with `time.sleep` between single steps); timers now expired fire at the next cycle.
    /// A real clock ignores it.
    pub fn advance(&self, d: Duration) {
        self.core.time.advance(d);
    }

    /// Number of live timers.
    pub fn timer_count(&self) -> usize {
        self.core.time.timer_count()
    }

    /// Runs `fut` as the main task until it completes and returns its output.
    ///
    /// Other tasks run while it does; those still alive when it returns stay parked in the
    /// kernel and continue at the next `run` or [`step`](Self::step).
    ///
    /// # Panics
    ///
    /// - if the main task panics (the panic propagates, after the main future is dropped);
    /// - if the main task is cancelled (it has no output to return);
    /// - if a kernel is already running on this thread (calling `run` from a task).
    #[track_caller]
    pub fn run<F: Future>(&mut self, fut: F) -> F::Output {
        let core = self.core.clone();
        let _enter = enter(&core);
        core.activate();
        let run = core.run_counter.get() + 1;
        core.run_counter.set(run);
        let h = core.new_task(Name::Static("main"), false, std::panic::Location::caller());
        // However `run` is left, the main task ends with it: shutdown must never wait for a main
        // future that no cycle can poll any more.
        let _main_guard = MainGuard {
            core: &core,
            header: &h,
        };
        let wake = Arc::new(MainWake {
            shared: core.shared.clone(),
            run,
            queued: AtomicBool::new(true),
        });
        let waker = Waker::from(wake.clone());
        core.ready.borrow_mut().push_back(Entry::Main(run));
        let mut slot = pin!(Some(fut));
        let mut main = Some(MainCtx {
            header: &h,
            slot: slot.as_mut(),
            waker: &waker,
            wake: &wake,
            run,
        });
        loop {
            if let Some(out) = cycle(&core, &mut main) {
                match out {
                    Ok(v) => return v,
                    Err(e) => match e.try_into_panic() {
                        Ok(payload) => resume_unwind(payload),
                        Err(e) => panic!("curio: the main task was cancelled ({e})"),
                    },
                }
            }
        }
    }

    /// Runs one scheduling cycle: polls for I/O without blocking, fires expired timers, and runs
    /// the tasks that were ready when the cycle began (Curio's `kernel.run()` without a
    /// coroutine: single-stepping).
    ///
    /// # Panics
    ///
    /// If a kernel is already running on this thread.
    pub fn step(&mut self) {
        let core = self.core.clone();
        let _enter = enter(&core);
        core.activate();
        let mut none: Option<MainCtx<'_, std::future::Pending<()>>> = None;
        step_cycle(&core, &mut none, true);
    }

    fn shutdown(&mut self) {
        let core = self.core.clone();
        let _enter = enter(&core);
        let mut none: Option<MainCtx<'_, std::future::Pending<()>>> = None;
        loop {
            let mut tasks = core.tasks.borrow().all();
            if tasks.is_empty() {
                break;
            }
            // Newest first, as Curio's shutdown does.
            tasks.sort_by_key(|h| std::cmp::Reverse(h.id));
            for h in tasks {
                if h.is_terminated() {
                    continue;
                }
                h.request_cancel();
                while !h.is_terminated() {
                    cycle(&core, &mut none);
                }
            }
        }
        core.shared.closed.store(true, Ordering::Release);
        core.shared.remote.close();
        // Entries left behind belong to terminated tasks; dropping them drops nothing more.
        core.ready.borrow_mut().clear();
        while let Ok(item) = core.shared.remote.pop() {
            drop(item);
        }
        let exts = std::mem::take(&mut *core.extensions.borrow_mut());
        drop(exts);
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // (A kernel cannot be dropped inside its own `run`, which borrows it.)
        if with_core(|c| c.is_some()) {
            self.discard_tasks();
            return;
        }
        self.shutdown();
    }
}

impl Kernel {
    /// Drops every task without its turn, for a kernel dropped inside another kernel's task,
    /// where it cannot run. With the remote queue closed, a wake hands the task's runnable to a
    /// queue that refuses it, and dropping a runnable drops its future; waking every parked task
    /// so breaks the header-waker cycle that would otherwise keep it alive. Panics in the
    /// dropped futures and task-locals are contained and reported.
    fn discard_tasks(&mut self) {
        let core = self.core.clone();
        core.shared.closed.store(true, Ordering::Release);
        core.shared.remote.close();
        let ready = std::mem::take(&mut *core.ready.borrow_mut());
        drop(ready);
        let tasks = core.tasks.borrow().all();
        for h in &tasks {
            let waker = h.take_waker();
            if let Some(w) = waker {
                w.wake();
            }
        }
        for h in &tasks {
            core.unregister(h);
            h.discard();
        }
        drop(tasks);
        while let Ok(item) = core.shared.remote.pop() {
            drop(item);
        }
    }
}

/// Ends a run's main task however `run` is left (a panic that escaped a poll included).
struct MainGuard<'a> {
    core: &'a Rc<Core>,
    header: &'a Rc<Header>,
}

impl Drop for MainGuard<'_> {
    fn drop(&mut self) {
        if !self.header.is_terminated() {
            terminate(self.header, self.core);
        }
    }
}

/// The running kernel's extension setting of type `T`, as given to
/// [`KernelBuilder::extension`], if any (for crates that extend the kernel, such as the worker
/// pool, which keeps its limits there).
///
/// # Panics
///
/// Outside a curio kernel.
pub fn config<T: Any + Clone>() -> Option<T> {
    with_core(|c| {
        c.expect("curio::config called outside a curio kernel")
            .config
            .get::<T>()
            .cloned()
    })
}

/// The running kernel's instance of `T`, created by `init` on first use and dropped when the
/// kernel is dropped, after all its tasks (Curio's shutdown callbacks). Crates that extend the
/// kernel, such as the worker pool, keep their per-kernel state here.
///
/// # Panics
///
/// Outside a curio kernel.
pub fn extension<T: Any>(init: impl FnOnce() -> T) -> Rc<T> {
    let found = with_core(|c| {
        let c = c.expect("curio::extension called outside a curio kernel");
        c.extensions
            .borrow()
            .iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .map(|(_, v)| v.clone())
    });
    if let Some(v) = found {
        return v
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("keyed by TypeId"));
    }
    let v: Rc<T> = Rc::new(init());
    with_core(|c| {
        if let Some(c) = c {
            c.extensions
                .borrow_mut()
                .push((TypeId::of::<T>(), v.clone() as Rc<dyn Any>));
        }
    });
    v
}

/// Waits, without blocking the kernel, for a thread to finish, and returns its result.
///
/// A thread has no waker to call when it ends, so a small watcher thread joins it and wakes the
/// waiting task; the kernel sleeps meanwhile (a virtual clock does not jump while it waits).
///
/// # Panics
///
/// Outside a curio kernel.
///
/// # Cancel safety
///
/// Dropping the future leaves the thread running, detached; the watcher exits when it does.
pub async fn run_until_thread_done<T: Send + 'static>(
    t: std::thread::JoinHandle<T>,
) -> std::thread::Result<T> {
    struct Done<T> {
        result: Option<std::thread::Result<T>>,
        waker: Option<Waker>,
    }
    let handle = try_handle().expect("run_until_thread_done called outside a curio kernel");
    let work = handle.external_work();
    let done = Arc::new(Mutex::new(Done {
        result: None,
        waker: None,
    }));
    let d2 = done.clone();
    std::thread::Builder::new()
        .name("curio-join-watcher".into())
        .spawn(move || {
            let r = t.join();
            let waker = {
                let mut d = lock(&d2);
                d.result = Some(r);
                d.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            // After the wake, so a virtual clock cannot jump in between.
            drop(work);
        })
        .expect("curio: cannot start a thread to watch a thread");
    std::future::poll_fn(|cx| {
        let mut d = lock(&done);
        match d.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                d.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// Runs `fut` on a new kernel on this thread and returns its output; the kernel is then shut
/// down (every remaining task cancelled, newest first, and dropped).
///
/// # Panics
///
/// If the main task panics (the panic propagates) or is cancelled, or if a kernel is already
/// running on this thread.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; }
/// assert_eq!(curio::run(async { "hello" }), "hello");
/// ```
#[track_caller]
pub fn run<F: Future>(fut: F) -> F::Output {
    Kernel::new().run(fut)
}
