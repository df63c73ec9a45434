//! A few named tasks (sleeping, waiting on a queue, blocked in a socket read) with the live
//! monitor on, at `127.0.0.1:48802`:
//!
//! ```text
//! cargo run --example monitor
//! cargo run -p curio-monitor        # in another terminal; then `ps`, `where 3`, `quit`
//! ```

use std::time::Duration;

use curio::Builder;
use curio::net::UnixStream;
use curio::queue::Queue;

#[curio::main(monitor)]
async fn main() -> std::io::Result<()> {
    let queue: Queue<String> = Queue::new(0);
    let (a, _b) = UnixStream::pair()?;
    let sleeper = Builder::new().name("sleeper").spawn(async {
        loop {
            curio::sleep(Duration::from_secs(1000)).await;
        }
    });
    let q = queue.clone();
    let consumer = Builder::new().name("consumer").spawn(async move {
        while let Ok(item) = q.get().await {
            println!("got {item}");
        }
    });
    let reader = Builder::new()
        .name("reader")
        .spawn(async move { a.recv(100).await });
    println!(
        "Monitor at {}: try `cargo run -p curio-monitor`, then `ps`",
        curio::monitor::local_addr().map_or_else(|| "?".to_owned(), |a| a.to_string())
    );
    reader.join().await.ok();
    consumer.join().await.ok();
    sleeper.join().await.ok();
    Ok(())
}
