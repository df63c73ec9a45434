//! What cancellation keeps per task: the request and the shield depth.

use std::cell::Cell;

/// A task's cancellation state, in its header.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    /// Cancellation was requested (one-shot; Curio's `cancelled`).
    pub(crate) requested: Cell<bool>,
    /// Active shields (`disable_cancellation`) of the task, nested.
    pub(crate) shield: Cell<u32>,
}

impl CancelState {
    /// Whether cancellation is due now: requested, and no shield active.
    pub(crate) fn due(&self) -> bool {
        self.requested.get() && self.shield.get() == 0
    }
}
