//! Property tests of `sleep` on a [`TimeDriver`] with a [`VirtualClock`], against a model.
//!
//! Sleeps are created (taking their deadline and sequence number then), polled in any order
//! (registering a timer on the first `Pending` poll), dropped, and the clock is advanced, jumped
//! and fired at random.
//! The model is a list of sleeps with their deadlines: a fire must wake exactly the registered
//! sleeps that are due, in deadline order and then creation order (not registration order); a
//! jump must land on the earliest registered deadline; a poll must be ready exactly when the
//! model says (an unregistered sleep at its deadline, a registered one once its timer fired).

use super::*;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::task::Wake;

/// A waker that records its label in a shared log when woken.
struct Label {
    log: Arc<Mutex<Vec<usize>>>,
    label: usize,
}

impl Wake for Label {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.label);
    }
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Op {
    /// Creates `sleep(ms)`.
    Create { ms: u8 },
    /// Polls the sleep `pick % created` (if not dropped).
    Poll { pick: usize },
    /// Drops the sleep `pick % created`.
    Drop { pick: usize },
    /// `advance` by `ms`.
    Advance { ms: u8 },
    /// `jump_to_next`.
    Jump,
    /// `fire`.
    Fire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..40).prop_map(|ms| Op::Create { ms }),
        4 => any::<usize>().prop_map(|pick| Op::Poll { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Drop { pick }),
        1 => (0u8..20).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Jump),
        2 => Just(Op::Fire),
    ]
}

/// Where a sleep is, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    /// Created, never pending.
    Unregistered,
    /// Pending with a timer in the queue.
    Registered,
    /// Its timer fired; the next poll is ready.
    Fired,
    /// Returned `Ready` (or was dropped).
    Gone,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(128)))]

    #[test]
    fn sleeps_match_a_sorted_list(ops in prop::collection::vec(op(), 0..200)) {
        let driver = TimeDriver::new(Box::new(VirtualClock::new()));
        let _g = driver.enter();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sleeps: Vec<Option<Pin<Box<Sleep>>>> = Vec::new();
        let mut deadlines: Vec<Instant> = Vec::new();
        let mut model: Vec<Model> = Vec::new();
        let mut now = driver.now();
        for op in ops {
            match op {
                Op::Create { ms } => {
                    let s = Box::pin(sleep(Duration::from_millis(ms.into())));
                    deadlines.push(now + Duration::from_millis(ms.into()));
                    prop_assert_eq!(s.deadline(), deadlines.last().copied());
                    sleeps.push(Some(s));
                    model.push(Model::Unregistered);
                }
                Op::Poll { pick } if !sleeps.is_empty() => {
                    let i = pick % sleeps.len();
                    let Some(s) = sleeps[i].as_mut() else { continue };
                    let waker = Waker::from(Arc::new(Label { log: log.clone(), label: i }));
                    let ready = s.as_mut().poll(&mut Context::from_waker(&waker)).is_ready();
                    let want = match model[i] {
                        Model::Unregistered => deadlines[i] <= now,
                        Model::Registered => false,
                        Model::Fired | Model::Gone => true,
                    };
                    prop_assert_eq!(ready, want, "sleep {} in {:?}", i, model[i]);
                    model[i] = if ready { Model::Gone } else { Model::Registered };
                }
                Op::Drop { pick } if !sleeps.is_empty() => {
                    let i = pick % sleeps.len();
                    sleeps[i] = None;
                    model[i] = Model::Gone;
                }
                Op::Poll { .. } | Op::Drop { .. } => {}
                Op::Advance { ms } => {
                    driver.advance(Duration::from_millis(ms.into()));
                    now += Duration::from_millis(ms.into());
                }
                Op::Jump => {
                    let next = (0..model.len())
                        .filter(|&i| model[i] == Model::Registered)
                        .map(|i| deadlines[i])
                        .min();
                    prop_assert_eq!(driver.jump_to_next(), next.is_some());
                    if let Some(d) = next {
                        now = now.max(d);
                    }
                }
                Op::Fire => {
                    let mut due: Vec<usize> = (0..model.len())
                        .filter(|&i| model[i] == Model::Registered && deadlines[i] <= now)
                        .collect();
                    // Creation order breaks ties: `i` is the creation index.
                    due.sort_by_key(|&i| (deadlines[i], i));
                    for &i in &due {
                        model[i] = Model::Fired;
                    }
                    prop_assert_eq!(driver.fire(), due.len());
                    let woken = std::mem::take(&mut *log.lock().unwrap());
                    prop_assert_eq!(woken, due);
                }
            }
            prop_assert_eq!(driver.now(), now);
            prop_assert!(log.lock().unwrap().is_empty(), "a waker ran outside fire");
            let registered = model.iter().filter(|m| **m == Model::Registered).count();
            prop_assert_eq!(driver.timer_count(), registered);
            let next = (0..model.len())
                .filter(|&i| model[i] == Model::Registered)
                .map(|i| deadlines[i])
                .min();
            prop_assert_eq!(driver.next_deadline(), next);
        }
    }
}
