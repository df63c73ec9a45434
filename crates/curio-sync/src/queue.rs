//! `Queue`, `PriorityQueue` and `LifoQueue`: kernel-local queues with FIFO hand-off.

use curio_core::{WaitKind, at_site};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::error::{Closed, Empty, SyncError, TryPutError};
use crate::waiters::{Key, WaitList};

/// How a queue stores its items: the order `get` sees them in.
pub trait Storage<T>: Default {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Takes the next item.
    fn pop(&mut self) -> Option<T>;
    /// Puts back an item that was taken but not delivered, where it would be taken next.
    fn unpop(&mut self, item: T);
    /// Number of items.
    fn len(&self) -> usize;
    /// Whether there is no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First in, first out.
#[derive(Debug)]
pub struct Fifo<T>(VecDeque<T>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Storage<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn unpop(&mut self, item: T) {
        self.0.push_front(item);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Last in, first out.
#[derive(Debug)]
pub struct Lifo<T>(Vec<T>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> Storage<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Smallest first (Python's `heapq` order, as Curio's `PriorityQueue`).
#[derive(Debug)]
pub struct Smallest<T: Ord>(BinaryHeap<Reverse<T>>);

impl<T: Ord> Default for Smallest<T> {
    fn default() -> Self {
        Smallest(BinaryHeap::new())
    }
}

impl<T: Ord> Storage<T> for Smallest<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(t)| t)
    }
    fn unpop(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

struct State<T, S> {
    items: S,
    maxsize: usize,
    /// Getters waiting for an item; a put hands its item straight into the first one's slot.
    getters: WaitList<Option<T>>,
    /// Putters waiting for room, each holding its item until a get makes room for it (or the
    /// queue is closed: then it is rejected and takes its item back).
    putters: WaitList<PutSlot<T>>,
    unfinished: usize,
    joiners: WaitList<()>,
    /// Items handed to waiting getters that have not taken them yet: they count against
    /// `maxsize`, since a cancelled getter puts its item back.
    handed: usize,
    /// Places reserved for admitted putters whose tasks have not run yet: they count against
    /// `maxsize`, and the item enters the queue only when its putter completes the put.
    reserved: usize,
    /// `close` was called: puts are refused, gets drain what is left.
    closed: bool,
}

/// A waiting putter's slot: its item, and whether `close` refused it.
struct PutSlot<T> {
    item: Option<T>,
    rejected: bool,
}

impl<T, S: Storage<T>> State<T, S> {
    /// Whether a getter would wait for ever: the queue is closed, holds nothing, and no
    /// admitted putter is about to add anything.
    fn drained(&self) -> bool {
        self.closed && self.items.is_empty() && self.reserved == 0
    }

    /// Once a closed queue is drained, wakes every waiting getter to report it (an empty slot).
    fn wake_drained_getters(&mut self) {
        if self.drained() {
            self.getters.notify_all();
        }
    }

    /// Whether a bounded queue has no place left for a newcomer: stored items, items handed to
    /// getters and places reserved for admitted putters all count.
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.len() + self.handed + self.reserved >= self.maxsize
    }

    /// Adds an item that has a place: straight to the first waiting getter if there is one,
    /// otherwise into the storage.
    fn insert(&mut self, item: T) {
        self.unfinished += 1;
        if self.getters.waiting() > 0 {
            let mut item = Some(item);
            self.getters.notify_one(|slot| *slot = item.take());
            self.handed += 1;
        } else {
            self.items.push(item);
        }
    }

    /// After a place was freed, reserves it for the first waiting putter, if any.
    /// The putter keeps its item until its task runs and completes the put (see [`Put`]).
    fn admit_putter(&mut self) {
        if !self.closed && !self.full() && self.putters.notify_one(|_| {}) {
            self.reserved += 1;
        }
    }
}

/// A queue of items between tasks, generic over its [`Storage`] order; use the aliases
/// [`Queue`], [`LifoQueue`] and [`PriorityQueue`]. Kernel-local: `!Send`.
///
/// `maxsize` 0 means unbounded: then `put` never waits (and never yields).
/// Items are handed off FIFO: a put with getters waiting gives its item to the first getter, a get
/// from a full queue admits the first waiting putter; nobody barges.
///
/// # Reserved places
///
/// An admitted putter keeps its item until its task runs again and completes the put, so a
/// putter cancelled in between has no effect: its item was never in the queue, and the place
/// reserved for it passes to the next waiting putter.
/// While a place is reserved, [`len`](Self::len) counts only the items in the queue (the
/// reserved item is not there yet), while [`is_full`](Self::is_full) and
/// [`try_put`](Self::try_put) count the reserved place as taken, so a newcomer cannot take it.
///
/// # Closing
///
/// [`close`](Self::close) (an addition to Curio) ends a queue: later puts, and putters waiting
/// for room, get their item back in [`Closed`]; getters take what is left and then get
/// `Closed(())`; [`is_closed`](Self::is_closed) tells. A putter admitted before the close
/// completes its put. Closing is how a producer says "no more", instead of a sentinel item.
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod queue { pub use curio_sync::{Closed, Queue}; } }
/// use curio::queue::{Closed, Queue};
///
/// curio::run(async {
///     let q = Queue::new(0);
///     let q2 = q.clone();
///     let consumer = curio::spawn(async move {
///         let mut got = Vec::new();
///         while let Ok(x) = q2.get().await {
///             got.push(x);
///         }
///         got
///     });
///     for x in [1, 2, 3] {
///         q.put(x).await.unwrap();
///     }
///     q.close();
///     assert_eq!(q.put(4).await, Err(Closed(4)));
///     assert_eq!(consumer.join().await.unwrap(), [1, 2, 3]);
/// });
/// ```
pub struct BaseQueue<T, S: Storage<T>> {
    st: Rc<RefCell<State<T, S>>>,
}

/// A clone is another handle to the same queue (as with the Universal types).
impl<T, S: Storage<T>> Clone for BaseQueue<T, S> {
    fn clone(&self) -> Self {
        BaseQueue {
            st: self.st.clone(),
        }
    }
}

/// A first-in, first-out queue (Curio's `Queue`).
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod queue { pub use curio_sync::Queue; } }
/// use curio::queue::Queue;
///
/// curio::run(async {
///     let q = Queue::new(0);
///     let q2 = q.clone();
///     let consumer = curio::spawn(async move {
///         let mut got = Vec::new();
///         while let Ok(Some(x)) = q2.get().await {
///             got.push(x);
///             q2.task_done().unwrap();
///         }
///         q2.task_done().unwrap();
///         got
///     });
///     for x in [1, 2, 3] {
///         q.put(Some(x)).await.unwrap();
///     }
///     q.put(None).await.unwrap(); // Curio's sentinel; `close()` is the other way to end
///     q.join().await;
///     assert_eq!(consumer.join().await.unwrap(), [1, 2, 3]);
/// });
/// ```
pub type Queue<T> = BaseQueue<T, Fifo<T>>;

/// A last-in, first-out queue (Curio's `LifoQueue`).
pub type LifoQueue<T> = BaseQueue<T, Lifo<T>>;

/// A queue that hands out its smallest item first (Curio's `PriorityQueue`).
pub type PriorityQueue<T> = BaseQueue<T, Smallest<T>>;

impl<T, S: Storage<T>> fmt::Debug for BaseQueue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.st.borrow();
        f.debug_struct("Queue")
            .field("len", &st.items.len())
            .field("maxsize", &st.maxsize)
            .finish()
    }
}

impl<T, S: Storage<T>> BaseQueue<T, S> {
    /// A queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        BaseQueue {
            st: Rc::new(RefCell::new(State {
                items: S::default(),
                maxsize,
                getters: WaitList::default(),
                putters: WaitList::default(),
                unfinished: 0,
                joiners: WaitList::default(),
                handed: 0,
                reserved: 0,
                closed: false,
            })),
        }
    }

    /// Items in the queue, not counting places reserved for admitted putters whose put has not
    /// completed yet (see [Reserved places](Self#reserved-places)).
    pub fn len(&self) -> usize {
        self.st.borrow().items.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a bounded queue has no place for another item (an unbounded one is never full).
    /// Items handed to waiting getters and places reserved for admitted putters count as taken.
    pub fn is_full(&self) -> bool {
        self.st.borrow().full()
    }

    /// The bound given at creation (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.st.borrow().maxsize
    }

    /// Adds `item` if that needs no waiting.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] with the item when the queue is full (reserved places count as
    /// taken) or putters are already waiting; [`TryPutError::Closed`] with the item when the
    /// queue is closed.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut st = self.st.borrow_mut();
        if st.closed {
            return Err(TryPutError::Closed(item));
        }
        if st.getters.waiting() > 0 || (st.putters.waiting() == 0 && !st.full()) {
            st.insert(item);
            return Ok(());
        }
        Err(TryPutError::Full(item))
    }

    /// Closes the queue: puts are refused from now on (waiting putters get their item back),
    /// and getters take what is left, then get [`Closed`]. Closing twice does nothing.
    pub fn close(&self) {
        let mut st = self.st.borrow_mut();
        if std::mem::replace(&mut st.closed, true) {
            return;
        }
        while st.putters.notify_one(|slot| slot.rejected = true) {}
        st.wake_drained_getters();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.st.borrow().closed
    }

    /// Adds `item`, waiting for room in a bounded queue. An unbounded put never waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a put dropped before it completes has no effect. Its item was never in the
    /// queue, even if a get had already reserved a place for it (the place passes to the next
    /// waiting putter); once added, an item is never added twice.
    #[track_caller]
    pub fn put(&self, item: T) -> Put<'_, T, S> {
        Put {
            q: self,
            item: Some(item),
            key: None,
            site: Location::caller(),
        }
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    ///
    /// [`Empty`] when there is none (also when the queue is closed and drained:
    /// [`is_closed`](Self::is_closed) tells them apart).
    pub fn try_get(&self) -> Result<T, Empty> {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let item = st.items.pop().ok_or(Empty)?;
        st.admit_putter();
        Ok(item)
    }

    /// Takes the next item, waiting for one.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item handed to a getter that is dropped before taking it goes to the next
    /// getter, or back to the front of the queue; nothing is lost.
    #[track_caller]
    pub fn get(&self) -> Get<'_, T, S> {
        Get {
            q: self,
            key: None,
            site: Location::caller(),
        }
    }

    /// Marks one item taken by `get` as processed (Curio's `task_done`).
    ///
    /// # Errors
    ///
    /// [`SyncError::TaskDoneTooManyTimes`] when every item put was already marked done.
    pub fn task_done(&self) -> Result<(), SyncError> {
        let mut st = self.st.borrow_mut();
        if st.unfinished == 0 {
            return Err(SyncError::TaskDoneTooManyTimes);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            st.joiners.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done with [`task_done`](Self::task_done).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn join(&self) -> impl Future<Output = ()> {
        at_site(WaitKind::QueueJoin, self.join_inner())
    }

    async fn join_inner(&self) {
        Join { q: self, key: None }.await
    }
}

/// The future of [`BaseQueue::join`].
struct Join<'a, T, S: Storage<T>> {
    q: &'a BaseQueue<T, S>,
    key: Option<Key>,
}

impl<T, S: Storage<T>> Future for Join<'_, T, S> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.q.st.borrow_mut();
        if st.unfinished == 0 {
            if let Some(k) = this.key.take() {
                st.joiners.remove(k);
            }
            return Poll::Ready(());
        }
        st.joiners.poll_wait(&mut this.key, cx, || ()).map(drop)
    }
}

impl<T, S: Storage<T>> Drop for Join<'_, T, S> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.q.st.borrow_mut().joiners.remove(k);
        }
    }
}

/// The future of [`BaseQueue::put`].
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T, S: Storage<T>> {
    q: &'a BaseQueue<T, S>,
    item: Option<T>,
    key: Option<Key>,
    /// The call of `put`, reported as the task's wait site.
    site: &'static Location<'static>,
}

impl<T, S: Storage<T>> fmt::Debug for Put<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

impl<T, S: Storage<T>> Unpin for Put<'_, T, S> {}

impl<T, S: Storage<T>> Future for Put<'_, T, S> {
    type Output = Result<(), Closed<T>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.key.is_none() {
            let Some(item) = this.item.take() else {
                return Poll::Ready(Ok(()));
            };
            match this.q.try_put(item) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(TryPutError::Closed(item)) => return Poll::Ready(Err(Closed(item))),
                Err(TryPutError::Full(item)) => this.item = Some(item),
            }
        }
        // The waiting putter holds its item; notified means a get reserved a place for it, which
        // only this turn of the putter's task fills.
        let item = &mut this.item;
        let mut st = this.q.st.borrow_mut();
        let slot = || PutSlot {
            item: item.take(),
            rejected: false,
        };
        match st.putters.poll_wait(&mut this.key, cx, slot) {
            Poll::Ready(entry) => {
                let item = entry.data.item.expect("a waiting putter holds its item");
                if entry.data.rejected {
                    return Poll::Ready(Err(Closed(item)));
                }
                st.reserved -= 1;
                st.insert(item);
                st.wake_drained_getters();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                curio_core::waiting(WaitKind::QueuePut, Some(this.site));
                Poll::Pending
            }
        }
    }
}

impl<T, S: Storage<T>> Drop for Put<'_, T, S> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            // The item leaves with the putter, admitted or not; an admitted putter's reserved
            // place passes to the next waiting putter.
            let entry = {
                let mut st = self.q.st.borrow_mut();
                let entry = st.putters.remove(k);
                if entry
                    .as_ref()
                    .is_some_and(|e| e.notified && !e.data.rejected)
                {
                    st.reserved -= 1;
                    st.admit_putter();
                    st.wake_drained_getters();
                }
                entry
            };
            // Dropped outside the borrow: the item's `Drop` is user code.
            drop(entry);
        }
    }
}

/// The future of [`BaseQueue::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T, S: Storage<T>> {
    q: &'a BaseQueue<T, S>,
    key: Option<Key>,
    /// The call of `get`, reported as the task's wait site.
    site: &'static Location<'static>,
}

impl<T, S: Storage<T>> fmt::Debug for Get<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

impl<T, S: Storage<T>> Future for Get<'_, T, S> {
    type Output = Result<T, Closed>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.q.st.borrow_mut();
        let st = &mut *st;
        if this.key.is_none()
            && st.getters.waiting() == 0
            && let Some(item) = st.items.pop()
        {
            st.admit_putter();
            return Poll::Ready(Ok(item));
        }
        if this.key.is_none() && st.drained() {
            return Poll::Ready(Err(Closed(())));
        }
        match st.getters.poll_wait(&mut this.key, cx, || None) {
            Poll::Ready(e) => {
                let Some(item) = e.data else {
                    // Woken by the close of a drained queue.
                    return Poll::Ready(Err(Closed(())));
                };
                st.handed -= 1;
                // Taking the handed item frees a place: a waiting putter may come in.
                st.admit_putter();
                Poll::Ready(Ok(item))
            }
            Poll::Pending => {
                curio_core::waiting(WaitKind::QueueGet, Some(this.site));
                Poll::Pending
            }
        }
    }
}

impl<T, S: Storage<T>> Drop for Get<'_, T, S> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut st = self.q.st.borrow_mut();
            let st = &mut *st;
            if let Some(e) = st.getters.remove(k)
                && let Some(item) = e.data
            {
                // Handed to us but never taken: the next getter gets it (still handed), or it
                // goes back in front of the queue.
                let mut item = Some(item);
                if !st.getters.notify_one(|slot| *slot = item.take())
                    && let Some(item) = item
                {
                    st.handed -= 1;
                    st.items.unpop(item);
                }
            }
        }
    }
}
