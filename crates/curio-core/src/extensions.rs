//! `Extensions`: a typed map of settings that crates above the kernel attach to a kernel.

use std::any::{Any, TypeId};
use std::fmt;

/// Values keyed by their type, at most one of each: the settings that crates above the kernel
/// (the worker pool, the monitor) keep for a kernel, given to the kernel's builder and read back
/// by the crate that owns the type, so the kernel never needs to know them.
///
/// # Examples
///
/// ```
/// use curio_core::Extensions;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct PoolLimits { max_threads: usize }
///
/// let mut ext = Extensions::default();
/// assert_eq!(ext.get::<PoolLimits>(), None);
/// ext.insert(PoolLimits { max_threads: 4 });
/// ext.get_or_default_mut::<Vec<u8>>().push(1);
/// assert_eq!(ext.get::<PoolLimits>(), Some(&PoolLimits { max_threads: 4 }));
/// assert_eq!(ext.get::<Vec<u8>>(), Some(&vec![1]));
/// ```
#[derive(Default)]
pub struct Extensions {
    entries: Vec<(TypeId, Box<dyn CloneAny>)>,
}

/// What an extension value must be: `Any` and `Clone` (a builder is cloned with its settings).
trait CloneAny: Any {
    fn clone_box(&self) -> Box<dyn CloneAny>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone> CloneAny for T {
    fn clone_box(&self) -> Box<dyn CloneAny> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Clone for Extensions {
    fn clone(&self) -> Self {
        Extensions {
            entries: self
                .entries
                .iter()
                .map(|(id, v)| (*id, (**v).clone_box()))
                .collect(),
        }
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.entries.len())
            .finish()
    }
}

impl Extensions {
    /// Sets the value of type `T`, replacing an earlier one.
    pub fn insert<T: Any + Clone>(&mut self, value: T) {
        match self.position::<T>() {
            Some(i) => self.entries[i].1 = Box::new(value),
            None => self.entries.push((TypeId::of::<T>(), Box::new(value))),
        }
    }

    /// The value of type `T`, if one was set.
    pub fn get<T: Any + Clone>(&self) -> Option<&T> {
        let i = self.position::<T>()?;
        (*self.entries[i].1).as_any().downcast_ref()
    }

    /// The value of type `T`, set to `T::default()` first if there was none.
    pub fn get_or_default_mut<T: Any + Clone + Default>(&mut self) -> &mut T {
        let i = match self.position::<T>() {
            Some(i) => i,
            None => {
                self.entries
                    .push((TypeId::of::<T>(), Box::new(T::default())));
                self.entries.len() - 1
            }
        };
        (*self.entries[i].1)
            .as_any_mut()
            .downcast_mut()
            .expect("entries are keyed by their TypeId")
    }

    fn position<T: Any>(&self) -> Option<usize> {
        self.entries
            .iter()
            .position(|(id, _)| *id == TypeId::of::<T>())
    }
}
