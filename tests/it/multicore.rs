//! A kernel per core: start and stop, servers whose connections reach every kernel, a kernel's
//! panic, exact cross-kernel queue traffic under cancellation, shutdown with live connections.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use curio::MultiKernel;
use curio::net::{
    ServerOptions, ServerShutdown, Spread, TcpStream, reuse_port_listeners, tcp_server_multi,
    tcp_server_multi_on,
};
use curio::queue::UniversalQueue;

use crate::child::{fd_count, in_child, thread_count};

/// The kernel the calling task runs on, from its thread's name (`curio-kernel-<i>`).
fn kernel_index() -> usize {
    std::thread::current()
        .name()
        .and_then(|n| n.strip_prefix("curio-kernel-"))
        .and_then(|i| i.parse().ok())
        .expect("on a kernel thread of a MultiKernel")
}

#[test]
fn kernels_start_and_stop_cleanly() {
    if !in_child("multicore::kernels_start_and_stop_cleanly", &[]) {
        return;
    }
    let (threads, fds) = (thread_count(), fd_count());
    for _ in 0..3 {
        let rt = MultiKernel::builder()
            .kernels(3)
            .pin_cpus(true)
            .build()
            .unwrap();
        assert_eq!(rt.len(), 3);
        let out = rt
            .run(|i| async move {
                curio::sleep(Duration::from_millis(1)).await;
                (i, kernel_index())
            })
            .unwrap();
        assert_eq!(out, [(0, 0), (1, 1), (2, 2)]);
    }
    // A runtime dropped without `run` stops its kernels too.
    drop(MultiKernel::builder().kernels(2).build().unwrap());
    assert_eq!(thread_count(), threads, "a kernel thread was left");
    assert_eq!(fd_count(), fds, "a descriptor was left");
}

#[test]
fn spawn_on_round_robin_and_least_loaded() {
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    assert_eq!(
        rt.spawn_on(1, || async { kernel_index() })
            .join_blocking()
            .unwrap(),
        1
    );
    let a = rt
        .spawn_round_robin(|| async { kernel_index() })
        .join_blocking()
        .unwrap();
    let b = rt
        .spawn_round_robin(|| async { kernel_index() })
        .join_blocking()
        .unwrap();
    assert_ne!(a, b);
    // Load kernel 0 with parked tasks: the least loaded is kernel 1.
    let parked: Vec<_> = (0..5)
        .map(|_| rt.spawn_on(0, std::future::pending::<()>))
        .collect();
    let idle = rt
        .spawn_least_loaded(|| async { kernel_index() })
        .join_blocking()
        .unwrap();
    assert_eq!(idle, 1);
    drop(parked);
    rt.shutdown();
}

#[test]
fn a_kernels_panic_shuts_the_runtime_down_with_an_error() {
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    let err = rt
        .run(|i| async move {
            if i == 1 {
                panic!("kernel one gives up");
            }
            // Kernel 0 would run for ever: the failure cancels it.
            std::future::pending::<()>().await;
        })
        .unwrap_err();
    assert_eq!(err.index, 1);
    assert!(err.to_string().contains("kernel one gives up"), "{err}");
}

/// Kernel 0 puts, kernel 1 gets, both under timeouts that cancel operations at random points;
/// every item put is got once or left in the queue.
#[test]
fn cross_kernel_queue_traffic_loses_nothing() {
    let q: UniversalQueue<u32> = UniversalQueue::new(8);
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    let q2 = q.clone();
    let out = rt
        .run(move |i| {
            let q = q2.clone();
            async move {
                let mut done = Vec::new();
                let mut timeouts = 0;
                let mut n = 0u32;
                while n < 5000 {
                    let limit = Duration::from_micros(u64::from(n % 7) * 5);
                    if i == 0 {
                        match curio::timeout_after(limit, q.put(n)).await {
                            Ok(Ok(())) => done.push(n),
                            // Closed by the getter: this item was not put.
                            Ok(Err(_)) => break,
                            Err(_) => timeouts += 1,
                        }
                        n += 1;
                    } else {
                        match curio::timeout_after(limit, q.get()).await {
                            Ok(Ok(x)) => done.push(x),
                            Ok(Err(_)) => break,
                            Err(_) => timeouts += 1,
                        }
                        n += 1;
                        if n == 5000 {
                            q.close();
                        }
                    }
                }
                (done, timeouts)
            }
        })
        .unwrap();
    let (put, _) = &out[0];
    let mut got: Vec<u32> = out[1].0.clone();
    while let Ok(x) = q.try_get() {
        got.push(x);
    }
    got.sort_unstable();
    let first_difference = got.iter().zip(put).find(|(g, p)| g != p);
    assert!(
        got == *put,
        "{} items put, {} got or left; first difference (got, put): {first_difference:?}",
        put.len(),
        got.len()
    );
}

/// Connects `n` clients, each exchanging one message; returns the kernels that served them.
fn clients(addr: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(crate::LIMIT)).unwrap();
            s.write_all(b"?").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s
        })
        .collect()
}

fn serve_both_ways(spread: Spread) {
    let seen: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let stop = ServerShutdown::new();
    let options = ServerOptions::default()
        .shutdown(&stop)
        .grace_period(Duration::from_millis(100));
    // Bound before the server starts, so the clients never race it.
    let listeners = match spread {
        Spread::ReusePort => reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 2).unwrap(),
        _ => vec![std::net::TcpListener::bind("127.0.0.1:0").unwrap()],
    };
    let addr = listeners[0].local_addr().unwrap();
    let s2 = seen.clone();
    let handler = move |c: TcpStream, _| {
        let seen = s2.clone();
        async move {
            seen.lock().unwrap().insert(kernel_index());
            let b = c.recv(1).await?;
            c.sendall(&b).await?;
            // Stay connected until the shutdown cancels this task.
            c.recv(1).await.map(drop)
        }
    };
    let server = std::thread::spawn(move || {
        let rt = MultiKernel::builder().kernels(2).build().unwrap();
        tcp_server_multi_on(rt, listeners, options, handler)
    });
    // Connections keep arriving until both kernels have served some (bounded).
    let mut live = Vec::new();
    for _ in 0..50 {
        live.extend(clients(addr, 8));
        if seen.lock().unwrap().len() == 2 {
            break;
        }
    }
    assert_eq!(
        *seen.lock().unwrap(),
        BTreeSet::from([0, 1]),
        "every kernel serves"
    );
    // Shutdown with connections open: the server returns, every connection is closed.
    stop.shutdown();
    server.join().unwrap().unwrap();
    for mut s in live {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0, "a connection was left open");
    }
}

#[test]
fn reuse_port_connections_reach_every_kernel() {
    serve_both_ways(Spread::ReusePort);
}

#[test]
fn a_single_acceptor_hands_connections_to_every_kernel() {
    serve_both_ways(Spread::SingleAcceptor);
}

/// A stop gives the clients of every kernel the grace period: requests in flight when it comes
/// are answered, then the server returns. With one acceptor this holds because each kernel's
/// clients belong to its own server (before, kernel 0 spawned them as detached tasks on the
/// other kernels, and the stop cut them off mid-request).
fn stop_lets_clients_finish(spread: Spread) {
    let stop = ServerShutdown::new();
    let options = ServerOptions::default()
        .shutdown(&stop)
        .grace_period(crate::LIMIT);
    let listeners = match spread {
        Spread::ReusePort => reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 2).unwrap(),
        _ => vec![std::net::TcpListener::bind("127.0.0.1:0").unwrap()],
    };
    let addr = listeners[0].local_addr().unwrap();
    let started: Arc<Mutex<Vec<usize>>> = Arc::default();
    let s2 = started.clone();
    // Each client's request takes 200 ms to answer.
    let handler = move |c: TcpStream, _| {
        let started = s2.clone();
        async move {
            let b = c.recv(1).await?;
            started.lock().unwrap().push(kernel_index());
            curio::sleep(Duration::from_millis(200)).await;
            c.sendall(&b).await
        }
    };
    let server = std::thread::spawn(move || {
        let rt = MultiKernel::builder().kernels(2).build().unwrap();
        tcp_server_multi_on(rt, listeners, options, handler)
    });
    let mut live: Vec<std::net::TcpStream> = (0..6)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(crate::LIMIT)).unwrap();
            s.write_all(b"!").unwrap();
            s
        })
        .collect();
    let deadline = std::time::Instant::now() + crate::LIMIT;
    while started.lock().unwrap().len() < live.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "every request started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // The requests are in flight on both kernels (round robin, or the OS spreading 6 clients).
    if spread == Spread::SingleAcceptor {
        assert_eq!(
            started.lock().unwrap().iter().collect::<BTreeSet<_>>(),
            BTreeSet::from([&0, &1])
        );
    }
    stop.shutdown();
    for s in &mut live {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .expect("the answer, within the grace period");
        assert_eq!(&b, b"!");
    }
    server.join().unwrap().unwrap();
}

#[test]
fn reuse_port_stop_lets_clients_finish() {
    stop_lets_clients_finish(Spread::ReusePort);
}

#[test]
fn a_single_acceptors_stop_lets_clients_finish() {
    stop_lets_clients_finish(Spread::SingleAcceptor);
}

#[test]
fn the_wrong_number_of_listeners_is_an_error() {
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    let three = reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 3).unwrap();
    let err = tcp_server_multi_on(
        rt,
        three,
        ServerOptions::default(),
        |_c: TcpStream, _| async {},
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("3 listeners for 2 kernels"),
        "{err}"
    );
}

#[test]
fn a_server_that_cannot_bind_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    let addr = taken.local_addr().unwrap();
    let err = tcp_server_multi(
        rt,
        addr,
        Spread::ReusePort,
        ServerOptions::default(),
        |_c: TcpStream, _| async {},
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

/// One kernel's server failing stops the others' servers too, and the error comes back (before,
/// kernel 0 served on alone and the call never returned).
#[test]
fn a_failing_kernel_server_stops_every_kernel() {
    let listeners = reuse_port_listeners("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    // A listening socket shut down for reading fails `accept` with EINVAL: a fatal accept error.
    rustix::net::shutdown(&listeners[1], rustix::net::Shutdown::Read).unwrap();
    failing_server_returns_its_error(listeners);
}

/// The single acceptor failing stops the kernels serving what it handed them (they waited on
/// their queues for ever before).
#[test]
fn a_failing_single_acceptor_stops_every_kernel() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    rustix::net::shutdown(&listener, rustix::net::Shutdown::Read).unwrap();
    failing_server_returns_its_error(vec![listener]);
}

/// Serves `listeners` on two kernels and checks that the server returns accept's EINVAL.
fn failing_server_returns_its_error(listeners: Vec<std::net::TcpListener>) {
    let rt = MultiKernel::builder().kernels(2).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let handler = |_c: TcpStream, _| async {};
        let _ = tx.send(tcp_server_multi_on(
            rt,
            listeners,
            ServerOptions::default(),
            handler,
        ));
    });
    let outcome = rx.recv_timeout(crate::LIMIT).expect("the server returned");
    assert_eq!(
        outcome.unwrap_err().raw_os_error(),
        Some(rustix::io::Errno::INVAL.raw_os_error())
    );
}
