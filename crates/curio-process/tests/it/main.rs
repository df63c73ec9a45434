//! curio-process's integration tests: Curio 1.6's `test_subprocess.py` and Curio 0.9's
//! `test_signal.py`, ported with their test names, plus the extra cases.
//! Tests that touch process-wide state (signal dispositions, the pidfd switch, descriptor
//! counts) run in a child process of this test binary (`child::in_child`).

mod child;
mod process;
mod signal;
mod stream;
mod subprocess;

use std::future::Future;
use std::time::Duration;

/// The longest any wait may take before a test fails instead of hanging (generous: a loaded
/// 2-core machine runs three builds at once).
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Awaits `fut` for at most [`LIMIT`].
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match curio_kernel::timeout_after(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no progress in {LIMIT:?}"),
    }
}

/// A `sh -c` command.
pub(crate) fn sh(script: &str) -> curio_process::Command {
    let mut c = curio_process::Command::new("sh");
    c.args(["-c", script]);
    c
}
