//! The echo benchmark: a server under test pinned to CPU 0 in a process of its own, and a
//! one-thread epoll load generator pinned to CPU 1 in this process.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::epoll;

use crate::stats::{Result, Series, Target};

#[allow(dead_code, reason = "the example's main is not used here")]
#[path = "../../examples/echo_server.rs"]
mod echo_example;

/// The servers under test.
pub(crate) const SERVERS: [&str; 6] = [
    "curio-rt",
    "curio-rt-stream",
    // tokio's usual form for a server; the label says so, as for every tokio column.
    "tokio-ct (spawn)",
    "tokio-mt1",
    "smol",
    "epoll",
];

/// The number of CPUs of the machine, whatever this thread's affinity (`available_parallelism`
/// counts only the CPUs the thread may use now).
pub(crate) fn cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| {
            let last = s.trim().rsplit([',', '-']).next()?.parse::<usize>().ok()?;
            Some(last + 1)
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Pins the calling thread to one CPU (best effort: a machine with one CPU keeps both on it).
pub(crate) fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % cpus());
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Lets the calling thread run on every CPU again.
pub(crate) fn unpin() {
    let mut set = rustix::thread::CpuSet::new();
    for cpu in 0..cpus() {
        set.set(cpu);
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// The `serve` command: runs server `kind` on 127.0.0.1:0 and writes its port to `port_file`.
pub(crate) fn serve(kind: &str, port_file: &str) -> io::Result<()> {
    if MULTI_SERVERS.contains(&kind) {
        return serve_multi(kind, port_file);
    }
    pin(0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::fs::write(port_file, port.to_string())?;
    match kind {
        // Every server's accept loop runs as a spawned task, never as the main future.
        "curio-rt" => curio::run(async move {
            let l = curio::net::TcpListener::from_std(listener)?;
            curio::spawn(echo_example::serve(l))
                .join()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?
        }),
        "curio-rt-stream" => curio::run(async move {
            let l = curio::net::TcpListener::from_std(listener)?;
            curio::spawn(curio::net::run_server(
                l,
                |client: curio::net::TcpStream, _| async move {
                    let mut s = client.as_stream();
                    loop {
                        let data = s.read(100_000).await?;
                        if data.is_empty() {
                            return io::Result::Ok(());
                        }
                        s.write(&data).await?;
                    }
                },
            ))
            .join()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
        }),
        "tokio-ct (spawn)" | "tokio-mt1" => {
            let rt = if kind == "tokio-ct (spawn)" {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()?
            };
            tokio_serve(&rt, listener)
        }
        "smol" => smol_serve(listener),
        "epoll" => epoll_server(listener),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
}

/// The servers of the multi-core case: two kernels, tokio's `multi_thread` with two workers,
/// smol with an executor per core, and the floor, two epoll loops; each unpinned (the
/// operating system places the threads) and, but for tokio, on a `SO_REUSEPORT` listener per
/// thread.
/// curio-rt's label ends in ` (2 kernels)`, so the ratios read it as curio-rt.
pub(crate) const MULTI_SERVERS: [&str; 4] =
    ["curio-rt (2 kernels)", "tokio-mt2", "smol-2", "epoll-2"];

/// The `serve` command for [`MULTI_SERVERS`].
fn serve_multi(kind: &str, port_file: &str) -> io::Result<()> {
    unpin();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut listeners = curio::net::reuse_port_listeners(addr, 2)?;
    std::fs::write(port_file, listeners[0].local_addr()?.port().to_string())?;
    match kind {
        "curio-rt (2 kernels)" => {
            let rt = curio::MultiKernel::builder().kernels(2).build()?;
            curio::net::tcp_server_multi_on(
                rt,
                listeners,
                curio::net::ServerOptions::default(),
                echo_example::echo_client,
            )
        }
        "tokio-mt2" => {
            // One listener: tokio's workers share its accept loop, as a tokio user writes it.
            listeners.truncate(1);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            tokio_serve(&rt, listeners.remove(0))
        }
        "smol-2" | "epoll-2" => {
            let second = listeners.remove(1);
            let serve_one: fn(TcpListener) -> io::Result<()> = if kind == "smol-2" {
                smol_serve
            } else {
                epoll_server
            };
            let other = std::thread::spawn(move || serve_one(second));
            let first = serve_one(listeners.remove(0));
            other
                .join()
                .map_err(|_| io::Error::other("a server thread panicked"))??;
            first
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
}

/// tokio's echo server on `rt`, its accept loop a spawned task.
fn tokio_serve(rt: &tokio::runtime::Runtime, listener: TcpListener) -> io::Result<()> {
    let accept = async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        listener.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (mut s, _) = l.accept().await?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 100_000];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    };
    rt.block_on(async move { tokio::spawn(accept).await.map_err(io::Error::other)? })
}

/// smol's echo server on a `LocalExecutor` of this thread, its accept loop a spawned task.
fn smol_serve(listener: TcpListener) -> io::Result<()> {
    let ex = std::rc::Rc::new(smol::LocalExecutor::new());
    let ex2 = ex.clone();
    let accept = async move {
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        let l = smol::net::TcpListener::try_from(listener)?;
        loop {
            let (mut s, _) = l.accept().await?;
            ex2.spawn(async move {
                let mut buf = vec![0u8; 100_000];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            })
            .detach();
        }
    };
    smol::block_on(ex.run(ex.spawn(accept)))
}

/// The floor: a hand-written level-triggered epoll loop, one read and one write per message.
fn epoll_server(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &listener,
        epoll::EventData::new_u64(u64::MAX),
        epoll::EventFlags::IN,
    )?;
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let mut next = 0u64;
    let mut buf = vec![0u8; 100_000];
    let mut events = Vec::with_capacity(1024);
    loop {
        events.clear();
        match epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None) {
            // A profiler's signal: wait again.
            Err(rustix::io::Errno::INTR) => continue,
            r => r?,
        };
        for ev in &events {
            let key = ev.data.u64();
            if key == u64::MAX {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true)?;
                    s.set_nodelay(true)?;
                    epoll::add(
                        &ep,
                        &s,
                        epoll::EventData::new_u64(next),
                        epoll::EventFlags::IN,
                    )?;
                    conns.insert(next, s);
                    next += 1;
                }
                continue;
            }
            let Some(s) = conns.get_mut(&key) else {
                continue;
            };
            match s.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = epoll::delete(&ep, s.as_fd());
                    conns.remove(&key);
                }
                Ok(n) => {
                    let mut data = &buf[..n];
                    while !data.is_empty() {
                        match s.write(data) {
                            Ok(w) => data = &data[w..],
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                std::thread::yield_now()
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
        }
    }
}

/// One echo workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) in_flight: usize,
}

pub(crate) const CASES: [Case; 4] = [
    Case {
        name: "echo 100x64B",
        conns: 100,
        size: 64,
        in_flight: 1,
    },
    Case {
        name: "echo 1000x64B",
        conns: 1000,
        size: 64,
        in_flight: 1,
    },
    Case {
        name: "echo 1x1B",
        conns: 1,
        size: 1,
        in_flight: 1,
    },
    Case {
        name: "echo 16x16KiB x4",
        conns: 16,
        size: 16384,
        in_flight: 4,
    },
];

pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// A server under test, in a process of its own; dropping it kills the process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed's Python peers: the same echo server on Curio, asyncio, uvloop and Trio.
pub(crate) const PYTHON_SERVERS: [(&str, &str); 4] = [
    ("py-curio", "curio"),
    ("py-asyncio", "asyncio"),
    ("py-uvloop", "uvloop"),
    ("py-trio", "trio"),
];

const PY_PRELUDE: &str = "import os, sys\nos.sched_setaffinity(0, {0})\nPORT_FILE = sys.argv[1]\n";

const PY_CURIO: &str = "from curio import run, socket
from curio.network import run_server

async def echo(client, addr):
    while True:
        data = await client.recv(100000)
        if not data:
            break
        await client.sendall(data)

async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    sock.listen(128)
    open(PORT_FILE, 'w').write(str(sock.getsockname()[1]))
    await run_server(sock, echo)

run(main)
";

const PY_ASYNCIO: &str = "import asyncio

async def echo(reader, writer):
    while True:
        data = await reader.read(100000)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(echo, '127.0.0.1', 0)
    open(PORT_FILE, 'w').write(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()

if 'uvloop' in sys.argv[2:]:
    import uvloop
    uvloop.install()
asyncio.run(main())
";

const PY_TRIO: &str = "import trio

async def echo(stream):
    async for data in stream:
        await stream.send_all(data)

async def main():
    listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
    open(PORT_FILE, 'w').write(str(listeners[0].socket.getsockname()[1]))
    await trio.serve_listeners(echo, listeners)

trio.run(main)
";

fn python_script(kind: &str) -> Option<&'static str> {
    match kind {
        "py-curio" => Some(PY_CURIO),
        "py-asyncio" | "py-uvloop" => Some(PY_ASYNCIO),
        "py-trio" => Some(PY_TRIO),
        _ => None,
    }
}

/// Installs the Python peers with pip (best effort); returns those that import.
pub(crate) fn python_peers() -> Vec<&'static str> {
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "curio", "trio", "uvloop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut ok = Vec::new();
    for (kind, module) in PYTHON_SERVERS {
        let imports = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if imports {
            ok.push(kind);
        } else {
            eprintln!("{kind}: the python module {module} is not available; skipped");
        }
    }
    ok
}

/// Starts `curio-bench serve KIND` (or a Python peer) and waits for the port it listens on.
pub(crate) fn start_server(kind: &str) -> io::Result<Server> {
    let port_file =
        std::env::temp_dir().join(format!("curio-bench-port-{}-{kind}", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let mut command = match python_script(kind) {
        Some(script) => {
            let path = std::env::temp_dir().join(format!("curio-bench-{kind}.py"));
            std::fs::write(&path, format!("{PY_PRELUDE}{script}"))?;
            let mut c = Command::new("python3");
            c.arg(path).arg(&port_file);
            if kind == "py-uvloop" {
                c.arg("uvloop");
            }
            c
        }
        None => {
            let mut c = Command::new(std::env::current_exe()?);
            c.args(["serve", kind, &port_file.to_string_lossy()]);
            c
        }
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut server = Server {
        child,
        addr: "127.0.0.1:0".parse().expect("address"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(p) = std::fs::read_to_string(&port_file)
            && let Ok(port) = p.trim().parse::<u16>()
        {
            server.addr = SocketAddr::from(([127, 0, 0, 1], port));
            let _ = std::fs::remove_file(&port_file);
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("server {kind} did not start")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What one load run measured.
struct Measured {
    /// Round trips per second.
    rps: f64,
    /// Server CPU per round trip, µs.
    cpu_us: f64,
    /// Round-trip latencies in ns, sorted (only with one message in flight per connection).
    latencies: Vec<u64>,
}

/// Runs the load generator against `addr`.
fn load(
    addr: SocketAddr,
    case: Case,
    warmup: Duration,
    window: Duration,
    pid: u32,
) -> io::Result<Measured> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns = Vec::with_capacity(case.conns);
    for i in 0..case.conns {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        epoll::add(
            &ep,
            &s,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET,
        )?;
        conns.push(Conn {
            s,
            to_send: case.size * case.in_flight,
            received: 0,
            sent_at: Instant::now(),
        });
    }
    let msg = vec![7u8; 65536];
    let mut rbuf = vec![0u8; 1 << 20];
    let mut events = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut measuring = false;
    let mut done = 0u64;
    let (mut t0, mut c0) = (start, 0u64);
    let timed = case.in_flight == 1;
    let mut latencies: Vec<u64> = Vec::new();
    for c in conns.iter_mut() {
        c.pump(&msg, &mut rbuf, case.size, &mut 0, timed, None)?;
    }
    loop {
        let now = Instant::now();
        if !measuring && now >= start + warmup {
            measuring = true;
            done = 0;
            latencies.clear();
            t0 = now;
            c0 = cpu_ticks(pid);
        }
        if measuring && now >= t0 + window {
            let secs = now.duration_since(t0).as_secs_f64();
            let cpu = (cpu_ticks(pid) - c0) as f64 / TICKS_PER_SEC;
            let rts = done as f64;
            latencies.sort_unstable();
            return Ok(Measured {
                rps: rts / secs,
                cpu_us: cpu * 1e6 / rts.max(1.0),
                latencies,
            });
        }
        events.clear();
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&ts))?;
        let mut lat = measuring.then_some((&mut latencies, t0));
        for ev in &events {
            let c = &mut conns[ev.data.u64() as usize];
            let lat = lat.as_mut().map(|(l, t0)| (&mut **l, *t0));
            c.pump(&msg, &mut rbuf, case.size, &mut done, timed, lat)?;
        }
    }
}

struct Conn {
    s: TcpStream,
    to_send: usize,
    received: usize,
    /// When the message now in flight was written (one message in flight per connection).
    sent_at: Instant,
}

impl Conn {
    /// Reads what is there, counting whole echoed messages, then writes what is owed; if
    /// `timed`, notes when each message is written, and with `latencies`, records the time from
    /// write to complete echo of each round trip that started after the instant given with it.
    fn pump(
        &mut self,
        msg: &[u8],
        rbuf: &mut [u8],
        size: usize,
        done: &mut u64,
        timed: bool,
        mut latencies: Option<(&mut Vec<u64>, Instant)>,
    ) -> io::Result<()> {
        let now = timed.then(Instant::now);
        loop {
            match self.s.read(rbuf) {
                Ok(0) => return Err(io::Error::other("server closed the connection")),
                Ok(n) => {
                    self.received += n;
                    let whole = self.received / size;
                    self.received %= size;
                    *done += whole as u64;
                    self.to_send += whole * size;
                    if let (Some((l, since)), Some(now)) = (latencies.as_mut(), now)
                        && whole > 0
                        && self.sent_at >= *since
                    {
                        l.push(now.duration_since(self.sent_at).as_nanos() as u64);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(now) = now
            && self.to_send > 0
        {
            self.sent_at = now;
        }
        while self.to_send > 0 {
            let n = self.to_send.min(msg.len());
            match self.s.write(&msg[..n]) {
                Ok(w) => self.to_send -= w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The `load` command, for profiling a server started by hand (`serve`, perhaps under
/// valgrind or perf): drives `addr` with `conns` connections of one `size`-byte message in flight
/// for `secs` seconds and prints the round trips made.
pub(crate) fn load_cmd(addr: &str, conns: usize, size: usize, secs: f64) -> io::Result<()> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let case = Case {
        name: "load",
        conns,
        size,
        in_flight: 1,
    };
    let window = Duration::from_secs_f64(secs);
    let m = load(addr, case, Duration::ZERO, window, std::process::id())?;
    println!(
        "{:.0} round trips ({:.0}/s)",
        m.rps * window.as_secs_f64(),
        m.rps
    );
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1000.0)
}

/// The multi-core case: 1000 connections on [`MULTI_SERVERS`], held to the two-thread floor.
pub(crate) const MULTI_CASE: Case = Case {
    name: "echo 1000x64B on 2 cores",
    conns: 1000,
    size: 64,
    in_flight: 1,
};

/// Runs the multi-core case on [`MULTI_SERVERS`], held to `epoll-2` (CPU per round trip is the
/// headline: the load generator shares a core with the servers).
pub(crate) fn run_multi(rounds: usize, quick: bool) -> Vec<Result> {
    run_cases(
        &[MULTI_CASE],
        "epoll-2",
        None,
        rounds,
        quick,
        &MULTI_SERVERS,
    )
}

/// Runs every echo case that `wanted` accepts on every server, alternating servers within each
/// round.
pub(crate) fn run_all(
    rounds: usize,
    quick: bool,
    servers: &[&'static str],
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Result> {
    let cases: Vec<Case> = CASES.iter().copied().filter(|c| wanted(c.name)).collect();
    run_cases(&cases, "epoll", Some("tokio-ct"), rounds, quick, servers)
}

/// Runs `cases` on `servers`, throughput and CPU held to `floor`, p99 latency to `latency_peer`.
fn run_cases(
    cases: &[Case],
    floor: &'static str,
    latency_peer: Option<&'static str>,
    rounds: usize,
    quick: bool,
    servers: &[&'static str],
) -> Vec<Result> {
    pin(1);
    let (warmup, window) = if quick {
        (Duration::from_millis(300), Duration::from_millis(1000))
    } else {
        (Duration::from_millis(500), Duration::from_secs(2))
    };
    let mut results = Vec::new();
    for case in cases {
        let empty: Vec<Series> = servers
            .iter()
            .map(|s| Series {
                runtime: s,
                values: Vec::new(),
            })
            .collect();
        let (mut tput, mut cpu) = (empty.clone(), empty.clone());
        let mut pcts = [empty.clone(), empty.clone(), empty];
        for _ in 0..rounds {
            for (i, kind) in servers.iter().enumerate() {
                match start_server(kind).and_then(|srv| {
                    let pid = srv.child.id();
                    load(srv.addr, *case, warmup, window, pid)
                }) {
                    Ok(m) => {
                        tput[i].values.push(m.rps);
                        cpu[i].values.push(m.cpu_us);
                        for (s, p) in pcts.iter_mut().zip([0.5, 0.99, 0.999]) {
                            if let Some(v) = percentile(&m.latencies, p) {
                                s[i].values.push(v);
                            }
                        }
                    }
                    Err(e) => eprintln!("{} on {kind}: {e}", case.name),
                }
            }
        }
        // The targets: the floor's throughput and CPU where they are held to it.
        let held = case.conns >= 100 && case.size == 64;
        let bulk = case.in_flight > 1;
        results.push(Result {
            name: format!("{} round trips", case.name),
            unit: "rt/s",
            lower_is_better: false,
            series: tput,
            target: held.then(|| Target::of(floor, 0.97)),
        });
        results.push(Result {
            name: format!("{} server CPU", case.name),
            unit: "µs/rt",
            lower_is_better: true,
            series: cpu,
            target: (held || bulk).then(|| Target::of(floor, 1.05)),
        });
        if case.conns >= 1000 {
            for (series, label) in pcts.into_iter().zip(["p50", "p99", "p999"]) {
                results.push(Result {
                    name: format!("{} latency {label}", case.name),
                    unit: "µs",
                    lower_is_better: true,
                    series,
                    target: latency_peer
                        .filter(|_| label == "p99")
                        .map(|peer| Target::of(peer, 1.0)),
                });
            }
        }
        eprintln!("{}: done", case.name);
    }
    results
}
