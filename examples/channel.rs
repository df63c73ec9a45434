//! Two programs that talk over an authenticated channel (`curio::channel`): a producer sends
//! typed readings, a consumer totals them and sends back a summary.
//!
//! Run the two roles as two programs, with the same key in `CURIO_CHANNEL_KEY`:
//!
//! ```text
//! CURIO_CHANNEL_KEY=s3cret cargo run --example channel -- consume 127.0.0.1:30000
//! CURIO_CHANNEL_KEY=s3cret cargo run --example channel -- produce 127.0.0.1:30000
//! ```
//!
//! Without arguments, it runs both roles on two threads, each with its own kernel, on a free
//! port. A producer with another key is refused on both sides.

use std::net::SocketAddr;

use curio::channel::{Channel, Connection};

/// A reading: sequence number, sensor name, value.
type Reading = (u32, String, f64);

/// Receives readings until the producer sends `None`, then answers with how many it got and
/// their sum.
async fn consume(conn: &Connection) -> std::io::Result<(u32, f64)> {
    let (mut count, mut sum) = (0, 0.0);
    while let Some((seq, sensor, value)) = conn.recv::<Option<Reading>>().await? {
        println!("consumer: #{seq} from {sensor}: {value}");
        count += 1;
        sum += value;
    }
    conn.send(&(count, sum)).await?;
    Ok((count, sum))
}

/// Sends `n` readings and the end mark, then waits for the consumer's summary.
async fn produce(conn: &Connection, n: u32) -> std::io::Result<(u32, f64)> {
    for seq in 0..n {
        let reading: Reading = (seq, format!("sensor-{}", seq % 3), f64::from(seq) * 0.5);
        conn.send(&Some(reading)).await?;
    }
    conn.send(&None::<Reading>).await?;
    conn.recv().await
}

fn key() -> Vec<u8> {
    std::env::var("CURIO_CHANNEL_KEY")
        .unwrap_or_else(|_| "curio-rt example key".into())
        .into_bytes()
}

fn serve(addr: &str) -> std::io::Result<()> {
    curio::run(async {
        let channel = Channel::bind(addr, &key())?;
        println!("consumer: listening on {}", channel.local_addr()?);
        let conn = channel.accept().await?;
        let (count, sum) = consume(&conn).await?;
        println!("consumer: {count} readings, sum {sum}");
        Ok(())
    })
}

fn send(addr: SocketAddr) -> std::io::Result<()> {
    curio::run(async {
        let conn = Channel::connect(addr, &key()).await?;
        let (count, sum) = produce(&conn, 10).await?;
        println!("producer: the consumer got {count} readings, sum {sum}");
        Ok(())
    })
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["consume", addr] => serve(addr),
        ["produce", addr] => send(addr.parse().map_err(std::io::Error::other)?),
        [] => {
            let (tx, rx) = std::sync::mpsc::channel();
            let consumer = std::thread::spawn(move || {
                curio::run(async move {
                    let channel = Channel::bind("127.0.0.1:0", &key())?;
                    tx.send(channel.local_addr()?).expect("main thread");
                    // The first client has the wrong key: the channel drops it and goes on.
                    let conn = channel.accept().await?;
                    for e in channel.take_rejected() {
                        println!("consumer: rejected a client: {e}");
                    }
                    consume(&conn).await.map(drop)
                })
            });
            let addr = rx.recv().expect("the consumer's address");
            let refused = curio::run(Channel::connect(addr, b"not the key")).unwrap_err();
            println!("producer with a wrong key: {refused}");
            send(addr)?;
            consumer.join().expect("consumer thread")
        }
        _ => {
            eprintln!("usage: channel [consume ADDR | produce ADDR]");
            std::process::exit(2);
        }
    }
}
