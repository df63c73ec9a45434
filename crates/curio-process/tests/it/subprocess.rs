//! Curio 1.6's `test_subprocess.py`, ported with its test names.
//! Curio's tests run `python child.py`, which prints `t-minus 4` .. `t-minus 1`, a line at a
//! time, and `ichild.py`, which counts the lines of its stdin; here `sh` and `wc -l` do the same.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use curio_process::{Child, Command, Stdio, SubprocessError, check_output, run};

use crate::{bounded, sh};

/// Curio's `child.py`: a countdown, a line every 50 ms.
const CHILD: &str = "for n in 4 3 2 1; do echo t-minus $n; sleep 0.05; done";

const COUNTDOWN: &[u8] = b"t-minus 4\nt-minus 3\nt-minus 2\nt-minus 1\n";

#[test]
fn test_simple() {
    curio_kernel::run(async {
        let out = bounded("run", run(&mut sh(CHILD))).await.unwrap();
        assert_eq!(out.stdout, COUNTDOWN);
        assert_eq!(out.status.code(), Some(0));
    });
}

#[test]
fn test_simple_check_output() {
    curio_kernel::run(async {
        let out = bounded("check_output", check_output(&mut sh(CHILD)))
            .await
            .unwrap();
        assert_eq!(out, COUNTDOWN);
    });
}

#[test]
fn test_bad_cmd() {
    curio_kernel::run(async {
        // Curio: `run(..., check=True)` raises `CalledProcessError`.
        let out = run(&mut sh("echo oops >&2; exit 3")).await.unwrap();
        let e = out.check().unwrap_err();
        assert_eq!(e.status.code(), Some(3));
        assert_eq!(e.stderr, b"oops\n");
    });
}

#[test]
fn test_bad_cmd_check_output() {
    curio_kernel::run(async {
        // Curio passes `stderr=STDOUT`: the error's output holds both streams, in order.
        let mut cmd = sh("echo out; echo oops >&2; exit 1");
        cmd.stderr_to_stdout();
        match check_output(&mut cmd).await {
            Err(SubprocessError::Failed(e)) => {
                assert_eq!(e.status.code(), Some(1));
                assert_eq!((e.stdout, e.stderr), (b"out\noops\n".to_vec(), Vec::new()));
            }
            other => panic!("expected a CalledProcessError, got {other:?}"),
        }
    });
}

#[test]
fn test_timeout() {
    curio_kernel::run(async {
        // Curio: `timeout=1` raises `TimeoutExpired`; `timeout_after(0.5, run(...))` leaves
        // `e.stdout == b't-minus 4\n'`. Deviation: a dropped future cannot hand back output, so
        // the partial output comes with `Command::timeout`'s `TimeoutExpired`.
        let mut cmd = sh("echo t-minus 4; exec sleep 30");
        cmd.timeout(Duration::from_millis(500));
        match bounded("run", run(&mut cmd)).await {
            Err(SubprocessError::TimedOut(e)) => {
                assert_eq!(e.stdout, b"t-minus 4\n");
                assert_eq!(e.stderr, b"");
                assert_eq!(e.timeout, Duration::from_millis(500));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    });
}

#[test]
fn test_universal() {
    // Curio rejects `universal_newlines=True` with `RuntimeError`. Deviation: there is no text
    // mode to reject; output is bytes, and bytes that are not UTF-8 come back intact.
    curio_kernel::run(async {
        let out = check_output(&mut sh(r"printf '\377\376\r\n'"))
            .await
            .unwrap();
        assert_eq!(out, b"\xff\xfe\r\n");
    });
}

#[test]
fn test_stdin_pipe() {
    curio_kernel::run(async {
        let mut p1 = sh(CHILD).stdout(Stdio::piped()).spawn().unwrap();
        let pipe = p1.stdout.take().unwrap();
        let mut p2 = Command::new("wc")
            .arg("-l")
            .stdin(pipe)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = p2.stdout.take().unwrap();
        let out = bounded("read", out.read_to_end()).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out).trim(), "4");
        assert!(bounded("wait", p1.wait()).await.unwrap().success());
        assert!(bounded("wait", p2.wait()).await.unwrap().success());
    });
}

#[test]
fn test_check_output_stdin() {
    curio_kernel::run(async {
        let out = check_output(
            Command::new("wc")
                .arg("-l")
                .input(&b"Line1\nLine2\nLine3\n"[..]),
        )
        .await
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out).trim(), "3");
    });
}

#[test]
fn test_no_input_cancel() {
    curio_kernel::run(async {
        // The countdown never reads its stdin: 10 MB of input blocks until the task that
        // communicates is cancelled. Deviation: Curio's `CancelledError` carries `stdout` and
        // `stderr`; here what was read stays in the `Child` (`take_output`).
        let child = sh(CHILD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The task borrows the child and gives it back when its future is dropped.
        let slot = Rc::new(Cell::new(None));
        let back = slot.clone();
        let t = curio_kernel::spawn(async move {
            let mut lent = Lent(back, Some(child));
            let input = vec![b'x'; 10_000_000];
            let p = lent.1.as_mut().unwrap();
            let _ = p.communicate(&input).await;
            unreachable!("communicate should not finish");
        });
        curio_kernel::sleep(Duration::from_millis(100)).await;
        t.cancel().await;
        let mut p = slot.take().expect("the child is given back");
        // The lines read before the cancel are kept, none lost, none made up.
        let (out, err) = p.take_output();
        assert!(
            out.starts_with(b"t-minus 4\n"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            COUNTDOWN.starts_with(&out),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(err, b"");
        p.kill().unwrap();
        let status = bounded("wait", p.wait()).await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    });
}

/// A child lent to a task, put back into the slot when the task's future is dropped.
struct Lent(Rc<Cell<Option<Child>>>, Option<Child>);

impl Drop for Lent {
    fn drop(&mut self) {
        self.0.set(self.1.take());
    }
}

#[test]
fn test_popen_join() {
    curio_kernel::run(async {
        let mut p = sh("sleep 0.2").spawn().unwrap();
        assert_eq!(bounded("wait", p.wait()).await.unwrap().code(), Some(0));
        // Waiting again gives the same status.
        assert_eq!(p.wait().await.unwrap().code(), Some(0));
        assert_eq!(p.try_wait().unwrap().and_then(|s| s.code()), Some(0));
    });
}

#[test]
fn test_io_error() {
    curio_kernel::run(async {
        let mut cmd = sh("exec 0<&-; sleep 1");
        cmd.input(vec![b'x'; 10_000_000]);
        match bounded("check_output", check_output(&mut cmd)).await {
            Err(SubprocessError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
            other => panic!("expected BrokenPipe, got {other:?}"),
        }
    });
}

/// Not in Curio: a write to a child that closed its stdin is `BrokenPipe` as well.
#[test]
fn write_to_a_closed_stdin_is_broken_pipe() {
    curio_kernel::run(async {
        let mut p = sh("exec 0<&-; echo closed; exec sleep 30")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = p.stdout.take().unwrap();
        assert_eq!(bounded("read", out.read(100)).await.unwrap(), b"closed\n");
        let stdin = p.stdin.take().unwrap();
        let e = bounded("write", stdin.write_all(&[0; 1 << 20]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        p.kill().unwrap();
        bounded("wait", p.wait()).await.unwrap();
    });
}
