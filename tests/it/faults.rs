//! Fault injection (issue 18, item 4 of the reliability suite): faults a test can cause on
//! purpose, and what curio must do about them.
//!
//! - A peer that resets its connection (`SO_LINGER` 0, then close) while curio is blocked writing
//!   or reading: a typed `io::Error`, the descriptor released, the other tasks running, a server
//!   that goes on serving.
//! - `EMFILE` in `accept`, `connect`, `open_connection` and `tcp_server`'s bind: an error, never a
//!   panic, and the same calls work again once descriptors are free.
//! - A virtual clock that jumps decades, millennia and the range of `Instant` ahead: no overflow,
//!   expiries in deadline order, no timer left behind.
//! - A `run_in_thread` job that panics, and results or jobs whose `Drop` panics where curio drops
//!   them: contained, and the pool keeps working.
//! - Panicking `Drop`s in the tasks a kernel shuts down: contained, every other task still dropped,
//!   descriptors released.
//!
//! Faults that other modules already inject are not repeated here: see the reliability doc.

use std::cell::Cell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use curio::net::{ConnectErrors, TcpListener, TcpStream, open_connection, run_server, tcp_server};
use curio::prelude::*;
use curio::rt::WaitKind;
use curio::{Kernel, TaskRef, clock, sleep, spawn, spawn_daemon, timeout_after, yield_now};

use crate::child::{fd_count, in_child};
use crate::net::tcp_pair;
use crate::{LIMIT, Log, bounded, ms};

/// Runs `f` on its own thread and fails the test if it has not finished within [`LIMIT`]: a hang
/// shows as a failure (in a child process too), and a panic in `f` is the test's.
fn within_limit<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("no result in {LIMIT:?}: hung"),
    }
}

/// Waits until `cond` holds, looking every millisecond, for at most [`LIMIT`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            sleep(ms(1)).await;
        }
    })
    .await;
}

/// Whether `task` last suspended waiting for its descriptor to become `kind` (readable or
/// writable): it is blocked in that operation.
fn blocked_in(task: &TaskRef, kind: WaitKind) -> bool {
    task.wait_site().is_some_and(|s| s.kind == kind)
}

/// Closes `s` with `SO_LINGER` 0: the kernel discards what is queued and sends a reset.
fn reset(s: impl AsFd) {
    rustix::net::sockopt::set_socket_linger(s.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(s);
}

/// Whether `e` is what a write or read on a reset connection reports.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Whether `e` is "too many open files".
fn is_emfile(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error())
}

/// A task that counts its turns, to show the kernel keeps running other tasks.
fn ticker() -> (Rc<Cell<u32>>, curio::Task<()>) {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let task = spawn(async move {
        loop {
            sleep(ms(1)).await;
            t.set(t.get() + 1);
        }
    });
    (ticks, task)
}

/// A large write (much more than both socket buffers hold) blocked on a peer that reads nothing,
/// then the peer resets: the write fails with a typed error, the writer's descriptor goes with it,
/// and a ticker task keeps running throughout. With `buffered`, the write goes through a
/// `SocketStream`.
async fn reset_during_write(buffered: bool) {
    let base = fd_count();
    let (ticks, tick_task) = ticker();
    let (writer_sock, peer) = tcp_pair().await;
    writer_sock.set_send_buffer_size(4096).unwrap();
    peer.set_recv_buffer_size(4096).unwrap();
    let writer = spawn(async move {
        let big = vec![7u8; 8 << 20];
        if buffered {
            let mut s = writer_sock.as_stream();
            let r = s.write(&big).await.map(drop);
            assert!(s.bytes_written() < big.len(), "everything was written");
            r
        } else {
            writer_sock.sendall(&big).await
        }
    });
    let w = writer.task_ref();
    until("the writer blocks", || blocked_in(&w, WaitKind::Write)).await;
    let before = ticks.get();
    reset(peer);
    let e = bounded("the failed write", writer.join())
        .await
        .expect("the writer did not panic")
        .expect_err("a write to a reset peer succeeded");
    assert!(is_reset(&e), "{e:?}");
    until("the ticker ticks", || ticks.get() > before).await;
    tick_task.cancel().await;
    assert_eq!(fd_count(), base, "a descriptor outlived its stream");
}

/// A read blocked on a peer that sent a line and half of the next (or, unbuffered, nothing),
/// then the peer resets: the read fails with a typed error; the rest as [`reset_during_write`].
async fn reset_during_read(buffered: bool) {
    let base = fd_count();
    let (ticks, tick_task) = ticker();
    let (reader_sock, peer) = tcp_pair().await;
    let first_line = Rc::new(Cell::new(false));
    let fl = first_line.clone();
    let reader = spawn(async move {
        if buffered {
            let mut s = reader_sock.as_stream();
            // One segment brings the line and the half line: after the first `read_line`, the
            // second one waits for the rest of a line it has begun.
            assert_eq!(s.read_line(1024).await.unwrap(), b"a line\n");
            fl.set(true);
            let r = s.read_line(1024).await;
            assert_eq!(s.buffered(), b"half a li", "the half line was lost");
            r
        } else {
            fl.set(true);
            reader_sock.recv(1024).await
        }
    });
    if buffered {
        peer.sendall(b"a line\nhalf a li").await.unwrap();
    }
    let r = reader.task_ref();
    until("the reader blocks", || {
        first_line.get() && blocked_in(&r, WaitKind::Read)
    })
    .await;
    let before = ticks.get();
    reset(peer);
    let e = bounded("the failed read", reader.join())
        .await
        .expect("the reader did not panic")
        .expect_err("a read from a reset peer succeeded");
    assert!(is_reset(&e), "{e:?}");
    until("the ticker ticks", || ticks.get() > before).await;
    tick_task.cancel().await;
    assert_eq!(fd_count(), base, "a descriptor outlived its stream");
}

/// A peer reset while curio is blocked in `sendall`, `SocketStream::write`, `recv` and
/// `SocketStream::read_line` (mid-line): a typed error, the descriptor released, other tasks running.
#[test]
fn peer_reset_during_blocked_write_and_read_is_an_error() {
    // A child process: it counts descriptors.
    if !in_child(
        "faults::peer_reset_during_blocked_write_and_read_is_an_error",
        &[],
    ) {
        return;
    }
    within_limit(|| {
        curio::run(async {
            reset_during_write(false).await;
            reset_during_write(true).await;
            reset_during_read(false).await;
            reset_during_read(true).await;
        })
    });
}

/// A port that was free a moment ago, for `tcp_server`, which binds by address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server whose handler reads a line, then answers `big\n` with 4 MiB and any other line with
/// itself; clients reset while the handler is blocked reading half a line, and while it is
/// blocked writing the large answer; then a client is served as usual.
fn server_survives_resets(use_tcp_server: bool) {
    let outcomes = within_limit(move || {
        curio::run(async move {
            let log = Log::default();
            let l = log.clone();
            let handler_task: Rc<Cell<Option<TaskRef>>> = Rc::default();
            let (hl, ht) = (l.clone(), handler_task.clone());
            let handler = move |client: TcpStream, _: SocketAddr| {
                let (l, ht) = (hl.clone(), ht.clone());
                async move {
                    ht.set(Some(curio::current_task()));
                    client.set_send_buffer_size(4096)?;
                    let mut s = client.as_stream();
                    let r = async {
                        let line = s.read_line(100).await?;
                        if line == b"big\n" {
                            s.write(&vec![b'x'; 4 << 20]).await?;
                        } else {
                            s.write(&line).await?;
                        }
                        io::Result::Ok(())
                    }
                    .await;
                    l.push(match &r {
                        Ok(()) => "served".to_string(),
                        Err(e) if is_reset(e) => "reset".to_string(),
                        Err(e) => format!("unexpected {e:?}"),
                    });
                    r
                }
            };
            let (server, addr) = if use_tcp_server {
                let port = free_port();
                let server = spawn(tcp_server(("127.0.0.1", port), handler));
                // The server binds its socket in its first turn.
                yield_now().await;
                (server, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            } else {
                let sock = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = sock.local_addr().unwrap();
                (spawn(run_server(sock, handler)), addr)
            };
            let handler_blocked_in = |kind| {
                let ht = handler_task.clone();
                move || {
                    let t = ht.take();
                    let blocked = t.as_ref().is_some_and(|t| blocked_in(t, kind));
                    ht.set(t);
                    blocked
                }
            };

            // Reset while the handler waits for the rest of a line.
            let c = TcpStream::connect(addr).await.unwrap();
            c.sendall(b"half a li").await.unwrap();
            until(
                "the handler blocks reading",
                handler_blocked_in(WaitKind::Read),
            )
            .await;
            handler_task.set(None);
            reset(c);
            until("the handler ends", || log.0.borrow().len() == 1).await;

            // Reset while the handler is blocked writing an answer the client never reads.
            let c = TcpStream::connect(addr).await.unwrap();
            c.set_recv_buffer_size(4096).unwrap();
            c.sendall(b"big\n").await.unwrap();
            until(
                "the handler blocks writing",
                handler_blocked_in(WaitKind::Write),
            )
            .await;
            reset(c);
            until("the handler ends", || log.0.borrow().len() == 2).await;

            // The next client is served.
            let c = TcpStream::connect(addr).await.unwrap();
            c.sendall(b"ping\n").await.unwrap();
            assert_eq!(bounded("the answer", c.recv(100)).await.unwrap(), b"ping\n");
            until("the handler ends", || log.0.borrow().len() == 3).await;
            assert!(!server.is_terminated(), "a reset client stopped the server");
            server.cancel().await;
            log.take()
        })
    });
    assert_eq!(outcomes, ["reset", "reset", "served"]);
}

/// `tcp_server`: clients that reset mid-read and mid-write do not stop it; the next is served.
#[test]
fn tcp_server_survives_clients_reset_mid_exchange() {
    server_survives_resets(true);
}

/// `run_server`: as [`tcp_server_survives_clients_reset_mid_exchange`].
#[test]
fn run_server_survives_clients_reset_mid_exchange() {
    server_survives_resets(false);
}

/// Opens `/dev/null` until the descriptor table is full.
fn fill_descriptor_table() -> Vec<std::fs::File> {
    let mut filler = Vec::new();
    for _ in 0..1024 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => filler.push(f),
            Err(e) => {
                assert!(is_emfile(&e), "{e}");
                return filler;
            }
        }
    }
    panic!("the descriptor limit did not hold");
}

/// The `EMFILE` behind an `open_connection` error.
fn connect_errors_emfile(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ConnectErrors>())
        .is_some_and(|all| all.0.len() == 1 && is_emfile(&all.0[0]))
}

/// A full descriptor table: `connect`, `open_connection`, `tcp_server`'s bind and `accept` fail
/// with `EMFILE`; the listener keeps its waiting connection, and everything works once
/// descriptors are free.
#[test]
fn emfile_in_accept_and_connect_is_an_error_then_recovers() {
    // A child process: the descriptor limit is process-wide.
    if !in_child(
        "faults::emfile_in_accept_and_connect_is_an_error_then_recovers",
        &[],
    ) {
        return;
    }
    crate::child::limit_descriptors(64);
    within_limit(|| {
        curio::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Start the worker thread that `open_connection` resolves names on while
            // descriptors are free (starting a thread takes none, but the test should not
            // depend on it).
            curio::run_in_thread(|| ()).await;

            let mut filler = fill_descriptor_table();
            // Connecting needs a socket: EMFILE, as an error.
            let e = TcpStream::connect(addr).await.unwrap_err();
            assert!(is_emfile(&e), "{e:?}");
            let e = open_connection("127.0.0.1", addr.port()).await.unwrap_err();
            assert!(connect_errors_emfile(&e), "{e:?}");
            // A server that cannot make its listening socket returns the error.
            let e = bounded("tcp_server", tcp_server(("127.0.0.1", 0), |_, _| async {}))
                .await
                .unwrap_err();
            assert!(is_emfile(&e), "{e:?}");

            // One descriptor free: a client takes it, and accepting its connection fails, twice,
            // without losing it.
            drop(filler.pop());
            let client = TcpStream::connect(addr).await.unwrap();
            for _ in 0..2 {
                let e = bounded("accept", listener.accept()).await.unwrap_err();
                assert!(is_emfile(&e), "{e:?}");
            }
            // Once a descriptor is free, the same listener accepts the waiting connection.
            drop(filler.pop());
            let (server_side, peer) = bounded("accept", listener.accept()).await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            client.sendall(b"after EMFILE").await.unwrap();
            assert_eq!(
                bounded("recv", server_side.recv(100)).await.unwrap(),
                b"after EMFILE"
            );

            // With descriptors free again, connecting works again, both ways.
            drop(filler);
            let c = TcpStream::connect(addr).await.unwrap();
            let (_s, peer) = bounded("accept", listener.accept()).await.unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            let c = bounded("open_connection", open_connection("127.0.0.1", addr.port()))
                .await
                .unwrap();
            let (_s, peer) = bounded("accept", listener.accept()).await.unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
        })
    });
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// About 146 billion years: past any real deadline, but still inside `Instant`'s range on Linux
/// (a signed 64-bit count of seconds) when added to the clock once, and past it when added twice.
const EON: Duration = Duration::from_secs(1 << 62);

/// A virtual clock that jumps decades, millennia and an eon ahead: sleeps and nested scopes expire
/// in deadline order, `Duration::MAX` is no deadline, nothing overflows, no timer is left.
#[test]
fn virtual_clock_jumps_far_ahead_in_deadline_order() {
    let mut kernel = Kernel::builder().virtual_clock(true).build();
    let log = Log::default();
    let l = log.clone();
    kernel.run(async move {
        let start = clock();
        let at = move || {
            let d = clock() - start;
            if d >= YEAR {
                format!("{}y", d.as_secs() / YEAR.as_secs())
            } else {
                format!("{d:?}")
            }
        };
        // Spawned latest deadline first, so the order of expiry is not the order of creation.
        let mut tasks = Vec::new();
        for (name, d) in [
            ("eon", EON),
            ("millennium", 1000 * YEAR),
            ("decade", 10 * YEAR),
        ] {
            let l = l.clone();
            tasks.push(spawn(async move {
                sleep(d).await;
                l.push(format!("{name} {}", at()));
            }));
        }
        // Nested timeouts with huge deadlines: the nearer one expires, whichever is inner.
        let l2 = l.clone();
        tasks.push(spawn(async move {
            let r = timeout_after(100 * YEAR, timeout_after(20 * YEAR, sleep(1000 * YEAR))).await;
            let inner = r.expect("the outer scope expired").unwrap_err();
            assert_eq!(inner.deadline() - start, 20 * YEAR);
            l2.push(format!("inner 20y scope {}", at()));
        }));
        let l2 = l.clone();
        tasks.push(spawn(async move {
            let r = timeout_after(30 * YEAR, timeout_after(EON, sleep(Duration::MAX))).await;
            assert_eq!(r.unwrap_err().deadline() - start, 30 * YEAR);
            l2.push(format!("outer 30y scope {}", at()));
        }));
        let l2 = l.clone();
        tasks.push(spawn(async move {
            let r = timeout_after(Duration::MAX, timeout_after(40 * YEAR, sleep(EON))).await;
            assert_eq!(r.unwrap().unwrap_err().deadline() - start, 40 * YEAR);
            l2.push(format!("inner 40y scope {}", at()));
        }));
        // Sleeps and scopes that can never end, cancelled.
        let forever = [
            spawn(sleep(Duration::MAX)),
            spawn(async {
                let _ = timeout_after(Duration::MAX, sleep(Duration::MAX)).await;
            }),
            spawn(async {
                let _ =
                    timeout_after(Duration::MAX, timeout_after(EON, sleep(Duration::MAX))).await;
            }),
        ];
        yield_now().await;
        for t in &forever {
            t.cancel().await;
        }
        for t in forever {
            assert!(t.join().await.unwrap_err().is_cancelled());
        }
        for t in tasks {
            t.join().await.unwrap();
        }
        assert_eq!(clock() - start, EON);
        // At the far end of time a further eon is past `Instant`'s range: no deadline, no
        // overflow; a scope around it still expires.
        let r = timeout_after(YEAR, sleep(EON)).await;
        assert_eq!(r.unwrap_err().deadline() - start, EON + YEAR);
        assert_eq!(
            timeout_after(EON, async { 5 }).await,
            Ok(5),
            "a scope past the range is no deadline"
        );
        l.push(format!("end {}", at()));
    });
    assert_eq!(
        log.take(),
        [
            "decade 10y",
            "inner 20y scope 20y",
            "outer 30y scope 30y",
            "inner 40y scope 40y",
            "millennium 1000y",
            format!("eon {}y", EON.as_secs() / YEAR.as_secs()).as_str(),
            format!("end {}y", (EON + YEAR).as_secs() / YEAR.as_secs()).as_str(),
        ]
    );
    assert_eq!(kernel.timer_count(), 0);
    // Moving the clock by hand past the range leaves it where it is.
    let before = kernel.clock();
    kernel.advance(Duration::MAX);
    assert_eq!(kernel.clock(), before);
    assert_eq!(kernel.timer_count(), 0);
}

/// Drops count themselves and then panic.
struct Bomb(Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a Drop that panics");
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A panicking `run_in_thread` job: the caller gets the panic (its payload intact), and the only
/// worker thread serves on.
#[test]
fn run_in_thread_panic_reaches_the_caller_and_the_pool_survives() {
    // `run_in_thread`'s `# Panics`: a panic in the closure is resumed in the calling task; the
    // kernel contains it like any task panic. One worker thread: it must survive to serve on.
    within_limit(|| {
        let mut kernel = Kernel::builder().max_worker_threads(1).build();
        kernel.run(async {
            let worker = curio::run_in_thread(|| std::thread::current().id()).await;
            let dropped = Arc::new(AtomicUsize::new(0));
            let d = dropped.clone();
            let caller = spawn(async move {
                // The caller's own state is dropped as the panic unwinds through it.
                let _guard = Counted(d);
                curio::run_in_thread(|| -> u32 { panic!("worker boom") }).await
            });
            let err = bounded("the caller", caller.join()).await.unwrap_err();
            assert!(err.is_panic(), "{err}");
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"worker boom"));
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            // The same thread serves the next calls.
            for _ in 0..3 {
                let again = curio::run_in_thread(|| std::thread::current().id()).await;
                assert_eq!(again, worker);
            }
            assert_eq!(curio::workers::ThreadPool::current().thread_count(), 1);
        });
    });
}

/// Polls `fut` once, then never again: a task that owns a call whose result arrives but is never
/// taken.
async fn poll_once_then_park<F: std::future::Future>(fut: F) {
    let mut fut = std::pin::pin!(fut);
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if !polled {
            polled = true;
            assert!(fut.as_mut().poll(cx).is_pending());
        }
        std::task::Poll::<()>::Pending
    })
    .await;
}

/// A delivered but untaken `run_in_thread` result whose `Drop` panics, dropped by a cancel and by
/// a kernel drop: contained, dropped once.
#[test]
fn panicking_drop_of_a_delivered_result_in_a_cancelled_task_is_contained() {
    // The call's result has arrived, but the task is cancelled before it takes it: the result is
    // dropped with the task's future, on the kernel's thread, and its `Drop` panics. The panic is
    // contained, the value is dropped once, and the pool serves the next call. (A result dropped
    // on the worker, the call cancelled while it ran: `defects.rs`.)
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let out = within_limit(move || {
        let mut kernel = Kernel::builder().max_worker_threads(1).build();
        kernel.run(async move {
            let d2 = d.clone();
            let owner = spawn(poll_once_then_park(curio::run_in_thread(move || Bomb(d2))));
            yield_now().await;
            // One thread, jobs in order: when this call returns, the first result is stored.
            curio::run_in_thread(|| ()).await;
            assert_eq!(d.load(Ordering::SeqCst), 0);
            owner.cancel().await;
            assert!(owner.join().await.unwrap_err().is_cancelled());
            assert_eq!(d.load(Ordering::SeqCst), 1);

            // The same with the kernel shutting down instead of a cancel: see below.
            let d3 = d.clone();
            drop(spawn(poll_once_then_park(curio::run_in_thread(
                move || Bomb(d3),
            ))));
            yield_now().await;
            curio::run_in_thread(|| 6).await
        })
    });
    assert_eq!(out, 6);
    // The kernel's drop (in `within_limit`) dropped the second delivered result.
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// A queued job whose capture's `Drop` panics, dropped unrun by the pool at kernel drop:
/// contained.
#[test]
fn panicking_drop_of_an_unrun_job_at_shutdown_is_contained() {
    // A job still queued when the kernel is dropped is dropped unrun by the pool, with its
    // captures; a capture whose `Drop` panics is contained there.
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let (release, gate) = mpsc::channel::<()>();
    within_limit(move || {
        let mut kernel = Kernel::builder().max_worker_threads(1).build();
        kernel.run(async move {
            let started = curio::sync::UniversalEvent::new();
            let s2 = started.clone();
            // The only thread is busy until the test releases it, after the kernel is gone.
            drop(spawn(curio::run_in_thread(move || {
                s2.set();
                let _ = gate.recv();
            })));
            bounded("the blocker starts", started.wait()).await;
            let bomb = Bomb(d.clone());
            drop(spawn(curio::run_in_thread(move || drop(bomb))));
            yield_now().await;
            assert_eq!(d.load(Ordering::SeqCst), 0, "the job ran");
        });
        drop(kernel);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    release.send(()).unwrap();
}

/// Spawns, as daemons or not, tasks that own a [`Counted`] and a socket and are parked (on a
/// read, a sleep, an event that is never set); every other one also owns a [`Bomb`]. Returns the
/// number of tasks.
async fn spawn_doomed(counted: &Arc<AtomicUsize>, bombs: &Arc<AtomicUsize>) -> usize {
    let mut n = 0;
    for daemon in [false, true] {
        for i in 0..6 {
            let (a, b) = tcp_pair().await;
            let c = Counted(counted.clone());
            let bomb = (i % 2 == 0).then(|| Bomb(bombs.clone()));
            let fut = async move {
                let _c = c;
                let _b = b;
                let _bomb = bomb;
                match i / 2 {
                    0 => drop(a.recv(1).await),
                    1 => sleep(100 * YEAR).await,
                    _ => curio::sync::Event::new().wait().await,
                }
                unreachable!("a doomed task woke");
            };
            drop(if daemon {
                spawn_daemon(fut)
            } else {
                spawn(fut)
            });
            n += 1;
        }
    }
    yield_now().await;
    n
}

/// Dropping a kernel with parked tasks, daemons among them, half of which panic in `Drop`: every
/// task is dropped, no panic escapes, no descriptor is left.
#[test]
fn kernel_drop_contains_panicking_drops_of_its_tasks() {
    // A child process: it counts descriptors.
    if !in_child(
        "faults::kernel_drop_contains_panicking_drops_of_its_tasks",
        &[],
    ) {
        return;
    }
    let counted = Arc::new(AtomicUsize::new(0));
    let bombs = Arc::new(AtomicUsize::new(0));
    let (c, b) = (counted.clone(), bombs.clone());
    let fds = fd_count();
    let n = within_limit(move || {
        let mut kernel = Kernel::new();
        let n = kernel.run(async move { spawn_doomed(&c, &b).await });
        assert_eq!(kernel.task_count(), n);
        assert!(fd_count() > fds);
        drop(kernel);
        n
    });
    assert_eq!(counted.load(Ordering::SeqCst), n, "a task was not dropped");
    assert_eq!(bombs.load(Ordering::SeqCst), n / 2);
    assert_eq!(fd_count(), fds, "descriptors left behind");
}

/// The same through `curio::run` returning while those tasks remain.
#[test]
fn run_returning_with_live_tasks_contains_their_panicking_drops() {
    // `curio::run` returns while daemons (and tasks nobody waited for) remain: its kernel's
    // shutdown cancels them all, and the panics in their drops do not reach the caller.
    if !in_child(
        "faults::run_returning_with_live_tasks_contains_their_panicking_drops",
        &[],
    ) {
        return;
    }
    let counted = Arc::new(AtomicUsize::new(0));
    let bombs = Arc::new(AtomicUsize::new(0));
    let (c, b) = (counted.clone(), bombs.clone());
    let fds = fd_count();
    let n = within_limit(move || curio::run(async move { spawn_doomed(&c, &b).await }));
    assert_eq!(counted.load(Ordering::SeqCst), n, "a task was not dropped");
    assert_eq!(bombs.load(Ordering::SeqCst), n / 2);
    assert_eq!(fd_count(), fds, "descriptors left behind");
}
