//! The process pool: `run_in_process` runs a registered `fn(A) -> R` in a worker process.
//!
//! # Protocol
//!
//! A worker is the current executable, started again with `CURIO_WORKER=1` in its environment
//! and one end of a Unix socket pair as its standard input; its standard output and error stay
//! the parent's, for printing. The parent sends the worker two pipes over the socket
//! (`SCM_RIGHTS`): requests and replies travel on them, since a pipe round trip costs about half
//! a socket's, and the socket stays open only so that the worker sees the parent go.
//! [`worker_main`] moves the socket off descriptor 0 (which then reads `/dev/null`), receives
//! the pipes, says hello, and serves one call at a time. Every message is a frame: a
//! little-endian `u32` length and that many bytes. A request holds the caller's frame limit
//! (`u32`), the function's name (`u16` length, bytes) and the argument in postcard; a reply holds
//! a tag (result, panic, unknown function, bad argument, result too large, unencodable result)
//! and its data.
//!
//! # Threads
//!
//! The pool is process-wide, shared by every kernel, and lives while some kernel that used it is
//! alive; the last such kernel's drop shuts it down and reaps its workers. A call leases an idle
//! worker (or starts one, up to the pool's size, or waits for one to come free) and talks to it
//! from the calling kernel's thread through that kernel's reactor: a round trip costs the same
//! two wake-ups as a pipe to a child. A worker's pipes are registered with the reactor of the
//! kernel that last used them, and registered anew when another kernel leases the worker. A cancelled call's worker is killed by a short-lived
//! `curio-procpool-reaper` thread (`SIGTERM`, the grace period, `SIGKILL`, `waitpid`), so no
//! kernel's thread waits for it; each worker runs one `curio-worker-watch` thread that exits it
//! when the parent goes.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use curio_kernel::ExternalWork;
use rustix::event::{PollFd, PollFlags, Timespec};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::lock;

/// The default limit on one frame (an argument or a result, encoded): 64 MiB.
pub const DEFAULT_FRAME_LIMIT: usize = 64 << 20;
/// How long a cancelled worker may take to exit after `SIGTERM` before it gets `SIGKILL`.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_millis(100);
/// How long a new worker may take to reach [`worker_main`].
const START_TIMEOUT: Duration = Duration::from_secs(30);

const ENV_WORKER: &str = "CURIO_WORKER";
const HELLO: &[u8] = b"curio-worker/1";

const TAG_OK: u8 = 0;
const TAG_PANIC: u8 = 1;
const TAG_UNKNOWN: u8 = 2;
const TAG_DECODE: u8 = 3;
const TAG_TOO_LARGE: u8 = 4;
const TAG_ENCODE: u8 = 5;

/// The process pool's settings, kept among the kernel's extension settings (see
/// [`WorkersBuilderExt`](crate::WorkersBuilderExt)). `None` means the default.
///
/// The pool is process-wide: `max_processes`, `worker_args` and `kill_grace` come from the
/// kernel that starts it (the first to call [`run_in_process`] while no pool runs);
/// `frame_limit` is read from the calling kernel at each call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessPoolConfig {
    /// The most worker processes (default: `available_parallelism`).
    pub max_processes: Option<usize>,
    /// The arguments a worker is started with (default: none). A test binary passes the name of
    /// the test that calls [`worker_main`]; see that function.
    pub worker_args: Option<Vec<OsString>>,
    /// The largest frame (encoded argument or result) in bytes (default [`DEFAULT_FRAME_LIMIT`]).
    pub frame_limit: Option<usize>,
    /// How long a cancelled worker has between `SIGTERM` and `SIGKILL` (default
    /// [`DEFAULT_KILL_GRACE`]).
    pub kill_grace: Option<Duration>,
}

/// Why a [`run_in_process`] call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// The function panicked in the worker; the panic's message.
    Panicked(String),
    /// The worker died during the call (abort, signal, out of memory, `exit`): its status. The
    /// pool starts a new worker for the next call.
    Crashed(ExitStatus),
    /// The encoded argument or result was larger than the frame limit.
    FrameTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The worker's registry has no function of this name.
    UnknownFunction(String),
    /// The argument or result could not be encoded.
    Encode(String),
    /// The argument (in the worker) or the result (in the caller) could not be decoded: the two
    /// sides disagree about the function's types.
    Decode(String),
    /// A worker could not be started, or did not reach [`worker_main`] in time.
    Start(io::Error),
    /// Talking to the worker failed.
    Io(io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Panicked(m) => write!(f, "worker function panicked: {m}"),
            ProcessError::Crashed(s) => write!(f, "worker process crashed ({s})"),
            ProcessError::FrameTooLarge { size, limit } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            ProcessError::UnknownFunction(n) => {
                write!(f, "no function named {n:?} in the worker's registry")
            }
            ProcessError::Encode(m) => write!(f, "cannot encode: {m}"),
            ProcessError::Decode(m) => write!(f, "cannot decode: {m}"),
            ProcessError::Start(e) => write!(f, "cannot start a worker process: {e}"),
            ProcessError::Io(e) => write!(f, "worker process I/O: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Start(e) | ProcessError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A function a worker process can run: what a [`Registry`] holds. [`ProcessFn`] implements it.
pub trait WorkerFn: Sync {
    /// The name callers use.
    fn name(&self) -> &str;
    /// Decodes the argument, calls the function and encodes its result; runs in the worker.
    ///
    /// # Errors
    ///
    /// The reply's tag and message when the argument cannot be decoded or the result encoded.
    fn call(&self, arg: &[u8]) -> Result<Vec<u8>, (u8, String)>;
}

/// A function registered for [`run_in_process`] under a name: `fn(A) -> R` with serde types.
///
/// Declare it as a `static` and list it in the program's [`Registry`]; callers pass a reference
/// to the same static, so name and types cannot drift apart within one binary.
///
/// # Examples
///
/// ```
/// # mod curio { pub mod workers { pub use curio_workers::{ProcessFn, Registry}; } }
/// use curio::workers::{ProcessFn, Registry};
///
/// fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
/// }
/// static FIB: ProcessFn<u64, u64> = ProcessFn::new("fib", fib);
/// static REGISTRY: Registry = Registry::new(&[&FIB]);
/// # assert_eq!(FIB.name(), "fib");
/// ```
pub struct ProcessFn<A, R> {
    name: &'static str,
    f: fn(A) -> R,
}

impl<A, R> fmt::Debug for ProcessFn<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessFn")
            .field("name", &self.name)
            .finish()
    }
}

impl<A, R> ProcessFn<A, R> {
    /// `f` under `name`.
    pub const fn new(name: &'static str, f: fn(A) -> R) -> ProcessFn<A, R> {
        ProcessFn { name, f }
    }

    /// The name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Calls the function here, in this process.
    pub fn call_local(&self, arg: A) -> R {
        (self.f)(arg)
    }
}

impl<A: DeserializeOwned, R: Serialize> WorkerFn for ProcessFn<A, R> {
    fn name(&self) -> &str {
        self.name
    }

    fn call(&self, arg: &[u8]) -> Result<Vec<u8>, (u8, String)> {
        let a: A = decode(arg).map_err(|e| (TAG_DECODE, e))?;
        let r = (self.f)(a);
        postcard::to_allocvec(&r).map_err(|e| (TAG_ENCODE, e.to_string()))
    }
}

/// Decodes a whole frame: bytes left over mean the two sides disagree about the type.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(format!("{} bytes left over: a different type", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// The functions a worker process serves, by name; hand it to [`worker_main`].
pub struct Registry {
    fns: &'static [&'static dyn WorkerFn],
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.fns.iter().map(|e| e.name()))
            .finish()
    }
}

impl Registry {
    /// A registry of `fns`; a `const fn`, so it can be a `static`.
    pub const fn new(fns: &'static [&'static dyn WorkerFn]) -> Registry {
        Registry { fns }
    }

    fn find(&self, name: &str) -> Option<&'static dyn WorkerFn> {
        self.fns.iter().copied().find(|e| e.name() == name)
    }
}

/// Serves calls if this process was started as a worker of the process pool, and returns at once
/// otherwise. Call it first thing in `main`.
///
/// In a worker it never returns: it serves calls until the parent closes the pool or dies, then
/// exits the process.
///
/// # Test binaries
///
/// A worker is the current executable started again, so a test binary must enter worker mode
/// before it runs tests. Two ways:
///
/// - A test target with `harness = false` whose `main` calls `worker_main(&REGISTRY)` first and
///   then runs its tests; workers need no arguments.
/// - With the standard harness, a test that calls `worker_main(&REGISTRY)` and does nothing in a
///   normal run (it returns at once), and [`worker_process_args`] naming it, for example
///   `["--exact", "process::worker", "--nocapture", "--quiet"]`: a worker then runs only that
///   test, which serves calls and never returns.
///
/// With `harness = false` (`[[test]] name = "pool"`, `harness = false` in `Cargo.toml`):
///
/// ```no_run
/// # mod curio { pub use curio_kernel::run; pub use curio_workers::run_in_process; pub mod workers { pub use curio_workers::worker_main; } }
/// # use curio_workers::{ProcessFn, Registry};
/// # fn double(x: u32) -> u32 { 2 * x }
/// # static DOUBLE: ProcessFn<u32, u32> = ProcessFn::new("double", double);
/// static REGISTRY: Registry = Registry::new(&[&DOUBLE]);
///
/// // tests/pool.rs
/// fn main() {
///     curio::workers::worker_main(&REGISTRY);
///     // The tests, run by hand.
///     let r = curio::run(curio::run_in_process(&DOUBLE, 21));
///     assert_eq!(r.unwrap(), 42);
///     println!("1 passed, 0 failed");
/// }
/// ```
///
/// With the standard harness (this crate's `tests/it/process.rs` does this):
///
/// ```no_run
/// # mod curio { pub use curio_kernel::Kernel; pub use curio_workers::run_in_process; pub mod workers { pub use curio_workers::worker_main; } }
/// # use curio_workers::{ProcessFn, Registry, WorkersBuilderExt};
/// # fn double(x: u32) -> u32 { 2 * x }
/// # static DOUBLE: ProcessFn<u32, u32> = ProcessFn::new("double", double);
/// static REGISTRY: Registry = Registry::new(&[&DOUBLE]);
///
/// #[test]
/// fn worker() {
///     // A no-op in a normal run; in a worker, serves calls and never returns.
///     curio::workers::worker_main(&REGISTRY);
/// }
///
/// #[test]
/// fn doubles() {
///     let mut kernel = curio::Kernel::builder()
///         .worker_process_args(["--exact", "worker", "--nocapture", "--quiet"])
///         .build();
///     assert_eq!(kernel.run(curio::run_in_process(&DOUBLE, 21)).unwrap(), 42);
/// }
/// ```
///
/// [`worker_process_args`]: crate::WorkersBuilderExt::worker_process_args
///
/// # Examples
///
/// ```
/// # mod curio { pub mod workers { pub use curio_workers::{ProcessFn, Registry, worker_main}; } }
/// use curio::workers::{ProcessFn, Registry};
///
/// fn square(x: i64) -> i64 { x * x }
/// static SQUARE: ProcessFn<i64, i64> = ProcessFn::new("square", square);
/// static REGISTRY: Registry = Registry::new(&[&SQUARE]);
///
/// fn main() {
///     curio::workers::worker_main(&REGISTRY);
///     // ... the program, which may call run_in_process(&SQUARE, 7) ...
/// }
/// # main();
/// ```
pub fn worker_main(registry: &Registry) {
    if std::env::var_os(ENV_WORKER).is_none() {
        return;
    }
    let code = match serve(registry) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("curio worker {}: {e}", std::process::id());
            1
        }
    };
    std::process::exit(code);
}

fn serve(registry: &Registry) -> io::Result<()> {
    // The socket moves off descriptor 0 (the copy is close-on-exec), so neither the functions
    // nor the processes they start can read it or keep it open.
    let sock: OwnedFd = io::stdin().as_fd().try_clone_to_owned()?;
    let null = std::fs::File::open("/dev/null")?;
    rustix::stdio::dup2_stdin(&null)?;
    drop(null);
    let sock = UnixStream::from(sock);
    let (req, rep) = receive_pipes(&sock)?;
    watch_parent(sock);
    let mut tx = std::fs::File::from(rep);
    let mut rx = io::BufReader::with_capacity(64 * 1024, std::fs::File::from(req));
    write_frame(&mut tx, HELLO)?;
    loop {
        let Some(req) = read_frame(&mut rx, usize::MAX)? else {
            return Ok(());
        };
        let reply = handle(registry, &req);
        write_frame(&mut tx, &reply)?;
    }
}

/// Receives the two pipes (requests, replies) the parent sends over the socket.
fn receive_pipes(sock: &UnixStream) -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut byte)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    let mut fds = fds.into_iter();
    match (fds.next(), fds.next()) {
        (Some(req), Some(rep)) => Ok((req, rep)),
        _ => Err(io::Error::other("the parent sent no pipes")),
    }
}

/// Exits the worker when the parent is gone, even while a function runs: the socket hangs up
/// when the parent dies, and `getppid` changes if it was somehow missed.
fn watch_parent(sock: UnixStream) {
    let parent = rustix::process::getppid();
    let _ = std::thread::Builder::new()
        .name("curio-worker-watch".into())
        .spawn(move || {
            let second = Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            loop {
                let mut fds = [PollFd::new(&sock, PollFlags::RDHUP)];
                let hung_up = match rustix::event::poll(&mut fds, Some(&second)) {
                    Ok(_) => !fds[0].revents().is_empty(),
                    Err(rustix::io::Errno::INTR) => false,
                    Err(_) => true,
                };
                if hung_up || rustix::process::getppid() != parent {
                    std::process::exit(0);
                }
            }
        });
}

fn handle(registry: &Registry, req: &[u8]) -> Vec<u8> {
    let reply = |tag: u8, data: &[u8]| {
        let mut v = Vec::with_capacity(1 + data.len());
        v.push(tag);
        v.extend_from_slice(data);
        v
    };
    let Some((limit, name, arg)) = parse_request(req) else {
        return reply(TAG_DECODE, b"malformed request frame");
    };
    let Some(entry) = registry.find(name) else {
        return reply(TAG_UNKNOWN, name.as_bytes());
    };
    match catch_unwind(AssertUnwindSafe(|| entry.call(arg))) {
        Ok(Ok(out)) if out.len() + 1 > limit => {
            let mut d = Vec::new();
            d.extend_from_slice(&(out.len() as u64 + 1).to_le_bytes());
            d.extend_from_slice(&(limit as u64).to_le_bytes());
            reply(TAG_TOO_LARGE, &d)
        }
        Ok(Ok(mut out)) => {
            out.insert(0, TAG_OK);
            out
        }
        Ok(Err((tag, msg))) => reply(tag, msg.as_bytes()),
        Err(payload) => reply(TAG_PANIC, panic_message(&*payload).as_bytes()),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned())
}

fn parse_request(req: &[u8]) -> Option<(usize, &str, &[u8])> {
    let limit = u32::from_le_bytes(req.get(..4)?.try_into().ok()?) as usize;
    let n = u16::from_le_bytes(req.get(4..6)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(req.get(6..6 + n)?).ok()?;
    Some((limit, name, req.get(6 + n..)?))
}

/// Writes one frame on a blocking stream, in one write: the parent wakes once per reply.
fn write_frame(sock: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    sock.write_all(&frame)
}

/// Reads one frame from a blocking stream; `None` at a clean end of stream.
fn read_frame(sock: &mut impl Read, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0; len];
    sock.read_exact(&mut buf)?;
    Ok(Some(buf))
}

// ----- The parent's side -----------------------------------------------------------------------

/// Runs `f(arg)` in a worker process of the process pool and waits for its result without
/// blocking the kernel (Curio's `run_in_process`).
///
/// The worker is this executable started again; its `main` must call [`worker_main`] first,
/// with a [`Registry`] that lists `f`. The argument is encoded at once; the call leases a
/// worker when first polled. While it is in flight, a kernel on a virtual clock does not jump
/// its time (as for [`run_in_thread`](crate::run_in_thread)), so a timeout around it waits for
/// the reply.
///
/// # Errors
///
/// [`ProcessError::Panicked`] with the panic's message when `f` panics; `Crashed` when the worker
/// dies during the call (the next call gets a new worker); `FrameTooLarge` when the encoded
/// argument or result exceeds the frame limit; `UnknownFunction`, `Encode` or `Decode` when the
/// worker's registry does not match the caller's; `Start` when no worker can be started.
///
/// # Panics
///
/// When polled outside a curio kernel.
///
/// # Cancel safety
///
/// Dropping the future (cancelling the call, or a timeout) returns at once. A call that has not
/// reached a worker never runs; a running call's worker is sent `SIGTERM`, then `SIGKILL` after
/// the grace period, reaped, and replaced by a new worker for the next call.
///
/// # Examples
///
/// ```no_run
/// # mod curio { pub use curio_kernel::run; pub use curio_workers::run_in_process; pub mod workers { pub use curio_workers::{ProcessFn, Registry, worker_main}; } }
/// use curio::workers::{ProcessFn, Registry};
///
/// fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
/// static FIB: ProcessFn<u64, u64> = ProcessFn::new("fib", fib);
/// static REGISTRY: Registry = Registry::new(&[&FIB]);
///
/// fn main() {
///     curio::workers::worker_main(&REGISTRY);
///     let n = curio::run(curio::run_in_process(&FIB, 30));
///     assert_eq!(n.unwrap(), 832_040);
/// }
/// ```
#[track_caller]
pub fn run_in_process<A, R>(f: &'static ProcessFn<A, R>, arg: A) -> RunInProcess<R>
where
    A: Serialize,
    R: DeserializeOwned,
{
    let arg = postcard::to_allocvec(&arg).map_err(|e| ProcessError::Encode(e.to_string()));
    RunInProcess {
        name: f.name,
        arg: Some(arg),
        call: None,
        site: std::panic::Location::caller(),
        _out: PhantomData,
    }
}

/// A call in flight: the encoded result, or why there is none.
type CallFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ProcessError>>>>;

/// The future of [`run_in_process`].
#[must_use = "futures do nothing unless awaited"]
pub struct RunInProcess<R> {
    name: &'static str,
    arg: Option<Result<Vec<u8>, ProcessError>>,
    call: Option<CallFuture>,
    /// The call of `run_in_process`, reported as the task's wait site.
    site: &'static std::panic::Location<'static>,
    _out: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for RunInProcess<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunInProcess")
            .field("name", &self.name)
            .field("started", &self.call.is_some())
            .finish()
    }
}

impl<R> Unpin for RunInProcess<R> {}

impl<R: DeserializeOwned> Future for RunInProcess<R> {
    type Output = Result<R, ProcessError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(arg) = this.arg.take() {
            let arg = match arg {
                Ok(a) => a,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let kernel = curio_kernel::extension(|| {
                KernelUse::new(&curio_kernel::config::<ProcessPoolConfig>().unwrap_or_default())
            });
            let limit = kernel.frame_limit;
            let size = arg.len() + 6 + this.name.len();
            if size > limit {
                return Poll::Ready(Err(ProcessError::FrameTooLarge { size, limit }));
            }
            // Keeps a virtual clock still while a worker computes: nothing on the kernel would
            // otherwise tell it that a reply is coming.
            let work = kernel.handle.external_work();
            this.call = Some(Box::pin(call(
                kernel.shared.clone(),
                kernel.id,
                this.name,
                arg,
                limit,
                work,
            )));
        }
        let fut = this.call.as_mut().expect("polled after completion");
        match fut.as_mut().poll(cx) {
            Poll::Ready(r) => {
                this.call = None;
                Poll::Ready(r.and_then(|bytes| decode(&bytes).map_err(ProcessError::Decode)))
            }
            Poll::Pending => {
                curio_core::waiting(curio_core::WaitKind::External, Some(this.site));
                Poll::Pending
            }
        }
    }
}

/// One call, on the calling kernel's thread: lease a worker, write the request, read the reply,
/// all through the kernel's reactor.
async fn call(
    pool: Arc<PoolShared>,
    kernel: u64,
    name: &'static str,
    arg: Vec<u8>,
    limit: usize,
    work: ExternalWork,
) -> Result<Vec<u8>, ProcessError> {
    let _work = work;
    let mut lease = Lease::acquire(&pool, kernel).await?;
    let out = lease.exchange(name, &arg, limit).await;
    match out {
        Ok(reply) => {
            lease.release();
            decode_reply(reply)
        }
        Err(IoFail::TooLarge(size)) => {
            // The stream is out of step now: the worker goes.
            lease.kill();
            Err(ProcessError::FrameTooLarge { size, limit })
        }
        Err(IoFail::Io(e)) => Err(match lease.reap().await {
            Some(status) => ProcessError::Crashed(status),
            None => ProcessError::Io(e),
        }),
    }
}

fn decode_reply(reply: Vec<u8>) -> Result<Vec<u8>, ProcessError> {
    let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    match reply.split_first() {
        Some((&TAG_OK, _)) => {
            let mut r = reply;
            r.remove(0);
            Ok(r)
        }
        Some((&TAG_PANIC, d)) => Err(ProcessError::Panicked(text(d))),
        Some((&TAG_UNKNOWN, d)) => Err(ProcessError::UnknownFunction(text(d))),
        Some((&TAG_DECODE, d)) => Err(ProcessError::Decode(text(d))),
        Some((&TAG_ENCODE, d)) => Err(ProcessError::Encode(text(d))),
        Some((&TAG_TOO_LARGE, d)) if d.len() == 16 => {
            let n = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
            Err(ProcessError::FrameTooLarge {
                size: n(&d[..8]),
                limit: n(&d[8..]),
            })
        }
        _ => Err(ProcessError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed reply from a worker",
        ))),
    }
}

enum IoFail {
    /// The worker's frame is larger than the limit.
    TooLarge(usize),
    /// The socket failed or hit its end: the worker died (or never started properly).
    Io(io::Error),
}

impl From<io::Error> for IoFail {
    fn from(e: io::Error) -> IoFail {
        IoFail::Io(e)
    }
}

/// The process-wide pool while some kernel uses it.
static GLOBAL: Mutex<Global> = Mutex::new(Global {
    pool: None,
    users: 0,
});

struct Global {
    pool: Option<Arc<PoolShared>>,
    users: usize,
}

/// A kernel's use of the process pool: a kernel extension, so the pool knows when the last
/// kernel that used it is gone.
struct KernelUse {
    shared: Arc<PoolShared>,
    /// Tells kernels apart for the workers' reactor registrations (a kernel's address may be
    /// reused by the next one).
    id: u64,
    /// The kernel's frame limit; its configuration cannot change.
    frame_limit: usize,
    handle: curio_kernel::KernelHandle,
}

static NEXT_KERNEL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl KernelUse {
    fn new(cfg: &ProcessPoolConfig) -> KernelUse {
        let mut g = lock(&GLOBAL);
        g.users += 1;
        let shared = g
            .pool
            .get_or_insert_with(|| {
                let max = cfg
                    .max_processes
                    .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                    .unwrap_or(1)
                    .max(1);
                Arc::new(PoolShared {
                    state: Mutex::new(PoolState {
                        idle: Vec::new(),
                        live: 0,
                        waiters: Vec::new(),
                        reapers: Vec::new(),
                        next_waiter: 0,
                    }),
                    max,
                    args: cfg.worker_args.clone().unwrap_or_default(),
                    grace: cfg.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
                })
            })
            .clone();
        KernelUse {
            shared,
            id: NEXT_KERNEL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            frame_limit: cfg.frame_limit.unwrap_or(DEFAULT_FRAME_LIMIT),
            handle: curio_kernel::try_handle().expect("called inside a kernel"),
        }
    }
}

impl Drop for KernelUse {
    fn drop(&mut self) {
        let mut g = lock(&GLOBAL);
        g.users -= 1;
        if g.users > 0 {
            return;
        }
        let pool = g.pool.take();
        drop(g);
        if let Some(p) = pool {
            p.shutdown();
        }
    }
}

struct PoolShared {
    state: Mutex<PoolState>,
    max: usize,
    args: Vec<OsString>,
    grace: Duration,
}

struct PoolState {
    /// Workers waiting for a call.
    idle: Vec<Worker>,
    /// Workers alive or starting, leased or idle (not those being killed).
    live: usize,
    /// Calls waiting for a worker, by id.
    waiters: Vec<(u64, Waker)>,
    next_waiter: u64,
    /// Threads reaping killed workers.
    reapers: Vec<JoinHandle<()>>,
}

impl PoolShared {
    /// A worker left the pool or came back: every waiting call tries again.
    fn wake_waiters(&self) {
        let ws = std::mem::take(&mut lock(&self.state).waiters);
        for (_, w) in ws {
            w.wake();
        }
    }

    fn shutdown(&self) {
        let (idle, reapers) = {
            let mut st = lock(&self.state);
            (
                std::mem::take(&mut st.idle),
                std::mem::take(&mut st.reapers),
            )
        };
        for w in idle {
            w.stop(self.grace);
        }
        for r in reapers {
            let _ = r.join();
        }
    }
}

/// A worker leased to one call. Dropped while it holds the worker (the call was cancelled), it
/// kills the worker: the call may be half-way. It holds one of the pool's places (`live`) from
/// the moment it is made until the worker goes back to the pool or is gone, so a call cancelled
/// while its worker starts gives its place back too.
struct Lease {
    pool: Arc<PoolShared>,
    worker: Option<Worker>,
    /// Counts in the pool's `live`.
    counted: bool,
}

impl Lease {
    /// An idle worker, or a new one if the pool is below its size, or the first to come free.
    async fn acquire(pool: &Arc<PoolShared>, kernel: u64) -> Result<Lease, ProcessError> {
        let me: std::cell::Cell<Option<u64>> = std::cell::Cell::new(None);
        let start = std::future::poll_fn(|cx| {
            let mut st = lock(&pool.state);
            if let Some(id) = me.get() {
                st.waiters.retain(|(i, _)| *i != id);
            }
            let got = if let Some(w) = st.idle.pop() {
                Some(Some(w))
            } else if st.live < pool.max {
                st.live += 1;
                Some(None)
            } else {
                None
            };
            if let Some(got) = got {
                me.set(None);
                return Poll::Ready(got);
            }
            let id = me.get().unwrap_or_else(|| {
                st.next_waiter += 1;
                st.next_waiter
            });
            me.set(Some(id));
            st.waiters.push((id, cx.waker().clone()));
            Poll::Pending
        });
        let got = WaiterGuard {
            pool,
            id: &me,
            fut: start,
        }
        .await;
        let mut lease = Lease {
            pool: pool.clone(),
            worker: None,
            counted: true,
        };
        match got {
            Some(mut w) => {
                if w.kernel != kernel {
                    // Registered with another kernel's reactor: register anew with this one.
                    let Worker {
                        child,
                        _sock,
                        tx,
                        rx,
                        ..
                    } = w;
                    w = Worker {
                        child,
                        _sock,
                        tx: curio_reactor::Async::new(tx.into_inner()),
                        rx: curio_reactor::Async::new(rx.into_inner()),
                        kernel,
                    };
                }
                lease.worker = Some(w);
            }
            None => {
                lease.worker = Some(Worker::spawn(&pool.args, kernel)?);
                let w = lease.worker.as_mut().expect("just spawned");
                if let Err(e) = w.hello().await {
                    lease.kill();
                    return Err(e);
                }
            }
        }
        Ok(lease)
    }

    async fn exchange(&mut self, name: &str, arg: &[u8], limit: usize) -> Result<Vec<u8>, IoFail> {
        let w = self.worker.as_mut().expect("leased");
        let name = name.as_bytes();
        let len = 6 + name.len() + arg.len();
        let mut head =
            Vec::with_capacity(10 + name.len() + if len < 1 << 16 { arg.len() } else { 0 });
        head.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        head.extend_from_slice(&u32::try_from(limit).unwrap_or(u32::MAX).to_le_bytes());
        head.extend_from_slice(&(name.len() as u16).to_le_bytes());
        head.extend_from_slice(name);
        // A small request goes in one write, so the worker wakes once.
        if len < 1 << 16 {
            head.extend_from_slice(arg);
            w.write_all(&head).await?;
        } else {
            w.write_all(&head).await?;
            w.write_all(arg).await?;
        }
        w.read_frame(limit).await
    }

    /// Back to the pool's idle workers.
    fn release(mut self) {
        if let Some(w) = self.worker.take() {
            // Still counted in `live`, as an idle worker.
            self.counted = false;
            lock(&self.pool.state).idle.push(w);
            self.pool.wake_waiters();
        }
    }

    /// Gives the lease's place in the pool back.
    fn uncount(&mut self) {
        if std::mem::take(&mut self.counted) {
            lock(&self.pool.state).live -= 1;
            self.pool.wake_waiters();
        }
    }

    /// The worker's socket ended: it died. Waits for its exit (on its pidfd, through the
    /// reactor) and reaps it; `None` if that fails.
    async fn reap(mut self) -> Option<ExitStatus> {
        let w = self.worker.take()?;
        let Worker { mut child, .. } = w;
        self.uncount();
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        // Reaped even if this future is dropped while it waits.
        let mut child = ReapOnDrop(Some(child));
        let pid = rustix::process::Pid::from_child(child.0.as_ref()?);
        if let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK) {
            let fd = curio_reactor::Async::new(fd);
            let _ = fd.readable().await;
        }
        child.0.take()?.wait().ok()
    }

    /// Kills the worker in the background: `SIGTERM`, then `SIGKILL` after the grace period.
    fn kill(mut self) {
        self.kill_worker();
    }

    fn kill_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            kill_later(&self.pool, w);
        }
        self.uncount();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.kill_worker();
    }
}

/// Reaps a child that has closed its socket (it is exiting), on a thread if the future that was
/// waiting for it is dropped.
struct ReapOnDrop(Option<Child>);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let spawned = std::thread::Builder::new()
                .name("curio-procpool-reaper".into())
                .spawn(move || {
                    let _ = c.wait();
                });
            // Without a thread the child stays a zombie until this process exits.
            drop(spawned);
        }
    }
}

/// Sends the worker `SIGTERM` and leaves the rest (the grace period, `SIGKILL`, `waitpid`) to a
/// reaper thread that the pool's shutdown joins.
fn kill_later(pool: &Arc<PoolShared>, w: Worker) {
    let pid = rustix::process::Pid::from_child(&w.child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let grace = pool.grace;
    // Shared with the thread, so a refused thread leaves the worker here to be killed at once.
    let slot = Arc::new(Mutex::new(Some(w)));
    let s2 = slot.clone();
    let reaper = std::thread::Builder::new()
        .name("curio-procpool-reaper".into())
        .spawn(move || {
            if let Some(w) = lock(&s2).take() {
                w.kill(grace);
            }
        });
    match reaper {
        Ok(r) => {
            let mut st = lock(&pool.state);
            st.reapers.retain(|r| !r.is_finished());
            st.reapers.push(r);
        }
        Err(_) => {
            if let Some(w) = lock(&slot).take() {
                w.kill(Duration::ZERO);
            }
        }
    }
}

/// Takes a dropped waiting call out of the waiters, and passes a wake it may have had on.
struct WaiterGuard<'a, F> {
    pool: &'a PoolShared,
    id: &'a std::cell::Cell<Option<u64>>,
    fut: F,
}

impl<F: Future + Unpin> Future for WaiterGuard<'_, F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.fut).poll(cx)
    }
}

impl<F> Drop for WaiterGuard<'_, F> {
    fn drop(&mut self) {
        if let Some(id) = self.id.get() {
            lock(&self.pool.state).waiters.retain(|(i, _)| *i != id);
            // It may have been woken for a free worker: let the others look.
            self.pool.wake_waiters();
        }
    }
}

/// One worker process and the parent's ends of its pipes (non-blocking). Frames travel on
/// pipes, which cost about half a Unix socket per round trip; the socket stays open, unused, so
/// the worker sees it hang up when the parent dies.
struct Worker {
    child: Child,
    _sock: UnixStream,
    /// Requests to the worker.
    tx: curio_reactor::Async<OwnedFd>,
    /// Replies from the worker.
    rx: curio_reactor::Async<OwnedFd>,
    /// The kernel whose reactor `tx` and `rx` may be registered with.
    kernel: u64,
}

impl Worker {
    /// Starts a worker; [`hello`](Self::hello) then waits until it serves.
    fn spawn(args: &[OsString], kernel: u64) -> Result<Worker, ProcessError> {
        // A worker that starts workers is a program that did not call `worker_main` first (or a
        // test binary without `worker_process_args`): refusing stops a fork bomb.
        if std::env::var_os(ENV_WORKER).is_some() {
            return Err(ProcessError::Start(io::Error::other(
                "a worker process cannot start workers: call worker_main first in main",
            )));
        }
        let spawned = (|| {
            use rustix::pipe::PipeFlags;
            let (mine, theirs) = UnixStream::pair()?;
            let (req_r, req_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
            let (rep_r, rep_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
            // A process group of its own: a terminal's Ctrl-C goes to the program, which decides
            // (Curio's workers ignore SIGINT); the worker still goes when the program does.
            let mut child = Command::new(std::env::current_exe()?)
                .process_group(0)
                .args(args)
                .env(ENV_WORKER, "1")
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .spawn()?;
            if let Err(e) = send_pipes(&mine, &req_r, &rep_w) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
            // Only the worker holds these ends now, so its death reads as end of file here.
            drop((req_r, rep_w));
            rustix::io::ioctl_fionbio(&req_w, true)?;
            rustix::io::ioctl_fionbio(&rep_r, true)?;
            Ok::<_, io::Error>(Worker {
                child,
                _sock: mine,
                tx: curio_reactor::Async::new(req_w),
                rx: curio_reactor::Async::new(rep_r),
                kernel,
            })
        })();
        spawned.map_err(ProcessError::Start)
    }

    /// Waits for a new worker's hello.
    async fn hello(&mut self) -> Result<(), ProcessError> {
        let hello = curio_kernel::timeout_after(START_TIMEOUT, self.read_frame(HELLO.len())).await;
        let why = match hello {
            Ok(Ok(h)) if h == HELLO => return Ok(()),
            Ok(Ok(_)) => "it sent no hello".to_owned(),
            Ok(Err(IoFail::TooLarge(_))) => "it wrote something else first".to_owned(),
            Ok(Err(IoFail::Io(_))) => "it exited first".to_owned(),
            Err(_) => format!("it did not start within {START_TIMEOUT:?}"),
        };
        Err(ProcessError::Start(io::Error::other(format!(
            "the worker did not enter worker_main ({why}); call \
             curio::workers::worker_main(&REGISTRY) first in main, or set \
             worker_process_args for a test binary"
        ))))
    }

    async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self
                .tx
                .write_with(|fd| rustix::io::write(fd, data).map_err(io::Error::from))
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Reads one frame of at most `limit` bytes. The protocol is strictly one reply per
    /// request, so reading ahead can never take bytes of another frame.
    async fn read_frame(&mut self, limit: usize) -> Result<Vec<u8>, IoFail> {
        let mut buf = vec![0; 4096];
        let mut filled = 0;
        loop {
            if filled >= 4 {
                let len = u32::from_le_bytes(buf[..4].try_into().unwrap_or_default()) as usize;
                if len > limit {
                    return Err(IoFail::TooLarge(len));
                }
                if filled == 4 + len {
                    // One reply per request: the socket is empty now, so the next call's read
                    // waits for an event instead of trying a read that would fail.
                    self.rx.clear_ready(curio_reactor::Direction::Read);
                    buf.truncate(filled);
                    return Ok(buf.split_off(4));
                }
                if buf.len() < 4 + len {
                    buf.resize(4 + len, 0);
                }
            }
            let end = if filled >= 4 {
                buf.len()
            } else {
                buf.len().min(4096)
            };
            let n = self
                .rx
                .read_with(|fd| {
                    rustix::io::read(fd, &mut buf[filled..end]).map_err(io::Error::from)
                })
                .await?;
            if n == 0 {
                return Err(IoFail::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            filled += n;
        }
    }

    /// Sends `SIGTERM`, gives the worker `grace` to exit, then `SIGKILL`; reaps it. Blocks.
    fn kill(self, grace: Duration) {
        let Worker {
            mut child, tx, rx, ..
        } = self;
        drop((tx, rx));
        let pid = rustix::process::Pid::from_child(&child);
        if !grace.is_zero()
            && rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
        {
            wait_exit(&child, grace);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Closes the socket, so an idle worker exits by itself; kills it if it has not exited
    /// after `grace` (at least a second). Blocks.
    fn stop(self, grace: Duration) {
        let Worker {
            mut child, tx, rx, ..
        } = self;
        drop((tx, rx));
        wait_exit(&child, grace.max(Duration::from_secs(1)));
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends the worker's ends of its pipes over its socket.
fn send_pipes(sock: &UnixStream, req: &OwnedFd, rep: &OwnedFd) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    let fds = [req.as_fd(), rep.as_fd()];
    if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for two descriptors"));
    }
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(b"p")],
        &mut cmsg,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Waits up to `grace` for `child` to exit, on its pidfd (without one, not at all).
fn wait_exit(child: &Child, grace: Duration) {
    let pid = rustix::process::Pid::from_child(child);
    let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return;
    };
    let ts = timespec(grace);
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    let _ = rustix::event::poll(&mut fds, Some(&ts));
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
