//! `Promise`: a value set once, awaited by any number of tasks.

use curio_core::WaitKind;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use crate::error::AlreadySet;
use crate::event::Event;

/// A value that is set once and read by any number of tasks (Curio's `Result`).
/// Kernel-local: `!Send`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub mod sync { pub use curio_sync::Promise; } }
/// use std::rc::Rc;
/// use curio::sync::Promise;
///
/// curio::run(async {
///     let p = Rc::new(Promise::new());
///     let p2 = p.clone();
///     let reader = curio::spawn(async move { p2.get().await });
///     p.set(42).unwrap();
///     assert_eq!(p.set(43).unwrap_err().0, 43);
///     assert_eq!(reader.join().await.unwrap(), 42);
/// });
/// ```
pub struct Promise<T> {
    value: Rc<RefCell<Option<T>>>,
    ready: Event,
}

impl<T> Clone for Promise<T> {
    fn clone(&self) -> Self {
        Promise {
            value: self.value.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T> Default for Promise<T> {
    fn default() -> Self {
        Promise {
            value: Rc::new(RefCell::new(None)),
            ready: Event::new(),
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("set", &self.is_set())
            .finish()
    }
}

impl<T> Promise<T> {
    /// A promise with no value yet.
    pub fn new() -> Promise<T> {
        Promise::default()
    }

    /// Whether the value is set.
    pub fn is_set(&self) -> bool {
        self.value.borrow().is_some()
    }

    /// Sets the value and wakes every reader.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`] with `value` if the promise was set before.
    pub fn set(&self, value: T) -> Result<(), AlreadySet<T>> {
        let mut v = self.value.borrow_mut();
        if v.is_some() {
            return Err(AlreadySet(value));
        }
        *v = Some(value);
        drop(v);
        self.ready.set();
        Ok(())
    }
}

impl<T: Clone> Promise<T> {
    /// Waits for the value and returns a clone of it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = T> {
        // The event's wait reports itself as this promise's, at the caller's line.
        let ready = self.ready.wait_as(WaitKind::Promise, Location::caller());
        async move {
            ready.await;
            self.value
                .borrow()
                .clone()
                .expect("a promise's event is set only with its value")
        }
    }

    /// A clone of the value, if set.
    pub fn try_get(&self) -> Option<T> {
        self.value.borrow().clone()
    }
}
