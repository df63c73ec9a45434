//! Times spawning and joining 100k trivial tasks, and a million yields: a quick look at the
//! scheduler's overhead (the benchmark suite of `cargo xtask bench` is the real measurement).
//!
//! ```text
//! cargo run --release --example spawn_join
//! ```

use std::time::Instant;

fn main() {
    curio::run(async {
        for round in 0..3 {
            let start = Instant::now();
            let tasks: Vec<_> = (0..100_000u64)
                .map(|i| curio::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.join().await.expect("trivial task");
            }
            let per = start.elapsed() / 100_000;
            println!("round {round}: spawn + join {per:?} per task (sum {sum})");
        }
        let start = Instant::now();
        let a = curio::spawn(async {
            for _ in 0..500_000 {
                curio::yield_now().await;
            }
        });
        let b = curio::spawn(async {
            for _ in 0..500_000 {
                curio::yield_now().await;
            }
        });
        a.join().await.expect("yielder");
        b.join().await.expect("yielder");
        println!("yield: {:?} per yield", start.elapsed() / 1_000_000);
    });
}
