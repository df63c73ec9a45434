//! `curio_net::channel`: the port of Curio's `test_channel.py` (its test names), then the
//! handshake, limits and the frame reader under hostile input.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use curio_kernel::{spawn, timeout_after, yield_now};
use curio_net::channel::{Channel, ChannelError, ChannelOptions, Connection, FrameDecoder};
use curio_net::{TcpStream, UnixStream};

/// Records the largest single allocation made on each thread, so a test can show that a
/// hostile header allocated nothing big.
mod tracking {
    #![allow(
        unsafe_code,
        reason = "a global allocator is an unsafe trait; this one only forwards to `System`"
    )]

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Tracking;

    thread_local! {
        pub(super) static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards every call to `System` unchanged; it only records sizes in a `Cell`,
    // which neither allocates nor unwinds.
    unsafe impl GlobalAlloc for Tracking {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOC: Tracking = Tracking;
}

use tracking::LARGEST;

fn kind_of(e: &io::Error) -> Option<&ChannelError> {
    ChannelError::of(e)
}

type Log = Rc<RefCell<Vec<String>>>;

/// Pushes `msg` when dropped: how a cancelled Rust task says 'cancel' (Curio's `except
/// CancelledError`).
struct OnDrop(Log, &'static str);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1.to_string());
    }
}

async fn hello<T>(ch1: Connection, ch2: Connection, server_msg: T, client_msg: T) -> Vec<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let server = spawn(async move {
        ch1.send(&server_msg).await.unwrap();
        let msg = ch1.recv::<T>().await.unwrap();
        r.borrow_mut().push(msg);
    });
    let r = results.clone();
    let client = spawn(async move {
        let msg = ch2.recv::<T>().await.unwrap();
        r.borrow_mut().push(msg);
        ch2.send(&client_msg).await.unwrap();
    });
    server.join().await.unwrap();
    client.join().await.unwrap();
    Rc::try_unwrap(results).ok().unwrap().into_inner()
}

#[test]
fn test_channel_hello() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let results = hello(
            ch1,
            ch2,
            "server hello world".to_string(),
            "client hello world".to_string(),
        )
        .await;
        assert_eq!(results, ["server hello world", "client hello world"]);
    });
}

#[test]
fn test_channel_hello_bytes() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let server = spawn(async move {
            ch1.send_bytes(b"server hello world").await.unwrap();
            ch1.recv_bytes().await.unwrap()
        });
        let msg = ch2.recv_bytes().await.unwrap();
        ch2.send_bytes(b"client hello world").await.unwrap();
        assert_eq!(msg, b"server hello world");
        assert_eq!(server.join().await.unwrap(), b"client hello world");
    });
}

#[test]
fn test_channel_large() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let data: Vec<u64> = (0..1_000_000).collect();
        let sent = data.clone();
        let server = spawn(async move {
            ch1.send(&sent).await.unwrap();
            ch1.recv::<usize>().await.unwrap()
        });
        let msg: Vec<u64> = ch2.recv().await.unwrap();
        ch2.send(&msg.len()).await.unwrap();
        assert_eq!(msg, data);
        assert_eq!(server.join().await.unwrap(), data.len());
    });
}

#[test]
fn test_channel_auth() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let server = spawn(async move {
            ch1.authenticate_server(b"peekaboo").await.unwrap();
            ch1.send(&"server hello world").await.unwrap();
            ch1.recv::<String>().await.unwrap()
        });
        ch2.authenticate_client(b"peekaboo").await.unwrap();
        let msg: String = ch2.recv().await.unwrap();
        ch2.send(&"client hello world").await.unwrap();
        assert_eq!(msg, "server hello world");
        assert_eq!(server.join().await.unwrap(), "client hello world");
    });
}

/// Wrong key on each side: the server learns that the digest it received was wrong, the client
/// that its digest was rejected, and the connection is closed.
#[test]
fn test_channel_auth_fail() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let server = spawn(async move {
            let e = ch1.authenticate_server(b"peekaboo").await.unwrap_err();
            (e.kind(), kind_of(&e).cloned())
        });
        let e = ch2.authenticate_client(b"wrong").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(kind_of(&e), Some(&ChannelError::DigestSentRejected));
        assert_eq!(e.to_string(), "digest sent was rejected");
        assert_eq!(
            server.join().await.unwrap(),
            (
                io::ErrorKind::PermissionDenied,
                Some(ChannelError::DigestReceivedWrong)
            )
        );
        let e = ch2.recv_bytes().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    });
}

/// Deviation: Curio's `send_bytes(data, offset, size)` is a slice in Rust, so its four
/// `ValueError`s have no counterpart (an out-of-range slice is the caller's bug).
#[test]
fn test_channel_send_partial_bytes() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let data = b"abcdefghijklmnopqrstuvwxyz";
        let server = spawn(async move {
            let mut results = Vec::new();
            for part in [&data[5..15], &data[5..], &data[..10]] {
                ch1.send_bytes(part).await.unwrap();
                results.push(ch1.recv::<usize>().await.unwrap());
            }
            results
        });
        let mut got = Vec::new();
        for _ in 0..3 {
            let msg = ch2.recv_bytes().await.unwrap();
            ch2.send(&msg.len()).await.unwrap();
            got.push(msg);
        }
        assert_eq!(got, [&data[5..15], &data[5..], &data[..10]]);
        assert_eq!(server.join().await.unwrap(), [10, 21, 10]);
    });
}

/// Deviation: there is no `multiprocessing.Pipe` to steal a descriptor from; a connection is
/// made from any connected stream.
#[test]
fn test_channel_from_connection() {
    curio_kernel::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let results = hello(
            Connection::from_unix(a),
            Connection::from_unix(b),
            "server hello world".to_string(),
            "client hello world".to_string(),
        )
        .await;
        assert_eq!(results, ["server hello world", "client hello world"]);
    });
}

/// Then, beyond Curio: the connection still works after the cancelled receive.
#[test]
fn test_channel_recv_cancel() {
    curio_kernel::run(async {
        let results: Log = Rc::default();
        let (ch1, ch2) = Connection::pair().unwrap();
        let ch2 = Rc::new(ch2);
        let (c, r) = (ch2.clone(), results.clone());
        let task = spawn(async move {
            let guard = OnDrop(r.clone(), "cancel");
            let msg = c.recv_bytes().await.unwrap();
            std::mem::forget(guard);
            r.borrow_mut().push(format!("{msg:?}"));
        });
        yield_now().await;
        task.cancel().await;
        results.borrow_mut().push("done cancel".into());
        assert_eq!(*results.borrow(), ["cancel", "done cancel"]);
        ch1.send_bytes(b"after").await.unwrap();
        assert_eq!(ch2.recv_bytes().await.unwrap(), b"after");
    });
}

struct UnixStreamPair {
    raw: UnixStream,
    conn: Connection,
}

fn raw_pair() -> UnixStreamPair {
    let (raw, other) = UnixStream::pair().unwrap();
    UnixStreamPair {
        raw,
        conn: Connection::from_unix(other),
    }
}

#[test]
fn recv_cancelled_mid_frame_keeps_the_bytes() {
    curio_kernel::run(async {
        let UnixStreamPair { raw, conn } = raw_pair();
        let conn = Rc::new(conn);
        let c = conn.clone();
        let task = spawn(async move { c.recv_bytes().await });
        raw.sendall(&[0, 0, 0, 10, b'0', b'1', b'2']).await.unwrap();
        // Let the task take the partial frame in, then cancel it.
        for _ in 0..10 {
            yield_now().await;
        }
        task.cancel().await;
        raw.sendall(b"3456789").await.unwrap();
        assert_eq!(conn.recv_bytes().await.unwrap(), b"0123456789");
    });
}

#[test]
fn test_channel_recv_timeout() {
    curio_kernel::run(async {
        let (_ch1, ch2) = Connection::pair().unwrap();
        let mut results = Vec::new();
        match timeout_after(Duration::from_millis(50), ch2.recv::<String>()).await {
            Ok(msg) => results.push(format!("{msg:?}")),
            Err(_) => results.push("timeout".into()),
        }
        results.push("done".into());
        assert_eq!(results, ["timeout", "done"]);
    });
}

/// Then, beyond Curio: the stream carries part of a frame, so the next send refuses.
#[test]
fn test_channel_send_cancel() {
    curio_kernel::run(async {
        let results: Log = Rc::default();
        let (_ch1, ch2) = Connection::pair().unwrap();
        let ch2 = Rc::new(ch2);
        let (c, r) = (ch2.clone(), results.clone());
        let task = spawn(async move {
            let guard = OnDrop(r.clone(), "cancel");
            // Large enough to block: nobody reads the other end.
            let msg = "x".repeat(10_000_000);
            c.send(&msg).await.unwrap();
            std::mem::forget(guard);
            r.borrow_mut().push("success".into());
        });
        yield_now().await;
        task.cancel().await;
        results.borrow_mut().push("done cancel".into());
        assert_eq!(*results.borrow(), ["cancel", "done cancel"]);
        let e = ch2.send_bytes(b"more").await.unwrap_err();
        assert_eq!(kind_of(&e), Some(&ChannelError::BrokenFrame));
    });
}

#[test]
fn test_channel_send_timeout() {
    curio_kernel::run(async {
        let (_ch1, ch2) = Connection::pair().unwrap();
        let mut results = Vec::new();
        let msg = "x".repeat(10_000_000);
        match timeout_after(Duration::from_millis(50), ch2.send(&msg)).await {
            Ok(r) => {
                r.unwrap();
                results.push("success");
            }
            Err(_) => results.push("timeout"),
        }
        results.push("done");
        assert_eq!(results, ["timeout", "done"]);
    });
}

/// Curio's `Channel(('localhost', 0)).bind()` with a client that connects to its address.
#[test]
fn test_channel_connect() {
    curio_kernel::run(async {
        let ch = Channel::bind("127.0.0.1:0", b"peekaboo").unwrap();
        let addr = ch.local_addr().unwrap();
        let server = spawn(async move {
            let c = ch.accept().await.unwrap();
            c.send(&"server hello world").await.unwrap();
            c.recv::<String>().await.unwrap()
        });
        let c = Channel::connect(addr, b"peekaboo").await.unwrap();
        let msg: String = c.recv().await.unwrap();
        c.send(&"client hello world").await.unwrap();
        assert_eq!(msg, "server hello world");
        assert_eq!(server.join().await.unwrap(), "client hello world");
    });
}

/// Curio's auth failure on connect; the server keeps serving and accepts the next, good,
/// client, and keeps the bad one's error.
#[test]
fn test_channel_connect_auth_fail() {
    curio_kernel::run(async {
        let ch = Rc::new(Channel::bind("127.0.0.1:0", b"peekaboo").unwrap());
        let addr = ch.local_addr().unwrap();
        let c = ch.clone();
        let server = spawn(async move {
            let conn = c.accept().await.unwrap();
            conn.recv::<String>().await.unwrap()
        });
        let e = Channel::connect(addr, b"wrong").await.unwrap_err();
        assert_eq!(kind_of(&e), Some(&ChannelError::DigestSentRejected));
        let good = Channel::connect(addr, b"peekaboo").await.unwrap();
        good.send(&"good").await.unwrap();
        assert_eq!(server.join().await.unwrap(), "good");
        let rejected = ch.take_rejected();
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            kind_of(&rejected[0]),
            Some(&ChannelError::DigestReceivedWrong)
        );
    });
}

/// Curio's `recv_bytes_into` of a 100000-int array.
#[test]
fn test_channel_recv_bytes_into() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        let ints: Vec<u8> = (0..100_000u32).flat_map(u32::to_ne_bytes).collect();
        let sent = ints.clone();
        let server = spawn(async move { ch1.send_bytes(&sent).await });
        let mut buf = vec![0u8; ints.len()];
        let nrecv = ch2.recv_bytes_into(&mut buf, 0).await.unwrap();
        server.join().await.unwrap().unwrap();
        assert_eq!(nrecv, ints.len());
        assert_eq!(buf, ints);
    });
}

#[test]
fn recv_bytes_into_too_small_keeps_the_message() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        ch1.send_bytes(&[7; 1000]).await.unwrap();
        ch1.send_bytes(b"next").await.unwrap();
        let mut buf = [0u8; 1000];
        let e = ch2.recv_bytes_into(&mut buf, 1).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind_of(&e),
            Some(&ChannelError::MessageTooLargeToFit {
                len: 1000,
                room: 999
            })
        );
        assert_eq!(
            e.to_string(),
            "message is too large to fit: 1000 bytes, room for 999"
        );
        let e = ch2.recv_bytes_into(&mut buf, 1001).await.unwrap_err();
        assert_eq!(e.to_string(), "buffer length < offset");
        assert_eq!(ch2.recv_bytes_into(&mut buf, 0).await.unwrap(), 1000);
        assert_eq!(buf, [7; 1000]);
        assert_eq!(ch2.recv_bytes().await.unwrap(), b"next");
    });
}

/// 1000 typed messages and 10 MiB of bytes, echoed between two kernels on two threads: the
/// client writes from one task while another reads the echoes.
#[test]
fn typed_and_bytes_between_two_kernels_on_two_threads() {
    const TYPED: u32 = 1000;
    const BIG: usize = 10 << 20;
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        curio_kernel::run(async move {
            let ch = Channel::bind("127.0.0.1:0", b"two threads").unwrap();
            tx.send(ch.local_addr().unwrap()).unwrap();
            let conn = ch.accept().await.unwrap();
            for _ in 0..TYPED {
                let msg: (u32, String) = conn.recv().await.unwrap();
                conn.send(&msg).await.unwrap();
            }
            let big = conn.recv_bytes().await.unwrap();
            conn.send_bytes(&big).await.unwrap();
            let e = conn.recv_bytes().await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        })
    });
    let addr = rx.recv().unwrap();
    let pattern: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let expected = pattern.clone();
    curio_kernel::run(async move {
        let conn = Rc::new(Channel::connect(addr, b"two threads").await.unwrap());
        let c = conn.clone();
        let writer = spawn(async move {
            for i in 0..TYPED {
                c.send(&(i, format!("message {i}"))).await.unwrap();
            }
            c.send_bytes(&pattern).await.unwrap();
        });
        for i in 0..TYPED {
            let (n, s): (u32, String) = conn.recv().await.unwrap();
            assert_eq!((n, s), (i, format!("message {i}")));
        }
        let big = conn.recv_bytes().await.unwrap();
        assert!(big == expected, "the 10 MiB message came back changed");
        writer.join().await.unwrap();
        conn.close().unwrap();
    });
    server.join().unwrap();
}

#[test]
fn channel_over_unix_socket() {
    let dir = std::env::temp_dir().join(format!("curio-channel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("channel.sock");
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    curio_kernel::run(async move {
        let ch = Channel::bind_unix(&p, b"unix").unwrap();
        assert!(ch.local_addr().is_err());
        let server = spawn(async move {
            let conn = ch.accept().await.unwrap();
            let n: u64 = conn.recv().await.unwrap();
            conn.send(&(n * 2)).await.unwrap();
        });
        let conn = Channel::connect_unix(&p, b"unix").await.unwrap();
        conn.send(&21u64).await.unwrap();
        assert_eq!(conn.recv::<u64>().await.unwrap(), 42);
        server.join().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A silent client and two garbage clients connect first; a good client is still accepted at
/// once, well within the (long) handshake bound, and the garbage clients are rejected.
#[test]
fn silent_and_garbage_clients_do_not_delay_a_good_one() {
    curio_kernel::run(async {
        let opts = ChannelOptions::default().handshake_timeout(Duration::from_secs(60));
        let ch = Channel::bind_with("127.0.0.1:0", b"key", opts).unwrap();
        let addr = ch.local_addr().unwrap();
        let ch = Rc::new(ch);
        let c = ch.clone();
        let server = spawn(async move {
            let conn = c.accept().await.unwrap();
            conn.recv::<String>().await.unwrap()
        });
        let silent = TcpStream::connect(addr).await.unwrap();
        // Not a frame: "GET " claims a frame of over a gigabyte.
        let http = TcpStream::connect(addr).await.unwrap();
        http.sendall(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        // A well-formed frame that is no answer to the challenge.
        let wrong = TcpStream::connect(addr).await.unwrap();
        wrong.sendall(&[0, 0, 0, 5, 1, 2, 3, 4, 5]).await.unwrap();
        let good = timeout_after(Duration::from_secs(30), async {
            let conn = Channel::connect(addr, b"key").await.unwrap();
            conn.send(&"good").await.unwrap();
            conn
        })
        .await
        .expect("the good client waited for the others");
        assert_eq!(
            timeout_after(Duration::from_secs(30), server.join())
                .await
                .unwrap()
                .unwrap(),
            "good"
        );
        // The garbage clients were dropped: after the challenge, their streams end.
        for s in [&http, &wrong] {
            let mut total = Vec::new();
            for _ in 0..100 {
                let data = s.recv(1000).await.unwrap();
                if data.is_empty() {
                    break;
                }
                total.extend(data);
            }
            assert!(total.starts_with(&[0, 0, 0, 54]), "{total:?}");
        }
        let mut errors: Vec<_> = ch
            .take_rejected()
            .iter()
            .map(|e| kind_of(e).cloned())
            .collect();
        errors.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            errors,
            [
                Some(ChannelError::DigestReceivedWrong),
                Some(ChannelError::FrameTooLarge {
                    len: u64::from(u32::from_be_bytes(*b"GET ")),
                    max: 256
                }),
            ]
        );
        drop((good, silent));
    });
}

/// A client that never answers is dropped when the handshake bound passes, and the error
/// says so.
#[test]
fn silent_client_is_dropped_after_the_handshake_timeout() {
    curio_kernel::run(async {
        let opts = ChannelOptions::default().handshake_timeout(Duration::from_millis(100));
        let ch = Rc::new(Channel::bind_with("127.0.0.1:0", b"key", opts).unwrap());
        let addr = ch.local_addr().unwrap();
        let c = ch.clone();
        let server = spawn(async move { c.accept().await });
        let silent = Connection::from_tcp(TcpStream::connect(addr).await.unwrap());
        // The challenge arrives, and then the end of the stream.
        let challenge = silent.recv_bytes().await.unwrap();
        assert!(challenge.starts_with(b"#CHALLENGE#"));
        let e = silent.recv_bytes().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let rejected = ch.take_rejected();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            kind_of(&rejected[0]),
            Some(&ChannelError::HandshakeTimedOut)
        );
        server.cancel().await;
    });
}

/// Dropping the channel cancels the handshakes it started: a silent client sees the end of the
/// stream at once, not after the (long) handshake bound.
#[test]
fn dropping_the_channel_ends_its_handshakes() {
    curio_kernel::run(async {
        let opts = ChannelOptions::default().handshake_timeout(Duration::from_secs(60));
        let ch = Rc::new(Channel::bind_with("127.0.0.1:0", b"key", opts).unwrap());
        let addr = ch.local_addr().unwrap();
        let c = ch.clone();
        let server = spawn(async move { c.accept().await });
        let silent = Connection::from_tcp(TcpStream::connect(addr).await.unwrap());
        assert!(
            silent
                .recv_bytes()
                .await
                .unwrap()
                .starts_with(b"#CHALLENGE#")
        );
        server.cancel().await;
        drop(ch);
        let e = timeout_after(Duration::from_secs(30), silent.recv_bytes())
            .await
            .expect("the handshake outlived its channel")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    });
}

/// A client whose server never answers gives up after the handshake bound.
#[test]
fn connect_to_a_silent_server_times_out() {
    curio_kernel::run(async {
        let listener = curio_net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ChannelOptions::default().handshake_timeout(Duration::from_millis(50));
        let e = Channel::connect_with(addr, b"key", &opts)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(kind_of(&e), Some(&ChannelError::HandshakeTimedOut));
    });
}

/// A header that claims 4 GiB closes the connection without allocating anything big.
#[test]
fn header_claiming_4_gib_closes_the_connection() {
    curio_kernel::run(async {
        let UnixStreamPair { raw, conn } = raw_pair();
        raw.sendall(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        LARGEST.with(|l| l.set(0));
        let e = conn.recv_bytes().await.unwrap_err();
        let largest = LARGEST.with(Cell::get);
        assert!(largest <= 128 * 1024, "allocated {largest} bytes");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            kind_of(&e),
            Some(&ChannelError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: 64 << 20
            })
        );
        // The connection is closed: the peer sees the end of the stream, and this end refuses
        // to read on.
        assert_eq!(raw.recv(100).await.unwrap(), b"");
        let e = conn.recv_bytes().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    });
}

#[test]
fn frame_limit_applies_to_both_directions() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        ch1.set_max_frame(10);
        let e = ch1.send_bytes(&[0; 11]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        ch1.send_bytes(&[0; 10]).await.unwrap();
        assert_eq!(ch2.recv_bytes().await.unwrap(), [0; 10]);
        ch2.send_bytes(&[1; 11]).await.unwrap();
        let e = ch1.recv_bytes().await.unwrap_err();
        assert_eq!(
            kind_of(&e),
            Some(&ChannelError::FrameTooLarge { len: 11, max: 10 })
        );
    });
}

#[test]
fn empty_messages_and_close() {
    curio_kernel::run(async {
        let (ch1, ch2) = Connection::pair().unwrap();
        ch1.send_bytes(b"").await.unwrap();
        ch1.send(&()).await.unwrap();
        assert_eq!(ch2.recv_bytes().await.unwrap(), b"");
        ch2.recv::<()>().await.unwrap();
        ch1.close().unwrap();
        let e = ch2.recv_bytes().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A message of another type is an error, not a panic.
        let (ch1, ch2) = Connection::pair().unwrap();
        ch1.send_bytes(&[0xff]).await.unwrap();
        let e = ch2.recv::<String>().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    });
}

mod frame_reader {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 300;

    /// Feeds `stream` to a decoder in pieces cut at `cuts`, checking the allocation bound after
    /// every step; returns the frames and the error that ended the stream, if any.
    fn decode(stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Option<io::Error>) {
        let mut d = FrameDecoder::new(MAX);
        let mut frames = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.push(stream.len());
        bounds.sort_unstable();
        let mut start = 0;
        for end in bounds {
            let mut piece = &stream[start..end];
            // Each step takes at least one byte or one frame, so this loop is bounded.
            for _ in 0..=2 * piece.len() + 1 {
                match d.feed(piece) {
                    Ok(n) => piece = &piece[n..],
                    Err(e) => return (frames, Some(e)),
                }
                assert!(d.allocated() <= MAX, "allocated {}", d.allocated());
                if let Some(f) = d.next_frame() {
                    frames.push(f);
                }
                if piece.is_empty() {
                    break;
                }
            }
            assert!(piece.is_empty(), "the decoder stopped taking bytes");
            start = end;
        }
        (frames, None)
    }

    fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(512)))]

        #[test]
        fn round_trips_every_valid_frame_sequence(
            frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=MAX), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..16),
        ) {
            let stream = encode(&frames);
            let (got, err) = decode(&stream, &cuts);
            prop_assert!(err.is_none());
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_overallocate(
            stream in prop::collection::vec(any::<u8>(), 0..2048),
            cuts in prop::collection::vec(any::<usize>(), 0..16),
        ) {
            let (frames, err) = decode(&stream, &cuts);
            for f in &frames {
                prop_assert!(f.len() <= MAX);
            }
            if let Some(e) = err {
                let refused = matches!(
                    ChannelError::of(&e),
                    Some(ChannelError::FrameTooLarge { len, max: MAX }) if *len > MAX as u64
                );
                prop_assert!(refused, "{e}");
            }
        }

        #[test]
        fn an_oversized_header_is_refused_for_good(
            len in (MAX as u32 + 1)..=u32::MAX,
            rest in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut d = FrameDecoder::new(MAX);
            let mut stream = len.to_be_bytes().to_vec();
            stream.extend(rest);
            prop_assert!(d.feed(&stream).is_err());
            prop_assert_eq!(d.allocated(), 0);
            prop_assert!(d.feed(&[0, 0, 0, 0]).is_err());
        }
    }
}
