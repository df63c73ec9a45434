//! A randomized stress test of structured concurrency: random trees of tasks and groups
//! (sleeps, shields, nested timeouts, task-locals) cancelled at random virtual times.
//!
//! After each tree, it asserts that no task, timer or task-local is left (`Kernel::task_count`,
//! `Kernel::timer_count`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use curio::{Kernel, TaskGroup, TaskRef, Wait, task_local};

/// xorshift64*: a small deterministic generator, so a failing seed can be replayed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// A task-local value that counts its live copies.
struct Tracked(Rc<Cell<i64>>);

impl Tracked {
    fn new(alive: &Rc<Cell<i64>>) -> Tracked {
        alive.set(alive.get() + 1);
        Tracked(alive.clone())
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(&self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

task_local! {
    static TRACK: Tracked;
}

struct Ctx {
    alive: Rc<Cell<i64>>,
    members: RefCell<Vec<TaskRef>>,
}

type Node = Pin<Box<dyn Future<Output = ()>>>;

fn node(seed: u64, depth: u32, ctx: Rc<Ctx>) -> Node {
    Box::pin(async move {
        let mut rng = Rng(seed | 1);
        for _ in 0..=rng.below(3) {
            let leaf = depth >= 3;
            match rng.below(if leaf { 2 } else { 6 }) {
                0 => curio::sleep(rng.ms(40)).await,
                1 => curio::disable_cancellation(curio::sleep(rng.ms(20))).await,
                2 => {
                    let _ =
                        curio::timeout_after(rng.ms(30), node(rng.next(), depth + 1, ctx.clone()))
                            .await;
                }
                3 => {
                    let _ = curio::ignore_after(
                        rng.ms(30),
                        curio::disable_cancellation(node(rng.next(), depth + 1, ctx.clone())),
                    )
                    .await;
                }
                4 => {
                    let g: TaskGroup<()> = match rng.below(3) {
                        0 => TaskGroup::new(Wait::All),
                        1 => TaskGroup::new(Wait::Any),
                        _ => TaskGroup::new(Wait::None),
                    };
                    for _ in 0..=rng.below(3) {
                        let member = g.spawn(node(rng.next(), depth + 1, ctx.clone()));
                        ctx.members.borrow_mut().push(member);
                    }
                    if rng.below(4) > 0 {
                        g.join().await;
                    }
                }
                _ => {
                    TRACK.set(Tracked::new(&ctx.alive)).unwrap();
                    node(rng.next(), depth + 1, ctx.clone()).await;
                }
            }
        }
    })
}

#[test]
fn random_trees_cancelled_at_random_times() {
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    let (mut members_total, mut cut_short) = (0, 0);
    for tree in 0..1000 {
        let seed = rng.next();
        let cancel_at = rng.ms(60);
        let ctx = Rc::new(Ctx {
            alive: Rc::new(Cell::new(0)),
            members: RefCell::new(Vec::new()),
        });
        let c = ctx.clone();
        let mut kernel = Kernel::builder().virtual_clock(true).build();
        let cancelled = kernel.run(async move {
            let root = curio::spawn(node(seed, 0, c.clone()));
            curio::sleep(cancel_at).await;
            let was_running = !root.is_terminated();
            root.cancel().await;
            assert!(root.is_terminated(), "tree {tree}: root alive after cancel");
            let cancelled = root.join().await.is_err();
            assert!(
                !cancelled || was_running,
                "tree {tree}: only a running root is cancelled"
            );
            // Members of groups dropped by an expired timeout were asked to stop; they end in
            // their own turn (a shield first finishes).
            let members = c.members.borrow().clone();
            for m in &members {
                m.wait().await;
            }
            cancelled
        });
        assert_eq!(
            kernel.task_count(),
            0,
            "tree {tree} (seed {seed}): tasks alive"
        );
        for m in ctx.members.borrow().iter() {
            assert!(m.is_terminated(), "tree {tree}: member {} alive", m.id());
        }
        assert_eq!(
            kernel.timer_count(),
            0,
            "tree {tree} (seed {seed}): timers left"
        );
        assert_eq!(
            ctx.alive.get(),
            0,
            "tree {tree} (seed {seed}): task-locals left"
        );
        members_total += ctx.members.borrow().len();
        cut_short += usize::from(cancelled);
    }
    // The trees are big enough, and the cancels early enough, to exercise the cascade.
    assert!(
        members_total > 1500,
        "only {members_total} group members in all"
    );
    assert!(
        cut_short > 300,
        "only {cut_short} trees were cancelled while running"
    );
    eprintln!("stress: {members_total} group members, {cut_short} trees cut short");
}
