//! What a new user trips on (issue 19): blocking calls inside tasks, closable queues, scopes that
//! wait for their groups, shared handles, fair buffered reads.

use std::rc::Rc;

use curio::queue::UniversalQueue;
use curio::spawn;

use crate::vrun;

/// A `*_blocking` call inside a task panics in a debug build with a message that says what to do
/// (tests build with debug assertions).
#[test]
fn blocking_calls_inside_a_task_panic_in_debug() {
    let q: UniversalQueue<u8> = UniversalQueue::new(1);
    let q2 = q.clone();
    let err = vrun(async move {
        spawn(async move { q2.put_blocking(1).unwrap() })
            .join()
            .await
            .unwrap_err()
    });
    let msg = err.into_panic();
    let msg = msg
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("inside a curio task") && msg.contains("await the async form"),
        "{msg}"
    );
    // Outside a task (a plain thread, or here the test's own thread) it blocks as documented.
    q.put_blocking(7).unwrap();
    assert_eq!(q.get_blocking().unwrap(), 7);
}

/// Kernel-local primitives are cheap `Clone` handles: clones share one state, so tasks need no
/// `Rc` around them.
#[test]
fn cloned_handles_share_state() {
    use curio::queue::{LifoQueue, PriorityQueue, Queue};
    use curio::sync::{BoundedSemaphore, Condition, Event, Lock, Promise, RLock, Semaphore};

    vrun(async {
        let q: Queue<u32> = Queue::new(0);
        let q2 = q.clone();
        let consumer = spawn(async move { q2.get().await.unwrap() });
        q.put(5).await.unwrap();
        assert_eq!(consumer.join().await.unwrap(), 5);
        let (l, p): (LifoQueue<u8>, PriorityQueue<u8>) = (LifoQueue::new(0), PriorityQueue::new(0));
        l.clone().try_put(1).unwrap();
        p.clone().try_put(2).unwrap();
        assert_eq!((l.len(), p.len()), (1, 1));

        let e = Event::new();
        let e2 = e.clone();
        let waiter = spawn(async move { e2.wait().await });
        curio::yield_now().await;
        e.set();
        waiter.join().await.unwrap();

        let lock = Lock::new();
        let guard = lock.lock().await;
        assert!(lock.clone().locked());
        drop(guard);
        let sem = Semaphore::new(2);
        let sem2 = sem.clone();
        let permit = sem2.acquire().await;
        assert_eq!(sem.value(), 1);
        drop(permit);
        let bsem = BoundedSemaphore::new(1);
        let bsem2 = bsem.clone();
        let p = bsem2.acquire().await;
        assert!(bsem.locked());
        drop(p);
        let rlock = RLock::new();
        let rlock2 = rlock.clone();
        let g = rlock2.lock().await.unwrap();
        assert!(rlock.locked());
        drop(g);

        let cond = Condition::new();
        let c2 = cond.clone();
        let waiter = spawn(async move {
            let g = c2.lock().await;
            let _g = c2.wait(g).await.unwrap();
        });
        curio::yield_now().await;
        let g = cond.lock().await;
        cond.notify(1).unwrap();
        drop(g);
        waiter.join().await.unwrap();

        let promise: Promise<&str> = Promise::new();
        let p2 = promise.clone();
        let reader = spawn(async move { p2.get().await });
        promise.set("done").unwrap();
        assert_eq!(reader.join().await.unwrap(), "done");
    });
}

/// Counts live client handlers.
struct Live(Rc<std::cell::Cell<usize>>);

impl Live {
    fn new(n: &Rc<std::cell::Cell<usize>>) -> Live {
        n.set(n.get() + 1);
        Live(n.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A curio scope that drops a task group waits for it: when `ignore_after` around `run_server`
/// returns, no client task is alive (they were cancelled and have terminated), also when the
/// group was one level deeper, in a task the scope's group owned.
#[test]
fn ignore_after_run_server_leaves_no_client_alive() {
    use curio::net::{TcpListener, TcpStream, run_server};
    use curio::{TaskGroup, Wait, ignore_after};

    vrun(async {
        let live = Rc::new(std::cell::Cell::new(0usize));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let l2 = live.clone();
        let handler = move |c: TcpStream, _| {
            let l = l2.clone();
            async move {
                let _live = Live::new(&l);
                let _ = c.recv(10).await;
            }
        };
        let seen = Rc::new(std::cell::Cell::new(0usize));
        let (s2, live2) = (seen.clone(), live.clone());
        let out = ignore_after(crate::secs(5.0), async move {
            let server = run_server(listener, handler);
            let watch = async {
                // Note the peak while the server runs.
                loop {
                    s2.set(s2.get().max(live2.get()));
                    curio::sleep(crate::ms(10)).await;
                }
            };
            futures_join(server, watch).await
        })
        .await;
        assert!(out.is_none());
        assert_eq!(seen.get(), 3, "the three clients were being served");
        assert_eq!(live.get(), 0, "a client task outlived the scope");

        // One level deeper: the server runs in a task of a group the scope drops.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let l2 = live.clone();
        let out = ignore_after(crate::secs(5.0), async move {
            let g: TaskGroup<std::io::Result<()>> = TaskGroup::new(Wait::All);
            g.spawn(run_server(listener, move |c: TcpStream, _| {
                let l = l2.clone();
                async move {
                    let _live = Live::new(&l);
                    let _ = c.recv(10).await;
                }
            }));
            g.join().await;
        })
        .await;
        assert!(out.is_none());
        assert_eq!(live.get(), 0, "a client task outlived the scope");
        drop(clients);
    });
}

/// Polls two futures together until the first ends (enough for this test).
async fn futures_join<A: std::future::Future, B: std::future::Future>(a: A, b: B) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Under `Wait::Any`, a member taken out by `next_result` decides the group: `join` then cancels
/// the other at once instead of waiting for a second member to finish.
#[test]
fn wait_any_is_decided_by_a_member_taken_out() {
    use curio::{TaskGroup, Wait};

    vrun(async {
        let g: TaskGroup<&str> = TaskGroup::new(Wait::Any);
        let reader = g.spawn(async { "reader done" });
        let writer = g.spawn(async {
            std::future::pending::<()>().await;
            "never"
        });
        assert_eq!(g.next_result().await.unwrap().unwrap(), "reader done");
        let start = curio::clock();
        g.join().await;
        assert_eq!(curio::clock(), start, "join returned at once");
        assert!(writer.is_terminated() && writer.is_cancelled());
        assert_eq!(g.completed().unwrap().map(|t| t.id()), Some(reader.id()));
        assert_eq!(g.len(), 1, "the cancelled writer is still a member");
    });
}

/// A `SocketStream` whose buffer holds thousands of lines cannot starve another task: reads served
/// from the buffer spend the cooperative budget, so the reader yields after a budget's worth.
#[test]
fn buffered_reads_cannot_starve_other_tasks() {
    use std::cell::Cell;

    use curio::net::{SocketStream, UnixStream};

    const LINES: usize = 5000;
    vrun(async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut data = Vec::new();
        for i in 0..LINES {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let writer = spawn(async move {
            b.sendall(&data).await.unwrap();
            b
        });
        let since_tick = Rc::new(Cell::new(0usize));
        let worst = Rc::new(Cell::new(0usize));
        let done = Rc::new(Cell::new(false));
        let (s2, d2) = (since_tick.clone(), done.clone());
        let reader = spawn(async move {
            let mut s = SocketStream::new(a);
            // Fill the buffer first, so every later line is served from it.
            let mut n = 0;
            while n < LINES {
                let line = s.read_line(100).await.unwrap();
                assert!(!line.is_empty());
                n += 1;
                s2.set(s2.get() + 1);
            }
            d2.set(true);
        });
        let (s3, w3, d3) = (since_tick.clone(), worst.clone(), done.clone());
        let ticker = spawn(async move {
            while !d3.get() {
                w3.set(w3.get().max(s3.get()));
                s3.set(0);
                curio::yield_now().await;
            }
        });
        reader.join().await.unwrap();
        ticker.join().await.unwrap();
        drop(writer.join().await.unwrap());
        let budget = curio::rt::BUDGET_PER_TURN as usize;
        assert!(
            worst.get() <= budget,
            "{} lines in one turn of the reader (budget {budget})",
            worst.get()
        );
    });
}

/// Closing a kernel-local queue of each kind: getters drain what is left, then get `Closed`;
/// waiting putters get their item back at once; later puts are refused; a putter admitted before
/// the close completes its put.
#[test]
fn closing_kernel_local_queues() {
    use curio::queue::{BaseQueue, Closed, LifoQueue, PriorityQueue, Queue, Storage, TryPutError};

    async fn check<S: Storage<u32> + 'static>(q: BaseQueue<u32, S>) {
        // A getter waiting on an empty queue wakes with `Closed`.
        let q2 = q.clone();
        let getter = spawn(async move { q2.get().await });
        curio::yield_now().await;
        q.try_put(1).unwrap(); // handed to the waiting getter
        assert_eq!(getter.join().await.unwrap(), Ok(1));
        let q2 = q.clone();
        let getter = spawn(async move { q2.get().await });
        curio::yield_now().await;
        assert!(!q.is_closed());
        q.close();
        assert!(q.is_closed());
        assert_eq!(getter.join().await.unwrap(), Err(Closed(())));
        assert_eq!(q.put(2).await, Err(Closed(2)));
        assert!(matches!(q.try_put(3), Err(TryPutError::Closed(3))));
        q.close(); // twice: nothing more
    }
    vrun(async {
        check(Queue::new(0)).await;
        check(LifoQueue::new(1)).await;
        check(PriorityQueue::new(2)).await;

        // Items put before the close are drained first; a waiting putter gets its item back;
        // a putter admitted (its place reserved) before the close completes its put.
        let q: Queue<u32> = Queue::new(1);
        q.put(10).await.unwrap();
        let (qa, qb) = (q.clone(), q.clone());
        let admitted = spawn(async move { qa.put(11).await });
        let refused = spawn(async move { qb.put(12).await });
        curio::yield_now().await; // both wait for room
        assert_eq!(q.try_get(), Ok(10)); // reserves the place for the first putter
        q.close();
        assert_eq!(refused.join().await.unwrap(), Err(Closed(12)));
        assert_eq!(admitted.join().await.unwrap(), Ok(()));
        assert_eq!(q.get().await, Ok(11));
        assert_eq!(q.get().await, Err(Closed(())));
        assert_eq!(q.try_get(), Err(curio::queue::Empty));
    });
}

/// Closing a `UniversalQueue` wakes waiting getters and putters on other threads: getters drain,
/// then get `Closed`; a putter blocked on a full queue gets its item back.
#[test]
fn closing_a_universal_queue_across_threads() {
    use curio::queue::{Closed, GetTimeoutError, TryPutError, UniversalQueue};

    let q: UniversalQueue<u32> = UniversalQueue::new(1);
    q.put_blocking(1).unwrap();
    let (qp, qg) = (q.clone(), q.clone());
    let putter = std::thread::spawn(move || qp.put_blocking(2));
    let empty: UniversalQueue<u32> = UniversalQueue::new(0);
    let e2 = empty.clone();
    let getter = std::thread::spawn(move || e2.get_blocking());
    // The blocked threads are woken by the close, whenever they started waiting.
    q.close();
    empty.close();
    assert_eq!(getter.join().unwrap(), Err(Closed(())));
    let put = putter.join().unwrap();
    // The putter either got in before the close (then the get below drains it) or was refused.
    match put {
        Ok(()) => {
            assert_eq!(qg.get_blocking(), Ok(1));
            assert_eq!(qg.get_blocking(), Ok(2));
        }
        Err(Closed(item)) => {
            assert_eq!(item, 2);
            assert_eq!(qg.get_blocking(), Ok(1));
        }
    }
    assert_eq!(qg.get_blocking(), Err(Closed(())));
    assert_eq!(qg.get_timeout(crate::ms(1)), Err(GetTimeoutError::Closed));
    assert!(matches!(qg.try_put(5), Err(TryPutError::Closed(5))));
    assert!(matches!(
        qg.put_timeout(6, crate::ms(1)),
        Err(TryPutError::Closed(6))
    ));
    // From a task, too.
    let r = crate::vrun(async move { qg.get().await });
    assert_eq!(r, Err(Closed(())));
}
