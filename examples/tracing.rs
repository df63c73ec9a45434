//! Tasks as `tracing` spans: with the `tracing` feature, every task is a `runtime.spawn` span
//! (the shape tokio-console's subscriber reads) entered for each of its turns, and wakes are
//! `runtime::waker` events. Here a plain `tracing-subscriber` prints them:
//!
//! ```text
//! cargo run --example tracing --features tracing
//! ```

use std::time::Duration;

#[curio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .init();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            curio::Builder::new()
                .name(format!("worker {i}"))
                .spawn(async move {
                    curio::sleep(Duration::from_millis(10 * (i + 1))).await;
                    i
                })
        })
        .collect();
    for w in workers {
        let i = w.join().await.expect("a worker");
        println!("worker {i} done");
    }
}
