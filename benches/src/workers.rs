//! The worker rows: `run_in_process` round trips against a raw pipe round trip to a child
//! process, and `spawn_thread` with one `await_with` round trip.
//!
//! The process pool's workers are this binary started again: `main` calls
//! [`curio::workers::worker_main`] with [`REGISTRY`] before anything else. Both rows run
//! unpinned: they cross processes or threads.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use curio::workers::{ProcessFn, Registry};

use crate::stats::{Result, Series, Target};

fn add_one(x: u64) -> u64 {
    x + 1
}

static ADD_ONE: ProcessFn<u64, u64> = ProcessFn::new("add_one", add_one);
/// What the bench binary's workers serve.
pub(crate) static REGISTRY: Registry = Registry::new(&[&ADD_ONE]);

/// A row's runtimes: a name and a body that runs `n` operations and returns ns per operation.
type Bodies = [(&'static str, fn(usize) -> f64); 2];

fn per_op(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `n` sequential calls with a small argument from one task, after a call that starts the
/// worker.
fn curio_process(n: usize) -> f64 {
    curio::run(async move {
        curio::spawn(async move {
            curio::run_in_process(&ADD_ONE, 0).await.expect("warm-up");
            let start = Instant::now();
            let mut x = 0;
            for _ in 0..n {
                x = curio::run_in_process(&ADD_ONE, x).await.expect("call");
            }
            assert_eq!(x, n as u64);
            per_op(start, n)
        })
        .join()
        .await
        .expect("body")
    })
}

/// `n` round trips of 8 bytes through `cat`, blocking: the floor for a request and a reply
/// between two processes.
fn raw_pipe(n: usize) -> f64 {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat");
    let mut tx = child.stdin.take().expect("stdin");
    let mut rx = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 8];
    let start = Instant::now();
    for i in 0..n as u64 {
        tx.write_all(&i.to_le_bytes()).expect("write");
        rx.read_exact(&mut buf).expect("read");
    }
    let t = per_op(start, n);
    drop(tx);
    let _ = child.wait();
    t
}

/// The `run_in_process` row: `n` calls per round.
pub(crate) fn run_in_process(rounds: usize, n: usize) -> Result {
    crate::echo::unpin();
    let bodies: Bodies = [("curio-rt", curio_process), ("raw pipe", raw_pipe)];
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
    eprintln!("run_in_process: done");
    Result {
        name: "run_in_process".to_owned(),
        unit: "ns/op",
        lower_is_better: true,
        series,
        target: Some(Target::of("raw pipe", 2.0)),
    }
}

/// `n` async threads one after another, each awaiting one future on the kernel.
fn curio_thread(n: usize) -> f64 {
    curio::run(async move {
        curio::spawn(async move {
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                let t = curio::spawn_thread(move || curio::await_future(async move { i }));
                sum += t.join().await.expect("thread").expect("await");
            }
            assert_eq!(sum, n * (n - 1) / 2);
            per_op(start, n)
        })
        .join()
        .await
        .expect("body")
    })
}

/// The same with tokio's current-thread runtime: a new std thread spawns a task on the runtime,
/// blocks until it completes, and sends the result back through a oneshot channel.
fn tokio_thread(n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                let h = tokio::runtime::Handle::current();
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(h.block_on(h.spawn(async move { i })).expect("task"));
                });
                sum += rx.await.expect("thread");
            }
            assert_eq!(sum, n * (n - 1) / 2);
            per_op(start, n)
        })
        .await
        .expect("body")
    })
}

/// The `spawn_thread_await` row: `n` threads per round.
pub(crate) fn spawn_thread_await(rounds: usize, n: usize) -> Result {
    crate::echo::unpin();
    let bodies: Bodies = [("curio-rt", curio_thread), ("tokio-ct", tokio_thread)];
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
    eprintln!("spawn_thread_await: done");
    Result {
        name: "spawn_thread_await".to_owned(),
        unit: "ns/op",
        lower_is_better: true,
        series,
        target: None,
    }
}
