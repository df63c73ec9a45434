//! Socket options: each setter's value reads back through its getter.

use std::os::fd::AsFd;

use curio_net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};

/// What every test asks for: large enough to be above Linux's minimum (4608 for `SO_SNDBUF`),
/// small enough to be below the default `wmem_max` and `rmem_max`.
const BUFFER: usize = 64 * 1024;

#[test]
fn tcp_stream_options_read_back() {
    curio_kernel::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();

        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        s.set_nodelay(false).unwrap();
        assert!(!s.nodelay().unwrap());

        s.set_keepalive(true).unwrap();
        assert!(s.keepalive().unwrap());
        s.set_keepalive(false).unwrap();
        assert!(!s.keepalive().unwrap());

        s.set_ttl(17).unwrap();
        assert_eq!(s.ttl().unwrap(), 17);

        // Linux doubles both buffer sizes for its bookkeeping: assert at least what was set.
        s.set_send_buffer_size(BUFFER).unwrap();
        assert!(s.send_buffer_size().unwrap() >= BUFFER);
        s.set_recv_buffer_size(BUFFER).unwrap();
        assert!(s.recv_buffer_size().unwrap() >= BUFFER);
    });
}

#[test]
fn unix_stream_buffer_sizes_read_back() {
    curio_kernel::run(async {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_send_buffer_size(BUFFER).unwrap();
        assert!(a.send_buffer_size().unwrap() >= BUFFER);
        a.set_recv_buffer_size(BUFFER).unwrap();
        assert!(a.recv_buffer_size().unwrap() >= BUFFER);
    });
}

#[test]
fn datagram_buffer_sizes_read_back() {
    curio_kernel::run(async {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_send_buffer_size(BUFFER).unwrap();
        assert!(udp.send_buffer_size().unwrap() >= BUFFER);
        udp.set_recv_buffer_size(BUFFER).unwrap();
        assert!(udp.recv_buffer_size().unwrap() >= BUFFER);

        let (unix, _other) = UnixDatagram::pair().unwrap();
        unix.set_send_buffer_size(BUFFER).unwrap();
        assert!(unix.send_buffer_size().unwrap() >= BUFFER);
        unix.set_recv_buffer_size(BUFFER).unwrap();
        assert!(unix.recv_buffer_size().unwrap() >= BUFFER);
    });
}

/// The escape hatch the docs promise: any option through `rustix` on the socket's descriptor.
#[test]
fn any_option_through_as_fd() {
    curio_kernel::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        rustix::net::sockopt::set_socket_linger(s.as_fd(), Some(std::time::Duration::ZERO))
            .unwrap();
        assert_eq!(
            rustix::net::sockopt::socket_linger(s.as_fd()).unwrap(),
            Some(std::time::Duration::ZERO)
        );
        // The curio setters and rustix see the same socket.
        rustix::net::sockopt::set_tcp_nodelay(s.as_fd(), true).unwrap();
        assert!(s.nodelay().unwrap());
    });
}
