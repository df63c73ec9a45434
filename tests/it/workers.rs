//! `run_in_thread`: the per-kernel pool, its limits, cancellation and idle exit.

use curio::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use crate::child::in_child;

#[test]
fn run_in_thread_returns_result() {
    let (main_thread, worker_thread) = curio::run(async {
        let me = std::thread::current().id();
        (
            me,
            curio::run_in_thread(|| std::thread::current().id()).await,
        )
    });
    assert_ne!(main_thread, worker_thread);
}

#[test]
fn run_in_thread_panic_resumes_in_caller() {
    let err = curio::run(async {
        curio::spawn(curio::run_in_thread(|| panic!("worker boom")))
            .join()
            .await
            .unwrap_err()
    });
    assert!(err.is_panic());
}

#[test]
fn pool_limit_from_builder() {
    // With two threads, three calls that wait on each other in pairs still all finish, and at
    // most two run at once.
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut kernel = curio::Kernel::builder().max_worker_threads(2).build();
    kernel.run(async {
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (b, r, p) = (barrier.clone(), running.clone(), peak.clone());
                curio::spawn(curio::run_in_thread(move || {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    b.wait();
                    r.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.join().await.unwrap();
        }
        assert_eq!(curio::workers::ThreadPool::current().max_threads(), 2);
    });
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[test]
fn pool_limit_from_environment() {
    if !in_child(
        "workers::pool_limit_from_environment",
        &[("CURIO_MAX_WORKER_THREADS", "3")],
    ) {
        return;
    }
    curio::run(async {
        assert_eq!(curio::workers::ThreadPool::current().max_threads(), 3);
    });
}

#[test]
fn default_pool_limit_is_64() {
    if !in_child("workers::default_pool_limit_is_64", &[]) {
        return;
    }
    assert!(std::env::var("CURIO_MAX_WORKER_THREADS").is_err());
    curio::run(async {
        assert_eq!(curio::workers::ThreadPool::current().max_threads(), 64);
    });
}

/// Counts its drops, to see where a zombie call's result goes.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn cancelled_call_returns_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d2 = drops.clone();
    let (release, gate) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    curio::run(async move {
        let call = curio::spawn(curio::run_in_thread(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
            let c = Counted(d2);
            done_tx.send(()).unwrap();
            c
        }));
        curio::run_in_thread(move || started_rx.recv().unwrap()).await;
        // The call is blocked in its thread; cancelling it returns without waiting for it.
        call.cancel().await;
        assert!(call.join().await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        // The zombie finishes; its result is dropped, not delivered.
        curio::run_in_thread(move || done_rx.recv().unwrap()).await;
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn idle_threads_exit() {
    let mut kernel = curio::Kernel::builder()
        .worker_idle_timeout(Duration::from_millis(20))
        .build();
    kernel.run(async {
        curio::run_in_thread(|| ()).await;
        let pool = curio::workers::ThreadPool::current();
        assert_eq!(pool.thread_count(), 1);
        // Bounded wait for the idle timeout (real time: the pool's threads use the OS clock).
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.thread_count() > 0 && Instant::now() < deadline {
            curio::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.thread_count(), 0);
    });
}

#[test]
fn virtual_clock_waits_for_thread_jobs() {
    // While a call runs on a thread, the virtual clock must not jump past a concurrent sleep.
    let order = curio::Kernel::builder()
        .virtual_clock(true)
        .build()
        .run(async {
            let log = crate::Log::default();
            let l = log.clone();
            let sleeper = curio::spawn(async move {
                curio::sleep(Duration::from_secs(5)).await;
                l.push("slept");
            });
            let v = curio::run_in_thread(|| {
                std::thread::sleep(Duration::from_millis(20));
                1
            })
            .await;
            log.push(format!("thread {v}"));
            sleeper.join().await.unwrap();
            log.take()
        });
    assert_eq!(order, ["thread 1", "slept"]);
}

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/async_thread.rs"]
mod async_thread_example;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/process_pool.rs"]
mod process_pool_example;

#[test]
fn async_thread_example_consumes_the_kernel_queue() {
    let got = curio::Kernel::builder()
        .virtual_clock(true)
        .build()
        .run(async_thread_example::run(5, Duration::from_millis(100)));
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

/// Worker mode for the process pool of this test binary (a no-op in a normal run): workers
/// re-execute the binary with `--exact workers::process_worker`.
#[test]
fn process_worker() {
    curio::workers::worker_main(&process_pool_example::REGISTRY);
}

#[test]
fn process_pool_example_keeps_the_kernel_responsive() {
    let mut kernel = curio::Kernel::builder()
        .worker_process_args([
            "--exact",
            "workers::process_worker",
            "--nocapture",
            "--quiet",
        ])
        .build();
    // fib(32) takes tens of milliseconds in the worker: the kernel ticks meanwhile.
    let (r, ticks) = kernel.run(process_pool_example::run(32, Duration::from_millis(1)));
    assert_eq!(r, 2_178_309);
    assert!(
        ticks > 0,
        "the kernel did not tick while the worker computed"
    );
}

#[test]
fn async_thread_uses_a_socket_through_await_with() {
    // The pattern for sockets: the thread owns a std socket (Send), and each await_with carries
    // it onto the kernel as a curio socket and back.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let got = curio::run(async move {
        curio::spawn_thread(move || {
            let sock = std::net::TcpStream::connect(addr).unwrap();
            sock.set_nonblocking(true).unwrap();
            let (sock, reply) = curio::await_with(move || async move {
                let s = curio::net::TcpStream::from_std(sock).unwrap();
                s.sendall(b"hello").await.unwrap();
                let reply = curio::timeout_after(Duration::from_secs(20), s.recv(5))
                    .await
                    .expect("no timeout")
                    .unwrap();
                (s.into_std(), reply)
            })
            .unwrap();
            drop(sock);
            reply
        })
        .join()
        .await
        .unwrap()
    });
    echo.join().unwrap();
    assert_eq!(got, b"hello");
}
