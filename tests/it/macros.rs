//! `#[curio::main]` and `#[curio::test]`: the expansions at work (their compile errors are
//! tested in `crates/curio-macros`).

use std::time::{Duration, Instant};

#[curio::test]
async fn a_plain_test_runs_on_a_kernel() {
    let child = curio::spawn(async { 6 * 7 });
    assert_eq!(child.join().await.unwrap(), 42);
}

/// A virtual clock makes a one-hour sleep take no wall time, and exactly one hour of the
/// kernel's clock.
#[curio::test(virtual_clock)]
async fn virtual_clock_makes_an_hour_instant() {
    let (wall, start) = (Instant::now(), curio::clock());
    curio::sleep(Duration::from_secs(3600)).await;
    assert_eq!(curio::clock() - start, Duration::from_secs(3600));
    assert!(wall.elapsed() < Duration::from_secs(5));
}

/// A test that would hang fails with a message naming its limit (on the virtual clock here, so
/// the failure itself is instant).
#[curio::test(virtual_clock, timeout = "2s")]
#[should_panic(expected = "test timed out: it ran longer than 2s")]
async fn timeout_fails_a_hung_test() {
    std::future::pending::<()>().await;
}

/// The worker pool option reaches the kernel's pool; a test may return a `Result`.
#[curio::test(max_worker_threads = 2, timeout = "30s")]
async fn worker_option_and_result() -> Result<(), String> {
    let n = curio::workers::ThreadPool::current().max_threads();
    if n == 2 {
        Ok(())
    } else {
        Err(format!("pool of {n}"))
    }
}
