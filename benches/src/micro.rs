//! Kernel micro-benchmarks: the same workload on curio-rt, tokio's current-thread runtime (both
//! with `tokio::spawn` and with `LocalSet::spawn_local`) and smol's `LocalExecutor`, in one
//! process, alternating rounds.
//!
//! Every body runs as a spawned task of its runtime, never as the `block_on` or main future.
//! Single-threaded bodies run pinned to CPU 1; bodies with more than one thread run unpinned
//! (threads inherit the affinity of the thread that spawns them), with a pinned row beside the
//! headline one where it tells something.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::stats::{Result, Series, Target};

/// A row's runtimes: a series name and a body that runs `n` operations and returns ns per
/// operation.
pub(crate) type Bodies<'a> = &'a [(&'static str, fn(usize) -> f64)];

/// Runs `bodies` in alternating rounds, unpinned (for rows that cross threads or processes),
/// and makes row `name` of them, with the two tokio flavours merged into the faster one.
pub(crate) fn alternate(
    name: &str,
    bodies: Bodies<'_>,
    rounds: usize,
    n: usize,
    target: Option<Target>,
) -> Result {
    crate::echo::unpin();
    let mut series: Vec<Series> = bodies
        .iter()
        .map(|(r, _)| Series {
            runtime: r,
            values: Vec::new(),
        })
        .collect();
    for _ in 0..rounds {
        for (s, (_, body)) in series.iter_mut().zip(bodies) {
            s.values.push(body(n));
        }
    }
    crate::echo::pin(1);
    eprintln!("{name}: done");
    let mut r = Result {
        name: name.to_owned(),
        unit: "ns/op",
        lower_is_better: true,
        series,
        target,
    };
    merge_tokio(&mut r);
    r
}

/// The runtimes of the micro-benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rt {
    Curio,
    /// tokio's `current_thread` runtime, bodies and their tasks spawned with `tokio::spawn`.
    TokioSpawn,
    /// tokio's `current_thread` runtime, bodies and their tasks spawned on a `LocalSet`.
    TokioLocal,
    Smol,
}

/// The raw series names of the two tokio flavours; [`merge_tokio`] keeps the faster one.
pub(crate) const TOKIO_SPAWN: &str = "tokio-spawn";
pub(crate) const TOKIO_LOCAL: &str = "tokio-local";

impl Rt {
    pub(crate) const ALL: [Rt; 4] = [Rt::Curio, Rt::TokioSpawn, Rt::TokioLocal, Rt::Smol];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Rt::Curio => "curio-rt",
            Rt::TokioSpawn => TOKIO_SPAWN,
            Rt::TokioLocal => TOKIO_LOCAL,
            Rt::Smol => "smol",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Rt> {
        Rt::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Replaces the two tokio series by the faster one (by median), labelled with how it spawns:
/// `tokio-ct (spawn)` or `tokio-ct (LocalSet)`.
pub(crate) fn merge_tokio(r: &mut Result) {
    let spawn = r.series.iter().position(|s| s.runtime == TOKIO_SPAWN);
    let local = r.series.iter().position(|s| s.runtime == TOKIO_LOCAL);
    let (Some(a), Some(b)) = (spawn, local) else {
        return;
    };
    let (ma, mb) = (r.series[a].median(), r.series[b].median());
    let a_better = if r.lower_is_better {
        ma <= mb
    } else {
        ma >= mb
    } || mb.is_nan();
    let (keep, drop, label) = if a_better {
        (a, b, "tokio-ct (spawn)")
    } else {
        (b, a, "tokio-ct (LocalSet)")
    };
    r.series[keep].runtime = label;
    r.series.remove(drop);
}

/// Where the threads of a benchmark may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Every thread on CPU 1.
    Pinned,
    /// Threads free on every CPU.
    Unpinned,
}

fn place(p: Place) {
    match p {
        Place::Pinned => crate::echo::pin(1),
        Place::Unpinned => crate::echo::unpin(),
    }
}

fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `fut` as a spawned task of a new curio kernel.
pub(crate) fn run_curio<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    curio::run(async move { curio::spawn(fut).join().await.expect("body") })
}

/// Runs `fut` as a `tokio::spawn`ed task of a new `current_thread` runtime.
pub(crate) fn run_tokio_spawn<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    tokio_ct().block_on(async move { tokio::spawn(fut).await.expect("body") })
}

/// Runs `fut` as a task of a `LocalSet` on a new `current_thread` runtime.
pub(crate) fn run_tokio_local<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    let local = tokio::task::LocalSet::new();
    let h = local.spawn_local(fut);
    local.block_on(&tokio_ct(), h).expect("body")
}

/// Runs `fut` as a task of a new smol `LocalExecutor`.
pub(crate) fn run_smol<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    let ex = Rc::new(smol::LocalExecutor::new());
    EX.with(|e| *e.borrow_mut() = Some(ex.clone()));
    let task = ex.spawn(fut);
    let out = smol::block_on(ex.run(task));
    EX.with(|e| e.borrow_mut().take());
    out
}

thread_local! {
    static EX: std::cell::RefCell<Option<Rc<smol::LocalExecutor<'static>>>> =
        const { std::cell::RefCell::new(None) };
}

/// The operations the generic bodies use, one module per runtime with that runtime's bounds:
/// `tokio::spawn` needs `Send` futures, the others do not.
mod rt_curio {
    use super::*;
    pub(super) fn spawn<F: Future + 'static>(fut: F) -> curio::Task<F::Output> {
        curio::spawn(fut)
    }
    pub(super) async fn join<T: 'static>(h: curio::Task<T>) -> T {
        h.join().await.expect("task")
    }
    pub(super) async fn yield_now() {
        curio::yield_now().await;
    }
    pub(super) async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
        curio::timeout_after(d, fut).await.ok()
    }
    pub(super) async fn sleep(d: Duration) {
        curio::sleep(d).await;
    }
}

macro_rules! tokio_rt {
    ($m:ident, $spawn:path) => {
        mod $m {
            use super::*;
            pub(super) fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
            where
                F: Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $spawn(fut)
            }
            pub(super) async fn join<T>(h: tokio::task::JoinHandle<T>) -> T {
                h.await.expect("task")
            }
            pub(super) async fn yield_now() {
                tokio::task::yield_now().await;
            }
            pub(super) async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
                tokio::time::timeout(d, fut).await.ok()
            }
            pub(super) async fn sleep(d: Duration) {
                tokio::time::sleep(d).await;
            }
        }
    };
}

tokio_rt!(rt_tokio_spawn, tokio::spawn);
tokio_rt!(rt_tokio_local, tokio::task::spawn_local);

mod rt_smol {
    use super::*;
    pub(super) fn spawn<F: Future + 'static>(fut: F) -> smol::Task<F::Output> {
        EX.with(|e| e.borrow().as_ref().expect("smol executor").spawn(fut))
    }
    pub(super) async fn join<T>(h: smol::Task<T>) -> T {
        h.await
    }
    pub(super) async fn yield_now() {
        smol::future::yield_now().await;
    }
    pub(super) async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
        use smol::future::FutureExt;
        async { Some(fut.await) }
            .or(async {
                smol::Timer::after(d).await;
                None
            })
            .await
    }
    pub(super) async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
}

/// Runs a body of [`generic_bodies!`] on `rt`, as a spawned task: `on!(rt, |b| b::yields(n))`.
macro_rules! on {
    ($rt:expr, |$b:ident| $body:expr) => {
        match $rt {
            Rt::Curio => {
                use crate::micro::on_curio as $b;
                run_curio($body)
            }
            Rt::TokioSpawn => {
                use crate::micro::on_tokio_spawn as $b;
                run_tokio_spawn($body)
            }
            Rt::TokioLocal => {
                use crate::micro::on_tokio_local as $b;
                run_tokio_local($body)
            }
            Rt::Smol => {
                use crate::micro::on_smol as $b;
                run_smol($body)
            }
        }
    };
}

/// Nanoseconds per operation since `start`.
pub(crate) fn per_op(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

/// A future that returns `Pending` once (waking itself), then completes.
struct PendOnce(bool);

impl Future for PendOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

/// The bodies written once for every runtime, expanded once per runtime so each expansion is
/// checked against that runtime's bounds (a body under `tokio::spawn` must be `Send`).
macro_rules! generic_bodies {
    ($m:ident, $rt:ident) => {
        mod $m {
            use super::$rt as r;
            use super::*;

            pub(super) async fn spawn_join(n: usize) -> f64 {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n).map(|i| r::spawn(async move { i })).collect();
                let mut sum = 0;
                for t in tasks {
                    sum += r::join(t).await;
                }
                assert_eq!(sum, n * (n - 1) / 2);
                per_op(start, n)
            }

            pub(super) async fn yields(n: usize) -> f64 {
                let start = Instant::now();
                let a = r::spawn(async move {
                    for _ in 0..n / 2 {
                        r::yield_now().await;
                    }
                });
                let b = r::spawn(async move {
                    for _ in 0..n / 2 {
                        r::yield_now().await;
                    }
                });
                r::join(a).await;
                r::join(b).await;
                per_op(start, n)
            }

            pub(super) async fn timeout_ready(n: usize) -> f64 {
                let start = Instant::now();
                for i in 0..n {
                    let r = r::timeout(Duration::from_secs(1), std::future::ready(i)).await;
                    assert_eq!(r, Some(i));
                }
                per_op(start, n)
            }

            pub(super) async fn timeout_pending(n: usize) -> f64 {
                let start = Instant::now();
                for _ in 0..n {
                    assert!(
                        r::timeout(Duration::from_secs(1), PendOnce(false))
                            .await
                            .is_some()
                    );
                }
                per_op(start, n)
            }

            pub(super) async fn sleep_churn(n: usize) -> f64 {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|i| {
                        r::spawn(async move {
                            let mut x = i as u64 * 2_654_435_761 + 1;
                            for _ in 0..5 {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                r::sleep(Duration::from_micros(x % 10_000)).await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    r::join(t).await;
                }
                per_op(start, n * 5)
            }

            pub(super) async fn idle_body(n: usize) -> f64 {
                {
                    // Warm the allocator and the runtime's queues first.
                    let warm: Vec<_> = (0..1000)
                        .map(|_| r::spawn(std::future::pending::<()>()))
                        .collect();
                    r::yield_now().await;
                    let before = rss_bytes();
                    let idle: Vec<_> = (0..n)
                        .map(|_| r::spawn(std::future::pending::<()>()))
                        .collect();
                    // Let every task run once and park.
                    r::yield_now().await;
                    r::yield_now().await;
                    let after = rss_bytes();
                    let per = (after.saturating_sub(before)) as f64 / n as f64;
                    // The handles stay alive until here; the process exits without tearing them down.
                    std::mem::forget(idle);
                    std::mem::forget(warm);
                    per
                }
            }
        }
    };
}

generic_bodies!(on_curio, rt_curio);
generic_bodies!(on_tokio_spawn, rt_tokio_spawn);
generic_bodies!(on_tokio_local, rt_tokio_local);
generic_bodies!(on_smol, rt_smol);

/// Spawns `fut` on the current tokio runtime, on its `LocalSet` if `local`.
fn tspawn<F>(local: bool, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if local {
        tokio::task::spawn_local(fut)
    } else {
        tokio::spawn(fut)
    }
}

fn queue_ping_pong(rt: Rt, n: usize) -> f64 {
    async fn curio_body(n: usize) -> f64 {
        let start = Instant::now();
        let (a, b) = (
            Rc::new(curio::queue::Queue::new(1)),
            Rc::new(curio::queue::Queue::new(1)),
        );
        let (a2, b2) = (a.clone(), b.clone());
        let echo = curio::spawn(async move {
            for _ in 0..n {
                let x: usize = a2.get().await.unwrap();
                b2.put(x).await.unwrap();
            }
        });
        for i in 0..n {
            a.put(i).await.unwrap();
            assert_eq!(b.get().await.unwrap(), i);
        }
        echo.join().await.expect("echo");
        per_op(start, n)
    }
    async fn tokio_body(local: bool, n: usize) -> f64 {
        let start = Instant::now();
        let (atx, mut arx) = tokio::sync::mpsc::channel::<usize>(1);
        let (btx, mut brx) = tokio::sync::mpsc::channel::<usize>(1);
        let echo = tspawn(local, async move {
            for _ in 0..n {
                let x = arx.recv().await.expect("item");
                btx.send(x).await.expect("send");
            }
        });
        for i in 0..n {
            atx.send(i).await.expect("send");
            assert_eq!(brx.recv().await, Some(i));
        }
        echo.await.expect("echo");
        per_op(start, n)
    }
    async fn smol_body(n: usize) -> f64 {
        let start = Instant::now();
        let (atx, arx) = smol::channel::bounded::<usize>(1);
        let (btx, brx) = smol::channel::bounded::<usize>(1);
        let echo = rt_smol::spawn(async move {
            for _ in 0..n {
                let x = arx.recv().await.expect("item");
                btx.send(x).await.expect("send");
            }
        });
        for i in 0..n {
            atx.send(i).await.expect("send");
            assert_eq!(brx.recv().await.ok(), Some(i));
        }
        echo.await;
        per_op(start, n)
    }
    match rt {
        Rt::Curio => run_curio(curio_body(n)),
        Rt::TokioSpawn => run_tokio_spawn(tokio_body(false, n)),
        Rt::TokioLocal => run_tokio_local(tokio_body(true, n)),
        Rt::Smol => run_smol(smol_body(n)),
    }
}

fn lock_handoff(rt: Rt, tasks: usize, per_task: usize) -> f64 {
    async fn curio_body(tasks: usize, per_task: usize) -> f64 {
        let start = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        let lock = Rc::new(curio::sync::Lock::new());
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (lock, count) = (lock.clone(), count.clone());
                curio::spawn(async move {
                    for _ in 0..per_task {
                        let _g = lock.lock().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        curio::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().await.expect("task");
        }
        assert_eq!(count.load(Ordering::Relaxed), tasks * per_task);
        per_op(start, tasks * per_task)
    }
    async fn tokio_body(local: bool, tasks: usize, per_task: usize) -> f64 {
        let start = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (lock, count) = (lock.clone(), count.clone());
                tspawn(local, async move {
                    for _ in 0..per_task {
                        let _g = lock.lock().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        assert_eq!(count.load(Ordering::Relaxed), tasks * per_task);
        per_op(start, tasks * per_task)
    }
    async fn smol_body(tasks: usize, per_task: usize) -> f64 {
        let start = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        let lock = Arc::new(smol::lock::Mutex::new(()));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (lock, count) = (lock.clone(), count.clone());
                rt_smol::spawn(async move {
                    for _ in 0..per_task {
                        let _g = lock.lock().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        rt_smol::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await;
        }
        assert_eq!(count.load(Ordering::Relaxed), tasks * per_task);
        per_op(start, tasks * per_task)
    }
    match rt {
        Rt::Curio => run_curio(curio_body(tasks, per_task)),
        Rt::TokioSpawn => run_tokio_spawn(tokio_body(false, tasks, per_task)),
        Rt::TokioLocal => run_tokio_local(tokio_body(true, tasks, per_task)),
        Rt::Smol => run_smol(smol_body(tasks, per_task)),
    }
}

/// Bounded capacity of the cross-thread queues.
const CAP: usize = 1024;

/// A plain thread puts `n` items, a task gets them.
fn universal_queue(rt: Rt, n: usize) -> f64 {
    async fn curio_body(n: usize) -> f64 {
        let start = Instant::now();
        let q = curio::queue::UniversalQueue::new(CAP);
        let q2 = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                q2.put_blocking(i).unwrap();
            }
        });
        let mut sum = 0usize;
        for _ in 0..n {
            sum += q.get().await.unwrap();
        }
        producer.join().expect("producer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn tokio_body(n: usize) -> f64 {
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(CAP);
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                tx.blocking_send(i).expect("send");
            }
        });
        let mut sum = 0usize;
        for _ in 0..n {
            sum += rx.recv().await.expect("item");
        }
        producer.join().expect("producer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn smol_body(n: usize) -> f64 {
        let start = Instant::now();
        let (tx, rx) = smol::channel::bounded::<usize>(CAP);
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                tx.send_blocking(i).expect("send");
            }
        });
        let mut sum = 0usize;
        for _ in 0..n {
            sum += rx.recv().await.expect("item");
        }
        producer.join().expect("producer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    match rt {
        Rt::Curio => run_curio(curio_body(n)),
        Rt::TokioSpawn => run_tokio_spawn(tokio_body(n)),
        Rt::TokioLocal => run_tokio_local(tokio_body(n)),
        Rt::Smol => run_smol(smol_body(n)),
    }
}

/// A task puts `n` items, a plain thread gets them.
fn universal_queue_rev(rt: Rt, n: usize) -> f64 {
    async fn curio_body(n: usize) -> f64 {
        let start = Instant::now();
        let q = curio::queue::UniversalQueue::new(CAP);
        let q2 = q.clone();
        let consumer =
            std::thread::spawn(move || (0..n).map(|_| q2.get_blocking().unwrap()).sum::<usize>());
        for i in 0..n {
            q.put(i).await.unwrap();
        }
        let sum = consumer.join().expect("consumer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn tokio_body(n: usize) -> f64 {
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(CAP);
        let consumer = std::thread::spawn(move || {
            (0..n)
                .map(|_| rx.blocking_recv().expect("item"))
                .sum::<usize>()
        });
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
        let sum = consumer.join().expect("consumer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn smol_body(n: usize) -> f64 {
        let start = Instant::now();
        let (tx, rx) = smol::channel::bounded::<usize>(CAP);
        let consumer = std::thread::spawn(move || {
            (0..n)
                .map(|_| rx.recv_blocking().expect("item"))
                .sum::<usize>()
        });
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
        let sum = consumer.join().expect("consumer");
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    match rt {
        Rt::Curio => run_curio(curio_body(n)),
        Rt::TokioSpawn => run_tokio_spawn(tokio_body(n)),
        Rt::TokioLocal => run_tokio_local(tokio_body(n)),
        Rt::Smol => run_smol(smol_body(n)),
    }
}

/// A task of a runtime on this thread puts `n` items, a task of a runtime of the same kind on
/// another thread gets them.
fn kernel_to_kernel(rt: Rt, n: usize) -> f64 {
    async fn curio_put(q: curio::queue::UniversalQueue<usize>, n: usize) {
        for i in 0..n {
            q.put(i).await.unwrap();
        }
    }
    async fn curio_get(q: curio::queue::UniversalQueue<usize>, n: usize) -> usize {
        let mut sum = 0;
        for _ in 0..n {
            sum += q.get().await.unwrap();
        }
        sum
    }
    async fn tokio_put(tx: tokio::sync::mpsc::Sender<usize>, n: usize) {
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
    }
    async fn tokio_get(mut rx: tokio::sync::mpsc::Receiver<usize>, n: usize) -> usize {
        let mut sum = 0;
        for _ in 0..n {
            sum += rx.recv().await.expect("item");
        }
        sum
    }
    async fn smol_put(tx: smol::channel::Sender<usize>, n: usize) {
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
    }
    async fn smol_get(rx: smol::channel::Receiver<usize>, n: usize) -> usize {
        let mut sum = 0;
        for _ in 0..n {
            sum += rx.recv().await.expect("item");
        }
        sum
    }
    let start = Instant::now();
    let sum = match rt {
        Rt::Curio => {
            let q = curio::queue::UniversalQueue::new(CAP);
            let q2 = q.clone();
            let consumer = std::thread::spawn(move || run_curio(curio_get(q2, n)));
            run_curio(curio_put(q, n));
            consumer.join().expect("consumer")
        }
        Rt::TokioSpawn => {
            let (tx, rx) = tokio::sync::mpsc::channel(CAP);
            let consumer = std::thread::spawn(move || run_tokio_spawn(tokio_get(rx, n)));
            run_tokio_spawn(tokio_put(tx, n));
            consumer.join().expect("consumer")
        }
        Rt::TokioLocal => {
            let (tx, rx) = tokio::sync::mpsc::channel(CAP);
            let consumer = std::thread::spawn(move || run_tokio_local(tokio_get(rx, n)));
            run_tokio_local(tokio_put(tx, n));
            consumer.join().expect("consumer")
        }
        Rt::Smol => {
            let (tx, rx) = smol::channel::bounded(CAP);
            let consumer = std::thread::spawn(move || run_smol(smol_get(rx, n)));
            run_smol(smol_put(tx, n));
            consumer.join().expect("consumer")
        }
    };
    assert_eq!(sum, n * (n - 1) / 2);
    per_op(start, n)
}

/// A plain thread spawns a trivial future on a runtime running on another thread and waits for
/// its output, `n` times.
fn remote_spawn(rt: Rt, n: usize) -> f64 {
    match rt {
        Rt::Curio => {
            let stop = curio::sync::UniversalEvent::new();
            let stop2 = stop.clone();
            let (htx, hrx) = std::sync::mpsc::channel();
            let kernel = std::thread::spawn(move || {
                let mut k = curio::Kernel::new();
                htx.send(k.handle()).expect("handle");
                k.run(async move { stop2.wait().await });
            });
            let h = hrx.recv().expect("handle");
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                sum += h.spawn(async move { i }).join_blocking().expect("task");
            }
            let t = per_op(start, n);
            stop.set();
            kernel.join().expect("kernel");
            assert_eq!(sum, n * (n - 1) / 2);
            t
        }
        Rt::TokioSpawn | Rt::TokioLocal => {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let (htx, hrx) = std::sync::mpsc::channel();
            let kernel = std::thread::spawn(move || {
                let r = tokio_ct();
                htx.send(r.handle().clone()).expect("handle");
                let _ = r.block_on(stopped);
            });
            let h: tokio::runtime::Handle = hrx.recv().expect("handle");
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                sum += h.block_on(h.spawn(async move { i })).expect("task");
            }
            let t = per_op(start, n);
            let _ = stop.send(());
            kernel.join().expect("kernel");
            assert_eq!(sum, n * (n - 1) / 2);
            t
        }
        Rt::Smol => {
            let ex = Arc::new(smol::Executor::new());
            let (stop, stopped) = smol::channel::bounded::<()>(1);
            let ex2 = ex.clone();
            let (htx, hrx) = std::sync::mpsc::channel();
            let kernel = std::thread::spawn(move || {
                htx.send(()).expect("ready");
                let _ = smol::block_on(ex2.run(stopped.recv()));
            });
            hrx.recv().expect("ready");
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                sum += smol::future::block_on(ex.spawn(async move { i }));
            }
            let t = per_op(start, n);
            let _ = stop.send_blocking(());
            kernel.join().expect("kernel");
            assert_eq!(sum, n * (n - 1) / 2);
            t
        }
    }
}

fn run_in_thread(rt: Rt, n: usize) -> f64 {
    async fn curio_body(n: usize) -> f64 {
        let start = Instant::now();
        let mut sum = 0usize;
        for i in 0..n {
            sum += curio::run_in_thread(move || i).await;
        }
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn tokio_body(n: usize) -> f64 {
        let start = Instant::now();
        let mut sum = 0usize;
        for i in 0..n {
            sum += tokio::task::spawn_blocking(move || i).await.expect("job");
        }
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    async fn smol_body(n: usize) -> f64 {
        let start = Instant::now();
        let mut sum = 0usize;
        for i in 0..n {
            sum += smol::unblock(move || i).await;
        }
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    }
    match rt {
        Rt::Curio => run_curio(curio_body(n)),
        Rt::TokioSpawn => run_tokio_spawn(tokio_body(n)),
        Rt::TokioLocal => run_tokio_local(tokio_body(n)),
        Rt::Smol => run_smol(smol_body(n)),
    }
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes of resident memory per idle task: run in a child process per runtime (`memory` command).
pub(crate) fn idle_task_memory(rt: Rt, n: usize) -> f64 {
    on!(rt, |b| b::idle_body(n))
}

/// Sizes of the micro-benchmarks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) rounds: usize,
    pub(crate) scale: usize,
}

/// Runs every micro-benchmark whose name `wanted` accepts on every runtime, alternating, and
/// returns their results.
pub(crate) fn run_all(sizes: Sizes, wanted: &dyn Fn(&str) -> bool) -> Vec<Result> {
    let s = sizes.scale;
    let sized = move |n: usize| n * s / 10;
    type Bench = Box<dyn Fn(Rt) -> f64>;
    let best = |bound| Some(Target::best_of(&["tokio-ct", "smol"], bound));
    let tokio = |bound| Some(Target::of("tokio-ct", bound));
    let benches: Vec<(&str, Place, Option<Target>, Bench)> = vec![
        (
            "spawn_join",
            Place::Pinned,
            tokio(0.5),
            Box::new(move |rt| on!(rt, |b| b::spawn_join(sized(100_000)))),
        ),
        (
            "yield",
            Place::Pinned,
            None,
            Box::new(move |rt| on!(rt, |b| b::yields(sized(2_000_000)))),
        ),
        (
            "timeout_ready",
            Place::Pinned,
            tokio(0.3),
            Box::new(move |rt| on!(rt, |b| b::timeout_ready(sized(1_000_000)))),
        ),
        (
            "timeout_pending",
            Place::Pinned,
            None,
            Box::new(move |rt| on!(rt, |b| b::timeout_pending(sized(1_000_000)))),
        ),
        (
            "sleep_churn",
            Place::Pinned,
            None,
            Box::new(move |rt| on!(rt, |b| b::sleep_churn(sized(100_000)))),
        ),
        (
            "queue_ping_pong",
            Place::Pinned,
            tokio(0.5),
            Box::new(move |rt| queue_ping_pong(rt, sized(1_000_000))),
        ),
        (
            "lock_handoff",
            Place::Pinned,
            tokio(0.5),
            Box::new(move |rt| lock_handoff(rt, 100, sized(10_000))),
        ),
        (
            "universal_queue",
            Place::Unpinned,
            best(1.0),
            Box::new(move |rt| universal_queue(rt, sized(1_000_000))),
        ),
        (
            "universal_queue pinned",
            Place::Pinned,
            None,
            Box::new(move |rt| universal_queue(rt, sized(1_000_000))),
        ),
        (
            "universal_queue_rev",
            Place::Unpinned,
            best(1.0),
            Box::new(move |rt| universal_queue_rev(rt, sized(1_000_000))),
        ),
        (
            "kernel_to_kernel",
            Place::Unpinned,
            tokio(1.0),
            Box::new(move |rt| kernel_to_kernel(rt, sized(1_000_000))),
        ),
        (
            "remote_spawn",
            Place::Unpinned,
            tokio(1.0),
            Box::new(move |rt| remote_spawn(rt, sized(20_000))),
        ),
        (
            "run_in_thread",
            Place::Unpinned,
            tokio(0.8),
            Box::new(move |rt| run_in_thread(rt, sized(100_000))),
        ),
    ];
    let mut results = Vec::new();
    for (name, placement, target, bench) in benches {
        if !wanted(name) {
            continue;
        }
        place(placement);
        let mut series: Vec<Series> = Rt::ALL
            .iter()
            .map(|r| Series {
                runtime: r.name(),
                values: Vec::new(),
            })
            .collect();
        // For focused runs: `CURIO_BENCH_RT=curio-rt,tokio-spawn` keeps those runtimes.
        let only_rt = std::env::var("CURIO_BENCH_RT").ok();
        for _ in 0..sizes.rounds {
            for (i, rt) in Rt::ALL.into_iter().enumerate() {
                if only_rt
                    .as_deref()
                    .is_none_or(|o| o.split(',').any(|r| r == rt.name()))
                {
                    series[i].values.push(bench(rt));
                }
            }
        }
        let mut r = Result {
            name: name.to_owned(),
            unit: "ns/op",
            lower_is_better: true,
            series,
            target,
        };
        merge_tokio(&mut r);
        eprintln!("{name}: done");
        results.push(r);
    }
    place(Place::Pinned);
    results
}
