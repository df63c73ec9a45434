//! `SocketStream` over TLS: buffered `read_line`, `read_exactly` and `write`, as over a socket.

use std::io;

use curio_net::tls::TlsStream;
use curio_net::{IncompleteRead, UnixStream};

use super::{acceptor, connector, run};

/// A client and a server `TlsStream` over a Unix socket pair.
async fn tls_pair() -> (TlsStream<UnixStream>, TlsStream<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    let acceptor = acceptor(&[]);
    let server = curio_kernel::spawn(async move { acceptor.accept(b).await });
    let client = connector(&[]).connect("localhost", a).await.unwrap();
    (client, server.join().await.unwrap().unwrap())
}

#[test]
fn read_line_and_read_exactly_over_tls() {
    run(async {
        let (client, server) = tls_pair().await;
        let writer = curio_kernel::spawn(async move {
            let mut s = server.as_stream();
            s.write(b"first line\nsecond").await.unwrap();
            s.write_lines([&b" line\n"[..], b"0123456789", b"tail"])
                .await
                .unwrap();
            s.close().await.unwrap();
        });
        let mut s = client.as_stream();
        assert_eq!(s.read_line(100).await.unwrap(), b"first line\n");
        assert_eq!(s.read_line(100).await.unwrap(), b"second line\n");
        assert_eq!(s.read_exactly(10).await.unwrap(), b"0123456789");
        let e = s.read_exactly(10).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let partial = e
            .get_ref()
            .unwrap()
            .downcast_ref::<IncompleteRead>()
            .unwrap();
        assert_eq!(partial.partial, b"tail");
        assert_eq!(s.read_line(100).await.unwrap(), b"");
        writer.join().await.unwrap();
    });
}

#[test]
fn a_long_line_is_refused_and_stays_buffered() {
    run(async {
        let (client, mut server) = tls_pair().await;
        server.sendall(b"0123456789abcdef\n").await.unwrap();
        let mut s = client.as_stream();
        let e = s.read_line(8).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(s.read_exactly(17).await.unwrap(), b"0123456789abcdef\n");
    });
}

#[test]
fn a_write_left_in_the_tls_buffer_goes_out_with_the_next_read() {
    // `SocketStream::write` does not flush. With a small socket buffer and nobody reading yet,
    // the socket fills up and the rest of the records stay in the TLS buffer after `write`
    // returns; the read that waits for the reply must send them, or both sides wait forever.
    const N: usize = 32 * 1024;
    run(async {
        let (client, server) = tls_pair().await;
        rustix::net::sockopt::set_socket_send_buffer_size(client.get_ref(), 4096).unwrap();
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        let mut s = client.as_stream();
        assert_eq!(s.write(&data).await.unwrap(), N);
        assert_eq!(s.bytes_written(), N);
        assert!(
            s.get_ref().tls_state().wants_write(),
            "the test needs records left in the TLS buffer"
        );
        let reader = curio_kernel::spawn(async move {
            let mut s = server.as_stream();
            let data = s.read_exactly(N).await.unwrap();
            assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            s.write(b"got it\n").await.unwrap();
            s.close().await.unwrap();
        });
        assert_eq!(s.read_line(100).await.unwrap(), b"got it\n");
        reader.join().await.unwrap();
    });
}

/// A peer that closes without `close_notify`: `UnexpectedEof` by default; a plain EOF with
/// `eof_without_close_notify` when the stream ended at a record boundary; still
/// `UnexpectedEof` when it ended inside a record.
#[test]
fn eof_without_close_notify() {
    use std::net::Shutdown;

    run(async {
        // Default: truncation is detectable.
        let (mut client, mut server) = tls_pair().await;
        client.sendall(b"hi").await.unwrap();
        client.get_ref().shutdown(Shutdown::Write).unwrap();
        assert!(!server.eof_without_close_notify());
        assert_eq!(server.recv(100).await.unwrap(), b"hi");
        let e = server.recv(100).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);

        // Opted in, at a record boundary: an ordinary EOF, also through SocketStream.
        let (mut client, mut server) = tls_pair().await;
        server.set_eof_without_close_notify(true);
        client.sendall(b"line\n").await.unwrap();
        client.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut s = server.as_stream();
        assert_eq!(s.read_line(100).await.unwrap(), b"line\n");
        assert_eq!(s.read_line(100).await.unwrap(), b"");

        // Opted in, inside a record (a header and part of a body): still an error.
        let (mut client, mut server) = tls_pair().await;
        server.set_eof_without_close_notify(true);
        client.sendall(b"whole").await.unwrap();
        client
            .get_ref()
            .sendall(&[0x17, 0x03, 0x03, 0x00, 0x40, 1, 2, 3])
            .await
            .unwrap();
        client.get_ref().shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.recv(100).await.unwrap(), b"whole");
        let e = server.recv(100).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    });
}
