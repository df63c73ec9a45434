//! Async threads: Curio's `test_thread.py` with its test names, and the extras.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curio_kernel::{Kernel, TaskGroup, Wait, current_task, sleep, timeout_after};
use curio_sync::{Lock, UniversalPromise};
use curio_workers::{
    AwaitError, await_future, await_with, is_async_thread, spawn_thread, thread_task_id,
};

fn virtual_kernel() -> Kernel {
    Kernel::builder().virtual_clock(true).build()
}

#[test]
fn test_good_result() {
    let out = virtual_kernel().run(async {
        let t = spawn_thread(|| {
            await_with(|| sleep(Duration::from_millis(250))).unwrap();
            // Curio's `AWAIT(time.sleep, 0.25)` passes a plain call through: in Rust, call it.
            std::thread::yield_now();
            5
        });
        t.join().await
    });
    assert_eq!(out.unwrap(), 5);
}

#[test]
fn test_bad_result() {
    let err = virtual_kernel().run(async {
        let t = spawn_thread(|| -> i32 {
            await_with(|| sleep(Duration::from_millis(250))).unwrap();
            panic!("unsupported operand type(s) for +: 'int' and 'str'");
        });
        t.join().await.unwrap_err()
    });
    assert!(err.is_panic());
    let p = err.into_panic();
    assert!(
        p.downcast_ref::<&str>()
            .unwrap()
            .contains("unsupported operand")
    );
}

#[test]
fn test_cancel_result() {
    let err = virtual_kernel().run(async {
        let t = spawn_thread(|| await_with(|| sleep(Duration::from_secs(10))));
        sleep(Duration::from_millis(250)).await;
        t.cancel().await;
        assert!(t.is_cancelled());
        t.join().await.unwrap_err()
    });
    assert!(err.is_cancelled());
}

#[test]
fn test_thread_cancel_result() {
    let seen = virtual_kernel().run(async {
        let q = Arc::new(UniversalPromise::new());
        let q2 = q.clone();
        let t = spawn_thread(move || {
            let r = await_with(|| sleep(Duration::from_secs(10)));
            assert!(q2.set(r).is_ok());
        });
        sleep(Duration::from_millis(250)).await;
        t.cancel().await;
        q.get().await
    });
    assert_eq!(seen, Err(AwaitError::Cancelled));
}

curio_kernel::task_local! {
    static LOCK: Rc<Lock>;
}

#[test]
fn test_thread_sync() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    virtual_kernel().run(async move {
        let lock = Rc::new(Lock::new());
        LOCK.set(lock.clone()).unwrap();
        let guard = lock.lock().await;
        let l3 = l2.clone();
        // The stand-in task inherits LOCK; the thread's critical section runs there.
        let t = spawn_thread(move || {
            await_with(move || async move {
                let lock = LOCK.get().unwrap().unwrap();
                let _g = lock.lock().await;
                l3.lock().unwrap().push("func");
            })
            .unwrap();
        });
        l2.lock().unwrap().push("main");
        sleep(Duration::from_millis(500)).await;
        l2.lock().unwrap().push("main done");
        drop(guard);
        t.join().await.unwrap();
    });
    assert_eq!(*log.lock().unwrap(), ["main", "main done", "func"]);
}

#[test]
fn test_thread_timeout() {
    let out = virtual_kernel().run(async {
        spawn_thread(|| {
            await_with(|| timeout_after(Duration::from_secs(1), sleep(Duration::from_secs(2))))
        })
        .join()
        .await
    });
    assert!(
        out.unwrap().unwrap().is_err(),
        "the timeout reaches the thread"
    );
}

async fn double(x: i32) -> i32 {
    sleep(Duration::from_millis(10)).await;
    2 * x
}

#[test]
fn test_task_group_thread() {
    // Curio's thread uses a TaskGroup through its sync twin; here the whole group lives in one
    // future on the kernel.
    let out = virtual_kernel().run(async {
        spawn_thread(|| {
            await_with(|| async {
                let g = TaskGroup::new(Wait::All);
                let _ = g.spawn(double(1));
                let _ = g.spawn(double(2));
                g.join().await;
                g.results().unwrap()
            })
        })
        .join()
        .await
    });
    assert_eq!(out.unwrap().unwrap(), [2, 4]);
}

#[test]
fn test_task_group_spawn_thread() {
    let (results, third) = virtual_kernel().run(async {
        let g = TaskGroup::new(Wait::All);
        let mut refs = Vec::new();
        for x in 1..=3 {
            let t = spawn_thread(move || {
                await_with(move || sleep(Duration::from_millis(10 * x as u64))).unwrap();
                2 * x
            });
            refs.push(g.add_task(t.into_task()).unwrap());
        }
        let third = g.remove(&refs[2]).unwrap().join().await.unwrap();
        g.join().await;
        (g.results().unwrap(), third)
    });
    assert_eq!(results, [2, 4]);
    assert_eq!(third, 6);
}

#[test]
fn test_await_passthrough() {
    // Curio's `AWAIT(f, x)` on a plain function just calls it; a ready future is the Rust analog.
    let out = virtual_kernel().run(async {
        spawn_thread(|| await_future(std::future::ready(42)).unwrap() + str::len("ab") as i32)
            .join()
            .await
    });
    assert_eq!(out.unwrap(), 44);
}

#[test]
fn test_errors() {
    // Outside an async thread, await_with is an error, not a hang: on a plain thread and on the
    // kernel's own thread.
    assert!(!is_async_thread());
    let plain = std::thread::spawn(|| await_future(async { 1 }))
        .join()
        .unwrap();
    assert_eq!(plain, Err(AwaitError::NotAsyncThread));
    let on_kernel = curio_kernel::run(async { await_future(async { 1 }) });
    assert_eq!(on_kernel, Err(AwaitError::NotAsyncThread));
    // spawn_thread outside a kernel is misuse, reported by a panic.
    assert!(std::panic::catch_unwind(|| drop(spawn_thread(|| 1))).is_err());
}

#[test]
fn stand_in_task_is_current_task_inside_await() {
    let (tid, seen, name, from_thread) = virtual_kernel().run(async {
        let t = spawn_thread(|| {
            let (id, name) =
                await_with(|| async { (current_task().id(), current_task().name().to_owned()) })
                    .unwrap();
            (id, name, thread_task_id())
        });
        let tid = t.id();
        let (seen, name, from_thread) = t.join().await.unwrap();
        (tid, seen, name, from_thread)
    });
    assert_eq!(tid, seen);
    assert_eq!(name, "thread");
    assert_eq!(from_thread, Some(tid));
}

#[test]
fn panic_in_awaited_future_reaches_the_thread() {
    let out = virtual_kernel().run(async {
        spawn_thread(|| {
            std::panic::catch_unwind(|| await_with(|| async { panic!("kernel side") }))
                .map_err(|p| *p.downcast::<&str>().unwrap())
        })
        .join()
        .await
    });
    assert_eq!(out.unwrap().unwrap_err(), "kernel side");
}

struct DropRecord(Arc<Mutex<Option<curio_kernel::TaskId>>>);

impl Drop for DropRecord {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(current_task().id());
    }
}

#[test]
fn cancel_inside_await_sleep_is_prompt_and_cleanup_runs() {
    // On the real clock: a cancel that waited for the 10 s sleep would show in the elapsed time.
    let dropped_in = Arc::new(Mutex::new(None));
    let d2 = dropped_in.clone();
    let (elapsed, cleanup, tid) = curio_kernel::run(async move {
        let entered = Arc::new(UniversalPromise::new());
        let cleaned = Arc::new(UniversalPromise::new());
        let (e2, c2) = (entered.clone(), cleaned.clone());
        let t = spawn_thread(move || {
            let r = await_with(move || async move {
                let _rec = DropRecord(d2);
                assert!(e2.set(()).is_ok());
                sleep(Duration::from_secs(10)).await;
            });
            // The thread's cleanup, after the error.
            assert!(c2.set(r).is_ok());
        });
        entered.get().await;
        let start = Instant::now();
        t.cancel().await;
        let elapsed = start.elapsed();
        (elapsed, cleaned.get().await, t.id())
    });
    assert!(elapsed < Duration::from_secs(5), "cancel took {elapsed:?}");
    assert_eq!(cleanup, Err(AwaitError::Cancelled));
    // The awaited future was dropped on the kernel, inside the stand-in task.
    assert_eq!(*dropped_in.lock().unwrap(), Some(tid));
}

#[test]
fn cancelled_thread_gets_cancelled_at_its_next_await() {
    let out = virtual_kernel().run(async {
        let go = Arc::new(UniversalPromise::<()>::new());
        let res = Arc::new(UniversalPromise::new());
        let (g2, r2) = (go.clone(), res.clone());
        let t = spawn_thread(move || {
            // Running its own code when the cancel comes.
            g2.get_blocking();
            let a = await_future(async { 1 });
            let b = await_future(async { 2 });
            assert!(r2.set((a, b)).is_ok());
        });
        t.cancel().await;
        assert!(go.set(()).is_ok());
        res.get().await
    });
    assert_eq!(
        out,
        (Err(AwaitError::Cancelled), Err(AwaitError::Cancelled))
    );
}

#[test]
fn thread_consumes_kernel_queue() {
    // A kernel-local Queue reached through a task-local of the stand-in.
    curio_kernel::task_local! {
        static Q: Rc<curio_sync::Queue<u32>>;
    }
    let sum = virtual_kernel().run(async {
        let q = Rc::new(curio_sync::Queue::new(0));
        Q.set(q.clone()).unwrap();
        let t = spawn_thread(|| {
            let mut sum = 0;
            loop {
                let item = await_with(|| async { Q.get().unwrap().unwrap().get().await })
                    .unwrap()
                    .expect("the queue stays open");
                if item == 0 {
                    return sum;
                }
                sum += item;
            }
        });
        for i in [1, 2, 3, 0] {
            q.put(i).await.expect("open");
        }
        t.join().await.unwrap()
    });
    assert_eq!(sum, 6);
}

#[test]
fn daemon_thread_is_a_daemon_task() {
    let (daemon, plain, out) = virtual_kernel().run(async {
        let d = curio_workers::spawn_thread_daemon(|| await_future(async { 3 }));
        let p = spawn_thread(|| 4);
        (
            d.is_daemon(),
            p.is_daemon(),
            d.join().await.unwrap().unwrap(),
        )
    });
    assert!(daemon);
    assert!(!plain);
    assert_eq!(out, 3);
}
