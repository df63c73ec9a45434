//! Running a test body in a child process: for tests that count processes or threads, so other
//! tests in the same process cannot disturb them.

use std::process::Command;

const VAR: &str = "CURIO_TEST_CHILD";

/// Returns `true` in the child (run the body); in the parent, re-executes this test binary for
/// test `name` (its full path), asserts that the child passed, and returns `false`.
pub(crate) fn in_child(name: &str) -> bool {
    if std::env::var(VAR).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
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

/// The live children of this process, from `/proc`.
pub(crate) fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut kids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let ppid = f.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) && state != Some("Z") {
            kids.push(pid);
        }
    }
    kids
}
