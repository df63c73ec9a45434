//! More than one core: `MultiKernel`, a kernel per core (documented on the type).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crate::error::TaskError;
use crate::kernel::{Kernel, KernelBuilder};
use crate::remote::{KernelHandle, RemoteTask};

/// Options for a [`MultiKernel`].
pub struct MultiKernelBuilder {
    kernels: usize,
    pin: bool,
    configure: Arc<dyn Fn(usize) -> KernelBuilder + Send + Sync>,
}

impl fmt::Debug for MultiKernelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKernelBuilder")
            .field("kernels", &self.kernels)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl MultiKernelBuilder {
    /// How many kernels (threads) to start (default: `std::thread::available_parallelism`).
    pub fn kernels(mut self, n: usize) -> MultiKernelBuilder {
        self.kernels = n.max(1);
        self
    }

    /// Pins kernel `i` to CPU `i` (modulo the CPUs there are): keeps each kernel's caches warm.
    /// Off by default. A failure to pin is ignored (the kernel runs unpinned).
    pub fn pin_cpus(mut self, on: bool) -> MultiKernelBuilder {
        self.pin = on;
        self
    }

    /// Builds each kernel with `configure(index)` (a virtual clock, worker pool sizes, the
    /// monitor, ... as for one kernel); the default is `Kernel::builder()`.
    pub fn configure(
        mut self,
        configure: impl Fn(usize) -> KernelBuilder + Send + Sync + 'static,
    ) -> MultiKernelBuilder {
        self.configure = Arc::new(configure);
        self
    }

    /// Starts the kernels, each on a thread of its own named `curio-kernel-<i>`, idle until
    /// given work.
    ///
    /// # Errors
    ///
    /// When a thread or a kernel's reactor cannot be created (the kernels started so far are
    /// shut down).
    pub fn build(self) -> std::io::Result<MultiKernel> {
        let mut kernels = Vec::with_capacity(self.kernels);
        for index in 0..self.kernels {
            match start_kernel(index, self.pin, self.configure.clone()) {
                Ok(k) => kernels.push(k),
                Err(e) => {
                    let rt = MultiKernel {
                        kernels,
                        next: AtomicUsize::new(0),
                    };
                    rt.stop_all();
                    return Err(e);
                }
            }
        }
        Ok(MultiKernel {
            kernels,
            next: AtomicUsize::new(0),
        })
    }
}

/// A stop signal a kernel's main task waits on: set from any thread, it wakes the task.
#[derive(Default)]
struct Stop {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Stop {
    fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// The future that ends when the stop signal is set.
struct Stopped(Arc<Stop>);

impl Future for Stopped {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if self.0.set.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

struct KernelThread {
    handle: KernelHandle,
    stop: Arc<Stop>,
    /// Spawns sent and not yet created there, for `spawn_least_loaded`.
    queued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn start_kernel(
    index: usize,
    pin: bool,
    configure: Arc<dyn Fn(usize) -> KernelBuilder + Send + Sync>,
) -> std::io::Result<KernelThread> {
    let stop = Arc::new(Stop::default());

    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("curio-kernel-{index}"))
        .spawn(move || {
            if pin {
                pin_to(index);
            }
            let kernel = configure(index).try_build();
            let mut kernel: Kernel = match kernel {
                Ok(k) => k,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(kernel.handle()));
            // The kernel runs until told to stop; then dropping it shuts it down (Curio's order).
            kernel.run(Stopped(s2));
        })?;
    let handle = rx
        .recv()
        .map_err(|_| std::io::Error::other("a kernel thread died while starting"))??;
    Ok(KernelThread {
        handle,
        stop,
        queued: Arc::new(AtomicUsize::new(0)),
        thread: Some(thread),
    })
}

fn pin_to(index: usize) {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|c| allowed.is_set(*c))
        .collect();
    if cpus.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    set.set(cpus[index % cpus.len()]);
    let _ = sched_setaffinity(None, &set);
}

/// More than one core: a kernel per core (thread-per-core, as glommio and monoio do).
///
/// A [`MultiKernel`] starts N kernels on N threads (default: the machine's available
/// parallelism), each with its own reactor and timers. Every kernel runs a copy of a `Send`
/// setup closure that builds its own `!Send` tasks ([`MultiKernel::run`]); other work reaches a
/// kernel through its [`KernelHandle`] ([`spawn_on`](MultiKernel::spawn_on), round robin, or the
/// least loaded kernel). Tasks never move between kernels: state is sharded per kernel, and
/// kernels talk through `curio-sync`'s Universal types (`UniversalQueue` between two kernels is
/// awaited on both sides, so no thread blocks).
///
/// Shutdown is Curio's in every kernel: when `run`'s setups have all returned, or one of them
/// panicked, or [`MultiKernel::shutdown`] is called, each kernel cancels its remaining tasks
/// newest first and its thread ends.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{MultiKernel, current_task}; }
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let served = Arc::new(AtomicUsize::new(0));
/// let s = served.clone();
/// let rt = curio::MultiKernel::builder().kernels(2).build()?;
/// let out = rt.run(move |index| {
///     let s = s.clone();
///     async move {
///         s.fetch_add(1, Ordering::Relaxed);
///         index * 10
///     }
/// })?;
/// assert_eq!(out, [0, 10]);
/// assert_eq!(served.load(Ordering::Relaxed), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MultiKernel {
    kernels: Vec<KernelThread>,
    next: AtomicUsize,
}

impl fmt::Debug for MultiKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKernel")
            .field("kernels", &self.kernels.len())
            .finish()
    }
}

/// A kernel's setup panicked or was cancelled: [`MultiKernel::run`]'s error, after every
/// kernel was shut down.
#[derive(Debug)]
pub struct KernelFailed {
    /// The index of the kernel.
    pub index: usize,
    /// What happened to its setup task.
    pub error: TaskError,
}

impl fmt::Display for KernelFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel {}: {}", self.index, self.error)
    }
}

impl std::error::Error for KernelFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl MultiKernel {
    /// A builder: the number of kernels, CPU pinning, and how each kernel is configured.
    pub fn builder() -> MultiKernelBuilder {
        MultiKernelBuilder {
            kernels: std::thread::available_parallelism().map_or(1, usize::from),
            pin: false,
            configure: Arc::new(|_| Kernel::builder()),
        }
    }

    /// How many kernels there are.
    pub fn len(&self) -> usize {
        self.kernels.len()
    }

    /// Whether there is no kernel (never: a `MultiKernel` has at least one).
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty()
    }

    /// The handle of kernel `index`.
    ///
    /// # Panics
    ///
    /// When `index` is not below [`len`](Self::len).
    pub fn handle(&self, index: usize) -> &KernelHandle {
        &self.kernels[index].handle
    }

    /// Every kernel's handle, in order.
    pub fn handles(&self) -> Vec<KernelHandle> {
        self.kernels.iter().map(|k| k.handle.clone()).collect()
    }

    /// Runs `factory()` as a task on kernel `index`: the factory is `Send` and builds the
    /// future there, so the future (and what it captures after that) need not be.
    ///
    /// # Panics
    ///
    /// When `index` is not below [`len`](Self::len).
    pub fn spawn_on<F, Fut>(&self, index: usize, factory: F) -> RemoteTask<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let kernel = &self.kernels[index];
        // Counted from now, not from when the kernel gets to it, so that spawns in a burst
        // see each other in `spawn_least_loaded`; the kernel's count takes over on creation.
        kernel.queued.fetch_add(1, Ordering::Relaxed);
        let queued = kernel.queued.clone();
        kernel.handle.spawn_with(move || {
            queued.fetch_sub(1, Ordering::Relaxed);
            factory()
        })
    }

    /// As [`spawn_on`](Self::spawn_on), on the kernels in turn.
    pub fn spawn_round_robin<F, Fut>(&self, factory: F) -> RemoteTask<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.kernels.len();
        self.spawn_on(i, factory)
    }

    /// As [`spawn_on`](Self::spawn_on), on the kernel with the fewest live tasks now.
    pub fn spawn_least_loaded<F, Fut>(&self, factory: F) -> RemoteTask<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let i = (0..self.kernels.len())
            .min_by_key(|i| {
                let k = &self.kernels[*i];
                k.handle.live_tasks() + k.queued.load(Ordering::Relaxed)
            })
            .unwrap_or(0);
        self.spawn_on(i, factory)
    }

    /// Runs `setup(index)` on every kernel as a task, waits until all have returned, then shuts
    /// every kernel down and returns their outputs in order. If a setup panics (or is
    /// cancelled), the others are cancelled, every kernel is shut down, and the first failure
    /// is the error.
    ///
    /// # Errors
    ///
    /// [`KernelFailed`] naming the kernel whose setup failed.
    pub fn run<F, Fut>(self, setup: F) -> Result<Vec<Fut::Output>, KernelFailed>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let setup = Arc::new(setup);
        let n = self.kernels.len();
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Fut::Output, TaskError>)>();
        for i in 0..n {
            let (s, tx) = (setup.clone(), tx.clone());
            // Each setup runs as a task of its kernel; its outcome (a panic included) comes back
            // on the channel, in whatever order the kernels finish.
            drop(self.kernels[i].handle.spawn_with(move || async move {
                let outcome = crate::task::spawn(s(i)).join().await;
                let _ = tx.send((i, outcome));
            }));
        }
        drop(tx);
        let mut results: Vec<Option<Fut::Output>> = (0..n).map(|_| None).collect();
        let mut failed = None;
        for _ in 0..n {
            match rx.recv() {
                Ok((i, Ok(v))) => results[i] = Some(v),
                Ok((index, Err(error))) => {
                    // One kernel failed: the others are shut down (their tasks cancelled).
                    failed = Some(KernelFailed { index, error });
                    break;
                }
                // A kernel went away without a word (it was shut down from elsewhere).
                Err(_) => break,
            }
        }
        self.shutdown();
        if let Some(e) = failed {
            return Err(e);
        }
        let mut out = Vec::with_capacity(n);
        for (index, r) in results.into_iter().enumerate() {
            match r {
                Some(v) => out.push(v),
                None => {
                    return Err(KernelFailed {
                        index,
                        error: TaskError::cancelled(crate::id::TaskId::none(), "setup".into()),
                    });
                }
            }
        }
        Ok(out)
    }

    fn stop_all(&self) {
        for k in &self.kernels {
            k.stop.set();
        }
    }

    /// Shuts every kernel down (each cancels its tasks, newest first) and joins their threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop_all();
        for k in &mut self.kernels {
            if let Some(t) = k.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for MultiKernel {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
