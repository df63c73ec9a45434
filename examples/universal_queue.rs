//! The thread example of Curio's README: a plain thread consumes a `UniversalQueue` that a
//! kernel task feeds.
//!
//! ```text
//! cargo run --example universal_queue
//! ```

use std::time::Duration;

use curio::queue::UniversalQueue;

/// The synchronous consumer: an ordinary function on an ordinary thread.
pub fn consumer(queue: UniversalQueue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match queue.get_blocking() {
            Ok(Some(item)) => {
                println!("Got: {item}");
                got.push(item);
            }
            // The producer's `None`, or a closed queue: the end.
            Ok(None) | Err(_) => return got,
        }
    }
}

/// The asynchronous producer: a kernel task putting `n` items, a little apart, then `None`.
pub async fn producer(queue: UniversalQueue<Option<u32>>, n: u32, gap: Duration) {
    for i in 0..n {
        queue.put(Some(i)).await.expect("nobody closes this queue");
        curio::sleep(gap).await;
    }
    queue.put(None).await.expect("nobody closes this queue");
}

fn main() {
    let q = UniversalQueue::new(0);
    let q2 = q.clone();
    let t = std::thread::spawn(move || consumer(q2));
    curio::run(producer(q, 10, Duration::from_millis(100)));
    let got = t.join().expect("the consumer thread");
    println!("The consumer got {} items", got.len());
}
