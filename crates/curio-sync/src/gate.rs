//! `Gate`: permits handed off FIFO, the core of `Lock` and `Semaphore`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::waiters::{Key, WaitList};

/// Shared by every clone of the primitive that holds it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gate {
    st: Rc<RefCell<GateState>>,
}

#[derive(Debug, Default)]
struct GateState {
    permits: usize,
    waiters: WaitList<()>,
}

impl Gate {
    /// Whether `other` is a clone of this gate.
    pub(crate) fn same(&self, other: &Gate) -> bool {
        Rc::ptr_eq(&self.st, &other.st)
    }

    pub(crate) fn new(permits: usize) -> Gate {
        Gate {
            st: Rc::new(RefCell::new(GateState {
                permits,
                waiters: WaitList::default(),
            })),
        }
    }

    pub(crate) fn permits(&self) -> usize {
        self.st.borrow().permits
    }

    pub(crate) fn waiting(&self) -> usize {
        self.st.borrow().waiters.waiting()
    }

    /// Takes a permit if one is free and nobody waits for it (no barging past waiters).
    pub(crate) fn try_acquire(&self) -> bool {
        let mut st = self.st.borrow_mut();
        if st.permits > 0 && st.waiters.waiting() == 0 {
            st.permits -= 1;
            true
        } else {
            false
        }
    }

    /// Gives a permit back: straight to the first waiter if there is one (FIFO hand-off).
    pub(crate) fn release(&self) {
        let mut st = self.st.borrow_mut();
        if !st.waiters.notify_one(|_| {}) {
            st.permits += 1;
        }
    }

    pub(crate) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            gate: self,
            key: None,
        }
    }
}

/// Waits for a permit of a [`Gate`].
#[derive(Debug)]
pub(crate) struct Acquire<'a> {
    gate: &'a Gate,
    key: Option<Key>,
}

impl Future for Acquire<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.gate.st.borrow_mut();
        if this.key.is_none() && st.permits > 0 && st.waiters.waiting() == 0 {
            st.permits -= 1;
            return Poll::Ready(());
        }
        // Notified means a release handed the permit to us.
        st.waiters.poll_wait(&mut this.key, cx, || ()).map(drop)
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let notified = self
                .gate
                .st
                .borrow_mut()
                .waiters
                .remove(k)
                .is_some_and(|e| e.notified);
            if notified {
                // Cancelled after a permit was handed over: pass it on, never keep it.
                self.gate.release();
            }
        }
    }
}
