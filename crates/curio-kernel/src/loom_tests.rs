//! Model checks of the paths other threads take into a kernel, under loom: every interleaving of
//! a few threads (up to the preemption bound) must lose no wake and no result.
//!
//! Run with `cargo xtask loom` (`RUSTFLAGS="--cfg loom" cargo test --release -p curio-kernel
//! --features loom --lib loom`).
//!
//! The `kernel_*` models run the real `Kernel::run` and its shutdown on the model's main thread,
//! parked on [`ModelPark`] (a loom mutex and condition variable) instead of a reactor, whose own
//! wake protocol `curio-reactor` checks; every type those paths share with other threads comes
//! from the `sync` module, and the running kernel is a loom thread-local. A lost wake leaves the
//! kernel parked for ever, which loom reports as a deadlock.
//! Not modelled: async-task's own state machine (its atomics are std's, so a task's runnable is
//! only ever run and woken here on the kernel's thread), the reactor, timers and virtual time.
//! curio-core's thread-locals stay std's, which loom's threads share, so these models wait for a
//! remote task with its `Future` side; `join_blocking` is modelled in the `slot_*` models.
//!
//! The `slot_*` models drive a remote task's result slot (`RemoteSlot`, `DeliverOnDrop`) and the
//! real `RemoteTask` against a stand-in for the kernel's side, so they can cover what a live kernel
//! cannot reach in a few steps: a call dropped unrun, a cancel racing the task's start.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use curio_core::{Park, Unpark, Unparker};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crate::core::{Entry, Remote, Shared, with_core};
use crate::id::TaskId;
use crate::kernel::Kernel;
use crate::remote::{DeliverOnDrop, RemoteSlot, RemoteTask};

/// The parker of the models: a token that an unpark sets and a park takes, as a reactor's
/// notification does; a park with no timeout waits for it.
struct ModelPark(std::sync::Arc<Token>);

struct Token {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Unpark for Token {
    fn unpark(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

impl ModelPark {
    fn new() -> ModelPark {
        ModelPark(std::sync::Arc::new(Token {
            set: Mutex::new(false),
            cv: Condvar::new(),
        }))
    }
}

impl Park for ModelPark {
    fn park(&self, timeout: Option<Duration>) -> io::Result<usize> {
        let mut set = self.0.set.lock().unwrap();
        match timeout {
            // A look: takes a pending unpark, as the reactor's poll does.
            Some(Duration::ZERO) => {}
            None => {
                while !*set {
                    set = self.0.cv.wait(set).unwrap();
                }
            }
            Some(_) => panic!("the models set no timers"),
        }
        *set = false;
        Ok(0)
    }

    fn unparker(&self) -> Unparker {
        Unparker::new(self.0.clone())
    }
}

fn model_kernel() -> Kernel {
    Kernel::builder().park(Box::new(ModelPark::new())).build()
}

/// How many entries of a main future the running kernel's ready queue holds.
fn main_entries_ready() -> usize {
    with_core(|c| {
        c.expect("inside the kernel")
            .ready
            .borrow()
            .iter()
            .filter(|e| matches!(e, Entry::Main(_)))
            .count()
    })
}

/// Another thread wakes the parked main future twice through the same waker, each time after
/// a write the future must see. The kernel must not park through a wake, must see each write
/// after the wake that follows it (a wake that finds the entry already queued included), and
/// must never hold two entries of the main future.
#[test]
fn loom_kernel_main_woken_twice_from_another_thread() {
    loom::model(|| {
        let mut kernel = model_kernel();
        let data = Arc::new(AtomicUsize::new(0));
        let mut waker_thread = None;
        let mut polls = 0;
        kernel.run(poll_fn(|cx| {
            polls += 1;
            // Its own entry was taken off the queue for this turn.
            assert_eq!(main_entries_ready(), 0, "the main future was queued twice");
            if waker_thread.is_none() {
                let (w, d) = (cx.waker().clone(), data.clone());
                waker_thread = Some(thread::spawn(move || {
                    d.store(1, Ordering::Release);
                    w.wake_by_ref();
                    d.store(2, Ordering::Release);
                    w.wake_by_ref();
                }));
            }
            if data.load(Ordering::Acquire) == 2 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        assert!(polls <= 3, "{polls} turns for two wakes");
        waker_thread.expect("spawned").join().unwrap();
    });
}

/// Another thread spawns a task on the parked kernel, waits for its result with a waker (the
/// `Future` side of `RemoteTask`), then wakes the main future: the remote call's unpark, the
/// result's wake and the main future's wake must all arrive.
#[test]
fn loom_kernel_remote_spawn_while_parked() {
    loom::model(|| {
        let mut kernel = model_kernel();
        let handle = kernel.handle();
        let done = Arc::new(AtomicBool::new(false));
        let mut spawner = None;
        kernel.run(poll_fn(|cx| {
            if spawner.is_none() {
                let (w, d, h) = (cx.waker().clone(), done.clone(), handle.clone());
                spawner = Some(thread::spawn(move || {
                    let out = block_on(h.spawn(async { 7 }));
                    assert_eq!(out.unwrap(), 7);
                    d.store(true, Ordering::Release);
                    w.wake();
                }));
            }
            if done.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        spawner.expect("spawned").join().unwrap();
    });
}

/// Two threads each write and wake the main future once: whichever wake finds the entry queued,
/// the turn after it sees both writes.
#[test]
fn loom_kernel_main_woken_by_two_threads() {
    loom::model(|| {
        let mut kernel = model_kernel();
        let data = Arc::new(AtomicUsize::new(0));
        let mut wakers = Vec::new();
        kernel.run(poll_fn(|cx| {
            assert_eq!(main_entries_ready(), 0, "the main future was queued twice");
            if wakers.is_empty() {
                for _ in 0..2 {
                    let (w, d) = (cx.waker().clone(), data.clone());
                    wakers.push(thread::spawn(move || {
                        d.fetch_add(1, Ordering::Release);
                        w.wake();
                    }));
                }
            }
            if data.load(Ordering::Acquire) == 2 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        for t in wakers {
            t.join().unwrap();
        }
    });
}

/// Another thread spawns a task that never finishes by itself and cancels it at once, before or
/// after the kernel has started it (`RemoteTask::cancel`, then `KernelHandle::cancel`'s call):
/// the cancellation must reach the task and its waiter.
#[test]
fn loom_kernel_remote_cancel() {
    loom::model(|| {
        let mut kernel = model_kernel();
        let handle = kernel.handle();
        let done = Arc::new(AtomicBool::new(false));
        let mut canceller = None;
        kernel.run(poll_fn(|cx| {
            if canceller.is_none() {
                let (w, d, h) = (cx.waker().clone(), done.clone(), handle.clone());
                canceller = Some(thread::spawn(move || {
                    let task = h.spawn(std::future::pending::<()>());
                    task.cancel();
                    let err = block_on(task).unwrap_err();
                    assert!(err.is_cancelled(), "{err}");
                    d.store(true, Ordering::Release);
                    w.wake();
                }));
            }
            if done.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        canceller.expect("spawned").join().unwrap();
    });
}

/// A spawn races the kernel's last cycle and its shutdown (which closes the remote queue): the
/// call runs before the close or never, and the waiter always gets a result, the task's output
/// or a cancellation.
#[test]
fn loom_kernel_spawn_races_shutdown() {
    loom::model(|| {
        let mut kernel = model_kernel();
        let handle = kernel.handle();
        let spawner = thread::spawn(move || {
            let h2 = handle.clone();
            let task = handle.spawn_with(move || {
                assert!(!h2.is_closed(), "a call ran after its kernel closed");
                async { 7 }
            });
            // Awaited, not `join_blocking`: curio-core's current-task hook is a std thread-local,
            // which loom's threads share, so its blocking check could see the kernel's task.
            match block_on(task) {
                Ok(v) => assert_eq!(v, 7),
                Err(e) => assert!(e.is_cancelled(), "{e}"),
            }
        });
        // One cycle (the call may or may not be queued yet), then the shutdown.
        kernel.step();
        drop(kernel);
        spawner.join().unwrap();
    });
}

/// A stand-in for the kernel's shared part, for the `slot_*` models: nothing drains its queue
/// but the model, and its unparker wakes nobody.
fn model_shared() -> Arc<Shared> {
    Arc::new(Shared::new(ModelPark::new().unparker()))
}

fn task_id() -> TaskId {
    TaskId::new(5, 0)
}

/// The kernel's side of a remote task that runs to its end unless cancelled: `started`, then
/// the cancel calls that reached the kernel so far, then a result or a cancellation (the guard
/// dropped with the task's future). Returns whether `started` reported a cancel, and how many
/// cancel calls the kernel took.
fn kernel_side(mut guard: DeliverOnDrop<u32>, shared: &Shared) -> (bool, usize) {
    let cancel_at_start = guard.slot.started(task_id());
    let calls = take_calls(shared);
    if cancel_at_start || calls > 0 {
        drop(guard);
    } else {
        guard.slot.deliver(Ok(7));
        guard.delivered = true;
    }
    (cancel_at_start, calls)
}

/// Runs the calls queued on `shared` (`KernelHandle::cancel`'s, which find no kernel here and
/// do nothing) and returns how many there were.
fn take_calls(shared: &Shared) -> usize {
    let mut calls = 0;
    while let Ok(item) = shared.remote.pop() {
        match item {
            Remote::Call(f) => {
                f();
                calls += 1;
            }
            Remote::Ready(_) => unreachable!("no task is woken in these models"),
        }
    }
    calls
}

fn remote_parts(shared: &Arc<Shared>) -> (DeliverOnDrop<u32>, RemoteTask<u32>) {
    let slot = Arc::new(RemoteSlot::new());
    let guard = DeliverOnDrop {
        slot: slot.clone(),
        delivered: false,
    };
    let task = RemoteTask {
        slot,
        shared: shared.clone(),
    };
    (guard, task)
}

/// `cancel` then `join_blocking` against the kernel starting and finishing the task: the join
/// always returns; a cancel made before the task's id was known is honoured when the id
/// arrives, and one made after it sends the kernel a cancel call instead: exactly one of the two.
#[test]
fn loom_slot_cancel_races_the_start() {
    loom::model(|| {
        let shared = model_shared();
        let (guard, task) = remote_parts(&shared);
        let s2 = shared.clone();
        let kernel = thread::spawn(move || kernel_side(guard, &s2));
        task.cancel();
        let out = task.join_blocking();
        let (cancel_at_start, taken) = kernel.join().unwrap();
        let left = take_calls(&shared);
        assert_eq!(
            usize::from(cancel_at_start) + taken + left,
            1,
            "a cancel was lost or sent twice"
        );
        match out {
            // Only a cancel call that came too late lets the task finish.
            Ok(v) => assert_eq!((v, left), (7, 1)),
            Err(e) => {
                assert!(e.is_cancelled(), "{e}");
                assert_eq!(e.task_id(), task_id());
            }
        }
    });
}

/// The result reaches a waiter that polls with a waker, whichever comes first.
#[test]
fn loom_slot_deliver_vs_poll() {
    loom::model(|| {
        let shared = model_shared();
        let (guard, task) = remote_parts(&shared);
        let s2 = shared.clone();
        let kernel = thread::spawn(move || assert_eq!(kernel_side(guard, &s2), (false, 0)));
        assert_eq!(block_on(task).unwrap(), 7);
        kernel.join().unwrap();
    });
}

/// A call dropped unrun (the kernel shut down first) reports a cancellation to a waiter blocked
/// in `join_blocking`; a second delivery (the refused push's) does not replace the first.
#[test]
fn loom_slot_dropped_unrun_vs_join() {
    loom::model(|| {
        let shared = model_shared();
        let (guard, task) = remote_parts(&shared);
        let kernel = thread::spawn(move || {
            let slot = guard.slot.clone();
            drop(guard);
            slot.deliver(Ok(1));
        });
        let err = task.join_blocking().unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.task_id(), TaskId::none());
        kernel.join().unwrap();
    });
}

/// A waiter that polled once with a waker and then blocks in `join_blocking` still gets the
/// result, whenever it is delivered.
#[test]
fn loom_slot_poll_then_join() {
    loom::model(|| {
        let shared = model_shared();
        let (guard, mut task) = remote_parts(&shared);
        let s2 = shared.clone();
        let kernel = thread::spawn(move || kernel_side(guard, &s2));
        let first = block_on(poll_fn(|cx| match Pin::new(&mut task).poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Ready(None),
        }));
        let out = match first {
            Some(r) => r,
            None => task.join_blocking(),
        };
        assert_eq!(out.unwrap(), 7);
        kernel.join().unwrap();
    });
}
