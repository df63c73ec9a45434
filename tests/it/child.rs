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

/// Waits (up to [`LIMIT`](crate::LIMIT)) until this process has no more threads than `before`,
/// and fails naming them if it still has: a joined or exiting thread may linger in the kernel's
/// count for a moment, a leaked one does not leave.
pub(crate) fn wait_for_threads(before: usize, what: &str) {
    let deadline = std::time::Instant::now() + crate::LIMIT;
    while thread_count() > before {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} threads left: {:?}",
            thread_count() - before,
            thread_names()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Lowers this process's soft descriptor limit to `n` (the hard limit stays): for tests that
/// run out of descriptors on purpose, in a child process.
pub(crate) fn limit_descriptors(n: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(n),
            maximum: hard,
        },
    )
    .expect("setrlimit(RLIMIT_NOFILE)");
}
