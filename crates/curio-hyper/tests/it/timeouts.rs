//! hyper's timers on the kernel's clock: a slowloris client meets the header-read timeout on
//! the virtual clock, without any real wait.

use std::time::Duration;

use curio_hyper::Http;
use curio_hyper::hyper::StatusCode;
use curio_net::TcpStream;

use super::*;

#[test]
fn slowloris_client_hits_the_header_read_timeout() {
    run_virtual(async {
        let mut http = Http::new();
        http.http1().header_read_timeout(Duration::from_secs(5));
        let server = start(http);
        let real = std::time::Instant::now();
        let start = curio_kernel::clock();

        // Half a request head, then nothing: the server must not wait for the rest forever.
        let raw = TcpStream::connect(server.addr).await.unwrap();
        raw.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        for _ in 0..100 {
            let data = raw.recv(65536).await.unwrap();
            if data.is_empty() {
                break;
            }
            answer.extend_from_slice(&data);
        }
        let waited = curio_kernel::clock() - start;
        assert!(waited >= Duration::from_secs(5), "closed after {waited:?}");
        assert!(waited < Duration::from_secs(6), "closed after {waited:?}");
        // hyper closes the connection without an answer.
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
        // The virtual clock jumped: no real five seconds went by.
        assert!(real.elapsed() < Duration::from_secs(5));

        // The server goes on serving.
        let mut client = connect(server.addr).await;
        assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
        server.task.cancel().await;
    });
}

#[test]
fn a_complete_head_within_the_timeout_is_served() {
    run_virtual(async {
        let mut http = Http::new();
        http.http1().header_read_timeout(Duration::from_secs(5));
        let server = start(http);
        let raw = TcpStream::connect(server.addr).await.unwrap();
        raw.sendall(b"GET / HTTP/1.1\r\n").await.unwrap();
        curio_kernel::sleep(Duration::from_secs(4)).await;
        raw.sendall(b"host: localhost\r\n\r\n").await.unwrap();
        let data = raw.recv(65536).await.unwrap();
        assert!(
            data.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&data)
        );
        server.task.cancel().await;
    });
}
