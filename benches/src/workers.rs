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

use crate::micro::{
    TOKIO_LOCAL, TOKIO_SPAWN, alternate, per_op, run_curio, run_tokio_local, run_tokio_spawn,
};
use crate::stats::{Result, Target};

fn add_one(x: u64) -> u64 {
    x + 1
}

static ADD_ONE: ProcessFn<u64, u64> = ProcessFn::new("add_one", add_one);
/// What the bench binary's workers serve.
pub(crate) static REGISTRY: Registry = Registry::new(&[&ADD_ONE]);

/// `n` sequential calls with a small argument from one task, after a call that starts the
/// worker.
fn curio_process(n: usize) -> f64 {
    run_curio(async move {
        curio::run_in_process(&ADD_ONE, 0).await.expect("warm-up");
        let start = Instant::now();
        let mut x = 0;
        for _ in 0..n {
            x = curio::run_in_process(&ADD_ONE, x).await.expect("call");
        }
        assert_eq!(x, n as u64);
        per_op(start, n)
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
    let bodies = [
        ("curio-rt", curio_process as fn(usize) -> f64),
        ("raw pipe", raw_pipe),
    ];
    alternate(
        "run_in_process",
        &bodies,
        rounds,
        n,
        Some(Target::of("raw pipe", 2.0)),
    )
}

/// `n` async threads one after another, each awaiting one future on the kernel.
fn curio_thread(n: usize) -> f64 {
    run_curio(async move {
        let start = Instant::now();
        let mut sum = 0;
        for i in 0..n {
            let t = curio::spawn_thread(move || curio::await_future(async move { i }));
            sum += t.join().await.expect("thread").expect("await");
        }
        assert_eq!(sum, n * (n - 1) / 2);
        per_op(start, n)
    })
}

/// The same with tokio's current-thread runtime: a new std thread spawns a task on the runtime,
/// blocks until it completes, and sends the result back through a oneshot channel.
async fn tokio_thread(n: usize) -> f64 {
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
}

/// The `spawn_thread_await` row: `n` threads per round.
pub(crate) fn spawn_thread_await(rounds: usize, n: usize) -> Result {
    alternate(
        "spawn_thread_await",
        &[
            ("curio-rt", curio_thread),
            (TOKIO_SPAWN, |n| run_tokio_spawn(tokio_thread(n))),
            (TOKIO_LOCAL, |n| run_tokio_local(tokio_thread(n))),
        ],
        rounds,
        n,
        None,
    )
}
