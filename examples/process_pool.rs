//! The process pool (Curio's `run_in_process`): a CPU-bound `fib` runs in a worker process while
//! a spinner task keeps the kernel responsive.
//!
//! Workers are this program started again; `worker_main` at the top of `main` is where a worker
//! goes to serve calls, and it returns at once in the normal program.
//!
//! ```text
//! cargo run --release --example process_pool
//! ```

use std::time::{Duration, Instant};

use curio::workers::{ProcessFn, Registry};

/// Curio's benchmark function, deliberately slow.
pub fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// `fib` as the pool knows it: a name and the function.
pub static FIB: ProcessFn<u64, u64> = ProcessFn::new("fib", fib);
/// Everything a worker of this program can run.
pub static REGISTRY: Registry = Registry::new(&[&FIB]);

/// Ticks every `tick` until `fib(n)` is done in the pool; returns the result and the ticks.
pub async fn run(n: u64, tick: Duration) -> (u64, u32) {
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let t2 = ticks.clone();
    let spinner = curio::spawn(async move {
        let start = Instant::now();
        loop {
            curio::sleep(tick).await;
            t2.set(t2.get() + 1);
            println!("spinning... {:.1?}", start.elapsed());
        }
    });
    let r = curio::run_in_process(&FIB, n)
        .await
        .expect("fib in a worker");
    spinner.cancel().await;
    (r, ticks.get())
}

fn main() {
    curio::workers::worker_main(&REGISTRY);
    let (r, ticks) = curio::run(run(40, Duration::from_millis(100)));
    println!("fib(40) = {r}; the spinner ticked {ticks} times meanwhile");
}
