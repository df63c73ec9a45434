//! `run` and `check_output`, and their errors (Curio's `subprocess.run`, `check_output`,
//! `CalledProcessError` and `TimeoutExpired`).
//!
//! A timed-out run kills and reaps its child, then appends what the pipes hold without waiting (a
//! grandchild may keep them open).

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use crate::child::CompletedProcess;
use crate::command::{Command, Stdio};

/// A child that ended with a non-zero status or by a signal, with what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledProcessError {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, if captured.
    pub stdout: Vec<u8>,
    /// Its stderr, if captured.
    pub stderr: Vec<u8>,
}

impl fmt::Display for CalledProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed: {}", self.status)
    }
}

impl std::error::Error for CalledProcessError {}

/// A child killed because [`Command::timeout`] expired, with the output read before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutExpired {
    /// The timeout that expired.
    pub timeout: Duration,
    /// The stdout read before the child was killed (including what was left in the pipe).
    pub stdout: Vec<u8>,
    /// The stderr read before the child was killed.
    pub stderr: Vec<u8>,
}

impl fmt::Display for TimeoutExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command timed out after {:?}", self.timeout)
    }
}

impl std::error::Error for TimeoutExpired {}

/// Why [`run`] or [`check_output`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubprocessError {
    /// The child could not be started, or an I/O error happened while talking to it.
    Io(io::Error),
    /// The child failed ([`check_output`] only).
    Failed(CalledProcessError),
    /// The command's timeout expired; the child was killed and reaped.
    TimedOut(TimeoutExpired),
}

impl fmt::Display for SubprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubprocessError::Io(e) => fmt::Display::fmt(e, f),
            SubprocessError::Failed(e) => fmt::Display::fmt(e, f),
            SubprocessError::TimedOut(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for SubprocessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubprocessError::Io(e) => Some(e),
            SubprocessError::Failed(e) => Some(e),
            SubprocessError::TimedOut(e) => Some(e),
        }
    }
}

impl From<io::Error> for SubprocessError {
    fn from(e: io::Error) -> SubprocessError {
        SubprocessError::Io(e)
    }
}

impl From<CalledProcessError> for SubprocessError {
    fn from(e: CalledProcessError) -> SubprocessError {
        SubprocessError::Failed(e)
    }
}

/// Runs `cmd` to completion and returns its status and output (Curio's `subprocess.run`).
///
/// Stdout and stderr are piped and captured unless the command sets them; stdin is
/// `/dev/null` unless the command sets it or has [`input`](Command::input), which is written to
/// a pipe. A non-zero status is not an error here: see [`CompletedProcess::check`] and
/// [`check_output`].
///
/// # Errors
///
/// [`SubprocessError::Io`] when the child cannot be started (an error naming the program) or
/// talking to it fails; [`SubprocessError::TimedOut`] when the command's
/// [`timeout`](Command::timeout) expires: the child has been killed and reaped, and the error
/// carries the output read until then.
///
/// # Cancel safety
///
/// Dropping the future kills the child with `SIGKILL`; it is reaped by the process-wide
/// reaper, and its output is lost. Use [`Command::timeout`] to keep the partial output.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod process { pub use curio_process::{Command, SubprocessError, run}; } }
/// use curio::process::{Command, run};
///
/// curio::run(async {
///     let out = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])).await?;
///     assert_eq!(out.status.code(), Some(3));
///     assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
///     Ok::<(), curio::process::SubprocessError>(())
/// })?;
/// # Ok::<(), curio_process::SubprocessError>(())
/// ```
pub async fn run(cmd: &mut Command) -> Result<CompletedProcess, SubprocessError> {
    let input = cmd.input.take();
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let timeout = cmd.timeout;
    let mut child = cmd.spawn_with(true, Some(Stdio::piped))?;
    if input.is_none() && child.stdin.is_some() {
        // Only `input` feeds a piped stdin here; close it so the child sees end-of-file.
        drop(child.stdin.take());
    }
    let input = input.unwrap_or_default();
    let done = match timeout {
        Some(d) => curio_kernel::timeout_after(d, child.communicate(&input)).await,
        None => Ok(child.communicate(&input).await),
    };
    match done {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait().await;
            Err(e.into())
        }
        Err(_) => {
            let _ = child.kill();
            child.wait().await?;
            child.drain_available();
            let (stdout, stderr) = child.take_output();
            Err(SubprocessError::TimedOut(TimeoutExpired {
                timeout: timeout.unwrap_or_default(),
                stdout,
                stderr,
            }))
        }
    }
}

/// Runs `cmd` and returns its stdout, if it exits with status 0 (Curio's `check_output`).
///
/// Stdout is captured; stderr is captured too unless the command sets it (it is in the error).
///
/// # Errors
///
/// As [`run`], and [`SubprocessError::Failed`] with the status and output when the child
/// exits with another status or is killed by a signal.
///
/// # Cancel safety
///
/// As [`run`].
pub async fn check_output(cmd: &mut Command) -> Result<Vec<u8>, SubprocessError> {
    Ok(run(cmd).await?.check()?.stdout)
}
