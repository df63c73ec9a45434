//! Time for curio-rt: the kernel's clock (real or virtual), the timer queue, `sleep` and deadlines.
//!
//! A [`TimeDriver`] owns a [`Clock`] and a [`TimerQueue`].
//! The kernel creates one, [enters](TimeDriver::enter) it on its thread while it runs, asks it for
//! the next deadline before parking, and [fires](TimeDriver::fire) expired timers after each park.
//! [`sleep`], [`sleep_until`] and [`clock`] find the driver of the running kernel through a
//! thread-local, so they need no handle.
//!
//! With a [`VirtualClock`], time only moves when the kernel [jumps](TimeDriver::jump_to_next) it to
//! the next deadline (because every task is blocked) or when [`advance`] moves it by hand, so tests
//! of timeouts take no wall time.
//!
//! # Sleeps and clocks
//!
//! A `Sleep` computes its deadline when [`sleep`] is called (a sleep created before its kernel
//! runs, as in `curio::run(curio::sleep(d))`, counts from its first poll), registers a timer only
//! on its first `Pending` poll (an expired deadline registers nothing), and cancels its timer when
//! dropped.
//! `sleep(Duration::ZERO)` and [`yield_now`] register nothing: they wake their task and return
//! `Pending` once.
//! A duration beyond the range of `Instant` is no deadline: such a `sleep` never ends and registers
//! nothing, and [`advance`] by such a duration leaves the clock where it is.
//!
//! [`RealClock`] reads `Instant::now()` on every call; nothing caches it, so a `sleep(d)` never
//! ends early.
//! [`VirtualClock`] starts at the real time and moves only forward, only when told to: the kernel
//! jumps it when it would otherwise have nothing to do (its scheduler's docs say exactly when), and
//! [`advance`] (or `Kernel::advance` between runs) moves it by hand for ports of Curio tests that
//! block the loop with `time.sleep`; the timers it expires fire in the kernel's next cycle.
//! A user's [`Clock`] can be given to the kernel's builder instead.
//!
//! # Implementation
//!
//! This crate starts no threads and uses no `unsafe`.
//!
//! # Examples
//!
//! ```
//! use std::task::{Context, Poll, Waker};
//! use std::time::Duration;
//! use curio_time::{sleep, TimeDriver, VirtualClock};
//!
//! let driver = TimeDriver::new(Box::new(VirtualClock::new()));
//! let _enter = driver.enter();
//! let start = driver.now();
//! let mut nap = Box::pin(sleep(Duration::from_secs(5)));
//! let mut cx = Context::from_waker(Waker::noop());
//! assert!(nap.as_mut().poll(&mut cx).is_pending());
//! // Nothing else can run: jump to the deadline, as the kernel does.
//! driver.jump_to_next();
//! driver.fire();
//! assert!(nap.as_mut().poll(&mut cx).is_ready());
//! assert_eq!(driver.now() - start, Duration::from_secs(5));
//! ```
#![forbid(unsafe_code)]

mod queue;

pub use queue::{TimerKey, TimerQueue};

use std::panic::Location;

use curio_core::WaitKind;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A source of the current time, read by the kernel's time driver.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
    /// Whether the kernel may move this clock forward by itself when every task is blocked.
    fn is_virtual(&self) -> bool {
        false
    }
    /// Moves a virtual clock forward to `t` (never backward); a real clock ignores it.
    fn jump_to(&self, t: Instant) {
        let _ = t;
    }
}

/// The operating system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: by the kernel when every task is blocked, or by
/// [`advance`].
#[derive(Debug)]
pub struct VirtualClock {
    now: Cell<Instant>,
}

impl VirtualClock {
    /// A virtual clock that starts at the real clock's current time.
    pub fn new() -> VirtualClock {
        VirtualClock {
            now: Cell::new(Instant::now()),
        }
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }
    fn is_virtual(&self) -> bool {
        true
    }
    fn jump_to(&self, t: Instant) {
        if t > self.now.get() {
            self.now.set(t);
        }
    }
}

static NEXT_DRIVER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Rc<TimeDriver>>> = const { RefCell::new(None) };
}

/// A clock plus a timer queue: the time half of a kernel.
pub struct TimeDriver {
    id: u64,
    clock: Box<dyn Clock>,
    queue: RefCell<TimerQueue>,
    seq: Cell<u64>,
    wake_buf: RefCell<Vec<Waker>>,
}

impl fmt::Debug for TimeDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeDriver")
            .field("id", &self.id)
            .field("virtual", &self.clock.is_virtual())
            .field("timers", &self.queue.borrow().len())
            .finish()
    }
}

impl TimeDriver {
    /// Creates a driver reading `clock`.
    pub fn new(clock: Box<dyn Clock>) -> Rc<TimeDriver> {
        Rc::new(TimeDriver {
            id: NEXT_DRIVER_ID.fetch_add(1, Ordering::Relaxed),
            clock,
            queue: RefCell::new(TimerQueue::new()),
            seq: Cell::new(0),
            wake_buf: RefCell::new(Vec::new()),
        })
    }

    /// Makes this the current driver of this thread until the guard is dropped.
    pub fn enter(self: &Rc<Self>) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Some(self.clone())));
        EnterGuard { prev }
    }

    /// The current time of this driver's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether the clock is virtual.
    pub fn is_virtual(&self) -> bool {
        self.clock.is_virtual()
    }

    /// Number of live timers.
    pub fn timer_count(&self) -> usize {
        self.queue.borrow().len()
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.borrow_mut().next_deadline()
    }

    /// How long the kernel may park before the next deadline: `None` without timers.
    pub fn park_timeout(&self) -> Option<Duration> {
        let d = self.next_deadline()?;
        Some(d.saturating_duration_since(self.now()))
    }

    /// Moves a virtual clock to the next deadline. Returns whether it moved.
    pub fn jump_to_next(&self) -> bool {
        if !self.clock.is_virtual() {
            return false;
        }
        match self.next_deadline() {
            Some(d) if d > self.now() => {
                self.clock.jump_to(d);
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Moves a virtual clock forward by `d`; a real clock ignores it.
    pub fn advance(&self, d: Duration) {
        if let Some(t) = self.now().checked_add(d) {
            self.clock.jump_to(t);
        }
    }

    /// A sequence number that orders timers created at the same deadline.
    pub fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s + 1);
        s
    }

    /// Registers a timer.
    pub fn register(&self, deadline: Instant, seq: u64, waker: Waker) -> TimerKey {
        self.queue.borrow_mut().insert(deadline, seq, waker)
    }

    /// Whether a registered timer has not fired or been cancelled yet.
    pub fn is_pending(&self, key: TimerKey) -> bool {
        self.queue.borrow().is_pending(key)
    }

    /// Updates the waker of a pending timer.
    pub fn set_waker(&self, key: TimerKey, waker: &Waker) {
        self.queue.borrow_mut().set_waker(key, waker);
    }

    /// Cancels a timer in `O(1)`; returns whether it was pending.
    pub fn cancel(&self, key: TimerKey) -> bool {
        self.queue.borrow_mut().cancel(key)
    }

    /// Fires every expired timer, in deadline order. Returns how many fired.
    pub fn fire(&self) -> usize {
        let now = self.now();
        let mut buf = std::mem::take(&mut *self.wake_buf.borrow_mut());
        let n = self.queue.borrow_mut().expire(now, |w| buf.push(w));
        // Wakers run with the queue released, so a woken future may touch timers.
        for w in buf.drain(..) {
            w.wake();
        }
        *self.wake_buf.borrow_mut() = buf;
        n
    }

    /// Runs `f` with the current thread's driver.
    pub fn with_current<R>(f: impl FnOnce(Option<&Rc<TimeDriver>>) -> R) -> R {
        CURRENT.with(|c| f(c.borrow().as_ref()))
    }
}

/// Restores the previous current driver when dropped; see [`TimeDriver::enter`].
#[must_use = "the driver is current only while the guard lives"]
#[derive(Debug)]
pub struct EnterGuard {
    prev: Option<Rc<TimeDriver>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// The running kernel's clock; outside a kernel, the real clock.
///
/// Reading it has no scheduling effect (Curio's `clock()`).
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_time::clock; }
/// let t = curio::clock();
/// assert!(curio::clock() >= t);
/// ```
pub fn clock() -> Instant {
    CURRENT.with(|c| match &*c.borrow() {
        Some(d) => d.now(),
        None => Instant::now(),
    })
}

/// Moves the running kernel's virtual clock forward by `d`, firing nothing by itself: timers that
/// are now expired fire at the start of the kernel's next cycle.
///
/// Ports of Curio tests that block the whole loop with `time.sleep` use it. With the real clock it
/// does nothing.
///
/// # Panics
///
/// Outside a kernel.
pub fn advance(d: Duration) {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .expect("curio::time::advance called outside a curio kernel")
            .advance(d)
    })
}

/// Waits until `d` has passed on the kernel's clock. `sleep(Duration::ZERO)` is [`yield_now`].
///
/// The deadline counts from the moment `sleep` is called (or, for a sleep created before its
/// kernel started, from its first poll).
///
/// # Panics
///
/// When polled outside a curio kernel.
///
/// # Cancel safety
///
/// Dropping the future cancels its timer in `O(1)`; nothing else happens.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_time::sleep; }
/// # use std::time::Duration;
/// # let driver = curio_time::TimeDriver::new(Box::new(curio_time::RealClock));
/// # let _g = driver.enter();
/// let nap = curio::sleep(Duration::from_millis(10));
/// # drop(nap);
/// ```
#[track_caller]
pub fn sleep(d: Duration) -> Sleep {
    // Read here: a closure does not pass `#[track_caller]` on.
    let site = Location::caller();
    if d.is_zero() {
        return Sleep {
            state: SleepState::Yield(false),
            site,
        };
    }
    let state = CURRENT.with(|c| match c.borrow().as_ref() {
        Some(drv) => after_state(drv, d),
        // Created before its kernel runs (`curio::run(sleep(d))`): the deadline counts from the
        // first poll.
        None => SleepState::Unstarted(d),
    });
    Sleep { state, site }
}

/// Waits until the kernel's clock reaches `deadline`.
///
/// # Panics
///
/// When called outside a curio kernel.
///
/// # Cancel safety
///
/// Dropping the future cancels its timer; nothing else happens.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    let site = Location::caller();
    let state = CURRENT.with(|c| {
        let c = c.borrow();
        let drv = c
            .as_ref()
            .expect("curio::sleep_until called outside a curio kernel");
        armed_state(drv, deadline)
    });
    Sleep { state, site }
}

/// The future of [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Sleep {
    state: SleepState,
    /// The call of `sleep`, `sleep_until` or `yield_now` that made it, reported as the task's
    /// wait site while it waits.
    site: &'static Location<'static>,
}

#[derive(Debug)]
enum SleepState {
    Unstarted(Duration),
    /// A duration past the clock's range: never ends.
    Forever,
    Yield(bool),
    Timer {
        driver: u64,
        deadline: Instant,
        seq: u64,
        key: Option<TimerKey>,
    },
    Done,
}

impl Sleep {
    /// A sleep of `d` from now; past the clock's range it never ends.
    /// The deadline, or `None` for a zero-length sleep (a yield).
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            SleepState::Timer { deadline, .. } => Some(deadline),
            _ => None,
        }
    }
}

fn after_state(drv: &TimeDriver, d: Duration) -> SleepState {
    match drv.now().checked_add(d) {
        Some(t) => armed_state(drv, t),
        None => SleepState::Forever,
    }
}

fn armed_state(drv: &TimeDriver, deadline: Instant) -> SleepState {
    SleepState::Timer {
        driver: drv.id,
        deadline,
        seq: drv.next_seq(),
        key: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let SleepState::Unstarted(d) = self.state {
            self.state = CURRENT.with(|c| {
                let c = c.borrow();
                let drv = c
                    .as_ref()
                    .expect("curio::sleep polled outside a curio kernel");
                after_state(drv, d)
            });
        }
        match &mut self.state {
            SleepState::Yield(yielded) => {
                if *yielded {
                    self.state = SleepState::Done;
                    Poll::Ready(())
                } else {
                    *yielded = true;
                    cx.waker().wake_by_ref();
                    curio_core::waiting(WaitKind::Yield, Some(self.site));
                    Poll::Pending
                }
            }
            SleepState::Timer {
                driver,
                deadline,
                seq,
                key,
            } => {
                let done = CURRENT.with(|c| {
                    let c = c.borrow();
                    let drv = match c.as_ref() {
                        Some(d) if d.id == *driver => d,
                        _ => panic!("curio::sleep polled outside the kernel that created it"),
                    };
                    match key {
                        Some(k) if drv.is_pending(*k) => {
                            drv.set_waker(*k, cx.waker());
                            false
                        }
                        Some(_) => true,
                        None if *deadline <= drv.now() => true,
                        None => {
                            *key = Some(drv.register(*deadline, *seq, cx.waker().clone()));
                            false
                        }
                    }
                });
                if done {
                    self.state = SleepState::Done;
                    Poll::Ready(())
                } else {
                    curio_core::waiting(WaitKind::Sleep, Some(self.site));
                    Poll::Pending
                }
            }
            SleepState::Forever => {
                curio_core::waiting(WaitKind::Sleep, Some(self.site));
                Poll::Pending
            }
            SleepState::Done | SleepState::Unstarted(_) => Poll::Ready(()),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepState::Timer {
            driver,
            key: Some(key),
            ..
        } = self.state
        {
            // Outside the owning kernel there is nothing to cancel safely; the timer then fires
            // into a waker that no longer matters.
            let _ = CURRENT.try_with(|c| {
                if let Ok(c) = c.try_borrow()
                    && let Some(d) = c.as_ref()
                    && d.id == driver
                {
                    d.cancel(key);
                }
            });
        }
    }
}

/// Moves the current task to the back of the kernel's ready queue (Curio's `sleep(0)`).
///
/// # Cancel safety
///
/// Cancel safe: it holds no state.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_time::yield_now; }
/// # async fn f() {
/// curio::yield_now().await;
/// # }
/// ```
#[track_caller]
pub fn yield_now() -> Sleep {
    Sleep {
        state: SleepState::Yield(false),
        site: Location::caller(),
    }
}

#[cfg(test)]
mod proptests;

/// The number of cases a property test runs: `PROPTEST_CASES` if set (a longer run), else
/// `default`.
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    struct Record(Arc<Mutex<Vec<usize>>>, usize);
    impl Wake for Record {
        fn wake(self: Arc<Self>) {
            self.0.lock().unwrap().push(self.1);
        }
    }

    #[test]
    fn equal_deadlines_fire_in_creation_order() {
        let driver = TimeDriver::new(Box::new(VirtualClock::new()));
        let _g = driver.enter();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sleeps: Vec<_> = (0..4)
            .map(|_| Box::pin(sleep_until(driver.now() + Duration::from_secs(1))))
            .collect();
        // Register them in reverse order: creation order must still win.
        for (i, s) in sleeps.iter_mut().enumerate().rev() {
            let w = Waker::from(Arc::new(Record(log.clone(), i)));
            assert!(s.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        }
        assert!(driver.jump_to_next());
        assert_eq!(driver.fire(), 4);
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(driver.timer_count(), 0);
    }

    #[test]
    fn dropped_sleep_leaves_no_timer() {
        let driver = TimeDriver::new(Box::new(VirtualClock::new()));
        let _g = driver.enter();
        let mut s = Box::pin(sleep(Duration::from_secs(3)));
        assert!(
            s.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        assert_eq!(driver.timer_count(), 1);
        drop(s);
        assert_eq!(driver.timer_count(), 0);
    }

    #[test]
    fn expired_sleep_registers_nothing() {
        let driver = TimeDriver::new(Box::new(VirtualClock::new()));
        let _g = driver.enter();
        let mut s = Box::pin(sleep(Duration::from_secs(3)));
        driver.advance(Duration::from_secs(3));
        assert!(
            s.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        );
        assert_eq!(driver.timer_count(), 0);
    }

    #[test]
    fn zero_sleep_yields_once() {
        let driver = TimeDriver::new(Box::new(RealClock));
        let _g = driver.enter();
        let mut s = Box::pin(sleep(Duration::ZERO));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(s.as_mut().poll(&mut cx).is_pending());
        assert!(s.as_mut().poll(&mut cx).is_ready());
        assert_eq!(driver.timer_count(), 0);
    }

    #[test]
    fn huge_sleep_never_ends_and_never_panics() {
        let driver = TimeDriver::new(Box::new(VirtualClock::new()));
        let _g = driver.enter();
        let mut s = Box::pin(sleep(Duration::MAX));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(s.as_mut().poll(&mut cx).is_pending());
        driver.advance(Duration::MAX);
        assert!(s.as_mut().poll(&mut cx).is_pending());
        assert_eq!(driver.timer_count(), 0);
    }

    #[test]
    fn clock_outside_kernel_is_real() {
        let a = Instant::now();
        assert!(clock() >= a);
    }
}

// The README's examples are compiled and run as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
