//! I/O readiness for curio-rt: registers descriptors, waits for them, and parks the kernel thread.
//!
//! A [`Reactor`] wraps the operating system's selector (`epoll` on Linux, through `rustix`; the
//! `polling` crate elsewhere, or with the `polling-backend` feature).
//! Each descriptor is registered once, edge-triggered, the first time an operation on it would
//! block; readiness is then tracked in user space and cleared when an operation reports
//! `EAGAIN` or a short read, so the hot path makes exactly one syscall per operation.
//!
//! [`Async<T>`] wraps any `AsFd` (a non-blocking socket, pipe or eventfd) and runs operations with
//! [`Async::read_with`] / [`Async::write_with`]: the syscall is tried first and the task waits only
//! on `EAGAIN`. One task may wait per direction per descriptor: a second one gets
//! [`io::ErrorKind::ResourceBusy`] instead of a hang (Curio's `ReadResourceBusy`).
//!
//! The [`Notifier`] wakes a parked reactor from any thread.
//!
//! # Readiness bookkeeping
//!
//! - A descriptor is registered only when an operation first reports `EAGAIN` or a task first waits
//!   for readiness ([`Async::readable`], [`Async::writable`]), so a descriptor that never blocks is
//!   never registered; it is added once, for both directions, and removed in `Drop` of its `Async`,
//!   before the descriptor is closed.
//! - Readiness is kept in user space as two bits per source: a new registration marks the direction
//!   being waited for as not ready and the other as unknown (so its syscall is tried), an event
//!   sets them, and they are cleared when an operation reports `EAGAIN` or when a read comes back
//!   short ([`Async::clear_ready`]), since an edge-triggered descriptor only reports new data with
//!   a new event.
//! - Two more bits per source are sticky: a peer's hang-up (`EPOLLRDHUP`) or an error marks a
//!   direction closed, and clearing readiness never clears them, because the close may have come in
//!   the same edge as the last data. The `polling` backend cannot report a hang-up apart from data,
//!   so there `clear_ready` does nothing and a short read costs one more read.
//! - [`Async::readable`] and [`Async::writable`] wait for the readiness bit without running a
//!   syscall and without clearing it.
//! - Each source has one waiter slot per direction: a second task that needs to wait in the same
//!   direction gets `ResourceBusy`, while one reader plus one writer is fine.
//! - Operations spend the cooperative budget of `curio-core` (refilled by the kernel before each
//!   task turn); an operation that finds it empty wakes its own task and returns `Pending`, so an
//!   always-ready socket cannot starve the other tasks.
//! - Sources are keyed by slot and generation (a `Key`), so an event for a slot that has since been
//!   reused is ignored.
//! - An `Async` belongs to the reactor that registered it: waiting on it while another kernel runs
//!   is an error, and where no reactor runs (outside a kernel, or in a kernel whose `Park` is not a
//!   reactor) an operation that would wait fails with an error that says so, instead of hanging.
//! - Notifiers and registrations hold the reactor weakly: a `notify` after the reactor is gone does
//!   nothing, and dropping the `Reactor` waits for other threads' brief uses to end, so its
//!   descriptors are closed on the owner's thread. The wake protocol itself is in `wake.rs`, the
//!   selectors in `sys/`.
//!
//! # Implementation
//!
//! This crate starts no threads. The kernel's thread calls [`Reactor::poll`]; wakers registered by
//! tasks are called from there. On Linux it needs no `unsafe`; the `polling` backend has one call.
//!
//! # Examples
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use curio_reactor::{Async, Reactor};
//!
//! let reactor = Reactor::new()?;
//! let _enter = reactor.enter();
//! let (a, b) = UnixStream::pair()?;
//! a.set_nonblocking(true)?;
//! let a = Async::new(a);
//! std::io::Write::write_all(&mut &b, b"hi")?;
//! // The syscall is tried first: the data is there, so no waiting and no registration.
//! let mut buf = [0u8; 8];
//! let fut = a.read_with(|s| std::io::Read::read(&mut &*s, &mut buf));
//! let n = curio_reactor::block_on_ready(fut).expect("ready at once")?;
//! assert_eq!(&buf[..n], b"hi");
//! # Ok::<(), std::io::Error>(())
//! ```

mod sys;
mod wake;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use curio_core::{Park, ParkEnter, Unpark, Unparker, poll_budget};
use sys::{EventBuf, NOTIFY_KEY, Selector, SysEvent};
use wake::WakeState;

/// A direction of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Readable (or hung up, or in error).
    Read = 0,
    /// Writable (or hung up, or in error).
    Write = 1,
}

impl Direction {
    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The sticky bit for "this direction is closed" (hang-up or error): an edge-triggered
    /// descriptor reports it once, together with any last data, so clearing readiness after that
    /// data must not forget it.
    fn closed_bit(self) -> u8 {
        4 << self as u8
    }

    /// Ready, or closed.
    fn any_bit(self) -> u8 {
        self.bit() | self.closed_bit()
    }
}

/// What one [`Reactor::poll`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Number of readiness events delivered to sources.
    pub events: usize,
    /// Whether a [`Notifier`] woke the reactor.
    pub notified: bool,
}

static NEXT_REACTOR_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
}

struct Inner {
    id: u64,
    selector: Selector,
    /// A [`Notifier`] makes a system call only when the owner is parked (see `wake.rs`).
    wake: WakeState,
    sources: Mutex<Slab>,
}

#[derive(Default)]
struct Slab {
    entries: Vec<(u32, Option<Arc<SourceState>>)>,
    free: Vec<u32>,
    live: usize,
}

struct SourceState {
    ready: AtomicU8,
    owner: [AtomicU64; 2],
    wakers: Mutex<[Option<Waker>; 2]>,
    /// `Direction::bit`s of the slots of `wakers` that hold a waker, changed only under its lock:
    /// a finished operation and an event with no waiter skip the lock. Read without the lock
    /// only on the kernel's thread, where wakers are parked and taken, or under the source table's
    /// lock, which deregistration holds too.
    parked: AtomicU8,
}

/// A compile-time check that `Reactor` is not `Send`, on every backend: if it were, both impls
/// below would apply and the call in the constant would be ambiguous.
trait AmbiguousIfSend<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
const _: fn() = || <Reactor as AmbiguousIfSend<_>>::check();

/// A source's key in the selector: its slot in the source table and the slot's generation, so
/// an event for a slot that has been reused since is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    slot: u32,
    generation: u32,
}

impl Key {
    /// The 64-bit form the selector carries: generation in the high half, slot in the low.
    fn pack(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }

    fn unpack(key: u64) -> Key {
        let [g0, g1, g2, g3, s0, s1, s2, s3] = key.to_be_bytes();
        Key {
            slot: u32::from_be_bytes([s0, s1, s2, s3]),
            generation: u32::from_be_bytes([g0, g1, g2, g3]),
        }
    }
}

/// The I/O half of a kernel: a selector, its registered sources, and its cross-thread wake.
///
/// Owned by the kernel's thread (`!Send`, on every backend); [`Notifier`] is the part other
/// threads get.
pub struct Reactor {
    inner: Arc<Inner>,
    /// Keeps the reactor on its thread: its wakers are called and its descriptors closed there.
    _not_send: std::marker::PhantomData<*const ()>,
    events: RefCell<EventBuf>,
    /// Wakers collected during a poll, called once the source table is released; kept to reuse
    /// its capacity. Only the owner's thread polls, so no lock is needed.
    wake_buf: RefCell<Vec<Waker>>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("id", &self.inner.id)
            .field("sources", &self.source_count())
            .finish()
    }
}

impl Reactor {
    /// Creates a reactor (an epoll and an eventfd on Linux).
    ///
    /// # Errors
    ///
    /// When the operating system refuses the descriptors (`EMFILE`...).
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            inner: Arc::new(Inner {
                id: NEXT_REACTOR_ID.fetch_add(1, Ordering::Relaxed),
                selector: Selector::new()?,
                wake: WakeState::new(),
                sources: Mutex::new(Slab::default()),
            }),
            _not_send: std::marker::PhantomData,
            events: RefCell::new(EventBuf::new()),
            wake_buf: RefCell::new(Vec::new()),
        })
    }

    /// Makes this the current reactor of the thread until the guard drops: [`Async`] registers
    /// with the current reactor.
    pub fn enter(&self) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Some(self.inner.clone())));
        EnterGuard { prev }
    }

    /// Number of registered sources.
    pub fn source_count(&self) -> usize {
        lock(&self.inner.sources).live
    }

    /// A handle that wakes this reactor from any thread.
    pub fn notifier(&self) -> Notifier {
        Notifier {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Waits for events for at most `timeout` (`Some(ZERO)`: just look), wakes the tasks waiting
    /// on ready sources, and clears the notification if it fired.
    ///
    /// # Errors
    ///
    /// When the selector fails.
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<PollOutcome> {
        let inner = &*self.inner;
        let mut out = PollOutcome::default();
        let mut timeout = timeout;
        if timeout != Some(Duration::ZERO) && !inner.wake.park() {
            // A notification came since the last poll: look, but do not block.
            timeout = Some(Duration::ZERO);
        }
        let mut wakers = std::mem::take(&mut *self.wake_buf.borrow_mut());
        {
            let mut notify_seen = false;
            let sources = &inner.sources;
            let mut slab: Option<std::sync::MutexGuard<'_, Slab>> = None;
            let mut buf = self.events.borrow_mut();
            inner.selector.wait(&mut buf, timeout, |ev: SysEvent| {
                if ev.key == NOTIFY_KEY {
                    notify_seen = true;
                    return;
                }
                let slab = slab.get_or_insert_with(|| lock(sources));
                let key = Key::unpack(ev.key);
                let Some((g, Some(src))) = slab.entries.get(key.slot as usize) else {
                    return;
                };
                if *g != key.generation {
                    return;
                }
                out.events += 1;
                let mut bits = 0;
                if ev.readable {
                    bits |= Direction::Read.bit();
                }
                if ev.writable {
                    bits |= Direction::Write.bit();
                }
                if ev.read_closed {
                    bits |= Direction::Read.closed_bit();
                }
                if ev.write_closed {
                    bits |= Direction::Write.closed_bit();
                }
                src.ready.fetch_or(bits, Ordering::AcqRel);
                let parked = src.parked.load(Ordering::Relaxed);
                let due = [Direction::Read, Direction::Write]
                    .into_iter()
                    .filter(|d| bits & d.any_bit() != 0 && parked & d.bit() != 0)
                    .fold(0, |acc, d| acc | d.bit());
                if due != 0 {
                    let mut w = lock(&src.wakers);
                    for dir in [Direction::Read, Direction::Write] {
                        if due & dir.bit() != 0
                            && let Some(waker) = w[dir as usize].take()
                        {
                            wakers.push(waker);
                        }
                    }
                    src.parked.store(parked & !due, Ordering::Relaxed);
                }
            })?;
            if notify_seen {
                inner.selector.clear_notify();
            }
            // Awake again before the kernel drains its remote queue: a push after the drain
            // marks the state `NOTIFIED`, and the next poll does not block.
            out.notified = inner.wake.wake_up() || notify_seen;
        }
        for w in wakers.drain(..) {
            w.wake();
        }
        *self.wake_buf.borrow_mut() = wakers;
        Ok(out)
    }
}

/// The kernel's default parker: a park is a [`poll`](Reactor::poll), and an unpark a
/// [`Notifier::notify`].
impl Park for Reactor {
    fn park(&self, timeout: Option<Duration>) -> io::Result<usize> {
        self.poll(timeout).map(|out| out.events)
    }
    fn unparker(&self) -> Unparker {
        Unparker::new(Arc::new(Reactor::notifier(self)))
    }
    fn enter(&self) -> ParkEnter {
        ParkEnter::new(Reactor::enter(self))
    }
}

impl Unpark for Notifier {
    fn unpark(&self) {
        self.notify();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing inside these mutexes can be left half-updated by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Restores the previous current reactor when dropped; see [`Reactor::enter`].
#[must_use = "the reactor is current only while the guard lives"]
pub struct EnterGuard {
    prev: Option<Arc<Inner>>,
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnterGuard")
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Wakes a [`Reactor`] from any thread. `Send + Sync + Clone`.
///
/// It does not keep the reactor alive: once the reactor is dropped, `notify` does nothing.
#[derive(Clone)]
pub struct Notifier {
    inner: Weak<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl Notifier {
    /// Wakes the reactor: its current or next [`Reactor::poll`] returns promptly.
    /// Only a wake of a reactor blocked in its poll makes a system call; wakes sent while it
    /// runs, or while one is pending, cost one atomic operation.
    pub fn notify(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        if inner.wake.notify() {
            // A failing eventfd write leaves nothing to recover; the next one may succeed.
            let _ = inner.selector.notify();
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // Other threads hold the reactor only for the length of a `notify` or a deregistration;
        // wait for those, so its descriptors are closed here, on the owner's thread, and no
        // later.
        let entered_here = CURRENT
            .try_with(|c| {
                c.try_borrow()
                    .map(|c| c.as_ref().is_some_and(|r| Arc::ptr_eq(r, &self.inner)))
                    .unwrap_or(true)
            })
            .unwrap_or(true);
        if entered_here {
            // Dropped while still entered on this thread: the guard keeps it alive a bit longer.
            return;
        }
        // A notifier in the middle of its eventfd write is the only other holder: sleep a few
        // microseconds at a time (no busy spin) until it is done.
        while Arc::strong_count(&self.inner) > 1 {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// The registration of one descriptor with one reactor; removed in `Drop` of the [`Async`].
/// It does not keep the reactor alive: a registration that outlives its kernel has nothing left
/// to remove.
struct Registration {
    reactor: Weak<Inner>,
    key: u64,
    state: Arc<SourceState>,
}

/// A non-blocking I/O object registered (lazily) with the kernel's reactor.
///
/// The registration happens the first time an operation would block, with the reactor of the
/// kernel running on that thread; from then on the object belongs to that kernel, and using it
/// while another kernel runs is an error. `Drop` deregisters it before closing the descriptor.
pub struct Async<T: AsFd> {
    reg: OnceLock<Registration>,
    io: Option<T>,
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish()
    }
}

fn not_in_kernel() -> io::Error {
    io::Error::other(
        "curio I/O object used where no reactor runs (outside a curio kernel, or in a kernel \
         whose Park is not a reactor)",
    )
}

fn wrong_kernel() -> io::Error {
    io::Error::other("curio I/O object used by a kernel other than the one it is registered with")
}

fn busy(dir: Direction) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        match dir {
            Direction::Read => "another task is already waiting to read this descriptor",
            Direction::Write => "another task is already waiting to write this descriptor",
        },
    )
}

impl<T: AsFd> Async<T> {
    /// Wraps `io`, which must already be in non-blocking mode.
    pub fn new(io: T) -> Async<T> {
        Async {
            reg: OnceLock::new(),
            io: Some(io),
        }
    }

    /// The wrapped object.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("io present until into_inner")
    }

    /// The wrapped object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        self.io.as_mut().expect("io present until into_inner")
    }

    /// Deregisters and returns the wrapped object (still non-blocking).
    pub fn into_inner(mut self) -> T {
        self.deregister();
        self.io.take().expect("io present until into_inner")
    }

    fn deregister(&mut self) {
        if let Some(reg) = self.reg.take()
            && let Some(io) = &self.io
            && let Some(reactor) = reg.reactor.upgrade()
        {
            let _ = reactor.selector.delete(io.as_fd());
            let mut guard = lock(&reactor.sources);
            let slab = &mut *guard;
            let slot = Key::unpack(reg.key).slot;
            if let Some(e) = slab.entries.get_mut(slot as usize) {
                e.1 = None;
                slab.free.push(slot);
                slab.live -= 1;
            }
            // Wakers still parked here belong to futures being dropped; release them now.
            let mut w = lock(&reg.state.wakers);
            *w = [None, None];
            reg.state.parked.store(0, Ordering::Relaxed);
        }
    }

    /// The registration, made now if needed. A new registration starts with `waiting` not ready
    /// (the caller just saw `EAGAIN`, or wants to wait; `epoll` reports the real state on add) and
    /// the other direction ready (unknown: try the syscall).
    fn registration(&self, waiting: Direction) -> io::Result<&Registration> {
        if let Some(r) = self.reg.get() {
            return Ok(r);
        }
        let reactor = CURRENT
            .with(|c| c.borrow().clone())
            .ok_or_else(not_in_kernel)?;
        let state = Arc::new(SourceState {
            ready: AtomicU8::new((Direction::Read.bit() | Direction::Write.bit()) & !waiting.bit()),
            owner: [AtomicU64::new(0), AtomicU64::new(0)],
            wakers: Mutex::new([None, None]),
            parked: AtomicU8::new(0),
        });
        let key = {
            let mut guard = lock(&reactor.sources);
            let slab = &mut *guard;
            let slot = match slab.free.pop() {
                Some(s) => s,
                None => {
                    slab.entries.push((0, None));
                    u32::try_from(slab.entries.len() - 1)
                        .ok()
                        .filter(|s| u64::from(*s) < NOTIFY_KEY)
                        .ok_or_else(|| io::Error::other("too many registered sources"))?
                }
            };
            let e = &mut slab.entries[slot as usize];
            e.0 = e.0.wrapping_add(1);
            e.1 = Some(state.clone());
            slab.live += 1;
            Key {
                slot,
                generation: e.0,
            }
            .pack()
        };
        let reg = Registration {
            reactor: Arc::downgrade(&reactor),
            key,
            state,
        };
        if let Err(e) = reactor.selector.add(self.get_ref().as_fd(), key) {
            let mut guard = lock(&reactor.sources);
            let slab = &mut *guard;
            let slot = Key::unpack(key).slot;
            slab.entries[slot as usize].1 = None;
            slab.free.push(slot);
            slab.live -= 1;
            return Err(e);
        }
        // Only this thread registers lazily (the object is used by the kernel it runs in), so the
        // cell is empty here; a lost race would only mean a duplicate add, reported as an error.
        let _ = self.reg.set(reg);
        self.reg
            .get()
            .ok_or_else(|| io::Error::other("registration lost"))
    }

    /// The registration, made if needed, checked to belong to the running kernel.
    fn own_registration(&self, waiting: Direction) -> io::Result<&Registration> {
        let reg = self.registration(waiting)?;
        self.check_kernel(reg)?;
        Ok(reg)
    }

    fn check_kernel(&self, reg: &Registration) -> io::Result<()> {
        let same = CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .is_some_and(|r| std::ptr::eq(Arc::as_ptr(r), reg.reactor.as_ptr()))
        });
        if same { Ok(()) } else { Err(wrong_kernel()) }
    }

    /// Clears the readiness of `dir`, so the next operation waits for an event first. Call it after
    /// a short read: an edge-triggered descriptor reports new data with a new event.
    pub fn clear_ready(&self, dir: Direction) {
        // Without a separate hang-up report, a peer's data and close can come as one edge, and
        // clearing here would miss the close: keep readiness, at the cost of one failing read.
        if !sys::REPORTS_HANGUP {
            return;
        }
        if let Some(reg) = self.reg.get() {
            reg.state.ready.fetch_and(!dir.bit(), Ordering::AcqRel);
        }
    }

    /// Polls one attempt of `op` in direction `dir`: tries it if the descriptor may be ready,
    /// and otherwise registers `cx`'s waker. `token` identifies the waiting operation (0 before
    /// the first wait); pass the same one on every poll and [`release`](Self::release) it when the
    /// operation is abandoned.
    ///
    /// # Errors
    ///
    /// `op`'s error other than `WouldBlock`; `ResourceBusy` when another operation already waits in
    /// this direction; an error when used outside the object's kernel.
    pub fn poll_op<R>(
        &self,
        dir: Direction,
        token: &mut u64,
        cx: &mut Context<'_>,
        op: &mut impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        std::task::ready!(poll_budget(cx));
        loop {
            let reg = self.reg.get();
            if let Some(reg) = reg {
                let owner = reg.state.owner[dir as usize].load(Ordering::Acquire);
                if owner != 0 && owner != *token {
                    return Poll::Ready(Err(busy(dir)));
                }
            }
            let ready =
                reg.is_none_or(|r| r.state.ready.load(Ordering::Acquire) & dir.any_bit() != 0);
            if ready {
                match op(self.get_ref()) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    res => {
                        self.release(dir, token);
                        return Poll::Ready(res);
                    }
                }
            }
            let reg = match self.own_registration(dir) {
                Ok(r) => r,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if let Err(e) = take_slot(reg, dir, token) {
                return Poll::Ready(Err(e));
            }
            if ready {
                // This attempt saw EAGAIN: the descriptor is not ready until the next edge.
                reg.state.ready.fetch_and(!dir.bit(), Ordering::AcqRel);
            } else if reg.state.ready.load(Ordering::Acquire) & dir.any_bit() != 0 {
                continue;
            }
            park_waker(reg, dir, cx);
            return Poll::Pending;
        }
    }

    /// Gives up the wait slot `token` holds in direction `dir` (a dropped or finished operation).
    pub fn release(&self, dir: Direction, token: &mut u64) {
        if *token == 0 {
            return;
        }
        if let Some(reg) = self.reg.get() {
            let slot = &reg.state.owner[dir as usize];
            if slot
                .compare_exchange(*token, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let parked = &reg.state.parked;
                if parked.load(Ordering::Relaxed) & dir.bit() != 0 {
                    // `parked` changes only under the wakers' lock: hold it for both.
                    let mut wakers = lock(&reg.state.wakers);
                    wakers[dir as usize] = None;
                    parked.store(
                        parked.load(Ordering::Relaxed) & !dir.bit(),
                        Ordering::Relaxed,
                    );
                    drop(wakers);
                }
            }
        }
        *token = 0;
    }

    /// Runs `op` until it stops reporting `WouldBlock`, waiting for readability in between.
    ///
    /// # Errors
    ///
    /// `op`'s errors, `ResourceBusy` if another task is already waiting to read this descriptor,
    /// or an error when used outside its kernel.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe if `op` is: a dropped future gives up its wait and has not run `op` since
    /// its last `Pending`.
    pub fn read_with<'a, R>(
        &'a self,
        op: impl FnMut(&T) -> io::Result<R> + 'a,
    ) -> impl Future<Output = io::Result<R>> + 'a {
        IoOp {
            src: self,
            dir: Direction::Read,
            token: 0,
            op,
        }
    }

    /// Runs `op` until it stops reporting `WouldBlock`, waiting for writability in between.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Self::read_with), for the write direction.
    ///
    /// # Cancel safety
    ///
    /// As [`read_with`](Self::read_with).
    pub fn write_with<'a, R>(
        &'a self,
        op: impl FnMut(&T) -> io::Result<R> + 'a,
    ) -> impl Future<Output = io::Result<R>> + 'a {
        IoOp {
            src: self,
            dir: Direction::Write,
            token: 0,
            op,
        }
    }

    /// Polls for readiness in direction `dir` without running any operation: ready if the
    /// reactor has seen the descriptor ready since its readiness was last cleared.
    ///
    /// # Errors
    ///
    /// As [`poll_op`](Self::poll_op).
    pub fn poll_ready(
        &self,
        dir: Direction,
        token: &mut u64,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let reg = match self.own_registration(dir) {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let owner = reg.state.owner[dir as usize].load(Ordering::Acquire);
        if owner != 0 && owner != *token {
            return Poll::Ready(Err(busy(dir)));
        }
        if reg.state.ready.load(Ordering::Acquire) & dir.any_bit() != 0 {
            self.release(dir, token);
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = take_slot(reg, dir, token) {
            return Poll::Ready(Err(e));
        }
        park_waker(reg, dir, cx);
        Poll::Pending
    }

    /// Waits until the descriptor is readable (or hung up). Does not clear the readiness.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Self::read_with).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn readable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        Ready {
            src: self,
            dir: Direction::Read,
            token: 0,
        }
    }

    /// Waits until the descriptor is writable. Does not clear the readiness.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Self::read_with).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn writable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        Ready {
            src: self,
            dir: Direction::Write,
            token: 0,
        }
    }
}

/// Makes `token` the waiter of direction `dir`, taking a fresh token if it has none.
fn take_slot(reg: &Registration, dir: Direction, token: &mut u64) -> io::Result<()> {
    if *token != 0 {
        return Ok(());
    }
    let t = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    reg.state.owner[dir as usize]
        .compare_exchange(0, t, Ordering::AcqRel, Ordering::Acquire)
        .map_err(|_| busy(dir))?;
    *token = t;
    Ok(())
}

/// Stores the waker the next event in direction `dir` wakes.
fn park_waker(reg: &Registration, dir: Direction, cx: &Context<'_>) {
    // The public operation above knows the caller's line; down here only the direction is
    // known, which is what the task's wait site says when the operation did not record more.
    curio_core::waiting(
        match dir {
            Direction::Read => curio_core::WaitKind::Read,
            Direction::Write => curio_core::WaitKind::Write,
        },
        None,
    );
    let mut w = lock(&reg.state.wakers);
    match &mut w[dir as usize] {
        Some(old) if old.will_wake(cx.waker()) => {}
        slot => *slot = Some(cx.waker().clone()),
    }
    let parked = &reg.state.parked;
    parked.store(
        parked.load(Ordering::Relaxed) | dir.bit(),
        Ordering::Relaxed,
    );
}

struct Ready<'a, T: AsFd> {
    src: &'a Async<T>,
    dir: Direction,
    token: u64,
}

impl<T: AsFd> Future for Ready<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.src.poll_ready(this.dir, &mut this.token, cx)
    }
}

impl<T: AsFd> Drop for Ready<'_, T> {
    fn drop(&mut self) {
        self.src.release(self.dir, &mut self.token);
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        self.deregister();
    }
}

struct IoOp<'a, T: AsFd, F> {
    src: &'a Async<T>,
    dir: Direction,
    token: u64,
    op: F,
}

impl<T: AsFd, F> Unpin for IoOp<'_, T, F> {}

impl<T: AsFd, R, F: FnMut(&T) -> io::Result<R>> Future for IoOp<'_, T, F> {
    type Output = io::Result<R>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let this = self.get_mut();
        this.src
            .poll_op(this.dir, &mut this.token, cx, &mut this.op)
    }
}

impl<T: AsFd, F> Drop for IoOp<'_, T, F> {
    fn drop(&mut self) {
        self.src.release(self.dir, &mut self.token);
    }
}

/// Polls `fut` once with a no-op waker: `Some(output)` if it completed at once.
///
/// Handy in tests and doc examples of operations that are ready immediately.
pub fn block_on_ready<F: Future>(fut: F) -> Option<F::Output> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod key_tests {
    use super::Key;

    #[test]
    fn keys_round_trip() {
        for (slot, generation) in [(0, 0), (1, 7), (u32::MAX - 1, u32::MAX), (12345, 1)] {
            let k = Key { slot, generation };
            assert_eq!(Key::unpack(k.pack()), k);
        }
        assert_eq!(
            Key {
                slot: 3,
                generation: 2
            }
            .pack(),
            (2 << 32) | 3
        );
    }
}
