//! What timeout scopes keep per task: their numbering, and the armed ones.

use std::cell::Cell;
use std::time::Instant;

/// A task's timeout-scope counters, in its header.
#[derive(Debug, Default)]
pub(crate) struct ScopeState {
    /// Timeout scopes created by the task so far (each takes the next number).
    pub(crate) seq: Cell<u32>,
    /// `seq` when cancellation was requested: scopes numbered below it are disarmed.
    pub(crate) cancel_seq: Cell<u32>,
    /// Timeout scopes that expired while a shield inside them was active.
    pub(crate) timed_out: Cell<u32>,
}

/// An armed timeout scope of a task, in the header's extras.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArmedScope {
    /// The scope's number.
    pub(crate) seq: u32,
    /// Its deadline.
    pub(crate) deadline: Instant,
    /// It expired and waits for an older expired scope to report first (the outermost
    /// expired scope reports).
    pub(crate) deferred: bool,
}
