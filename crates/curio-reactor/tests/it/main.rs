//! The reactor on its own: registration, readiness, one waiter per direction, the notifier.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use curio_reactor::{Async, Reactor};

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn pair() -> (Async<UnixStream>, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (Async::new(a), b)
}

fn read_op(s: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    (&*s).read(buf)
}

#[test]
fn readiness_event_wakes_the_waiter() {
    let reactor = Reactor::new().unwrap();
    let _g = reactor.enter();
    let (a, mut b) = pair();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 16];
    {
        let mut fut = pin!(a.read_with(|s| read_op(s, &mut buf)));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor.source_count(), 1);
        b.write_all(b"hello").unwrap();
        let out = reactor.poll(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(out.events, 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(5)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&buf[..5], b"hello");
    drop(a);
    assert_eq!(reactor.source_count(), 0, "Drop deregisters");
}

#[test]
fn second_waiter_gets_resource_busy() {
    let reactor = Reactor::new().unwrap();
    let _g = reactor.enter();
    let (a, mut b) = pair();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = Box::pin(a.readable());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let mut second = Box::pin(a.readable());
    match second.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ResourceBusy),
        other => panic!("{other:?}"),
    }
    // One writer at the same time is fine.
    let mut writer = Box::pin(a.writable());
    assert!(matches!(writer.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    // Even once the data is there, the first waiter keeps its place.
    b.write_all(b"x").unwrap();
    reactor.poll(Some(Duration::from_secs(5))).unwrap();
    let mut third = Box::pin(a.readable());
    assert!(matches!(third.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    assert!(matches!(first.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    // A finished or dropped waiter frees the slot.
    drop(first);
    let mut fourth = Box::pin(a.readable());
    assert!(matches!(fourth.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
}

#[test]
fn dropped_waiter_frees_the_slot() {
    let reactor = Reactor::new().unwrap();
    let _g = reactor.enter();
    let (a, _b) = pair();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = Box::pin(a.readable());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    drop(first);
    let mut second = Box::pin(a.readable());
    assert!(second.as_mut().poll(&mut cx).is_pending());
}

#[test]
fn notifier_wakes_a_parked_poll() {
    let reactor = Reactor::new().unwrap();
    let n = reactor.notifier();
    let t = std::thread::spawn(move || {
        n.notify();
        n.notify();
    });
    let out = reactor.poll(None).unwrap();
    assert!(out.notified);
    t.join().unwrap();
    // Coalesced wakes leave nothing pending once seen.
    let out = reactor.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(out.events, 0);
}

#[test]
fn notifier_outliving_the_reactor_is_harmless() {
    let reactor = Reactor::new().unwrap();
    let n = reactor.notifier();
    drop(reactor);
    n.notify();
}

#[test]
fn poll_timeout_never_returns_early() {
    let reactor = Reactor::new().unwrap();
    let start = Instant::now();
    let out = reactor.poll(Some(Duration::from_micros(1500))).unwrap();
    assert_eq!(out.events, 0);
    assert!(start.elapsed() >= Duration::from_micros(1500));
}

#[test]
fn use_outside_a_kernel_is_an_error() {
    let (a, _b) = pair();
    let (_, waker) = counting_waker();
    let mut fut = Box::pin(a.readable());
    match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("outside a curio kernel")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn use_from_another_reactor_is_an_error() {
    let (a, _b) = pair();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let r1 = Reactor::new().unwrap();
    {
        let _g = r1.enter();
        let mut f = Box::pin(a.readable());
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    let r2 = Reactor::new().unwrap();
    let _g = r2.enter();
    // Not ready: the op sees EAGAIN and must wait, which only its own kernel can do.
    let mut buf = [0u8; 4];
    let mut f = Box::pin(a.read_with(|s| read_op(s, &mut buf)));
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("other than the one")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn budget_makes_an_always_ready_source_yield() {
    let reactor = Reactor::new().unwrap();
    let _g = reactor.enter();
    let (a, _b) = pair();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    curio_core::reset_budget();
    let mut done = 0;
    loop {
        let mut f = Box::pin(a.write_with(|_| Ok(())));
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(())) => done += 1,
            Poll::Pending => break,
            Poll::Ready(Err(e)) => panic!("{e}"),
        }
        assert!(done <= curio_core::BUDGET_PER_TURN, "never yielded");
    }
    assert_eq!(done, curio_core::BUDGET_PER_TURN);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the task was rescheduled"
    );
}

#[test]
fn close_after_data_is_seen_after_a_short_read() {
    // Data and the peer's close arrive in one edge: a short read clears readiness, and the
    // close must still be seen (a sticky hang-up bit), or the next read would wait forever.
    let reactor = Reactor::new().unwrap();
    let _g = reactor.enter();
    let (a, mut b) = pair();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 16];
    {
        let mut f = Box::pin(a.read_with(|s| read_op(s, &mut buf)));
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    b.write_all(b"bye").unwrap();
    drop(b);
    reactor.poll(Some(Duration::from_secs(5))).unwrap();
    let n = {
        let mut f = Box::pin(a.read_with(|s| read_op(s, &mut buf)));
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(&buf[..n], b"bye");
    a.clear_ready(curio_reactor::Direction::Read);
    let mut f = Box::pin(a.read_with(|s| read_op(s, &mut buf)));
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(0)) => {}
        other => panic!("end-of-file expected, got {other:?}"),
    }
}
