//! `Event`: a flag tasks can wait for.

use std::panic::Location;
use std::rc::Rc;

use curio_core::WaitKind;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::waiters::{Key, WaitList};

/// A flag that tasks wait for (Curio's `Event`). Kernel-local: `!Send`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn, yield_now}; pub mod sync { pub use curio_sync::Event; } }
/// use std::rc::Rc;
/// use curio::sync::Event;
///
/// curio::run(async {
///     let evt = Rc::new(Event::new());
///     let e = evt.clone();
///     let waiter = curio::spawn(async move { e.wait().await; "woken" });
///     curio::yield_now().await;
///     evt.set();
///     assert_eq!(waiter.join().await.unwrap(), "woken");
/// });
/// ```
#[derive(Default, Clone)]
pub struct Event {
    st: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    set: bool,
    waiters: WaitList<()>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// An event that is not set.
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.st.borrow().set
    }

    /// Sets the event and wakes every waiter, in the order they started waiting. Never switches
    /// tasks.
    pub fn set(&self) {
        let mut st = self.st.borrow_mut();
        st.set = true;
        st.waiters.notify_all();
    }

    /// Clears the event.
    pub fn clear(&self) {
        self.st.borrow_mut().set = false;
    }

    /// Waits until the event is set (returns at once if it is).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn wait(&self) -> EventWait<'_> {
        self.wait_as(WaitKind::Event, Location::caller())
    }

    /// [`wait`](Self::wait), reported as a wait of `kind` at `site` (a `Promise::get`).
    pub(crate) fn wait_as(
        &self,
        kind: WaitKind,
        site: &'static Location<'static>,
    ) -> EventWait<'_> {
        EventWait {
            event: self,
            key: None,
            kind,
            site,
        }
    }
}

/// The future of [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct EventWait<'a> {
    event: &'a Event,
    key: Option<Key>,
    /// What the task waits for, and the call it waits in, reported as its wait site.
    kind: WaitKind,
    site: &'static Location<'static>,
}

impl Future for EventWait<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.event.st.borrow_mut();
        if this.key.is_none() && st.set {
            return Poll::Ready(());
        }
        // A waiter woken by `set` returns even if the event was cleared since.
        let out = st.waiters.poll_wait(&mut this.key, cx, || ()).map(drop);
        if out.is_pending() {
            curio_core::waiting(this.kind, Some(this.site));
        }
        out
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.event.st.borrow_mut().waiters.remove(k);
        }
    }
}
