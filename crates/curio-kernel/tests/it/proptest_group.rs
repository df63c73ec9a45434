//! Property tests of `TaskGroup`'s wait policies against a model, on the virtual clock.
//!
//! A random group (policy `All`, `Any`, `Object` or `None`; built with `new` or `with_outcomes`)
//! gets members that end in a random order (distinct times) with a random end: a value `Ok(v)`,
//! a value `Err(v)` (a failure only for `with_outcomes`), a panic, or a cancellation by another
//! task; some are daemons.
//! The owner takes a random number of members with `next_result`, joins (twice), and reads the
//! group back with one of the three orders of `result`, `results` and `outcomes`.
//! The model replays the members' ends in time order with the policy as the module documents it
//! (`join` stops at the first failure, at the first end under `Any`, at the first object under
//! `Object`, at once under `None` or when a member taken by `next_result` decided the group), and
//! must agree on the time the join returned, `completed`, `tasks`, `len`, `exceptions`, the
//! outcomes (members still running when the join stopped are cancelled by it), and the errors
//! `result`, `results` and `outcomes` give once something was moved out.

use std::sync::Once;
use std::time::Duration;

use curio_kernel::{GroupError, Kernel, TaskError, TaskGroup, TaskRef, Wait, clock, sleep, spawn};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The payload of a member's planned panic; the panic hook keeps these quiet.
const PLANNED: &str = "planned panic of a group member";

/// Silences the planned panics, forwarding every other panic to the default hook.
fn quiet_planned_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PLANNED) {
                default(info);
            }
        }));
    });
}

/// How a member ends, unless the group cancels it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Returns `Ok(v)`.
    Ok(u32),
    /// Returns `Err(v)`: a failure for a group made by `with_outcomes`, an object otherwise.
    Err(u32),
    /// Panics.
    Panic,
    /// Cancelled by another task (not the group): a failure.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    All,
    Any,
    Object,
    None,
}

/// Which calls read the group after the join.
#[derive(Debug, Clone, Copy)]
enum Query {
    /// `outcomes`, then `outcomes` again.
    Outcomes,
    /// `result` twice, then `results`, then `outcomes`.
    Result,
    /// `results`, then `outcomes`.
    Results,
}

#[derive(Debug, Clone)]
struct Member {
    end: End,
    /// When it ends, in steps of 10 ms after the start; distinct across members.
    at: u64,
    daemon: bool,
}

#[derive(Debug, Clone)]
struct Case {
    policy: Policy,
    /// Made by `with_outcomes` (always for `Object`).
    outcomes: bool,
    members: Vec<Member>,
    /// How many `next_result` calls come before the join.
    take: usize,
    query: Query,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        4 => (0u32..100).prop_map(End::Ok),
        2 => (0u32..100).prop_map(End::Err),
        1 => Just(End::Panic),
        1 => Just(End::Cancelled),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let policy = prop_oneof![
        Just(Policy::All),
        Just(Policy::Any),
        Just(Policy::Object),
        Just(Policy::None),
    ];
    let query = prop_oneof![
        Just(Query::Outcomes),
        Just(Query::Result),
        Just(Query::Results)
    ];
    (0usize..7)
        .prop_flat_map(move |n| {
            (
                policy.clone(),
                any::<bool>(),
                prop::collection::vec((end(), prop::bool::weighted(0.2)), n),
                Just((1..=n as u64).collect::<Vec<_>>()).prop_shuffle(),
                0..=n + 1,
                query.clone(),
            )
        })
        .prop_map(|(policy, outcomes, ends, order, take, query)| Case {
            policy,
            outcomes: outcomes || policy == Policy::Object,
            members: ends
                .into_iter()
                .zip(order)
                .map(|((end, daemon), at)| Member { end, at, daemon })
                .collect(),
            take,
            query,
        })
}

/// What a member's outcome is after the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It ended on its own.
    Ended(End),
    /// The group's join cancelled it.
    CancelledByGroup,
}

impl Outcome {
    /// Whether the outcome is a `TaskError` (not a value).
    fn is_error(self) -> bool {
        !matches!(self, Outcome::Ended(End::Ok(_) | End::Err(_)))
    }
}

/// What the model predicts.
#[derive(Debug)]
struct Prediction {
    /// The ends `next_result` returns, in order (`None` once no member is left).
    taken: Vec<Option<usize>>,
    /// The virtual time (in ms) at which the join returns.
    joined_at: u64,
    /// The member `completed` names.
    completed: Option<usize>,
    /// Every member's outcome after the join, by creation index.
    outcome: Vec<Outcome>,
}

/// Whether an end is a failure and whether it is an object, for this group.
fn classify(end: End, outcomes: bool) -> (bool, bool) {
    match end {
        End::Ok(_) => (false, true),
        End::Err(_) if outcomes => (true, false),
        End::Err(_) => (false, true),
        End::Panic | End::Cancelled => (true, false),
    }
}

/// Replays the members' ends in time order under the documented policy.
fn predict(c: &Case) -> Prediction {
    let mut by_time: Vec<usize> = (0..c.members.len())
        .filter(|&i| !c.members[i].daemon)
        .collect();
    by_time.sort_by_key(|&i| c.members[i].at);
    let mut now = 0;
    let mut completed = None;
    let mut decided = false;
    let mut taken = Vec::new();
    // `next_result`: the next member to end, taken out; it may decide the group.
    for j in 0..c.take {
        let Some(&i) = by_time.get(j) else {
            taken.push(None);
            continue;
        };
        now = c.members[i].at * 10;
        taken.push(Some(i));
        let (failure, object) = classify(c.members[i].end, c.outcomes);
        let decides = match c.policy {
            Policy::Any => true,
            Policy::Object => object || failure,
            Policy::All => failure,
            Policy::None => false,
        };
        if decides {
            decided = true;
            completed = completed.or(Some(i));
        }
    }
    let rest = &by_time[c.take.min(by_time.len())..];
    // `join`: waits as the policy says unless the group is decided.
    if c.policy != Policy::None && !decided {
        for &i in rest {
            now = c.members[i].at * 10;
            let (failure, object) = classify(c.members[i].end, c.outcomes);
            let decides = match c.policy {
                Policy::Object => object || failure,
                _ => true,
            };
            if decides {
                completed = completed.or(Some(i));
            }
            if failure || c.policy == Policy::Any || (c.policy == Policy::Object && object) {
                break;
            }
        }
    }
    let outcome = c
        .members
        .iter()
        .map(|m| {
            if m.at * 10 <= now {
                Outcome::Ended(m.end)
            } else {
                Outcome::CancelledByGroup
            }
        })
        .collect();
    Prediction {
        taken,
        joined_at: now,
        completed,
        outcome,
    }
}

type Output = Result<u32, u32>;

fn group(c: &Case) -> TaskGroup<Output> {
    match (c.policy, c.outcomes) {
        (Policy::All, false) => TaskGroup::new(Wait::All),
        (Policy::Any, false) => TaskGroup::new(Wait::Any),
        (Policy::None, false) => TaskGroup::new(Wait::None),
        (Policy::All, true) => TaskGroup::with_outcomes(Wait::All),
        (Policy::Any, true) => TaskGroup::with_outcomes(Wait::Any),
        (Policy::None, true) => TaskGroup::with_outcomes(Wait::None),
        (Policy::Object, _) => TaskGroup::with_outcomes(Wait::Object),
    }
}

/// Checks an outcome read from the group against the model's.
fn check_outcome(
    got: &Result<Output, TaskError>,
    want: Outcome,
    task: &TaskRef,
) -> Result<(), TestCaseError> {
    match (want, got) {
        (Outcome::Ended(End::Ok(v)), Ok(Ok(g))) if *g == v => {}
        (Outcome::Ended(End::Err(v)), Ok(Err(g))) if *g == v => {}
        (Outcome::Ended(End::Panic), Err(e)) if e.is_panic() => {}
        (Outcome::Ended(End::Cancelled) | Outcome::CancelledByGroup, Err(e))
            if e.is_cancelled() => {}
        _ => {
            return Err(TestCaseError::fail(format!(
                "task {:?}: want {want:?}, got {got:?}",
                task.id()
            )));
        }
    }
    if let Err(e) = got {
        prop_assert_eq!(e.task_id(), task.id());
    }
    Ok(())
}

/// Checks a copy of an error (`exceptions`, `GroupError::Failed`) against the model's outcome.
fn check_error(got: &TaskError, want: Outcome, task: &TaskRef) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.task_id(), task.id());
    prop_assert_eq!(got.is_panic(), want == Outcome::Ended(End::Panic));
    prop_assert_eq!(
        got.is_cancelled(),
        want.is_error() && want != Outcome::Ended(End::Panic)
    );
    Ok(())
}

async fn run_case(c: Case) -> Result<(), TestCaseError> {
    let want = predict(&c);
    let start = clock();
    let g = group(&c);
    let mut refs = Vec::new();
    let mut helpers = Vec::new();
    for m in &c.members {
        let (end, after) = (m.end, Duration::from_millis(m.at * 10));
        let fut = async move {
            match end {
                End::Ok(v) => {
                    sleep(after).await;
                    Ok(v)
                }
                End::Err(v) => {
                    sleep(after).await;
                    Err(v)
                }
                End::Panic => {
                    sleep(after).await;
                    std::panic::panic_any(PLANNED)
                }
                End::Cancelled => std::future::pending().await,
            }
        };
        let r = if m.daemon {
            g.spawn_daemon(fut)
        } else {
            g.spawn(fut)
        };
        if end == End::Cancelled {
            let victim = r.clone();
            helpers.push(spawn(async move {
                sleep(after).await;
                victim.cancel_nowait();
            }));
        }
        refs.push(r);
    }
    let ms = |t: std::time::Instant| (t - start).as_millis() as u64;

    for (j, &want_taken) in want.taken.iter().enumerate() {
        let got = g.next_result().await;
        match (want_taken, &got) {
            (None, None) => {}
            (Some(i), Some(r)) => {
                check_outcome(r, Outcome::Ended(c.members[i].end), &refs[i])?;
                prop_assert_eq!(ms(clock()), c.members[i].at * 10, "next_result {}", j);
            }
            _ => {
                return Err(TestCaseError::fail(format!(
                    "next_result {j}: want {want_taken:?}, got {got:?}"
                )));
            }
        }
    }
    let taken: Vec<usize> = want.taken.iter().flatten().copied().collect();

    prop_assert!(matches!(g.completed(), Err(GroupError::NotJoined)));
    g.join().await;
    prop_assert_eq!(
        ms(clock()),
        want.joined_at,
        "join returned at the wrong time"
    );
    g.join().await;
    prop_assert_eq!(ms(clock()), want.joined_at, "a second join waited");
    for r in &refs {
        prop_assert!(r.is_terminated(), "a member outlived the join");
    }

    // Members still in the group: every non-daemon not taken out, in creation order.
    let in_group: Vec<usize> = (0..c.members.len())
        .filter(|i| !c.members[*i].daemon && !taken.contains(i))
        .collect();
    let daemons = c.members.iter().filter(|m| m.daemon).count();
    prop_assert_eq!(g.len(), in_group.len() + daemons);
    let tasks = g.tasks().unwrap();
    prop_assert_eq!(
        tasks,
        in_group
            .iter()
            .map(|&i| refs[i].clone())
            .collect::<Vec<_>>()
    );
    prop_assert_eq!(
        g.completed().unwrap(),
        want.completed.map(|i| refs[i].clone())
    );
    let exceptions = g.exceptions().unwrap();
    prop_assert_eq!(exceptions.len(), in_group.len());
    for (e, &i) in exceptions.iter().zip(&in_group) {
        prop_assert_eq!(
            e.is_some(),
            want.outcome[i].is_error(),
            "exceptions of {}",
            i
        );
        if let Some(e) = e {
            check_error(e, want.outcome[i], &refs[i])?;
        }
    }

    let first_failure = in_group
        .iter()
        .copied()
        .find(|&i| want.outcome[i].is_error());
    let check_outcomes = |got: Result<Vec<Result<Output, TaskError>>, GroupError>| {
        let got = got.map_err(|e| TestCaseError::fail(format!("outcomes: {e}")))?;
        prop_assert_eq!(got.len(), in_group.len());
        for (r, &i) in got.iter().zip(&in_group) {
            check_outcome(r, want.outcome[i], &refs[i])?;
        }
        Ok::<(), TestCaseError>(())
    };
    let check_failed = |got: &GroupError, i: usize| match got {
        GroupError::Failed(e) => check_error(e, want.outcome[i], &refs[i]),
        other => Err(TestCaseError::fail(format!("want Failed, got {other:?}"))),
    };
    match c.query {
        Query::Outcomes => {
            check_outcomes(g.outcomes())?;
            if in_group.is_empty() {
                prop_assert!(g.outcomes().unwrap().is_empty());
            } else {
                prop_assert!(matches!(g.outcomes(), Err(GroupError::Taken)));
            }
        }
        Query::Result => {
            let moved = match want.completed {
                None => {
                    prop_assert!(matches!(g.result(), Err(GroupError::NoCompleted)));
                    false
                }
                // A member taken out by `next_result` left the group with its output.
                Some(i) if taken.contains(&i) => {
                    prop_assert!(matches!(g.result(), Err(GroupError::Taken)));
                    false
                }
                Some(i) if want.outcome[i].is_error() => {
                    check_failed(&g.result().unwrap_err(), i)?;
                    // The error stays in the group.
                    check_failed(&g.result().unwrap_err(), i)?;
                    false
                }
                Some(i) => {
                    let v = g.result().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    check_outcome(&Ok(v), want.outcome[i], &refs[i])?;
                    prop_assert!(matches!(g.result(), Err(GroupError::Taken)));
                    true
                }
            };
            match (first_failure, g.results()) {
                (Some(i), Err(e)) => check_failed(&e, i)?,
                (None, Err(GroupError::Taken)) if moved => {}
                (None, Ok(values)) if !moved => {
                    prop_assert_eq!(values.len(), in_group.len());
                    for (v, &i) in values.into_iter().zip(&in_group) {
                        check_outcome(&Ok(v), want.outcome[i], &refs[i])?;
                    }
                }
                (want_failure, got) => {
                    return Err(TestCaseError::fail(format!(
                        "results after result: failure {want_failure:?}, moved {moved}, got {got:?}"
                    )));
                }
            }
            if moved {
                prop_assert!(matches!(g.outcomes(), Err(GroupError::Taken)));
            } else if first_failure.is_some() {
                check_outcomes(g.outcomes())?;
            }
        }
        Query::Results => match (first_failure, g.results()) {
            (Some(i), Err(e)) => {
                check_failed(&e, i)?;
                // Nothing was moved out.
                check_outcomes(g.outcomes())?;
            }
            (None, Ok(values)) => {
                prop_assert_eq!(values.len(), in_group.len());
                for (v, &i) in values.into_iter().zip(&in_group) {
                    check_outcome(&Ok(v), want.outcome[i], &refs[i])?;
                }
                if !in_group.is_empty() {
                    prop_assert!(matches!(g.outcomes(), Err(GroupError::Taken)));
                }
            }
            (want_failure, got) => {
                return Err(TestCaseError::fail(format!(
                    "results: want failure {want_failure:?}, got {got:?}"
                )));
            }
        },
    }
    for h in &helpers {
        h.cancel_nowait();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(256)))]

    #[test]
    fn policies_match_the_model(c in case()) {
        quiet_planned_panics();
        Kernel::builder().virtual_clock(true).build().run(run_case(c))?;
    }
}
