//! Curio 0.9's `test_signal.py`, ported with its test names, and the signal cases.
//! Signal dispositions are process-wide, so every test runs in a child process.

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use curio_process::signal::{SIGTERM, SIGUSR1, SIGUSR2, SignalEvent, SignalQueue, ctrl_c};

use crate::bounded;
use crate::child::{in_child, is_child, run_child};

/// Sends `sig` to the calling thread, whose handler runs before this returns (a signal sent to
/// the process may be handled on another thread, after `kill` returns).
#[allow(unsafe_code, reason = "`raise` is a plain C call")]
fn raise(sig: rustix::process::Signal) {
    // SAFETY: `raise` has no preconditions; the handlers it runs are curio's and the tests'.
    assert_eq!(unsafe { libc::raise(sig.as_raw()) }, 0);
}

use rustix::process::Signal as S;

/// A kernel on a virtual clock: Curio's `sleep(0.1)` between signals becomes a jump that
/// happens only once the signal's wake-up has been handled and every task is idle.
fn vkernel() -> curio_kernel::Kernel {
    curio_kernel::Kernel::builder().virtual_clock(true).build()
}

/// An event log shared by the tasks of one test.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, s: impl ToString) {
        self.0.borrow_mut().push(s.to_string());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

#[test]
fn test_task_signal() {
    if !in_child("signal::test_task_signal") {
        return;
    }
    let log = Log::default();
    let l = log.clone();
    vkernel().run(async move {
        // Curio's child opens the queue, then sets an event the main task waits for; opening it
        // before the spawn gives the same order.
        let sig = SignalQueue::new(&[SIGUSR1, SIGUSR2]).unwrap();
        let lc = l.clone();
        let child = curio_kernel::spawn(async move {
            lc.push(sig.get().await);
            lc.push(sig.get().await);
        });
        l.push("sending USR1");
        raise(S::USR1);
        curio_kernel::sleep(Duration::from_millis(100)).await;
        l.push("sending USR2");
        raise(S::USR2);
        curio_kernel::sleep(Duration::from_millis(100)).await;
        l.push("done");
        child.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "sending USR1".to_owned(),
            SIGUSR1.to_string(),
            "sending USR2".to_owned(),
            SIGUSR2.to_string(),
            "done".to_owned(),
        ]
    );
}

#[test]
fn test_task_signal_event() {
    if !in_child("signal::test_task_signal_event") {
        return;
    }
    let log = Log::default();
    let l = log.clone();
    vkernel().run(async move {
        let sig_usr1 = SignalEvent::new(&[SIGUSR1]).unwrap();
        let sig_usr2 = SignalEvent::new(&[SIGUSR2]).unwrap();
        let lc = l.clone();
        // Curio's `got1` and `got2` events: the child's end of each step, awaited by `main`.
        let child = curio_kernel::spawn(async move {
            sig_usr1.wait().await;
            lc.push(SIGUSR1);
            sig_usr2.wait().await;
            lc.push(SIGUSR2);
        });
        l.push("sending USR1");
        raise(S::USR1);
        curio_kernel::sleep(Duration::from_millis(100)).await;
        l.push("sending USR2");
        raise(S::USR2);
        child.join().await.unwrap();
        l.push("done");
    });
    assert_eq!(
        log.take(),
        [
            "sending USR1".to_owned(),
            SIGUSR1.to_string(),
            "sending USR2".to_owned(),
            SIGUSR2.to_string(),
            "done".to_owned(),
        ]
    );
}

#[test]
fn test_task_signal_timeout() {
    if !in_child("signal::test_task_signal_timeout") {
        return;
    }
    let log = Log::default();
    let l = log.clone();
    // The virtual clock jumps: a queue that waits for a signal does not hold time back.
    vkernel().run(async move {
        let lc = l.clone();
        let task = curio_kernel::spawn(async move {
            let sig = SignalQueue::new(&[SIGUSR1, SIGUSR2]).unwrap();
            match curio_kernel::timeout_after(Duration::from_secs(1), sig.get()).await {
                Ok(signo) => lc.push(signo),
                Err(_) => lc.push("timeout"),
            }
        });
        task.join().await.unwrap();
        l.push("done");
    });
    assert_eq!(log.take(), ["timeout", "done"]);
}

/// Not in Curio: the same signals with a real clock and no pause between them.
#[test]
fn test_signal_back_to_back() {
    if !in_child("signal::test_signal_back_to_back") {
        return;
    }
    let got = curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGUSR1, SIGUSR2]).unwrap();
        raise(S::USR1);
        raise(S::USR2);
        vec![
            bounded("first", q.get()).await,
            bounded("second", q.get()).await,
        ]
    });
    assert_eq!(got, [SIGUSR1, SIGUSR2]);
}

/// Not in Curio's tests, but Curio's `SignalEvent` is an event: every task waiting on it wakes,
/// and two tasks waiting on one queue get a signal each.
#[test]
fn several_tasks_wait_on_one_signal_event_or_queue() {
    if !in_child("signal::several_tasks_wait_on_one_signal_event_or_queue") {
        return;
    }
    let got = curio_kernel::run(async {
        let ev = Rc::new(SignalEvent::new(&[SIGUSR1]).unwrap());
        let q = Rc::new(SignalQueue::new(&[SIGUSR1, SIGUSR2]).unwrap());
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let ev = ev.clone();
                curio_kernel::spawn(async move {
                    bounded("event", ev.wait()).await;
                    i
                })
            })
            .collect();
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                curio_kernel::spawn(async move { bounded("queue", q.get()).await })
            })
            .collect();
        // Every waiter is parked before the signals come.
        curio_kernel::sleep(Duration::from_millis(10)).await;
        raise(S::USR1);
        raise(S::USR2);
        let mut woken = Vec::new();
        for t in waiters {
            woken.push(t.join().await.unwrap());
        }
        let mut signals = Vec::new();
        for t in getters {
            signals.push(t.join().await.unwrap());
        }
        signals.sort_unstable();
        (woken, signals)
    });
    assert_eq!(got, (vec![0, 1, 2], vec![SIGUSR1, SIGUSR2]));
}

#[test]
fn burst_of_two_kinds_delivers_each_kind() {
    if !in_child("signal::burst_of_two_kinds_delivers_each_kind") {
        return;
    }
    curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGUSR1, SIGUSR2]).unwrap();
        // While the kernel reads the queue: 1000 of each kind, interleaved, from another thread.
        let sender = std::thread::spawn(|| {
            for i in 0..2000 {
                raise(if i % 2 == 0 { S::USR1 } else { S::USR2 });
            }
        });
        let (mut usr1, mut usr2) = (0, 0);
        while usr1 == 0 || usr2 == 0 {
            match bounded("a signal", q.get()).await {
                SIGUSR1 => usr1 += 1,
                SIGUSR2 => usr2 += 1,
                other => panic!("unexpected signal {other}"),
            }
        }
        sender.join().unwrap();
        while q.try_get().is_some() {}
        // While the kernel cannot read at all (its thread is blocked in `join`): a pipe of
        // signal numbers would fill up and drop kinds (curio#118); the pending bits cannot.
        let sender = std::thread::spawn(|| {
            for i in 0..2000 {
                raise(if i % 2 == 0 { S::USR2 } else { S::USR1 });
            }
        });
        sender.join().unwrap();
        let mut got = vec![
            bounded("first", q.get()).await,
            bounded("second", q.get()).await,
        ];
        got.sort_unstable();
        // Counts are not promised (repeats coalesce), but each kind arrives.
        assert_eq!(got, [SIGUSR1, SIGUSR2]);
    });
}

#[test]
fn every_kernel_sees_every_signal() {
    if !in_child("signal::every_kernel_sees_every_signal") {
        return;
    }
    let ready = Arc::new(Barrier::new(3));
    let kernels: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                curio_kernel::run(async move {
                    let q = SignalQueue::new(&[SIGUSR1]).unwrap();
                    ready.wait();
                    bounded("signal", q.get()).await
                })
            })
        })
        .collect();
    ready.wait();
    raise(S::USR1);
    for k in kernels {
        assert_eq!(k.join().unwrap(), SIGUSR1);
    }
}

#[test]
fn signal_wakes_a_kernel_in_a_long_sleep_promptly() {
    if !in_child("signal::signal_wakes_a_kernel_in_a_long_sleep_promptly") {
        return;
    }
    let elapsed = curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGTERM]).unwrap();
        let sleeper = curio_kernel::spawn(curio_kernel::sleep(Duration::from_secs(3600)));
        // Another thread signals once the kernel has had time to park in the reactor, with an
        // hour to wait for; the pause only sets the scene, it synchronises nothing.
        let t = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            let sent = Instant::now();
            raise(S::TERM);
            sent
        });
        let r = curio_kernel::timeout_after(Duration::from_secs(3600), q.get()).await;
        let woke = Instant::now();
        assert_eq!(r.unwrap(), SIGTERM);
        let sent = t.join().unwrap();
        sleeper.cancel().await;
        woke.saturating_duration_since(sent)
    });
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn ctrl_c_waits_for_sigint() {
    if !in_child("signal::ctrl_c_waits_for_sigint") {
        return;
    }
    curio_kernel::run(async {
        let waiter = curio_kernel::spawn(ctrl_c());
        curio_kernel::yield_now().await; // let it register
        raise(S::INT);
        bounded("ctrl_c", waiter.join()).await.unwrap().unwrap();
    });
}

#[test]
fn bad_signal_numbers_are_errors() {
    curio_kernel::run(async {
        for bad in [0, -1, 65, 99, libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV] {
            let e = SignalQueue::new(&[bad]).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "signal {bad}");
        }
    });
    // Outside a kernel: an error, not a panic.
    assert!(SignalQueue::new(&[SIGUSR1]).is_err());
}

static EARLIER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn earlier_handler(_: libc::c_int) {
    EARLIER.fetch_add(1, Ordering::SeqCst);
}

/// Installs `handler` for `sig` with `sigaction`, as a program or library might before curio.
#[allow(
    unsafe_code,
    reason = "installing a plain C signal handler, as a program would"
)]
fn install(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: an all-zero `sigaction` is valid; `handler` is SIG_IGN, SIG_DFL or
    // `earlier_handler`, which only does an atomic add.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        assert_eq!(libc::sigaction(sig, &act, std::ptr::null_mut()), 0);
    }
}

#[test]
fn earlier_handler_is_still_called_after_the_queue_is_dropped() {
    if !in_child("signal::earlier_handler_is_still_called_after_the_queue_is_dropped") {
        return;
    }
    install(
        libc::SIGUSR1,
        earlier_handler as *const () as libc::sighandler_t,
    );
    curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGUSR1]).unwrap();
        raise(S::USR1);
        assert_eq!(bounded("signal", q.get()).await, SIGUSR1);
        // Chained: the earlier handler ran as well.
        assert_eq!(EARLIER.load(Ordering::SeqCst), 1);
    });
    raise(S::USR1);
    assert_eq!(EARLIER.load(Ordering::SeqCst), 2);
}

/// Reached only if a signal raised just now did not end the process.
fn await_death(what: &str) -> ! {
    panic!("{what}");
}

#[test]
fn ignored_signal_is_ignored_again_after_the_queue_is_dropped() {
    if !in_child("signal::ignored_signal_is_ignored_again_after_the_queue_is_dropped") {
        return;
    }
    install(libc::SIGUSR2, libc::SIG_IGN);
    curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGUSR2]).unwrap();
        raise(S::USR2);
        assert_eq!(bounded("signal", q.get()).await, SIGUSR2);
    });
    raise(S::USR2);
    // Still alive.
}

/// The child of `default_action_returns_after_the_queue_is_dropped`: listens for SIGUSR2 and
/// SIGTERM, drops the queue, then raises them; SIGUSR2's default action must end it.
#[test]
fn default_action_child() {
    if !is_child("signal::default_action_child") {
        return;
    }
    curio_kernel::run(async {
        let q = SignalQueue::new(&[SIGUSR2, SIGTERM]).unwrap();
        raise(S::USR2);
        assert_eq!(bounded("signal", q.get()).await, SIGUSR2);
        // A second listener of the same signal keeps it caught after the first goes.
        let q2 = SignalQueue::new(&[SIGUSR2]).unwrap();
        drop(q);
        raise(S::USR2);
        assert_eq!(bounded("signal", q2.get()).await, SIGUSR2);
    });
    raise(S::USR2);
    await_death("SIGUSR2's default action ends the process");
}

#[test]
fn default_action_returns_after_the_queue_is_dropped() {
    let out = run_child("signal::default_action_child", &[]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGUSR2),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigint_kills_again_once_ctrl_c_is_done() {
    if !is_child("signal::sigint_kills_again_once_ctrl_c_is_done") {
        let out = run_child("signal::sigint_kills_again_once_ctrl_c_is_done", &[]);
        assert_eq!(out.status.signal(), Some(libc::SIGINT), "{:?}", out.status);
        return;
    }
    curio_kernel::run(async {
        let waiter = curio_kernel::spawn(ctrl_c());
        curio_kernel::yield_now().await;
        raise(S::INT);
        bounded("ctrl_c", waiter.join()).await.unwrap().unwrap();
    });
    raise(S::INT);
    await_death("SIGINT's default action ends the process");
}
