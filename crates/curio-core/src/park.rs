//! `Park` and `Unpark`: what a kernel sleeps on, and how other threads wake it.

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What a kernel sleeps on between cycles: waits for I/O readiness (if it has any), a timeout,
/// or an unpark from another thread.
///
/// `curio-reactor`'s `Reactor` is the parker a kernel uses by default. A parker without I/O
/// (the kernel's tests use one) only waits for the timeout or an unpark; I/O resources that
/// need a reactor then fail with a clear error instead of waiting for ever.
pub trait Park {
    /// Waits for at most `timeout` (`None`: until something happens; `Some(ZERO)`: only looks),
    /// wakes the tasks whose events came, and returns how many events there were. An
    /// [`unpark`](Unpark::unpark) since the last call makes it return at once.
    ///
    /// # Errors
    ///
    /// When the operating system fails the wait.
    fn park(&self, timeout: Option<Duration>) -> io::Result<usize>;

    /// A handle that ends a [`park`](Self::park) from any thread.
    fn unparker(&self) -> Unparker;

    /// Makes this parker current on the thread while the returned guard lives, so resources
    /// created meanwhile find it (the reactor registers descriptors this way). The kernel calls
    /// it when it starts running. The default does nothing.
    fn enter(&self) -> ParkEnter {
        ParkEnter::none()
    }
}

/// The guard of [`Park::enter`]: whatever the parker needs to undo when the kernel stops.
#[must_use = "the parker is current only while the guard lives"]
pub struct ParkEnter(Option<Box<dyn Any>>);

impl ParkEnter {
    /// A guard that holds `guard` until dropped.
    pub fn new(guard: impl Any) -> ParkEnter {
        ParkEnter(Some(Box::new(guard)))
    }

    /// A guard with nothing to undo.
    pub fn none() -> ParkEnter {
        ParkEnter(None)
    }
}

impl fmt::Debug for ParkEnter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkEnter")
            .field("holds", &self.0.is_some())
            .finish()
    }
}

/// Ends a [`Park::park`] from any thread.
pub trait Unpark: Send + Sync + 'static {
    /// Makes the parker's current or next `park` return at once.
    fn unpark(&self);
}

/// A cloneable, `Send + Sync` handle to an [`Unpark`].
#[derive(Clone)]
pub struct Unparker(Arc<dyn Unpark>);

impl Unparker {
    /// Wraps an unpark handle.
    pub fn new(unpark: Arc<dyn Unpark>) -> Unparker {
        Unparker(unpark)
    }

    /// Ends the parker's current or next `park`.
    pub fn unpark(&self) {
        self.0.unpark();
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unparker")
    }
}
