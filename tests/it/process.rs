//! Child processes through the facade: pipes inside `SocketStream`, and the `subprocess`
//! example run through its `pipeline` function.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/subprocess.rs"]
mod subprocess_example;

use std::time::Duration;

use curio::net::SocketStream;
use curio::process::{Command, Stdio};

use crate::bounded;

#[test]
fn pipe_lines_through_socket_stream_while_the_child_runs() {
    curio::run(async {
        let mut child = Command::new("sh")
            .args(["-c", "echo one; echo two; read x; echo three $x"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = SocketStream::new(child.stdout.take().unwrap());
        assert_eq!(bounded("line", out.read_line(100)).await.unwrap(), b"one\n");
        assert_eq!(bounded("line", out.read_line(100)).await.unwrap(), b"two\n");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child waits for input"
        );
        let stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        assert_eq!(
            bounded("exactly", out.read_exactly(9)).await.unwrap(),
            b"three go\n"
        );
        assert_eq!(out.read_line(100).await.unwrap(), b"");
        assert!(bounded("wait", child.wait()).await.unwrap().success());
    });
}

#[test]
fn subprocess_example_streams_the_pipeline_line_by_line() {
    let lines = curio::run(async {
        let mut lines = Vec::new();
        bounded(
            "pipeline",
            subprocess_example::pipeline(3, Duration::from_millis(10), |l| {
                lines.push(l.to_owned());
            }),
        )
        .await
        .unwrap();
        lines
    });
    assert_eq!(
        lines,
        ["got: t-minus 3", "got: t-minus 2", "got: t-minus 1"]
    );
}

#[test]
fn pipe_lines_as_a_stream() {
    use futures_core::Stream;

    let got = curio::run(async {
        let mut child = Command::new("printf")
            .arg("a\nbb\nccc")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = SocketStream::new(child.stdout.take().unwrap());
        let mut lines = out.lines(100);
        let mut got = Vec::new();
        while let Some(line) = bounded(
            "line",
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut lines).poll_next(cx)),
        )
        .await
        {
            got.push(line.unwrap());
        }
        assert!(bounded("wait", child.wait()).await.unwrap().success());
        got
    });
    assert_eq!(got, [b"a\n".to_vec(), b"bb\n".to_vec(), b"ccc".to_vec()]);
}
