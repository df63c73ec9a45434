//! Ports of Curio's `test_queue.py`, with Curio's names and event orders, plus cancel-safety
//! checks and a stress test of `UniversalQueue`.
//!
//! Kernel-only tests run on the virtual clock ([`vrun`]); tests with threads run on the real clock
//! and synchronise through the queues themselves, events and joins, never through sleeps. Waits
//! that depend on another thread are bounded ([`LIMIT`]), so a lost wakeup fails instead of
//! hanging. Curio's tuples `(label, n)` are logged as `"(label, n)"`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use curio::queue::{
    Empty, LifoQueue, PriorityQueue, Queue, SyncError, TryPutError, UniversalQueue,
};
use curio::sync::{Event, UniversalEvent};
use curio::{TaskTimeout, sleep, spawn, timeout_after, yield_now};

use crate::{LIMIT, Log, bounded, ms, secs, vrun};

/// Polls `fut` once with a no-op waker (no kernel needed for the kernel-local queues).
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Logs its message if dropped while armed: Curio's `except CancelledError: results.append(msg)`.
struct OnCancel(Option<(Log, &'static str)>);

impl OnCancel {
    fn new(log: &Log, msg: &'static str) -> OnCancel {
        OnCancel(Some((log.clone(), msg)))
    }

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

/// Curio's consumer: logs `(label, item)` until `None`, calling `task_done` for every item
/// (the `None` too); `pause` is its per-item sleep (`test_queue_bounded`).
async fn consumer(queue: Rc<Queue<Option<i32>>>, label: &'static str, pause: f64, l: Log) {
    while let Some(item) = queue.get().await.unwrap() {
        l.push(format!("({label}, {item})"));
        if pause > 0.0 {
            sleep(secs(pause)).await;
        }
        queue.task_done().unwrap();
    }
    queue.task_done().unwrap();
    l.push(format!("{label} done"));
}

#[test]
fn queue_simple() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue = Rc::new(Queue::new(0));
        l.push("producer_start");
        let c1 = spawn(consumer(queue.clone(), "cons1", 0.0, l.clone()));
        let c2 = spawn(consumer(queue.clone(), "cons2", 0.0, l.clone()));
        sleep(secs(0.1)).await;
        for n in 0..4 {
            queue.put(Some(n)).await.unwrap();
            sleep(secs(0.1)).await;
        }
        for _ in 0..2 {
            queue.put(None).await.unwrap();
        }
        l.push("producer_join");
        queue.join().await;
        l.push("producer_done");
        c1.join().await.unwrap();
        c2.join().await.unwrap();
        assert!(queue.is_empty());
        assert_eq!(queue.task_done(), Err(SyncError::TaskDoneTooManyTimes));
    });
    assert_eq!(
        log.take(),
        [
            "producer_start",
            "(cons1, 0)",
            "(cons2, 1)",
            "(cons1, 2)",
            "(cons2, 3)",
            "producer_join",
            "cons1 done",
            "cons2 done",
            "producer_done",
        ]
    );
}

#[test]
fn queue_unbounded() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue = Rc::new(Queue::new(0));
        l.push("producer_start");
        let c1 = spawn(consumer(queue.clone(), "cons1", 0.0, l.clone()));
        sleep(secs(0.1)).await;
        // An unbounded put never waits nor yields: nothing is consumed before the join.
        for n in 0..4 {
            queue.put(Some(n)).await.unwrap();
        }
        queue.put(None).await.unwrap();
        l.push("producer_join");
        queue.join().await;
        l.push("producer_done");
        c1.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "producer_start",
            "producer_join",
            "(cons1, 0)",
            "(cons1, 1)",
            "(cons1, 2)",
            "(cons1, 3)",
            "cons1 done",
            "producer_done",
        ]
    );
}

#[test]
fn queue_bounded() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue = Rc::new(Queue::new(2));
        l.push("producer_start");
        let c1 = spawn(consumer(queue.clone(), "cons1", 0.1, l.clone()));
        sleep(secs(0.1)).await;
        for n in 0..4 {
            queue.put(Some(n)).await.unwrap();
            l.push(format!("(produced, {n})"));
            assert!(queue.len() <= 2);
        }
        queue.put(None).await.unwrap();
        l.push("producer_join");
        queue.join().await;
        l.push("producer_done");
        c1.join().await.unwrap();
    });
    // Curio's order: an item handed to a waiting getter still fills a slot until the getter
    // takes it, so put 2 waits for the consumer.
    assert_eq!(
        log.take(),
        [
            "producer_start",
            "(produced, 0)",
            "(produced, 1)",
            "(cons1, 0)",
            "(produced, 2)",
            "(cons1, 1)",
            "(produced, 3)",
            "(cons1, 2)",
            "producer_join",
            "(cons1, 3)",
            "cons1 done",
            "producer_done",
        ]
    );
}

#[test]
fn queue_get_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue: Rc<Queue<i32>> = Rc::new(Queue::new(0));
        let (q, lc) = (queue.clone(), l.clone());
        let task = spawn(async move {
            lc.push("consumer waiting");
            let cancelled = OnCancel::new(&lc, "consumer cancelled");
            let _item = q.get().await.unwrap();
            cancelled.disarm();
            lc.push("not here");
        });
        sleep(secs(0.5)).await;
        task.cancel().await;
        assert!(task.is_cancelled());
        // The cancelled getter is gone: a put now stays in the queue.
        queue.put(1).await.unwrap();
        assert_eq!(queue.try_get(), Ok(1));
    });
    assert_eq!(log.take(), ["consumer waiting", "consumer cancelled"]);
}

#[test]
fn queue_put_cancel() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue = Rc::new(Queue::new(1));
        let (q, lp) = (queue.clone(), l.clone());
        let task = spawn(async move {
            lp.push("producer_start");
            q.put(0).await.unwrap();
            let cancelled = OnCancel::new(&lp, "producer_cancel");
            q.put(1).await.unwrap();
            cancelled.disarm();
            lp.push("not here");
        });
        sleep(secs(0.5)).await;
        task.cancel().await;
        // The cancelled putter's item was never added.
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get(), Ok(0));
        assert_eq!(queue.try_get(), Err(Empty));
        queue.task_done().unwrap();
        assert_eq!(queue.task_done(), Err(SyncError::TaskDoneTooManyTimes));
    });
    assert_eq!(log.take(), ["producer_start", "producer_cancel"]);
}

#[test]
fn queue_get_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue: Queue<i32> = Queue::new(0);
        l.push("consumer waiting");
        let start = curio::clock();
        match timeout_after(secs(0.5), queue.get()).await {
            Ok(_) => l.push("not here"),
            Err(_) => l.push("consumer timeout"),
        }
        assert_eq!(curio::clock() - start, secs(0.5));
        queue.try_put(1).unwrap();
        assert_eq!(queue.try_get(), Ok(1));
    });
    assert_eq!(log.take(), ["consumer waiting", "consumer timeout"]);
}

#[test]
fn queue_put_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let queue = Queue::new(1);
        l.push("producer start");
        queue.put(0).await.unwrap();
        match timeout_after(secs(0.5), queue.put(1)).await {
            Ok(_) => l.push("not here"),
            Err(_) => l.push("producer timeout"),
        }
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get(), Ok(0));
        assert_eq!(queue.try_get(), Err(Empty));
    });
    assert_eq!(log.take(), ["producer start", "producer timeout"]);
}

#[test]
fn queue_qsize() {
    vrun(async {
        let q = Queue::new(0);
        q.put(1).await.unwrap();
        assert_eq!(q.len(), 1);
        assert!(!q.is_empty() && !q.is_full() && q.maxsize() == 0);
        let b = Queue::new(1);
        assert_eq!(b.try_put(1), Ok(()));
        assert!(b.is_full());
        assert_eq!(b.try_put(2).unwrap_err().into_inner(), 2);
        assert_eq!(b.try_get(), Ok(1));
        assert_eq!(b.try_get(), Err(Empty));
    });
}

#[test]
fn priority_queue() {
    let priorities = [4, 2, 1, 3];
    let results = vrun(async move {
        let queue = Rc::new(PriorityQueue::new(0));
        for n in priorities {
            queue.put((n, Some(n))).await.unwrap();
        }
        queue.put((10, None)).await.unwrap();
        let q = queue.clone();
        let c = spawn(async move {
            let mut results = Vec::new();
            while let (_, Some(item)) = q.get().await.unwrap() {
                results.push(item);
                q.task_done().unwrap();
                sleep(secs(0.2)).await;
            }
            q.task_done().unwrap();
            results
        });
        queue.join().await;
        c.join().await.unwrap()
    });
    let mut sorted = priorities;
    sorted.sort();
    assert_eq!(results, sorted);
}

#[test]
fn lifo_queue() {
    let results = vrun(async {
        let queue = Rc::new(LifoQueue::new(0));
        queue.put(None).await.unwrap();
        for n in 0..4 {
            queue.put(Some(n)).await.unwrap();
        }
        let q = queue.clone();
        let c = spawn(async move {
            let mut results = Vec::new();
            while let Some(item) = q.get().await.unwrap() {
                results.push(item);
                q.task_done().unwrap();
                sleep(secs(0.2)).await;
            }
            q.task_done().unwrap();
            results
        });
        queue.join().await;
        c.join().await.unwrap()
    });
    assert_eq!(results, [3, 2, 1, 0]);
}

#[test]
fn queue_cancel_safety() {
    // Polled by hand, so each hand-off is certain.
    // A getter dropped after an item was handed to it passes it to the next getter...
    let q: Queue<i32> = Queue::new(0);
    let mut g1 = Box::pin(q.get());
    let mut g2 = Box::pin(q.get());
    assert!(poll_once(g1.as_mut()).is_pending());
    assert!(poll_once(g2.as_mut()).is_pending());
    q.try_put(1).unwrap(); // handed to g1
    assert!(q.is_empty());
    drop(g1);
    assert_eq!(poll_once(g2.as_mut()), Poll::Ready(Ok(1)));
    drop(g2);
    // ... or, with none, back to the front of the queue.
    let mut g3 = Box::pin(q.get());
    assert!(poll_once(g3.as_mut()).is_pending());
    q.try_put(2).unwrap(); // handed to g3
    q.try_put(3).unwrap(); // queued
    drop(g3);
    assert_eq!(q.try_get(), Ok(2));
    assert_eq!(q.try_get(), Ok(3));
    assert_eq!(q.try_get(), Err(Empty));
    for _ in 0..3 {
        q.task_done().unwrap();
    }
    assert_eq!(q.task_done(), Err(SyncError::TaskDoneTooManyTimes));

    // A putter dropped while waiting takes its item with it: never added.
    let q: Queue<i32> = Queue::new(1);
    q.try_put(1).unwrap();
    let mut p = Box::pin(q.put(2));
    assert!(poll_once(p.as_mut()).is_pending());
    drop(p);
    assert_eq!(q.try_get(), Ok(1));
    assert_eq!(q.try_get(), Err(Empty));
    // A putter admitted (a get reserved a place for it) and then dropped before its task ran:
    // the put has no effect (Curio's contract), and the place passes to the next putter.
    q.try_put(1).unwrap();
    let mut p = Box::pin(q.put(2));
    let mut p2 = Box::pin(q.put(3));
    assert!(poll_once(p.as_mut()).is_pending());
    assert!(poll_once(p2.as_mut()).is_pending());
    assert_eq!(q.try_get(), Ok(1));
    // The reserved place: not in `len`, but taken for `is_full` and `try_put`.
    assert_eq!(q.len(), 0);
    assert!(q.is_full());
    assert!(matches!(q.try_put(9), Err(TryPutError::Full(9))));
    drop(p);
    assert_eq!(q.try_get(), Err(Empty), "the cancelled put added nothing");
    assert!(q.is_full(), "the place passed to the second putter");
    assert_eq!(poll_once(p2.as_mut()), Poll::Ready(Ok(())));
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_get(), Ok(3));
    assert_eq!(q.try_get(), Err(Empty));
    // Items added: 1, 1, 3 (the cancelled 2 never was).
    for _ in 0..3 {
        q.task_done().unwrap();
    }
    assert_eq!(q.task_done(), Err(SyncError::TaskDoneTooManyTimes));
    // The same rule for the other orders; an admitted put whose task runs lands once.
    fn admitted_then_dropped<S: curio::queue::Storage<i32>>(q: &curio::queue::BaseQueue<i32, S>) {
        q.try_put(1).unwrap();
        let mut p = Box::pin(q.put(2));
        assert!(poll_once(p.as_mut()).is_pending());
        assert_eq!(q.try_get(), Ok(1));
        drop(p);
        assert_eq!(q.try_get(), Err(Empty));
        assert!(!q.is_full());
        q.try_put(4).unwrap();
        let mut p = Box::pin(q.put(5));
        assert!(poll_once(p.as_mut()).is_pending());
        assert_eq!(q.try_get(), Ok(4));
        assert_eq!(poll_once(p.as_mut()), Poll::Ready(Ok(())));
        drop(p);
        assert_eq!(q.try_get(), Ok(5));
        assert_eq!(q.try_get(), Err(Empty));
    }
    admitted_then_dropped(&LifoQueue::new(1));
    admitted_then_dropped(&PriorityQueue::new(1));
    admitted_then_dropped(&Queue::new(1));

    // In a kernel: a getter cancelled right after an item was handed to it, and getters whose
    // timeouts expire around the put. Whatever the kernel's order, each item arrives once.
    vrun(async {
        let q: Rc<Queue<i32>> = Rc::new(Queue::new(0));
        let got: Rc<RefCell<Vec<i32>>> = Rc::default();
        let getter = || {
            let (q, got) = (q.clone(), got.clone());
            spawn(async move {
                let x = q.get().await.unwrap();
                got.borrow_mut().push(x);
            })
        };
        let (g1, g2) = (getter(), getter());
        yield_now().await; // both wait
        q.put(1).await.unwrap(); // handed to g1
        g1.cancel().await;
        q.put(2).await.unwrap();
        g2.join().await.unwrap();
        let mut all = got.borrow().clone();
        all.extend(std::iter::from_fn(|| q.try_get().ok()));
        all.sort();
        assert_eq!(all, [1, 2]);

        for (n, at) in [999, 1000, 1001].into_iter().enumerate() {
            got.borrow_mut().clear();
            let (q2, got2) = (q.clone(), got.clone());
            let t = spawn(async move {
                if let Ok(Ok(x)) = timeout_after(ms(1000), q2.get()).await {
                    got2.borrow_mut().push(x);
                }
            });
            sleep(ms(at)).await;
            q.put(n as i32).await.unwrap();
            t.join().await.unwrap();
            let mut all = got.borrow().clone();
            all.extend(std::iter::from_fn(|| q.try_get().ok()));
            assert_eq!(all, [n as i32], "put at {at} ms");
        }
    });
}

#[test]
fn queue_cancel_safety_maxsize() {
    // An item handed to a getter that is cancelled before it runs goes back to the queue; the
    // queue must still hold at most `maxsize` items ("a queue holding at most `maxsize` items").
    vrun(async {
        let q: Rc<Queue<i32>> = Rc::new(Queue::new(2));
        let got: Rc<RefCell<Vec<i32>>> = Rc::default();
        let (q2, got2) = (q.clone(), got.clone());
        let getter = spawn(async move {
            let x = q2.get().await.unwrap();
            got2.borrow_mut().push(x);
        });
        yield_now().await; // the getter waits
        q.put(1).await.unwrap(); // handed to the getter
        q.put(2).await.unwrap();
        q.put(3).await.unwrap(); // if the hand-off counts against maxsize, this waits for the getter
        getter.cancel().await; // a woken, not yet run getter is dropped without running
        assert!(
            q.len() <= q.maxsize(),
            "the queue holds {} items, maxsize {}",
            q.len(),
            q.maxsize()
        );
        let mut all = got.borrow().clone();
        all.extend(std::iter::from_fn(|| q.try_get().ok()));
        assert_eq!(all, [1, 2, 3]);
    });
}

// ---- UniversalQueue

#[test]
fn univ_queue_basic() {
    let q: UniversalQueue<i32> = UniversalQueue::new(0);
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.len(), 0);
    // Deviation: Curio's `UniversalQueue.full()` is always False; `is_full` tells the truth.
    let b = UniversalQueue::new(1);
    b.try_put(1).unwrap();
    assert!(b.is_full());
    assert_eq!(b.try_put(2).unwrap_err().into_inner(), 2);
    assert_eq!(b.put_timeout(3, ms(1)).unwrap_err().into_inner(), 3);
    assert_eq!(b.try_get(), Ok(1));
    assert_eq!(b.try_get(), Err(Empty));
    assert!(b.get_timeout(ms(1)).is_err());
    b.task_done().unwrap();
    assert_eq!(b.task_done(), Err(SyncError::TaskDoneTooManyTimes));
}

#[test]
fn univ_queue_sync_async() {
    // A plain-thread producer, a Curio consumer.
    let result = curio::run(async {
        let q = UniversalQueue::new(0);
        let qc = q.clone();
        let t1 = spawn(async move {
            let mut result = Vec::new();
            while let Ok(Some(item)) = bounded("consumer get", qc.get()).await {
                result.push(item);
                qc.task_done().unwrap();
            }
            result
        });
        let qp = q.clone();
        let t2 = std::thread::spawn(move || {
            for i in 0..10 {
                qp.put_blocking(Some(i)).unwrap();
            }
            qp.join_blocking();
        });
        bounded("producer", curio::run_in_thread(move || t2.join()))
            .await
            .unwrap();
        // The producer's join returned: every item was taken and marked done.
        assert!(q.is_empty());
        q.put(None).await.unwrap();
        t1.join().await.unwrap()
    });
    assert_eq!(result, (0..10).collect::<Vec<_>>());
}

#[test]
fn univ_queue_async_sync() {
    // A Curio producer, a plain-thread consumer.
    let q = UniversalQueue::new(0);
    let qc = q.clone();
    let t1 = std::thread::spawn(move || {
        let mut result = Vec::new();
        while let Some(item) = qc.get_timeout(LIMIT).expect("consumer starved") {
            result.push(item);
            qc.task_done().unwrap();
        }
        result
    });
    curio::run(async move {
        let qp = q.clone();
        let t2 = spawn(async move {
            for i in 0..10 {
                qp.put(Some(i)).await.unwrap();
            }
            bounded("producer join", qp.join()).await;
        });
        t2.join().await.unwrap();
        assert!(q.is_empty());
        q.put(None).await.unwrap();
    });
    assert_eq!(t1.join().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn univ_queue_cancel() {
    // No item is lost when a get is cancelled by its timeout (Curio: 0.1 s timeouts, a put every
    // 0.2 s). Real clock, short durations: 5 ms timeouts, a put every 10 ms.
    let (result, timeouts) = curio::run(async {
        let q = UniversalQueue::new(2);
        let first_timeout = Rc::new(Event::new());
        let (qc, ft) = (q.clone(), first_timeout.clone());
        let t1 = spawn(async move {
            let (mut result, mut timeouts) = (Vec::new(), 0_u32);
            let start = Instant::now();
            loop {
                assert!(start.elapsed() < LIMIT, "consumer stuck; got {result:?}");
                let item = match timeout_after(ms(5), qc.get()).await {
                    Ok(item) => item.expect("the queue is not closed"),
                    Err(TaskTimeout { .. }) => {
                        timeouts += 1;
                        ft.set();
                        continue;
                    }
                };
                let Some(item) = item else { break };
                result.push(item);
                qc.task_done().unwrap();
            }
            (result, timeouts)
        });
        // The producer starts once the consumer has timed out at least once.
        first_timeout.wait().await;
        let qp = q.clone();
        let t2 = std::thread::spawn(move || {
            for i in 0..10 {
                qp.put_timeout(Some(i), LIMIT).expect("producer stuck");
                // Pacing, not synchronisation: the consumer's gets time out between items.
                std::thread::sleep(ms(10));
            }
            qp.join_blocking();
        });
        bounded("producer", curio::run_in_thread(move || t2.join()))
            .await
            .unwrap();
        q.put(None).await.unwrap();
        t1.join().await.unwrap()
    });
    assert_eq!(result, (0..10).collect::<Vec<_>>());
    assert!(timeouts >= 1);
}

#[test]
fn univ_queue_multiple_consumer() {
    let result = curio::run(async {
        let q = UniversalQueue::new(10);
        let result: Rc<RefCell<Vec<u32>>> = Rc::default();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let (q, result) = (q.clone(), result.clone());
                spawn(async move {
                    while let Ok(Some(item)) = bounded("consumer get", q.get()).await {
                        result.borrow_mut().push(item);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        let qp = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..1000 {
                qp.put_timeout(Some(i), LIMIT).expect("producer stuck");
            }
            qp.join_blocking();
        });
        bounded("producer", curio::run_in_thread(move || producer.join()))
            .await
            .unwrap();
        for _ in 0..3 {
            q.put(None).await.unwrap();
        }
        for c in consumers {
            c.join().await.unwrap();
        }
        result.take()
    });
    let mut sorted = result;
    sorted.sort();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
}

#[test]
fn univ_queue_multiple_kernels() {
    // Each consumer in its own thread, running its own kernel.
    let q = UniversalQueue::new(10);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                curio::run(async move {
                    let mut result = Vec::new();
                    while let Ok(Some(item)) = bounded("consumer get", q.get()).await {
                        result.push(item);
                        q.task_done().unwrap();
                    }
                    result
                })
            })
        })
        .collect();
    let qp = q.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..1000_u32 {
            qp.put_timeout(Some(i), LIMIT).expect("producer stuck");
        }
        qp.join_blocking();
    });
    producer.join().unwrap();
    for _ in 0..3 {
        q.put_timeout(None, LIMIT).unwrap();
    }
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
}

#[test]
fn uqueue_put_cancel() {
    vrun(async {
        let queue = UniversalQueue::new(1);
        queue.put(1).await.unwrap();
        assert!(timeout_after(secs(0.1), queue.put(2)).await.is_err());
        // The timed-out put's item is not in the queue.
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get(), Ok(1));
        assert_eq!(queue.try_get(), Err(Empty));
        queue.task_done().unwrap();
        assert_eq!(queue.task_done(), Err(SyncError::TaskDoneTooManyTimes));
        // The queue still works: room made by a get admits a waiting put.
        queue.put(3).await.unwrap();
        let q = queue.clone();
        let putter = spawn(async move { q.put(4).await.unwrap() });
        yield_now().await;
        assert_eq!(queue.get().await.unwrap(), 3);
        putter.join().await.unwrap();
        assert_eq!(queue.try_get(), Ok(4));
    });
}

#[test]
fn univ_queue_stress() {
    // Three producer threads, three consumer tasks on two kernels (two threads each running
    // `curio::run`), a queue of two, and every get cancelled by a 50 µs timeout when it waits:
    // each of the 300 000 items (encoded producer * PER + i, so each is unique) arrives once.
    const PRODUCERS: usize = 3;
    const PER: usize = 100_000;
    const TOTAL: usize = PRODUCERS * PER;
    let q: UniversalQueue<u32> = UniversalQueue::new(2);
    let count = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let start_gate = UniversalEvent::new();

    let kernels: Vec<_> = [2, 1]
        .into_iter()
        .map(|tasks| {
            let (q, count) = (q.clone(), count.clone());
            std::thread::spawn(move || {
                curio::run(async move {
                    let consumers: Vec<_> = (0..tasks)
                        .map(|_| {
                            let (q, count) = (q.clone(), count.clone());
                            spawn(async move {
                                let (mut got, mut timeouts) = (Vec::new(), 0_usize);
                                while count.load(Ordering::Acquire) < TOTAL
                                    && Instant::now() < deadline
                                {
                                    match timeout_after(Duration::from_micros(50), q.get()).await {
                                        Ok(item) => {
                                            got.push(item.expect("the queue is not closed"));
                                            count.fetch_add(1, Ordering::AcqRel);
                                        }
                                        Err(_) => timeouts += 1,
                                    }
                                }
                                (got, timeouts)
                            })
                        })
                        .collect();
                    let mut out = (Vec::new(), 0);
                    for c in consumers {
                        let (got, timeouts) = c.join().await.unwrap();
                        out.0.extend(got);
                        out.1 += timeouts;
                    }
                    out
                })
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (q, gate) = (q.clone(), start_gate.clone());
            std::thread::spawn(move || {
                gate.wait_blocking();
                for i in 0..PER {
                    let mut item = (p * PER + i) as u32;
                    // Bounded: a producer never waits past the deadline.
                    loop {
                        match q.put_timeout(item, ms(100)) {
                            Ok(()) => break,
                            Err(e) => item = e.into_inner(),
                        }
                        assert!(Instant::now() < deadline, "producer {p} stuck at {i}");
                    }
                }
            })
        })
        .collect();
    start_gate.set();
    for p in producers {
        p.join().unwrap();
    }
    let mut seen = vec![false; TOTAL];
    let mut timeouts = 0;
    for k in kernels {
        let (got, t) = k.join().unwrap();
        timeouts += t;
        for item in got {
            assert!(
                !std::mem::replace(&mut seen[item as usize], true),
                "item {item} arrived twice"
            );
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} items lost");
    assert_eq!(count.load(Ordering::Acquire), TOTAL);
    assert!(q.is_empty());
    // The point of the test: many gets were cancelled by their timeouts, racing the puts.
    assert!(timeouts > 0);
    eprintln!("univ_queue_stress: {timeouts} gets timed out");
}

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/universal_queue.rs"]
mod universal_queue_example;

#[test]
fn universal_queue_example_feeds_a_thread() {
    let q = curio::queue::UniversalQueue::new(0);
    let q2 = q.clone();
    let t = std::thread::spawn(move || universal_queue_example::consumer(q2));
    curio::run(universal_queue_example::producer(
        q,
        5,
        std::time::Duration::from_millis(1),
    ));
    assert_eq!(t.join().unwrap(), [0, 1, 2, 3, 4]);
}
