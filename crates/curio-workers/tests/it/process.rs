//! The process pool: Curio's `test_workers.py` with its test names, and the extras.
//!
//! Workers re-execute this test binary with `--exact process::worker`: that test enters worker
//! mode in a worker and returns at once in a normal run (the standard harness's pattern).

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use curio_kernel::{Kernel, TaskGroup, Wait, sleep, spawn, timeout_after};
use curio_sync::Event;
use curio_workers::{ProcessError, ProcessFn, Registry, WorkersBuilderExt, run_in_process};

use crate::child::{children, in_child};

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn fib_str(s: String) -> u64 {
    fib(s.parse().expect("fib() wants a number"))
}

fn sleep_secs(s: u64) -> u32 {
    std::thread::sleep(Duration::from_secs(s));
    std::process::id()
}

fn echo(v: Vec<u8>) -> Vec<u8> {
    v
}

fn make(n: usize) -> Vec<u8> {
    vec![7; n]
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn abort(_: ()) -> u32 {
    std::process::abort()
}

/// Spins for `ms`; returns the process id and the start and end on the system clock, which all
/// processes share.
fn spin(ms: u64) -> (u32, u128, u128) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    };
    let start = now();
    let mut x = 0u64;
    while now() - start < u128::from(ms) * 1_000_000 {
        for i in 0..1000 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
    }
    (std::process::id(), start, now())
}

static FIB: ProcessFn<u64, u64> = ProcessFn::new("fib", fib);
static FIB_STR: ProcessFn<String, u64> = ProcessFn::new("fib_str", fib_str);
/// The caller's view of "fib" with the wrong argument type (Curio's `bad_cpu`).
static FIB_WRONG: ProcessFn<String, u64> = ProcessFn::new("fib", fib_str);
static SLEEP: ProcessFn<u64, u32> = ProcessFn::new("sleep", sleep_secs);
static ECHO: ProcessFn<Vec<u8>, Vec<u8>> = ProcessFn::new("echo", echo);
static MAKE: ProcessFn<usize, Vec<u8>> = ProcessFn::new("make", make);
static PID: ProcessFn<(), u32> = ProcessFn::new("pid", pid);
static ABORT: ProcessFn<(), u32> = ProcessFn::new("abort", abort);
static SPIN: ProcessFn<u64, (u32, u128, u128)> = ProcessFn::new("spin", spin);
static MISSING: ProcessFn<(), ()> = ProcessFn::new("missing", |()| ());

static REGISTRY: Registry =
    Registry::new(&[&FIB, &FIB_STR, &SLEEP, &ECHO, &MAKE, &PID, &ABORT, &SPIN]);

/// Worker mode (see the module docs); a no-op in a normal run.
#[test]
fn worker() {
    curio_workers::worker_main(&REGISTRY);
}

fn kernel() -> Kernel {
    Kernel::builder()
        .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
        .worker_kill_grace(Duration::from_millis(50))
        .build()
}

#[test]
fn test_cpu() {
    // The call spins in the worker for 200 ms while the spinner here counts down every 1 ms:
    // only a kernel that keeps running tasks while the call is in flight logs every tick first.
    let log = kernel().run(async {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let g = TaskGroup::new(Wait::All);
        let l1 = log.clone();
        let _ = g.spawn(async move {
            for n in (1..=10).rev() {
                l1.borrow_mut().push(n.to_string());
                sleep(Duration::from_millis(1)).await;
            }
        });
        let l2 = log.clone();
        let _ = g.spawn(async move {
            run_in_process(&SPIN, 200).await.unwrap();
            l2.borrow_mut().push("spun".to_owned());
        });
        g.join().await;
        log.take()
    });
    let mut expect: Vec<_> = (1..=10).rev().map(|n: i32| n.to_string()).collect();
    expect.push("spun".to_owned());
    assert_eq!(log, expect);
    // And Curio's computation itself.
    let fib = kernel().run(async { run_in_process(&FIB, 25).await.unwrap() });
    assert_eq!(fib, 75025);
}

#[test]
fn test_worker_cancel_process() {
    let (log, pid_after) = kernel().run(async {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        let at5 = std::rc::Rc::new(Event::new());
        let resume = std::rc::Rc::new(Event::new());
        let (l1, a1, r1) = (log.clone(), at5.clone(), resume.clone());
        let spinner = spawn(async move {
            for n in (1..=10).rev() {
                l1.borrow_mut().push(n.to_string());
                if n == 5 {
                    a1.set();
                    r1.wait().await;
                }
            }
        });
        let worker = spawn(run_in_process(&SLEEP, 30));
        at5.wait().await;
        let start = Instant::now();
        worker.cancel().await;
        assert!(start.elapsed() < Duration::from_secs(5));
        log.borrow_mut().push("cancel".into());
        resume.set();
        spinner.join().await.unwrap();
        assert!(worker.join().await.unwrap_err().is_cancelled());
        // The pool replaced the killed worker.
        let after = run_in_process(&PID, ()).await.unwrap();
        (log.take(), after)
    });
    assert_eq!(
        log,
        ["10", "9", "8", "7", "6", "5", "cancel", "4", "3", "2", "1"]
    );
    // Served by a worker process, not by this one.
    assert_ne!(pid_after, std::process::id());
}

#[test]
fn test_worker_timeout_process() {
    let (r, elapsed) = kernel().run(async {
        let start = Instant::now();
        let r = timeout_after(Duration::from_millis(50), run_in_process(&SLEEP, 30)).await;
        (r.is_err(), start.elapsed())
    });
    assert!(r, "timed out");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn test_exception() {
    let e = kernel()
        .run(run_in_process(&FIB_STR, "ten".to_owned()))
        .unwrap_err();
    match e {
        ProcessError::Panicked(m) => assert!(m.contains("fib() wants a number"), "{m}"),
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn test_bad_cpu() {
    // The registry's "fib" takes a u64; a caller that sends a string gets a decode error.
    let e = kernel()
        .run(run_in_process(&FIB_WRONG, "1".to_owned()))
        .unwrap_err();
    assert!(matches!(e, ProcessError::Decode(_)), "{e:?}");
    let e = kernel().run(run_in_process(&MISSING, ())).unwrap_err();
    assert!(
        matches!(e, ProcessError::UnknownFunction(ref n) if n == "missing"),
        "{e:?}"
    );
}

#[test]
fn four_mib_round_trip_is_byte_exact() {
    let data: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let back = kernel().run(run_in_process(&ECHO, data.clone())).unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

#[test]
fn frame_limit_is_a_clear_error() {
    let mut k = Kernel::builder()
        .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
        .process_frame_limit(1024)
        .build();
    k.run(async {
        let e = run_in_process(&ECHO, vec![0; 4096]).await.unwrap_err();
        assert!(
            matches!(e, ProcessError::FrameTooLarge { limit: 1024, .. }),
            "{e:?}"
        );
        let e = run_in_process(&MAKE, 4096).await.unwrap_err();
        assert!(
            matches!(e, ProcessError::FrameTooLarge { limit: 1024, .. }),
            "{e:?}"
        );
        // The worker is still fine.
        assert_eq!(run_in_process(&MAKE, 10).await.unwrap(), vec![7; 10]);
    });
}

#[test]
fn aborting_worker_is_an_error_and_the_next_call_succeeds() {
    kernel().run(async {
        match run_in_process(&ABORT, ()).await.unwrap_err() {
            ProcessError::Crashed(status) => assert_eq!(status.signal(), Some(6)),
            other => panic!("expected a crash, got {other:?}"),
        }
        assert_eq!(run_in_process(&FIB, 20).await.unwrap(), 6765);
    });
}

#[test]
fn concurrent_calls_use_both_cores() {
    if in_child("process::concurrent_calls_use_both_cores") {
        let mut k = Kernel::builder()
            .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
            .max_worker_processes(2)
            .build();
        let spans = k.run(async {
            let g = TaskGroup::new(Wait::All);
            for _ in 0..8 {
                let _ = g.spawn(async { run_in_process(&SPIN, 100).await.unwrap() });
            }
            g.join().await;
            g.results().unwrap()
        });
        let mut pids: Vec<_> = spans.iter().map(|s| s.0).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 2, "two workers served the calls");
        let overlap = spans
            .iter()
            .any(|a| spans.iter().any(|b| a.0 != b.0 && a.1 < b.2 && b.1 < a.2));
        assert!(
            overlap,
            "calls in the two workers ran at the same time: {spans:?}"
        );
    }
}

#[test]
fn no_worker_left_after_the_kernel_is_dropped() {
    if in_child("process::no_worker_left_after_the_kernel_is_dropped") {
        assert!(children().is_empty());
        let mut k = kernel();
        k.run(async {
            let g = TaskGroup::new(Wait::All);
            for _ in 0..2 {
                let _ = g.spawn(run_in_process(&FIB, 15));
            }
            // One call left running when the kernel goes.
            drop(curio_kernel::spawn_daemon(run_in_process(&SLEEP, 30)));
            g.join().await;
        });
        assert!(!children().is_empty());
        drop(k);
        assert_eq!(children(), Vec::<u32>::new());
    }
}

#[test]
fn two_kernels_share_the_pool() {
    // One worker, used by a kernel on another thread while the first kernel is still alive: its
    // socket moves from one kernel's reactor to the other's.
    if in_child("process::two_kernels_share_the_pool") {
        let mut a = Kernel::builder()
            .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
            .max_worker_processes(1)
            .build();
        let a_pid = a.run(run_in_process(&PID, ()));
        let b_pid = std::thread::spawn(|| {
            let b = kernel().run(run_in_process(&PID, ()));
            (b, kernel().run(run_in_process(&PID, ())))
        })
        .join()
        .unwrap();
        let again = a.run(run_in_process(&PID, ()));
        let a_pid = a_pid.unwrap();
        assert_eq!(b_pid.0.unwrap(), a_pid);
        assert_eq!(b_pid.1.unwrap(), a_pid);
        assert_eq!(again.unwrap(), a_pid);
    }
}

#[test]
fn call_cancelled_while_its_worker_starts_gives_its_place_back() {
    // With one place in the pool, a leaked place would make the second call wait for ever.
    if in_child("process::call_cancelled_while_its_worker_starts_gives_its_place_back") {
        let mut k = Kernel::builder()
            .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
            .max_worker_processes(1)
            .build();
        k.run(async {
            for _ in 0..3 {
                let r = timeout_after(Duration::ZERO, run_in_process(&PID, ())).await;
                assert!(r.is_err(), "a worker cannot start in no time");
            }
            let r = timeout_after(Duration::from_secs(20), run_in_process(&FIB, 10)).await;
            assert_eq!(r.expect("no place leaked").unwrap(), 55);
        });
        drop(k);
        assert_eq!(children(), Vec::<u32>::new());
    }
}

#[test]
fn worker_does_not_outlive_its_parent() {
    // The parent (a child test process) dies by abort while its worker is inside a 30 s call;
    // the worker must go within seconds.
    const NAME: &str = "process::worker_does_not_outlive_its_parent";
    if std::env::var("CURIO_TEST_CHILD").as_deref() == Ok(NAME) {
        let mut k = Kernel::builder()
            .worker_process_args(["--exact", "process::worker", "--nocapture", "--quiet"])
            .max_worker_processes(1)
            .build();
        k.run(async {
            let pid = run_in_process(&PID, ()).await.unwrap();
            // The request is written in the call's first poll: the worker is busy after this.
            drop(spawn(run_in_process(&SLEEP, 30)));
            curio_kernel::yield_now().await;
            curio_kernel::yield_now().await;
            println!("WORKER {pid}");
            use std::io::Write;
            std::io::stdout().flush().unwrap();
            std::process::abort();
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("CURIO_TEST_CHILD", NAME)
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WORKER "))
        .expect("the child reports its worker")
        .trim()
        .parse()
        .unwrap();
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        panic!("bad pid");
    };
    match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        // Already gone.
        Err(_) => {}
        Ok(fd) => {
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let ten = rustix::event::Timespec {
                tv_sec: 10,
                tv_nsec: 0,
            };
            let n = rustix::event::poll(&mut fds, Some(&ten)).unwrap();
            assert_eq!(n, 1, "the worker outlived its parent");
        }
    }
}

// The thread variants of `test_workers.py`: `run_in_thread` beside `run_in_process`.

#[test]
fn test_blocking() {
    // Curio's thread sleeps 2 s while a spinner ticks; here the thread blocks until the
    // spinner is done, so the order holds without timing.
    let log = Kernel::new().run(async {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let done = std::sync::Arc::new(curio_sync::UniversalPromise::new());
        let (l1, d1) = (log.clone(), done.clone());
        let spinner = spawn(async move {
            for n in (1..=10).rev() {
                l1.borrow_mut().push(n.to_string());
                sleep(Duration::from_millis(1)).await;
            }
            assert!(d1.set(()).is_ok());
        });
        let d2 = done.clone();
        curio_workers::run_in_thread(move || d2.get_blocking()).await;
        log.borrow_mut().push("sleep done".to_owned());
        spinner.join().await.unwrap();
        log.take()
    });
    let mut expect: Vec<_> = (1..=10).rev().map(|n: i32| n.to_string()).collect();
    expect.push("sleep done".into());
    assert_eq!(log, expect);
}

#[test]
fn test_worker_cancel_thread() {
    let release = std::sync::Arc::new(curio_sync::UniversalPromise::new());
    let r2 = release.clone();
    let log = Kernel::new().run(async move {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        let at5 = std::rc::Rc::new(Event::new());
        let resume = std::rc::Rc::new(Event::new());
        let (l1, a1, res1) = (log.clone(), at5.clone(), resume.clone());
        let spinner = spawn(async move {
            for n in (1..=10).rev() {
                l1.borrow_mut().push(n.to_string());
                if n == 5 {
                    a1.set();
                    res1.wait().await;
                }
            }
        });
        // Curio's time.sleep(5): a call that blocks until the test lets it go.
        let worker = spawn(curio_workers::run_in_thread(move || r2.get_blocking()));
        at5.wait().await;
        worker.cancel().await;
        log.borrow_mut().push("cancel".into());
        resume.set();
        spinner.join().await.unwrap();
        assert!(worker.join().await.unwrap_err().is_cancelled());
        log.take()
    });
    // The zombie thread finishes now.
    assert!(release.set(()).is_ok());
    assert_eq!(
        log,
        ["10", "9", "8", "7", "6", "5", "cancel", "4", "3", "2", "1"]
    );
}

#[test]
fn test_worker_timeout_thread() {
    let release = std::sync::Arc::new(curio_sync::UniversalPromise::new());
    let r2 = release.clone();
    let timed_out = Kernel::new().run(async move {
        timeout_after(
            Duration::from_millis(50),
            curio_workers::run_in_thread(move || r2.get_blocking()),
        )
        .await
        .is_err()
    });
    assert!(release.set(()).is_ok());
    assert!(timed_out);
}

#[test]
fn test_exception_thread() {
    // Curio's run_in_thread(fib, '10') raises the TypeError itself: here the panic is resumed
    // in the calling task.
    let err = Kernel::new().run(async {
        spawn(curio_workers::run_in_thread(|| fib_str("ten".into())))
            .join()
            .await
            .unwrap_err()
    });
    assert!(err.is_panic());
}
