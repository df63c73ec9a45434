//! The cooperative budget: how many operations a task may complete in one turn.

use std::cell::Cell;

/// Operations a task may complete in one turn before an always-ready resource makes it yield.
pub const BUDGET_PER_TURN: u32 = 128;

thread_local! {
    static BUDGET: Cell<u32> = const { Cell::new(BUDGET_PER_TURN) };
}

/// Refills the cooperative budget; the kernel calls it before each task turn.
pub fn reset_budget() {
    BUDGET.with(|b| b.set(BUDGET_PER_TURN));
}

/// Takes one unit of the cooperative budget; `false` means the task should yield now (wake
/// itself and return `Pending`), so that it cannot starve the other tasks.
pub fn consume_budget() -> bool {
    BUDGET.with(|b| {
        let n = b.get();
        if n == 0 {
            false
        } else {
            b.set(n - 1);
            true
        }
    })
}

/// Takes one unit of the cooperative budget, or, with none left, wakes the task and returns
/// `Pending` so that it yields now: the first step of a poll function that may run for ever
/// without suspending.
pub fn poll_budget(cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
    if consume_budget() {
        std::task::Poll::Ready(())
    } else {
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out_and_refills() {
        reset_budget();
        let spent = std::iter::from_fn(|| consume_budget().then_some(())).count();
        assert_eq!(spent, BUDGET_PER_TURN as usize);
        assert!(!consume_budget());
        reset_budget();
        assert!(consume_budget());
    }
}
