//! Running a test body in a child process: for tests that count descriptors or threads, or need
//! an environment variable, so other tests in the same process cannot disturb them.

use std::process::Command;

const VAR: &str = "CURIO_TEST_CHILD";

/// Returns `true` in the child (run the body); in the parent, re-executes this test binary for
/// test `name` (its full path, e.g. `handle::kernel_drop_leaves_nothing`) with `envs` set, asserts
/// that the child passed, and returns `false`.
pub(crate) fn in_child(name: &str, envs: &[(&str, &str)]) -> bool {
    if std::env::var(VAR).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .envs(envs.iter().copied())
        .output()
        .expect("re-execute the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Open descriptors of this process.
pub(crate) fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Threads of this process, from the kernel's own count (`Threads:` in `/proc/self/status`).
///
/// Not by listing `/proc/self/task`: a listing made while another thread exits can skip a live
/// thread, which once made a storm case see one thread too few at its start and report a leak.
pub(crate) fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line in /proc/self/status")
}

/// The names of this process's threads, for a message about threads left behind.
pub(crate) fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}
