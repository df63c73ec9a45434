//! The process pool: `run_in_process` runs a registered `fn(A) -> R` in a worker process.
//!
//! # Protocol
//!
//! A worker is the current executable, started again with `CURIO_WORKER=1` in its environment
//! and one end of a Unix socket pair as its standard input; its standard output and error stay
//! the parent's, for printing. [`worker_main`] moves the socket off descriptor 0 (which then
//! reads `/dev/null`), says hello, and serves one call at a time. Every message is a frame: a
//! little-endian `u32` length and that many bytes. A request holds the caller's frame limit
//! (`u32`), the function's name (`u16` length, bytes) and the argument in postcard; a reply holds
//! a tag (result, panic, unknown function, bad argument, result too large, unencodable result)
//! and its data.
//!
//! # Threads
//!
//! The pool is process-wide, shared by every kernel, and lives while some kernel that used it is
//! alive; the last such kernel's drop shuts it down and reaps its workers. Each worker process
//! has a manager thread (`curio-procpool`) that writes requests, reads replies and waits for
//! cancellation on an eventfd, so no kernel's thread ever blocks on a worker.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use curio_kernel::ExternalWork;
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
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
/// use curio_workers::{ProcessFn, Registry};
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
/// [`worker_process_args`]: crate::WorkersBuilderExt::worker_process_args
///
/// # Examples
///
/// ```
/// use curio_workers::{ProcessFn, Registry};
///
/// fn square(x: i64) -> i64 { x * x }
/// static SQUARE: ProcessFn<i64, i64> = ProcessFn::new("square", square);
/// static REGISTRY: Registry = Registry::new(&[&SQUARE]);
///
/// fn main() {
///     curio_workers::worker_main(&REGISTRY);
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
    let mut sock = UnixStream::from(sock);
    watch_parent(sock.try_clone()?);
    write_frame(&mut sock, &[HELLO])?;
    loop {
        let Some(req) = read_frame(&mut sock, usize::MAX)? else {
            return Ok(());
        };
        let reply = handle(registry, &req);
        write_frame(&mut sock, &[&reply])?;
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

/// Writes one frame made of `parts` on a blocking stream.
fn write_frame(sock: &mut UnixStream, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).map_err(io::Error::other)?;
    sock.write_all(&len.to_le_bytes())?;
    for p in parts {
        sock.write_all(p)?;
    }
    Ok(())
}

/// Reads one frame from a blocking stream; `None` at a clean end of stream.
fn read_frame(sock: &mut UnixStream, limit: usize) -> io::Result<Option<Vec<u8>>> {
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
/// with a [`Registry`] that lists `f`.
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
/// use curio_workers::{ProcessFn, Registry};
///
/// fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
/// static FIB: ProcessFn<u64, u64> = ProcessFn::new("fib", fib);
/// static REGISTRY: Registry = Registry::new(&[&FIB]);
///
/// fn main() {
///     curio_workers::worker_main(&REGISTRY);
///     let n = curio_kernel::run(curio_workers::run_in_process(&FIB, 30));
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

/// The future of [`run_in_process`].
#[must_use = "futures do nothing unless awaited"]
pub struct RunInProcess<R> {
    name: &'static str,
    arg: Option<Result<Vec<u8>, ProcessError>>,
    call: Option<Arc<Call>>,
    /// The call of `run_in_process`, reported as the task's wait site.
    site: &'static std::panic::Location<'static>,
    _out: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for RunInProcess<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunInProcess")
            .field("name", &self.name)
            .field("submitted", &self.call.is_some())
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
            let cfg = curio_kernel::config::<ProcessPoolConfig>().unwrap_or_default();
            let limit = cfg.frame_limit.unwrap_or(DEFAULT_FRAME_LIMIT);
            let size = arg.len() + 6 + this.name.len();
            if size > limit {
                return Poll::Ready(Err(ProcessError::FrameTooLarge { size, limit }));
            }
            let handle = curio_kernel::try_handle()
                .expect("curio::run_in_process polled outside a curio kernel");
            let call = Arc::new(Call {
                name: this.name,
                limit,
                state: Mutex::new(CallState {
                    arg: Some(arg),
                    result: None,
                    waker: Some(cx.waker().clone()),
                    cancelled: false,
                    wake_fd: None,
                    work: Some(handle.external_work()),
                }),
            });
            let pool = curio_kernel::extension(|| KernelUse::new(&cfg));
            pool.shared.submit(call.clone());
            this.call = Some(call);
            curio_core::waiting(curio_core::WaitKind::External, Some(this.site));
            return Poll::Pending;
        }
        let call = this.call.as_ref().expect("polled after completion");
        let mut st = lock(&call.state);
        match st.result.take() {
            Some(r) => {
                drop(st);
                this.call = None;
                Poll::Ready(r.and_then(|bytes| decode(&bytes).map_err(ProcessError::Decode)))
            }
            None => {
                match &mut st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                drop(st);
                curio_core::waiting(curio_core::WaitKind::External, Some(this.site));
                Poll::Pending
            }
        }
    }
}

impl<R> Drop for RunInProcess<R> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.cancel();
        }
    }
}

struct Call {
    name: &'static str,
    limit: usize,
    state: Mutex<CallState>,
}

struct CallState {
    arg: Option<Vec<u8>>,
    result: Option<Result<Vec<u8>, ProcessError>>,
    waker: Option<Waker>,
    cancelled: bool,
    /// The eventfd of the manager running the call, to tell it of a cancellation.
    wake_fd: Option<Arc<OwnedFd>>,
    /// Keeps a virtual clock still until the result has woken the caller.
    work: Option<ExternalWork>,
}

impl Call {
    fn cancel(&self) {
        let mut st = lock(&self.state);
        st.cancelled = true;
        st.waker = None;
        let fd = st.wake_fd.take();
        let work = st.work.take();
        let arg = st.arg.take();
        drop(st);
        if let Some(fd) = fd {
            notify(&fd);
        }
        drop((work, arg));
    }

    fn is_cancelled(&self) -> bool {
        lock(&self.state).cancelled
    }

    fn deliver(&self, r: Result<Vec<u8>, ProcessError>) {
        let mut st = lock(&self.state);
        if st.cancelled {
            return;
        }
        st.result = Some(r);
        st.wake_fd = None;
        let w = st.waker.take();
        let work = st.work.take();
        drop(st);
        if let Some(w) = w {
            w.wake();
        }
        // After the wake, so a virtual clock cannot jump in between.
        drop(work);
    }
}

fn notify(fd: &OwnedFd) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

fn drain(fd: &OwnedFd) {
    let mut b = [0; 8];
    let _ = rustix::io::read(fd, &mut b);
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
}

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
                        jobs: VecDeque::new(),
                        managers: Vec::new(),
                        idle: 0,
                        shutdown: false,
                    }),
                    cond: Condvar::new(),
                    max,
                    args: cfg.worker_args.clone().unwrap_or_default(),
                    grace: cfg.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
                })
            })
            .clone();
        KernelUse { shared }
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
    cond: Condvar,
    max: usize,
    args: Vec<OsString>,
    grace: Duration,
}

struct PoolState {
    jobs: VecDeque<Arc<Call>>,
    managers: Vec<Manager>,
    idle: usize,
    shutdown: bool,
}

struct Manager {
    handle: JoinHandle<()>,
    wake: Arc<OwnedFd>,
}

impl PoolShared {
    fn submit(self: &Arc<Self>, call: Arc<Call>) {
        let mut st = lock(&self.state);
        st.jobs.push_back(call);
        if st.idle > 0 {
            drop(st);
            self.cond.notify_one();
            return;
        }
        if st.managers.len() >= self.max {
            return;
        }
        let started = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(io::Error::from)
            .and_then(|fd| {
                let wake = Arc::new(fd);
                let (shared, w2) = (self.clone(), wake.clone());
                std::thread::Builder::new()
                    .name("curio-procpool".into())
                    .spawn(move || manage(&shared, &w2))
                    .map(|handle| Manager { handle, wake })
            });
        match started {
            Ok(m) => st.managers.push(m),
            Err(e) if st.managers.is_empty() => {
                let call = st.jobs.pop_back();
                drop(st);
                if let Some(c) = call {
                    c.deliver(Err(ProcessError::Start(e)));
                }
            }
            // A running manager takes the call when it is free.
            Err(_) => {}
        }
    }

    fn shutdown(&self) {
        let (managers, jobs) = {
            let mut st = lock(&self.state);
            st.shutdown = true;
            (
                std::mem::take(&mut st.managers),
                std::mem::take(&mut st.jobs),
            )
        };
        for c in jobs {
            c.cancel();
        }
        self.cond.notify_all();
        for m in &managers {
            notify(&m.wake);
        }
        for m in managers {
            let _ = m.handle.join();
        }
    }

    fn next_job(&self) -> Option<Arc<Call>> {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown {
                return None;
            }
            if let Some(c) = st.jobs.pop_front() {
                return Some(c);
            }
            st.idle += 1;
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            st.idle -= 1;
        }
    }

    fn is_shutdown(&self) -> bool {
        lock(&self.state).shutdown
    }
}

/// A manager thread: runs calls on its worker process, starting one when it has none.
fn manage(shared: &PoolShared, wake: &Arc<OwnedFd>) {
    let mut worker: Option<Worker> = None;
    while let Some(call) = shared.next_job() {
        drain(wake);
        let arg = {
            let mut st = lock(&call.state);
            if st.cancelled {
                continue;
            }
            st.wake_fd = Some(wake.clone());
            st.arg.take().unwrap_or_default()
        };
        let stop = || call.is_cancelled() || shared.is_shutdown();
        let out = run_call(&mut worker, shared, wake, &call, &arg, &stop);
        match out {
            Ok(r) => call.deliver(r),
            Err(Stopped) => {
                if let Some(w) = worker.take() {
                    w.kill(shared.grace);
                }
            }
        }
    }
    if let Some(w) = worker {
        w.stop(shared.grace);
    }
}

/// The call was cancelled, or the pool is shutting down: the worker must go.
struct Stopped;

fn run_call(
    worker: &mut Option<Worker>,
    shared: &PoolShared,
    wake: &OwnedFd,
    call: &Call,
    arg: &[u8],
    stop: &dyn Fn() -> bool,
) -> Result<Result<Vec<u8>, ProcessError>, Stopped> {
    if worker.is_none() {
        match Worker::start(&shared.args, wake, stop)? {
            Ok(w) => *worker = Some(w),
            Err(e) => return Ok(Err(e)),
        }
    }
    let w = worker.as_mut().expect("started above");
    let name = call.name.as_bytes();
    let mut head = Vec::with_capacity(10 + name.len());
    let len = u32::try_from(6 + name.len() + arg.len()).unwrap_or(u32::MAX);
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&u32::try_from(call.limit).unwrap_or(u32::MAX).to_le_bytes());
    head.extend_from_slice(&(name.len() as u16).to_le_bytes());
    head.extend_from_slice(name);
    let io = match w.io(wake, stop, |c| c.write_parts(&[&head, arg]))? {
        Ok(()) => w.io(wake, stop, |c| c.read_frame(call.limit))?,
        Err(e) => Err(e),
    };
    match io {
        Ok(reply) => Ok(decode_reply(reply)),
        Err(IoFail::TooLarge(size)) => {
            // The stream is out of step now: the worker goes.
            worker.take().expect("present").kill(shared.grace);
            Ok(Err(ProcessError::FrameTooLarge {
                size,
                limit: call.limit,
            }))
        }
        Err(IoFail::Io(e)) => {
            let w = worker.take().expect("present");
            Ok(Err(match w.reap() {
                Ok(status) => ProcessError::Crashed(status),
                Err(_) => ProcessError::Io(e),
            }))
        }
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
    /// The socket failed or hit its end: the worker died.
    Io(io::Error),
}

impl From<io::Error> for IoFail {
    fn from(e: io::Error) -> IoFail {
        IoFail::Io(e)
    }
}

/// One worker process and the parent's end of its socket (non-blocking).
struct Worker {
    child: Child,
    sock: UnixStream,
}

/// A worker's socket as seen by one step of a call: non-blocking reads and writes that report
/// `WouldBlock`, and the direction to wait for.
struct Conn<'a> {
    sock: &'a mut UnixStream,
    /// Bytes of the current step already done (the step restarts after each wait).
    done: usize,
    buf: Vec<u8>,
    want: PollFlags,
}

impl Conn<'_> {
    /// Writes `parts` one after the other, resuming where the last attempt stopped.
    fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), IoFail> {
        self.want = PollFlags::OUT;
        loop {
            let mut off = self.done;
            let mut rest = None;
            for p in parts {
                if off < p.len() {
                    rest = Some(&p[off..]);
                    break;
                }
                off -= p.len();
            }
            let Some(rest) = rest else {
                return Ok(());
            };
            match self.sock.write(rest) {
                Ok(0) => return Err(IoFail::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IoFail::Io(e)),
            }
        }
    }

    /// Reads one frame of at most `limit` bytes, resuming where the last attempt stopped; it
    /// never reads past the frame's end.
    fn read_frame(&mut self, limit: usize) -> Result<Vec<u8>, IoFail> {
        self.want = PollFlags::IN;
        loop {
            let need = match self.buf.get(..4) {
                Some(head) => {
                    let len = u32::from_le_bytes(head.try_into().unwrap_or_default()) as usize;
                    if len > limit {
                        return Err(IoFail::TooLarge(len));
                    }
                    if self.buf.len() == 4 + len {
                        let frame = self.buf.split_off(4);
                        self.buf.clear();
                        return Ok(frame);
                    }
                    4 + len
                }
                None => 4,
            };
            let old = self.buf.len();
            self.buf.resize(old + (need - old).min(1 << 20), 0);
            match self.sock.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    return Err(IoFail::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) => {
                    self.buf.truncate(old);
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(IoFail::Io(e));
                    }
                }
            }
        }
    }
}

impl Worker {
    /// Starts a worker and waits for its hello. The outer `Err` means the caller must stop.
    fn start(
        args: &[OsString],
        wake: &OwnedFd,
        stop: &dyn Fn() -> bool,
    ) -> Result<Result<Worker, ProcessError>, Stopped> {
        let started = (|| {
            // A worker that starts workers is a program that did not call `worker_main` first
            // (or a test binary without `worker_process_args`): refusing stops a fork bomb.
            if std::env::var_os(ENV_WORKER).is_some() {
                return Err(io::Error::other(
                    "a worker process cannot start workers: call worker_main first in main",
                ));
            }
            let (mine, theirs) = UnixStream::pair()?;
            let child = Command::new(std::env::current_exe()?)
                .args(args)
                .env(ENV_WORKER, "1")
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .spawn()?;
            mine.set_nonblocking(true)?;
            Ok::<_, io::Error>(Worker { child, sock: mine })
        })();
        let mut w = match started {
            Ok(w) => w,
            Err(e) => return Ok(Err(ProcessError::Start(e))),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let hello = w.io_until(wake, stop, Some(deadline), |c| c.read_frame(HELLO.len()));
        match hello {
            Err(Stopped) => {
                w.kill(Duration::ZERO);
                Err(Stopped)
            }
            Ok(Ok(h)) if h == HELLO => Ok(Ok(w)),
            Ok(other) => {
                let why = match other {
                    Ok(_) => "it sent no hello".to_owned(),
                    Err(IoFail::TooLarge(_)) => "it wrote something else first".to_owned(),
                    Err(IoFail::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                        format!("it did not start within {START_TIMEOUT:?}")
                    }
                    Err(IoFail::Io(_)) => "it exited first".to_owned(),
                };
                w.kill(Duration::ZERO);
                Ok(Err(ProcessError::Start(io::Error::other(format!(
                    "the worker did not enter worker_main ({why}); call \
                     curio::workers::worker_main(&REGISTRY) first in main, or set \
                     worker_process_args for a test binary"
                )))))
            }
        }
    }

    fn io<T>(
        &mut self,
        wake: &OwnedFd,
        stop: &dyn Fn() -> bool,
        step: impl FnMut(&mut Conn<'_>) -> Result<T, IoFail>,
    ) -> Result<Result<T, IoFail>, Stopped> {
        self.io_until(wake, stop, None, step)
    }

    /// Runs `step` until it stops reporting `WouldBlock`, waiting for the socket or the eventfd
    /// in between.
    fn io_until<T>(
        &mut self,
        wake: &OwnedFd,
        stop: &dyn Fn() -> bool,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut Conn<'_>) -> Result<T, IoFail>,
    ) -> Result<Result<T, IoFail>, Stopped> {
        let mut conn = Conn {
            sock: &mut self.sock,
            done: 0,
            buf: Vec::new(),
            want: PollFlags::IN,
        };
        loop {
            if stop() {
                return Err(Stopped);
            }
            match step(&mut conn) {
                Err(IoFail::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Ok(other),
            }
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Err(IoFail::Io(io::ErrorKind::TimedOut.into())));
                    }
                    Some(timespec(left))
                }
                None => None,
            };
            let mut fds = [
                PollFd::new(&*conn.sock, conn.want),
                PollFd::new(wake, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Ok(Err(IoFail::Io(e.into()))),
            }
            if !fds[1].revents().is_empty() {
                drain(wake);
            }
        }
    }

    /// Waits for the worker to exit and reaps it.
    fn reap(mut self) -> io::Result<ExitStatus> {
        drop(self.sock);
        self.child.wait()
    }

    /// Sends `SIGTERM`, gives the worker `grace` to exit, then `SIGKILL`; reaps it.
    fn kill(mut self, grace: Duration) {
        let pid = rustix::process::Pid::from_child(&self.child);
        if !grace.is_zero()
            && rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
        {
            wait_exit(&self.child, grace);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes the socket, so an idle worker exits by itself; kills it if it has not exited
    /// after `grace` (at least a second).
    fn stop(self, grace: Duration) {
        let Worker { mut child, sock } = self;
        drop(sock);
        wait_exit(&child, grace.max(Duration::from_secs(1)));
        let _ = child.kill();
        let _ = child.wait();
    }
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
