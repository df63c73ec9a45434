//! The timer queue: a binary heap of deadlines over a slab of entries.
//!
//! Inserting costs `O(log n)`, cancelling costs `O(1)`: a cancelled entry frees its slab slot at once
//! and leaves a stale heap record behind, which is skipped when it reaches the top and swept out when
//! stale records outnumber live ones.
//! Slots and heap capacity are reused, so a steady state of timers that come and go allocates nothing.
//!
//! Each heap record is `(deadline, sequence, slot, generation)`: equal deadlines fire in creation
//! order, because the sequence number is taken when the `sleep` is created, and the generation
//! tells a live entry from a reused slot.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

/// Names one timer in a [`TimerQueue`]; stale keys are harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    slot: u32,
    generation: u32,
}

#[derive(Debug)]
struct Slot {
    /// Odd while the slot holds a live timer, even while it is free.
    generation: u32,
    waker: Option<Waker>,
}

/// A heap record: ordered by deadline, then by creation sequence number, so equal deadlines fire in
/// creation order.
type Record = Reverse<(Instant, u64, u32, u32)>;

/// A queue of deadlines, each with the waker to call when it expires.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Record>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl TimerQueue {
    /// Creates an empty queue.
    pub fn new() -> TimerQueue {
        TimerQueue::default()
    }

    /// Number of live (inserted, not yet fired or cancelled) timers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no timer is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Inserts a timer; `seq` orders timers with equal deadlines (lower fires first).
    pub fn insert(&mut self, deadline: Instant, seq: u64, waker: Waker) -> TimerKey {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    waker: None,
                });
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 timers")
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.waker = Some(waker);
        self.live += 1;
        let generation = entry.generation;
        self.heap.push(Reverse((deadline, seq, slot, generation)));
        TimerKey { slot, generation }
    }

    /// Whether `key` is still waiting (not fired, not cancelled).
    pub fn is_pending(&self, key: TimerKey) -> bool {
        self.slots
            .get(key.slot as usize)
            .is_some_and(|s| s.generation == key.generation)
    }

    /// Replaces the waker of a pending timer (a future moved between tasks).
    pub fn set_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(slot) = self.slots.get_mut(key.slot as usize)
            && slot.generation == key.generation
            && let Some(w) = &mut slot.waker
            && !w.will_wake(waker)
        {
            w.clone_from(waker);
        }
    }

    /// Cancels a timer in `O(1)`. Returns whether it was still pending.
    pub fn cancel(&mut self, key: TimerKey) -> bool {
        let Some(slot) = self.slots.get_mut(key.slot as usize) else {
            return false;
        };
        if slot.generation != key.generation {
            return false;
        }
        self.release(key.slot);
        // Stale heap records are swept when they outnumber live ones, keeping the heap small.
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, _, s, g))| slots[*s as usize].generation == *g);
        }
        true
    }

    fn release(&mut self, slot: u32) -> Option<Waker> {
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        entry.waker.take()
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, _, slot, generation))) = self.heap.peek() {
            if self.slots[*slot as usize].generation == *generation {
                return;
            }
            self.heap.pop();
        }
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((d, ..))| *d)
    }

    /// Removes every timer whose deadline is at or before `now`, in deadline order, and hands each
    /// waker to `wake`.
    pub fn expire(&mut self, now: Instant, mut wake: impl FnMut(Waker)) -> usize {
        let mut fired = 0;
        loop {
            self.drop_stale_top();
            match self.heap.peek() {
                Some(Reverse((deadline, _, slot, _))) if *deadline <= now => {
                    let slot = *slot;
                    self.heap.pop();
                    if let Some(w) = self.release(slot) {
                        wake(w);
                    }
                    fired += 1;
                }
                _ => return fired,
            }
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn timequeue_expired() {
        // Curio's test_timequeue_expired, with deadlines as offsets from a base instant.
        let base = Instant::now();
        let at = |s: u64| base + Duration::from_secs(s);
        let mut q = TimerQueue::new();
        assert_eq!(q.next_deadline(), None);
        let a = q.insert(at(50), 0, noop());
        let b = q.insert(at(25), 1, noop());
        let c = q.insert(at(100), 2, noop());
        assert_eq!(q.next_deadline(), Some(at(25)));
        assert_eq!(q.expire(at(25), drop), 1);
        assert!(!q.is_pending(b));
        assert!(q.is_pending(a) && q.is_pending(c));
        assert_eq!(q.expire(at(101), drop), 2);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_is_o1_and_sweeps() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let keys: Vec<_> = (0..1000)
            .map(|i| q.insert(base + Duration::from_millis(i), i, noop()))
            .collect();
        for k in &keys[..999] {
            assert!(q.cancel(*k));
            assert!(!q.cancel(*k), "cancel is one-shot");
        }
        assert_eq!(q.len(), 1);
        assert!(q.heap.len() <= 130, "stale records were swept");
        assert_eq!(q.next_deadline(), Some(base + Duration::from_millis(999)));
        // Slots are reused.
        let k = q.insert(base, 5000, noop());
        assert!(q.slots.len() <= 1000);
        assert!(q.is_pending(k));
    }

    #[test]
    fn stale_key_after_reuse_is_not_pending() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(base, 0, noop());
        q.cancel(a);
        let b = q.insert(base, 1, noop());
        assert!(!q.is_pending(a));
        assert!(!q.cancel(a));
        assert!(q.is_pending(b));
    }
}
