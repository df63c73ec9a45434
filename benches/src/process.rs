//! The `subprocess` row: spawn `true` and wait for it, one child after another, on curio-rt,
//! tokio's current-thread runtime (`tokio::process`, both spawn forms, the faster kept),
//! async-process (smol's `smol::process`, on a `LocalExecutor`) and `std::process` (blocking),
//! in alternating rounds.
//!
//! Each async body runs as a spawned task of its runtime. The row runs unpinned: the children
//! are other processes, and the reapers of tokio and async-process may use threads of their own.

use std::time::Instant;

use crate::micro::{
    TOKIO_LOCAL, TOKIO_SPAWN, alternate, per_op, run_curio, run_smol, run_tokio_local,
    run_tokio_spawn,
};
use crate::stats::{Result, Target};

fn curio(n: usize) -> f64 {
    run_curio(async move {
        let start = Instant::now();
        for _ in 0..n {
            let mut c = curio::process::Command::new("true").spawn().expect("spawn");
            assert!(c.wait().await.expect("wait").success());
        }
        per_op(start, n)
    })
}

async fn tokio_body(n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut c = tokio::process::Command::new("true").spawn().expect("spawn");
        assert!(c.wait().await.expect("wait").success());
    }
    per_op(start, n)
}

fn tokio_spawn(n: usize) -> f64 {
    run_tokio_spawn(tokio_body(n))
}

fn tokio_local(n: usize) -> f64 {
    run_tokio_local(tokio_body(n))
}

fn async_process(n: usize) -> f64 {
    run_smol(async move {
        let start = Instant::now();
        for _ in 0..n {
            let mut c = smol::process::Command::new("true").spawn().expect("spawn");
            assert!(c.status().await.expect("wait").success());
        }
        per_op(start, n)
    })
}

fn blocking(n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut c = std::process::Command::new("true").spawn().expect("spawn");
        assert!(c.wait().expect("wait").success());
    }
    per_op(start, n)
}

/// Runs the row: `n` children per round and runtime.
pub(crate) fn subprocess(rounds: usize, n: usize) -> Result {
    alternate(
        "subprocess",
        &[
            ("curio-rt", curio),
            (TOKIO_SPAWN, tokio_spawn),
            (TOKIO_LOCAL, tokio_local),
            ("async-process", async_process),
            ("std::process", blocking),
        ],
        rounds,
        n,
        Some(Target::of("tokio-ct", 1.0)),
    )
}
