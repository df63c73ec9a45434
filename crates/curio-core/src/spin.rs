//! A bounded spin: how a thread that expects work (or a result) within microseconds looks for
//! it before it goes to sleep, which would cost a futex wake and a thread wake-up.

use std::time::{Duration, Instant};

/// Calls `done` at growing intervals (1, 2, 4, ... up to 256 spin hints apart) until it returns
/// `true` or `limit` has passed; returns the last answer.
///
/// For a thread about to sleep on a condition variable or a futex: a short wait is cheaper
/// spent on the CPU. `done` should be cheap (an atomic load, or a brief lock).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
///
/// let flag = AtomicBool::new(true);
/// assert!(curio_core::spin_until(Duration::from_micros(50), || flag.load(Ordering::Acquire)));
/// let never = AtomicBool::new(false);
/// assert!(!curio_core::spin_until(Duration::from_micros(5), || never.load(Ordering::Acquire)));
/// ```
pub fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    let mut pause = 1u32;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        for _ in 0..pause {
            std::hint::spin_loop();
        }
        pause = (pause * 2).min(256);
    }
}
