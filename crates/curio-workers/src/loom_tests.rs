//! Model checks of the thread pool's hand-off under loom: submits, idle workers going to sleep,
//! cancelled calls and shutdown, in every interleaving up to the preemption bound.
//!
//! Run with `cargo xtask loom` (`RUSTFLAGS="--cfg loom" cargo test --release -p curio-workers
//! --features loom --lib loom`).
//!
//! The models run the real `ThreadPool` (its threads are loom threads) and the real
//! `RunInThread` from its submit on: only the kernel's `ExternalWork` guard is replaced, by a
//! probe that records when the job lets go of it. A lost notification leaves a thread blocked for
//! ever, which loom reports as a deadlock.
//! Not modelled: the idle timeout (loom's `Condvar::wait_timeout` never times out), so an idle
//! thread's exit and the pool's detaching of it; a refused thread spawn.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use loom::future::block_on;
use loom::sync::{Arc, Condvar, Mutex};

use crate::{ThreadPool, run_in_thread};

/// What became of each job of a model, recorded once per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ran,
    /// Dropped without running (shutdown, or a cancelled call).
    Dropped,
}

struct Outcomes {
    state: Mutex<Vec<Option<Outcome>>>,
    cv: Condvar,
}

impl Outcomes {
    fn new(n: usize) -> Arc<Outcomes> {
        Arc::new(Outcomes {
            state: Mutex::new(vec![None; n]),
            cv: Condvar::new(),
        })
    }

    fn record(&self, i: usize, outcome: Outcome) {
        let mut st = self.state.lock().unwrap();
        assert_eq!(
            st[i], None,
            "job {i} ended twice: {outcome:?} after {:?}",
            st[i]
        );
        st[i] = Some(outcome);
        drop(st);
        self.cv.notify_all();
    }

    /// Waits until every job has an outcome (a lost job is a deadlock) and returns them.
    fn wait_all(&self) -> Vec<Outcome> {
        let mut st = self.state.lock().unwrap();
        while st.iter().any(Option::is_none) {
            st = self.cv.wait(st).unwrap();
        }
        st.iter().map(|o| o.expect("waited for")).collect()
    }
}

/// Records job `i`'s outcome: `Ran` when told, `Dropped` if dropped before that.
struct Probe {
    outcomes: Arc<Outcomes>,
    i: usize,
    ran: bool,
}

impl Probe {
    fn new(outcomes: &Arc<Outcomes>, i: usize) -> Probe {
        Probe {
            outcomes: outcomes.clone(),
            i,
            ran: false,
        }
    }

    fn ran(mut self) {
        self.ran = true;
        self.outcomes.record(self.i, Outcome::Ran);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.ran {
            self.outcomes.record(self.i, Outcome::Dropped);
        }
    }
}

fn pool(max: usize) -> ThreadPool {
    ThreadPool::new(max, Duration::from_secs(10))
}

fn submit_probe(pool: &ThreadPool, outcomes: &Arc<Outcomes>, i: usize) {
    let probe = Probe::new(outcomes, i);
    pool.execute(Box::new(move || probe.ran())).unwrap();
}

/// Two jobs on a pool of two threads, the second submitted while the first thread may be
/// running, finishing or going to sleep: both run, once each, before shutdown; no thread
/// sleeps with a job queued (the wait would never end); shutdown joins the idle threads.
#[test]
fn loom_pool_every_job_runs_once() {
    loom::model(|| {
        let pool = pool(2);
        let outcomes = Outcomes::new(2);
        submit_probe(&pool, &outcomes, 0);
        submit_probe(&pool, &outcomes, 1);
        assert_eq!(outcomes.wait_all(), [Outcome::Ran; 2]);
        drop(pool);
    });
}

/// The same with one thread, which must take the second job when it finishes the first.
#[test]
fn loom_pool_one_thread_takes_the_queue() {
    loom::model(|| {
        let pool = pool(1);
        let outcomes = Outcomes::new(2);
        submit_probe(&pool, &outcomes, 0);
        submit_probe(&pool, &outcomes, 1);
        assert_eq!(outcomes.wait_all(), [Outcome::Ran; 2]);
        assert_eq!(pool.thread_count(), 1);
        drop(pool);
    });
}

/// Shutdown right after two submits: each job runs once or is dropped unrun, never both, and
/// shutdown returns (it joins the idle threads and detaches a busy one, which finishes later).
#[test]
fn loom_pool_shutdown_races_the_jobs() {
    loom::model(|| {
        let pool = pool(1);
        let outcomes = Outcomes::new(2);
        submit_probe(&pool, &outcomes, 0);
        submit_probe(&pool, &outcomes, 1);
        drop(pool);
        outcomes.wait_all();
    });
}

/// A `run_in_thread` call polled to its end with a waker: the result reaches the caller
/// whether the worker finishes before, between or after the caller's two checks; the job lets
/// go of the kernel's guard (here a probe) exactly once.
#[test]
fn loom_pool_call_result_reaches_the_caller() {
    loom::model(|| {
        let pool = pool(1);
        let outcomes = Outcomes::new(2);
        let f = Probe::new(&outcomes, 1);
        let mut call = run_in_thread(move || {
            f.ran();
            7
        });
        let mut work = Some(Probe::new(&outcomes, 0));
        let out = block_on(poll_fn(|cx| {
            if let Some(work) = work.take() {
                call.submit(cx.waker(), &pool, work).unwrap();
                return Poll::Pending;
            }
            Pin::new(&mut call).poll(cx)
        }));
        assert_eq!(out, 7);
        drop(call);
        // The guard goes with the job, which may still be finishing.
        let [work, f] = outcomes.wait_all()[..] else {
            unreachable!()
        };
        assert_eq!((work, f), (Outcome::Dropped, Outcome::Ran));
        drop(pool);
    });
}

/// A call cancelled (its future dropped) after its submit, racing the worker and then
/// shutdown: the closure runs at most once and only if the worker took the job before the
/// cancel; the guard is let go of exactly once; shutdown returns.
#[test]
fn loom_pool_call_cancelled_while_queued() {
    loom::model(|| {
        let pool = pool(1);
        let outcomes = Outcomes::new(2);
        let f = Probe::new(&outcomes, 1);
        let mut call = run_in_thread(move || {
            f.ran();
            7
        });
        let mut work = Some(Probe::new(&outcomes, 0));
        // One poll: the submit.
        block_on(poll_fn(|cx| {
            let work = work.take().expect("polled once");
            call.submit(cx.waker(), &pool, work).unwrap();
            Poll::Ready(())
        }));
        drop(call);
        drop(pool);
        // The closure's own probe is dropped unrun when the job sees the cancel.
        let outcome = outcomes.wait_all();
        assert_eq!(outcome[0], Outcome::Dropped);
    });
}
