//! The echo benchmark: a server under test pinned to CPU 0 in a process of its own, and a
//! one-thread epoll load generator pinned to CPU 1 in this process.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::epoll;

use crate::stats::{Result, Series};

#[allow(dead_code, reason = "the example's main is not used here")]
#[path = "../../examples/echo_server.rs"]
mod echo_example;

/// The servers under test.
pub(crate) const SERVERS: [&str; 6] = [
    "curio-rt",
    "curio-rt-stream",
    "tokio-ct",
    "tokio-mt1",
    "smol",
    "epoll",
];

/// Pins the calling thread to one CPU (best effort: a machine with one CPU keeps both on it).
pub(crate) fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    set.set(cpu % n);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// The `serve` command: runs server `kind` on 127.0.0.1:0 and writes its port to `port_file`.
pub(crate) fn serve(kind: &str, port_file: &str) -> io::Result<()> {
    pin(0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::fs::write(port_file, port.to_string())?;
    match kind {
        "curio-rt" => curio::run(async move {
            let l = curio::net::TcpListener::from_std(listener)?;
            echo_example::serve(l).await
        }),
        "curio-rt-stream" => curio::run(async move {
            let l = curio::net::TcpListener::from_std(listener)?;
            curio::net::run_server(l, |client: curio::net::TcpStream, _| async move {
                let mut s = client.as_stream();
                loop {
                    let data = s.read(100_000).await?;
                    if data.is_empty() {
                        return io::Result::Ok(());
                    }
                    s.write(&data).await?;
                }
            })
            .await
        }),
        "tokio-ct" | "tokio-mt1" => {
            let rt = if kind == "tokio-ct" {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()?
            };
            rt.block_on(async move {
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
            })
        }
        "smol" => {
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                use smol::io::{AsyncReadExt, AsyncWriteExt};
                let l = smol::net::TcpListener::try_from(listener)?;
                loop {
                    let (mut s, _) = l.accept().await?;
                    ex.spawn(async move {
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
            }))
        }
        "epoll" => epoll_server(listener),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
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
        epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None)?;
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

pub(crate) const CASES: [Case; 3] = [
    Case {
        name: "echo 100x64B",
        conns: 100,
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

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

struct Server {
    child: Child,
    addr: SocketAddr,
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

fn start_server(kind: &str) -> io::Result<Server> {
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

/// Runs the load generator against `addr`: returns (round trips per second, round trips).
fn load(
    addr: SocketAddr,
    case: Case,
    warmup: Duration,
    window: Duration,
    pid: u32,
) -> io::Result<(f64, f64)> {
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
        });
    }
    let msg = vec![7u8; 65536];
    let mut rbuf = vec![0u8; 1 << 20];
    let mut events = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut measuring = false;
    let mut done = 0u64;
    let (mut t0, mut c0) = (start, 0u64);
    for c in conns.iter_mut() {
        c.pump(&msg, &mut rbuf, case.size, &mut 0)?;
    }
    loop {
        let now = Instant::now();
        if !measuring && now >= start + warmup {
            measuring = true;
            done = 0;
            t0 = now;
            c0 = cpu_ticks(pid);
        }
        if measuring && now >= t0 + window {
            let secs = now.duration_since(t0).as_secs_f64();
            let cpu = (cpu_ticks(pid) - c0) as f64 / TICKS_PER_SEC;
            let rts = done as f64;
            return Ok((rts / secs, cpu * 1e6 / rts.max(1.0)));
        }
        events.clear();
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&ts))?;
        for ev in &events {
            let c = &mut conns[ev.data.u64() as usize];
            c.pump(&msg, &mut rbuf, case.size, &mut done)?;
        }
    }
}

struct Conn {
    s: TcpStream,
    to_send: usize,
    received: usize,
}

impl Conn {
    /// Reads what is there, counting whole echoed messages, then writes what is owed.
    fn pump(&mut self, msg: &[u8], rbuf: &mut [u8], size: usize, done: &mut u64) -> io::Result<()> {
        loop {
            match self.s.read(rbuf) {
                Ok(0) => return Err(io::Error::other("server closed the connection")),
                Ok(n) => {
                    self.received += n;
                    let whole = self.received / size;
                    self.received %= size;
                    *done += whole as u64;
                    self.to_send += whole * size;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
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

/// Runs every echo case on every server, alternating servers within each round.
pub(crate) fn run_all(rounds: usize, quick: bool, servers: &[&'static str]) -> Vec<Result> {
    pin(1);
    let (warmup, window) = if quick {
        (Duration::from_millis(300), Duration::from_millis(1000))
    } else {
        (Duration::from_millis(500), Duration::from_secs(2))
    };
    let cases: &[Case] = if quick { &CASES[..1] } else { &CASES };
    let mut results = Vec::new();
    for case in cases {
        let mut tput: Vec<Series> = servers
            .iter()
            .map(|s| Series {
                runtime: s,
                values: Vec::new(),
            })
            .collect();
        let mut cpu = tput.clone();
        for _ in 0..rounds {
            for (i, kind) in servers.iter().enumerate() {
                match start_server(kind).and_then(|srv| {
                    let pid = srv.child.id();
                    load(srv.addr, *case, warmup, window, pid)
                }) {
                    Ok((rps, us)) => {
                        tput[i].values.push(rps);
                        cpu[i].values.push(us);
                    }
                    Err(e) => eprintln!("{} on {kind}: {e}", case.name),
                }
            }
        }
        let first = case.name == CASES[0].name;
        results.push(Result {
            name: format!("{} round trips", case.name),
            unit: "rt/s",
            lower_is_better: false,
            series: tput,
            target: first.then_some(("epoll", 0.97)),
        });
        results.push(Result {
            name: format!("{} server CPU", case.name),
            unit: "µs/rt",
            lower_is_better: true,
            series: cpu,
            target: first.then_some(("epoll", 1.05)),
        });
        eprintln!("{}: done", case.name);
    }
    results
}
