//! The kernel on its own: a fake parker and a manual clock instead of the reactor and the real
//! clock, so the scheduler's rules are tested without sockets, threads' timing or wall time.
//!
//! What these show: the kernel sleeps only through `Park` (with the timeout its timers ask for)
//! and reads time only through `Clock`; a cycle runs the tasks that were ready when it began, in
//! FIFO order; yielding tasks take turns; the budget is refilled each turn; a virtual clock jumps
//! exactly to the next deadline; another thread's spawn unparks the kernel.

mod proptest_group;
#[cfg(feature = "tracing")]
mod tracing;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use curio_kernel::{
    Clock, Kernel, Park, Unpark, Unparker, run_until_thread_done, sleep, spawn, yield_now,
};

/// The number of cases a property test runs: `PROPTEST_CASES` if set (a longer run), else
/// `default`.
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the fake parker saw.
#[derive(Default)]
struct ParkLog {
    /// The timeout of every park, in order.
    timeouts: Vec<Option<Duration>>,
}

/// The cross-thread part of the fake parker: a flag and a condition variable.
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    cond: Condvar,
    /// Parks without a timeout so far: another thread can wait until the kernel sleeps.
    idle_parks: Mutex<usize>,
    idle: Condvar,
}

impl Flag {
    /// Blocks until the kernel has entered `park(None)` at least once.
    fn wait_until_idle(&self) {
        let mut n = self.idle_parks.lock().unwrap();
        while *n == 0 {
            n = self
                .idle
                .wait_timeout(n, Duration::from_secs(10))
                .unwrap()
                .0;
        }
    }
}

impl Unpark for Flag {
    fn unpark(&self) {
        *self.set.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

/// A parker with no I/O. A park with a timeout moves the manual clock by that timeout (time
/// passes while the kernel sleeps); a park without one waits for an unpark, at most 10 s.
struct FakePark {
    log: Rc<RefCell<ParkLog>>,
    clock: ManualClock,
    flag: Arc<Flag>,
}

impl Park for FakePark {
    fn park(&self, timeout: Option<Duration>) -> io::Result<usize> {
        self.log.borrow_mut().timeouts.push(timeout);
        let mut set = self.flag.set.lock().unwrap();
        match timeout {
            Some(t) => self.clock.pass(t),
            None => {
                *self.flag.idle_parks.lock().unwrap() += 1;
                self.flag.idle.notify_all();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !*set {
                    let left = deadline.saturating_duration_since(Instant::now());
                    assert!(
                        !left.is_zero(),
                        "parked for ever: nothing unparked the kernel"
                    );
                    set = self.flag.cond.wait_timeout(set, left).unwrap().0;
                }
            }
        }
        *set = false;
        Ok(0)
    }

    fn unparker(&self) -> Unparker {
        Unparker::new(self.flag.clone())
    }
}

/// A clock that moves only when told; virtual (the kernel may jump it) or not.
#[derive(Clone)]
struct ManualClock {
    now: Rc<Cell<Instant>>,
    jumps: Rc<RefCell<Vec<Instant>>>,
    is_virtual: bool,
}

impl ManualClock {
    fn new(is_virtual: bool) -> ManualClock {
        ManualClock {
            now: Rc::new(Cell::new(Instant::now())),
            jumps: Rc::default(),
            is_virtual,
        }
    }

    fn pass(&self, d: Duration) {
        self.now.set(self.now.get() + d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }
    fn is_virtual(&self) -> bool {
        self.is_virtual
    }
    fn jump_to(&self, t: Instant) {
        self.jumps.borrow_mut().push(t);
        if t > self.now.get() {
            self.now.set(t);
        }
    }
}

/// A kernel on a fake parker and a manual clock, with what they record.
fn fake_kernel(is_virtual: bool) -> (Kernel, Rc<RefCell<ParkLog>>, ManualClock) {
    let (kernel, log, clock, _flag) = fake_kernel_with_flag(is_virtual);
    (kernel, log, clock)
}

/// As [`fake_kernel`], with the parker's cross-thread flag.
fn fake_kernel_with_flag(
    is_virtual: bool,
) -> (Kernel, Rc<RefCell<ParkLog>>, ManualClock, Arc<Flag>) {
    let log = Rc::new(RefCell::new(ParkLog::default()));
    let clock = ManualClock::new(is_virtual);
    let flag: Arc<Flag> = Arc::default();
    let park = FakePark {
        log: log.clone(),
        clock: clock.clone(),
        flag: flag.clone(),
    };
    let kernel = Kernel::builder()
        .park(Box::new(park))
        .clock(Box::new(clock.clone()))
        .build();
    (kernel, log, clock, flag)
}

#[test]
fn sleeps_through_park_with_the_timers_timeout() {
    let (mut kernel, log, clock) = fake_kernel(false);
    let start = clock.now();
    let woke = kernel.run(async {
        sleep(Duration::from_millis(250)).await;
        curio_kernel::clock()
    });
    // Nothing else to do: the kernel parked once, for exactly the sleep, and woke at its end.
    assert_eq!(log.borrow().timeouts, [Some(Duration::from_millis(250))]);
    assert_eq!(woke, start + Duration::from_millis(250));
    assert_eq!(kernel.clock(), woke);
}

#[test]
fn a_virtual_clock_jumps_exactly_to_the_next_deadline() {
    let (mut kernel, log, clock) = fake_kernel(true);
    let start = clock.now();
    let times = kernel.run(async {
        let a = spawn(async {
            sleep(Duration::from_millis(30)).await;
            curio_kernel::clock()
        });
        sleep(Duration::from_millis(10)).await;
        let t1 = curio_kernel::clock();
        (t1, a.join().await.unwrap())
    });
    assert_eq!(times.0, start + Duration::from_millis(10));
    assert_eq!(times.1, start + Duration::from_millis(30));
    assert_eq!(
        *clock.jumps.borrow(),
        [
            start + Duration::from_millis(10),
            start + Duration::from_millis(30)
        ]
    );
    // A virtual clock never blocks the thread: every park only looked.
    assert!(
        log.borrow()
            .timeouts
            .iter()
            .all(|t| *t == Some(Duration::ZERO))
    );
}

#[test]
fn a_cycle_runs_only_what_was_ready_when_it_began_in_fifo_order() {
    let (mut kernel, _log, _clock) = fake_kernel(true);
    let order: Rc<RefCell<Vec<&str>>> = Rc::default();
    let o = order.clone();
    kernel.run(async move {
        let o2 = o.clone();
        let _a = spawn(async move {
            o2.borrow_mut().push("a");
            // Spawned during this cycle: runs in the next one, after everything ready now.
            let o3 = o2.clone();
            let _c = spawn(async move { o3.borrow_mut().push("c") });
        });
        let o2 = o.clone();
        let _b = spawn(async move { o2.borrow_mut().push("b") });
        o.borrow_mut().push("main");
    });
    // `main` returns in its first turn; the tasks it spawned then run in the next cycles when
    // the kernel steps.
    kernel.step();
    assert_eq!(*order.borrow(), ["main", "a", "b"]);
    kernel.step();
    assert_eq!(*order.borrow(), ["main", "a", "b", "c"]);
}

#[test]
fn yielding_tasks_take_turns() {
    let (mut kernel, _log, _clock) = fake_kernel(true);
    let turns: Rc<RefCell<Vec<u32>>> = Rc::default();
    let t = turns.clone();
    kernel.run(async move {
        let tasks: Vec<_> = (0..3)
            .map(|n| {
                let t = t.clone();
                spawn(async move {
                    for _ in 0..3 {
                        t.borrow_mut().push(n);
                        yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.join().await.unwrap();
        }
    });
    assert_eq!(*turns.borrow(), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn the_budget_is_refilled_each_turn() {
    let (mut kernel, _log, _clock) = fake_kernel(true);
    let spent = kernel.run(async {
        let mut spent = Vec::new();
        for _ in 0..2 {
            spent.push(std::iter::from_fn(|| curio_core::consume_budget().then_some(())).count());
            yield_now().await;
        }
        spent
    });
    let full = curio_core::BUDGET_PER_TURN as usize;
    assert_eq!(spent, [full, full]);
}

#[test]
fn another_threads_spawn_unparks_the_kernel() {
    let (mut kernel, log, _clock, flag) = fake_kernel_with_flag(false);
    let handle = kernel.handle();
    let out = kernel.run(async move {
        let t = std::thread::spawn(move || {
            // Only once the kernel sleeps with nothing to do: the spawn must unpark it.
            flag.wait_until_idle();
            handle.spawn(async { 6 * 7 }).join_blocking()
        });
        run_until_thread_done(t).await
    });
    assert_eq!(out.unwrap().unwrap(), 42);
    // With nothing ready and no timer, the kernel waited in `park(None)` for the unpark.
    assert!(log.borrow().timeouts.contains(&None));
}

#[test]
fn the_running_task_is_named_through_the_core_hook() {
    let (mut kernel, _log, _clock) = fake_kernel(true);
    let (id, hook) = kernel.run(async {
        let t = spawn(async {
            (
                curio_kernel::current_task().id().as_u64(),
                curio_core::current_task_id().map(|n| n.get()),
            )
        });
        t.join().await.unwrap()
    });
    assert_eq!(Some(id), hook);
    assert_eq!(curio_core::current_task_id(), None, "outside a task turn");
}

#[test]
fn cancel_by_id_finds_the_task_and_never_a_later_one_in_its_slot() {
    let (mut kernel, _log, _clock) = fake_kernel(true);
    let handle = kernel.handle();
    kernel.run(async move {
        let a = spawn(async {});
        let old = a.id();
        a.join().await.unwrap();
        // `b` takes the slot `a` had; cancelling `a` by id must not reach it.
        let b = spawn(sleep(Duration::from_millis(5)));
        handle.cancel(old);
        yield_now().await;
        assert!(!b.is_cancelled());
        b.join().await.unwrap();
        let c = spawn(sleep(Duration::from_secs(60)));
        handle.cancel(c.id());
        assert!(c.join().await.unwrap_err().is_cancelled());
    });
}

#[test]
fn a_suspended_task_shows_where_it_waits() {
    use curio_kernel::{TaskRef, WaitKind};

    let (mut kernel, _log, _clock) = fake_kernel(true);
    kernel.run(async {
        let line = line!() + 1;
        let sleeper = spawn(async { sleep(Duration::from_secs(1)).await });
        let joiner_line = line!() + 3;
        let (s_ref, j_ref): (TaskRef, TaskRef) = {
            let s_ref = sleeper.task_ref();
            let joiner = spawn(async move { sleeper.join().await.unwrap() });
            (s_ref, joiner.task_ref())
        };
        assert_eq!(s_ref.wait_site(), None, "not run yet");
        yield_now().await;
        let site = s_ref.wait_site().expect("the sleeper waits");
        assert_eq!(site.kind, WaitKind::Sleep);
        assert_eq!(
            site.location.map(|l| (l.file(), l.line())),
            Some((file!(), line))
        );
        let site = j_ref.wait_site().expect("the joiner waits");
        assert_eq!(site.kind, WaitKind::Join);
        assert_eq!(site.location.map(|l| l.line()), Some(joiner_line));
        // The innermost wait wins over a timeout scope around it.
        let t = spawn(curio_kernel::timeout_after(Duration::from_secs(5), async {
            sleep(Duration::from_secs(2)).await
        }));
        yield_now().await;
        assert_eq!(
            t.task_ref().wait_site().map(|s| s.kind),
            Some(WaitKind::Sleep)
        );
        t.cancel().await;
        j_ref.wait().await;
    });
}

/// Records the hooks' events by name.
struct Recorder(Rc<RefCell<Vec<String>>>);

impl curio_kernel::Activation for Recorder {
    fn activate(&self) {
        self.0.borrow_mut().push("activate".into());
    }
    fn created(&self, t: &curio_kernel::TaskInfo<'_>) {
        self.0.borrow_mut().push(format!("created {}", t.name()));
    }
    fn running(&self, _: &curio_kernel::TaskInfo<'_>) {
        self.0.borrow_mut().push("running".into());
    }
    fn suspended(&self, _: &curio_kernel::TaskInfo<'_>) {
        self.0.borrow_mut().push("suspended".into());
    }
    fn terminated(&self, _: &curio_kernel::TaskInfo<'_>, how: curio_kernel::Ended<'_>) {
        self.0.borrow_mut().push(match how {
            curio_kernel::Ended::Panicked(msg) => format!("terminated: panicked: {msg}"),
            other => format!("terminated: {other:?}"),
        });
    }
}

/// Curio's `test_activation_base`: three sleeps give activate, created, then a running and
/// suspended pair per turn, and terminated at the end.
#[test]
fn test_activation_base() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let clock = ManualClock::new(true);
    let mut kernel = Kernel::builder()
        .clock(Box::new(clock))
        .activation(Recorder(log.clone()))
        .build();
    kernel.run(async {
        for _ in 0..3 {
            sleep(Duration::from_millis(100)).await;
        }
    });
    let mut expected = vec!["activate".to_string(), "created main".into()];
    for _ in 0..4 {
        expected.extend(["running".to_string(), "suspended".into()]);
    }
    expected.push("terminated: Returned".into());
    assert_eq!(*log.borrow(), expected);
}

/// Curio's `test_activation_crash`: a task that panics after one sleep ends with `suspended`,
/// then `terminated` with its message; the panic propagates out of `run`.
#[test]
fn test_activation_crash() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut kernel = Kernel::builder()
        .clock(Box::new(ManualClock::new(true)))
        .activation(Recorder(log.clone()))
        .build();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kernel.run(async {
            sleep(Duration::from_millis(100)).await;
            panic!("bad value");
        })
    }));
    assert!(out.is_err());
    assert_eq!(
        *log.borrow(),
        [
            "activate",
            "created main",
            "running",
            "suspended",
            "running",
            "suspended",
            "terminated: panicked: bad value"
        ]
    );
}

/// Curio's `test_activation_count`: every task a run creates is seen by the hooks, and each
/// terminates once.
#[test]
fn test_activation_count() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut kernel = Kernel::builder()
        .clock(Box::new(ManualClock::new(true)))
        .activation(Recorder(log.clone()))
        .build();
    kernel.run(async {
        let kids: Vec<_> = (0..3)
            .map(|i| {
                curio_kernel::Builder::new()
                    .name(format!("kid{i}"))
                    .spawn(yield_now())
            })
            .collect();
        for k in kids {
            k.join().await.unwrap();
        }
    });
    let log = log.borrow();
    let created: Vec<&String> = log.iter().filter(|l| l.starts_with("created")).collect();
    assert_eq!(
        created,
        [
            "created main",
            "created kid0",
            "created kid1",
            "created kid2"
        ]
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("terminated")).count(),
        4
    );
}

/// `longblock` reports a turn that ran 200 ms (on the manual clock, exactly) and no other;
/// `logcrash` reports a panicking task with its spawn site.
#[test]
fn longblock_and_logcrash_report_what_they_should() {
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let clock = ManualClock::new(true);
    let (r1, r2) = (reports.clone(), reports.clone());
    let mut kernel = Kernel::builder()
        .clock(Box::new(clock.clone()))
        .activation(
            curio_kernel::longblock(Duration::from_millis(50))
                .report_to(move |l| r1.borrow_mut().push(l.to_owned())),
        )
        .activation(curio_kernel::logcrash().report_to(move |l| r2.borrow_mut().push(l.to_owned())))
        .build();
    let c2 = clock.clone();
    let line = Rc::new(Cell::new(0));
    let l2 = line.clone();
    kernel.run(async move {
        let quick = curio_kernel::Builder::new()
            .name("quick")
            .spawn(yield_now());
        let b = curio_kernel::Builder::new().name("blocker");
        l2.set(line!() + 1);
        let blocker = b.spawn(async move {
            // Stands for 200 ms of work (or a blocking call) inside one turn.
            c2.pass(Duration::from_millis(200));
        });
        let crasher = curio_kernel::Builder::new()
            .name("crasher")
            .spawn(async { panic!("out of luck") });
        quick.join().await.unwrap();
        blocker.join().await.unwrap();
        assert!(crasher.join().await.unwrap_err().is_panic());
    });
    let (reports, line) = (reports.borrow(), line.get());
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert!(
        reports[0].contains("blocker")
            && reports[0].contains("ran for 200ms")
            && reports[0].contains(&format!("{}:{line}", file!())),
        "{}",
        reports[0]
    );
    assert!(
        reports[1].contains("crasher") && reports[1].contains("crashed: out of luck"),
        "{}",
        reports[1]
    );
}
