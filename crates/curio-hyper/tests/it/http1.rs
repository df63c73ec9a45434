//! HTTP/1.1 over TCP and Unix sockets: bodies, keep-alive, many connections, a client that
//! leaves mid-body.

use std::cell::RefCell;

use curio_hyper::http_body_util::{BodyExt, Empty, Full};
use curio_hyper::hyper::body::Bytes;
use curio_hyper::hyper::{Request, StatusCode};
use curio_hyper::{CurioIo, Http};
use curio_net::{TcpStream, UnixStream};
use curio_sync::Event;

use super::*;

#[test]
fn get_bodies_of_0_bytes_1_mib_and_chunked() {
    run(async {
        let server = start(Http::new());
        let mut client = connect(server.addr).await;
        for len in [0, MIB] {
            let (status, body) = get(&mut client, &format!("/bytes/{len}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, pattern(len), "GET of {len} bytes");
        }
        let req = Request::get("/chunks/1024")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = client.send_request(req).await.unwrap();
        assert_eq!(res.headers()["transfer-encoding"], "chunked");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), MIB);
        assert!(body.chunks(1024).all(|c| c == pattern(1024)));
        assert_eq!(server.connections.get(), 1);
        server.task.cancel().await;
    });
}

#[test]
fn post_bodies_of_0_bytes_1_mib_and_chunked() {
    run(async {
        let server = start(Http::new());
        let mut client = connect::<Full<Bytes>>(server.addr).await;
        for len in [0, MIB] {
            let req = Request::post("/echo")
                .header("host", "localhost")
                .body(Full::new(pattern(len)))
                .unwrap();
            let res = client.send_request(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, pattern(len), "POST of {len} bytes");
        }
        // A request body without a length goes chunked, and so does its echo.
        let mut client = connect::<Chunks>(server.addr).await;
        let req = Request::post("/echo")
            .header("host", "localhost")
            .body(Chunks::new(1024, pattern(1024)))
            .unwrap();
        let res = client.send_request(req).await.unwrap();
        assert_eq!(res.headers()["transfer-encoding"], "chunked");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), MIB);
        assert!(body.chunks(1024).all(|c| c == pattern(1024)));
        server.task.cancel().await;
    });
}

#[test]
fn thousand_keep_alive_requests_on_one_connection() {
    run(async {
        let server = start(Http::new());
        let mut client = connect(server.addr).await;
        for i in 0..1000 {
            let (status, body) = get(&mut client, &format!("/bytes/{}", i % 100)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, pattern(i % 100));
        }
        assert_eq!(server.connections.get(), 1);
        server.task.cancel().await;
    });
}

#[test]
fn hundred_concurrent_connections() {
    run(async {
        let server = start(Http::new());
        let addr = server.addr;
        // Every client connects and sends before any reads its answer: the server holds all
        // 100 connections at once.
        let all_sent = Event::new();
        let sent = Rc::new(Cell::new(0));
        let mut clients = Vec::new();
        for i in 0..100 {
            let (all_sent, sent) = (all_sent.clone(), Rc::clone(&sent));
            clients.push(curio_kernel::spawn(async move {
                let mut client = connect(addr).await;
                let req = Request::get(format!("/bytes/{i}"))
                    .header("host", "localhost")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let res = client.send_request(req);
                sent.set(sent.get() + 1);
                if sent.get() == 100 {
                    all_sent.set();
                }
                all_sent.wait().await;
                let body = res.await.unwrap().into_body().collect().await.unwrap();
                assert_eq!(body.to_bytes(), pattern(i));
            }));
        }
        for c in clients {
            c.join().await.unwrap();
        }
        assert_eq!(server.connections.get(), 100);
        server.task.cancel().await;
    });
}

#[test]
fn unix_socket_pair() {
    run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let served = curio_kernel::spawn(async move {
            let service = curio_hyper::hyper::service::service_fn(service);
            Http::new().serve_http1(a, service, None).await
        });
        let (mut client, conn) =
            curio_hyper::hyper::client::conn::http1::handshake(CurioIo::new(b))
                .await
                .unwrap();
        let conn = curio_kernel::spawn(conn);
        let (status, body) = get(&mut client, "/bytes/1000").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, pattern(1000));
        // Dropping the sender ends the client's connection, which closes the socket, which
        // ends the server's connection cleanly.
        drop(client);
        conn.join().await.unwrap().unwrap();
        served.join().await.unwrap().unwrap();
    });
}

#[test]
fn client_that_disconnects_mid_body_leaves_the_server_serving() {
    run(async {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        // The service collects the request body and records what it got.
        let outcome: Rc<RefCell<Option<String>>> = Rc::default();
        let done = Event::new();
        let (o, d) = (Rc::clone(&outcome), done.clone());
        let make = move |_peer| {
            let (o, d) = (Rc::clone(&o), d.clone());
            curio_hyper::hyper::service::service_fn(move |req: Request<Incoming>| {
                let (o, d) = (Rc::clone(&o), d.clone());
                async move {
                    if req.uri().path() == "/collect" {
                        let got = req.into_body().collect().await;
                        *o.borrow_mut() = Some(match got {
                            Ok(b) => format!("{} bytes", b.to_bytes().len()),
                            Err(e) => format!("error: {e}"),
                        });
                        d.set();
                    }
                    Ok::<_, Infallible>(Response::new(full("hello")))
                }
            })
        };
        let options = ServerOptions::default();
        let server = curio_kernel::spawn(http_server(listener, Http::new(), make, options));

        let raw = TcpStream::connect(addr).await.unwrap();
        let head =
            format!("POST /collect HTTP/1.1\r\nhost: localhost\r\ncontent-length: {MIB}\r\n\r\n");
        raw.sendall(head.as_bytes()).await.unwrap();
        raw.sendall(&pattern(1000)).await.unwrap();
        drop(raw);
        done.wait().await;
        let outcome = outcome.borrow_mut().take().unwrap();
        assert!(outcome.starts_with("error: "), "{outcome}");

        let mut client = connect(addr).await;
        assert_eq!(
            get(&mut client, "/").await,
            (StatusCode::OK, Bytes::from("hello"))
        );
        assert!(!server.is_terminated());
        server.cancel().await;
    });
}
