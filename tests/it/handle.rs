//! `KernelHandle`: other threads waking and spawning on a kernel; kernel teardown.

use curio::prelude::*;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::child::{fd_count, in_child, thread_count};

#[test]
fn woken_from_another_thread() {
    let flag = Arc::new(AtomicBool::new(false));
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (f2, s2) = (flag.clone(), slot.clone());
    let polls = curio::Kernel::builder()
        .virtual_clock(true)
        .build()
        .run(async move {
            let handle = curio::rt::try_handle().unwrap();
            let t = std::thread::spawn(move || {
                // Wait until the task has parked its waker, then wake it from this thread.
                loop {
                    if let Some(w) = s2.lock().unwrap().take() {
                        f2.store(true, Ordering::SeqCst);
                        w.wake();
                        break;
                    }
                    std::thread::yield_now();
                }
                drop(handle);
            });
            let mut polls = 0;
            poll_fn(|cx| {
                polls += 1;
                if flag.load(Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            t.join().unwrap();
            polls
        });
    assert!(polls >= 2);
}

#[test]
fn handle_spawns_from_another_thread() {
    let mut kernel = curio::Kernel::new();
    let handle = kernel.handle();
    let t = std::thread::spawn(move || {
        let a = handle.spawn(async {
            curio::sleep(Duration::from_millis(5)).await;
            curio::current_task().name().to_owned()
        });
        let b = handle.spawn(async { panic!("remote boom") });
        let c = handle.spawn(std::future::pending::<()>());
        // Cancel the pending one once the kernel has started it.
        while c.id().is_none() {
            std::thread::yield_now();
        }
        c.cancel();
        (a.join_blocking(), b.join_blocking(), c.join_blocking())
    });
    let (a, b, c) = kernel.run(async move { curio::rt::run_until_thread_done(t).await.unwrap() });
    assert_eq!(a.unwrap(), "remote");
    assert!(b.unwrap_err().is_panic());
    assert!(c.unwrap_err().is_cancelled());
}

#[test]
fn remote_task_is_a_future_for_other_executors() {
    let mut kernel = curio::Kernel::new();
    let remote = kernel.handle().spawn(async { 7 });
    // Drive the kernel on this thread while another thread awaits the remote handle with a
    // minimal executor of its own.
    let t = std::thread::spawn(move || block_on(remote));
    let r = kernel.run(async move { curio::rt::run_until_thread_done(t).await.unwrap() });
    assert_eq!(r.unwrap(), 7);
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn kernel_drop_leaves_nothing() {
    if !in_child("handle::kernel_drop_leaves_nothing", &[]) {
        return;
    }
    let fds = fd_count();
    let threads = thread_count();
    {
        let mut kernel = curio::Kernel::builder()
            .worker_idle_timeout(Duration::from_secs(60))
            .build();
        kernel.run(async {
            let l = curio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let _ = curio::spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                let _ = s.recv(10).await;
            });
            let _c = curio::net::TcpStream::connect(addr).await.unwrap();
            let n = curio::run_in_thread(|| 5).await;
            assert_eq!(n, 5);
            // A daemon parked forever and a sleeper: shutdown must cancel both.
            let _ = curio::spawn_daemon(std::future::pending::<()>());
            let _ = curio::spawn(curio::sleep(Duration::from_secs(3600)));
            curio::yield_now().await;
            assert!(fd_count() > fds);
            assert!(thread_count() > threads);
        });
        assert!(kernel.task_count() >= 2);
    }
    assert_eq!(fd_count(), fds, "descriptors left behind");
    assert_eq!(thread_count(), threads, "threads left behind");
}

#[test]
fn remote_spawn_on_a_kernel_that_never_runs_it_reports_cancelled() {
    let kernel = curio::Kernel::new();
    let remote = kernel.handle().spawn(async { 1 });
    // The kernel shuts down with the spawn still queued: the waiter must not hang.
    drop(kernel);
    assert!(remote.join_blocking().unwrap_err().is_cancelled());
}
