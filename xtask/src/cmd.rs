//! Running cargo: each command is printed before it runs, and a failure becomes a message naming
//! the command, so a CI log says what failed without scrolling back.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A `cargo` command line, with the environment variables it sets.
#[derive(Debug, Clone)]
pub(crate) struct Cargo {
    /// The arguments after `cargo`.
    args: Vec<String>,
    /// Variables set for this command only, as `(name, value)`.
    env: Vec<(String, String)>,
}

impl Cargo {
    /// Starts the command line `cargo <args>`.
    pub(crate) fn new(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            env: Vec::new(),
        }
    }

    /// Appends `args` to the command line.
    pub(crate) fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets the environment variable `key` to `value` for this command.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Prints the command, runs it in `dir` with the terminal as its input and output, and waits.
    ///
    /// # Errors
    ///
    /// Returns a message naming the command if it cannot be started or exits unsuccessfully.
    pub(crate) fn run(&self, dir: &Path) -> Result<(), String> {
        eprintln!("$ {self}");
        let status = self
            .command(dir)
            .status()
            .map_err(|err| format!("could not start `{self}`: {err}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{self}` failed ({status})"))
        }
    }

    /// Prints the command and starts it in `dir` with the terminal as its input and output,
    /// without waiting: the caller waits for the returned child.
    ///
    /// # Errors
    ///
    /// Returns a message naming the command if it cannot be started.
    pub(crate) fn spawn(&self, dir: &Path) -> Result<std::process::Child, String> {
        eprintln!("$ {self} &");
        self.command(dir)
            .spawn()
            .map_err(|err| format!("could not start `{self}`: {err}"))
    }

    /// Runs the command in `dir` with its output discarded and reports whether it succeeded.
    ///
    /// This probes for optional tools, such as `cargo nextest`, without printing anything.
    pub(crate) fn probe(&self, dir: &Path) -> bool {
        self.command(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Builds the [`Command`] for this command line, to run in `dir`.
    fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(cargo_program());
        command.args(&self.args).current_dir(dir);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }
}

impl fmt::Display for Cargo {
    /// Writes the command as a shell would take it, with `cargo` for whichever binary runs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            write!(f, "{key}={} ", shell_quote(value))?;
        }
        f.write_str("cargo")?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// Returns the `cargo` binary to run: `$CARGO` if set, otherwise `cargo` from `PATH`.
///
/// `cargo run` sets `$CARGO` to itself, so the commands xtask starts use the same toolchain as
/// the `cargo xtask` that started them.
fn cargo_program() -> OsString {
    std::env::var_os("CARGO")
        .filter(|program| !program.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// Quotes `arg` for display if a shell would otherwise split or expand it.
fn shell_quote(arg: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed command line can be pasted into a shell.
    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let command = Cargo::new(&["test", "-p", "curio-kernel"])
            .args(["loom", "it's"])
            .env("RUSTFLAGS", "--cfg loom");
        assert_eq!(
            command.to_string(),
            r"RUSTFLAGS='--cfg loom' cargo test -p curio-kernel loom 'it'\''s'"
        );
    }
}
