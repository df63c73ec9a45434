//! A randomized cancellation storm over the kernel-local primitives, task groups and the worker
//! pool, with exact conservation checks (the regression net of the hostile-testing defects).
//!
//! Each case builds one kernel on the virtual clock and runs, for a random stretch of virtual
//! time: producers and consumers on a queue of a random kind and bound, holders of a lock and of
//! a semaphore, waiters and notifiers on a condition, callers of `run_in_thread`, some of them
//! members of a task group owned by a supervisor task. Every wait may sit under a random
//! timeout; a canceller cancels random tasks (the supervisor among them) at random times; a
//! random share of items, task-locals and thread results panic when dropped. Then everything
//! is cancelled and the case checks:
//!
//! - every item whose put completed was got exactly once or is still in the queue, and nothing
//!   else was (a cancelled or timed-out put has no effect);
//! - every lock and semaphore permit is back, no two holders overlapped, and no condition waiter
//!   sleeps while a notification it could take is pending;
//! - no task, timer, thread or descriptor is left once the kernel is dropped;
//! - nothing aborted, and the case finished within its time bound.
//!
//! [`storm_case`] is the unit a longer storm (a soak run) repeats with more seeds and more work;
//! a failure names its seed, so it can be replayed.

use curio::prelude::*;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use curio::queue::{BaseQueue, Fifo, Lifo, Smallest, Storage};
use curio::sync::{Condition, Lock, Semaphore};
use curio::{Kernel, TaskGroup, TaskRef, Wait, sleep, spawn, task_local, timeout_after};

use crate::child::{fd_count, in_child, thread_count, wait_for_threads};
use crate::stress::Rng;

/// One item of the queue: a unique id, a priority, and whether its `Drop` panics.
struct Item {
    id: u64,
    prio: u64,
    bomb: bool,
}

impl Item {
    /// Takes the item apart without its `Drop` panicking.
    fn defuse(mut self) -> u64 {
        self.bomb = false;
        self.id
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        if self.bomb {
            panic!("storm: item {} dropped", self.id);
        }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.prio, self.id) == (other.prio, other.id)
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.prio, self.id).cmp(&(other.prio, other.id))
    }
}

/// A task-local value whose `Drop` panics.
#[derive(Clone)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("storm: task-local dropped");
    }
}

task_local! {
    static LOCAL_BOMB: Bomb;
}

/// What the tasks of one case record.
#[derive(Default)]
struct Ledger {
    /// Ids of items whose `put` completed.
    put: Vec<u64>,
    /// Ids of items a `get` returned.
    got: Vec<u64>,
    /// Holders of the lock and of the semaphore right now, and the most seen at once.
    lock_holders: usize,
    sem_holders: usize,
    max_lock_holders: usize,
    max_sem_holders: usize,
    /// Condition tokens given and not yet taken, and waiters asleep on the condition.
    tokens: usize,
    sleeping: usize,
    /// Operations that timed out, and tasks cancelled by the canceller.
    timeouts: usize,
    cancels: usize,
}

/// What one case did, for a summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) puts: usize,
    pub(crate) gets: usize,
    pub(crate) left: usize,
    pub(crate) timeouts: usize,
    pub(crate) cancels: usize,
}

/// Shared state of one case.
struct Case {
    rng: RefCell<Rng>,
    ledger: RefCell<Ledger>,
    lock: Lock,
    sem: Semaphore,
    permits: usize,
    cond: Condition,
    next_id: Cell<u64>,
}

impl Case {
    fn below(&self, n: u64) -> u64 {
        self.rng.borrow_mut().below(n)
    }

    fn chance(&self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn ms(&self, max: u64) -> Duration {
        self.rng.borrow_mut().ms(max)
    }

    /// Runs `fut`, under a random timeout half of the time; `None` if it timed out.
    async fn maybe_timeout<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        if self.chance(50) {
            match timeout_after(self.ms(8), fut).await {
                Ok(v) => Some(v),
                Err(_) => {
                    self.ledger.borrow_mut().timeouts += 1;
                    None
                }
            }
        } else {
            Some(fut.await)
        }
    }

    /// Sometimes gives the task a task-local whose `Drop` panics.
    fn maybe_arm_local(&self) {
        if self.chance(10) {
            LOCAL_BOMB.set(Bomb).expect("in a task");
        }
    }
}

/// Puts `n` items, some under timeouts.
async fn producer<S: Storage<Item>>(c: Rc<Case>, q: Rc<BaseQueue<Item, S>>, n: usize) {
    c.maybe_arm_local();
    for _ in 0..n {
        let id = c.next_id.get();
        c.next_id.set(id + 1);
        let item = Item {
            id,
            prio: c.below(4),
            bomb: c.chance(5),
        };
        // A put refused by a closed queue (`Some(Err(_))`) put nothing.
        if let Some(Ok(())) = c.maybe_timeout(q.put(item)).await {
            // Recorded in the turn the put completed: no cancellation point in between.
            c.ledger.borrow_mut().put.push(id);
        }
        if c.chance(30) {
            sleep(c.ms(3)).await;
        }
    }
}

/// Gets items for ever, some under timeouts; records each before dropping it (which may panic).
async fn consumer<S: Storage<Item>>(c: Rc<Case>, q: Rc<BaseQueue<Item, S>>) {
    c.maybe_arm_local();
    loop {
        if let Some(Ok(item)) = c.maybe_timeout(q.get()).await {
            c.ledger.borrow_mut().got.push(item.id);
            drop(item);
        }
        if c.chance(20) {
            sleep(c.ms(3)).await;
        }
    }
}

/// Counts a holder in and out, also when its task is cancelled while holding.
struct Holding<'a> {
    c: &'a Case,
    sem: bool,
}

impl<'a> Holding<'a> {
    fn new(c: &'a Case, sem: bool) -> Holding<'a> {
        let mut l = c.ledger.borrow_mut();
        if sem {
            l.sem_holders += 1;
            l.max_sem_holders = l.max_sem_holders.max(l.sem_holders);
        } else {
            l.lock_holders += 1;
            l.max_lock_holders = l.max_lock_holders.max(l.lock_holders);
        }
        Holding { c, sem }
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let mut l = self.c.ledger.borrow_mut();
        if self.sem {
            l.sem_holders -= 1;
        } else {
            l.lock_holders -= 1;
        }
    }
}

/// Takes the lock and the semaphore, holding each across a sleep.
async fn holder(c: Rc<Case>) {
    c.maybe_arm_local();
    loop {
        if let Some(_guard) = c.maybe_timeout(c.lock.lock()).await {
            let _h = Holding::new(&c, false);
            sleep(c.ms(2)).await;
        }
        if let Some(_permit) = c.maybe_timeout(c.sem.acquire()).await {
            let _h = Holding::new(&c, true);
            sleep(c.ms(3)).await;
        }
    }
}

/// Counts a condition waiter asleep, also when its task is cancelled while it sleeps.
struct Sleeping<'a>(&'a Case);

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        self.0.ledger.borrow_mut().sleeping -= 1;
    }
}

/// Takes condition tokens: waits (sometimes under a timeout) until one is there.
async fn cond_waiter(c: Rc<Case>) {
    loop {
        let take = async {
            let mut g = c.cond.lock().await;
            while c.ledger.borrow().tokens == 0 {
                c.ledger.borrow_mut().sleeping += 1;
                let asleep = Sleeping(&c);
                g = c.cond.wait(g).await.expect("the condition's own lock");
                drop(asleep);
            }
            c.ledger.borrow_mut().tokens -= 1;
        };
        c.maybe_timeout(take).await;
        if c.chance(30) {
            sleep(c.ms(3)).await;
        }
    }
}

/// Gives condition tokens, one notification each.
async fn cond_notifier(c: Rc<Case>, n: usize) {
    for _ in 0..n {
        sleep(c.ms(4)).await;
        let g = c.cond.lock().await;
        c.ledger.borrow_mut().tokens += 1;
        c.cond.notify(1).expect("the lock is held");
        drop(g);
    }
}

/// Calls `run_in_thread`, whose results sometimes panic when dropped, some under timeouts.
async fn thread_caller(c: Rc<Case>, n: usize) {
    for _ in 0..n {
        let bomb = c.chance(20);
        let id = c.below(1000);
        let call = curio::run_in_thread(move || Item { id, prio: 0, bomb });
        if let Some(item) = c.maybe_timeout(call).await {
            assert_eq!(item.id, id);
            drop(item);
        }
    }
}

/// Runs one case of the storm for `seed` and checks it; panics with the seed on a violation.
fn run_case<S: Storage<Item> + 'static>(seed: u64, rng: Rng, maxsize: usize) -> Report {
    let threads_before = thread_count();
    let fds_before = fd_count();
    let mut kernel = Kernel::builder()
        .virtual_clock(true)
        .max_worker_threads(2)
        .build();
    let permits = 1 + (seed % 3) as usize;
    let case = Rc::new(Case {
        rng: RefCell::new(rng),
        ledger: RefCell::default(),
        lock: Lock::new(),
        sem: Semaphore::new(permits),
        permits,
        cond: Condition::new(),
        next_id: Cell::new(0),
    });
    let q: Rc<BaseQueue<Item, S>> = Rc::new(BaseQueue::new(maxsize));
    let (c, q2) = (case.clone(), q.clone());
    kernel.run(async move {
        let c2 = c.clone();
        let qs = q2.clone();
        // A supervisor owns a group of some of the workers; cancelling it cascades.
        let supervisor = spawn(async move {
            let g: TaskGroup<()> = TaskGroup::new(Wait::All);
            for _ in 0..2 {
                g.spawn(producer(c2.clone(), qs.clone(), 6));
            }
            g.spawn(consumer(c2.clone(), qs.clone()));
            g.spawn(holder(c2.clone()));
            g.spawn(thread_caller(c2.clone(), 4));
            g.join().await;
            g.outcomes().expect("joined once")
        });
        let mut tasks: Vec<TaskRef> = vec![supervisor.task_ref()];
        for _ in 0..3 {
            tasks.push(spawn(producer(c.clone(), q2.clone(), 8)).task_ref());
        }
        for _ in 0..2 {
            tasks.push(spawn(consumer(c.clone(), q2.clone())).task_ref());
        }
        for _ in 0..2 {
            tasks.push(spawn(holder(c.clone())).task_ref());
        }
        for _ in 0..3 {
            tasks.push(spawn(cond_waiter(c.clone())).task_ref());
        }
        tasks.push(spawn(cond_notifier(c.clone(), 6)).task_ref());
        tasks.push(spawn(thread_caller(c.clone(), 4)).task_ref());
        // The canceller: random tasks at random virtual times.
        for _ in 0..4 {
            sleep(c.ms(10)).await;
            let victim = &tasks[c.below(tasks.len() as u64) as usize];
            if !victim.is_terminated() {
                c.ledger.borrow_mut().cancels += 1;
                if c.chance(50) {
                    victim.cancel().await;
                } else {
                    victim.cancel_nowait();
                }
            }
        }
        sleep(c.ms(20)).await;
        // No condition waiter may sleep while a token is there for it (a lost notification).
        // Notifiers are done or cancelled; a waiter woken late runs within a few cycles.
        for _ in 0..8 {
            curio::yield_now().await;
        }
        {
            let l = c.ledger.borrow();
            let live_notifier = !tasks[tasks.len() - 2].is_terminated();
            assert!(
                live_notifier || l.tokens == 0 || l.sleeping == 0,
                "seed {seed}: {} waiters asleep with {} tokens pending",
                l.sleeping,
                l.tokens
            );
        }
        for t in tasks.iter().rev() {
            t.cancel().await;
        }
        drop(supervisor);
    });
    assert_eq!(kernel.task_count(), 0, "seed {seed}: tasks left");
    assert_eq!(kernel.timer_count(), 0, "seed {seed}: timers left");

    // Conservation: what was put is what was got plus what is left, each exactly once.
    let mut left = Vec::new();
    while let Ok(item) = q.try_get() {
        left.push(item.defuse());
    }
    let ledger = std::mem::take(&mut *case.ledger.borrow_mut());
    let mut put = ledger.put.clone();
    let mut out: Vec<u64> = ledger.got.iter().chain(&left).copied().collect();
    put.sort_unstable();
    out.sort_unstable();
    assert_eq!(
        put, out,
        "seed {seed}: items put (left) differ from items got or left (right)"
    );
    assert!(!q.is_full() && q.is_empty(), "seed {seed}: queue not empty");
    assert!(!case.lock.locked(), "seed {seed}: the lock is still held");
    assert_eq!(case.sem.value(), case.permits, "seed {seed}: permits lost");
    assert!(
        ledger.max_lock_holders <= 1,
        "seed {seed}: two lock holders"
    );
    assert!(
        ledger.max_sem_holders <= case.permits,
        "seed {seed}: more semaphore holders than permits"
    );
    assert_eq!(ledger.lock_holders + ledger.sem_holders, 0);
    assert!(
        !case.cond.locked(),
        "seed {seed}: the condition's lock is held"
    );

    drop(kernel);
    assert_eq!(fd_count(), fds_before, "seed {seed}: descriptors left");
    // A worker thread inside a cancelled call is detached and exits when the call returns.
    wait_for_threads(threads_before, &format!("seed {seed}"));
    Report {
        puts: ledger.put.len(),
        gets: ledger.got.len(),
        left: left.len(),
        timeouts: ledger.timeouts,
        cancels: ledger.cancels,
    }
}

/// Runs the case for `seed` with a queue kind and bound chosen by the seed.
pub(crate) fn storm_case(seed: u64) -> Report {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let maxsize = rng.below(4) as usize;
    match rng.below(3) {
        0 => run_case::<Fifo<Item>>(seed, rng, maxsize),
        1 => run_case::<Lifo<Item>>(seed, rng, maxsize),
        _ => run_case::<Smallest<Item>>(seed, rng, maxsize),
    }
}

/// Keeps the storm's planned panics (payloads starting `storm: `) quiet, forwarding every other
/// panic to the default hook: a long run plants millions, and printing each (with a backtrace
/// under `RUST_BACKTRACE`) would make the run about its output.
pub(crate) fn quiet_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied());
            if !msg.is_some_and(|m| m.starts_with("storm: ")) {
                default(info);
            }
        }));
    });
}

/// When a soak run (`cargo xtask soak`) asked the storms to go on: `CURIO_STORM_SECS` from now.
pub(crate) fn soak_deadline() -> Option<std::time::Instant> {
    let secs: u64 = std::env::var("CURIO_STORM_SECS").ok()?.parse().ok()?;
    Some(std::time::Instant::now() + Duration::from_secs(secs))
}

/// Runs `case(seed)` on a thread of its own, failing with the seed if it panics or hangs.
pub(crate) fn bounded_case<R: Send + 'static>(storm: &str, seed: u64, case: fn(u64) -> R) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(move || case(seed));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(crate::LIMIT) {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{storm} seed {seed}: no result in {:?}: hung", crate::LIMIT),
    }
}

/// 150 cases (or, under `cargo xtask soak`, as many as fit in `CURIO_STORM_SECS`), in a child
/// process (they count threads and descriptors); each bounded in time.
#[test]
fn cancellation_storm_conserves_everything() {
    if !in_child("storm::cancellation_storm_conserves_everything", &[]) {
        return;
    }
    quiet_planned_panics();
    let deadline = soak_deadline();
    let mut total = Report::default();
    let mut seed = 1;
    while seed <= 150 || deadline.is_some_and(|d| std::time::Instant::now() < d) {
        let r = bounded_case("storm", seed, storm_case);
        total.puts += r.puts;
        total.gets += r.gets;
        total.left += r.left;
        total.timeouts += r.timeouts;
        total.cancels += r.cancels;
        seed += 1;
    }
    eprintln!("storm: {} cases, {total:?}", seed - 1);
    // The storm really stormed: puts, gets, timeouts and cancels all happened.
    assert!(total.puts > 1000 && total.gets > 500, "{total:?}");
    assert!(total.timeouts > 100 && total.cancels > 100, "{total:?}");
}
