//! Ports of Curio's `test_task.py` task-group tests, with Curio's names, on the virtual clock.
//! Curio raises where Rust returns errors: `g.result` raising becomes `Err(GroupError::Failed)`,
//! a member's exception becomes a `TaskError`.

use curio::{GroupError, TaskGroup, TaskRef, Wait, sleep, spawn, timeout_after};
use futures_core::Stream;

use crate::{Log, secs, vrun};

async fn add(x: i32, y: i32) -> i32 {
    x + y
}

async fn blocked<T>() -> T {
    std::future::pending().await
}

#[test]
fn task_group() {
    vrun(async {
        let g = TaskGroup::new(Wait::All);
        let t1 = g.spawn(add(1, 1));
        let t2 = g.spawn(add(2, 2));
        let t3 = g.spawn(add(3, 3));
        g.join().await;
        assert!(t1.is_terminated() && t2.is_terminated() && t3.is_terminated());
        assert_eq!(g.completed().unwrap(), Some(t1));
        assert_eq!(g.results().unwrap(), [2, 4, 6]);
        assert!(matches!(g.results(), Err(GroupError::Taken)));
    });
}

#[test]
fn task_group_daemon() {
    vrun(async {
        let t0 = curio::spawn_daemon(async {
            sleep(secs(5.0)).await;
            0
        });
        let t0_ref = t0.task_ref();
        let g = TaskGroup::new(Wait::All);
        g.add_task(t0).unwrap();
        g.spawn(add(1, 1));
        g.spawn_daemon(add(2, 2));
        g.spawn_daemon(async { panic!("TypeError") });
        let sleeper = g.spawn_daemon(async {
            sleep(secs(5.0)).await;
            0
        });
        g.join().await;
        assert_eq!(g.results().unwrap(), [2]);
        assert!(t0_ref.is_cancelled() && t0_ref.is_terminated());
        assert!(sleeper.is_cancelled() && sleeper.is_terminated());
    });
}

#[test]
fn task_group_existing() {
    vrun(async {
        let evt = curio::Builder::new().spawn(async {});
        let t1 = spawn(add(1, 1));
        let t2 = spawn(add(2, 2));
        let t3 = spawn(async {
            sleep(secs(1.0)).await;
            6
        });
        let t4 = spawn(async {
            sleep(secs(2.0)).await;
            8
        });
        evt.join().await.unwrap();
        curio::yield_now().await;
        assert!(t1.is_terminated() && t2.is_terminated());
        let g = TaskGroup::new(Wait::All);
        for t in [t1, t2, t3, t4] {
            g.add_task(t).unwrap();
        }
        g.join().await;
        assert_eq!(g.results().unwrap(), [2, 4, 6, 8]);
    });
}

#[test]
fn task_any_cancel() {
    vrun(async {
        let g = TaskGroup::new(Wait::Any);
        let t1 = g.spawn(blocked());
        let t2 = g.spawn(add(1, 1));
        let t3 = g.spawn(blocked());
        g.join().await;
        assert_eq!(g.completed().unwrap(), Some(t2.clone()));
        assert!(t1.is_cancelled() && t3.is_cancelled() && !t2.is_cancelled());
        assert!(t1.is_terminated() && t3.is_terminated());
    });
}

#[test]
fn task_group_result() {
    vrun(async {
        let g = TaskGroup::new(Wait::Any);
        g.spawn(blocked());
        g.spawn(add(1, 1));
        g.spawn(blocked());
        g.join().await;
        assert_eq!(g.result().unwrap(), 2);
        assert!(matches!(g.result(), Err(GroupError::Taken)));
    });
}

#[test]
fn task_any_error() {
    vrun(async {
        let g: TaskGroup<i32> = TaskGroup::new(Wait::Any);
        let t1 = g.spawn(blocked());
        let t2 = g.spawn(async { panic!("TypeError") });
        let t3 = g.spawn(blocked());
        g.join().await;
        assert_eq!(g.completed().unwrap(), Some(t2));
        match g.result() {
            Err(GroupError::Failed(e)) => assert!(e.is_panic()),
            other => panic!("{other:?}"),
        }
        assert!(t1.is_cancelled() && t3.is_cancelled());
        let exceptions = g.exceptions().unwrap();
        assert_eq!(exceptions.len(), 3);
        // t2's error was moved out by `result`; the cancelled siblings report theirs.
        assert!(exceptions[0].as_ref().is_some_and(|e| e.is_cancelled()));
        assert!(exceptions[2].as_ref().is_some_and(|e| e.is_cancelled()));
    });
}

#[test]
fn task_group_iter() {
    vrun(async {
        let g = TaskGroup::new(Wait::All);
        for (x, delay) in [(1, 0.3), (2, 0.1), (3, 0.2)] {
            g.spawn(async move {
                sleep(secs(delay)).await;
                add(x, x).await
            });
        }
        let mut order = Vec::new();
        let mut g = g;
        while let Some(t) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut g).poll_next(cx)).await
        {
            order.push(t.join().await.unwrap());
        }
        // Completion order, through the `Stream` of finished tasks.
        assert_eq!(order, [4, 6, 2]);
        g.join().await;
        assert!(g.results().unwrap().is_empty());
    });
}

#[test]
fn task_wait_none() {
    vrun(async {
        let g: TaskGroup<()> = TaskGroup::new(Wait::None);
        let t1 = g.spawn(blocked());
        let t2 = g.spawn(blocked());
        g.join().await;
        assert!(t1.is_cancelled() && t2.is_cancelled());
        assert!(t1.is_terminated() && t2.is_terminated());
        assert_eq!(g.completed().unwrap(), None);
    });
}

#[test]
fn task_join_daemon() {
    vrun(async {
        let g = TaskGroup::new(Wait::All);
        let t1 = g.spawn_daemon(add(1, 1));
        let t2 = g.spawn(add(2, 2));
        g.spawn(add(3, 3));
        assert_eq!(g.remove(&t1).unwrap().join().await.unwrap(), 2);
        assert_eq!(g.remove(&t2).unwrap().join().await.unwrap(), 4);
        g.join().await;
        assert_eq!(g.results().unwrap(), [6]);
    });
}

#[test]
fn task_group_join_done() {
    vrun(async {
        let g = TaskGroup::new(Wait::All);
        g.spawn(add(1, 1));
        g.spawn(add(2, 2));
        let t3 = g.spawn(add(3, 3));
        curio::yield_now().await;
        assert!(t3.is_terminated());
        assert_eq!(g.remove(&t3).unwrap().join().await.unwrap(), 6);
        g.join().await;
        assert_eq!(g.results().unwrap(), [2, 4]);
    });
}

#[test]
fn task_group_error() {
    vrun(async {
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let t1 = g.spawn(blocked());
        let t2 = g.spawn(blocked());
        let t3 = g.spawn(async { panic!("TypeError") });
        // No error comes out of the join; the failure is recorded.
        g.join().await;
        assert_eq!(g.completed().unwrap(), Some(t3));
        assert!(t1.is_cancelled() && t2.is_cancelled());
        assert!(
            matches!(g.results(), Err(GroupError::Failed(e)) if e.is_cancelled() || e.is_panic())
        );
    });
}

#[test]
fn task_group_join() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let evt = std::rc::Rc::new(std::cell::Cell::new(false));
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let t1 = g.spawn(async { panic!("TypeError") });
        let e2 = evt.clone();
        let t2 = g.spawn(async move {
            while !e2.get() {
                curio::yield_now().await;
            }
            4
        });
        let e3 = evt.clone();
        g.spawn(async move {
            while !e3.get() {
                curio::yield_now().await;
            }
            6
        });
        // Joining a failed member by hand takes it out; its siblings keep running.
        let err = g.remove(&t1).unwrap().join().await.unwrap_err();
        assert!(err.is_panic());
        l.push("t1 joined");
        assert!(!t2.is_terminated() && !t2.is_cancelled());
        evt.set(true);
        g.join().await;
        assert_eq!(g.results().unwrap(), [4, 6]);
    });
    assert_eq!(log.take(), ["t1 joined"]);
}

/// Logs its name when dropped.
struct Dropped(Log, &'static str);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.push(self.1);
    }
}

#[test]
fn task_group_cancel() {
    // Cancelling the task that owns a group cancels the members first, then the owner.
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let l2 = l.clone();
        let owner = spawn(async move {
            let _g = Dropped(l2.clone(), "owner");
            let g: TaskGroup<()> = TaskGroup::new(Wait::All);
            for name in ["c1", "c2", "c3"] {
                let d = Dropped(l2.clone(), name);
                g.spawn(async move {
                    let _d = d;
                    blocked::<()>().await
                });
            }
            g.join().await;
        });
        sleep(secs(0.1)).await;
        owner.cancel().await;
        l.push("cancelled");
    });
    let events = log.take();
    assert_eq!(events.len(), 5, "{events:?}");
    let mut members = events[..3].to_vec();
    members.sort();
    assert_eq!(members, ["c1", "c2", "c3"]);
    assert_eq!(&events[3..], ["owner", "cancelled"]);
}

#[test]
fn task_group_timeout() {
    let log = Log::default();
    let l = log.clone();
    vrun(async move {
        let refs = std::rc::Rc::new(std::cell::RefCell::new(Vec::<TaskRef>::new()));
        let r2 = refs.clone();
        let l2 = l.clone();
        let r = timeout_after(secs(0.25), async move {
            let g: TaskGroup<()> = TaskGroup::new(Wait::All);
            for name in ["c1", "c2", "c3"] {
                let d = Dropped(l2.clone(), name);
                let t = g.spawn(async move {
                    let _d = d;
                    blocked::<()>().await
                });
                r2.borrow_mut().push(t);
            }
            g.join().await;
        })
        .await;
        assert!(r.is_err());
        l.push("timeout");
        // The scope reported only after the members of the group it dropped had terminated:
        // nothing started inside it is still alive (Curio's and trio's guarantee).
        let members = refs.borrow().clone();
        for t in &members {
            assert!(t.is_terminated() && t.is_cancelled());
        }
    });
    assert_eq!(log.take(), ["c1", "c2", "c3", "timeout"]);
}

#[test]
fn task_group_cancel_remaining() {
    vrun(async {
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let t0 = g.spawn(add(1, 1));
        g.spawn(add(2, 2));
        let w1 = g.spawn(blocked());
        let w2 = g.spawn(blocked());
        let first = g.next_done().await.unwrap();
        assert_eq!(first.id(), t0.id());
        assert_eq!(g.next_result().await.unwrap().unwrap(), 4);
        g.cancel_remaining().await;
        assert!(w1.is_cancelled() && w1.is_terminated());
        assert!(w2.is_cancelled() && w2.is_terminated());
        // The group stays usable.
        g.spawn(add(5, 5));
        g.join().await;
        assert_eq!(g.results().unwrap(), [10]);
    });
}

#[test]
fn task_group_empty() {
    vrun(async {
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        assert!(g.next_done().await.is_none());
        assert!(g.next_result().await.is_none());
        g.cancel_remaining().await;
        g.join().await;
        assert_eq!(g.completed().unwrap(), None);
        assert!(matches!(g.result(), Err(GroupError::NoCompleted)));
        assert!(g.exceptions().unwrap().is_empty());
        assert!(g.results().unwrap().is_empty());
    });
}

#[test]
fn task_group_use_error() {
    vrun(async {
        let g: TaskGroup<i32> = TaskGroup::new(Wait::All);
        // Properties before join are errors, not panics.
        assert!(matches!(g.completed(), Err(GroupError::NotJoined)));
        assert!(matches!(g.results(), Err(GroupError::NotJoined)));
        assert!(matches!(g.exceptions(), Err(GroupError::NotJoined)));
        assert!(matches!(g.tasks(), Err(GroupError::NotJoined)));
        assert!(matches!(g.result(), Err(GroupError::NotJoined)));
        g.spawn(add(1, 1));
        g.join().await;
        // A joined group takes no new members; add_task gives the task back.
        assert!(matches!(g.try_spawn(add(0, 0)), Err(GroupError::Joined)));
        let b = curio::Builder::new().daemon();
        assert!(matches!(
            g.try_spawn_with(b, add(0, 0)),
            Err(GroupError::Joined)
        ));
        // `spawn` treats it as misuse: a panic that names it.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.spawn(add(0, 0));
        }))
        .unwrap_err();
        let msg = panicked
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(msg.contains("joined group"), "{msg}");
        let late = spawn(add(3, 3));
        let e = g.add_task(late).unwrap_err();
        assert!(matches!(e.error, GroupError::Joined));
        assert_eq!(e.to_string(), "task group already joined");
        assert_eq!(e.task.join().await.unwrap(), 6);
        // Joining again is harmless; results move out once.
        g.join().await;
        assert_eq!(g.tasks().unwrap().len(), 1);
        assert_eq!(g.results().unwrap(), [2]);
        assert!(matches!(g.results(), Err(GroupError::Taken)));
    });
}

#[test]
fn removed_member_moves_between_groups() {
    vrun(async {
        let g1: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let g2: TaskGroup<i32> = TaskGroup::new(Wait::All);
        let r = g1.spawn(add(1, 1));
        assert!(g2.remove(&r).is_none(), "not a member of g2");
        let t = g1.remove(&r).unwrap();
        assert!(g1.remove(&r).is_none(), "taken once");
        g2.add_task(t).unwrap();
        g1.join().await;
        g2.join().await;
        assert!(g1.results().unwrap().is_empty());
        assert_eq!(g2.results().unwrap(), [2]);
    });
}

#[test]
fn late_join() {
    vrun(async {
        let t = spawn(add(1, 1));
        t.wait().await;
        t.cancel().await;
        assert!(t.is_terminated());
        assert!(!t.is_cancelled());
        assert_eq!(t.join().await.unwrap(), 2);
    });
}

#[test]
fn task_child_cancel() {
    // main -> grandparent -> parent -> child, each running the next in a task group: cancelling
    // the grandparent cascades innermost first (Curio's order, from explicit cancels in handlers).
    let log = Log::default();
    let l = log.clone();
    fn level(log: Log, depth: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        const NAMES: [&str; 3] = ["grandparent", "parent", "child"];
        Box::pin(async move {
            let _d = Dropped(
                log.clone(),
                [
                    "grandparent cancelled",
                    "parent cancelled",
                    "child cancelled",
                ][depth],
            );
            let _ = NAMES;
            let g: TaskGroup<()> = TaskGroup::new(Wait::All);
            if depth < 2 {
                g.spawn(level(log.clone(), depth + 1));
            }
            sleep(secs(0.5)).await;
            g.join().await;
        })
    }
    vrun(async move {
        l.push("start");
        let gp = spawn(level(l.clone(), 0));
        sleep(secs(0.1)).await;
        l.push("cancel start");
        sleep(secs(0.1)).await;
        l.push("cancelling");
        gp.cancel().await;
        l.push("done");
    });
    assert_eq!(
        log.take(),
        [
            "start",
            "cancel start",
            "cancelling",
            "child cancelled",
            "parent cancelled",
            "grandparent cancelled",
            "done"
        ]
    );
}

#[test]
fn wait_object_with_outcomes() {
    vrun(async {
        let g = TaskGroup::with_outcomes(Wait::Object);
        let none = g.spawn(async { None });
        let found = g.spawn(async {
            sleep(secs(0.1)).await;
            Some(7)
        });
        let slow = g.spawn(async {
            sleep(secs(9.0)).await;
            Some(9)
        });
        g.join().await;
        assert!(none.is_terminated() && !none.is_cancelled());
        assert_eq!(g.completed().unwrap(), Some(found));
        assert!(slow.is_cancelled());
        assert_eq!(g.result().unwrap(), Some(7));
    });
}

#[test]
fn err_outcome_is_a_failure() {
    vrun(async {
        let g: TaskGroup<Result<i32, String>> = TaskGroup::with_outcomes(Wait::All);
        let slow = g.spawn(async {
            sleep(secs(5.0)).await;
            Ok(1)
        });
        let bad = g.spawn(async { Err("bad".to_string()) });
        g.join().await;
        // The failure ended the wait early and the slow member was cancelled.
        assert_eq!(g.completed().unwrap(), Some(bad));
        assert!(slow.is_cancelled());
        assert_eq!(g.result().unwrap(), Err("bad".to_string()));
    });
}
