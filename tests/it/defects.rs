//! Regression tests for the defects found by hostile testing (issue 9): each fails on the code
//! before its fix.

use std::cell::RefCell;
use std::rc::Rc;

use curio::queue::Queue;
use curio::sync::Condition;
use curio::{spawn, yield_now};

use crate::vrun;

/// A put cancelled after a get reserved a place for it has no effect, in a running kernel.
#[test]
fn cancelled_put_never_inserts() {
    vrun(async {
        let q: Rc<Queue<i32>> = Rc::new(Queue::new(1));
        q.put(1).await;
        let q2 = q.clone();
        let putter = spawn(async move { q2.put(2).await });
        yield_now().await; // the putter waits for room
        assert_eq!(q.get().await, 1); // reserves the place for the putter
        putter.cancel().await; // before the putter's task ran again
        let outcome = putter.join().await;
        assert!(outcome.is_err_and(|e| e.is_cancelled()));
        assert!(q.is_empty(), "a cancelled put left its item in the queue");
        assert!(!q.is_full(), "the reserved place was not given back");
        q.put(3).await;
        assert_eq!(q.get().await, 3);
    });
}

/// `notify(1)` followed by cancelling the notified waiter wakes the next waiter.
#[test]
fn condition_notification_passes_on() {
    vrun(async {
        let cond = Rc::new(Condition::new());
        let woke: Rc<RefCell<Vec<u32>>> = Rc::default();
        let waiter = |n: u32| {
            let (c, w) = (cond.clone(), woke.clone());
            spawn(async move {
                let g = c.lock().await;
                let _g = c.wait(g).await.unwrap();
                w.borrow_mut().push(n);
            })
        };
        let (first, second) = (waiter(1), waiter(2));
        yield_now().await; // both wait
        let g = cond.lock().await;
        cond.notify(1).unwrap();
        drop(g);
        first.cancel().await;
        second.join().await.unwrap();
        assert_eq!(*woke.borrow(), [2]);
    });
}
