//! Task-local storage: values per task, inherited by a spawned child as a clone.
//!
//! A `TaskLocal<T>`, declared with `task_local! { static NAME: T; }`, is a key: the address of its
//! `static`, which a non-zero size makes unique.
//! The values live in the task's header, in its extras, as `(key, Box<dyn LocalValue>)` pairs
//! (`Locals`, in `local/value.rs`); `set`, `get` (a clone) and `take` work on the running task's
//! value and return `Err(NotInTask)` outside a task.
//! A task spawned by another starts with a clone of each of its parent's values (Curio's
//! inheritance), so `T: Clone`; a task without a parent (the main task, a remote spawn) starts with
//! none.
//! The values are dropped when the task terminates, however it terminates, not when its last handle
//! goes; a panic in their `Drop` is contained and reported (`Header::drop_contained`).

use std::fmt;
use std::marker::PhantomData;

pub(crate) mod value;

use crate::cancel::NotInTask;
use crate::core::current_header;

/// A key for a per-task value (Curio's `Local`); declare one with [`task_local!`](crate::task_local).
///
/// Each task has its own value, unset at first; a task spawned by another starts with a clone of
/// its parent's values. Values are dropped when their task terminates.
pub struct TaskLocal<T> {
    // A non-zero size gives every static its own address, which is the key.
    _unique: u8,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TaskLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskLocal")
    }
}

impl<T> TaskLocal<T> {
    /// A new key; use it as a `static`.
    #[allow(
        clippy::new_without_default,
        reason = "a key only makes sense as a static, built by a const fn"
    )]
    pub const fn new() -> TaskLocal<T> {
        TaskLocal {
            _unique: 0,
            _marker: PhantomData,
        }
    }
}

impl<T: Clone + 'static> TaskLocal<T> {
    fn key(&'static self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Sets the running task's value; returns the previous one.
    ///
    /// # Errors
    ///
    /// [`NotInTask`] outside a curio task.
    pub fn set(&'static self, value: T) -> Result<Option<T>, NotInTask> {
        let old = self.take()?;
        let h = current_header().ok_or(NotInTask)?;
        h.ext_mut().locals.0.push((self.key(), Box::new(value)));
        Ok(old)
    }

    /// A clone of the running task's value, if set.
    ///
    /// # Errors
    ///
    /// [`NotInTask`] outside a curio task.
    pub fn get(&'static self) -> Result<Option<T>, NotInTask> {
        let h = current_header().ok_or(NotInTask)?;
        Ok(h.with_ext(|e| {
            e.locals
                .0
                .iter()
                .find(|(k, _)| *k == self.key())
                .and_then(|(_, v)| (**v).as_any().downcast_ref::<T>().cloned())
        })
        .flatten())
    }

    /// Removes and returns the running task's value.
    ///
    /// # Errors
    ///
    /// [`NotInTask`] outside a curio task.
    pub fn take(&'static self) -> Result<Option<T>, NotInTask> {
        let h = current_header().ok_or(NotInTask)?;
        let mut ext = h.ext.borrow_mut();
        let Some(locals) = ext.as_mut().map(|e| &mut e.locals.0) else {
            return Ok(None);
        };
        let Some(pos) = locals.iter().position(|(k, _)| *k == self.key()) else {
            return Ok(None);
        };
        let (_, v) = locals.swap_remove(pos);
        drop(ext);
        Ok(v.into_any().downcast::<T>().ok().map(|b| *b))
    }
}

/// Declares task-local keys: `task_local! { static REQUEST_ID: u64; }`.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn, task_local}; }
/// curio::task_local! {
///     static USER: String;
/// }
///
/// curio::run(async {
///     USER.set("ann".to_string()).unwrap();
///     let child = curio::spawn(async {
///         let inherited = USER.get().unwrap();
///         USER.set("bob".to_string()).unwrap();
///         inherited
///     });
///     assert_eq!(child.join().await.unwrap().as_deref(), Some("ann"));
///     // The child's change stayed in the child.
///     assert_eq!(USER.get().unwrap().as_deref(), Some("ann"));
/// });
/// assert!(USER.get().is_err(), "outside a task");
/// ```
#[macro_export]
macro_rules! task_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $ty:ty;)+) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::TaskLocal<$ty> = $crate::TaskLocal::new();
        )+
    };
}
