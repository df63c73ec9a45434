//! Property tests of [`TimerQueue`] against a sorted-list model.
//!
//! Random sequences of inserts, cancels (of live, fired, cancelled and reused keys), waker
//! changes, clock moves and expiries run on the queue and on a plain list of live timers.
//! After every step the two must agree on which timers are pending and on the next deadline;
//! every expiry must fire exactly the model's due timers, ordered by deadline and then by the
//! sequence number (the documented tie rule: lower fires first).
//! The slab and heap bounds the module promises are checked along the way.

use super::*;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::task::Wake;
use std::time::Duration;

/// A waker that records its label in a shared log when woken.
struct Label {
    log: Arc<Mutex<Vec<u32>>>,
    label: u32,
}

impl Wake for Label {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.label);
    }
}

fn labelled(log: &Arc<Mutex<Vec<u32>>>, label: u32) -> Waker {
    Waker::from(Arc::new(Label {
        log: log.clone(),
        label,
    }))
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Op {
    /// Inserts a timer `at` milliseconds after the base instant; `rank` is the high half of its
    /// sequence number, so equal deadlines get sequence numbers in an order unrelated to their
    /// insertion order.
    Insert { at: u8, rank: u8 },
    /// Cancels the key inserted `pick % inserted` (a live, fired, cancelled or reused key).
    Cancel { pick: usize },
    /// Cancels the live timer `pick % live`, so that stale heap records pile up.
    CancelLive { pick: usize },
    /// Gives the timer inserted `pick % inserted` a new waker.
    SetWaker { pick: usize },
    /// Moves the model's clock forward.
    Advance { by: u8 },
    /// Expires at the model's clock.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Deadlines in a small range make ties common; some start in the past.
        5 => (0u8..64, 0u8..4).prop_map(|(at, rank)| Op::Insert { at, rank }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => any::<usize>().prop_map(|pick| Op::CancelLive { pick }),
        1 => any::<usize>().prop_map(|pick| Op::SetWaker { pick }),
        2 => (0u8..16).prop_map(|by| Op::Advance { by }),
        2 => Just(Op::Expire),
    ]
}

/// A live timer as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelTimer {
    /// Index of the insert that made it.
    index: usize,
    deadline: Instant,
    seq: u64,
    /// The label its current waker records.
    label: u32,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(128)))]

    #[test]
    fn matches_a_sorted_list(runs in prop::collection::vec((op(), 1usize..32), 0..24)) {
        // Runs of one operation make bursts: a heap full of stale records, a crowd of ties.
        let ops = runs.into_iter().flat_map(|(op, n)| std::iter::repeat_n(op, n));
        let base = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut q = TimerQueue::new();
        let mut keys: Vec<TimerKey> = Vec::new();
        let mut model: Vec<ModelTimer> = Vec::new();
        let mut now = base;
        let mut next_label = 0u32;
        let mut peak_live = 0usize;
        for op in ops {
            match op {
                Op::Insert { at, rank } => {
                    let deadline = base + Duration::from_millis(at.into());
                    let index = keys.len();
                    // Unique: the low half is the insertion index.
                    let seq = (u64::from(rank) << 32) | index as u64;
                    let label = next_label;
                    next_label += 1;
                    keys.push(q.insert(deadline, seq, labelled(&log, label)));
                    model.push(ModelTimer { index, deadline, seq, label });
                }
                Op::CancelLive { pick } if !model.is_empty() => {
                    let pos = pick % model.len();
                    prop_assert!(q.cancel(keys[model[pos].index]));
                    model.remove(pos);
                    // The sweep keeps stale records from outnumbering live ones.
                    prop_assert!(q.heap.len() <= 64.max(2 * q.live), "heap {} live {}", q.heap.len(), q.live);
                }
                Op::Cancel { pick } if !keys.is_empty() => {
                    let index = pick % keys.len();
                    let was_live = model.iter().position(|t| t.index == index);
                    prop_assert_eq!(q.cancel(keys[index]), was_live.is_some());
                    if let Some(pos) = was_live {
                        model.remove(pos);
                        // A cancel that frees a timer sweeps when stale records outnumber live
                        // ones. (A stale key's cancel changes nothing, and expiring live timers
                        // can leave stale records in the majority until the next such cancel.)
                        prop_assert!(q.heap.len() <= 64.max(2 * q.live), "heap {} live {}", q.heap.len(), q.live);
                    }
                }
                Op::SetWaker { pick } if !keys.is_empty() => {
                    let index = pick % keys.len();
                    let label = next_label;
                    next_label += 1;
                    q.set_waker(keys[index], &labelled(&log, label));
                    if let Some(t) = model.iter_mut().find(|t| t.index == index) {
                        t.label = label;
                    }
                }
                Op::Cancel { .. } | Op::CancelLive { .. } | Op::SetWaker { .. } => {}
                Op::Advance { by } => now += Duration::from_millis(by.into()),
                Op::Expire => {
                    let mut due: Vec<ModelTimer> =
                        model.iter().copied().filter(|t| t.deadline <= now).collect();
                    due.sort_by_key(|t| (t.deadline, t.seq));
                    model.retain(|t| t.deadline > now);
                    let mut fired = Vec::new();
                    let n = q.expire(now, |w| {
                        w.wake();
                        fired.extend(log.lock().unwrap().drain(..));
                    });
                    prop_assert_eq!(n, due.len());
                    let want: Vec<u32> = due.iter().map(|t| t.label).collect();
                    prop_assert_eq!(fired, want);
                }
            }
            peak_live = peak_live.max(model.len());
            prop_assert!(log.lock().unwrap().is_empty(), "a waker ran outside expire");
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.is_empty(), model.is_empty());
            prop_assert_eq!(q.next_deadline(), model.iter().map(|t| t.deadline).min());
            for (index, key) in keys.iter().enumerate() {
                let live = model.iter().any(|t| t.index == index);
                prop_assert_eq!(q.is_pending(*key), live, "key {}", index);
            }
            // Freed slots are reused before the slab grows.
            prop_assert!(q.slots.len() <= peak_live, "slots {} peak {}", q.slots.len(), peak_live);
        }
        // Everything left fires, in order, at the end of time.
        let end = base + Duration::from_secs(1);
        model.sort_by_key(|t| (t.deadline, t.seq));
        let mut fired = Vec::new();
        q.expire(end, |w| {
            w.wake();
            fired.extend(log.lock().unwrap().drain(..));
        });
        prop_assert_eq!(fired, model.iter().map(|t| t.label).collect::<Vec<_>>());
        prop_assert!(q.is_empty());
        prop_assert_eq!(q.next_deadline(), None);
    }
}
