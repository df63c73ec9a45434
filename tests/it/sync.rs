//! Ports of Curio's `test_sync.py` (and `test_ping_pong_starvation` of `test_kernel.py`), with
//! Curio's names and event orders.
//!
//! Kernel-only tests run on the virtual clock ([`vrun`]); tests with threads run on the real clock
//! and synchronise through events and joins, never through sleeps. Curio's
//! `except CancelledError: results.append(msg)` is an [`OnCancel`] guard: the cancelled task's
//! future is dropped at its suspension point, and the guard logs as it goes. Curio's `async with`
//! is a guard held in a block. Booleans are logged as `"true"`/`"false"`, Curio's tuples
//! `(label, n)` as `"(label, n)"`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use curio::sync::{
    AlreadySet, BoundedSemaphore, Condition, Event, Lock, Promise, RLock, Semaphore, SyncError,
    UniversalEvent, UniversalPromise, WaitTimeout,
};
use curio::{queue::Queue, sleep, spawn, timeout_after, yield_now};

use crate::{LIMIT, Log, bounded, ms, secs, vrun};

/// Logs its message if dropped while armed: Curio's `except CancelledError: results.append(msg)`.
struct OnCancel(Option<(Log, &'static str)>);

impl OnCancel {
    fn new(log: &Log, msg: &'static str) -> OnCancel {
        OnCancel(Some((log.clone(), msg)))
    }

    /// The guarded code finished without being cancelled.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        if let Some((log, msg)) = self.0.take() {
            log.push(msg);
        }
    }
}

/// An event log shared with threads.
#[derive(Clone, Default)]
struct SyncLog(Arc<Mutex<Vec<String>>>);

impl SyncLog {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Polls `fut` once with a no-op waker (no kernel needed for the kernel-local primitives).
fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

// ---- Event

#[test]
fn event_get_wait() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = Rc::new(Event::new());
        let (e, lw) = (evt.clone(), l.clone());
        let t1 = spawn(async move {
            lw.push("wait_start");
            lw.push(e.is_set().to_string());
            e.wait().await;
            lw.push("wait_done");
            lw.push(e.is_set().to_string());
            e.clear();
            lw.push(e.is_set().to_string());
        });
        let (e, ls) = (evt.clone(), l.clone());
        let t2 = spawn(async move {
            ls.push("sleep");
            sleep(secs(1.0)).await;
            ls.push("event_set");
            e.set();
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "wait_start",
            "false",
            "sleep",
            "event_set",
            "wait_done",
            "true",
            "false"
        ]
    );
}

#[test]
fn event_get_immediate() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = Rc::new(Event::new());
        let (e, lw) = (evt.clone(), l.clone());
        let t1 = spawn(async move {
            lw.push("sleep");
            sleep(secs(1.0)).await;
            lw.push("wait_start");
            let start = curio::clock();
            e.wait().await;
            assert_eq!(
                curio::clock(),
                start,
                "an event already set is waited for at once"
            );
            lw.push("wait_done");
        });
        let (e, ls) = (evt.clone(), l.clone());
        let t2 = spawn(async move {
            ls.push("event_set");
            e.set();
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        ["sleep", "event_set", "wait_start", "wait_done"]
    );
}

#[test]
fn event_wait_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = Rc::new(Event::new());
        let (e, lw) = (evt.clone(), l.clone());
        let task = spawn(async move {
            lw.push("event_wait");
            let c = OnCancel::new(&lw, "event_cancel");
            e.wait().await;
            c.disarm();
        });
        l.push("sleep");
        sleep(secs(1.0)).await;
        l.push("cancel_start");
        task.cancel().await;
        l.push("cancel_done");
        assert!(task.is_cancelled() && task.is_terminated());
        // The cancelled waiter left the event's wait list: setting it wakes nobody.
        evt.set();
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "event_wait",
            "cancel_start",
            "event_cancel",
            "cancel_done"
        ]
    );
}

#[test]
fn event_wait_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = Rc::new(Event::new());
        let (e, lw) = (evt.clone(), l.clone());
        let task = spawn(async move {
            lw.push("event_wait");
            if timeout_after(secs(0.5), e.wait()).await.is_err() {
                lw.push("event_timeout");
            }
        });
        l.push("sleep");
        sleep(secs(1.0)).await;
        l.push("sleep_done");
        task.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        ["sleep", "event_wait", "event_timeout", "sleep_done"]
    );
}

#[test]
fn event_wait_notimeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = Rc::new(Event::new());
        let (e, lw) = (evt.clone(), l.clone());
        let task = spawn(async move {
            lw.push("event_wait");
            match timeout_after(secs(1.0), e.wait()).await {
                Ok(()) => lw.push("got event"),
                Err(_) => lw.push("event_timeout"),
            }
            e.clear();
            // The finished timeout scope must not fire into this plain wait (set 1 s later).
            e.wait().await;
            lw.push("got event");
        });
        l.push("sleep");
        sleep(secs(0.25)).await;
        l.push("event_set");
        evt.set();
        sleep(secs(1.0)).await;
        l.push("event_set");
        evt.set();
        task.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "event_wait",
            "event_set",
            "got event",
            "event_set",
            "got event"
        ]
    );
}

// ---- Lock

async fn lock_worker(lck: Rc<Lock>, label: &'static str, l: Log) {
    l.push(format!("{label} wait"));
    l.push(lck.locked().to_string());
    {
        let _g = lck.lock().await;
        l.push(format!("{label} acquire"));
        sleep(secs(0.25)).await;
    }
    l.push(format!("{label} release"));
}

#[test]
fn lock_sequence() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let lck = Rc::new(Lock::new());
        let t1 = spawn(lock_worker(lck.clone(), "work1", l.clone()));
        let t2 = spawn(lock_worker(lck.clone(), "work2", l.clone()));
        let t3 = spawn(lock_worker(lck.clone(), "work3", l.clone()));
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
        assert!(!lck.locked());
    });
    assert_eq!(
        log.take(),
        [
            "work1 wait",
            "false",
            "work1 acquire",
            "work2 wait",
            "true",
            "work3 wait",
            "true",
            "work1 release",
            "work2 acquire",
            "work2 release",
            "work3 acquire",
            "work3 release",
        ]
    );
}

#[test]
fn lock_acquire_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let lck = Rc::new(Lock::new());
        {
            let _g = lck.lock().await;
            let (lk, lw) = (lck.clone(), l.clone());
            let task = spawn(async move {
                lw.push("lock_wait");
                let c = OnCancel::new(&lw, "lock_cancel");
                let _g = lk.lock().await;
                c.disarm();
                lw.push("never here");
            });
            l.push("sleep");
            sleep(secs(1.0)).await;
            l.push("cancel_start");
            task.cancel().await;
            l.push("cancel_done");
            assert!(lck.locked(), "still held by the main task");
        }
        // The cancelled waiter never owns the lock: the release leaves it free.
        assert!(!lck.locked());
        assert!(lck.try_lock().is_some());
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "lock_wait",
            "cancel_start",
            "lock_cancel",
            "cancel_done"
        ]
    );
}

#[test]
fn lock_acquire_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let lck = Rc::new(Lock::new());
        {
            let _g = lck.lock().await;
            let (lk, lw) = (lck.clone(), l.clone());
            let w = spawn(async move {
                lw.push("lock_wait");
                match timeout_after(secs(0.5), lk.lock()).await {
                    Ok(_g) => lw.push("never here"),
                    Err(_) => lw.push("lock_timeout"),
                }
            });
            l.push("sleep");
            sleep(secs(1.0)).await;
            l.push("sleep_done");
            w.join().await.unwrap();
        }
        assert!(!lck.locked());
        assert!(lck.try_lock().is_some());
    });
    assert_eq!(
        log.take(),
        ["sleep", "lock_wait", "lock_timeout", "sleep_done"]
    );
}

/// A waiter dropped after the lock was handed to it passes it on to the next waiter; it never
/// keeps it (SPEC §3 cancel safety; polled by hand, so the hand-off is certain).
#[test]
fn lock_handoff_cancel() {
    let lck = Lock::new();
    let g = lck.try_lock().unwrap();
    let mut a = Box::pin(lck.lock());
    let mut b = Box::pin(lck.lock());
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    drop(g); // handed to `a`
    assert!(lck.locked());
    drop(a); // `a` is cancelled holding the hand-off: `b` gets the lock
    let Poll::Ready(gb) = poll_once(b.as_mut()) else {
        panic!("the lock must pass to the next waiter")
    };
    assert!(lck.locked());
    drop(gb);
    assert!(!lck.locked());
}

// ---- RLock

async fn rlock_inner(lck: &RLock, label: &str, l: &Log) {
    l.push(lck.locked().to_string());
    let _g = lck.lock().await.unwrap();
    l.push(format!("{label} inner acquired"));
    l.push(format!("{label} inner releasing"));
}

async fn rlock_worker(lck: Rc<RLock>, label: &'static str, l: Log) {
    l.push(lck.locked().to_string());
    l.push(format!("{label} wait"));
    let _g = lck.lock().await.unwrap();
    l.push(format!("{label} acquired"));
    sleep(secs(0.25)).await;
    rlock_inner(&lck, label, &l).await;
    l.push(format!("{label} releasing"));
}

#[test]
fn rlock_reenter() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let lck = Rc::new(RLock::new());
        let t1 = spawn(rlock_worker(lck.clone(), "work1", l.clone()));
        let t2 = spawn(rlock_worker(lck.clone(), "work2", l.clone()));
        let (lk, ls) = (lck.clone(), l.clone());
        let t3 = spawn(async move {
            ls.push("simple wait");
            let _g = lk.lock().await.unwrap();
            ls.push("simple acquired");
            ls.push("simple releasing");
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
        assert!(!lck.locked());
    });
    assert_eq!(
        log.take(),
        [
            "false",
            "work1 wait",
            "work1 acquired",
            "true",
            "work2 wait",
            "simple wait",
            "true",
            "work1 inner acquired",
            "work1 inner releasing",
            "work1 releasing",
            "work2 acquired",
            "true",
            "work2 inner acquired",
            "work2 inner releasing",
            "work2 releasing",
            "simple acquired",
            "simple releasing"
        ]
    );
}

#[test]
fn rlock_notowner() {
    // Curio raises RuntimeError for both the release of an unlocked RLock and a release by a
    // task that does not own it; here both are `NotOwner`.
    vrun(async {
        let lck = Rc::new(RLock::new());
        assert_eq!(lck.release(), Err(SyncError::NotOwner));
        let lk = lck.clone();
        let t1 = spawn(async move {
            lk.acquire().await.unwrap();
            sleep(secs(0.25)).await;
            lk.release()
        });
        let lk = lck.clone();
        let t2 = spawn(async move {
            sleep(secs(0.1)).await;
            assert!(lk.locked());
            lk.release()
        });
        assert_eq!(t1.join().await.unwrap(), Ok(()));
        assert_eq!(t2.join().await.unwrap(), Err(SyncError::NotOwner));
        assert!(!lck.locked());
    });
    // The owner is a task: outside one there is none.
    assert_eq!(RLock::new().release(), Err(SyncError::NotInTask));
}

// ---- Semaphore

async fn sema_worker(sema: Rc<Semaphore>, label: &'static str, hold: f64, l: Log, one: bool) {
    l.push(format!("{label} wait"));
    l.push(sema.locked().to_string());
    {
        let _p = sema.acquire().await;
        if one {
            assert_eq!(sema.value(), 0);
        }
        l.push(format!("{label} acquire"));
        sleep(secs(hold)).await;
    }
    l.push(format!("{label} release"));
}

#[test]
fn sema_sequence() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let sema = Rc::new(Semaphore::new(1));
        let t1 = spawn(sema_worker(sema.clone(), "work1", 0.25, l.clone(), true));
        let t2 = spawn(sema_worker(sema.clone(), "work2", 0.25, l.clone(), true));
        let t3 = spawn(sema_worker(sema.clone(), "work3", 0.25, l.clone(), true));
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
        assert_eq!(sema.value(), 1);
    });
    assert_eq!(
        log.take(),
        [
            "work1 wait",
            "false",
            "work1 acquire",
            "work2 wait",
            "true",
            "work3 wait",
            "true",
            "work1 release",
            "work2 acquire",
            "work2 release",
            "work3 acquire",
            "work3 release",
        ]
    );
}

#[test]
fn sema_sequence2() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let sema = Rc::new(Semaphore::new(2));
        let t1 = spawn(sema_worker(sema.clone(), "work1", 0.25, l.clone(), false));
        let t2 = spawn(sema_worker(sema.clone(), "work2", 0.30, l.clone(), false));
        let t3 = spawn(sema_worker(sema.clone(), "work3", 0.35, l.clone(), false));
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
        assert_eq!(sema.value(), 2);
    });
    assert_eq!(
        log.take(),
        [
            "work1 wait", // Both work1 and work2 admitted
            "false",
            "work1 acquire",
            "work2 wait",
            "false",
            "work2 acquire",
            "work3 wait",
            "true",
            "work1 release",
            "work3 acquire",
            "work2 release",
            "work3 release",
        ]
    );
}

#[test]
fn sema_acquire_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let sema = Rc::new(Semaphore::new(1));
        {
            let _p = sema.acquire().await;
            let (s, lw) = (sema.clone(), l.clone());
            let task = spawn(async move {
                lw.push("lock_wait");
                let c = OnCancel::new(&lw, "lock_cancel");
                let _p = s.acquire().await;
                c.disarm();
                lw.push("never here");
            });
            l.push("sleep");
            sleep(secs(1.0)).await;
            l.push("cancel_start");
            task.cancel().await;
            l.push("cancel_done");
            assert_eq!(sema.value(), 0);
            assert_eq!(sema.waiting(), 0);
        }
        // Permits are conserved: the cancelled waiter took none.
        assert_eq!(sema.value(), 1);
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "lock_wait",
            "cancel_start",
            "lock_cancel",
            "cancel_done"
        ]
    );
}

#[test]
fn sema_acquire_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let sema = Rc::new(Semaphore::new(1));
        {
            let _p = sema.acquire().await;
            let (s, lw) = (sema.clone(), l.clone());
            let w = spawn(async move {
                lw.push("lock_wait");
                match timeout_after(secs(0.5), s.acquire()).await {
                    Ok(_p) => lw.push("never here"),
                    Err(_) => lw.push("lock_timeout"),
                }
            });
            l.push("sleep");
            sleep(secs(1.0)).await;
            l.push("sleep_done");
            w.join().await.unwrap();
            assert_eq!(sema.value(), 0);
        }
        assert_eq!(sema.value(), 1);
    });
    assert_eq!(
        log.take(),
        ["sleep", "lock_wait", "lock_timeout", "sleep_done"]
    );
}

/// A waiter dropped after a permit was handed to it passes the permit on: permits are conserved
/// (SPEC §3 cancel safety; polled by hand, so the hand-off is certain).
#[test]
fn sema_handoff_cancel() {
    let sema = Semaphore::new(1);
    let p = sema.try_acquire().unwrap();
    let mut a = Box::pin(sema.acquire());
    let mut b = Box::pin(sema.acquire());
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    assert_eq!(sema.waiting(), 2);
    drop(p); // handed to `a`
    assert_eq!(sema.value(), 0);
    drop(a); // passed on to `b`
    assert_eq!(sema.value(), 0);
    let Poll::Ready(pb) = poll_once(b.as_mut()) else {
        panic!("the permit must pass to the next waiter")
    };
    drop(pb);
    drop(b);
    assert_eq!(sema.value(), 1);
    // With nobody waiting, a dropped hand-off goes back to the semaphore.
    let p = sema.try_acquire().unwrap();
    let mut c = Box::pin(sema.acquire());
    assert!(poll_once(c.as_mut()).is_pending());
    drop(p);
    drop(c);
    assert_eq!(sema.value(), 1);
    assert_eq!(sema.waiting(), 0);
}

#[test]
fn bounded_semaphore_error() {
    // Curio's `test_bounded` (its BoundedSemaphore lives in examples/): ValueError -> Err.
    vrun(async {
        let sema = BoundedSemaphore::new(1);
        assert_eq!(sema.release(), Err(SyncError::TooManyReleases));
        assert_eq!(sema.value(), 1);
        sema.acquire().await.forget();
        assert_eq!(sema.value(), 0);
        assert_eq!(sema.release(), Ok(()));
        assert_eq!(sema.value(), 1);
        assert_eq!(sema.release(), Err(SyncError::TooManyReleases));
        assert_eq!(sema.value(), 1);
        // A plain Semaphore has no bound (Curio's `Semaphore`).
        let plain = Semaphore::new(1);
        assert_eq!(plain.release(), Ok(()));
        assert_eq!(plain.value(), 2);
    });
}

// ---- Condition

#[test]
fn cond_sequence() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let cond = Rc::new(Condition::new());
        let q: Rc<RefCell<VecDeque<Option<i32>>>> = Rc::default();
        let consumer = |label: &'static str| {
            let (cond, q, l) = (cond.clone(), q.clone(), l.clone());
            async move {
                loop {
                    let mut g = cond.lock().await;
                    if q.borrow().is_empty() {
                        l.push(format!("{label} wait"));
                        g = cond.wait(g).await.unwrap();
                    }
                    let item = q.borrow_mut().pop_front().expect("notified with an item");
                    let Some(item) = item else { break };
                    l.push(format!("({label}, {item})"));
                    drop(g);
                }
                l.push(format!("{label} done"));
            }
        };
        let t1 = spawn(consumer("cons1"));
        let t2 = spawn(consumer("cons2"));
        let (c, qp, lp) = (cond.clone(), q.clone(), l.clone());
        let t3 = spawn(async move {
            for n in 0..4 {
                {
                    let _g = c.lock().await;
                    qp.borrow_mut().push_back(Some(n));
                    lp.push(format!("(producing, {n})"));
                    c.notify(1).unwrap();
                }
                sleep(secs(0.1)).await;
            }
            for n in 0..2 {
                {
                    let _g = c.lock().await;
                    qp.borrow_mut().push_back(None);
                    lp.push(format!("(ending, {n})"));
                    c.notify(1).unwrap();
                }
                sleep(secs(0.1)).await;
            }
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
        assert!(q.borrow().is_empty() && !cond.locked());
    });
    assert_eq!(
        log.take(),
        [
            "cons1 wait",
            "cons2 wait",
            "(producing, 0)",
            "(cons1, 0)",
            "cons1 wait",
            "(producing, 1)",
            "(cons2, 1)",
            "cons2 wait",
            "(producing, 2)",
            "(cons1, 2)",
            "cons1 wait",
            "(producing, 3)",
            "(cons2, 3)",
            "cons2 wait",
            "(ending, 0)",
            "cons1 done",
            "(ending, 1)",
            "cons2 done"
        ]
    );
}

#[test]
fn cond_wait_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let cond = Rc::new(Condition::new());
        let (c, lw) = (cond.clone(), l.clone());
        let task = spawn(async move {
            let cancelled = OnCancel::new(&lw, "worker_cancel");
            let g = c.lock().await;
            lw.push("cond_wait");
            let _g = c.wait(g).await.unwrap();
            cancelled.disarm();
            lw.push("never here");
        });
        l.push("sleep");
        sleep(secs(1.0)).await;
        l.push("cancel_start");
        task.cancel().await;
        l.push("cancel_done");
        // The cancelled waiter holds the lock no more and is off the wait list.
        assert!(!cond.locked());
        let g = cond.lock().await;
        cond.notify_all().unwrap();
        drop(g);
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "cond_wait",
            "cancel_start",
            "worker_cancel",
            "cancel_done"
        ]
    );
}

#[test]
fn cond_wait_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let cond = Rc::new(Condition::new());
        let (c, lw) = (cond.clone(), l.clone());
        let task = spawn(async move {
            let g = c.lock().await;
            lw.push("cond_wait");
            match timeout_after(secs(0.25), c.wait(g)).await {
                Ok(_g) => lw.push("never here"),
                Err(_) => lw.push("worker_timeout"),
            }
            // Curio re-acquires the lock when the wait is interrupted and its `async with`
            // releases it; here the guard goes with the dropped wait. Either way it is free.
            assert!(!c.locked());
        });
        l.push("sleep");
        sleep(secs(1.0)).await;
        l.push("done");
        task.join().await.unwrap();
        assert!(!cond.locked());
    });
    assert_eq!(log.take(), ["sleep", "cond_wait", "worker_timeout", "done"]);
}

#[test]
fn cond_notify_all() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let cond = Rc::new(Condition::new());
        let worker = || {
            let (c, lw) = (cond.clone(), l.clone());
            spawn(async move {
                let g = c.lock().await;
                lw.push("cond_wait");
                let _g = c.wait(g).await.unwrap();
                lw.push("wait_done");
            })
        };
        let (t1, t2, t3) = (worker(), worker(), worker());
        l.push("sleep");
        sleep(secs(1.0)).await;
        {
            let _g = cond.lock().await;
            l.push("notify");
            cond.notify_all().unwrap();
        }
        l.push("done");
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "sleep",
            "cond_wait",
            "cond_wait",
            "cond_wait",
            "notify",
            "done",
            "wait_done",
            "wait_done",
            "wait_done",
        ]
    );
}

#[test]
fn cond_waitfor() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let cond = Rc::new(Condition::new());
        let q: Rc<RefCell<VecDeque<i32>>> = Rc::default();
        let consumer = |label: &'static str| {
            let (c, q, l) = (cond.clone(), q.clone(), l.clone());
            spawn(async move {
                {
                    let g = c.lock().await;
                    l.push(format!("{label} waitfor"));
                    let _g = c.wait_for(g, || q.borrow().len() > 2).await.unwrap();
                    l.push(format!("({label}, {})", q.borrow().len()));
                }
                l.push(format!("{label} done"));
            })
        };
        let t1 = consumer("cons1");
        let t2 = consumer("cons2");
        let (c, qp, lp) = (cond.clone(), q.clone(), l.clone());
        let t3 = spawn(async move {
            for n in 0..4 {
                {
                    let _g = c.lock().await;
                    qp.borrow_mut().push_back(n);
                    lp.push(format!("(producing, {n})"));
                    c.notify(1).unwrap();
                }
                sleep(secs(0.1)).await;
            }
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
        t3.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "cons1 waitfor",
            "cons2 waitfor",
            "(producing, 0)",
            "(producing, 1)",
            "(producing, 2)",
            "(cons1, 3)",
            "cons1 done",
            "(producing, 3)",
            "(cons2, 4)",
            "cons2 done"
        ]
    );
}

#[test]
fn condition_error() {
    vrun(async {
        let c = Condition::new();
        // Curio: notify without the lock raises RuntimeError.
        assert_eq!(c.notify(1), Err(SyncError::NotLocked));
        assert_eq!(c.notify_all(), Err(SyncError::NotLocked));
        // Curio: wait without the lock raises RuntimeError. Here a wait needs a guard, so the
        // misuse is the guard of another lock; it is refused at once, without waiting.
        let other = Lock::new();
        let g = other.lock().await;
        assert_eq!(c.wait(g).await.unwrap_err(), SyncError::WrongLock);
        let g = other.lock().await;
        assert_eq!(
            c.wait_for(g, || false).await.unwrap_err(),
            SyncError::WrongLock
        );
        // With its own lock held, notifying is fine (even with nobody waiting).
        let g = c.lock().await;
        assert_eq!(c.notify(1), Ok(()));
        assert_eq!(c.notify_all(), Ok(()));
        drop(g);
        assert!(!c.locked());
    });
}

// ---- Promise (Curio's `Result`)

#[test]
fn promise_set_once() {
    vrun(async {
        let p: Rc<Promise<i32>> = Rc::new(Promise::new());
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                spawn(async move { p.get().await })
            })
            .collect();
        yield_now().await; // the readers block
        assert!(!p.is_set());
        assert_eq!(p.try_get(), None);
        // Curio's `test_value`: a task sets 2 + 3.
        let p2 = p.clone();
        spawn(async move { p2.set(2 + 3) })
            .join()
            .await
            .unwrap()
            .unwrap();
        // Deviation: Curio's `Result` can be set again (last write wins); a Promise is set once
        // and gives a second value back.
        assert_eq!(p.set(7), Err(AlreadySet(7)));
        for r in readers {
            assert_eq!(r.join().await.unwrap(), 5);
        }
        assert!(p.is_set());
        assert_eq!(p.get().await, 5);
        assert_eq!(p.try_get(), Some(5));

        // Curio's `test_error`: the stored exception is an `Err` value.
        let p: Rc<Promise<Result<i32, String>>> = Rc::new(Promise::new());
        let p2 = p.clone();
        let setter = spawn(async move { p2.set(Err("unsupported operand".to_string())) });
        assert_eq!(p.get().await, Err("unsupported operand".to_string()));
        setter.join().await.unwrap().unwrap();
    });
}

// ---- Starvation (test_kernel.py)

async fn pingpong(inq: Rc<Queue<&'static str>>, outq: Rc<Queue<&'static str>>) {
    loop {
        let item = inq.get().await.unwrap();
        outq.put(item).await.unwrap();
    }
}

#[test]
fn ping_pong_starvation() {
    // Two tasks endlessly moving one item between two queues must not starve a third.
    vrun(async {
        let q1 = Rc::new(Queue::new(0));
        let q2 = Rc::new(Queue::new(0));
        q1.put("something").await.unwrap();
        let pp1 = spawn(pingpong(q1.clone(), q2.clone()));
        let pp2 = spawn(pingpong(q2.clone(), q1.clone()));
        let iws = spawn(async {
            for _ in 0..10 {
                sleep(Duration::ZERO).await;
            }
            "i survived!"
        });
        assert_eq!(iws.join().await.unwrap(), "i survived!");
        pp1.cancel().await;
        pp2.cancel().await;
        assert!(pp1.is_terminated() && pp2.is_terminated());
        // Cancelling the getters lost nothing: the one item is in one of the queues.
        assert_eq!(q1.len() + q2.len(), 1);
        let item = q1.try_get().or_else(|_| q2.try_get()).unwrap();
        assert_eq!(item, "something");
    });
}

// ---- UniversalEvent

#[test]
fn uevent_get_wait() {
    // Curio waiter, Curio setter.
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = UniversalEvent::new();
        let (e, lw) = (evt.clone(), l.clone());
        let t1 = spawn(async move {
            lw.push("wait_start");
            lw.push(e.is_set().to_string());
            e.wait().await;
            lw.push("wait_done");
            lw.push(e.is_set().to_string());
            e.clear();
            lw.push(e.is_set().to_string());
        });
        let (e, ls) = (evt.clone(), l.clone());
        let t2 = spawn(async move {
            ls.push("sleep");
            sleep(secs(1.0)).await;
            ls.push("event_set");
            e.set();
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "wait_start",
            "false",
            "sleep",
            "event_set",
            "wait_done",
            "true",
            "false"
        ]
    );
}

/// A `set` wakes every task waiting at that moment, even if the event is cleared before they
/// run: Curio's `Event` and `UniversalEvent` both do (each `UniversalEvent` waiter waits on its own
/// future, which `set` resolves), and so does the kernel-local `Event` here.
#[test]
fn uevent_set_then_clear_wakes_waiters() {
    vrun(async {
        let local = Rc::new(Event::new());
        let e = local.clone();
        let waiter = spawn(async move { e.wait().await });
        yield_now().await; // the waiter waits
        local.set();
        local.clear();
        assert!(
            timeout_after(secs(1.0), waiter.wait()).await.is_ok(),
            "Event: a waiter woken by set must return"
        );

        let evt = UniversalEvent::new();
        let e = evt.clone();
        let waiter = spawn(async move { e.wait().await });
        yield_now().await; // the waiter waits
        evt.set();
        evt.clear();
        assert!(
            timeout_after(secs(1.0), waiter.wait()).await.is_ok(),
            "UniversalEvent: a waiter woken by set must return even if the event was cleared \
             before it ran"
        );
    });
}

const EVENT_ORDER: [&str; 7] = [
    "wait_start",
    "false",
    "sleep",
    "event_set",
    "wait_done",
    "true",
    "false",
];

#[test]
fn uevent_thread_waiter() {
    // Curio's `test_uevent_get_twait`: a blocking wait in a plain thread, a Curio setter.
    let log = SyncLog::default();
    let evt = UniversalEvent::new();
    let started = UniversalEvent::new();
    let waiter = {
        let (log, evt, started) = (log.clone(), evt.clone(), started.clone());
        std::thread::spawn(move || {
            log.push("wait_start");
            log.push(evt.is_set().to_string());
            started.set();
            evt.wait_timeout(LIMIT).expect("the event was never set");
            log.push("wait_done");
            log.push(evt.is_set().to_string());
            evt.clear();
            log.push(evt.is_set().to_string());
        })
    };
    let l = log.clone();
    curio::run(async move {
        // Curio relies on the thread starting at once; here the setter waits for it to.
        bounded("waiter thread start", started.wait()).await;
        let setter = spawn(async move {
            l.push("sleep");
            sleep(ms(10)).await;
            l.push("event_set");
            evt.set();
        });
        setter.join().await.unwrap();
        bounded("waiter thread", curio::run_in_thread(move || waiter.join()))
            .await
            .unwrap();
    });
    assert_eq!(log.take(), EVENT_ORDER);
}

#[test]
fn uevent_thread_setter() {
    // Curio's `test_uevent_get_asyncio_set`: a Curio waiter, a setter on another event loop in
    // another thread (here a second curio kernel instead of asyncio).
    let log = SyncLog::default();
    let l = log.clone();
    curio::run(async move {
        let evt = UniversalEvent::new();
        let (e, lw) = (evt.clone(), l.clone());
        let t1 = spawn(async move {
            lw.push("wait_start");
            lw.push(e.is_set().to_string());
            e.wait().await;
            lw.push("wait_done");
            lw.push(e.is_set().to_string());
            e.clear();
            lw.push(e.is_set().to_string());
        });
        // Curio: `sleep(0.05)`. One yield lets the waiter run to its wait (spawn never switches;
        // the children run first in the next cycle).
        yield_now().await;
        assert_eq!(l.snapshot(), ["wait_start", "false"]);
        let (e, ls) = (evt.clone(), l.clone());
        let setter = std::thread::spawn(move || {
            curio::run(async move {
                ls.push("sleep");
                sleep(ms(10)).await;
                ls.push("event_set");
                e.set();
            })
        });
        bounded("waiter", t1.wait()).await;
        t1.join().await.unwrap();
        bounded("setter thread", curio::run_in_thread(move || setter.join()))
            .await
            .unwrap();
        assert!(!evt.is_set());
    });
    assert_eq!(log.take(), EVENT_ORDER);
}

#[test]
fn uevent_get_wait_timeout() {
    // The waiter's timeout expires before the setter sets (Curio: 1 s timeout, 2 s setter). The
    // waiter is a plain thread with `wait_timeout`; the setter, a Curio task, sets only once the
    // waiter has timed out, so the order is certain without long sleeps.
    let log = SyncLog::default();
    let evt = UniversalEvent::new();
    let started = UniversalEvent::new();
    let go = UniversalEvent::new();
    let timed_out = UniversalEvent::new();
    let waiter = {
        let (log, evt, started, go, timed_out) = (
            log.clone(),
            evt.clone(),
            started.clone(),
            go.clone(),
            timed_out.clone(),
        );
        std::thread::spawn(move || {
            log.push("wait_start");
            started.set();
            go.wait_timeout(LIMIT).expect("no go");
            let t0 = Instant::now();
            match evt.wait_timeout(ms(10)) {
                Ok(()) => log.push("wait_done"),
                Err(WaitTimeout) => {
                    assert!(
                        t0.elapsed() >= ms(10),
                        "timed out early: {:?}",
                        t0.elapsed()
                    );
                    log.push("wait_timeout");
                }
            }
            log.push(evt.is_set().to_string());
            timed_out.set();
        })
    };
    let (l, e) = (log.clone(), evt.clone());
    curio::run(async move {
        let setter = spawn(async move {
            bounded("waiter thread start", started.wait()).await;
            l.push("sleep");
            go.set();
            bounded("waiter timeout", timed_out.wait()).await;
            l.push("event_set");
            e.set();
        });
        setter.join().await.unwrap();
    });
    waiter.join().unwrap();
    assert_eq!(
        log.take(),
        ["wait_start", "sleep", "wait_timeout", "false", "event_set"]
    );
    // Once set, waits return at once.
    assert_eq!(evt.wait_timeout(ms(10)), Ok(()));
    evt.wait_blocking();
}

#[test]
fn uevent_task_wait_timeout() {
    // Curio's `test_uevent_get_wait_timeout` as written: a Curio task's `timeout_after`.
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = UniversalEvent::new();
        let (e, lw) = (evt.clone(), l.clone());
        let t1 = spawn(async move {
            lw.push("wait_start");
            match timeout_after(secs(1.0), e.wait()).await {
                Ok(()) => lw.push("wait_done"),
                Err(_) => lw.push("wait_timeout"),
            }
            lw.push(e.is_set().to_string());
        });
        let (e, ls) = (evt.clone(), l.clone());
        let t2 = spawn(async move {
            ls.push("sleep");
            sleep(secs(2.0)).await;
            ls.push("event_set");
            e.set();
        });
        t1.join().await.unwrap();
        t2.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        ["wait_start", "sleep", "wait_timeout", "false", "event_set"]
    );
}

// ---- UniversalPromise (Curio's `UniversalResult`)

/// Curio's `TestUniversalResult`: a thread sets `r1`; another thread's event loop (asyncio in
/// Curio, a second curio kernel here) awaits it and sets `r2`; a kernel on this thread awaits `r2`
/// and sets `r3`; this thread blocks on `r3`.
fn promise_chain<T: Clone + Send + std::fmt::Debug + 'static>(value: T) -> T {
    let (r1, r2, r3) = (
        UniversalPromise::new(),
        UniversalPromise::new(),
        UniversalPromise::new(),
    );
    assert_eq!(r3.get_timeout(ms(1)).unwrap_err(), WaitTimeout);
    let work = {
        let r1 = r1.clone();
        std::thread::spawn(move || r1.set(value).map_err(|_| "set twice"))
    };
    let middle = {
        let (r1, r2) = (r1.clone(), r2.clone());
        std::thread::spawn(move || {
            curio::run(async move {
                let v = bounded("r1", r1.get()).await;
                r2.set(v).map_err(|_| "set twice")
            })
        })
    };
    let r = r3.clone();
    curio::run(async move {
        let v = bounded("r2", r2.get()).await;
        r.set(v).map_err(|_| "set twice")
    })
    .unwrap();
    let out = r3.get_blocking(); // set by now: returns at once
    work.join().unwrap().unwrap();
    middle.join().unwrap().unwrap();
    assert!(r1.is_set() && r3.is_set());
    assert!(r1.set(out.clone()).is_err(), "a promise is set once");
    out
}

#[test]
fn universal_promise_across_threads() {
    assert_eq!(promise_chain(2 + 3), 5);
    // Curio's `test_universal_error`: the exception travels as an `Err` value.
    let err: Result<i32, String> = Err("unsupported operand".to_string());
    assert_eq!(promise_chain(err.clone()), err);
    let p = UniversalPromise::new();
    assert_eq!(p.try_get(), None);
    p.set(1).unwrap();
    assert_eq!(p.try_get(), Some(1));
    assert_eq!(p.get_timeout(ms(1)), Ok(1));
}
