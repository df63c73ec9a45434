//! The project's automation, written in Rust with std only: `cargo xtask <command>`.
//!
//! `cargo xtask test` runs everything CI runs, `cargo xtask tidy` turns the repository rules of
//! `STYLE.md` and `ARCHITECTURE.md` into failing checks, and `cargo xtask bench` and
//! `cargo xtask loom` run the benchmark suite and the model-checking tests.
//! Run `cargo xtask help` for the arguments each one takes.
//!
//! The `xtask` alias in `.cargo/config.toml` builds this package and runs it, so xtask has no
//! dependencies: it must build in seconds on a cold cache.
//! Every path is resolved against the workspace root, so the commands work from any directory.

mod cmd;
mod test;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::Cargo;

/// The help text printed by `cargo xtask help` and on a usage error.
const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  test [-- <args>]   run fmt, clippy, the tests, the doc tests and tidy, stopping at the
                     first failure; <args> go to the test runner (cargo nextest run, or
                     cargo test when nextest is not installed), e.g. `-- kernel::`
  tidy               check the repository rules (layering, lints, SAFETY comments, ...)
  bench [args]       run the benchmark suite, e.g. `cargo xtask bench --quick`
  loom [-- <args>]   run the loom model-checking tests; <args> go to the test binary,
                     e.g. `-- --nocapture`
  soak [--secs N] [-- <args>]
                     the soak test (default 600 s): 10,000 churning echo connections,
                     plain and TLS, with descriptor and memory curves asserted flat, and
                     the cancellation storms for as long; <args> go to curio-soak
  help               print this message
";

/// The package name of the benchmark crate, which CI never builds.
pub(crate) const BENCH_CRATE: &str = "curio-bench";

/// Crates with loom tests, run by `cargo xtask loom`.
///
/// A crate listed here builds under `--cfg loom` and has `#[cfg(loom)]` tests in its library
/// whose names contain `loom`.
pub(crate) const LOOM_CRATES: &[&str] = &[
    "curio-reactor",
    "curio-sync",
    "curio-kernel",
    "curio-workers",
];

/// The package of the soak test (`soak/`).
pub(crate) const SOAK_CRATE: &str = "curio-soak";

/// How long `cargo xtask soak` runs when `--secs` is not given.
const DEFAULT_SOAK_SECS: u64 = 600;

/// Loom's preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
const DEFAULT_PREEMPTIONS: &str = "3";

/// Parses the command line and runs the requested command.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "test" => match forwarded_args(rest) {
            Ok(forwarded) => test::run(&root, forwarded),
            Err(message) => usage_error(&message),
        },
        "tidy" if rest.is_empty() => match tidy::run(&root) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        "tidy" => usage_error("`tidy` takes no arguments"),
        "bench" => bench(&root, rest),
        "loom" => match forwarded_args(rest) {
            Ok(forwarded) => loom(&root, forwarded),
            Err(message) => usage_error(&message),
        },
        "soak" => soak(&root, rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command `{other}`")),
    }
}

/// Returns the workspace root: the parent of this package's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits directly under the workspace root")
        .to_path_buf()
}

/// Prints `message` and the usage text, and returns the exit code for a usage error.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("xtask: {message}\n");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

/// Returns the arguments after a leading `--`, which a command forwards to the tool it runs.
///
/// # Errors
///
/// Returns a message if there are arguments that do not follow `--`: they would be ambiguous
/// with options xtask may grow.
fn forwarded_args(args: &[String]) -> Result<&[String], String> {
    match args.split_first() {
        None => Ok(&[]),
        Some((first, rest)) if first == "--" => Ok(rest),
        Some((first, _)) => Err(format!(
            "unexpected argument `{first}`; put arguments for the test runner after `--`"
        )),
    }
}

/// Reports whether the workspace has the benchmark crate.
///
/// It is looked for on disk rather than in the workspace members, because `cargo` rejects
/// `--exclude` and `-p` for a package that does not exist.
pub(crate) fn has_bench_crate(root: &Path) -> bool {
    root.join("benches/Cargo.toml").is_file()
        || root
            .join("crates")
            .join(BENCH_CRATE)
            .join("Cargo.toml")
            .is_file()
}

/// `cargo xtask bench [args]`: runs the benchmark crate in release mode with `args`.
fn bench(root: &Path, args: &[String]) -> ExitCode {
    if !has_bench_crate(root) {
        eprintln!("xtask bench: no benchmark crate yet");
        return ExitCode::FAILURE;
    }
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let command = Cargo::new(&["run", "--release", "-p", BENCH_CRATE, "--"]).args(args);
    match command.run(root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask loom [-- args]`: runs the loom tests of every crate in [`LOOM_CRATES`], passing
/// `args` to the test binary.
///
/// The build gets its own target directory, because `--cfg loom` changes the flags of every
/// crate in the graph and would otherwise throw away the main build cache.
/// It runs in release mode because loom explores thousands of interleavings.
fn loom(root: &Path, forwarded: &[String]) -> ExitCode {
    let crates = LOOM_CRATES;
    if crates.is_empty() {
        println!("xtask loom: no loom tests yet");
        return ExitCode::SUCCESS;
    }
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} --cfg loom"),
        _ => "--cfg loom".to_owned(),
    };
    for name in crates {
        // Bounded preemptions keep the search to minutes; set LOOM_MAX_PREEMPTIONS to go deeper.
        let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS")
            .unwrap_or_else(|_| DEFAULT_PREEMPTIONS.to_owned());
        let mut command = Cargo::new(&[
            "test",
            "--release",
            "-p",
            name,
            "--features",
            "loom",
            "--lib",
            "loom",
        ])
        .env("RUSTFLAGS", &rustflags)
        .env("LOOM_MAX_PREEMPTIONS", &preemptions)
        .env("CARGO_TARGET_DIR", "target/loom");
        if !forwarded.is_empty() {
            command = command.args(["--"]).args(forwarded);
        }
        if let Err(message) = command.run(root) {
            eprintln!("xtask loom: {message}");
            return ExitCode::FAILURE;
        }
    }
    println!("xtask loom: {} crate(s) passed", crates.len());
    ExitCode::SUCCESS
}

/// `cargo xtask soak [--secs N] [-- args]`: the echo soak (`curio-soak`, release build) for `N`
/// seconds, and beside it the two cancellation storms of the facade's suite, repeated for as
/// long (`CURIO_STORM_SECS`); fails if either reports a violation.
fn soak(root: &Path, args: &[String]) -> ExitCode {
    let (own, forwarded) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let secs = match own {
        [] => DEFAULT_SOAK_SECS,
        [flag, n] if flag == "--secs" => match n.parse::<u64>() {
            Ok(n) if n >= 20 => n,
            _ => return usage_error("`--secs` takes a number of seconds, at least 20"),
        },
        _ => return usage_error("`soak` takes `--secs N` and, after `--`, curio-soak's arguments"),
    };
    // The facade's test binary, which holds both storms.
    let facade_tests = ["test", "--release", "-p", "curio-rt", "--test", "it"];
    let storms = Cargo::new(&facade_tests)
        .args(["storm"])
        .env("CURIO_STORM_SECS", &secs.to_string());
    let soak = Cargo::new(&["run", "--release", "-p", SOAK_CRATE, "--"])
        .args(["--secs", &secs.to_string()])
        .args(forwarded);
    // Build both first, so neither run's clock starts during a build.
    let builds = [
        Cargo::new(&["build", "--release", "-p", SOAK_CRATE]),
        Cargo::new(&facade_tests).args(["--no-run"]),
    ];
    for build in &builds {
        if let Err(message) = build.run(root) {
            eprintln!("xtask soak: {message}");
            return ExitCode::FAILURE;
        }
    }
    let mut storm_child = match storms.spawn(root) {
        Ok(child) => child,
        Err(message) => {
            eprintln!("xtask soak: {message}");
            return ExitCode::FAILURE;
        }
    };
    let echo = soak.run(root);
    let storm = match storm_child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{storms}` failed ({status})")),
        Err(err) => Err(format!("waiting for `{storms}`: {err}")),
    };
    println!(
        "\nxtask soak: {secs} s: echo soak {}, cancellation storms {}",
        verdict(&echo),
        verdict(&storm)
    );
    if echo.is_ok() && storm.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `passed`, or `FAILED` with the reason.
fn verdict(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "passed".to_owned(),
        Err(message) => format!("FAILED ({message})"),
    }
}
