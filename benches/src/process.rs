//! The `subprocess` row: spawn `true` and wait for it, one child after another, on curio-rt,
//! tokio's current-thread runtime (`tokio::process`), async-process (smol's `smol::process`, on
//! a `LocalExecutor`) and `std::process` (blocking), in alternating rounds.
//!
//! Each async body runs as a spawned task of its runtime. The row runs unpinned: the children
//! are other processes, and the reapers of tokio and async-process may use threads of their own.

use std::time::Instant;

use crate::stats::{Result, Series, Target};

const RUNTIMES: [&str; 4] = ["curio-rt", "tokio-ct", "async-process", "std::process"];

fn per_child(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn curio(n: usize) -> f64 {
    curio::run(async move {
        curio::spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                let mut c = curio::process::Command::new("true").spawn().expect("spawn");
                assert!(c.wait().await.expect("wait").success());
            }
            per_child(start, n)
        })
        .join()
        .await
        .expect("body")
    })
}

fn tokio(n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                let mut c = tokio::process::Command::new("true").spawn().expect("spawn");
                assert!(c.wait().await.expect("wait").success());
            }
            per_child(start, n)
        })
        .await
        .expect("body")
    })
}

fn async_process(n: usize) -> f64 {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(ex.spawn(async move {
        let start = Instant::now();
        for _ in 0..n {
            let mut c = smol::process::Command::new("true").spawn().expect("spawn");
            assert!(c.status().await.expect("wait").success());
        }
        per_child(start, n)
    })))
}

fn blocking(n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut c = std::process::Command::new("true").spawn().expect("spawn");
        assert!(c.wait().expect("wait").success());
    }
    per_child(start, n)
}

/// Runs the row: `n` children per round and runtime.
pub(crate) fn subprocess(rounds: usize, n: usize) -> Result {
    crate::echo::unpin();
    let bodies: [fn(usize) -> f64; 4] = [curio, tokio, async_process, blocking];
    let mut series: Vec<Series> = RUNTIMES
        .iter()
        .map(|r| Series {
            runtime: r,
            values: Vec::new(),
        })
        .collect();
    for _ in 0..rounds {
        for (s, body) in series.iter_mut().zip(bodies) {
            s.values.push(body(n));
        }
    }
    crate::echo::pin(1);
    eprintln!("subprocess: done");
    Result {
        name: "subprocess".to_owned(),
        unit: "ns/op",
        lower_is_better: true,
        series,
        target: Some(Target::of("tokio-ct", 1.0)),
    }
}
