//! A pipeline of two children, its output streamed line by line:
//!
//! ```text
//! cargo run --example subprocess
//! ```
//!
//! The first child counts down, a line every 200 ms; the second reads its lines through a pipe
//! passed straight from one child to the other and prefixes them. The parent reads the second
//! child's stdout through a `SocketStream`, so each line is printed as soon as it arrives, while
//! the children still run. Tests run the same code through [`pipeline`].

use std::io;
use std::time::Duration;

use curio::net::SocketStream;
use curio::process::{Command, Stdio};

/// Runs `countdown | prefix`, calling `on_line` with each line of the pipeline's output as it
/// arrives; `delay` is the pause between the countdown's lines.
pub async fn pipeline(n: u32, delay: Duration, mut on_line: impl FnMut(&str)) -> io::Result<()> {
    let script = format!(
        "for i in $(seq {n} -1 1); do echo \"t-minus $i\"; sleep {}; done",
        delay.as_secs_f64()
    );
    let mut countdown = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // The pipe goes from one child to the other; the parent keeps no end of it.
    let pipe = countdown.stdout.take().expect("piped");
    let mut prefix = Command::new("sh")
        .args(["-c", "while read -r line; do echo \"got: $line\"; done"])
        .stdin(pipe)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = SocketStream::new(prefix.stdout.take().expect("piped"));
    loop {
        let line = lines.read_line(4096).await?;
        if line.is_empty() {
            break;
        }
        on_line(String::from_utf8_lossy(&line).trim_end());
    }
    let (a, b) = (countdown.wait().await?, prefix.wait().await?);
    if !a.success() || !b.success() {
        return Err(io::Error::other(format!("pipeline failed: {a}, {b}")));
    }
    Ok(())
}

fn main() -> io::Result<()> {
    curio::run(pipeline(5, Duration::from_millis(200), |line| {
        println!("{line}");
    }))
}
