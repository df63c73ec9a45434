//! The Universal types: `Send + Sync`, usable from curio tasks, plain threads and other runtimes.
//!
//! Each is a small shared state plus `event-listener` events. Waiting follows one pattern: try,
//! start listening, try again, then wait for the listener. Items and values stay in the shared
//! state until a waiter takes them, so a waiter that is cancelled (its listener dropped) can lose
//! nothing; `event-listener` passes a notification received by a dropped listener on to the next
//! one, so no wakeup is lost either.
//!
//! [`UniversalQueue`] keeps its items in `concurrent-queue`'s lock-free ring, so a producer and a
//! consumer on two cores never wait for each other's lock, and it notifies an event only when a
//! waiter has announced itself (see [`Waiters`]): while the consumer is busy draining, the
//! producer's puts cost no lock and no wake, and one wake moves every item put before the woken
//! side runs.
//!
//! A blocking wait (a plain thread's `*_blocking` and `*_timeout`) tries again a few times with
//! growing pauses, a few microseconds in all, before it listens: the other side usually runs on
//! another core and is one step away. Async waits never spin; they would hold up their kernel.
//!
//! Every wait exists twice: as a `Future` (`.await` from a curio task or a task of any other
//! runtime) and blocking the thread (`*_blocking`, and `*_timeout` with a deadline), for threads
//! other than a kernel's.
//! Between waiters the queue is first come, first served, not a FIFO hand-off: a woken waiter that
//! finds the item taken listens again.
//! [`UniversalEvent`] keeps its flag in an atomic and [`UniversalPromise`] its value under a
//! `std::sync::Mutex`; `sync.rs` swaps these for loom's under `--cfg loom`, and `loom_tests.rs`
//! model-checks them.

use curio_core::{WaitKind, at_site};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use concurrent_queue::{ConcurrentQueue, PopError, PushError};
use event_listener::{Event, EventListener, IntoNotification, Listener};

use crate::error::{Closed, Empty, GetTimeoutError, SyncError, TryPutError, WaitTimeout};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

/// The one waiting pattern of every Universal operation: try; start listening; try again (so a
/// notification between the first try and the listen is not lost); otherwise hand back the
/// listener to wait on. Async and blocking callers share it.
fn attempt<R>(
    event: &Event,
    waiters: Option<&Waiters>,
    mut op: impl FnMut() -> Option<R>,
) -> Result<R, EventListener> {
    if let Some(r) = op() {
        return Ok(r);
    }
    let listener = event.listen();
    // Announced after the listener is in the event's list: a notifier that sees the announcement
    // finds the listener there.
    if let Some(w) = waiters {
        w.announce();
    }
    op().ok_or(listener)
}

/// Waits until `op` succeeds, as a future.
async fn until<R>(
    event: &Event,
    waiters: Option<&Waiters>,
    mut op: impl FnMut() -> Option<R>,
) -> R {
    loop {
        match attempt(event, waiters, &mut op) {
            Ok(r) => return r,
            Err(listener) => listener.await,
        }
    }
}

/// Tries of a blocking wait before it starts listening, with 1, 2, 4, ... pauses between them
/// (none under loom, whose models would only grow).
const SPIN_ROUNDS: u32 = if cfg!(loom) { 0 } else { 7 };

/// Waits until `op` succeeds, blocking this thread until `deadline` (`None`: no limit);
/// `None` if the time ran out first.
fn until_blocking<R>(
    event: &Event,
    waiters: Option<&Waiters>,
    mut op: impl FnMut() -> Option<R>,
    deadline: Option<Instant>,
) -> Option<R> {
    // A thread waiting on a task of a kernel that runs on another core usually needs to wait
    // only for that task's next step: a short spin saves the listener, its two locks and, if
    // it came to that, the futex wait and wake. Bounded to a few microseconds, so a thread
    // that shares its core with the other side gives little of its time slice away.
    for round in 0..SPIN_ROUNDS {
        if let Some(r) = op() {
            return Some(r);
        }
        // Backing off between tries keeps the two sides from fighting over one cache line
        // while the other side's next item is on its way.
        for _ in 0..1u32 << round {
            std::hint::spin_loop();
        }
    }
    loop {
        match attempt(event, waiters, &mut op) {
            Ok(r) => return Some(r),
            Err(listener) => match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return op();
                    }
                }
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is changed in single steps under the lock; a panic cannot leave it half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waiters on one event that no notification has been sent for yet: the notifying side skips
/// the event (a lock) while there are none, and sends one notification per announcement, so a
/// waiter woken but not yet run is not notified again for every item that follows.
///
/// A waiter announces itself after it starts listening and before it tries again; the notifier
/// changes the state (a read-modify-write, so the two are ordered whichever comes first) after
/// it has made the change the waiter waits for. Either the notifier sees the announcement and
/// notifies a listener that is already in the list, or the waiter's second try sees the change.
/// A waiter that leaves without waiting (its second try succeeded, or it was cancelled) leaves
/// its announcement behind: it costs one notification nobody needs, never a lost one.
struct Waiters(AtomicUsize);

impl Waiters {
    fn new() -> Waiters {
        Waiters(AtomicUsize::new(0))
    }

    fn announce(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Notifies one more listener of `event` if a waiter announced itself since the last one.
    fn notify_one(&self, event: &Event) {
        // A read-modify-write even when it changes nothing: it reads the latest announcement.
        let mut n = self.0.fetch_add(0, Ordering::AcqRel);
        while n > 0 {
            match self
                .0
                .compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    event.notify(1.additional());
                    return;
                }
                Err(now) => n = now,
            }
        }
    }
}

/// Keeps what one side writes on a cache line of its own, so a producer and a consumer on two
/// cores do not invalidate each other's line on every item.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

struct QInner<T> {
    items: ConcurrentQueue<T>,
    maxsize: usize,
    /// Items put and not yet marked done (written by putters and `task_done`).
    unfinished: Padded<AtomicUsize>,
    /// Notified once per item added, for each announced getter.
    item_added: Event,
    /// Announced getters (read by every put).
    getters: Padded<Waiters>,
    /// Notified once per item taken from a bounded queue, for each announced putter.
    space_freed: Event,
    /// Announced putters (read by every get of a bounded queue).
    putters: Padded<Waiters>,
    /// Notified when every item has been marked done.
    all_done: Event,
}

/// A queue shared by tasks, threads and other runtimes (Curio's `UniversalQueue`).
/// `Clone` makes another handle to the same queue.
///
/// # Examples
///
/// A kernel task feeding a plain thread, as in Curio's README:
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod queue { pub use curio_sync::UniversalQueue; } }
/// use curio::queue::UniversalQueue;
///
/// let q = UniversalQueue::new(0);
/// let q2 = q.clone();
/// let consumer = std::thread::spawn(move || {
///     let mut got = Vec::new();
///     // Until the queue is closed and drained.
///     while let Ok(x) = q2.get_blocking() {
///         got.push(x);
///     }
///     got
/// });
/// curio::run(async move {
///     for i in 0..5 {
///         q.put(i).await.unwrap();
///     }
///     q.close();
/// });
/// assert_eq!(consumer.join().unwrap(), [0, 1, 2, 3, 4]);
/// ```
pub struct UniversalQueue<T> {
    inner: Arc<QInner<T>>,
}

impl<T> Clone for UniversalQueue<T> {
    fn clone(&self) -> Self {
        UniversalQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for UniversalQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniversalQueue")
            .field("len", &self.len())
            .field("maxsize", &self.inner.maxsize)
            .finish()
    }
}

impl<T> UniversalQueue<T> {
    /// A queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> UniversalQueue<T> {
        UniversalQueue {
            inner: Arc::new(QInner {
                items: if maxsize == 0 {
                    ConcurrentQueue::unbounded()
                } else {
                    ConcurrentQueue::bounded(maxsize)
                },
                maxsize,
                unfinished: Padded(AtomicUsize::new(0)),
                item_added: Event::new(),
                getters: Padded(Waiters::new()),
                space_freed: Event::new(),
                putters: Padded(Waiters::new()),
                all_done: Event::new(),
            }),
        }
    }

    /// Items in the queue.
    pub fn len(&self) -> usize {
        self.inner.items.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a bounded queue is full (Curio's `UniversalQueue.full()` always says no).
    pub fn is_full(&self) -> bool {
        self.inner.items.is_full()
    }

    /// The bound given at creation (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// Adds `item` if there is room.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] with the item when a bounded queue is full,
    /// [`TryPutError::Closed`] with the item when the queue is closed.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let inner = &*self.inner;
        // A put that is sure to fail counts nothing (a blocked putter retries here often).
        if inner.items.is_closed() {
            return Err(TryPutError::Closed(item));
        }
        if inner.items.is_full() {
            return Err(TryPutError::Full(item));
        }
        // Counted before the item is visible, so a getter's `task_done` never runs ahead of it.
        inner.unfinished.fetch_add(1, Ordering::AcqRel);
        match inner.items.push(item) {
            Ok(()) => {
                inner.getters.notify_one(&inner.item_added);
                Ok(())
            }
            Err(PushError::Full(item)) => {
                self.uncount();
                Err(TryPutError::Full(item))
            }
            Err(PushError::Closed(item)) => {
                self.uncount();
                Err(TryPutError::Closed(item))
            }
        }
    }

    /// Closes the queue (an addition to Curio): puts are refused from now on (waiting putters,
    /// on tasks, threads or other runtimes, get their item back), and getters take what is left,
    /// then get [`Closed`]. Closing twice does nothing.
    pub fn close(&self) {
        let inner = &*self.inner;
        if inner.items.close() {
            inner.item_added.notify(usize::MAX);
            inner.space_freed.notify(usize::MAX);
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.items.is_closed()
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    ///
    /// [`Empty`] when there is none (also when the queue is closed and drained:
    /// [`is_closed`](Self::is_closed) tells them apart).
    pub fn try_get(&self) -> Result<T, Empty> {
        self.get_step()
            .unwrap_or(Err(Closed(())))
            .map_err(|_| Empty)
    }

    /// One try of a get: `Some(Ok)` with an item, `Some(Err)` for a closed, drained queue, `None`
    /// to wait.
    fn get_step(&self) -> Option<Result<T, Closed>> {
        let inner = &*self.inner;
        let item = match inner.items.pop() {
            Ok(item) => item,
            Err(PopError::Closed) => return Some(Err(Closed(()))),
            Err(PopError::Empty) => return None,
        };
        if inner.maxsize > 0 {
            inner.putters.notify_one(&inner.space_freed);
        }
        Some(Ok(item))
    }

    /// One try of a put that keeps its item in `slot` until it goes in: `Some(Ok)` when it went
    /// in, `Some(Err)` with the item when the queue is closed, `None` to wait.
    fn put_step(&self, slot: &mut Option<T>) -> Option<Result<(), Closed<T>>> {
        let item = slot.take()?;
        match self.try_put(item) {
            Ok(()) => Some(Ok(())),
            Err(TryPutError::Closed(back)) => Some(Err(Closed(back))),
            Err(TryPutError::Full(back)) => {
                *slot = Some(back);
                None
            }
        }
    }

    /// Adds `item`, waiting for room in a bounded queue.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the item is added by the poll that returns, or not at all (it is dropped with
    /// the future).
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item when the queue is closed (before or while the put waits).
    #[track_caller]
    pub fn put(&self, item: T) -> impl Future<Output = Result<(), Closed<T>>> {
        at_site(WaitKind::QueuePut, self.put_inner(item))
    }

    async fn put_inner(&self, item: T) -> Result<(), Closed<T>> {
        let mut item = Some(item);
        let inner = &*self.inner;
        until(&inner.space_freed, Some(&inner.putters), || {
            self.put_step(&mut item)
        })
        .await
    }

    /// Takes the next item, waiting for one.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item is taken only by the poll that returns it.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the queue is closed and drained.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<T, Closed>> {
        at_site(WaitKind::QueueGet, self.get_inner())
    }

    async fn get_inner(&self) -> Result<T, Closed> {
        let inner = &*self.inner;
        until(&inner.item_added, Some(&inner.getters), || self.get_step()).await
    }

    /// Adds `item`, blocking this thread while a bounded queue is full.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item when the queue is closed.
    #[track_caller]
    pub fn put_blocking(&self, item: T) -> Result<(), Closed<T>> {
        forbid_in_task();
        match self.put_deadline(item, None) {
            Ok(()) => Ok(()),
            Err(TryPutError::Closed(item)) => Err(Closed(item)),
            Err(TryPutError::Full(_)) => {
                unreachable!("an untimed put only returns once the item is in or refused")
            }
        }
    }

    /// Adds `item`, blocking this thread for at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] with the item if there was no room in time,
    /// [`TryPutError::Closed`] with the item when the queue is closed.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), TryPutError<T>> {
        forbid_in_task();
        self.put_deadline(item, Instant::now().checked_add(timeout))
    }

    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), TryPutError<T>> {
        let mut slot = Some(item);
        match until_blocking(
            &self.inner.space_freed,
            Some(&self.inner.putters),
            || self.put_step(&mut slot),
            deadline,
        ) {
            Some(Ok(())) => Ok(()),
            Some(Err(Closed(item))) => Err(TryPutError::Closed(item)),
            None => Err(TryPutError::Full(
                slot.take().expect("a failed put keeps its item"),
            )),
        }
    }

    /// Takes the next item, blocking this thread until there is one.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the queue is closed and drained.
    #[track_caller]
    pub fn get_blocking(&self) -> Result<T, Closed> {
        forbid_in_task();
        match self.get_deadline(None) {
            Ok(item) => Ok(item),
            Err(GetTimeoutError::Closed) => Err(Closed(())),
            Err(_) => unreachable!("an untimed get only returns with an item or closed"),
        }
    }

    /// Takes the next item, blocking this thread for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::TimedOut`] if no item came in time, [`GetTimeoutError::Closed`] once
    /// the queue is closed and drained.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        forbid_in_task();
        self.get_deadline(Instant::now().checked_add(timeout))
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        match until_blocking(
            &self.inner.item_added,
            Some(&self.inner.getters),
            || self.get_step(),
            deadline,
        ) {
            Some(Ok(item)) => Ok(item),
            Some(Err(Closed(()))) => Err(GetTimeoutError::Closed),
            None => Err(GetTimeoutError::TimedOut),
        }
    }

    /// Marks one item as processed.
    ///
    /// # Errors
    ///
    /// [`SyncError::TaskDoneTooManyTimes`] when every item put was already marked done.
    pub fn task_done(&self) -> Result<(), SyncError> {
        let mut n = self.inner.unfinished.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return Err(SyncError::TaskDoneTooManyTimes);
            }
            match self.inner.unfinished.compare_exchange_weak(
                n,
                n - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            self.inner.all_done.notify(usize::MAX);
        }
        Ok(())
    }

    /// Takes back the count of a put that failed. An extra `task_done` may have taken that
    /// count meanwhile (it is the caller's error, reported as success then): the count stays at
    /// zero rather than wrapping, which would make `join` wait for ever.
    fn uncount(&self) {
        let before = self
            .inner
            .unfinished
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.inner.all_done.notify(usize::MAX);
        }
    }

    fn all_done(&self) -> bool {
        self.inner.unfinished.load(Ordering::Acquire) == 0
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn join(&self) -> impl Future<Output = ()> {
        at_site(WaitKind::QueueJoin, self.join_inner())
    }

    async fn join_inner(&self) {
        until(&self.inner.all_done, None, || self.all_done().then_some(())).await
    }

    /// Blocks this thread until every item put has been marked done.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn join_blocking(&self) {
        forbid_in_task();
        let _ = until_blocking(
            &self.inner.all_done,
            None,
            || self.all_done().then_some(()),
            None,
        );
    }
}

struct EInner {
    set: AtomicBool,
    /// Counts `set` calls: a waiter that saw it change was woken by a set, even if the event
    /// was cleared again before it looked (as Curio's waiters are).
    sets: AtomicU64,
    event: Event,
}

/// An event shared by tasks, threads and other runtimes (Curio's `UniversalEvent`).
/// `Clone` makes another handle to the same event.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod sync { pub use curio_sync::UniversalEvent; } }
/// use curio::sync::UniversalEvent;
///
/// let evt = UniversalEvent::new();
/// let e2 = evt.clone();
/// let t = std::thread::spawn(move || e2.set());
/// curio::run(async { evt.wait().await });
/// t.join().unwrap();
/// assert!(evt.is_set());
/// ```
#[derive(Clone)]
pub struct UniversalEvent {
    inner: Arc<EInner>,
}

impl fmt::Debug for UniversalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniversalEvent")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Default for UniversalEvent {
    fn default() -> Self {
        UniversalEvent::new()
    }
}

impl UniversalEvent {
    /// An event that is not set.
    pub fn new() -> UniversalEvent {
        UniversalEvent {
            inner: Arc::new(EInner {
                set: AtomicBool::new(false),
                sets: AtomicU64::new(0),
                event: Event::new(),
            }),
        }
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.inner.set.load(Ordering::SeqCst)
    }

    /// Sets the event and wakes every waiter.
    pub fn set(&self) {
        self.inner.set.store(true, Ordering::SeqCst);
        self.inner.sets.fetch_add(1, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    /// Whether the event is set now, or was set since `seen` was read.
    fn done(&self, seen: u64) -> bool {
        self.is_set() || self.inner.sets.load(Ordering::SeqCst) != seen
    }

    /// Clears the event.
    pub fn clear(&self) {
        self.inner.set.store(false, Ordering::SeqCst);
    }

    /// Waits until the event is set.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn wait(&self) -> impl Future<Output = ()> {
        at_site(WaitKind::Event, self.wait_inner())
    }

    async fn wait_inner(&self) {
        let seen = self.inner.sets.load(Ordering::SeqCst);
        until(&self.inner.event, None, || self.done(seen).then_some(())).await
    }

    /// Blocks this thread until the event is set.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn wait_blocking(&self) {
        forbid_in_task();
        let _ = self.wait_deadline(None);
    }

    /// Blocks this thread until the event is set, for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`WaitTimeout`] if it was not set in time.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitTimeout> {
        forbid_in_task();
        self.wait_deadline(Instant::now().checked_add(timeout))
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> Result<(), WaitTimeout> {
        let seen = self.inner.sets.load(Ordering::SeqCst);
        until_blocking(
            &self.inner.event,
            None,
            || self.done(seen).then_some(()),
            deadline,
        )
        .ok_or(WaitTimeout)
    }
}

struct PInner<T> {
    value: Mutex<Option<T>>,
    event: Event,
}

/// A value set once and read by tasks, threads and other runtimes (Curio's `UniversalResult`).
/// `Clone` makes another handle to the same promise.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod sync { pub use curio_sync::UniversalPromise; } }
/// use curio::sync::UniversalPromise;
///
/// let p = UniversalPromise::new();
/// let p2 = p.clone();
/// std::thread::spawn(move || p2.set(7).unwrap());
/// assert_eq!(curio::run(async { p.get().await }), 7);
/// ```
pub struct UniversalPromise<T> {
    inner: Arc<PInner<T>>,
}

impl<T> Clone for UniversalPromise<T> {
    fn clone(&self) -> Self {
        UniversalPromise {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for UniversalPromise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniversalPromise")
            .field("set", &self.is_set())
            .finish()
    }
}

impl<T> Default for UniversalPromise<T> {
    fn default() -> Self {
        UniversalPromise::new()
    }
}

impl<T> UniversalPromise<T> {
    /// A promise with no value yet.
    pub fn new() -> UniversalPromise<T> {
        UniversalPromise {
            inner: Arc::new(PInner {
                value: Mutex::new(None),
                event: Event::new(),
            }),
        }
    }

    /// Whether the value is set.
    pub fn is_set(&self) -> bool {
        lock(&self.inner.value).is_some()
    }

    /// Sets the value and wakes every reader.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`](crate::AlreadySet) with `value` if it was set before.
    pub fn set(&self, value: T) -> Result<(), crate::AlreadySet<T>> {
        let mut v = lock(&self.inner.value);
        if v.is_some() {
            return Err(crate::AlreadySet(value));
        }
        *v = Some(value);
        drop(v);
        self.inner.event.notify(usize::MAX);
        Ok(())
    }
}

impl<T: Clone> UniversalPromise<T> {
    /// A clone of the value, if set.
    pub fn try_get(&self) -> Option<T> {
        lock(&self.inner.value).clone()
    }

    /// Waits for the value.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = T> {
        at_site(WaitKind::Promise, self.get_inner())
    }

    async fn get_inner(&self) -> T {
        until(&self.inner.event, None, || self.try_get()).await
    }

    /// Blocks this thread until the value is set.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn get_blocking(&self) -> T {
        forbid_in_task();
        match self.get_deadline(None) {
            Ok(v) => v,
            Err(_) => unreachable!("an untimed wait only returns with the value"),
        }
    }

    /// Blocks this thread for at most `timeout` waiting for the value.
    ///
    /// # Errors
    ///
    /// [`WaitTimeout`] if it was not set in time.
    ///
    /// # Panics
    ///
    /// Called inside a curio task, in a debug build: it would block the kernel's thread and every
    /// task on it (for ever, if one of them must act first). Release builds print a warning once instead.
    /// Tasks await the async form.
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, WaitTimeout> {
        forbid_in_task();
        self.get_deadline(Instant::now().checked_add(timeout))
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, WaitTimeout> {
        until_blocking(&self.inner.event, None, || self.try_get(), deadline).ok_or(WaitTimeout)
    }
}

/// Reports a blocking call made inside a curio task (see [`curio_core::forbid_blocking`]).
#[track_caller]
fn forbid_in_task() {
    curio_core::forbid_blocking(
        "a blocking call (it would deadlock if a task must act first; await the async form instead)",
    );
}
