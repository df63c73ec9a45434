//! An async thread (Curio's `spawn_thread` and `AWAIT`): a real OS thread consumes a kernel
//! queue, which is kernel-local, by running each `get` on the kernel and blocking until it
//! completes.
//!
//! ```text
//! cargo run --example async_thread
//! ```

use std::time::Duration;

use curio::queue::Queue;

curio::task_local! {
    /// The kernel-side queue. The thread's stand-in task inherits it from the task that starts
    /// the thread, and the futures the thread awaits run in that task, so they can reach it.
    static QUEUE: Queue<Option<u32>>;
}

/// The thread's body: ordinary blocking code that awaits kernel futures with `await_with`.
pub fn consumer() -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        // The closure is `Send`; the future it builds runs on the kernel, where the queue is.
        let item = curio::await_with(|| async {
            let q = QUEUE.get().expect("in a task").expect("set by main");
            // A timeout works inside, as anywhere on the kernel.
            curio::timeout_after(Duration::from_secs(5), q.get()).await
        });
        match item {
            Ok(Ok(Ok(Some(n)))) => {
                println!("Got: {n}");
                got.push(n);
            }
            // The end of the stream, a closed queue, a timeout or a cancellation: stop.
            _ => return got,
        }
    }
}

/// Puts `n` items a little apart, then `None`, and returns what the thread got.
pub async fn run(n: u32, gap: Duration) -> Vec<u32> {
    let queue = Queue::new(0);
    QUEUE.set(queue.clone()).expect("in a task");
    let thread = curio::spawn_thread(consumer);
    for i in 0..n {
        queue.put(Some(i)).await.expect("nobody closes this queue");
        curio::sleep(gap).await;
    }
    queue.put(None).await.expect("nobody closes this queue");
    thread.join().await.expect("the consumer thread")
}

fn main() {
    let got = curio::run(run(10, Duration::from_millis(100)));
    println!("The consumer got {} items", got.len());
}
