//! The `tracing` feature: each task is a `runtime.spawn` span with the fields tokio-console
//! reads, entered for each turn, and wakes are `runtime::waker` events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What the capturing subscriber saw.
#[derive(Default)]
struct Seen {
    spans: Vec<(String, String, BTreeMap<String, String>)>,
    enters: usize,
    wakes: Vec<BTreeMap<String, String>>,
    closed: Vec<u64>,
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

struct Capture(Arc<Mutex<Seen>>, Mutex<u64>);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut f = Fields(BTreeMap::new());
        attrs.record(&mut f);
        let parent = if attrs.is_root() { "root" } else { "child" };
        f.0.insert("parent".into(), parent.into());
        self.0.lock().unwrap().spans.push((
            attrs.metadata().name().to_owned(),
            attrs.metadata().target().to_owned(),
            f.0,
        ));
        let mut n = self.1.lock().unwrap();
        *n += 1;
        Id::from_u64(*n)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "runtime::waker" {
            let mut f = Fields(BTreeMap::new());
            event.record(&mut f);
            self.0.lock().unwrap().wakes.push(f.0);
        }
    }
    fn enter(&self, _: &Id) {
        self.0.lock().unwrap().enters += 1;
    }
    fn exit(&self, _: &Id) {}
    fn try_close(&self, id: Id) -> bool {
        self.0.lock().unwrap().closed.push(id.into_u64());
        true
    }
}

/// The id the capturing subscriber gave the span of the task named `name`.
fn span_of(seen: &Seen, name: &str) -> Option<u64> {
    let i = seen
        .spans
        .iter()
        .position(|(_, _, f)| f.get("task.name").map(String::as_str) == Some(name))?;
    Some(i as u64 + 1)
}

/// A finished task's span closes when the task ends, not when the kernel does (console would
/// show it alive until then).
#[test]
fn a_finished_tasks_span_closes_while_the_kernel_runs() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let subscriber = Capture(seen.clone(), Mutex::new(0));
    let seen2 = seen.clone();
    tracing::subscriber::with_default(subscriber, || {
        curio_kernel::run(async move {
            let t = curio_kernel::Builder::new().name("short").spawn(async {});
            t.join().await.unwrap();
            curio_kernel::yield_now().await;
            let seen = seen2.lock().unwrap();
            let id = span_of(&seen, "short").expect("a span for the task");
            assert!(
                seen.closed.contains(&id),
                "the finished task's span is still open"
            );
        });
    });
}

#[test]
fn tasks_are_console_shaped_spans() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let subscriber = Capture(seen.clone(), Mutex::new(0));
    let line = tracing::subscriber::with_default(subscriber, || {
        curio_kernel::run(async {
            let line = line!() + 1;
            let t = curio_kernel::Builder::new().name("worker").spawn(async {
                curio_kernel::yield_now().await;
            });
            t.join().await.unwrap();
            line
        })
    });
    let seen = seen.lock().unwrap();
    let (name, target, fields) = seen
        .spans
        .iter()
        .find(|(_, _, f)| f.get("task.name").map(String::as_str) == Some("worker"))
        .expect("a span for the worker");
    assert_eq!(name, "runtime.spawn");
    assert_eq!(target, "runtime::spawn");
    assert_eq!(fields["kind"], "task");
    assert_eq!(fields["parent"], "root");
    assert_eq!(fields["loc.file"], file!());
    assert_eq!(fields["loc.line"], line.to_string());
    assert!(fields.contains_key("loc.col") && fields.contains_key("task.id"));
    // main and worker: entered once per turn (the worker has two).
    assert!(seen.enters >= 3, "{}", seen.enters);
    assert!(
        seen.wakes
            .iter()
            .any(|w| w["op"] == "waker.wake" && w["task.id"] == fields["task.id"]),
        "{:?}",
        seen.wakes
    );
}
