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

/// A group's good results stay reachable when a sibling failed or was cancelled, through
/// `exceptions()` and a failed `results()`, and members taken out after the join join to their
/// real outcome.
#[test]
fn group_results_survive_failures() {
    use curio::{GroupError, TaskGroup, Wait};
    vrun(async {
        // A panicking sibling: `results` reports it, `exceptions` copies it, nothing is lost.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        g.spawn(async { 1 }).unwrap();
        g.spawn(async { panic!("boom") }).unwrap();
        g.spawn(async { 3 }).unwrap();
        g.join().await;
        assert!(matches!(g.results(), Err(GroupError::Failed(e)) if e.is_panic()));
        let ex = g.exceptions().unwrap();
        assert!(ex[0].is_none() && ex[2].is_none());
        let copy = ex[1].as_ref().unwrap();
        assert!(copy.is_panic() && copy.to_string().contains("boom"));
        assert_eq!(
            g.exceptions().unwrap().len(),
            3,
            "exceptions() can be asked again"
        );
        let out = g.outcomes().unwrap();
        assert_eq!(*out[0].as_ref().unwrap(), 1);
        assert!(out[1].as_ref().is_err_and(|e| e.is_panic()));
        assert_eq!(*out[2].as_ref().unwrap(), 3);
        assert!(matches!(g.outcomes(), Err(GroupError::Taken)));

        // `Wait::Any`: the first member's value and the cancelled sibling, both reachable.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::Any);
        let first = g.spawn(async { 7 }).unwrap();
        let slow = g.spawn(std::future::pending()).unwrap();
        g.join().await;
        assert_eq!(g.completed().unwrap().unwrap().id(), first.id());
        // Taken out after the join, the member joins to its value, not to "cancelled".
        let t = g.remove(&first).expect("still a member");
        assert_eq!(t.join().await.unwrap(), 7);
        let t = g.remove(&slow).expect("still a member");
        assert!(t.join().await.is_err_and(|e| e.is_cancelled()));

        // `next_done` after a `Wait::None` join hands out members with their outcomes too.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::None);
        g.spawn(async { 5 }).unwrap();
        yield_now().await; // the member finishes before the join
        g.join().await;
        let t = g.next_done().await.expect("a finished member");
        assert_eq!(t.join().await.unwrap(), 5);
        // Once `result`/`outcomes` moved an output out, the member is no longer handed out.
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let m = g.spawn(async { 9 }).unwrap();
        g.join().await;
        assert_eq!(g.result().unwrap(), 9);
        assert!(matches!(g.result(), Err(GroupError::Taken)));
        assert!(g.remove(&m).is_none());
    });
}
