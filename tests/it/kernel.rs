//! Ports of Curio's `test_kernel.py` covered by the kernel core, with Curio's names and event
//! orders, on the virtual clock.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use curio::{Kernel, spawn, spawn_daemon, yield_now};

use crate::{Log, vrun};

#[test]
fn hello() {
    assert_eq!(vrun(async { "hello" }), "hello");
}

#[test]
fn raise() {
    // A panic in the main task propagates out of `run`, payload intact.
    let r = std::panic::catch_unwind(|| vrun(async { std::panic::panic_any(42_u32) }));
    let payload = r.expect_err("run must propagate the panic");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
}

#[derive(Debug, PartialEq)]
struct MyError(&'static str);

#[test]
fn task_run_error() {
    // Curio: the main task's exception comes out of `run` unchanged. Rust: its `Err` does.
    let r: Result<(), MyError> = vrun(async { Err(MyError("boom")) });
    assert_eq!(r, Err(MyError("boom")));
}

#[curio::test(virtual_clock)]
async fn sleep() {
    let start = curio::clock();
    curio::sleep(Duration::from_millis(500)).await;
    // The virtual clock jumps exactly to the deadline.
    assert_eq!(curio::clock() - start, Duration::from_millis(500));
}

#[test]
fn sleep_real_clock() {
    // On the real clock a sleep never ends early.
    let start = std::time::Instant::now();
    curio::run(curio::sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[curio::test(virtual_clock)]
async fn clock() {
    let a = curio::clock();
    curio::sleep(Duration::from_millis(100)).await;
    assert_eq!(curio::clock() - a, Duration::from_millis(100));
}

#[test]
fn task_join() {
    let r = vrun(async {
        let child = spawn(async {
            curio::sleep(Duration::from_millis(100)).await;
            37
        });
        child.join().await
    });
    assert_eq!(r.unwrap(), 37);
}

#[test]
fn task_join_error() {
    let err = vrun(async {
        let child = spawn(async { "bad".parse::<i32>().unwrap() });
        child.join().await
    })
    .unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    assert!(err.to_string().contains("panicked"), "{err}");
    let payload = err.into_panic();
    let msg = payload.downcast_ref::<String>().expect("a formatted panic");
    assert!(msg.contains("InvalidDigit"), "{msg}");
}

#[test]
fn panicking_task_does_not_stop_the_kernel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let bad = spawn(async { panic!("task crash") });
        let l2 = l.clone();
        let good = spawn(async move {
            curio::sleep(Duration::from_millis(10)).await;
            l2.push("good finished");
        });
        let e = bad.join().await.unwrap_err();
        assert!(e.is_panic());
        l.push(format!("bad: {e}"));
        good.join().await.unwrap();
    });
    let events = log.take();
    assert_eq!(events.len(), 2);
    assert!(events[0].starts_with("bad: task ") && events[0].ends_with("panicked: task crash"));
    assert_eq!(events[1], "good finished");
}

#[test]
fn fifo_cycle_order() {
    // spawn never switches; children run FIFO in the next cycle; a yield goes to the back.
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let la = l.clone();
        let a = spawn(async move {
            la.push("a1");
            yield_now().await;
            la.push("a2");
        });
        let lb = l.clone();
        let b = spawn(async move {
            lb.push("b1");
            yield_now().await;
            lb.push("b2");
        });
        l.push("m1");
        yield_now().await;
        l.push("m2");
        a.join().await.unwrap();
        b.join().await.unwrap();
        l.push("m3");
    });
    assert_eq!(log.take(), ["m1", "a1", "b1", "m2", "a2", "b2", "m3"]);
}

#[test]
fn sleep_0_starvation() {
    // A task yielding forever cannot starve two tasks bouncing a byte over a socket pair.
    use std::os::unix::net::UnixStream;
    let bounced = vrun(async {
        let spinner = spawn(async {
            loop {
                curio::sleep(Duration::ZERO).await;
            }
        });
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let a = Rc::new(curio::rt::Async::new(a));
        let b = curio::rt::Async::new(b);
        let count = Rc::new(Cell::new(0));
        let c2 = count.clone();
        let ponger = spawn(async move {
            let mut buf = [0u8; 1];
            loop {
                let n = b.read_with(|s| (&*s).read(&mut buf)).await.unwrap();
                if n == 0 {
                    break;
                }
                b.write_with(|s| (&*s).write(&buf)).await.unwrap();
                c2.set(c2.get() + 1);
            }
        });
        let mut buf = [0u8; 1];
        for i in 0..1000u32 {
            let byte = [i as u8];
            a.write_with(|s| (&*s).write(&byte)).await.unwrap();
            let n = a.read_with(|s| (&*s).read(&mut buf)).await.unwrap();
            assert_eq!((n, buf[0]), (1, i as u8));
        }
        drop(a);
        ponger.join().await.unwrap();
        // The spinner is still cancellable afterwards.
        spinner.cancel().await;
        assert!(spinner.is_terminated() && spinner.is_cancelled());
        assert!(spinner.join().await.unwrap_err().is_cancelled());
        count.get()
    });
    assert_eq!(bounced, 1000);
}

#[test]
fn reentrant_kernel() {
    let err = vrun(async {
        spawn(async { curio::run(async {}) })
            .join()
            .await
            .unwrap_err()
    });
    assert!(err.is_panic());
    let payload = err.into_panic();
    let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("only one curio kernel"), "{msg}");
}

#[test]
fn single_stepping() {
    // Curio's test_single_stepping: a reusable kernel whose daemon stays parked between runs.
    let value = Rc::new(Cell::new(0));
    let v = value.clone();
    let mut kernel = Kernel::builder().virtual_clock(true).build();
    kernel.run(async move {
        let _ = spawn_daemon(async move {
            v.set(1);
            curio::sleep(Duration::from_millis(200)).await;
            v.set(2);
        });
    });
    assert_eq!(
        value.get(),
        0,
        "the child was spawned in the final cycle and has not run"
    );
    for _ in 0..10 {
        if value.get() == 1 {
            break;
        }
        kernel.step();
    }
    assert_eq!(value.get(), 1);
    kernel.step();
    assert_eq!(value.get(), 1, "a step does not move a virtual clock");
    kernel.advance(Duration::from_millis(200));
    kernel.step();
    assert_eq!(value.get(), 2);
    assert_eq!(kernel.task_count(), 0);
}

#[test]
fn tasks_stay_parked_between_runs() {
    let turns = Rc::new(Cell::new(0u32));
    let t = turns.clone();
    let mut kernel = Kernel::builder().virtual_clock(true).build();
    let task = kernel.run(async move {
        spawn(async move {
            loop {
                t.set(t.get() + 1);
                yield_now().await;
            }
        })
    });
    let before = turns.get();
    kernel.run(async {
        for _ in 0..5 {
            yield_now().await;
        }
    });
    assert!(turns.get() >= before + 5, "{before} -> {}", turns.get());
    assert!(!task.is_terminated());
    assert_eq!(kernel.task_count(), 1);
    drop(kernel);
    assert!(task.is_terminated() && task.is_cancelled());
}

/// Logs its name, and the running task's name, when dropped.
struct DropLog(Log, &'static str);

impl Drop for DropLog {
    fn drop(&mut self) {
        let me = curio::try_current_task().map(|t| t.name().to_owned());
        self.0
            .push(format!("{} dropped in {:?}", self.1, me.as_deref()));
    }
}

#[test]
fn shutdown_order() {
    // When main returns, remaining tasks are cancelled newest first, each dropped in its own turn.
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        for name in ["a", "b", "c"] {
            let g = DropLog(l.clone(), name);
            let _ = curio::Builder::new().name(name).spawn(async move {
                let _g = g;
                curio::sleep(Duration::from_secs(1000)).await;
            });
        }
        let g = DropLog(l.clone(), "d");
        let _ = curio::Builder::new().name("d").daemon().spawn(async move {
            let _g = g;
            std::future::pending::<()>().await;
        });
        yield_now().await;
    });
    assert_eq!(
        log.take(),
        [
            "d dropped in Some(\"d\")",
            "c dropped in Some(\"c\")",
            "b dropped in Some(\"b\")",
            "a dropped in Some(\"a\")",
        ]
    );
}

#[test]
fn cancel_waits_and_is_one_shot() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let g = DropLog(l.clone(), "guard");
        let child = curio::Builder::new().name("child").spawn(async move {
            let _g = g;
            curio::sleep(Duration::from_secs(10)).await;
        });
        yield_now().await;
        child.cancel().await;
        l.push("cancel returned");
        assert!(child.is_terminated() && child.is_cancelled());
        // Cancelling again, or cancelling a finished task, is a no-op.
        child.cancel().await;
        let done = spawn(async { 1 });
        done.wait().await;
        done.cancel().await;
        assert!(!done.is_cancelled());
        assert_eq!(done.join().await.unwrap(), 1);
        assert!(child.join().await.unwrap_err().is_cancelled());
    });
    assert_eq!(
        log.take(),
        ["guard dropped in Some(\"child\")", "cancel returned"]
    );
}

#[test]
fn spawn_join_100k() {
    let sum = vrun(async {
        let tasks: Vec<_> = (0..100_000u64).map(|i| spawn(async move { i })).collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.join().await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..100_000u64).sum());
}

#[test]
fn task_identity() {
    vrun(async {
        let me = curio::current_task();
        assert_eq!(me.name(), "main");
        let child = curio::Builder::new()
            .name("kid")
            .spawn(async { curio::current_task() });
        assert!(child.id() > me.id());
        assert_eq!(child.parent_id(), Some(me.id()));
        assert_eq!(child.name(), "kid");
        assert!(!child.is_daemon());
        let r = child.join().await.unwrap();
        assert_eq!(r.name(), "kid");
        let unnamed = spawn(async {});
        assert!(
            unnamed.name().contains("task_identity"),
            "{}",
            unnamed.name()
        );
    });
    assert!(curio::try_current_task().is_none());
}

#[test]
fn self_cancel_takes_effect_at_next_suspension() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let l2 = l.clone();
        let t = spawn(async move {
            curio::current_task().cancel().await;
            l2.push("still running after request");
            curio::sleep(Duration::ZERO).await;
            l2.push("unreachable");
        });
        assert!(t.join().await.unwrap_err().is_cancelled());
    });
    assert_eq!(log.take(), ["still running after request"]);
}

#[test]
fn dropped_join_detaches_the_task() {
    // A `join` given up on (here by a timeout) detaches the task, as dropping the handle does:
    // the task runs on, and the kernel still shuts down.
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    vrun(async move {
        let t = spawn(async move {
            curio::sleep(Duration::from_secs(1)).await;
            f.set(true);
        });
        yield_now().await;
        let r = curio::timeout_after(Duration::from_millis(10), t.join()).await;
        assert!(r.is_err());
        curio::sleep(Duration::from_secs(2)).await;
    });
    assert!(finished.get());
}

/// A kernel whose `Park` is not a reactor has no I/O: a socket operation that would wait fails
/// with an error that says so, instead of hanging.
#[test]
fn sockets_on_a_kernel_without_a_reactor_are_an_error() {
    use curio::rt::{Park, Unpark, Unparker};

    struct NoIo;
    impl Unpark for NoIo {
        fn unpark(&self) {}
    }
    impl Park for NoIo {
        fn park(&self, _timeout: Option<std::time::Duration>) -> std::io::Result<usize> {
            Ok(0)
        }
        fn unparker(&self) -> Unparker {
            Unparker::new(std::sync::Arc::new(NoIo))
        }
    }
    let mut kernel = curio::Kernel::builder()
        .park(Box::new(NoIo))
        .virtual_clock(true)
        .build();
    let err = kernel
        .run(async {
            let listener = curio::net::TcpListener::bind("127.0.0.1:0")?;
            listener.accept().await.map(drop)
        })
        .unwrap_err();
    assert!(err.to_string().contains("no reactor"), "{err}");
}

/// Waits in every layer report where the task waits: a queue `get` with its line, a socket read
/// by its direction, a thread-pool call with its line.
#[test]
fn wait_sites_across_the_layers() {
    use curio::rt::WaitKind;

    crate::vrun(async {
        let q: std::rc::Rc<curio::queue::Queue<u8>> = std::rc::Rc::new(curio::queue::Queue::new(0));
        let q2 = q.clone();
        let get_line = line!() + 1;
        let getter = curio::spawn(async move { q2.get().await.unwrap() });
        let (a, _b) = curio::net::UnixStream::pair().unwrap();
        let reader = curio::spawn(async move { a.recv(10).await });
        curio::yield_now().await;
        let site = getter.task_ref().wait_site().unwrap();
        assert_eq!(site.kind, WaitKind::QueueGet);
        assert_eq!(site.location.map(|l| l.line()), Some(get_line));
        let site = reader.task_ref().wait_site().unwrap();
        assert_eq!(site.kind, WaitKind::Read);
        q.put(1).await.unwrap();
        assert_eq!(getter.join().await.unwrap(), 1);
        reader.cancel().await;

        // Primitives built on others report their own kind at the caller's line, not the
        // inner primitive's wait inside curio-sync.
        let p = curio::sync::Promise::<u8>::new();
        let p2 = p.clone();
        let promise_line = line!() + 1;
        let promised = curio::spawn(async move { p2.get().await });
        let c = curio::sync::Condition::new();
        let c2 = c.clone();
        let cond_line = line!() + 3;
        let waiter = curio::spawn(async move {
            let guard = c2.lock().await;
            c2.wait_for(guard, || false).await.map(drop)
        });
        curio::yield_now().await;
        let site = promised.task_ref().wait_site().unwrap();
        assert_eq!(site.kind, WaitKind::Promise);
        assert_eq!(site.location.map(|l| l.line()), Some(promise_line));
        let site = waiter.task_ref().wait_site().unwrap();
        assert_eq!(site.kind, WaitKind::Condition);
        assert_eq!(site.location.map(|l| l.line()), Some(cond_line));
        p.set(7).unwrap();
        assert_eq!(promised.join().await.unwrap(), 7);
        waiter.cancel().await;
    });
}
