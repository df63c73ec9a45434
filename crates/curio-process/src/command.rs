//! `Command`, the builder, and `Stdio`, what a child's standard streams are connected to.
//!
//! `Command` wraps `std::process::Command`, which does `fork`/`exec`, the `PATH` search and the NUL
//! checks, and adds `kill_on_drop`, `stderr_to_stdout` (one pipe, or one file, for both streams),
//! `input` and `timeout`.
//! `From<FileStream>` for `Stdio` hands another child's pipe over deregistered and blocking again,
//! since `O_NONBLOCK` lives on the shared file description.
//! A spawn error is rewrapped to name the program.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process;
use std::time::Duration;

use crate::child::Child;
use crate::stream::FileStream;

/// What a child's stdin, stdout or stderr is connected to.
///
/// `Stdio::piped()` gives the parent a [`FileStream`] in [`Child::stdin`] (or `stdout`,
/// `stderr`). Another child's pipe (`Stdio::from(child.stdout.take().unwrap())`) connects two
/// children directly: the descriptor is deregistered and switched back to blocking mode first,
/// because `O_NONBLOCK` lives on the pipe's shared file description and the child expects a
/// blocking pipe.
#[derive(Debug)]
pub struct Stdio(Kind);

#[derive(Debug)]
enum Kind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
}

impl Stdio {
    /// The parent's own stream.
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }

    /// A new pipe whose parent end becomes a [`FileStream`] of the [`Child`].
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }

    fn into_std(self) -> process::Stdio {
        match self.0 {
            Kind::Inherit => process::Stdio::inherit(),
            Kind::Null => process::Stdio::null(),
            Kind::Piped => process::Stdio::piped(),
            Kind::Fd(fd) => process::Stdio::from(fd),
        }
    }
}

impl From<OwnedFd> for Stdio {
    /// The child gets a duplicate of `fd` (a file, a socket, a pipe), as it is.
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(Kind::Fd(fd))
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Stdio {
        Stdio(Kind::Fd(f.into()))
    }
}

impl From<FileStream> for Stdio {
    /// Another child's pipe, or any stream: deregistered and given back with its original flags
    /// (a child's pipe goes back to blocking mode).
    fn from(s: FileStream) -> Stdio {
        let fd = s.into_fd();
        // The parent end of a child's pipe was made non-blocking by curio; the next child
        // needs it blocking.
        if let Ok(flags) = rustix::fs::fcntl_getfl(&fd) {
            let _ = rustix::fs::fcntl_setfl(&fd, flags - rustix::fs::OFlags::NONBLOCK);
        }
        Stdio(Kind::Fd(fd))
    }
}

/// A process builder, like `std::process::Command`, whose [`spawn`](Self::spawn) gives an async
/// [`Child`].
///
/// By default a spawned child inherits the parent's stdin, stdout and stderr, and keeps
/// running when its [`Child`] is dropped (as with std and tokio); it is reaped when it exits
/// either way. [`run`](crate::run) and [`check_output`](crate::check_output) capture stdout and
/// stderr by default and always kill the child when they are dropped.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod process { pub use curio_process::{Command, Stdio}; } }
/// use curio::process::{Command, Stdio};
///
/// curio::run(async {
///     let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
///     let out = child.communicate(b"").await?;
///     assert!(out.status.success());
///     assert_eq!(out.stdout, b"hi\n");
///     std::io::Result::Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    std: process::Command,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    kill_on_drop: bool,
    stderr_to_stdout: bool,
    pub(crate) input: Option<Vec<u8>>,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.std, f)
    }
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` if it has no `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: process::Command::new(program),
            stdin: None,
            stdout: None,
            stderr: None,
            kill_on_drop: false,
            stderr_to_stdout: false,
            input: None,
            timeout: None,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// Connects the child's stdin.
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(s.into());
        self
    }

    /// Connects the child's stdout.
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(s.into());
        self
    }

    /// Connects the child's stderr.
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(s.into());
        self
    }

    /// Sends the child's stderr wherever its stdout goes (Curio's `stderr=STDOUT`): into the
    /// same pipe when stdout is piped, so [`Child::stdout`] and the captured output hold both,
    /// in the order the child wrote them. It overrides [`stderr`](Self::stderr).
    #[doc(alias = "STDOUT")]
    pub fn stderr_to_stdout(&mut self) -> &mut Command {
        self.stderr_to_stdout = true;
        self
    }

    /// Whether dropping the [`Child`] (or a future that owns it) kills the child with
    /// `SIGKILL`. Off by default: the child keeps running, and is reaped when it exits.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// Data that [`run`](crate::run) and [`check_output`](crate::check_output) write to the
    /// child's stdin (which they then pipe); [`spawn`](Self::spawn) ignores it.
    pub fn input(&mut self, data: impl Into<Vec<u8>>) -> &mut Command {
        self.input = Some(data.into());
        self
    }

    /// How long [`run`](crate::run) and [`check_output`](crate::check_output) let the child
    /// run before they kill it and report [`TimeoutExpired`](crate::TimeoutExpired) with the
    /// output read so far (Curio's `timeout=`); [`spawn`](Self::spawn) ignores it.
    pub fn timeout(&mut self, d: Duration) -> &mut Command {
        self.timeout = Some(d);
        self
    }

    /// Starts the child.
    ///
    /// The connections set with [`stdin`](Self::stdin) and friends are used once: a second
    /// `spawn` of the same command inherits those it does not set again (a pipe can be given to
    /// one child only).
    ///
    /// # Errors
    ///
    /// An `io::Error` that names the program when it does not exist or cannot be executed, and
    /// `InvalidInput` when the program, an argument or the environment holds a NUL byte; the
    /// errors of creating pipes or a pidfd.
    pub fn spawn(&mut self) -> io::Result<Child> {
        let kill_on_drop = self.kill_on_drop;
        self.spawn_with(kill_on_drop, None)
    }

    /// Spawns with `default` for the streams not set (`None`: inherit), as `run` needs.
    pub(crate) fn spawn_with(
        &mut self,
        kill_on_drop: bool,
        default: Option<fn() -> Stdio>,
    ) -> io::Result<Child> {
        let pick = |s: Option<Stdio>| s.or_else(|| default.map(|d| d()));
        let stdin = pick(self.stdin.take());
        let stdout = pick(self.stdout.take());
        let stderr = pick(self.stderr.take());
        self.std
            .stdin(stdin.map_or_else(process::Stdio::inherit, Stdio::into_std));
        let mut merged_pipe = None;
        if self.stderr_to_stdout {
            let (out, err, pipe) = merged(stdout)?;
            self.std.stdout(out);
            self.std.stderr(err);
            merged_pipe = pipe;
        } else {
            self.std
                .stdout(stdout.map_or_else(process::Stdio::inherit, Stdio::into_std));
            self.std
                .stderr(stderr.map_or_else(process::Stdio::inherit, Stdio::into_std));
        }
        let spawned = self.std.spawn();
        // Drop the descriptors std holds for the child, so pipes see end-of-file when the child
        // closes its ends.
        self.std.stdin(process::Stdio::inherit());
        self.std.stdout(process::Stdio::inherit());
        self.std.stderr(process::Stdio::inherit());
        let child = spawned.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {:?}: {e}", self.std.get_program()),
            )
        })?;
        let mut child = Child::new(child, kill_on_drop)?;
        if let Some(r) = merged_pipe {
            child.stdout = Some(FileStream::from_pipe(r)?);
        }
        Ok(child)
    }
}

/// The child's stdout and stderr when stderr goes where stdout goes, and the parent's end of
/// the pipe they share if stdout is piped.
fn merged(stdout: Option<Stdio>) -> io::Result<(process::Stdio, process::Stdio, Option<OwnedFd>)> {
    let one = |fd: OwnedFd| -> io::Result<_> {
        let two = fd.try_clone()?;
        Ok((process::Stdio::from(fd), process::Stdio::from(two)))
    };
    Ok(match stdout.map(|s| s.0) {
        None | Some(Kind::Inherit) => {
            let err = std::io::stdout().as_fd().try_clone_to_owned()?;
            (process::Stdio::inherit(), process::Stdio::from(err), None)
        }
        Some(Kind::Null) => {
            let (a, b) = one(std::fs::File::options()
                .write(true)
                .open("/dev/null")?
                .into())?;
            (a, b, None)
        }
        Some(Kind::Piped) => {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (a, b) = one(w)?;
            (a, b, Some(r))
        }
        Some(Kind::Fd(fd)) => {
            let (a, b) = one(fd)?;
            (a, b, None)
        }
    })
}
