//! What cancellation keeps per task: the request and the shield depth.

use std::cell::Cell;

/// The bit of [`CancelState`]'s word that says cancellation was requested.
const REQUESTED: u32 = 1 << 31;

/// A task's cancellation state, in its header: one word, whose top bit says cancellation was
/// requested (one-shot; Curio's `cancelled`) and whose other bits count the task's active
/// shields (`disable_cancellation`), nested. One word rather than a flag and a counter keeps the
/// header in a smaller allocation.
#[derive(Debug, Default)]
pub(crate) struct CancelState(Cell<u32>);

impl CancelState {
    /// Whether cancellation was requested.
    pub(crate) fn requested(&self) -> bool {
        self.0.get() & REQUESTED != 0
    }

    /// Records the request (one-shot).
    pub(crate) fn request(&self) {
        self.0.set(self.0.get() | REQUESTED);
    }

    /// The number of active shields.
    pub(crate) fn shields(&self) -> u32 {
        self.0.get() & !REQUESTED
    }

    /// One shield more.
    ///
    /// # Panics
    ///
    /// With 2^31 - 1 shields already active (nesting that deep cannot happen in practice).
    pub(crate) fn enter_shield(&self) {
        assert!(self.shields() < !REQUESTED, "too many nested shields");
        self.0.set(self.0.get() + 1);
    }

    /// One shield less (none below zero).
    pub(crate) fn exit_shield(&self) {
        if self.shields() > 0 {
            self.0.set(self.0.get() - 1);
        }
    }

    /// Whether cancellation is due now: requested, and no shield active.
    pub(crate) fn due(&self) -> bool {
        self.0.get() == REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::CancelState;

    #[test]
    fn the_request_and_the_shields_share_a_word_without_mixing() {
        let c = CancelState::default();
        assert!(!c.requested() && c.shields() == 0 && !c.due());
        c.enter_shield();
        c.enter_shield();
        c.request();
        assert!(c.requested() && c.shields() == 2 && !c.due());
        c.exit_shield();
        c.exit_shield();
        c.exit_shield();
        assert!(c.requested() && c.shields() == 0 && c.due());
    }
}
