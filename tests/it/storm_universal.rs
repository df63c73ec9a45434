//! The cancellation storm across threads: the Universal types between plain threads, a kernel
//! and a second kernel, with the kernel-local `Event` beside them, under random timeouts and
//! cancellations, with exact conservation checks.
//!
//! Each case runs for 10 to 50 rounds of half a millisecond of real time (threads cannot use the
//! virtual clock):
//!
//! - a `UniversalQueue` of a random bound takes items from a plain thread (`put_blocking` and
//!   `put_timeout`), from tasks of the main kernel and from a task of a second kernel on its own
//!   thread (`put` under random timeouts), and gives them to a plain thread (`get_timeout`) and
//!   to tasks of both kernels (`get` under random timeouts);
//! - waiters on a `UniversalEvent` (set and cleared by a plain thread), on a `UniversalPromise`
//!   (set once by a thread) and on a kernel `Event` (set and cleared by a task), some under
//!   timeouts;
//! - a canceller cancels random tasks of the main kernel at random times.
//!
//! Then the queue is closed, every waiter is released, and the case checks: every item whose
//! put completed was got exactly once or is still in the queue, and nothing else was; every
//! waiter still running returns once its event is set for good (no lost wake-up); the promise's
//! waiter got the value; every thread and kernel finished, and no task, timer or descriptor is
//! left. A failure names its seed.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curio::queue::{GetTimeoutError, TryPutError, UniversalQueue};
use curio::sync::{Event, UniversalEvent, UniversalPromise};
use curio::{Kernel, Task, sleep, spawn, timeout_after, yield_now};

use crate::child::{fd_count, in_child, thread_count, wait_for_threads};
use crate::storm::soak_deadline;
use crate::stress::Rng;

/// The ids a case's producers put, and the ids its consumers got, from every thread.
#[derive(Default)]
struct Ledger {
    put: Vec<u64>,
    got: Vec<u64>,
}

/// What a case shares across its threads.
struct Shared {
    q: UniversalQueue<u64>,
    ledger: Mutex<Ledger>,
    uevent: UniversalEvent,
    promise: UniversalPromise<u64>,
    /// Set when the storm is over: producers stop, waiters return after their next wake.
    stop: AtomicBool,
}

impl Shared {
    fn record_put(&self, id: u64) {
        self.ledger.lock().unwrap().put.push(id);
    }

    fn record_got(&self, id: u64) {
        self.ledger.lock().unwrap().got.push(id);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// What one case did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) puts: usize,
    pub(crate) gets: usize,
    pub(crate) timeouts: usize,
    pub(crate) cancels: usize,
}

/// Runs `fut` under a random timeout half of the time; `None` if it timed out.
async fn maybe_timeout<T>(
    rng: &Cell<u64>,
    timeouts: &Cell<usize>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut r = Rng(rng.get());
    let (coin, ms) = (r.below(2), r.below(3));
    rng.set(r.0);
    if coin == 0 {
        return Some(fut.await);
    }
    match timeout_after(Duration::from_millis(ms), fut).await {
        Ok(v) => Some(v),
        Err(_) => {
            timeouts.set(timeouts.get() + 1);
            None
        }
    }
}

/// The most items one producer puts in a case: an unbounded queue must not grow faster than a
/// loaded machine drains it at the end.
const MAX_PUTS: u64 = 2000;

/// A task that puts ids `base..` until the storm stops (at most [`MAX_PUTS`]).
async fn producer(s: Arc<Shared>, base: u64, rng: Rc<Cell<u64>>, timeouts: Rc<Cell<usize>>) {
    let mut id = base;
    while !s.stopped() && id < base + MAX_PUTS {
        if let Some(Ok(())) = maybe_timeout(&rng, &timeouts, s.q.put(id)).await {
            // Recorded in the turn the put completed: no cancellation point in between.
            s.record_put(id);
        }
        id += 1;
        yield_now().await;
    }
}

/// A task that gets items until the queue is closed and drained.
async fn consumer(s: Arc<Shared>, rng: Rc<Cell<u64>>, timeouts: Rc<Cell<usize>>) {
    loop {
        match maybe_timeout(&rng, &timeouts, s.q.get()).await {
            Some(Ok(id)) => s.record_got(id),
            Some(Err(_closed)) => return,
            None => {}
        }
    }
}

/// Runs one case for `seed`; panics with the seed on a violation.
pub(crate) fn universal_case(seed: u64) -> Report {
    let threads_before = thread_count();
    let fds_before = fd_count();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let shared = Arc::new(Shared {
        q: UniversalQueue::new(rng.below(4) as usize),
        ledger: Mutex::default(),
        uevent: UniversalEvent::new(),
        promise: UniversalPromise::new(),
        stop: AtomicBool::new(false),
    });
    // The storm's length, in the canceller's rounds of half a millisecond: counted in rounds
    // rather than wall time, so a loaded machine shortens no case to nothing.
    let rounds = 10 + rng.below(40);

    // Plain threads: a producer, a consumer, and the setter of the events.
    let mut threads = Vec::new();
    let (s, mut r) = (shared.clone(), Rng(rng.next() | 1));
    threads.push(std::thread::spawn(move || {
        let mut id = 1 << 40;
        while !s.stopped() && id < (1 << 40) + MAX_PUTS {
            let done = if r.below(2) == 0 {
                s.q.put_blocking(id).map_err(|c| TryPutError::Closed(c.0))
            } else {
                s.q.put_timeout(id, Duration::from_micros(r.below(500)))
            };
            match done {
                Ok(()) => s.record_put(id),
                Err(TryPutError::Full(_)) => {}
                Err(_closed) => return,
            }
            id += 1;
        }
    }));
    let (s, mut r) = (shared.clone(), Rng(rng.next() | 1));
    threads.push(std::thread::spawn(move || {
        loop {
            match s.q.get_timeout(Duration::from_micros(r.below(500))) {
                Ok(id) => s.record_got(id),
                Err(GetTimeoutError::TimedOut) => {}
                Err(_closed) => return,
            }
        }
    }));
    let (s, mut r) = (shared.clone(), Rng(rng.next() | 1));
    threads.push(std::thread::spawn(move || {
        let mut promised = false;
        while !s.stopped() {
            std::thread::sleep(Duration::from_micros(r.below(300)));
            s.uevent.set();
            if !promised && r.below(4) == 0 {
                s.promise.set(seed).expect("set once");
                promised = true;
            }
            if r.below(2) == 0 {
                s.uevent.clear();
            }
        }
        if !promised {
            s.promise.set(seed).expect("set once");
        }
        // Set for good: no clear follows.
        s.uevent.set();
    }));
    // A second kernel with a producer and a consumer of its own: kernel-to-kernel traffic.
    let (s, r) = (shared.clone(), rng.next() | 1);
    threads.push(std::thread::spawn(move || {
        let mut k = Kernel::new();
        k.run(async move {
            let (rng, t) = (Rc::new(Cell::new(r)), Rc::new(Cell::new(0)));
            let p = spawn(producer(s.clone(), 2 << 40, rng.clone(), t.clone()));
            consumer(s, rng, t).await;
            p.cancel().await;
        });
        assert_eq!(
            k.task_count(),
            0,
            "seed {seed}: tasks left on the second kernel"
        );
        assert_eq!(
            k.timer_count(),
            0,
            "seed {seed}: timers left on the second kernel"
        );
    }));

    let mut kernel = Kernel::new();
    let s = shared.clone();
    let rng = Rc::new(Cell::new(rng.next() | 1));
    let timeouts = Rc::new(Cell::new(0));
    let cancels = Rc::new(Cell::new(0));
    let (t, c) = (timeouts.clone(), cancels.clone());
    kernel.run(async move {
        let event = Rc::new(Event::new());
        let wakes = Rc::new(Cell::new(0u64));
        let mut tasks: Vec<Task<()>> = Vec::new();
        for n in 0..2u64 {
            tasks.push(spawn(producer(
                s.clone(),
                (3 + n) << 40,
                rng.clone(),
                t.clone(),
            )));
            tasks.push(spawn(consumer(s.clone(), rng.clone(), t.clone())));
        }
        // Waiters on the Universal event and the kernel event: each returns after the first
        // wake that follows the stop.
        let mut waiters: Vec<Task<()>> = Vec::new();
        for n in 0..4 {
            let (s, e, w, rng, t) = (
                s.clone(),
                event.clone(),
                wakes.clone(),
                rng.clone(),
                t.clone(),
            );
            waiters.push(spawn(async move {
                loop {
                    let woke = if n % 2 == 0 {
                        maybe_timeout(&rng, &t, s.uevent.wait()).await
                    } else {
                        maybe_timeout(&rng, &t, e.wait()).await
                    };
                    if woke.is_some() {
                        w.set(w.get() + 1);
                        if s.stopped() {
                            return;
                        }
                    }
                    yield_now().await;
                }
            }));
        }
        let (s2, e) = (s.clone(), event.clone());
        let setter = spawn(async move {
            while !s2.stopped() {
                sleep(Duration::from_micros(200)).await;
                e.set();
                yield_now().await;
                e.clear();
            }
        });
        let s2 = s.clone();
        let promised = spawn(async move {
            loop {
                if let Ok(v) = timeout_after(Duration::from_millis(1), s2.promise.get()).await {
                    return v;
                }
            }
        });
        // The canceller.
        for _ in 0..rounds {
            sleep(Duration::from_micros(500)).await;
            let mut r = Rng(rng.get());
            let i = r.below(tasks.len() as u64 + waiters.len() as u64) as usize;
            let cancel_and_wait = r.below(2) == 0;
            rng.set(r.0);
            let victim = if i < tasks.len() {
                &tasks[i]
            } else {
                &waiters[i - tasks.len()]
            };
            if !victim.is_terminated() {
                c.set(c.get() + 1);
                if cancel_and_wait {
                    victim.cancel().await;
                } else {
                    victim.cancel_nowait();
                }
            }
        }
        // The end: stop, release every waiter for good (the thread sets the Universal event
        // once it sees the stop; the kernel event's setter is cancelled first), close the queue.
        s.stop.store(true, Ordering::Release);
        setter.cancel().await;
        event.set();
        for (n, w) in waiters.into_iter().enumerate() {
            let r = crate::bounded("an event waiter after the final set", w.join()).await;
            assert!(
                r.is_ok() || r.as_ref().is_err_and(|e| e.is_cancelled()),
                "seed {seed}: waiter {n}: {r:?}"
            );
        }
        assert_eq!(
            crate::bounded("the promise's waiter", promised.join())
                .await
                .unwrap(),
            seed,
            "seed {seed}: the promise's value"
        );
        for task in tasks.iter().rev() {
            task.cancel().await;
        }
        s.q.close();
        assert!(
            wakes.get() > 0 || c.get() > 0,
            "seed {seed}: no waiter ever woke"
        );
    });
    assert_eq!(kernel.task_count(), 0, "seed {seed}: tasks left");
    assert_eq!(kernel.timer_count(), 0, "seed {seed}: timers left");
    drop(kernel);
    for t in threads {
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    }

    // Conservation: what was put is what was got plus what is left, each exactly once.
    let mut left = Vec::new();
    while let Ok(id) = shared.q.try_get() {
        left.push(id);
    }
    let ledger = std::mem::take(&mut *shared.ledger.lock().unwrap());
    let mut put = ledger.put.clone();
    let mut out: Vec<u64> = ledger.got.iter().chain(&left).copied().collect();
    put.sort_unstable();
    out.sort_unstable();
    assert_eq!(
        put, out,
        "seed {seed}: items put (left) differ from items got or left (right)"
    );
    drop(shared);
    assert_eq!(fd_count(), fds_before, "seed {seed}: descriptors left");
    // Every thread was joined; the thread of the case before may still be exiting.
    wait_for_threads(threads_before, &format!("seed {seed}"));
    Report {
        puts: ledger.put.len(),
        gets: ledger.got.len(),
        timeouts: timeouts.get(),
        cancels: cancels.get(),
    }
}

/// 60 cases (or, under `cargo xtask soak`, as many as fit in `CURIO_STORM_SECS`), in a child
/// process (they count threads and descriptors).
#[test]
fn universal_storm_conserves_everything() {
    if !in_child("storm_universal::universal_storm_conserves_everything", &[]) {
        return;
    }
    crate::storm::quiet_planned_panics();
    let deadline = soak_deadline();
    let mut total = Report::default();
    let mut seed = 1;
    while seed <= 60 || deadline.is_some_and(|d| Instant::now() < d) {
        let r = crate::storm::bounded_case("universal storm", seed, universal_case);
        total.puts += r.puts;
        total.gets += r.gets;
        total.timeouts += r.timeouts;
        total.cancels += r.cancels;
        seed += 1;
    }
    eprintln!("universal storm: {} cases, {total:?}", seed - 1);
    // The storm really stormed: items crossed, and timeouts and cancels happened.
    assert!(total.puts > 200 && total.gets > 100, "{total:?}");
    assert!(total.timeouts > 50 && total.cancels > 50, "{total:?}");
}
