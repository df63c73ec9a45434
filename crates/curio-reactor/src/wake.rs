//! The wake protocol between a reactor's owner and the threads that notify it.
//!
//! One atomic state: `AWAKE` (the owner runs and polls again before it blocks), `PARKED` (the
//! owner is blocked in the selector, or about to be), `NOTIFIED` (a notification came since the
//! owner last woke). A notifier swaps in `NOTIFIED` and writes the wake descriptor only if it
//! swapped out `PARKED`, so a wake sent while the owner runs costs one atomic operation and no
//! system call on either side. The owner blocks only if it can move `AWAKE` to `PARKED`, and
//! returns to `AWAKE` after every poll, before it looks at the work other threads queued: a
//! notification after that look leaves `NOTIFIED`, and the next poll does not block.

#[cfg(loom)]
use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, Ordering};

const AWAKE: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// See the module documentation.
pub(crate) struct WakeState(AtomicU8);

impl WakeState {
    pub(crate) fn new() -> WakeState {
        WakeState(AtomicU8::new(AWAKE))
    }

    /// Before a blocking poll: whether the owner may block (no notification came since it
    /// last woke).
    pub(crate) fn park(&self) -> bool {
        self.0
            .compare_exchange(AWAKE, PARKED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// After every poll, before the owner looks at queued work: whether a notification came
    /// that did not write the wake descriptor.
    pub(crate) fn wake_up(&self) -> bool {
        self.0.swap(AWAKE, Ordering::SeqCst) == NOTIFIED
    }

    /// For a notifier, after it queued its work: whether it must write the wake descriptor.
    pub(crate) fn notify(&self) -> bool {
        self.0.swap(NOTIFIED, Ordering::SeqCst) == PARKED
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Run with `cargo xtask loom`.

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    use super::WakeState;

    /// The wake descriptor: a flag the owner blocks on until a notifier sets it.
    #[derive(Default)]
    struct Fd {
        set: Mutex<bool>,
        cv: Condvar,
    }

    /// Two notifiers each queue one item and notify; the owner polls, draining the queue after
    /// each poll, and blocks whenever the state lets it. A lost wake leaves the owner blocked
    /// forever, which loom reports.
    #[test]
    fn loom_no_lost_wake() {
        loom::model(|| {
            let state = Arc::new(WakeState::new());
            let queued = Arc::new(AtomicUsize::new(0));
            let fd = Arc::new(Fd::default());
            let notifiers: Vec<_> = (0..2)
                .map(|_| {
                    let (state, queued, fd) = (state.clone(), queued.clone(), fd.clone());
                    thread::spawn(move || {
                        queued.fetch_add(1, Ordering::Release);
                        if state.notify() {
                            *fd.set.lock().unwrap() = true;
                            fd.cv.notify_one();
                        }
                    })
                })
                .collect();
            let mut seen = 0;
            loop {
                // A poll: blocking if the state allows, otherwise a look.
                if state.park() {
                    let mut set = fd.set.lock().unwrap();
                    while !*set {
                        set = fd.cv.wait(set).unwrap();
                    }
                    *set = false;
                }
                state.wake_up();
                // Drain.
                seen += queued.swap(0, Ordering::Acquire);
                if seen == 2 {
                    break;
                }
            }
            for n in notifiers {
                n.join().unwrap();
            }
        });
    }
}
