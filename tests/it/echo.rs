//! The echo server example, run through its `serve` function on `127.0.0.1:0`.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used by the test, and its items are pub for readers"
)]
#[path = "../../examples/echo_server.rs"]
mod echo_server;

use curio::net::{TcpListener, TcpStream};

#[test]
fn echo_server_returns_1mib_intact() {
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 256) as u8).collect();
    let expected = data.clone();
    let got = curio::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = curio::spawn(echo_server::serve(listener));
        let client = std::rc::Rc::new(TcpStream::connect(addr).await.unwrap());
        let writer = client.clone();
        let w = curio::spawn(async move { writer.sendall(&data).await });
        let mut got = Vec::new();
        while got.len() < 1 << 20 {
            let chunk = client.recv(65536).await.unwrap();
            assert!(!chunk.is_empty(), "server closed early");
            got.extend_from_slice(&chunk);
        }
        w.join().await.unwrap().unwrap();
        server.cancel().await;
        got
    });
    assert!(got == expected, "echoed bytes differ");
}

#[test]
fn tcp_echo_many_clients() {
    let n = curio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = curio::spawn(echo_server::serve(listener));
        let clients: Vec<_> = (0..50u8)
            .map(|i| {
                curio::spawn(async move {
                    let s = TcpStream::connect(addr).await.unwrap();
                    for j in 0..20u8 {
                        s.sendall(&[i, j]).await.unwrap();
                        let mut got = Vec::new();
                        while got.len() < 2 {
                            got.extend(s.recv(2 - got.len()).await.unwrap());
                        }
                        assert_eq!(got, [i, j]);
                    }
                })
            })
            .collect();
        let n = clients.len();
        for c in clients {
            c.join().await.unwrap();
        }
        server.cancel().await;
        n
    });
    assert_eq!(n, 50);
}

#[test]
fn two_readers_get_resource_busy() {
    curio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = curio::spawn(async move { listener.accept().await.unwrap().0 });
        let client = std::rc::Rc::new(TcpStream::connect(addr).await.unwrap());
        let server_side = accept.join().await.unwrap();
        let c1 = client.clone();
        let first = curio::spawn(async move { c1.recv(10).await });
        curio::yield_now().await;
        let err = client.recv(10).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy);
        server_side.sendall(b"hello").await.unwrap();
        assert_eq!(first.join().await.unwrap().unwrap(), b"hello");
    });
}
