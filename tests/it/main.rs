//! The facade-level suite, ported from Curio's test files with their test names.

mod cancel;
mod child;
mod echo;
mod group;
mod handle;
mod io;
mod kernel;
mod local;
mod net;
mod queue;
mod stress;
mod sync;
mod workers;

use std::future::Future;

/// Runs `fut` on a fresh kernel with a virtual clock, so timer tests take no wall time.
pub(crate) fn vrun<F: Future>(fut: F) -> F::Output {
    curio::Kernel::builder()
        .virtual_clock(true)
        .build()
        .run(fut)
}

/// An event log shared by the tasks of one test.
#[derive(Clone, Default)]
pub(crate) struct Log(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

impl Log {
    /// Appends an event.
    pub(crate) fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    /// Takes the events logged so far.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}
