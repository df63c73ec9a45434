//! The load generator, `curio-soak load ...`: the soak starts it in a process of its own, so its
//! descriptors count against its own limit and its CPU shows apart from the server's.
//!
//! One kernel runs one task per connection slot. A slot connects (from one of several
//! `127.0.0.x` source addresses, so churn does not run out of ephemeral ports), exchanges a few
//! messages of random size with pauses between them (which keeps the connection open, so most
//! slots hold one at any time), checks every echo byte for byte, and ends the connection one of
//! four ways: a reset (`SO_LINGER` 0, the common case: it leaves no `TIME_WAIT`), a half-close
//! (shut the write side, read the server's end-of-file, then reset), a reset in the middle of an
//! exchange (the server sees `ECONNRESET` with an echo in flight), or a clean close (a few, to
//! keep the ordinary path in the mix). Then it connects again, until the run's end.
//!
//! A slot that gets a wrong byte, an unexpected error on an established connection, or no echo
//! within [`STALL`] counts a violation; the generator prints one `loadgen key=value ...` line at
//! the end and exits non-zero on any violation.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use curio::net::TcpStream;
use curio::net::tls::{TlsConnector, TlsStream};
use curio::{sleep, spawn, timeout_after, timeout_at};

use crate::{Rng, parse_flag};

/// The longest a connect or one echo may take before the slot counts it as stalled.
const STALL: Duration = Duration::from_secs(30);

/// The most bytes in one message.
const MAX_MESSAGE: usize = 2048;

/// What the generator was asked to do.
struct Plan {
    plain: SocketAddr,
    tls: SocketAddr,
    conns: usize,
    secs: u64,
    sources: u8,
    /// Every `tls_every`-th slot speaks TLS (0: none).
    tls_every: usize,
    /// Pauses between exchanges are drawn from `0..hold_ms`.
    hold_ms: u64,
}

/// What the slots did, counted as they go.
#[derive(Default)]
struct Counts {
    attempts: Cell<u64>,
    connects: Cell<u64>,
    connect_errors: Cell<u64>,
    tls_connects: Cell<u64>,
    round_trips: Cell<u64>,
    bytes: Cell<u64>,
    resets: Cell<u64>,
    half_closes: Cell<u64>,
    mid_resets: Cell<u64>,
    clean_closes: Cell<u64>,
    live: Cell<u64>,
    peak: Cell<u64>,
    /// Violations: a wrong echo, an error on an established connection, a stall.
    mismatches: Cell<u64>,
    errors: Cell<u64>,
    stalls: Cell<u64>,
    first_error: RefCell<Option<String>>,
    last_connect_error: RefCell<Option<String>>,
}

impl Counts {
    fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }

    fn violation(&self, what: &Cell<u64>, message: String) {
        Counts::add(what, 1);
        self.first_error.borrow_mut().get_or_insert(message);
    }
}

/// Counts a connection as live while it exists.
struct Live<'a>(&'a Counts);

impl<'a> Live<'a> {
    fn new(c: &'a Counts) -> Live<'a> {
        Counts::add(&c.live, 1);
        c.peak.set(c.peak.get().max(c.live.get()));
        Live(c)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

/// How a connection ends.
#[derive(Clone, Copy)]
enum End {
    Reset,
    HalfClose,
    MidReset,
    Clean,
}

impl End {
    fn pick(rng: &mut Rng) -> End {
        match rng.below(100) {
            0..15 => End::MidReset,
            15..35 => End::HalfClose,
            35..40 => End::Clean,
            _ => End::Reset,
        }
    }
}

/// A connection the generator drives: plain TCP or TLS over TCP.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }

    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.sendall(data).await,
            Conn::Tls(s) => s.sendall(data).await,
        }
    }

    async fn recv_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.recv_into(buf).await,
            Conn::Tls(s) => s.recv_into(buf).await,
        }
    }

    /// Sends `msg` and reads its echo into `buf`; `Ok(false)` if the echo differs.
    async fn exchange(&mut self, msg: &[u8], buf: &mut [u8]) -> io::Result<bool> {
        self.send(msg).await?;
        let mut got = 0;
        while got < msg.len() {
            let n = self.recv_into(&mut buf[got..msg.len()]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got += n;
        }
        Ok(buf[..msg.len()] == *msg)
    }

    /// Ends the write side: `shutdown(Write)` for TCP, `close_notify` then the same for TLS.
    async fn close_write(&mut self) -> io::Result<()> {
        if let Conn::Tls(s) = self {
            s.close().await?;
        }
        match self.tcp().shutdown(Shutdown::Write) {
            // TLS's close may have shut the write side already.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }

    /// Makes the coming close send a reset instead of a FIN.
    fn arm_reset(&self) -> io::Result<()> {
        Ok(rustix::net::sockopt::set_socket_linger(
            self.tcp(),
            Some(Duration::ZERO),
        )?)
    }
}

/// Connects slot `i` to the plain or the TLS server, from its source address.
async fn connect(plan: &Plan, i: usize, tls: Option<&TlsConnector>) -> io::Result<Conn> {
    let source = SocketAddr::from(([127, 0, 0, 1 + (i % usize::from(plan.sources)) as u8], 0));
    let target = if tls.is_some() { plan.tls } else { plan.plain };
    let tcp = TcpStream::connect_from(target, Some(source)).await?;
    tcp.set_nodelay(true)?;
    Ok(match tls {
        None => Conn::Plain(tcp),
        Some(connector) => Conn::Tls(Box::new(connector.connect("localhost", tcp).await?)),
    })
}

/// One connection's life: connect, exchange, end. Violations are counted in `counts`.
async fn one_connection(
    plan: &Plan,
    counts: &Counts,
    i: usize,
    tls: Option<&TlsConnector>,
    rng: &mut Rng,
    buf: &mut [u8],
) {
    Counts::add(&counts.attempts, 1);
    let mut conn = match timeout_after(STALL, connect(plan, i, tls)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            Counts::add(&counts.connect_errors, 1);
            *counts.last_connect_error.borrow_mut() = Some(e.to_string());
            // Back off a little, as a real client would.
            sleep(Duration::from_millis(rng.below(100))).await;
            return;
        }
        Err(_) => {
            counts.violation(&counts.stalls, format!("slot {i}: connect stalled"));
            return;
        }
    };
    Counts::add(&counts.connects, 1);
    Counts::add(&counts.tls_connects, u64::from(tls.is_some()));
    let _live = Live::new(counts);
    let exchanges = 1 + rng.below(8);
    let end = End::pick(rng);
    let mut msg = Vec::with_capacity(MAX_MESSAGE);
    for k in 0..exchanges {
        if k > 0 {
            sleep(Duration::from_millis(rng.below(plan.hold_ms.max(1)))).await;
        }
        msg.clear();
        let len = 1 + rng.below(MAX_MESSAGE as u64) as usize;
        msg.extend((0..len).map(|_| rng.next() as u8));
        if matches!(end, End::MidReset) && k + 1 == exchanges && k > 0 {
            // Send, then reset with the echo in flight: the server must take it in stride.
            let _ = conn.send(&msg).await;
            let _ = conn.arm_reset();
            Counts::add(&counts.mid_resets, 1);
            return;
        }
        match timeout_after(STALL, conn.exchange(&msg, buf)).await {
            Ok(Ok(true)) => {
                Counts::add(&counts.round_trips, 1);
                Counts::add(&counts.bytes, len as u64);
            }
            Ok(Ok(false)) => {
                counts.violation(&counts.mismatches, format!("slot {i}: wrong echo"));
                return;
            }
            Ok(Err(e)) => {
                counts.violation(&counts.errors, format!("slot {i}: exchange: {e}"));
                return;
            }
            Err(_) => {
                counts.violation(&counts.stalls, format!("slot {i}: no echo in {STALL:?}"));
                return;
            }
        }
    }
    let result = match end {
        End::Reset | End::MidReset => {
            Counts::add(&counts.resets, 1);
            conn.arm_reset()
        }
        End::HalfClose | End::Clean => {
            let half = matches!(end, End::HalfClose);
            Counts::add(
                if half {
                    &counts.half_closes
                } else {
                    &counts.clean_closes
                },
                1,
            );
            let closed = async {
                conn.close_write().await?;
                // The server answers our end-of-file with its own.
                match conn.recv_into(buf).await? {
                    0 => Ok(()),
                    n => Err(io::Error::other(format!("{n} bytes after end-of-file"))),
                }
            };
            match timeout_after(STALL, closed).await {
                Ok(Ok(())) if half => conn.arm_reset(),
                Ok(r) => r,
                Err(_) => Err(io::Error::other("no end-of-file from the server")),
            }
        }
    };
    if let Err(e) = result {
        counts.violation(&counts.errors, format!("slot {i}: close: {e}"));
    }
}

/// Runs slot `i` until `deadline`.
async fn slot(plan: Rc<Plan>, counts: Rc<Counts>, i: usize, connector: Option<TlsConnector>) {
    let mut rng = Rng::new(i as u64 + 1);
    let mut buf = vec![0; MAX_MESSAGE];
    // Spread the first connects over the ramp, so the listen backlog is not flooded at once.
    let ramp = Duration::from_secs(crate::ramp_secs(plan.secs));
    sleep(ramp.mul_f64(i as f64 / plan.conns as f64)).await;
    let deadline = Instant::now() + Duration::from_secs(plan.secs).saturating_sub(ramp);
    let tls = plan.tls_every > 0 && i.is_multiple_of(plan.tls_every);
    while Instant::now() < deadline {
        let c = if tls { connector.as_ref() } else { None };
        one_connection(&plan, &counts, i, c, &mut rng, &mut buf).await;
    }
}

/// `curio-soak load --plain ADDR --tls ADDR --conns N --secs N --sources N --tls-every N
/// --hold-ms N`: runs the load and prints its counts; non-zero exit on a violation.
pub(crate) fn main(args: &[String]) -> Result<bool, String> {
    let plan = Rc::new(Plan {
        plain: parse_flag(args, "--plain")?,
        tls: parse_flag(args, "--tls")?,
        conns: parse_flag(args, "--conns")?,
        secs: parse_flag(args, "--secs")?,
        sources: parse_flag(args, "--sources")?,
        tls_every: parse_flag(args, "--tls-every")?,
        hold_ms: parse_flag(args, "--hold-ms")?,
    });
    if plan.sources == 0 || plan.conns == 0 {
        return Err("--sources and --conns must be at least 1".into());
    }
    crate::raise_descriptor_limit();
    let connector = TlsConnector::from_pem(crate::CA_PEM, &[]).map_err(|e| e.to_string())?;
    let counts = Rc::new(Counts::default());
    let c = counts.clone();
    curio::run(async move {
        // A slot ends within one connection's life after the run, or it stalled: a connection
        // lives at most 8 pauses plus the waits for its connect, echoes and close.
        let end = Instant::now()
            + Duration::from_secs(plan.secs)
            + Duration::from_millis(8 * plan.hold_ms)
            + STALL * 2;
        let slots: Vec<_> = (0..plan.conns)
            .map(|i| spawn(slot(plan.clone(), c.clone(), i, Some(connector.clone()))))
            .collect();
        for s in slots {
            match timeout_at(end, s.join()).await {
                Ok(r) => r.map_err(|e| e.to_string())?,
                Err(_) => c.violation(&c.stalls, "a slot did not finish".into()),
            }
        }
        Ok::<(), String>(())
    })?;
    let v = |c: &Cell<u64>| c.get();
    println!(
        "loadgen attempts={} connects={} connect_errors={} tls_connects={} round_trips={} \
         bytes={} resets={} half_closes={} mid_resets={} clean_closes={} peak={} \
         mismatches={} errors={} stalls={}",
        v(&counts.attempts),
        v(&counts.connects),
        v(&counts.connect_errors),
        v(&counts.tls_connects),
        v(&counts.round_trips),
        v(&counts.bytes),
        v(&counts.resets),
        v(&counts.half_closes),
        v(&counts.mid_resets),
        v(&counts.clean_closes),
        v(&counts.peak),
        v(&counts.mismatches),
        v(&counts.errors),
        v(&counts.stalls),
    );
    if let Some(e) = counts.last_connect_error.borrow().as_ref() {
        eprintln!("loadgen: last connect error: {e}");
    }
    if let Some(e) = counts.first_error.borrow().as_ref() {
        eprintln!("loadgen: first violation: {e}");
        return Ok(false);
    }
    Ok(true)
}
