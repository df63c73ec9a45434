//! What task-locals keep per task: the values, clonable for inheritance.

use std::any::Any;

/// A task-local value as the header stores it: clonable for inheritance.
pub(crate) trait LocalValue: Any {
    fn clone_value(&self) -> Box<dyn LocalValue>;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Clone + 'static> LocalValue for T {
    fn clone_value(&self) -> Box<dyn LocalValue> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A task's task-local values, keyed by the address of their `TaskLocal`, in its header's
/// extras.
#[derive(Default)]
pub(crate) struct Locals(pub(crate) Vec<(usize, Box<dyn LocalValue>)>);

impl Locals {
    /// Clones of every value, for a child task (Curio's inheritance).
    pub(crate) fn inherit(&self) -> Locals {
        Locals(
            self.0
                .iter()
                .map(|(k, v)| (*k, (**v).clone_value()))
                .collect(),
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
