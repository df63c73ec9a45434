//! The servers under test: an echo server through `run_server` (what `tcp_server` runs) and the
//! same echo over TLS through `run_tls_server`, both counting what their clients did.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use curio::net::tls::{TlsAcceptor, TlsStream, run_tls_server};
use curio::net::{TcpListener, TcpStream, run_server, tcp_server_socket};
use curio::{Task, spawn};

/// What the servers' clients did.
#[derive(Default)]
pub(crate) struct ServerStats {
    pub(crate) accepted: Cell<u64>,
    pub(crate) live: Cell<u64>,
    /// Clients that ended with the peer's end-of-file.
    pub(crate) eofs: Cell<u64>,
    /// Clients that ended with a reset or broken pipe (the load generator's resets).
    pub(crate) resets: Cell<u64>,
    /// Clients that ended with any other error: a violation.
    pub(crate) unexpected: Cell<u64>,
    pub(crate) first_unexpected: RefCell<Option<String>>,
}

/// Counts a client live while its handler runs, also when it is cancelled.
struct Client<'a>(&'a ServerStats);

impl<'a> Client<'a> {
    fn new(s: &'a ServerStats) -> Client<'a> {
        s.accepted.set(s.accepted.get() + 1);
        s.live.set(s.live.get() + 1);
        Client(s)
    }

    /// Records how the client ended.
    fn ended(&self, r: io::Result<()>) {
        let s = self.0;
        let counter = match &r {
            Ok(()) => &s.eofs,
            Err(e) if is_peer_gone(e) => &s.resets,
            Err(e) => {
                s.first_unexpected
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
                &s.unexpected
            }
        };
        counter.set(counter.get() + 1);
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

/// Whether `e` says the peer went away abruptly, which the load generator does on purpose.
fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// The echo loop over a plain stream: until end-of-file or an error.
async fn echo_plain(c: &TcpStream) -> io::Result<()> {
    loop {
        let data = c.recv(65536).await?;
        if data.is_empty() {
            return Ok(());
        }
        c.sendall(&data).await?;
    }
}

/// The echo loop over TLS: until the peer's `close_notify` (then ours) or an error.
async fn echo_tls(c: &mut TlsStream<TcpStream>) -> io::Result<()> {
    let mut buf = vec![0; 16384];
    loop {
        let n = c.recv_into(&mut buf).await?;
        if n == 0 {
            return c.close().await;
        }
        c.sendall(&buf[..n]).await?;
    }
}

/// The two servers, running as tasks of the current kernel.
pub(crate) struct Servers {
    pub(crate) plain: SocketAddr,
    pub(crate) tls: SocketAddr,
    tasks: Vec<Task<io::Result<()>>>,
}

impl Servers {
    /// Binds both listeners on `127.0.0.1:0` with a backlog of `backlog` and starts serving.
    pub(crate) fn start(stats: &Rc<ServerStats>, backlog: u32) -> io::Result<Servers> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let plain_listener: TcpListener = tcp_server_socket(any, backlog, true, false)?;
        let tls_listener: TcpListener = tcp_server_socket(any, backlog, true, false)?;
        let (plain, tls) = (plain_listener.local_addr()?, tls_listener.local_addr()?);
        let acceptor = TlsAcceptor::from_pem(crate::SERVER_PEM, crate::SERVER_KEY, &[])?;
        let s = stats.clone();
        let plain_task = spawn(run_server(plain_listener, move |c: TcpStream, _| {
            let s = s.clone();
            async move {
                let client = Client::new(&s);
                client.ended(echo_plain(&c).await);
            }
        }));
        let s = stats.clone();
        let tls_task = spawn(run_tls_server(
            tls_listener,
            acceptor,
            move |mut c: TlsStream<TcpStream>, _| {
                let s = s.clone();
                async move {
                    let client = Client::new(&s);
                    client.ended(echo_tls(&mut c).await);
                }
            },
        ));
        Ok(Servers {
            plain,
            tls,
            tasks: vec![plain_task, tls_task],
        })
    }

    /// Cancels both servers, which cancels their clients and waits for them.
    ///
    /// # Errors
    ///
    /// When a server had stopped on its own with an error before.
    pub(crate) async fn stop(self) -> Result<(), String> {
        for t in self.tasks {
            if t.is_terminated() {
                return Err(format!("a server stopped early: {:?}", t.join().await));
            }
            t.cancel().await;
        }
        Ok(())
    }
}
