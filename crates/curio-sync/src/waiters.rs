//! A FIFO list of waiting futures with O(1) removal, for the kernel-local primitives.
//!
//! Each waiter owns a slot; the FIFO order is a queue of slot keys. Removing a waiter frees its
//! slot at once and leaves its key in the order as a stale record, skipped when it reaches the
//! front (Curio's `SchedFIFO` tombstones) and swept when stale records outnumber live ones.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

/// Names one waiter; stale keys are harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    slot: u32,
    generation: u32,
}

#[derive(Debug)]
pub(crate) struct Entry<S> {
    pub(crate) waker: Option<Waker>,
    /// Chosen by a wake: the waiter now owns what it waited for (a lock, a permit, an item).
    pub(crate) notified: bool,
    pub(crate) data: S,
}

#[derive(Debug)]
struct Slot<S> {
    generation: u32,
    entry: Option<Entry<S>>,
}

#[derive(Debug)]
pub(crate) struct WaitList<S> {
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    order: VecDeque<Key>,
    /// Waiters not yet notified.
    waiting: usize,
}

impl<S> Default for WaitList<S> {
    fn default() -> Self {
        WaitList {
            slots: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            waiting: 0,
        }
    }
}

impl<S> WaitList<S> {
    /// Waiters not yet notified.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Appends a waiter at the back.
    pub(crate) fn push(&mut self, data: S, waker: Waker) -> Key {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.entry = Some(Entry {
            waker: Some(waker),
            notified: false,
            data,
        });
        let key = Key {
            slot,
            generation: s.generation,
        };
        self.order.push_back(key);
        self.waiting += 1;
        key
    }

    /// The waiter `key`, if it is still in the list.
    pub(crate) fn get(&mut self, key: Key) -> Option<&mut Entry<S>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation != key.generation {
            return None;
        }
        s.entry.as_mut()
    }

    /// Updates the waker of `key`.
    pub(crate) fn set_waker(&mut self, key: Key, waker: &Waker) {
        if let Some(e) = self.get(key) {
            match &mut e.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
        }
    }

    /// Polls the waiter in `key`: registers one holding `data()` if there is none (`Pending`),
    /// refreshes its waker while it waits (`Pending`), and once it is notified removes it, clears
    /// `key` and returns its entry (`Ready`). Every waiting future of the crate goes through it.
    #[inline]
    pub(crate) fn poll_wait(
        &mut self,
        key: &mut Option<Key>,
        cx: &Context<'_>,
        data: impl FnOnce() -> S,
    ) -> Poll<Entry<S>> {
        match *key {
            None => {
                *key = Some(self.push(data(), cx.waker().clone()));
                Poll::Pending
            }
            Some(k) if self.get(k).is_some_and(|e| e.notified) => {
                *key = None;
                Poll::Ready(self.remove(k).expect("a notified waiter is in the list"))
            }
            Some(k) => {
                self.set_waker(k, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Removes waiter `key` and returns its entry.
    #[inline]
    pub(crate) fn remove(&mut self, key: Key) -> Option<Entry<S>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation != key.generation {
            return None;
        }
        let e = s.entry.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(key.slot);
        if !e.notified {
            self.waiting -= 1;
        }
        if self.order.len() > 32 && self.order.len() > 2 * (self.slots.len() - self.free.len()) {
            self.sweep();
        }
        Some(e)
    }

    /// Drops the stale records from the order (called when they outnumber the live ones).
    #[cold]
    fn sweep(&mut self) {
        let slots = &self.slots;
        self.order
            .retain(|k| slots[k.slot as usize].generation == k.generation);
    }

    /// The first waiter not yet notified.
    pub(crate) fn front(&mut self) -> Option<Key> {
        while let Some(&k) = self.order.front() {
            match self.get(k) {
                Some(e) if !e.notified => return Some(k),
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Marks the first waiting entry notified, lets `f` hand it something, and wakes it.
    /// Returns whether there was one.
    pub(crate) fn notify_one(&mut self, f: impl FnOnce(&mut S)) -> bool {
        let Some(k) = self.front() else {
            return false;
        };
        self.order.pop_front();
        let e = self.get(k).expect("front is live");
        e.notified = true;
        f(&mut e.data);
        let w = e.waker.take();
        self.waiting -= 1;
        if let Some(w) = w {
            w.wake();
        }
        true
    }

    /// Notifies every waiting entry, in FIFO order.
    pub(crate) fn notify_all(&mut self) -> usize {
        let mut n = 0;
        while self.notify_one(|_| {}) {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_removal() {
        let mut w: WaitList<u32> = WaitList::default();
        let a = w.push(1, Waker::noop().clone());
        let b = w.push(2, Waker::noop().clone());
        let c = w.push(3, Waker::noop().clone());
        assert_eq!(w.waiting(), 3);
        assert_eq!(w.remove(b).map(|e| e.data), Some(2));
        assert!(w.remove(b).is_none(), "removal is one-shot");
        let mut got = Vec::new();
        while w.notify_one(|d| got.push(*d)) {}
        assert_eq!(got, [1, 3]);
        assert!(w.get(a).is_some_and(|e| e.notified));
        assert_eq!(w.waiting(), 0);
        assert!(w.remove(a).is_some_and(|e| e.notified));
        assert!(w.remove(c).is_some());
        // Slots are reused; stale keys stay stale.
        let d = w.push(4, Waker::noop().clone());
        assert!(w.get(a).is_none() && w.get(d).is_some());
    }

    #[test]
    fn stale_records_are_swept() {
        let mut w: WaitList<()> = WaitList::default();
        for _ in 0..1000 {
            let k = w.push((), Waker::noop().clone());
            w.remove(k);
        }
        assert!(w.order.len() <= 64);
        assert_eq!(w.waiting(), 0);
    }
}
