//! Model checks of the Universal types under loom: every interleaving of a few threads, with
//! waiters cancelled at every point, must lose no wakeup and no item, and duplicate none.
//!
//! Run with `cargo xtask loom` (`RUSTFLAGS="--cfg loom" cargo test --release -p curio-sync
//! --features loom --lib loom`).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::thread;

use crate::{UniversalEvent, UniversalQueue};

/// Polls `fut` once with a no-op waker and drops it: a waiter cancelled at its first suspension.
fn poll_once_then_cancel<F: Future>(fut: F) -> Option<F::Output> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

#[test]
fn loom_queue_blocking_put_get() {
    loom::model(|| {
        let q = UniversalQueue::new(1);
        let q2 = q.clone();
        let producer = thread::spawn(move || {
            q2.put_blocking(1).unwrap();
            q2.put_blocking(2).unwrap();
        });
        let a = q.get_blocking().unwrap();
        let b = q.get_blocking().unwrap();
        producer.join().unwrap();
        assert_eq!((a, b), (1, 2));
        assert!(q.is_empty());
    });
}

#[test]
fn loom_cancelled_getter_loses_nothing() {
    loom::model(|| {
        let q = UniversalQueue::new(0);
        let (q2, q3) = (q.clone(), q.clone());
        let producer = thread::spawn(move || {
            q2.put_blocking(1).unwrap();
            q2.put_blocking(2).unwrap();
        });
        // A blocked consumer on another thread: if a wakeup were lost to the cancelled getter
        // below, it would never return and loom would report the deadlock.
        let consumer = thread::spawn(move || q3.get_blocking().unwrap());
        let mine = match poll_once_then_cancel(q.get()) {
            Some(item) => item.unwrap(),
            None => q.get_blocking().unwrap(),
        };
        let theirs = consumer.join().unwrap();
        producer.join().unwrap();
        let mut got = [mine, theirs];
        got.sort_unstable();
        assert_eq!(got, [1, 2], "each item arrives exactly once");
        assert!(q.is_empty());
    });
}

#[test]
fn loom_cancelled_putter_duplicates_nothing() {
    loom::model(|| {
        let q = UniversalQueue::new(1);
        q.try_put(0).unwrap();
        let q2 = q.clone();
        let consumer = thread::spawn(move || {
            let first = q2.get_blocking().unwrap();
            let second = q2.get_blocking().unwrap();
            (first, second)
        });
        // A put cancelled while the queue may be full: the item is in the queue once or not at
        // all; if not, the blocking put adds it.
        if poll_once_then_cancel(q.put(1)).is_none() {
            q.put_blocking(1).unwrap();
        }
        let (first, second) = consumer.join().unwrap();
        assert_eq!((first, second), (0, 1));
        assert!(q.is_empty(), "no duplicate left behind");
    });
}

#[test]
fn loom_event_no_lost_wakeup() {
    loom::model(|| {
        let evt = UniversalEvent::new();
        let (e2, e3) = (evt.clone(), evt.clone());
        let setter = thread::spawn(move || e2.set());
        let waiter = thread::spawn(move || e3.wait_blocking());
        // A waiter cancelled at its first suspension must not swallow the wake of the other.
        let _ = poll_once_then_cancel(evt.wait());
        evt.wait_blocking();
        setter.join().unwrap();
        waiter.join().unwrap();
        assert!(evt.is_set());
    });
}

#[test]
fn loom_queue_two_blocked_getters_both_woken() {
    // Each put notifies only when a getter announced itself; two getters waiting at once must
    // each get a notification (one per announcement), whatever the order of the announcements.
    loom::model(|| {
        let q = UniversalQueue::new(0);
        let (q2, q3) = (q.clone(), q.clone());
        let a = thread::spawn(move || q2.get_blocking().unwrap());
        let b = thread::spawn(move || q3.get_blocking().unwrap());
        q.put_blocking(1).unwrap();
        q.put_blocking(2).unwrap();
        let mut got = [a.join().unwrap(), b.join().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn loom_queue_stale_announcement_loses_nothing() {
    // A getter whose second try succeeds leaves its announcement behind; a later waiter must
    // still be woken by the next put.
    loom::model(|| {
        let q = UniversalQueue::new(1);
        let q2 = q.clone();
        let producer = thread::spawn(move || {
            q2.put_blocking(1).unwrap();
            q2.put_blocking(2).unwrap();
            q2.put_blocking(3).unwrap();
        });
        let got = [
            q.get_blocking().unwrap(),
            q.get_blocking().unwrap(),
            q.get_blocking().unwrap(),
        ];
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
        assert!(q.is_empty());
    });
}

#[test]
fn loom_queue_join_after_task_done() {
    loom::model(|| {
        let q = UniversalQueue::new(0);
        let q2 = q.clone();
        q.put_blocking(1).unwrap();
        let worker = thread::spawn(move || {
            let x = q2.get_blocking().unwrap();
            q2.task_done().unwrap();
            x
        });
        q.join_blocking();
        assert_eq!(worker.join().unwrap(), 1);
        assert!(q.task_done().is_err(), "every put already marked done");
    });
}
