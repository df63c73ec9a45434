//! The facade-level suite, ported from Curio's test files with their test names.

mod cancel;
mod child;
mod defects;
mod echo;
mod faults;
mod group;
mod handle;
mod io;
mod kernel;
mod local;
mod macros;
mod multicore;
mod net;
mod process;
mod queue;
mod shutdown;
mod storm;
mod storm_universal;
mod stress;
mod sync;
mod usability;
mod workers;

use std::future::Future;
use std::time::Duration;

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

/// `s` seconds (Curio's tests count in fractional seconds).
pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The longest any cross-thread wait may take before a test fails instead of hanging.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `fut` for at most [`LIMIT`] of the kernel's clock.
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match curio::timeout_after(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no progress in {LIMIT:?}"),
    }
}
