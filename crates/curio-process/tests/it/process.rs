//! Children beyond Curio's tests: large data, streaming, timeouts, reaping, parallelism.

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use curio_process::{Command, Stdio, SubprocessError, run};

use crate::child::{child_count, fd_count, in_child, zombie_count};
use crate::{bounded, sh};

/// Waits (bounded) until `cond` holds: for effects outside this process's control, such as the
/// reaper thread reaping a child, for which there is no event to wait on.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not after 30 s");
}

fn proc_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn communicate_8mib_through_cat() {
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i * 31 + i / 4099) as u8).collect();
    let out = curio_kernel::run(async {
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        bounded("communicate", cat.communicate(&data))
            .await
            .unwrap()
    });
    assert!(out.status.success());
    assert!(out.stdout == data, "cat returned other bytes");
}

#[test]
fn lines_arrive_while_the_child_still_runs() {
    curio_kernel::run(async {
        let mut p = sh("echo one; read x; echo two $x")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = p.stdout.take().unwrap();
        assert_eq!(
            bounded("first line", out.read(100)).await.unwrap(),
            b"one\n"
        );
        assert!(p.try_wait().unwrap().is_none(), "the child waits for input");
        let stdin = p.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        assert_eq!(
            bounded("second line", out.read(100)).await.unwrap(),
            b"two go\n"
        );
        assert!(bounded("wait", p.wait()).await.unwrap().success());
    });
}

#[test]
fn timed_out_run_reports_partial_output_and_leaves_no_process() {
    // In a child process: other tests' children would count as zombies here.
    if !in_child("process::timed_out_run_reports_partial_output_and_leaves_no_process") {
        return;
    }
    curio_kernel::run(async {
        let mut cmd = sh("echo partial; echo err >&2; exec sleep 30");
        cmd.timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = match bounded("run", run(&mut cmd)).await {
            Err(SubprocessError::TimedOut(e)) => e,
            other => panic!("expected a timeout, got {other:?}"),
        };
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(
            (e.stdout, e.stderr),
            (b"partial\n".to_vec(), b"err\n".to_vec())
        );
    });
    // The child was killed and reaped by `run` itself.
    assert_eq!((zombie_count(), child_count()), (0, 0));
}

#[test]
fn outer_timeout_keeps_what_communicate_read() {
    curio_kernel::run(async {
        let mut p = sh("echo partial; exec sleep 30")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The line comes at once; the timeout is long enough for a loaded machine to print it.
        let r = curio_kernel::timeout_after(Duration::from_secs(2), p.communicate(b"")).await;
        assert!(r.is_err());
        assert_eq!(p.take_output().0, b"partial\n");
        let pid = p.id();
        p.kill().unwrap();
        let status = bounded("wait", p.wait()).await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(!proc_exists(pid));
    });
}

#[test]
fn exit_by_signal_is_reported() {
    curio_kernel::run(async {
        let mut p = sh("exec sleep 30").spawn().unwrap();
        p.terminate().unwrap();
        let s = bounded("wait", p.wait()).await.unwrap();
        assert_eq!((s.code(), s.signal()), (None, Some(libc::SIGTERM)));
        // Signalling a reaped child does nothing.
        p.kill().unwrap();
        p.send_signal(libc::SIGUSR1).unwrap();
        let mut p = sh("exec sleep 30").spawn().unwrap();
        p.send_signal(libc::SIGUSR2).unwrap();
        let s = bounded("wait", p.wait()).await.unwrap();
        assert_eq!(s.signal(), Some(libc::SIGUSR2));
    });
}

#[test]
fn fifty_children_run_in_parallel_while_a_task_ticks() {
    let (elapsed, ticks) = curio_kernel::run(async {
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = curio_kernel::spawn(async move {
            loop {
                curio_kernel::sleep(Duration::from_millis(10)).await;
                t.set(t.get() + 1);
            }
        });
        let started = Instant::now();
        let kids: Vec<_> = (0..50)
            .map(|_| {
                curio_kernel::spawn(async {
                    let mut c = Command::new("sleep").arg("1").spawn().unwrap();
                    c.wait().await.unwrap()
                })
            })
            .collect();
        for k in kids {
            assert!(bounded("child", k.join()).await.unwrap().success());
        }
        let elapsed = started.elapsed();
        ticker.cancel().await;
        (elapsed, ticks.get())
    });
    // One after another they would take 50 s.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(
        ticks >= 20,
        "the ticker ran only {ticks} times in {elapsed:?}"
    );
}

#[test]
fn dropped_child_keeps_running_and_is_reaped_later() {
    if !in_child("process::dropped_child_keeps_running_and_is_reaped_later") {
        return;
    }
    let pid = curio_kernel::run(async {
        let p = sh("exec sleep 30").spawn().unwrap();
        p.id()
    });
    // The kernel is gone; the child runs on, as with std and tokio.
    assert!(proc_exists(pid));
    assert_eq!(zombie_count(), 0);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually("the reaper reaps the killed child", || !proc_exists(pid));
    assert_eq!(zombie_count(), 0);
}

#[test]
fn kill_on_drop_kills_and_reaps() {
    if !in_child("process::kill_on_drop_kills_and_reaps") {
        return;
    }
    let pid = curio_kernel::run(async {
        let p = sh("exec sleep 30").kill_on_drop(true).spawn().unwrap();
        let pid = p.id();
        // A dropped `run` future kills its child the same way.
        let r =
            curio_kernel::timeout_after(Duration::from_millis(50), run(&mut sh("exec sleep 30")))
                .await;
        assert!(r.is_err());
        drop(p);
        pid
    });
    eventually("both children are gone", || {
        !proc_exists(pid) && child_count() == 0
    });
}

#[test]
fn spawn_kill_timeout_cycles_leave_no_zombie_and_no_descriptor() {
    if !in_child("process::spawn_kill_timeout_cycles_leave_no_zombie_and_no_descriptor") {
        return;
    }
    curio_kernel::run(async {
        // One round first: the reactor, the reaper thread and its eventfd are made once.
        cycle(0).await;
        cycle(1).await;
        cycle(2).await;
        // The reaper holds a dropped child's pidfd until the child is reaped.
        eventually("the reaper reaps the warm-up's children", || {
            child_count() == 0
        });
        let before = fd_count();
        for i in 0..300 {
            cycle(i).await;
        }
        eventually("the reaper reaps the dropped children", || {
            child_count() == 0
        });
        assert_eq!(zombie_count(), 0);
        assert_eq!(fd_count(), before, "descriptors leaked");
    });
}

/// One spawn: killed and waited, timed out by `run`, or dropped with `kill_on_drop`.
async fn cycle(i: u32) {
    match i % 3 {
        0 => {
            let mut p = Command::new("sleep")
                .arg("30")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            p.kill().unwrap();
            p.wait().await.unwrap();
        }
        1 => {
            let mut cmd = Command::new("sleep");
            cmd.arg("30").timeout(Duration::from_millis(1));
            assert!(matches!(
                run(&mut cmd).await,
                Err(SubprocessError::TimedOut(_))
            ));
        }
        _ => {
            let p = Command::new("sleep")
                .arg("30")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            drop(p);
        }
    }
}

#[test]
fn sigchld_fallback_waits_and_reaps() {
    if !in_child("process::sigchld_fallback_waits_and_reaps") {
        return;
    }
    curio_process::set_use_pidfd(false);
    curio_kernel::run(async {
        let mut p = sh("exit 7").spawn().unwrap();
        assert!(!p.has_pidfd());
        assert_eq!(bounded("wait", p.wait()).await.unwrap().code(), Some(7));
        // Several waits at once, each woken by SIGCHLD.
        let kids: Vec<_> = (0..10)
            .map(|i| {
                curio_kernel::spawn(async move {
                    let mut c = sh(&format!("sleep 0.{i}; exit {i}")).spawn().unwrap();
                    c.wait().await.unwrap().code()
                })
            })
            .collect();
        for (i, k) in kids.into_iter().enumerate() {
            assert_eq!(bounded("child", k.join()).await.unwrap(), Some(i as i32));
        }
        let out = bounded("run", run(&mut sh("echo fallback"))).await.unwrap();
        assert_eq!(out.stdout, b"fallback\n");
        // Dropped children are reaped on SIGCHLD too.
        for _ in 0..5 {
            drop(sh("exec sleep 30").kill_on_drop(true).spawn().unwrap());
        }
        drop(sh("exit 0").spawn().unwrap());
    });
    eventually("the reaper reaps without pidfds", || child_count() == 0);
}

#[test]
fn a_pipe_is_readable_after_a_cancelled_communicate() {
    curio_kernel::run(async {
        let mut p = sh("read x; echo late $x")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = p.stdin.take().unwrap();
        // Nothing comes before the child gets its line: the call times out, waiting to read.
        let r = curio_kernel::timeout_after(Duration::from_millis(50), p.communicate(b"")).await;
        assert!(r.is_err());
        stdin.write_all(b"go\n").await.unwrap();
        let out = p.stdout.as_ref().unwrap();
        assert_eq!(bounded("read", out.read(100)).await.unwrap(), b"late go\n");
        assert!(bounded("wait", p.wait()).await.unwrap().success());
    });
}
