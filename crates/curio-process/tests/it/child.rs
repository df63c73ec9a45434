//! Running a test body in a child process of the test binary, for tests that change
//! process-wide state (signal dispositions, the pidfd switch) or count descriptors and zombies.

use std::process::Command;

const VAR: &str = "CURIO_PROCESS_TEST_CHILD";

/// Returns `true` in the child (run the body); in the parent, re-executes this test binary for
/// test `name` (its full path, e.g. `signal::test_signal`), asserts that the child passed, and
/// returns `false`.
pub(crate) fn in_child(name: &str) -> bool {
    if std::env::var(VAR).as_deref() == Ok(name) {
        return true;
    }
    let out = run_child(name, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Re-executes this test binary for test `name` with `envs`, and returns what it did.
pub(crate) fn run_child(name: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .envs(envs.iter().copied())
        .output()
        .expect("re-execute the test binary")
}

/// Whether this process is the child run for `name`.
pub(crate) fn is_child(name: &str) -> bool {
    std::env::var(VAR).as_deref() == Ok(name)
}

/// Open descriptors of this process.
pub(crate) fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Children of this process that are zombies (state `Z` in `/proc/<pid>/stat`).
pub(crate) fn zombie_count() -> usize {
    let me = std::process::id().to_string();
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last `)`.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next());
        if state == Some("Z") && ppid == Some(me.as_str()) {
            n += 1;
        }
    }
    n
}

/// Live children of this process (any state).
pub(crate) fn child_count() -> usize {
    let me = std::process::id().to_string();
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            n += 1;
        }
    }
    n
}
