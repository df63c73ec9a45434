//! `Child`: a running child process, its pipes, waiting and signals.
//!
//! `wait` runs `try_wait` through `Async::read_with` on the child's pidfd, so the first attempt
//! costs one `waitpid` and only a running child registers the pidfd; without a pidfd it listens for
//! `SIGCHLD` (a `SignalQueue`) before each `try_wait`.
//! `communicate` polls the stdin write and both reads in one future and keeps what it read in the
//! `Child`, so a cancelled or timed-out call loses nothing (`take_output`).
//! Signals go through the pidfd (`pidfd_send_signal`), never to a pid that may have been recycled,
//! and nothing is sent after the child was reaped.
//! A `Child` dropped before its process was reaped goes to the reaper (`reaper.rs`), so every child
//! is reaped: by `wait`, by `run`, or by the reaper thread.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::process::{self, ExitStatus};
use std::task::Poll;

use curio_reactor::Async;
use futures_io::AsyncWrite;

use crate::reaper;
use crate::signal::{SIGCHLD, SIGTERM, Signal, SignalQueue};
use crate::stream::FileStream;
use crate::sys;

/// What a finished child left: its exit status and what it wrote to its piped stdout and
/// stderr (Curio's `CompletedProcess`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedProcess {
    /// How the child ended; `status.signal()` (from `std::os::unix::process::ExitStatusExt`)
    /// tells a child killed by a signal.
    pub status: ExitStatus,
    /// Its stdout, if it was piped.
    pub stdout: Vec<u8>,
    /// Its stderr, if it was piped.
    pub stderr: Vec<u8>,
}

impl CompletedProcess {
    /// `Ok(self)` if the child exited with status 0, else the [`CalledProcessError`](crate::CalledProcessError) that carries
    /// the status and the output.
    ///
    /// # Errors
    ///
    /// A [`CalledProcessError`](crate::CalledProcessError) for a non-zero status or a death by signal.
    pub fn check(self) -> Result<CompletedProcess, crate::CalledProcessError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(crate::CalledProcessError {
                status: self.status,
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }
}

/// A child process started by [`Command::spawn`](crate::Command::spawn).
///
/// Its piped streams are [`FileStream`]s in the public fields, to be taken (`take()`) or used in
/// place. The child is reaped whatever happens: [`wait`](Self::wait) reaps it, and a `Child`
/// dropped before its child exited hands it to a process-wide reaper (after killing it if
/// [`kill_on_drop`](crate::Command::kill_on_drop) was set), so no zombie is left behind, even
/// after the kernel is gone.
///
/// On Linux each child has a pidfd, which becomes readable when the child exits; where pidfd
/// is missing (or after [`set_use_pidfd(false)`](crate::set_use_pidfd)), `wait` listens for
/// `SIGCHLD` instead.
pub struct Child {
    /// Always `Some` until `Drop` hands it to the reaper.
    inner: Option<process::Child>,
    pidfd: Option<Async<OwnedFd>>,
    kill_on_drop: bool,
    stdout_buf: Vec<u8>,
    stderr_buf: Vec<u8>,
    /// The child's stdin, if piped.
    pub stdin: Option<FileStream>,
    /// The child's stdout, if piped.
    pub stdout: Option<FileStream>,
    /// The child's stderr, if piped.
    pub stderr: Option<FileStream>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("pidfd", &self.pidfd.is_some())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

fn pipe(p: Option<impl Into<OwnedFd>>) -> io::Result<Option<FileStream>> {
    p.map(|p| FileStream::from_pipe(p.into())).transpose()
}

impl Child {
    pub(crate) fn new(mut inner: process::Child, kill_on_drop: bool) -> io::Result<Child> {
        let stdin = pipe(inner.stdin.take());
        let stdout = pipe(inner.stdout.take());
        let stderr = pipe(inner.stderr.take());
        let pidfd = if crate::use_pidfd() {
            rustix::process::pidfd_open(
                rustix::process::Pid::from_child(&inner),
                rustix::process::PidfdFlags::empty(),
            )
            .ok()
            .map(Async::new)
        } else {
            None
        };
        let mut child = Child {
            inner: Some(inner),
            pidfd,
            kill_on_drop,
            stdout_buf: Vec::new(),
            stderr_buf: Vec::new(),
            stdin: None,
            stdout: None,
            stderr: None,
        };
        // A failure here drops `child`, which kills (if asked) and reaps it.
        child.stdin = stdin?;
        child.stdout = stdout?;
        child.stderr = stderr?;
        Ok(child)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.as_ref().map_or(0, process::Child::id)
    }

    fn proc(&mut self) -> &mut process::Child {
        self.inner.as_mut().expect("present until dropped")
    }

    /// Whether the child has a pidfd (else `wait` listens for `SIGCHLD`).
    pub fn has_pidfd(&self) -> bool {
        self.pidfd.is_some()
    }

    /// The exit status if the child has exited (reaping it), else `None`; never waits.
    ///
    /// # Errors
    ///
    /// The error of `waitpid`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.proc().try_wait()
    }

    /// Closes the child's stdin (if piped), waits for it to exit, reaps it, and returns its
    /// status. A child killed by a signal has a status whose `signal()` names it.
    ///
    /// # Errors
    ///
    /// The error of `waitpid`, or of listening for `SIGCHLD` without a pidfd.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future leaves the child running (and `stdin` closed); wait again
    /// or drop the `Child`.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match &self.pidfd {
            // The first attempt runs `try_wait` before any registration: a child that has
            // exited costs one `waitpid`.
            Some(pidfd) => {
                let inner = self.inner.as_mut().expect("present until dropped");
                pidfd
                    .read_with(|_| {
                        inner
                            .try_wait()?
                            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
                    })
                    .await
            }
            None => {
                // Listen first, then look, so an exit between the two is not missed.
                let q = SignalQueue::new(&[SIGCHLD])?;
                loop {
                    if let Some(s) = self.proc().try_wait()? {
                        return Ok(s);
                    }
                    q.get().await;
                }
            }
        }
    }

    /// Sends `sig` to the child (through its pidfd, so never to a recycled pid); does nothing
    /// once the child has been reaped.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that is not a signal; the error of sending it.
    pub fn send_signal(&mut self, sig: Signal) -> io::Result<()> {
        if self.proc().try_wait()?.is_some() {
            return Ok(());
        }
        let pidfd = self.pidfd.as_ref().map(|p| p.as_fd());
        match sys::send_signal(pidfd, self.id(), sig) {
            // The child exited between the check and the signal.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }

    /// Kills the child with `SIGKILL` (it still has to be reaped: [`wait`](Self::wait), or drop
    /// the `Child`).
    ///
    /// # Errors
    ///
    /// As [`send_signal`](Self::send_signal).
    pub fn kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Asks the child to end with `SIGTERM`.
    ///
    /// # Errors
    ///
    /// As [`send_signal`](Self::send_signal).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(SIGTERM)
    }

    /// Writes `input` to the child's stdin (then closes it) while reading its stdout and stderr
    /// to end-of-file, all at once, so large data both ways cannot deadlock; then waits for the
    /// child. Streams that are not piped (or were taken) are skipped.
    ///
    /// # Errors
    ///
    /// The errors of the reads, writes and [`wait`](Self::wait); as in Curio, a child that
    /// closes its stdin before it has taken all of `input` makes it fail with `BrokenPipe` (what
    /// was read so far stays in the `Child`, and the child keeps running).
    ///
    /// # Cancel safety
    ///
    /// A dropped future has closed stdin, and keeps what it read from stdout and stderr in the
    /// `Child`: [`take_output`](Self::take_output) returns it. The child keeps running.
    pub async fn communicate(&mut self, input: &[u8]) -> io::Result<CompletedProcess> {
        let mut stdin = self.stdin.take();
        if input.is_empty() {
            stdin = None;
        }
        let mut pos = 0;
        let (stdout, stderr) = (self.stdout.as_ref(), self.stderr.as_ref());
        // Gives up the pipes' read slots however this ends, so a later read of a pipe left by a
        // cancelled call is not `ResourceBusy`.
        let _release = ReleaseReads([stdout, stderr]);
        let (mut out_open, mut err_open) = (stdout.is_some(), stderr.is_some());
        let (out_buf, err_buf) = (&mut self.stdout_buf, &mut self.stderr_buf);
        let res = poll_fn(|cx| {
            while let Some(w) = &stdin {
                match Pin::new(&mut &*w).poll_write(cx, &input[pos..]) {
                    Poll::Ready(Ok(n)) => {
                        pos += n;
                        if pos == input.len() {
                            stdin = None;
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            for (open, s, buf) in [
                (&mut out_open, stdout, &mut *out_buf),
                (&mut err_open, stderr, &mut *err_buf),
            ] {
                while *open {
                    let Some(s) = s else { break };
                    match s.poll_read_vec(cx, buf) {
                        Poll::Ready(Ok(0)) => *open = false,
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => break,
                    }
                }
            }
            if stdin.is_none() && !out_open && !err_open {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await;
        drop(_release);
        res?;
        // Both are at end-of-file.
        self.stdout = None;
        self.stderr = None;
        let status = self.wait().await?;
        let (stdout, stderr) = self.take_output();
        Ok(CompletedProcess {
            status,
            stdout,
            stderr,
        })
    }

    /// Takes what [`communicate`](Self::communicate) has read from stdout and stderr and not
    /// returned (after it was cancelled or timed out).
    pub fn take_output(&mut self) -> (Vec<u8>, Vec<u8>) {
        (
            std::mem::take(&mut self.stdout_buf),
            std::mem::take(&mut self.stderr_buf),
        )
    }

    /// Appends to the captured output what the pipes hold right now, without waiting (the
    /// child may have left descriptors to a process of its own that keeps them open).
    pub(crate) fn drain_available(&mut self) {
        if let Some(s) = &self.stdout {
            s.read_available(&mut self.stdout_buf);
        }
        if let Some(s) = &self.stderr {
            s.read_available(&mut self.stderr_buf);
        }
    }
}

/// Releases the read slots of the pipes `communicate` polls, when dropped.
struct ReleaseReads<'a>([Option<&'a FileStream>; 2]);

impl Drop for ReleaseReads<'_> {
    fn drop(&mut self) {
        for s in self.0.into_iter().flatten() {
            s.release_read();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.proc().try_wait() {
            return;
        }
        if self.kill_on_drop {
            let _ = self.kill();
            if let Ok(Some(_)) = self.proc().try_wait() {
                return;
            }
        }
        let pidfd = self.pidfd.take().map(Async::into_inner);
        if let Some(inner) = self.inner.take() {
            reaper::adopt(inner, pidfd);
        }
    }
}
