//! Curio's monitor commands and their output.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::{Row, Shared};

/// The longest command line the server reads; a longer one is refused without being kept.
pub(crate) const LINE_LIMIT: usize = 4096;

/// A command line, parsed as Curio's monitor does: by prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Empty,
    Quit,
    Parents(Result<u64, String>),
    Ps,
    Where(Result<u64, String>),
    Cancel(Result<u64, String>),
    Signal(String),
    Help,
    Unknown,
}

fn task_id(arg: Option<&str>) -> Result<u64, String> {
    match arg {
        None => Err("missing task id".to_owned()),
        Some(a) => a
            .parse()
            .map_err(|_| format!("invalid task id {a:?}: expected a number")),
    }
}

impl Command {
    pub(crate) fn parse(line: &str) -> Command {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else {
            return Command::Empty;
        };
        let arg = words.next();
        // Curio's order: quit, parents, ps, exit, cancel, signal, where, help.
        if cmd.starts_with('q') || cmd == "exit" {
            Command::Quit
        } else if cmd.starts_with("pa") {
            Command::Parents(task_id(arg))
        } else if cmd.starts_with('p') {
            Command::Ps
        } else if cmd == "cancel" {
            Command::Cancel(task_id(arg))
        } else if cmd == "signal" {
            Command::Signal(arg.unwrap_or_default().to_owned())
        } else if cmd.starts_with('w') {
            Command::Where(task_id(arg))
        } else if cmd.starts_with('h') {
            Command::Help
        } else {
            Command::Unknown
        }
    }
}

/// What the server sends back.
pub(crate) enum Reply {
    Text(String),
    Quit,
}

const HELP: &str = "Commands:
    ps               : Show task table
    where taskid     : Show where a task was spawned and where it waits
    parents taskid   : Show a task and its parent tasks
    cancel taskid    : Cancel a task (when enabled)
    signal signame   : Send a signal to the program (when enabled)
    quit             : Leave the monitor
";

pub(crate) fn run(cmd: Command, kernels: &[Arc<Shared>]) -> Reply {
    Reply::Text(match cmd {
        Command::Empty => String::new(),
        Command::Quit => return Reply::Quit,
        Command::Help => HELP.to_owned(),
        Command::Unknown => "Unknown command. Type help.\n".to_owned(),
        Command::Ps => ps(kernels),
        Command::Where(Ok(id)) => match find(kernels, id) {
            Some(row) => where_(&row),
            None => format!("No task {id}\n"),
        },
        Command::Parents(Ok(id)) => parents(kernels, id),
        Command::Cancel(Ok(id)) => cancel(kernels, id),
        Command::Signal(name) => signal(kernels, &name),
        Command::Where(Err(e)) | Command::Parents(Err(e)) | Command::Cancel(Err(e)) => {
            format!("Bad command. {e}\n")
        }
    })
}

fn find(kernels: &[Arc<Shared>], id: u64) -> Option<Row> {
    kernels
        .iter()
        .find_map(|k| k.lock().tasks.get(&id).cloned())
}

/// Curio's column layout: `Task`(6) `State`(12) `Cycles`(10) `Timeout`(7) `Sleep`(7) `Task`(50).
fn ps(kernels: &[Arc<Shared>]) -> String {
    let mut out = String::new();
    for (i, k) in kernels.iter().enumerate() {
        let table = k.lock();
        if kernels.len() > 1 {
            let _ = writeln!(out, "Kernel {}:", i + 1);
        }
        let _ = writeln!(
            out,
            "{:<6} {:<12} {:<10} {:<7} {:<7} {:<50}",
            "Task", "State", "Cycles", "Timeout", "Sleep", "Task"
        );
        let _ = writeln!(
            out,
            "{} {} {} {} {} {}",
            "-".repeat(6),
            "-".repeat(12),
            "-".repeat(10),
            "-".repeat(7),
            "-".repeat(7),
            "-".repeat(50)
        );
        for row in table.tasks.values() {
            let _ = writeln!(
                out,
                "{:<6} {:<12} {:<10} {:<7} {:<7} {}",
                row.id.as_u64(),
                row.state,
                row.cycles,
                "None",
                "None",
                row.name
            );
        }
    }
    out
}

fn where_(row: &Row) -> String {
    let mut out = format!(
        "Task {} ({}), {}\n  spawned at {}:{}\n",
        row.id.as_u64(),
        row.name,
        row.state,
        row.spawned_at.file(),
        row.spawned_at.line()
    );
    match row.wait {
        Some(site) => match site.location {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  waits on {:?} at {}:{}",
                    site.kind,
                    l.file(),
                    l.line()
                );
            }
            None => {
                let _ = writeln!(out, "  waits on {:?}", site.kind);
            }
        },
        None => out.push_str("  not waiting\n"),
    }
    out
}

/// One line per ancestor, the task first: id left-justified in 6, state right-justified in 12,
/// name.
fn parents(kernels: &[Arc<Shared>], id: u64) -> String {
    let mut out = String::new();
    let mut next = Some(id);
    let mut seen = 0;
    while let Some(id) = next {
        let Some(row) = find(kernels, id) else {
            break;
        };
        let _ = writeln!(out, "{:<6} {:>12} {}", id, row.state, row.name);
        next = row.parent;
        seen += 1;
        if seen > 10_000 {
            break;
        }
    }
    if out.is_empty() {
        out = format!("No task {id}\n");
    }
    out
}

/// Whether process-wide control commands (`signal`) are allowed: every kernel enabled control.
fn controls_allowed(kernels: &[Arc<Shared>]) -> bool {
    !kernels.is_empty() && kernels.iter().all(|k| k.control.load(Ordering::Relaxed))
}

const REFUSED: &str = "Refused: the monitor's control commands are off (enable them with \
                       `monitor_control(true)` on the kernel builder).\n";

/// `cancel ID`: allowed when the kernel that runs the task enabled control (so one kernel's
/// setting never opens another's tasks).
fn cancel(kernels: &[Arc<Shared>], id: u64) -> String {
    if !kernels.iter().any(|k| k.control.load(Ordering::Relaxed)) {
        return REFUSED.to_owned();
    }
    for k in kernels {
        let table = k.lock();
        if let (Some(row), Some(handle)) = (table.tasks.get(&id), &table.kernel) {
            if !k.control.load(Ordering::Relaxed) {
                return REFUSED.to_owned();
            }
            handle.cancel(row.id);
            return format!("Cancelling task {id}\n");
        }
    }
    format!("No task {id}\n")
}

fn signal(kernels: &[Arc<Shared>], name: &str) -> String {
    use rustix::process::{Signal, getpid, kill_process};
    if !controls_allowed(kernels) {
        return REFUSED.to_owned();
    }
    let sig = match name.to_ascii_uppercase().trim_start_matches("SIG") {
        "INT" => Signal::INT,
        "TERM" => Signal::TERM,
        "HUP" => Signal::HUP,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "QUIT" => Signal::QUIT,
        _ => return format!("Unknown signal {name}\n"),
    };
    match kill_process(getpid(), sig) {
        Ok(()) => format!("Sent {name}\n"),
        Err(e) => format!("Could not send {name}: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_by_prefix_as_in_curio() {
        assert_eq!(Command::parse("ps"), Command::Ps);
        assert_eq!(Command::parse("p"), Command::Ps);
        assert_eq!(Command::parse("parents 3"), Command::Parents(Ok(3)));
        assert_eq!(Command::parse("w 7"), Command::Where(Ok(7)));
        assert!(matches!(Command::parse("where"), Command::Where(Err(_))));
        assert!(matches!(Command::parse("where x"), Command::Where(Err(_))));
        assert_eq!(Command::parse("quit"), Command::Quit);
        assert_eq!(Command::parse("exit"), Command::Quit);
        assert_eq!(Command::parse("help"), Command::Help);
        assert_eq!(Command::parse("cancel 2"), Command::Cancel(Ok(2)));
        assert_eq!(Command::parse("signal INT"), Command::Signal("INT".into()));
        assert_eq!(Command::parse("bogus"), Command::Unknown);
        assert_eq!(Command::parse("   "), Command::Empty);
    }
}
