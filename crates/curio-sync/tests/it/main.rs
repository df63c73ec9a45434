//! The Universal types awaited from another runtime's tasks: a tokio current-thread runtime on
//! one thread, a curio kernel on another, talking through `UniversalQueue`, `UniversalEvent` and
//! `UniversalPromise` (Curio's asyncio tests: `test_uqueue_asyncio_prod`,
//! `test_uqueue_asyncio_consumer`, `test_uevent_get_asyncio_set`, `test_uevent_get_asyncio_wait`
//! and `TestUniversalResult`, with tokio in asyncio's place).
//!
//! The Universal types are plain futures woken through the waker of whoever polls them, so tokio
//! needs nothing of curio. Threads synchronise through the primitives under test and joins, never
//! through sleeps. tokio runs without its timer, so every tokio-side wait is bounded by a
//! watchdog thread ([`block_on_bounded`]) and a lost wakeup fails the test instead of hanging it.

#![cfg(not(loom))]

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use curio_sync::{UniversalEvent, UniversalPromise, UniversalQueue};

/// The longest any test may wait for another thread.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `fut` on a new tokio current-thread runtime; panics if it has not finished within
/// [`LIMIT`].
fn block_on_bounded<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let finished = UniversalEvent::new();
    let expired = UniversalEvent::new();
    let watchdog = {
        let (finished, expired) = (finished.clone(), expired.clone());
        thread::spawn(move || {
            if finished.wait_timeout(LIMIT).is_err() {
                expired.set();
            }
        })
    };
    let out = rt.block_on(async {
        let mut fut = pin!(fut);
        let mut expiry = pin!(expired.wait());
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            if expiry.as_mut().poll(cx).is_ready() {
                panic!("the tokio side made no progress in {LIMIT:?}");
            }
            Poll::Pending
        })
        .await
    });
    finished.set();
    watchdog.join().unwrap();
    out
}

/// Runs `fut` as the main task of a curio kernel, bounded by [`LIMIT`].
fn curio_bounded<F: Future>(fut: F) -> F::Output {
    curio_kernel::run(async {
        curio_kernel::timeout_after(LIMIT, fut)
            .await
            .expect("the curio side made no progress in time")
    })
}

#[test]
fn uqueue_tokio_consumer() {
    // A tokio task awaits `get()`, fed by a curio task on another thread (maxsize 2, so both
    // sides block and wake each other many times); the curio producer's `join` returns once the
    // tokio consumer has marked every item done.
    let q: UniversalQueue<Option<u32>> = UniversalQueue::new(2);
    let qp = q.clone();
    let producer = thread::spawn(move || {
        curio_bounded(async move {
            for n in 0..100 {
                qp.put(Some(n)).await.unwrap();
            }
            qp.put(None).await.unwrap();
            qp.join().await;
        });
    });
    let results = block_on_bounded(async move {
        let consumer = tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let item = q.get().await.unwrap();
                q.task_done().unwrap();
                match item {
                    Some(n) => results.push(n),
                    None => break results,
                }
            }
        });
        consumer.await.unwrap()
    });
    producer.join().unwrap();
    assert_eq!(results, (0..100).collect::<Vec<_>>());
}

#[test]
fn uqueue_tokio_prod() {
    // The reverse: a tokio task puts (and awaits `join()`), a curio task gets.
    let q: UniversalQueue<Option<u32>> = UniversalQueue::new(2);
    let qc = q.clone();
    let consumer = thread::spawn(move || {
        curio_bounded(async move {
            let mut results = Vec::new();
            loop {
                let item = qc.get().await.unwrap();
                qc.task_done().unwrap();
                match item {
                    Some(n) => results.push(n),
                    None => break results,
                }
            }
        })
    });
    block_on_bounded(async move {
        tokio::spawn(async move {
            for n in 0..100 {
                q.put(Some(n)).await.unwrap();
            }
            q.put(None).await.unwrap();
            q.join().await;
            assert!(q.is_empty());
        })
        .await
        .unwrap();
    });
    assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn uevent_tokio_set() {
    // A tokio task sets the event a curio task awaits.
    let evt = UniversalEvent::new();
    let waiting = UniversalEvent::new();
    let curio_side = {
        let (evt, waiting) = (evt.clone(), waiting.clone());
        thread::spawn(move || {
            curio_bounded(async move {
                let e = evt.clone();
                let waiter = curio_kernel::spawn(async move {
                    let before = e.is_set();
                    e.wait().await;
                    (before, e.is_set())
                });
                // The waiter runs to its wait first (spawn never switches; a yield lets it run).
                curio_kernel::yield_now().await;
                waiting.set();
                waiter.wait().await;
                waiter.join().await.unwrap()
            })
        })
    };
    block_on_bounded(async move {
        tokio::spawn(async move {
            waiting.wait().await;
            evt.set();
        })
        .await
        .unwrap();
    });
    assert_eq!(curio_side.join().unwrap(), (false, true));
}

#[test]
fn uevent_tokio_wait() {
    // The reverse: a curio task sets the event a tokio task awaits.
    let evt = UniversalEvent::new();
    let waiting = UniversalEvent::new();
    let setter = {
        let (evt, waiting) = (evt.clone(), waiting.clone());
        thread::spawn(move || {
            curio_bounded(async move {
                waiting.wait().await;
                evt.set();
            });
        })
    };
    let seen = block_on_bounded(async move {
        tokio::spawn(async move {
            let before = evt.is_set();
            // Poll the wait once, so it is registered before the setter may go.
            let mut wait = pin!(evt.wait());
            poll_fn(|cx| {
                assert!(wait.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            waiting.set();
            wait.await;
            (before, evt.is_set())
        })
        .await
        .unwrap()
    });
    setter.join().unwrap();
    assert_eq!(seen, (false, true));
}

#[test]
fn upromise_tokio_thread_curio() {
    // A value crosses tokio -> a plain thread -> curio: a tokio task sets `p1`, a thread blocks
    // on it and sets `p2`, a curio task awaits `p2`.
    let (p1, p2) = (UniversalPromise::new(), UniversalPromise::new());
    let middle = {
        let (p1, p2) = (p1.clone(), p2.clone());
        thread::spawn(move || {
            let v: u32 = p1.get_timeout(LIMIT).expect("p1 was never set");
            p2.set(v * 10).unwrap();
        })
    };
    let curio_side = {
        let p2 = p2.clone();
        thread::spawn(move || curio_bounded(p2.get()))
    };
    block_on_bounded(async move {
        tokio::spawn(async move { p1.set(2 + 3).unwrap() })
            .await
            .unwrap();
    });
    middle.join().unwrap();
    assert_eq!(curio_side.join().unwrap(), 50);
    assert_eq!(p2.try_get(), Some(50));
    assert!(p2.set(0).is_err(), "a promise is set once");
}

/// A tokio task waiting on a `UniversalQueue` is woken by its close, and a waiting putter gets its
/// item back.
#[test]
fn uqueue_close_wakes_a_tokio_task() {
    let q: UniversalQueue<u32> = UniversalQueue::new(1);
    let (qg, qc) = (q.clone(), q.clone());
    let got = block_on_bounded(async move {
        let getter = tokio::spawn(async move { qg.get().await });
        tokio::task::yield_now().await;
        qc.close();
        getter.await.unwrap()
    });
    assert_eq!(got, Err(curio_sync::Closed(())));
    assert_eq!(
        block_on_bounded(async move { q.put(1).await }),
        Err(curio_sync::Closed(1))
    );
}
