//! `cargo xtask test`: everything CI runs, in order, stopping at the first failure.
//!
//! The steps are rustfmt, clippy, the tests, a one-minute soak, the tests again on the `polling`
//! backend, clippy and the tests of the kernel with its `tracing` feature, a short loom run, the
//! doc tests, rustdoc with warnings as errors, and tidy.
//! The tests run under `cargo nextest` when it is installed (one process per test, and a
//! timeout for hung tests, see `.config/nextest.toml`), and under `cargo test` otherwise.
//! The benchmark crate is excluded from every step: it depends on peer runtimes whose build
//! would double the time CI takes on two cores.
//!
//! The last line printed is always `xtask: <n> passed, <m> failed`, counting steps.

use std::path::Path;
use std::process::ExitCode;

use crate::cmd::Cargo;
use crate::{BENCH_CRATE, LOOM_CRATES, SOAK_CRATE, has_bench_crate, tidy};

/// What a step runs.
enum Action {
    /// A cargo command.
    Cargo(Cargo),
    /// The tidy checks, run in this process.
    Tidy,
}

/// One step of the pipeline.
struct Step {
    /// The name printed in progress and failure messages.
    name: &'static str,
    /// What the step runs.
    action: Action,
}

impl Step {
    /// Runs the step in the workspace at `root`.
    ///
    /// # Errors
    ///
    /// Returns a message saying why the step failed.
    fn run(&self, root: &Path) -> Result<(), String> {
        match &self.action {
            Action::Cargo(command) => command.run(root),
            Action::Tidy => {
                eprintln!("$ cargo xtask tidy");
                tidy::run(root)
            }
        }
    }
}

/// Runs the pipeline on the workspace at `root`, passing `forwarded` to the test runner.
///
/// Returns failure if any step fails; the steps after it do not run.
pub(crate) fn run(root: &Path, forwarded: &[String]) -> ExitCode {
    let steps = steps(root, forwarded);
    let total = steps.len();
    let mut passed = 0;
    let mut failed = 0;
    for (index, step) in steps.iter().enumerate() {
        eprintln!("\nxtask test: step {}/{total}: {}", index + 1, step.name);
        match step.run(root) {
            Ok(()) => passed += 1,
            Err(message) => {
                failed += 1;
                eprintln!("\nxtask test: step `{}` failed: {message}", step.name);
                let skipped: Vec<&str> = steps[index + 1..].iter().map(|step| step.name).collect();
                if !skipped.is_empty() {
                    eprintln!("xtask test: not run: {}", skipped.join(", "));
                }
                break;
            }
        }
    }
    // One word and a colon before the counts: the plain closing line CI reads.
    println!("xtask: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Returns the steps to run, in order.
fn steps(root: &Path, forwarded: &[String]) -> Vec<Step> {
    let mut workspace = vec!["--workspace"];
    if has_bench_crate(root) {
        workspace.extend(["--exclude", BENCH_CRATE]);
    }
    vec![
        Step {
            name: "fmt",
            action: Action::Cargo(Cargo::new(&["fmt", "--all", "--", "--check"])),
        },
        Step {
            name: "clippy",
            action: Action::Cargo(Cargo::new(&["clippy"]).args(&workspace).args([
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])),
        },
        Step {
            name: "tests",
            action: Action::Cargo(test_command(root, &workspace).args(forwarded)),
        },
        Step {
            // The soak, CI-sized: a minute of 10,000 churning connections on the debug build
            // (longer pauses between exchanges than `cargo xtask soak`, for the slower code).
            name: "soak (60 s)",
            action: Action::Cargo(Cargo::new(&["run", "-p", SOAK_CRATE, "--"]).args([
                "--secs",
                "60",
                "--hold-ms",
                "3000",
            ])),
        },
        Step {
            // The portable `polling` selector is the default off Linux; run the reactor's and the
            // facade's tests on it here too, so it cannot rot unseen.
            name: "tests on the polling backend",
            action: Action::Cargo(
                test_command(root, &["-p", "curio-reactor", "-p", "curio-rt"])
                    .args(["--features", "curio-reactor/polling-backend"]),
            ),
        },
        Step {
            // The kernel's `tracing` feature: its spans and events, and lints of that code.
            name: "kernel with tracing",
            action: Action::Cargo(
                Cargo::new(&["clippy", "-p", "curio-kernel", "-p", "curio-rt"])
                    .args(["--features", "curio-rt/tracing", "--all-targets"])
                    .args(["--", "-D", "warnings"]),
            ),
        },
        Step {
            name: "tests with tracing",
            action: Action::Cargo(
                test_command(root, &["-p", "curio-kernel"]).args(["--features", "tracing"]),
            ),
        },
        Step {
            // The model checks, in a short form: loom with at most two preemptions per run.
            // `cargo xtask loom` runs them deeper.
            name: "loom (short)",
            action: Action::Cargo(
                Cargo::new(&["test", "--release"])
                    .args(LOOM_CRATES.iter().flat_map(|name| ["-p", name]))
                    .args([
                        "--features",
                        &LOOM_CRATES
                            .iter()
                            .map(|name| format!("{name}/loom"))
                            .collect::<Vec<_>>()
                            .join(","),
                        "--lib",
                        "loom",
                    ])
                    .env("RUSTFLAGS", "--cfg loom")
                    .env("LOOM_MAX_PREEMPTIONS", "2")
                    .env("CARGO_TARGET_DIR", "target/loom"),
            ),
        },
        Step {
            name: "doc tests",
            action: Action::Cargo(Cargo::new(&["test"]).args(&workspace).args(["--doc"])),
        },
        Step {
            // Broken intra-doc links and malformed docs fail here, as warnings turned errors.
            name: "docs",
            action: Action::Cargo(
                Cargo::new(&["doc", "--no-deps"])
                    .args(&workspace)
                    .env("RUSTDOCFLAGS", "-D warnings"),
            ),
        },
        Step {
            name: "tidy",
            action: Action::Tidy,
        },
    ]
}

/// Returns the command that runs the tests of `workspace`: nextest if installed, else cargo test.
///
/// Nextest uses its `ci` profile when the `CI` environment variable is set.
fn test_command(root: &Path, workspace: &[&str]) -> Cargo {
    if Cargo::new(&["nextest", "--version"]).probe(root) {
        let mut command = Cargo::new(&["nextest", "run"])
            .args(workspace)
            .args(["--all-targets"]);
        if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
            command = command.args(["--profile", "ci"]);
        }
        command
    } else {
        eprintln!("xtask test: cargo-nextest is not installed; the tests run under cargo test");
        Cargo::new(&["test"])
            .args(workspace)
            .args(["--all-targets"])
    }
}
