//! Regression tests for the defects found by hostile testing (issue 9): each fails on the code
//! before its fix.

use curio::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

use curio::queue::Queue;
use curio::sync::Condition;
use curio::{spawn, yield_now};

use crate::vrun;

/// A put cancelled after a get reserved a place for it has no effect, in a running kernel.
#[test]
fn cancelled_put_never_inserts() {
    vrun(async {
        let q: Rc<Queue<i32>> = Rc::new(Queue::new(1));
        q.put(1).await.unwrap();
        let q2 = q.clone();
        let putter = spawn(async move { q2.put(2).await.unwrap() });
        yield_now().await; // the putter waits for room
        assert_eq!(q.get().await.unwrap(), 1); // reserves the place for the putter
        putter.cancel().await; // before the putter's task ran again
        let outcome = putter.join().await;
        assert!(outcome.is_err_and(|e| e.is_cancelled()));
        assert!(q.is_empty(), "a cancelled put left its item in the queue");
        assert!(!q.is_full(), "the reserved place was not given back");
        q.put(3).await.unwrap();
        assert_eq!(q.get().await.unwrap(), 3);
    });
}

/// `notify(1)` followed by cancelling the notified waiter wakes the next waiter.
#[test]
fn condition_notification_passes_on() {
    vrun(async {
        let cond = Rc::new(Condition::new());
        let woke: Rc<RefCell<Vec<u32>>> = Rc::default();
        let waiter = |n: u32| {
            let (c, w) = (cond.clone(), woke.clone());
            spawn(async move {
                let g = c.lock().await;
                let _g = c.wait(g).await.unwrap();
                w.borrow_mut().push(n);
            })
        };
        let (first, second) = (waiter(1), waiter(2));
        yield_now().await; // both wait
        let g = cond.lock().await;
        cond.notify(1).unwrap();
        drop(g);
        first.cancel().await;
        second.join().await.unwrap();
        assert_eq!(*woke.borrow(), [2]);
    });
}

/// A group's good results stay reachable when a sibling failed or was cancelled, through
/// `exceptions()` and a failed `results()`, and members taken out after the join join to their
/// real outcome.
#[test]
fn group_results_survive_failures() {
    use curio::{GroupError, TaskGroup, Wait};
    vrun(async {
        // A panicking sibling: `results` reports it, `exceptions` copies it, nothing is lost.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        g.spawn(async { 1 });
        g.spawn(async { panic!("boom") });
        g.spawn(async { 3 });
        g.join().await;
        assert!(matches!(g.results(), Err(GroupError::Failed(e)) if e.is_panic()));
        let ex = g.exceptions().unwrap();
        assert!(ex[0].is_none() && ex[2].is_none());
        let copy = ex[1].as_ref().unwrap();
        assert!(copy.is_panic() && copy.to_string().contains("boom"));
        assert_eq!(
            g.exceptions().unwrap().len(),
            3,
            "exceptions() can be asked again"
        );
        let out = g.outcomes().unwrap();
        assert_eq!(*out[0].as_ref().unwrap(), 1);
        assert!(out[1].as_ref().is_err_and(|e| e.is_panic()));
        assert_eq!(*out[2].as_ref().unwrap(), 3);
        assert!(matches!(g.outcomes(), Err(GroupError::Taken)));

        // `Wait::Any`: the first member's value and the cancelled sibling, both reachable.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::Any);
        let first = g.spawn(async { 7 });
        let slow = g.spawn(std::future::pending());
        g.join().await;
        assert_eq!(g.completed().unwrap().unwrap().id(), first.id());
        // Taken out after the join, the member joins to its value, not to "cancelled".
        let t = g.remove(&first).expect("still a member");
        assert_eq!(t.join().await.unwrap(), 7);
        let t = g.remove(&slow).expect("still a member");
        assert!(t.join().await.is_err_and(|e| e.is_cancelled()));

        // `next_done` after a `Wait::None` join hands out members with their outcomes too.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::None);
        g.spawn(async { 5 });
        yield_now().await; // the member finishes before the join
        g.join().await;
        let t = g.next_done().await.expect("a finished member");
        assert_eq!(t.join().await.unwrap(), 5);
        // Once `result`/`outcomes` moved an output out, the member is no longer handed out.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let m = g.spawn(async { 9 });
        g.join().await;
        assert_eq!(g.result().unwrap(), 9);
        assert!(matches!(g.result(), Err(GroupError::Taken)));
        assert!(g.remove(&m).is_none());
    });
}

/// A value whose `Drop` panics.
#[derive(Clone)]
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

curio::task_local! {
    static BOMB: PanicOnDrop;
}

/// Runs `f` on its own thread and fails the test if it has not finished within [`crate::LIMIT`]:
/// a regression shows as a failure, not as a hung test run.
fn within_limit<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(crate::LIMIT) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("no result in {:?}: hung", crate::LIMIT),
    }
}

/// A panic in a task-local value's `Drop`, in the main task and in a spawned one, is contained:
/// `run` returns, the spawned task's output is delivered, and shutdown does not hang.
#[test]
fn panicking_task_local_drop_is_contained() {
    let out = within_limit(|| {
        curio::run(async {
            let child = spawn(async {
                BOMB.set(PanicOnDrop("child local")).unwrap();
                7
            });
            let v = child.join().await.unwrap();
            BOMB.set(PanicOnDrop("main local")).unwrap();
            v
        })
    });
    assert_eq!(out, 7);
}

/// A panic in the `Drop` of a detached task's output is reported like a task panic, and the
/// process goes on (async-task would abort).
#[test]
fn panicking_detached_output_drop_is_contained() {
    let out = within_limit(|| {
        curio::run(async {
            drop(spawn(async { PanicOnDrop("detached output") }));
            yield_now().await;
            yield_now().await;
            let t = spawn(async { PanicOnDrop("joined output") });
            let v = t.join().await.unwrap();
            std::mem::forget(v);
            "still running"
        })
    });
    assert_eq!(out, "still running");
}

/// A `Kernel` dropped inside another kernel's task drops all of its tasks: their futures' and
/// task-locals' `Drop` code runs (a panic in it is contained), so nothing leaks.
#[test]
fn kernel_dropped_inside_a_task_drops_its_tasks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    within_limit(move || {
        let mut inner = curio::Kernel::new();
        inner.run(async {
            for _ in 0..3 {
                let c = Count(d.clone());
                // Parked on an event no one sets: only a drop ends them.
                drop(spawn(async move {
                    let never = Rc::new(curio::sync::Event::new());
                    let _c = c;
                    never.wait().await;
                }));
            }
            drop(spawn(async {
                BOMB.set(PanicOnDrop("inner local")).unwrap();
                std::future::pending::<()>().await;
            }));
            let c = Count(d.clone());
            drop(spawn(async move {
                let _c = c;
                let _bomb = PanicOnDrop("inner future");
                std::future::pending::<()>().await;
            }));
            yield_now().await;
        });
        assert_eq!(inner.task_count(), 5);
        curio::run(async move {
            drop(inner);
        });
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 4);
}

/// Joining a task of a kernel that is not running is a clear panic, not a silent hang.
#[test]
fn join_of_a_task_of_another_kernel_panics() {
    let err = within_limit(|| {
        let mut a = curio::Kernel::new();
        let t = a.run(async { spawn(std::future::pending::<()>()) });
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            curio::run(async move {
                let _ = t.join().await;
            })
        }))
        .expect_err("joining must panic")
    });
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("not running on this thread"), "{msg}");
}

/// The same for `wait` and `cancel`, on the handle and on a `TaskRef`.
#[test]
fn waiting_for_or_cancelling_a_task_of_another_kernel_panics() {
    type Op = fn(curio::Task<()>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    let ops: [Op; 4] = [
        |t| Box::pin(async move { t.wait().await }),
        |t| Box::pin(async move { t.cancel().await }),
        |t| Box::pin(async move { t.task_ref().wait().await }),
        |t| Box::pin(async move { t.task_ref().cancel().await }),
    ];
    for op in ops {
        let err = within_limit(move || {
            let mut a = curio::Kernel::new();
            let t = a.run(async { spawn(std::future::pending::<()>()) });
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                curio::run(op(t));
            }))
            .expect_err("waiting must panic")
        });
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("not running on this thread"), "{msg}");
    }
}

/// A panic in the `Drop` of a cancelled `run_in_thread` call's result neither kills the worker
/// nor leaks its place in the pool: with one worker thread, later calls still run.
#[test]
fn panicking_result_drop_keeps_the_pool_working() {
    let out = within_limit(|| {
        let mut kernel = curio::Kernel::builder().max_worker_threads(1).build();
        kernel.run(async {
            let started = curio::sync::UniversalEvent::new();
            let s2 = started.clone();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let call = spawn(curio::run_in_thread(move || {
                s2.set();
                go_rx.recv().unwrap();
                PanicOnDrop("cancelled result")
            }));
            // Cancel the call while it runs on the only worker thread.
            started.wait().await;
            call.cancel().await;
            go_tx.send(()).unwrap();
            let mut sum = 0;
            for n in 1..=3 {
                sum += curio::run_in_thread(move || n).await;
            }
            sum
        })
    });
    assert_eq!(out, 6);
}

/// Transient accept errors (ENOBUFS, ENOMEM, EPERM, EPROTO) back off and continue, like EMFILE;
/// a connection that failed before it was accepted is skipped; a broken listener stops the
/// server with its error.
#[test]
fn run_server_survives_transient_accept_errors() {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::io;
    use std::net::SocketAddr;

    use curio::net::{Listener, ServerOptions, TcpListener, TcpStream, run_server_with};
    use rustix::io::Errno;

    /// Fails with scripted errors, then accepts from a real listener.
    struct Scripted {
        errors: RefCell<VecDeque<Errno>>,
        real: TcpListener,
    }
    impl Listener for Scripted {
        type Stream = TcpStream;
        type Addr = SocketAddr;
        async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
            let next = self.errors.borrow_mut().pop_front();
            match next {
                Some(e) => Err(io::Error::from_raw_os_error(e.raw_os_error())),
                None => self.real.accept().await,
            }
        }
    }

    let result = within_limit(|| {
        curio::run(async {
            let real = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = real.local_addr().unwrap();
            let errors = [
                Errno::NOBUFS,
                Errno::NOMEM,
                Errno::PERM,
                Errno::PROTO,
                Errno::CONNABORTED,
                Errno::NETUNREACH,
            ];
            let listener = Scripted {
                errors: RefCell::new(errors.into_iter().collect()),
                real,
            };
            let options = ServerOptions::default().accept_backoff(std::time::Duration::ZERO);
            let server = spawn(run_server_with(
                listener,
                |client: TcpStream, _| async move {
                    let data = client.recv(16).await?;
                    client.sendall(&data).await
                },
                options,
            ));
            let client = TcpStream::connect(addr).await.unwrap();
            client.sendall(b"ping").await.unwrap();
            let echoed = client.recv(16).await.unwrap();
            server.cancel().await;

            // A listener that is unusable stops the server with its error.
            let broken = Scripted {
                errors: RefCell::new([Errno::BADF].into_iter().collect()),
                real: TcpListener::bind("127.0.0.1:0").unwrap(),
            };
            let err = run_server_with(broken, |_: TcpStream, _| async {}, ServerOptions::default())
                .await
                .unwrap_err();
            (echoed, err.raw_os_error())
        })
    });
    assert_eq!(result.0, b"ping");
    assert_eq!(result.1, Some(Errno::BADF.raw_os_error()));
}

/// A task whose cancellation is requested in its first turn, after it dropped a group whose
/// shielded member lives on, waits for that member and then ends. Its header had kept no
/// waker yet (it had never suspended), so the wait registered none, and only the task's own
/// hour-long sleep woke it.
#[test]
fn a_task_cancelled_in_its_first_turn_waits_for_its_orphans_and_ends() {
    vrun(async {
        let start = curio::clock();
        let owner = spawn(async {
            let g: curio::TaskGroup<()> = curio::TaskGroup::new(curio::Wait::All);
            g.spawn(curio::disable_cancellation(curio::sleep(crate::ms(10))));
            // The member is shielded: dropping the group leaves it running, an orphan.
            drop(g);
            curio::current_task().cancel_nowait();
            curio::sleep(crate::secs(3600.0)).await;
        });
        crate::bounded("the owner", owner.wait()).await;
        assert!(owner.is_cancelled());
        let took = curio::clock() - start;
        assert!(
            took < crate::secs(1.0),
            "ended by the orphan's end, not its own sleep: {took:?}"
        );
    });
}
