//! The `tracing` feature: a span per task and waker events in the shape tokio-console's
//! subscriber recognises, so existing tracing tools can follow curio's tasks. Without the
//! feature every item here is empty and costs nothing.
//!
//! Each task gets a span named `runtime.spawn` on the target `runtime::spawn`, at TRACE level,
//! with no parent and the fields `kind`, `task.name`, `task.id`, `loc.file`, `loc.line` and
//! `loc.col`; the span is entered for each turn of the task (console's busy time). Each wake of a
//! task is an event on the target `runtime::waker` with `op = "waker.wake"` and `task.id`
//! (console's filter: `tokio=trace,runtime=trace`).

use std::panic::Location;

/// What async-task keeps beside each task: its id with the feature, nothing without.
#[cfg(feature = "tracing")]
pub(crate) type Meta = u64;
/// What async-task keeps beside each task: its id with the feature, nothing without.
#[cfg(not(feature = "tracing"))]
pub(crate) type Meta = ();

/// The metadata of task `id`.
#[cfg(feature = "tracing")]
pub(crate) fn meta(id: u64) -> Meta {
    id
}

/// The metadata of task `id`.
#[cfg(not(feature = "tracing"))]
pub(crate) fn meta(_id: u64) -> Meta {}

/// Records a wake of the task whose metadata is `m`.
#[cfg(feature = "tracing")]
pub(crate) fn wake(m: &Meta) {
    tracing::trace!(target: "runtime::waker", op = "waker.wake", task.id = *m);
}

/// Records a wake of the task whose metadata is `m`.
#[cfg(not(feature = "tracing"))]
pub(crate) fn wake(_m: &Meta) {}

/// A task's span (empty without the feature).
#[derive(Debug, Default)]
pub(crate) struct TaskSpan {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl TaskSpan {
    /// The span of a new task.
    #[cfg(feature = "tracing")]
    pub(crate) fn new(id: u64, name: &str, location: &'static Location<'static>) -> TaskSpan {
        let span = tracing::trace_span!(
            target: "runtime::spawn",
            parent: None,
            "runtime.spawn",
            kind = "task",
            task.name = name,
            task.id = id,
            loc.file = location.file(),
            loc.line = location.line(),
            loc.col = location.column(),
        );
        TaskSpan { span: Some(span) }
    }

    /// The span of a new task.
    #[cfg(not(feature = "tracing"))]
    pub(crate) fn new(_id: u64, _name: &str, _location: &'static Location<'static>) -> TaskSpan {
        TaskSpan {}
    }

    /// Enters the span for one turn of the task.
    #[cfg(feature = "tracing")]
    pub(crate) fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.span.as_ref().map(tracing::Span::enter)
    }

    /// Enters the span for one turn of the task.
    #[cfg(not(feature = "tracing"))]
    pub(crate) fn enter(&self) {}
}
