//! `TaskError`: why a task produced no output.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

use crate::id::TaskId;

/// The message of a panic payload (`&str` and `String` payloads; others are unnamed).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

#[derive(Debug)]
pub(crate) enum ErrorKind {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

/// Why a task produced no output: it was cancelled, or it panicked.
pub struct TaskError {
    pub(crate) id: TaskId,
    pub(crate) name: Cow<'static, str>,
    /// Where the task was spawned, shown with its name: a default name is the future's type
    /// path, which for an `async` block is the enclosing function's.
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    pub(crate) kind: ErrorKind,
}

impl TaskError {
    pub(crate) fn cancelled(id: TaskId, name: Cow<'static, str>) -> TaskError {
        TaskError {
            id,
            name,
            spawned_at: None,
            kind: ErrorKind::Cancelled,
        }
    }

    pub(crate) fn panicked(
        id: TaskId,
        name: Cow<'static, str>,
        payload: Box<dyn Any + Send>,
    ) -> TaskError {
        TaskError {
            id,
            name,
            spawned_at: None,
            kind: ErrorKind::Panic(payload),
        }
    }

    /// Whether the task was cancelled (its future was dropped).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, ErrorKind::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, ErrorKind::Panic(_))
    }

    /// The panic payload, to resume the panic with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task did not panic (see [`try_into_panic`](Self::try_into_panic)).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("TaskError::into_panic on a task that did not panic")
    }

    /// The panic payload, or the error back if the task did not panic.
    ///
    /// # Errors
    ///
    /// `self` when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self.kind {
            ErrorKind::Panic(p) => Ok(p),
            _ => Err(self),
        }
    }

    /// A copy to report while the original stays where it is: the same task and kind, with a
    /// panic's payload replaced by its message (a `String`).
    pub(crate) fn summary(&self) -> TaskError {
        let kind = match &self.kind {
            ErrorKind::Cancelled => ErrorKind::Cancelled,
            ErrorKind::Panic(p) => ErrorKind::Panic(Box::new(panic_message(&**p).to_owned())),
        };
        TaskError {
            id: self.id,
            name: self.name.clone(),
            spawned_at: self.spawned_at,
            kind,
        }
    }

    /// The failed task's id.
    pub fn task_id(&self) -> TaskId {
        self.id
    }

    /// The failed task's name.
    pub fn task_name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("id", &self.id.as_u64())
            .field("name", &self.name)
            .field(
                "kind",
                &match &self.kind {
                    ErrorKind::Cancelled => "cancelled",
                    ErrorKind::Panic(_) => "panic",
                },
            )
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {} ({}", self.id, self.name)?;
        if let Some(at) = self.spawned_at {
            write!(f, ", spawned at {}:{}", at.file(), at.line())?;
        }
        match &self.kind {
            ErrorKind::Cancelled => f.write_str(") was cancelled"),
            ErrorKind::Panic(p) => write!(f, ") panicked: {}", panic_message(&**p)),
        }
    }
}

impl std::error::Error for TaskError {}
