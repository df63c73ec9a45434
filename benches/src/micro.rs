//! Kernel micro-benchmarks: the same workload on curio-rt, tokio's current-thread runtime and
//! smol's `LocalExecutor`, in one process, alternating rounds.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::stats::{Result, Series};

/// The runtimes of the micro-benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rt {
    Curio,
    TokioCt,
    Smol,
}

impl Rt {
    pub(crate) const ALL: [Rt; 3] = [Rt::Curio, Rt::TokioCt, Rt::Smol];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Rt::Curio => "curio-rt",
            Rt::TokioCt => "tokio-ct",
            Rt::Smol => "smol",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Rt> {
        Rt::ALL.into_iter().find(|r| r.name() == s)
    }
}

fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `f`'s future on `rt` and returns the nanoseconds per operation it reports.
fn on<F, Fut>(rt: Rt, f: F) -> f64
where
    F: FnOnce(Rt) -> Fut,
    Fut: Future<Output = f64>,
{
    match rt {
        Rt::Curio => curio::run(f(rt)),
        Rt::TokioCt => {
            let r = tokio_ct();
            let local = tokio::task::LocalSet::new();
            local.block_on(&r, f(rt))
        }
        Rt::Smol => {
            let ex = Rc::new(smol::LocalExecutor::new());
            EX.with(|e| *e.borrow_mut() = Some(ex.clone()));
            let out = smol::block_on(ex.run(f(rt)));
            EX.with(|e| e.borrow_mut().take());
            out
        }
    }
}

thread_local! {
    static EX: std::cell::RefCell<Option<Rc<smol::LocalExecutor<'static>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A spawned task of any of the runtimes, joined with `join`.
enum Handle<T> {
    Curio(curio::Task<T>),
    Tokio(tokio::task::JoinHandle<T>),
    Smol(smol::Task<T>),
}

impl<T: 'static> Handle<T> {
    async fn join(self) -> T {
        match self {
            Handle::Curio(t) => t.join().await.expect("task"),
            Handle::Tokio(t) => t.await.expect("task"),
            Handle::Smol(t) => t.await,
        }
    }
}

fn spawn<F: Future + 'static>(rt: Rt, fut: F) -> Handle<F::Output> {
    match rt {
        Rt::Curio => Handle::Curio(curio::spawn(fut)),
        Rt::TokioCt => Handle::Tokio(tokio::task::spawn_local(fut)),
        Rt::Smol => {
            Handle::Smol(EX.with(|e| e.borrow().as_ref().expect("smol executor").spawn(fut)))
        }
    }
}

async fn yield_now(rt: Rt) {
    match rt {
        Rt::Curio => curio::yield_now().await,
        Rt::TokioCt => tokio::task::yield_now().await,
        Rt::Smol => smol::future::yield_now().await,
    }
}

fn per_op(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

async fn spawn_join(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n).map(|i| spawn(rt, async move { i })).collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.join().await;
    }
    assert_eq!(sum, n * (n - 1) / 2);
    per_op(start, n)
}

async fn yields(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    let a = spawn(rt, async move {
        for _ in 0..n / 2 {
            yield_now(rt).await;
        }
    });
    let b = spawn(rt, async move {
        for _ in 0..n / 2 {
            yield_now(rt).await;
        }
    });
    a.join().await;
    b.join().await;
    per_op(start, n)
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

async fn with_timeout<F: Future>(rt: Rt, fut: F) -> Option<F::Output> {
    let d = Duration::from_secs(1);
    match rt {
        Rt::Curio => curio::timeout_after(d, fut).await.ok(),
        Rt::TokioCt => tokio::time::timeout(d, fut).await.ok(),
        Rt::Smol => {
            use smol::future::FutureExt;
            async { Some(fut.await) }
                .or(async {
                    smol::Timer::after(d).await;
                    None
                })
                .await
        }
    }
}

async fn timeout_ready(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let r = with_timeout(rt, std::future::ready(i)).await;
        assert_eq!(r, Some(i));
    }
    per_op(start, n)
}

async fn timeout_pending(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        assert!(with_timeout(rt, PendOnce(false)).await.is_some());
    }
    per_op(start, n)
}

async fn sleep(rt: Rt, d: Duration) {
    match rt {
        Rt::Curio => curio::sleep(d).await,
        Rt::TokioCt => tokio::time::sleep(d).await,
        Rt::Smol => {
            smol::Timer::after(d).await;
        }
    }
}

async fn sleep_churn(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            spawn(rt, async move {
                let mut x = i as u64 * 2_654_435_761 + 1;
                for _ in 0..5 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    sleep(rt, Duration::from_micros(x % 10_000)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.join().await;
    }
    per_op(start, n * 5)
}

async fn queue_ping_pong(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    match rt {
        Rt::Curio => {
            let (a, b) = (
                Rc::new(curio::queue::Queue::new(1)),
                Rc::new(curio::queue::Queue::new(1)),
            );
            let (a2, b2) = (a.clone(), b.clone());
            let echo = spawn(rt, async move {
                for _ in 0..n {
                    let x: usize = a2.get().await;
                    b2.put(x).await;
                }
            });
            for i in 0..n {
                a.put(i).await;
                assert_eq!(b.get().await, i);
            }
            echo.join().await;
        }
        Rt::TokioCt => {
            let (atx, mut arx) = tokio::sync::mpsc::channel::<usize>(1);
            let (btx, mut brx) = tokio::sync::mpsc::channel::<usize>(1);
            let echo = spawn(rt, async move {
                for _ in 0..n {
                    let x = arx.recv().await.expect("item");
                    btx.send(x).await.expect("send");
                }
            });
            for i in 0..n {
                atx.send(i).await.expect("send");
                assert_eq!(brx.recv().await, Some(i));
            }
            echo.join().await;
        }
        Rt::Smol => {
            let (atx, arx) = smol::channel::bounded::<usize>(1);
            let (btx, brx) = smol::channel::bounded::<usize>(1);
            let echo = spawn(rt, async move {
                for _ in 0..n {
                    let x = arx.recv().await.expect("item");
                    btx.send(x).await.expect("send");
                }
            });
            for i in 0..n {
                atx.send(i).await.expect("send");
                assert_eq!(brx.recv().await.ok(), Some(i));
            }
            echo.join().await;
        }
    }
    per_op(start, n)
}

async fn lock_handoff(rt: Rt, tasks: usize, per_task: usize) -> f64 {
    let start = Instant::now();
    let count = Rc::new(Cell::new(0usize));
    let handles: Vec<_> = match rt {
        Rt::Curio => {
            let lock = Rc::new(curio::sync::Lock::new());
            (0..tasks)
                .map(|_| {
                    let (lock, count) = (lock.clone(), count.clone());
                    spawn(rt, async move {
                        for _ in 0..per_task {
                            let _g = lock.lock().await;
                            count.set(count.get() + 1);
                            yield_now(rt).await;
                        }
                    })
                })
                .collect()
        }
        Rt::TokioCt => {
            let lock = Rc::new(tokio::sync::Mutex::new(()));
            (0..tasks)
                .map(|_| {
                    let (lock, count) = (lock.clone(), count.clone());
                    spawn(rt, async move {
                        for _ in 0..per_task {
                            let _g = lock.lock().await;
                            count.set(count.get() + 1);
                            yield_now(rt).await;
                        }
                    })
                })
                .collect()
        }
        Rt::Smol => {
            let lock = Rc::new(smol::lock::Mutex::new(()));
            (0..tasks)
                .map(|_| {
                    let (lock, count) = (lock.clone(), count.clone());
                    spawn(rt, async move {
                        for _ in 0..per_task {
                            let _g = lock.lock().await;
                            count.set(count.get() + 1);
                            yield_now(rt).await;
                        }
                    })
                })
                .collect()
        }
    };
    for h in handles {
        h.join().await;
    }
    assert_eq!(count.get(), tasks * per_task);
    per_op(start, tasks * per_task)
}

async fn universal_queue(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    let mut sum = 0usize;
    match rt {
        Rt::Curio => {
            let q = curio::queue::UniversalQueue::new(1024);
            let q2 = q.clone();
            let producer = std::thread::spawn(move || {
                for i in 0..n {
                    q2.put_blocking(i);
                }
            });
            for _ in 0..n {
                sum += q.get().await;
            }
            producer.join().expect("producer");
        }
        Rt::TokioCt => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(1024);
            let producer = std::thread::spawn(move || {
                for i in 0..n {
                    tx.blocking_send(i).expect("send");
                }
            });
            for _ in 0..n {
                sum += rx.recv().await.expect("item");
            }
            producer.join().expect("producer");
        }
        Rt::Smol => {
            let (tx, rx) = smol::channel::bounded::<usize>(1024);
            let producer = std::thread::spawn(move || {
                for i in 0..n {
                    tx.send_blocking(i).expect("send");
                }
            });
            for _ in 0..n {
                sum += rx.recv().await.expect("item");
            }
            producer.join().expect("producer");
        }
    }
    assert_eq!(sum, n * (n - 1) / 2);
    per_op(start, n)
}

async fn run_in_thread(rt: Rt, n: usize) -> f64 {
    let start = Instant::now();
    let mut sum = 0usize;
    for i in 0..n {
        sum += match rt {
            Rt::Curio => curio::run_in_thread(move || i).await,
            Rt::TokioCt => tokio::task::spawn_blocking(move || i).await.expect("job"),
            Rt::Smol => smol::unblock(move || i).await,
        };
    }
    assert_eq!(sum, n * (n - 1) / 2);
    per_op(start, n)
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
    on(rt, move |rt| async move {
        // Warm the allocator and the runtime's queues first.
        let warm: Vec<_> = (0..1000)
            .map(|_| spawn(rt, std::future::pending::<()>()))
            .collect();
        yield_now(rt).await;
        let before = rss_bytes();
        let idle: Vec<_> = (0..n)
            .map(|_| spawn(rt, std::future::pending::<()>()))
            .collect();
        // Let every task run once and park.
        yield_now(rt).await;
        yield_now(rt).await;
        let after = rss_bytes();
        let per = (after.saturating_sub(before)) as f64 / n as f64;
        // The handles stay alive until here; the process exits without tearing them down.
        std::mem::forget(idle);
        std::mem::forget(warm);
        per
    })
}

/// Sizes of the micro-benchmarks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) rounds: usize,
    pub(crate) scale: usize,
}

/// Runs every micro-benchmark on every runtime, alternating, and returns their results.
pub(crate) fn run_all(sizes: Sizes, only: Option<&str>) -> Vec<Result> {
    let s = sizes.scale;
    type Bench = Box<dyn Fn(Rt) -> f64>;
    type Target = Option<(&'static str, f64)>;
    let benches: Vec<(&str, Target, Bench)> = vec![
        (
            "spawn_join",
            Some(("tokio-ct", 0.5)),
            Box::new(move |rt| on(rt, move |rt| spawn_join(rt, 100_000 * s / 10))),
        ),
        (
            "yield",
            None,
            Box::new(move |rt| on(rt, move |rt| yields(rt, 2_000_000 * s / 10))),
        ),
        (
            "timeout_ready",
            Some(("tokio-ct", 0.3)),
            Box::new(move |rt| on(rt, move |rt| timeout_ready(rt, 1_000_000 * s / 10))),
        ),
        (
            "timeout_pending",
            None,
            Box::new(move |rt| on(rt, move |rt| timeout_pending(rt, 1_000_000 * s / 10))),
        ),
        (
            "sleep_churn",
            None,
            Box::new(move |rt| on(rt, move |rt| sleep_churn(rt, 100_000 * s / 10))),
        ),
        (
            "queue_ping_pong",
            Some(("tokio-ct", 0.5)),
            Box::new(move |rt| on(rt, move |rt| queue_ping_pong(rt, 1_000_000 * s / 10))),
        ),
        (
            "lock_handoff",
            Some(("tokio-ct", 0.5)),
            Box::new(move |rt| on(rt, move |rt| lock_handoff(rt, 100, 10_000 * s / 10))),
        ),
        (
            "universal_queue",
            Some(("smol", 1.0)),
            Box::new(move |rt| on(rt, move |rt| universal_queue(rt, 1_000_000 * s / 10))),
        ),
        (
            "run_in_thread",
            None,
            Box::new(move |rt| on(rt, move |rt| run_in_thread(rt, 100_000 * s / 10))),
        ),
    ];
    let mut results = Vec::new();
    for (name, target, bench) in benches {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let mut series: Vec<Series> = Rt::ALL
            .iter()
            .map(|r| Series {
                runtime: r.name(),
                values: Vec::new(),
            })
            .collect();
        for _ in 0..sizes.rounds {
            for (i, rt) in Rt::ALL.into_iter().enumerate() {
                series[i].values.push(bench(rt));
            }
        }
        let lower = name != "universal_queue";
        let mut r = Result {
            name: name.to_owned(),
            unit: "ns/op",
            lower_is_better: true,
            series,
            target,
        };
        if !lower {
            // Throughput: items per microsecond, higher is better.
            for s in &mut r.series {
                for v in &mut s.values {
                    *v = 1000.0 / *v;
                }
            }
            r.unit = "items/µs";
            r.lower_is_better = false;
        }
        eprintln!("{name}: done");
        results.push(r);
    }
    results
}
