//! The `http_hello` benchmark: hyper's HTTP/1.1 "hello world" with keep-alive, served by the
//! same service code on curio-rt (through curio-hyper) and on tokio `current_thread` (through
//! hyper-util's `TokioIo` and `TokioTimer`), each pinned to CPU 0 in a process of its own, and a
//! one-thread epoll load generator pinned to CPU 1 in this process: 100 connections, one
//! request in flight on each.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use curio::hyper::http_body_util::Full;
use curio::hyper::hyper::body::{Bytes, Incoming};
use curio::hyper::hyper::service::service_fn;
use curio::hyper::hyper::{Request, Response};
use rustix::event::epoll;

use crate::echo::{TICKS_PER_SEC, cpu_ticks, pin, start_server};
use crate::stats::{Result, Series, Target};

/// The servers under test: `serve` kinds, and the runtime each is reported as.
pub(crate) const SERVERS: [(&str, &str); 2] = [
    ("http-curio-rt", "curio-rt"),
    ("http-tokio-ct", "tokio-ct (spawn)"),
];

/// Whether `kind` is one of this module's servers.
pub(crate) fn is_server(kind: &str) -> bool {
    SERVERS.iter().any(|(k, _)| *k == kind)
}

/// The connections the load generator keeps busy.
const CONNS: usize = 100;

/// The request every connection sends, again and again.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// The service both servers run.
async fn hello(_req: Request<Incoming>) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

/// The `serve` command for `kind`: runs the server on 127.0.0.1:0 and writes its port to
/// `port_file`.
pub(crate) fn serve(kind: &str, port_file: &str) -> io::Result<()> {
    pin(0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    std::fs::write(port_file, listener.local_addr()?.port().to_string())?;
    match kind {
        // The accept loops run as spawned tasks, never as the main future.
        "http-curio-rt" => curio::run(async move {
            let l = curio::net::TcpListener::from_std(listener)?;
            let http = std::rc::Rc::new(curio::hyper::Http::new());
            let server = curio::net::run_server(l, move |s: curio::net::TcpStream, _| {
                let http = std::rc::Rc::clone(&http);
                async move {
                    s.set_nodelay(true)?;
                    http.serve_http1(s, service_fn(hello), None)
                        .await
                        .map_err(io::Error::other)
                }
            });
            curio::spawn(server)
                .join()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?
        }),
        "http-tokio-ct" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let accept = async move {
                use hyper_util::rt::{TokioIo, TokioTimer};
                listener.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(listener)?;
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new());
                loop {
                    let (s, _) = l.accept().await?;
                    s.set_nodelay(true)?;
                    let conn = http.serve_connection(TokioIo::new(s), service_fn(hello));
                    tokio::spawn(conn);
                }
            };
            rt.block_on(async move { tokio::spawn(accept).await.map_err(io::Error::other)? })
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
}

/// One keep-alive connection of the load generator.
struct Conn {
    s: TcpStream,
    /// What has arrived of the response in flight.
    buf: Vec<u8>,
}

impl Conn {
    /// Reads what is there; for each complete response, counts it and sends the next request.
    fn pump(&mut self, rbuf: &mut [u8], done: &mut u64) -> io::Result<()> {
        loop {
            match self.s.read(rbuf) {
                Ok(0) => return Err(io::Error::other("server closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&rbuf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // One request is in flight, so at most one response is complete.
        if let Some(len) = response_len(&self.buf)? {
            self.buf.drain(..len);
            *done += 1;
            self.s.write_all(REQUEST)?;
        }
        Ok(())
    }
}

/// The length of the complete response at the start of `buf`, if it has all arrived.
fn response_len(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(io::Error::other)?;
    let body = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or_else(|| io::Error::other("a response without content-length"))?;
    let total = end + 4 + body;
    Ok((buf.len() >= total).then_some(total))
}

/// What one load run measured.
struct Measured {
    /// Requests answered per second.
    rps: f64,
    /// Server CPU per request, µs.
    cpu_us: f64,
}

/// Drives `addr` with [`CONNS`] keep-alive connections, one request in flight on each.
fn load(addr: SocketAddr, warmup: Duration, window: Duration, pid: u32) -> io::Result<Measured> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        // The request is small: it always fits the socket buffer, so a blocking write is fine
        // and the socket is non-blocking only for reads.
        (&s).write_all(REQUEST)?;
        s.set_nonblocking(true)?;
        epoll::add(
            &ep,
            &s,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        conns.push(Conn {
            s,
            buf: Vec::with_capacity(4096),
        });
    }
    let mut rbuf = vec![0u8; 65536];
    let mut events = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut measuring = false;
    let mut done = 0u64;
    let (mut t0, mut c0) = (start, 0u64);
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
            let reqs = done as f64;
            return Ok(Measured {
                rps: reqs / secs,
                cpu_us: cpu * 1e6 / reqs.max(1.0),
            });
        }
        events.clear();
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&ts))?;
        for ev in &events {
            conns[ev.data.u64() as usize].pump(&mut rbuf, &mut done)?;
        }
    }
}

/// Runs `http_hello` on every server, alternating them within each round.
pub(crate) fn run_all(rounds: usize, quick: bool) -> Vec<Result> {
    pin(1);
    let (warmup, window) = if quick {
        (Duration::from_millis(300), Duration::from_millis(1000))
    } else {
        (Duration::from_millis(500), Duration::from_secs(2))
    };
    let empty: Vec<Series> = SERVERS
        .iter()
        .map(|(_, runtime)| Series {
            runtime,
            values: Vec::new(),
        })
        .collect();
    let (mut rps, mut cpu) = (empty.clone(), empty);
    for _ in 0..rounds {
        for (i, (kind, _)) in SERVERS.iter().enumerate() {
            match start_server(kind).and_then(|srv| {
                let pid = srv.child.id();
                load(srv.addr, warmup, window, pid)
            }) {
                Ok(m) => {
                    rps[i].values.push(m.rps);
                    cpu[i].values.push(m.cpu_us);
                }
                Err(e) => eprintln!("http_hello on {kind}: {e}"),
            }
        }
    }
    eprintln!("http_hello: done");
    vec![
        Result {
            name: format!("http_hello {CONNS} conns requests"),
            unit: "req/s",
            lower_is_better: false,
            series: rps,
            target: Some(Target::of("tokio-ct", 1.0)),
        },
        Result {
            name: format!("http_hello {CONNS} conns server CPU"),
            unit: "µs/req",
            lower_is_better: true,
            series: cpu,
            target: Some(Target::of("tokio-ct", 1.0)),
        },
    ]
}
