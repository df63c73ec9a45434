//! The scheduler: the cycle that every kernel runs, in one place.
//!
//! Curio's rules, as this module applies them:
//!
//! - **One cycle runs only the tasks that were ready when it began**, each once, in FIFO order; a
//!   task woken or spawned during the cycle runs in the next one. So `spawn`, `Event::set` and
//!   `Queue::put` never switch tasks, and `yield_now()` puts a task behind every other ready one:
//!   no task can starve the others by yielding in a loop.
//! - **Before the tasks run, the kernel parks** ([`plan_park`]): with tasks ready it only looks for
//!   I/O (a zero timeout), and only every [`EVENT_INTERVAL`] task turns, since a look is a system
//!   call; with none ready it sleeps until the next timer deadline, an I/O event or an unpark from
//!   another thread.
//! - Then it drains the remote queue (wakes and spawns from other threads) into the ready queue.
//! - **A virtual clock jumps** to the next deadline only when nothing else can happen: no task was
//!   ready, the look found no event, no remote work is queued, and no thread-pool job is
//!   outstanding (it will wake a task). Otherwise the kernel waits for a wake without moving the
//!   clock.
//! - Then expired timers fire (their tasks join the ready queue), and the tasks ready at that point
//!   run. Each turn refills the cooperative budget (`poll_task`).
//!
//! So I/O readiness waits at most about `EVENT_INTERVAL` task turns while tasks are ready, and the
//! tasks of ready descriptors join the queue behind those already there.
//! I/O that a peer will send later does not hold a virtual clock back: a test that waits on a real
//! socket under a virtual clock sees its timers fire as soon as the socket is quiet.
//! `Kernel::step()` runs one cycle whose look for I/O always happens and never blocks, and which
//! never moves a virtual clock (Curio's `kernel.run()` with no coroutine).
//! The ready queue, the wake paths and the main future's marker entry are described in `core.rs`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::core::{Core, Entry, MainWake};
use crate::error::TaskError;
use crate::harness::poll_task;
use crate::header::Header;

/// What the cycle knows before it parks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Situation {
    /// No task and no remote work is ready.
    pub(crate) ready_empty: bool,
    /// A single step (`Kernel::step`): never block.
    pub(crate) nonblocking: bool,
    /// The clock is virtual: the kernel moves it instead of sleeping.
    pub(crate) virtual_clock: bool,
    /// Task turns since the last park.
    pub(crate) since_poll: u32,
    /// How long until the next timer deadline (`None`: no timer).
    pub(crate) timer_timeout: Option<Duration>,
}

/// Whether and how long the cycle parks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParkPlan {
    /// Tasks are ready and the last look was recent: do not look for I/O this cycle.
    Skip,
    /// Park for at most this long (`None`: until woken; `Some(ZERO)`: only look).
    Park(Option<Duration>),
}

/// The park decision of a cycle (see the module's docs).
pub(crate) fn plan_park(s: Situation) -> ParkPlan {
    if !s.ready_empty && !s.nonblocking && s.since_poll < EVENT_INTERVAL {
        ParkPlan::Skip
    } else if !s.ready_empty || s.nonblocking || s.virtual_clock {
        ParkPlan::Park(Some(Duration::ZERO))
    } else {
        ParkPlan::Park(s.timer_timeout)
    }
}

/// A run's main future, polled by the cycle when its entry comes up.
pub(crate) struct MainCtx<'a, F: Future> {
    pub(crate) header: &'a Rc<Header>,
    pub(crate) slot: Pin<&'a mut Option<F>>,
    pub(crate) waker: &'a Waker,
    pub(crate) wake: &'a Arc<MainWake>,
    pub(crate) run: u64,
}

/// One blocking cycle.
pub(crate) fn cycle<F: Future>(
    core: &Core,
    main: &mut Option<MainCtx<'_, F>>,
) -> Option<Result<F::Output, TaskError>> {
    step_cycle(core, main, false)
}

/// Task turns between two parks while tasks are ready (tokio's `event_interval`).
pub(crate) const EVENT_INTERVAL: u32 = 61;

/// One cycle: (1) poll the reactor, blocking only when nothing is ready, (2) take work from other
/// threads, (3) fire expired timers, (4) run the tasks that were ready at that point, each once.
pub(crate) fn step_cycle<F: Future>(
    core: &Core,
    main: &mut Option<MainCtx<'_, F>>,
    nonblocking: bool,
) -> Option<Result<F::Output, TaskError>> {
    let ready_empty = core.ready.borrow().is_empty() && core.shared.remote.is_empty();
    let virtual_clock = core.time.is_virtual();
    let plan = plan_park(Situation {
        ready_empty,
        nonblocking,
        virtual_clock,
        since_poll: core.since_poll.get(),
        // Read only where the plan can block on it: a busy cycle never looks at the timers.
        timer_timeout: if ready_empty && !nonblocking && !virtual_clock {
            core.time.park_timeout()
        } else {
            None
        },
    });
    let events = match plan {
        ParkPlan::Skip => 0,
        ParkPlan::Park(timeout) => {
            core.since_poll.set(0);
            core.park.park(timeout).unwrap_or(0)
        }
    };
    core.drain_remote();
    if virtual_clock && !nonblocking && ready_empty && core.ready.borrow().is_empty() {
        let idle = events == 0
            && core.shared.remote.is_empty()
            && core.shared.outstanding.load(Ordering::Acquire) == 0;
        if !(idle && core.time.jump_to_next()) {
            // Something runs elsewhere (a worker thread) or nothing is scheduled at all:
            // wait for a wake or for I/O, without moving the clock.
            if idle || core.shared.outstanding.load(Ordering::Acquire) > 0 {
                let _ = core.park.park(None);
                core.drain_remote();
            }
        }
    }
    if core.time.timer_count() > 0 {
        core.time.fire();
    }
    let n = core.ready.borrow().len();
    core.since_poll.set(
        core.since_poll
            .get()
            .saturating_add(n.try_into().unwrap_or(u32::MAX)),
    );
    for _ in 0..n {
        let entry = core.ready.borrow_mut().pop_front();
        match entry {
            Some(Entry::Task(r)) => {
                r.run();
            }
            Some(Entry::Main(run)) => {
                let Some(m) = main.as_mut() else { continue };
                if m.run != run {
                    continue;
                }
                // A swap, not a store: reading the flag synchronises with every wake that found
                // the entry already queued, so the turn sees what those wakers wrote before they
                // woke. A store could leave this turn reading stale state, with no entry left to
                // poll again: a lost wake (`loom_tests.rs`).
                m.wake.queued.swap(false, Ordering::Acquire);
                let mut cx = Context::from_waker(m.waker);
                if let Poll::Ready(out) = poll_task(core, m.header, m.slot.as_mut(), &mut cx) {
                    return Some(out);
                }
            }
            None => break,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation() -> Situation {
        Situation {
            ready_empty: true,
            nonblocking: false,
            virtual_clock: false,
            since_poll: 0,
            timer_timeout: None,
        }
    }

    #[test]
    fn idle_kernel_sleeps_until_the_next_deadline_or_a_wake() {
        assert_eq!(plan_park(situation()), ParkPlan::Park(None));
        let d = Duration::from_millis(7);
        let s = Situation {
            timer_timeout: Some(d),
            ..situation()
        };
        assert_eq!(plan_park(s), ParkPlan::Park(Some(d)));
    }

    #[test]
    fn ready_tasks_look_for_io_only_every_event_interval_turns() {
        let busy = Situation {
            ready_empty: false,
            timer_timeout: Some(Duration::from_secs(1)),
            ..situation()
        };
        assert_eq!(plan_park(busy), ParkPlan::Skip);
        let due = Situation {
            since_poll: EVENT_INTERVAL,
            ..busy
        };
        assert_eq!(plan_park(due), ParkPlan::Park(Some(Duration::ZERO)));
    }

    #[test]
    fn a_step_and_a_virtual_clock_never_block() {
        for s in [
            Situation {
                nonblocking: true,
                ..situation()
            },
            Situation {
                virtual_clock: true,
                timer_timeout: Some(Duration::from_secs(5)),
                ..situation()
            },
        ] {
            assert_eq!(plan_park(s), ParkPlan::Park(Some(Duration::ZERO)));
        }
        // A step looks for I/O even with tasks ready.
        let s = Situation {
            nonblocking: true,
            ready_empty: false,
            ..situation()
        };
        assert_eq!(plan_park(s), ParkPlan::Park(Some(Duration::ZERO)));
    }
}
