//! Graceful shutdown: in-flight requests are answered, idle keep-alive connections closed, and
//! the server returns without waiting out its grace period.

use std::time::Duration;

use curio_hyper::http_body_util::{BodyExt, Empty};
use curio_hyper::hyper::Request;
use curio_hyper::hyper::body::Bytes;
use curio_hyper::{Http, http_server};
use curio_net::{ServerOptions, ServerShutdown};
use curio_sync::Event;

use super::*;

#[test]
fn graceful_shutdown_finishes_requests_in_flight() {
    run_virtual(async {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        // `/slow` waits for `release`, after saying it has begun.
        let (entered, release) = (Event::new(), Event::new());
        let (e, r) = (entered.clone(), release.clone());
        let make = move |_peer| {
            let (e, r) = (e.clone(), r.clone());
            curio_hyper::hyper::service::service_fn(move |req: Request<Incoming>| {
                let (e, r) = (e.clone(), r.clone());
                async move {
                    if req.uri().path() == "/slow" {
                        e.set();
                        r.wait().await;
                        return Ok::<_, Infallible>(Response::new(full("finished")));
                    }
                    Ok(Response::new(full("hello")))
                }
            })
        };
        let stop = ServerShutdown::new();
        let grace = Duration::from_secs(3600);
        let options = ServerOptions::default().shutdown(&stop).grace_period(grace);
        let server = curio_kernel::spawn(http_server(listener, Http::new(), make, options));
        let start = curio_kernel::clock();

        // An idle keep-alive connection, and one with a request in flight.
        let stream = curio_net::TcpStream::connect(addr).await.unwrap();
        let (mut idle, idle_conn) =
            curio_hyper::hyper::client::conn::http1::handshake(curio_hyper::CurioIo::new(stream))
                .await
                .unwrap();
        let idle_conn = curio_kernel::spawn(idle_conn);
        assert_eq!(get(&mut idle, "/").await.1, "hello");
        let mut busy = connect::<Empty<Bytes>>(addr).await;
        let req = Request::get("/slow")
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap();
        let in_flight = curio_kernel::spawn(async move {
            let res = busy.send_request(req).await.unwrap();
            let close = res.headers().get("connection").cloned();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (close, body)
        });
        entered.wait().await;

        stop.shutdown();
        // The idle connection is closed at once; the busy one still waits for its answer.
        curio_kernel::timeout_after(Duration::from_secs(1), idle_conn.join())
            .await
            .expect("the idle connection stays open")
            .unwrap()
            .unwrap();
        assert!(!in_flight.is_terminated());
        assert!(!server.is_terminated());

        release.set();
        let (close, body) = in_flight.join().await.unwrap();
        assert_eq!(body, "finished");
        assert_eq!(close.unwrap(), "close");
        server.join().await.unwrap().unwrap();
        // The server returned when its connections were done, not at the end of its grace.
        assert!(curio_kernel::clock() - start < grace);
    });
}

#[test]
fn shutdown_cancels_what_outlives_the_grace_period() {
    run_virtual(async {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        let entered = Event::new();
        let e = entered.clone();
        let make = move |_peer| {
            let e = e.clone();
            curio_hyper::hyper::service::service_fn(move |_req: Request<Incoming>| {
                let e = e.clone();
                async move {
                    e.set();
                    // Never answers.
                    std::future::pending::<()>().await;
                    Ok::<_, Infallible>(Response::new(full("")))
                }
            })
        };
        let stop = ServerShutdown::new();
        let grace = Duration::from_secs(10);
        let options = ServerOptions::default().shutdown(&stop).grace_period(grace);
        let server = curio_kernel::spawn(http_server(listener, Http::new(), make, options));
        let start = curio_kernel::clock();
        let mut client = connect::<Empty<Bytes>>(addr).await;
        let req = Request::get("/")
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap();
        let pending = curio_kernel::spawn(async move { client.send_request(req).await });
        entered.wait().await;
        stop.shutdown();
        server.join().await.unwrap().unwrap();
        assert!(curio_kernel::clock() - start >= grace);
        // The connection was cancelled, so the client sees it closed without an answer.
        assert!(pending.join().await.unwrap().is_err());
    });
}
