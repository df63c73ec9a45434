//! Unix signals as events a task can wait for: [`SignalQueue`], [`SignalEvent`] and [`ctrl_c`].
//!
//! Handlers are installed through `signal-hook-registry`, so handlers of other libraries keep
//! working: a handler installed before curio's is called after it for every signal.
//! The handler is async-signal-safe: it sets one pending bit per (kernel, signal) and writes a
//! pre-opened eventfd that wakes the kernel; nothing else, so no signal kind is lost in a burst
//! (a data-carrying pipe would drop signals when full: curio#118, signal-hook#36).
//! Repeats of one signal that arrive before a task takes them coalesce into one: counts are not
//! promised.
//!
//! Curio's handler stays installed for the life of the process, since signal-hook-registry
//! cannot restore an earlier disposition. Once the last [`SignalQueue`] or [`SignalEvent`] for a
//! signal is dropped, the handler acts as that earlier disposition would: it calls a handler that
//! was installed before (which signal-hook-registry always does), ignores the signal if it was
//! ignored, or performs the default action (by resetting to `SIG_DFL` and raising it again), so
//! the program behaves as before the first `SignalQueue`.
//!
//! Per kernel, an extension holds the kernel's slot of the handler's table (`sys.rs`) and its
//! listeners; a daemon task, `curio-signals`, waits on the slot's eventfd and hands the pending
//! bits to the listeners.
//!
//! # Examples
//!
//! ```
//! # mod curio { pub use curio_kernel::run; pub mod signal { pub use curio_process::signal::*; } }
//! use curio::signal::{SIGUSR1, SignalQueue};
//!
//! curio::run(async {
//!     let q = SignalQueue::new(&[SIGUSR1])?;
//!     rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR1)?;
//!     assert_eq!(q.get().await, SIGUSR1);
//!     std::io::Result::Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use curio_reactor::Async;

use crate::sys::{self, SlotGuard};

/// A signal number, as in C and in Curio (`SIGINT` is 2).
pub type Signal = i32;

pub use libc::{
    SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGUSR1,
    SIGUSR2, SIGWINCH,
};

/// The per-kernel state: the kernel's slot in the handler's table, and its listeners.
struct KernelSignals {
    slot: SlotGuard,
    listeners: RefCell<Vec<Weak<Listener>>>,
}

impl KernelSignals {
    /// The signals some listener of this kernel wants.
    fn update_mask(&self) {
        let mask = self
            .listeners
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .fold(0, |m, l| m | l.mask);
        self.slot.set_mask(mask);
    }

    /// Hands the signals in `bits` to the listeners that want them.
    fn dispatch(&self, bits: u64) {
        let listeners: Vec<Rc<Listener>> = {
            let mut ls = self.listeners.borrow_mut();
            ls.retain(|l| l.strong_count() > 0);
            ls.iter().filter_map(Weak::upgrade).collect()
        };
        for l in listeners {
            let hit = bits & l.mask;
            if hit != 0 {
                l.pending.set(l.pending.get() | hit);
                for w in l.wakers.take() {
                    w.wake();
                }
            }
        }
    }
}

/// The kernel extension: its [`KernelSignals`], created with the first listener.
#[derive(Default)]
struct Extension(RefCell<Option<Rc<KernelSignals>>>);

/// The running kernel's signal state, set up (slot, dispatcher task) on first use.
fn kernel_signals() -> io::Result<Rc<KernelSignals>> {
    if curio_kernel::try_handle().is_none() {
        return Err(io::Error::other(
            "curio signal listeners need a running curio kernel",
        ));
    }
    let ext = curio_kernel::extension(Extension::default);
    if let Some(k) = ext.0.borrow().as_ref() {
        return Ok(k.clone());
    }
    let k = Rc::new(KernelSignals {
        slot: SlotGuard::acquire()?,
        listeners: RefCell::new(Vec::new()),
    });
    *ext.0.borrow_mut() = Some(k.clone());
    let weak = Rc::downgrade(&k);
    // Detached: it ends with the kernel's shutdown.
    drop(
        curio_kernel::Builder::new()
            .name("curio-signals")
            .daemon()
            .spawn(dispatcher(weak, k.slot.fd())),
    );
    Ok(k)
}

/// The kernel's dispatcher task: waits for the slot's eventfd, then hands the pending signals
/// to the listeners.
async fn dispatcher(k: Weak<KernelSignals>, fd: std::os::fd::BorrowedFd<'static>) {
    let fd = Async::new(fd);
    let mut buf = [0u8; 8];
    loop {
        if fd
            .read_with(|fd| Ok(rustix::io::read(fd, &mut buf)?))
            .await
            .is_err()
        {
            return;
        }
        let Some(k) = k.upgrade() else { return };
        let bits = k.slot.take_pending();
        k.dispatch(bits);
    }
}

/// One `SignalQueue` or `SignalEvent`: the signals it wants and those that arrived.
struct Listener {
    mask: u64,
    pending: Cell<u64>,
    /// Every task waiting on it: `get` and `wait` take `&self`, so several tasks may wait at
    /// once, and a signal wakes them all (a `get` that finds nothing left waits again).
    wakers: Cell<Vec<Waker>>,
}

/// A registered listener; unregisters when dropped.
struct Registered {
    listener: Rc<Listener>,
    kernel: Rc<KernelSignals>,
    signals: Vec<Signal>,
}

impl Registered {
    fn new(signals: &[Signal]) -> io::Result<Registered> {
        let mut mask = 0;
        for &s in signals {
            sys::check_signal(s)?;
            mask |= sys::bit(s);
        }
        let kernel = kernel_signals()?;
        let listener = Rc::new(Listener {
            mask,
            pending: Cell::new(0),
            wakers: Cell::new(Vec::new()),
        });
        let mut signals: Vec<Signal> = signals.to_vec();
        signals.sort_unstable();
        signals.dedup();
        let mut added = Vec::new();
        for &s in &signals {
            if let Err(e) = sys::add_user(s) {
                for &a in &added {
                    sys::remove_user(a);
                }
                return Err(e);
            }
            added.push(s);
        }
        kernel.listeners.borrow_mut().push(Rc::downgrade(&listener));
        kernel.update_mask();
        Ok(Registered {
            listener,
            kernel,
            signals,
        })
    }

    fn poll_pending(&self, cx: &Context<'_>) -> Poll<u64> {
        let p = self.listener.pending.get();
        if p != 0 {
            return Poll::Ready(p);
        }
        let mut wakers = self.listener.wakers.take();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        self.listener.wakers.set(wakers);
        Poll::Pending
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.kernel
            .listeners
            .borrow_mut()
            .retain(|l| !std::ptr::eq(l.as_ptr(), Rc::as_ptr(&self.listener)));
        self.kernel.update_mask();
        for &s in &self.signals {
            sys::remove_user(s);
        }
    }
}

/// A queue of the signals that arrived (Curio's `SignalQueue`).
///
/// Each signal kind that arrives while the queue exists is queued once; repeats of a kind that
/// nobody has taken yet coalesce, so [`get`](Self::get) returns each pending kind once, lowest
/// number first. A signal that arrives while no queue or event wants it behaves as it did
/// before curio (see the [module docs](self)).
///
/// A queue belongs to the kernel it was created in; several queues (in one kernel or several)
/// all see every signal they want.
pub struct SignalQueue {
    reg: Registered,
}

impl fmt::Debug for SignalQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalQueue")
            .field("signals", &self.reg.signals)
            .finish()
    }
}

impl SignalQueue {
    /// Starts listening for `signals`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that is not a signal or a signal that cannot be caught
    /// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGILL`, `SIGFPE`); an error outside a curio kernel,
    /// or when more than 64 kernels listen at once.
    pub fn new(signals: &[Signal]) -> io::Result<SignalQueue> {
        Ok(SignalQueue {
            reg: Registered::new(signals)?,
        })
    }

    /// Takes a pending signal, or `None` if none has arrived.
    pub fn try_get(&self) -> Option<Signal> {
        let p = self.reg.listener.pending.get();
        if p == 0 {
            return None;
        }
        let lowest = p & p.wrapping_neg();
        self.reg.listener.pending.set(p & !lowest);
        Some(lowest.trailing_zeros() as Signal + 1)
    }

    /// Waits for a signal and returns its number.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a signal is taken only by the poll that returns it.
    pub fn get(&self) -> SignalGet<'_> {
        SignalGet { q: self }
    }
}

/// The future of [`SignalQueue::get`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct SignalGet<'a> {
    q: &'a SignalQueue,
}

impl Future for SignalGet<'_> {
    type Output = Signal;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Signal> {
        match self.q.reg.poll_pending(cx) {
            Poll::Ready(_) => Poll::Ready(self.q.try_get().expect("a signal is pending")),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An event that is set when one of its signals arrives (Curio's `SignalEvent`), and stays set
/// until [`clear`](Self::clear)ed.
pub struct SignalEvent {
    reg: Registered,
}

impl fmt::Debug for SignalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalEvent")
            .field("signals", &self.reg.signals)
            .field("set", &self.is_set())
            .finish()
    }
}

impl SignalEvent {
    /// Starts listening for `signals`; the event starts clear.
    ///
    /// # Errors
    ///
    /// As [`SignalQueue::new`].
    pub fn new(signals: &[Signal]) -> io::Result<SignalEvent> {
        Ok(SignalEvent {
            reg: Registered::new(signals)?,
        })
    }

    /// Whether one of the signals arrived since the event was created or last cleared.
    pub fn is_set(&self) -> bool {
        self.reg.listener.pending.get() != 0
    }

    /// Clears the event.
    pub fn clear(&self) {
        self.reg.listener.pending.set(0);
    }

    /// Waits until the event is set (at once if it is).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: waiting does not clear the event.
    pub fn wait(&self) -> SignalWait<'_> {
        SignalWait { ev: self }
    }
}

/// The future of [`SignalEvent::wait`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct SignalWait<'a> {
    ev: &'a SignalEvent,
}

impl Future for SignalWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.ev.reg.poll_pending(cx).map(|_| ())
    }
}

/// Waits for `SIGINT` (Ctrl-C).
///
/// The handler is installed at the first poll; a `SIGINT` that arrives before it acts as it
/// would without curio.
///
/// # Errors
///
/// As [`SignalQueue::new`].
///
/// # Cancel safety
///
/// Cancel safe; a `SIGINT` that arrives after the future is dropped (and with no other listener)
/// acts as it would without curio.
pub async fn ctrl_c() -> io::Result<()> {
    let q = SignalQueue::new(&[SIGINT])?;
    q.get().await;
    Ok(())
}
