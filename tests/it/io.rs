//! Ports of Curio's `test_io.py` (streams over sockets: `SocketStream` from `as_stream()`), with
//! Curio's names and event orders, plus the checks Curio's quirks list asks for (`read_line`'s
//! `max_len`).
//!
//! Curio's tests run a `tcp_server` and a client that handshake with `b'OK'`; here most of them
//! use a connected pair (`tcp_pair`) and plain tasks whose panics reach the test through `join`.
//! Curio's `sleep(1)` between a client's sends is replaced by an event the other side sets once
//! it has seen what it needs, so the order never depends on timing. Tests where a timeout must
//! expire while data is on its way run on the real clock with short timeouts.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/echo_stream.rs"]
mod echo_stream;

use std::io;
use std::rc::Rc;
use std::time::Duration;

use curio::net::{IncompleteRead, TcpListener, TcpStream, UnixStream};
use curio::sync::Event;
use curio::{TaskTimeout, spawn, timeout_after};

use crate::Log;
use crate::net::{HANG, next, show, tcp_pair};

/// How long a timed read or write waits when it is meant to expire (real clock).
const SHORT: Duration = Duration::from_millis(100);

/// A bound for waits that are meant to succeed: reaching it fails the test instead of hanging it.
const LONG: Duration = Duration::from_secs(10);

#[test]
fn read_partial() {
    let results = curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            let line = s.read_line(1000).await.unwrap();
            let two = s.read(2).await.unwrap();
            let rest = s.read(1000).await.unwrap();
            [line, two, rest]
        });
        client.sendall(b"hello\nworld\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap()
    });
    assert_eq!(results, [&b"hello\n"[..], b"wo", b"rld\n"]);
}

#[test]
fn readall() {
    let log = Log::default();
    let l = log.clone();
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let hl = l.clone();
        let handler = spawn(async move {
            hl.push("handler start");
            let data = server.as_stream().read_all().await.unwrap();
            hl.push(show("", &data));
            hl.push("handler done");
        });
        // Curio sleeps 0.1 s between the sends, so the handler reads them in several chunks; the
        // result does not depend on how they are split.
        for msg in [&b"Msg1\n"[..], b"Msg2\n", b"Msg3\n"] {
            client.send(msg).await.unwrap();
            curio::sleep(Duration::from_millis(5)).await;
        }
        drop(client);
        handler.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        ["handler start", r"Msg1\nMsg2\nMsg3\n", "handler done"]
    );
}

#[test]
fn readall_partial() {
    curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            assert_eq!(s.read_line(1000).await.unwrap(), b"hello\n");
            assert_eq!(s.read_all().await.unwrap(), b"world\n");
        });
        client.send(b"hello\nworld\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap();
    });
}

/// The shape of Curio's `*_timeout` read tests: the client sends `first`, the handler's timed
/// `read` expires with that data buffered, then the client sends `second` and closes, and the
/// handler's next call returns everything. Returns what the stream held after the timeout and
/// what the next call returned.
fn timed_read_keeps_data<R>(
    first: &'static [u8],
    second: &'static [u8],
    read: impl for<'a> Fn(
        &'a mut curio::net::SocketStream<TcpStream>,
    ) -> std::pin::Pin<Box<dyn Future<Output = io::Result<R>> + 'a>>
    + 'static,
) -> (Vec<u8>, R) {
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let sent = Rc::new(Event::new());
        let timed_out = Rc::new(Event::new());
        let (s2, t2) = (sent.clone(), timed_out.clone());
        let handler = spawn(async move {
            let mut s = server.as_stream();
            // Start the timed read once the first part is on its way, so it arrives in time.
            s2.wait().await;
            let r = timeout_after(SHORT, read(&mut s)).await;
            assert!(r.is_err(), "the read finished before its timeout");
            let kept = s.buffered().to_vec();
            t2.set();
            // The rest and the end of file arrive together; the short read of the rest must not
            // hide the end of file (see net::recv_eof_after_short_read).
            let again = timeout_after(HANG, read(&mut s))
                .await
                .expect("the second read hung")
                .unwrap();
            (kept, again)
        });
        client.sendall(first).await.unwrap();
        sent.set();
        timed_out.wait().await;
        client.sendall(second).await.unwrap();
        drop(client);
        handler.join().await.unwrap()
    })
}

#[test]
fn readall_timeout() {
    // Curio: the TaskTimeout carries `bytes_read == b'Msg1\n'`. Here the bytes stay in the
    // stream, and the next `read_all` returns them with the rest.
    let (kept, again) = timed_read_keeps_data(b"Msg1\n", b"Msg2\n", |s| Box::pin(s.read_all()));
    assert_eq!(kept, b"Msg1\n");
    assert_eq!(again, b"Msg1\nMsg2\n");
}

/// `read_all` on a registered stream whose peer writes and closes at once returns the data.
///
/// A regression test: the short read of the data once cleared the readiness that the end of
/// file also needed (see net::recv_eof_after_short_read).
#[test]
fn readall_data_and_eof_together() {
    curio::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = b.as_stream();
        assert!(
            curio::ignore_after(Duration::from_millis(10), b.read(100))
                .await
                .is_none()
        );
        a.sendall(b"Msg1\nMsg2\n").await.unwrap();
        drop(a);
        let r = timeout_after(HANG, b.read_all()).await;
        assert!(
            matches!(&r, Ok(Ok(d)) if d == b"Msg1\nMsg2\n"),
            "read_all of data and end of file: {r:?}"
        );
    });
}

#[test]
fn read_exactly() {
    let results = curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            let mut out = Vec::new();
            for _ in 0..3 {
                out.push(s.read_exactly(5).await.unwrap());
            }
            out
        });
        client.send(b"Msg1\nMsg2\nMsg3\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap()
    });
    assert_eq!(results, [b"Msg1\n", b"Msg2\n", b"Msg3\n"]);
}

#[test]
fn read_exactly_incomplete() {
    let err = curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            let err = s.read_exactly(100).await.unwrap_err();
            // At end of file there is nothing more to read.
            assert_eq!(s.read(100).await.unwrap(), b"");
            err
        });
        client.send(b"Msg1\nMsg2\nMsg3\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap()
    });
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let inc = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<IncompleteRead>())
        .expect("the error carries an IncompleteRead");
    assert_eq!(inc.partial, b"Msg1\nMsg2\nMsg3\n");
    assert_eq!(inc.expected, 100);
}

#[test]
fn read_exactly_timeout() {
    let (kept, again) =
        timed_read_keeps_data(b"Msg1\n", b"Msg2\n", |s| Box::pin(s.read_exactly(10)));
    assert_eq!(kept, b"Msg1\n");
    assert_eq!(again, b"Msg1\nMsg2\n");
}

#[test]
fn readline() {
    let results = curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            let mut out = Vec::new();
            for _ in 0..3 {
                out.push(s.read_line(1000).await.unwrap());
            }
            // At end of file: the remainder (nothing), then nothing again.
            out.push(s.read_line(1000).await.unwrap());
            out
        });
        client.send(b"Msg1\nMsg2\nMsg3\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap()
    });
    assert_eq!(results, [&b"Msg1\n"[..], b"Msg2\n", b"Msg3\n", b""]);
}

#[test]
fn readline_max_len() {
    // Curio ignores `maxlen`; curio-rt honours it: an overlong line is an InvalidData error and
    // its bytes stay buffered for a call with a larger limit.
    curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            let mut s = server.as_stream();
            let err = s.read_line(8).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(s.buffered().starts_with(b"0123456789abcdef"));
            // A line of exactly `max_len` bytes, newline included, fits.
            assert_eq!(s.read_line(17).await.unwrap(), b"0123456789abcdef\n");
            assert_eq!(s.read_line(8).await.unwrap(), b"short\n");
            // At end of file, what is left, also when it has no newline.
            assert_eq!(s.read_line(8).await.unwrap(), b"tail");
            assert_eq!(s.read_line(8).await.unwrap(), b"");
        });
        client
            .sendall(b"0123456789abcdef\nshort\ntail")
            .await
            .unwrap();
        drop(client);
        handler.join().await.unwrap();
    });
}

#[test]
fn readline_max_len_waits_for_more() {
    // A partial line shorter than `max_len` is not an error: read_line waits for the rest.
    curio::run(async {
        let (server, client) = tcp_pair().await;
        let got_part = Rc::new(Event::new());
        let g = got_part.clone();
        let handler = spawn(async move {
            let mut s = server.as_stream();
            assert_eq!(s.read(3).await.unwrap(), b"abc");
            g.set();
            s.read_line(10).await.unwrap()
        });
        client.send(b"abcdef").await.unwrap();
        got_part.wait().await;
        client.send(b"gh\n").await.unwrap();
        assert_eq!(handler.join().await.unwrap(), b"defgh\n");
    });
}

#[test]
fn readlines() {
    let log = Log::default();
    let l = log.clone();
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            l.push("handler start");
            for line in server.as_stream().read_lines().await.unwrap() {
                l.push(show("", &line));
            }
            l.push("handler done");
        });
        client.send(b"Msg1\nMsg2\nMsg3\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "handler start",
            r"Msg1\n",
            r"Msg2\n",
            r"Msg3\n",
            "handler done"
        ]
    );
}

#[test]
fn readlines_timeout() {
    // Curio: the TaskTimeout carries `lines_read == [b'Msg1\n', b'Msg2\n']`. Here they stay in
    // the stream, and the next `read_lines` returns them with the rest.
    let (kept, again) =
        timed_read_keeps_data(b"Msg1\nMsg2\n", b"Msg3\n", |s| Box::pin(s.read_lines()));
    assert_eq!(kept, b"Msg1\nMsg2\n");
    assert_eq!(again, [b"Msg1\n", b"Msg2\n", b"Msg3\n"]);
}

#[test]
fn writelines() {
    let got = curio::run(async {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move { server.as_stream().read_all().await.unwrap() });
        let mut s = client.as_stream();
        s.write_lines([&b"Msg1\n"[..], b"Msg2\n", b"Msg3\n"])
            .await
            .unwrap();
        assert_eq!(s.bytes_written(), 15);
        s.close().await.unwrap();
        handler.join().await.unwrap()
    });
    assert_eq!(got, b"Msg1\nMsg2\nMsg3\n");
}

/// The shape of Curio's `write_timeout` tests: the handler does not read until the client's
/// timed `write` has expired; then it reads everything. Returns the client's `bytes_written()`,
/// the number of bytes the handler read, and whether they were all in order (`check`).
fn timed_write(
    write: impl for<'a> FnOnce(
        &'a mut curio::net::SocketStream<TcpStream>,
    ) -> std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + 'a>>
    + 'static,
    check: impl Fn(&[u8]) -> bool + 'static,
) -> (usize, usize) {
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let timed_out = Rc::new(Event::new());
        let t = timed_out.clone();
        let handler = spawn(async move {
            t.wait().await;
            let data = timeout_after(LONG, server.as_stream().read_all())
                .await
                .expect("read_all hung")
                .unwrap();
            assert!(check(&data), "the bytes read are not what was written");
            data.len()
        });
        let mut s = client.as_stream();
        let r: Result<io::Result<()>, TaskTimeout> = timeout_after(SHORT, write(&mut s)).await;
        assert!(r.is_err(), "the write finished before its timeout");
        let written = s.bytes_written();
        s.close().await.unwrap();
        timed_out.set();
        let read = handler.join().await.unwrap();
        (written, read)
    })
}

#[test]
fn writelines_timeout() {
    // An endless generator of lines: the write can only end by the timeout.
    let (written, read) = timed_write(
        |s| Box::pin(s.write_lines((0u64..).map(|n| format!("Msg{n}\n")))),
        |data| {
            let mut expect = (0u64..).map(|n| format!("Msg{n}\n"));
            let mut rest = data;
            // Every complete line is the next one; the last may be cut short.
            loop {
                let line = expect.next().unwrap_or_default();
                if rest.len() <= line.len() {
                    return line.as_bytes().starts_with(rest);
                }
                if !rest.starts_with(line.as_bytes()) {
                    return false;
                }
                rest = &rest[line.len()..];
            }
        },
    );
    assert!(written > 0);
    assert_eq!(written, read);
}

#[test]
fn write_timeout() {
    // Much more than the socket buffers hold (on Linux, 4 MiB to send, autotuned receive), so
    // the write blocks until its timeout.
    const N: usize = 32 << 20;
    let (written, read) = timed_write(
        |s| {
            Box::pin(async move {
                let msg = vec![b'x'; N];
                s.write(&msg).await.map(drop)
            })
        },
        |data| data.iter().all(|&b| b == b'x'),
    );
    assert!(written > 0 && written < N, "{written}");
    assert_eq!(written, read);
}

#[test]
fn iterline() {
    let log = Log::default();
    let l = log.clone();
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let handler = spawn(async move {
            l.push("handler start");
            let mut s = server.as_stream();
            let mut lines = s.lines(100);
            for _ in 0..10 {
                match next(&mut lines).await {
                    Some(line) => l.push(show("", &line.unwrap())),
                    None => break,
                }
            }
            l.push("handler done");
        });
        client.send(b"Msg1\nMsg2\nMsg3\n").await.unwrap();
        drop(client);
        handler.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "handler start",
            r"Msg1\n",
            r"Msg2\n",
            r"Msg3\n",
            "handler done"
        ]
    );
}

#[test]
fn lines_overlong_is_an_error_item() {
    curio::run(async {
        let (server, client) = tcp_pair().await;
        client.send(b"ok\n0123456789\n").await.unwrap();
        drop(client);
        let mut s = server.as_stream();
        let mut lines = s.lines(5);
        assert_eq!(next(&mut lines).await.unwrap().unwrap(), b"ok\n");
        let err = next(&mut lines).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        drop(lines);
        // The overlong line is still there for a larger limit.
        assert_eq!(s.read_line(100).await.unwrap(), b"0123456789\n");
    });
}

#[test]
fn double_recv() {
    let log = Log::default();
    let l = log.clone();
    curio::run(async move {
        let (server, client) = tcp_pair().await;
        let server = Rc::new(server);
        let bad_done = Rc::new(Event::new());
        let (bl, bs, bd) = (l.clone(), server.clone(), bad_done.clone());
        let handler = spawn(async move {
            l.push("handler start");
            // Spawning never switches tasks: the handler is already waiting in `recv` when the
            // bad handler first runs.
            let bad = spawn(async move {
                bl.push("bad handler");
                match bs.recv(1000).await {
                    Err(e) if e.kind() == io::ErrorKind::ResourceBusy => bl.push("good handler"),
                    other => bl.push(format!("why am I here? {other:?}")),
                }
                bd.set();
            });
            let data = server.recv(1000).await.unwrap();
            l.push(show("", &data));
            l.push("handler done");
            bad.join().await.unwrap();
        });
        bad_done.wait().await;
        client.send(b"Msg").await.unwrap();
        handler.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "handler start",
            "bad handler",
            "good handler",
            "Msg",
            "handler done"
        ]
    );
}

#[test]
fn tcp_file_echo() {
    // test_socket.py's stream echo: the handler iterates over lines and writes them back.
    let log = Log::default();
    let l = log.clone();
    curio::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sl = l.clone();
        let server = spawn(async move {
            sl.push("accept wait");
            let (client, _) = listener.accept().await.unwrap();
            sl.push("accept done");
            let hl = sl.clone();
            spawn(async move {
                hl.push("handler start");
                let mut s = client.as_stream();
                for _ in 0..10 {
                    let line = s.read_line(1000).await.unwrap();
                    if line.is_empty() {
                        break;
                    }
                    hl.push(show("handler", &line));
                    s.write(&line).await.unwrap();
                }
                hl.push("handler done");
            })
        });
        let cl = l.clone();
        let client = spawn(async move {
            cl.push("client start");
            let mut s = TcpStream::connect(addr).await.unwrap().as_stream();
            for msg in [&b"Msg1\n"[..], b"Msg2\n"] {
                s.write(msg).await.unwrap();
                let resp = s.read(100).await.unwrap();
                cl.push(show("client", &resp));
            }
            cl.push("client close");
        });
        let handler = server.join().await.unwrap();
        client.join().await.unwrap();
        handler.join().await.unwrap();
    });
    assert_eq!(
        log.take(),
        [
            "accept wait",
            "client start",
            "accept done",
            "handler start",
            r"handler Msg1\n",
            r"client Msg1\n",
            r"handler Msg2\n",
            r"client Msg2\n",
            "client close",
            "handler done"
        ]
    );
}

#[test]
fn echo_stream_example() {
    // The `echo_stream` example, served on 127.0.0.1:0: lines come back one by one, and an
    // overlong line ends the connection with an error instead of growing the buffer.
    curio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(echo_stream::serve(listener));
        let mut s = TcpStream::connect(addr).await.unwrap().as_stream();
        for line in [&b"hello\n"[..], b"world\n"] {
            s.write(line).await.unwrap();
            let back = timeout_after(LONG, s.read_line(100)).await.unwrap();
            assert_eq!(back.unwrap(), line);
        }
        s.write(&vec![b'a'; echo_stream::MAX_LINE + 10])
            .await
            .unwrap();
        // The server closes without echoing; closing with unread input may reset the connection.
        match timeout_after(LONG, s.read_all()).await.unwrap() {
            Ok(rest) => assert_eq!(rest, b"", "an overlong line must not be echoed"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        }
        assert!(!server.is_terminated(), "the server stops for no client");
        server.cancel().await;
    });
}
