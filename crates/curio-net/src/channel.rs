//! Authenticated message passing between programs (Curio's `curio.channel`).
//!
//! A [`Channel`] listens on a TCP or Unix address; [`Channel::connect`] reaches it. Both sides
//! hold the same secret key and prove it to each other before any message passes, and each side
//! then holds a [`Connection`] that sends and receives whole messages: bytes with
//! [`send_bytes`](Connection::send_bytes) and [`recv_bytes`](Connection::recv_bytes), or any
//! serde type with [`send`](Connection::send) and [`recv`](Connection::recv) (encoded with
//! postcard). One task may read while another writes.
//!
//! # Limits
//!
//! A received frame longer than the connection's limit ([`ChannelOptions::max_frame`], 64 MiB by
//! default) is refused as soon as its header arrives, before anything is allocated for it, and
//! the connection is closed. During the handshake the limit is [`HANDSHAKE_MAX_FRAME`] bytes, and
//! the whole handshake must finish within [`ChannelOptions::handshake_timeout`]. The listener
//! runs each handshake in a task of its own on the current kernel, so a silent or slow client
//! never delays the others, and a client that fails is dropped while the listener keeps
//! serving; dropping the channel cancels the handshakes still running.
//!
//! # Wire format
//!
//! The format is curio-rt's own. Every message is a frame: a 4-byte big-endian unsigned length
//! `n`, then `n` bytes of payload. A typed message's payload is its postcard encoding.
//!
//! Right after the connection is made, both sides authenticate each other with frames of at
//! most [`HANDSHAKE_MAX_FRAME`] bytes, the server first (`K` is the key, `HMAC` is HMAC-SHA256,
//! `‖` concatenation):
//!
//! 1. server → client: `#CHALLENGE#curio-rt/1#` ‖ `Cs`, 32 random bytes;
//! 2. client → server: `HMAC(K, "curio-rt/1 client" ‖ Cs)`, 32 bytes;
//! 3. server → client: `#WELCOME#` if that digest is right, else `#FAILURE#`, and the server
//!    closes the connection;
//! 4. client → server: `#CHALLENGE#curio-rt/1#` ‖ `Cc`, 32 random bytes;
//! 5. server → client: `HMAC(K, "curio-rt/1 server" ‖ Cc)`;
//! 6. client → server: `#WELCOME#` or `#FAILURE#`.
//!
//! Digests are verified in constant time. The labels bind each digest to the side that computes
//! it, so a digest taken from one direction is no answer in the other.
//!
//! Curio's format differs, and so does Python's `multiprocessing.connection`, which Curio
//! follows: a signed length, a 20-byte challenge answered with HMAC-MD5 before Python 3.12, and
//! another challenge format (a digest name before the digest) since. There is no compatibility
//! mode: a curio-rt channel talks to curio-rt channels.
//!
//! # Examples
//!
//! ```
//! # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
//! use curio::channel::Channel;
//!
//! curio::run(async {
//!     let channel = Channel::bind("127.0.0.1:0", b"secret")?;
//!     let addr = channel.local_addr()?;
//!     let server = curio::spawn(async move {
//!         let conn = channel.accept().await?;
//!         let (n, word): (u32, String) = conn.recv().await?;
//!         conn.send(&word.repeat(n as usize)).await
//!     });
//!     let conn = Channel::connect(addr, b"secret").await?;
//!     conn.send(&(2u32, "ab")).await?;
//!     assert_eq!(conn.recv::<String>().await?, "abab");
//!     server.join().await.unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod error;
mod frame;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use curio_kernel::Task;
use futures_core::Stream;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ChannelError;
pub use frame::{FrameDecoder, HEADER_LEN};

use crate::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The largest frame either side accepts during the handshake.
pub const HANDSHAKE_MAX_FRAME: usize = 256;

/// The length of a challenge's random part.
pub const CHALLENGE_LEN: usize = 32;

const CHALLENGE: &[u8] = b"#CHALLENGE#curio-rt/1#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const CLIENT_LABEL: &[u8] = b"curio-rt/1 client";
const SERVER_LABEL: &[u8] = b"curio-rt/1 server";

/// Frames shorter than this go out in one write with their header; longer ones in two, which
/// saves copying them.
const COALESCE: usize = 16 * 1024;

/// What one `recv` asks of the socket at most.
const READ_CHUNK: usize = 64 * 1024;

/// How many rejected handshakes a [`Channel`] remembers for [`Channel::take_rejected`].
const REJECTED_KEPT: usize = 64;

/// The settings of a [`Channel`] and of the connections it makes.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
/// use curio::channel::ChannelOptions;
/// use std::time::Duration;
///
/// let opts = ChannelOptions::default()
///     .handshake_timeout(Duration::from_secs(1))
///     .max_frame(1 << 20);
/// assert_eq!(opts.max_frame, 1 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// How long the whole handshake may take (5 s by default); a peer that has not finished by
    /// then is dropped. It is measured on the kernel's clock: a virtual clock jumps past it as
    /// soon as the sockets are quiet, so on a virtual clock a peer in another thread or process
    /// is unlikely to finish in time.
    pub handshake_timeout: Duration,
    /// The largest message received (64 MiB by default) or sent; at most `u32::MAX`, the largest
    /// length a header can carry.
    pub max_frame: usize,
    /// How many handshakes [`Channel::accept`] runs at once (64 by default); further clients
    /// wait in the listen backlog.
    pub max_handshakes: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            handshake_timeout: Duration::from_secs(5),
            max_frame: 64 << 20,
            max_handshakes: 64,
        }
    }
}

impl ChannelOptions {
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, d: Duration) -> ChannelOptions {
        self.handshake_timeout = d;
        self
    }

    /// Sets [`max_frame`](Self::max_frame).
    pub fn max_frame(mut self, n: usize) -> ChannelOptions {
        self.max_frame = n;
        self
    }

    /// Sets [`max_handshakes`](Self::max_handshakes) (at least 1).
    pub fn max_handshakes(mut self, n: usize) -> ChannelOptions {
        self.max_handshakes = n.max(1);
        self
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// What the handshake tasks hand to [`Channel::accept`].
#[derive(Default)]
struct Accepted {
    ready: VecDeque<Connection>,
    rejected: VecDeque<io::Error>,
    /// Handshakes running.
    running: usize,
    /// The task waiting in `accept`.
    waker: Option<Waker>,
}

/// A listening channel: it accepts connections and authenticates them (Curio's `Channel`).
///
/// # Examples
///
/// See the [module](self) docs.
pub struct Channel {
    listener: Listener,
    key: hmac::Key,
    opts: ChannelOptions,
    accepted: Rc<RefCell<Accepted>>,
    /// One task per handshake, so handshakes progress while nobody waits in `accept`; they are
    /// cancelled with the channel.
    handshakes: RefCell<Vec<Task<()>>>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        for t in self.handshakes.get_mut().drain(..) {
            t.cancel_nowait();
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Channel");
        match &self.listener {
            Listener::Tcp(l) => d.field("listener", l),
            Listener::Unix(l) => d.field("listener", l),
        };
        d.field("opts", &self.opts).finish_non_exhaustive()
    }
}

impl Channel {
    /// Listens on a TCP address with the default [`ChannelOptions`]; use port 0 and
    /// [`local_addr`](Self::local_addr) to get a free port.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    pub fn bind(addr: impl ToSocketAddrs, key: &[u8]) -> io::Result<Channel> {
        Channel::bind_with(addr, key, ChannelOptions::default())
    }

    /// Listens on a TCP address with the given options.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    pub fn bind_with(
        addr: impl ToSocketAddrs,
        key: &[u8],
        opts: ChannelOptions,
    ) -> io::Result<Channel> {
        Ok(Channel::new(
            Listener::Tcp(TcpListener::bind(addr)?),
            key,
            opts,
        ))
    }

    /// Listens on a Unix socket path with the default options.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`].
    pub fn bind_unix(path: impl AsRef<Path>, key: &[u8]) -> io::Result<Channel> {
        Channel::bind_unix_with(path, key, ChannelOptions::default())
    }

    /// Listens on a Unix socket path with the given options.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`].
    pub fn bind_unix_with(
        path: impl AsRef<Path>,
        key: &[u8],
        opts: ChannelOptions,
    ) -> io::Result<Channel> {
        Ok(Channel::new(
            Listener::Unix(UnixListener::bind(path)?),
            key,
            opts,
        ))
    }

    fn new(listener: Listener, key: &[u8], opts: ChannelOptions) -> Channel {
        Channel {
            listener,
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            opts,
            accepted: Rc::default(),
            handshakes: RefCell::new(Vec::new()),
        }
    }

    /// The TCP address the channel listens on.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a Unix channel; otherwise as `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix channel has no TCP address",
            )),
        }
    }

    /// The options the channel was made with.
    pub fn options(&self) -> &ChannelOptions {
        &self.opts
    }

    /// Waits for a client that completes the handshake, and returns its connection.
    ///
    /// `accept` takes clients from the listen backlog and authenticates each in a task of its
    /// own, up to [`ChannelOptions::max_handshakes`] at once (counting connections that finished
    /// their handshake and wait for `accept`), each within
    /// [`ChannelOptions::handshake_timeout`]. A client that fails, stalls or closes is dropped,
    /// its error is kept for [`take_rejected`](Self::take_rejected), and `accept` goes on
    /// waiting; a silent client never delays the others.
    ///
    /// # Errors
    ///
    /// Errors of `accept(2)` itself, such as running out of descriptors; the channel remains
    /// usable.
    ///
    /// # Panics
    ///
    /// When polled outside a curio task.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the handshakes run on, and a connection is taken only by the poll that
    /// returns it.
    pub async fn accept(&self) -> io::Result<Connection> {
        enum Incoming<'a> {
            Tcp(crate::Incoming<'a>),
            Unix(crate::UnixIncoming<'a>),
        }
        let mut incoming = match &self.listener {
            Listener::Tcp(l) => Incoming::Tcp(l.incoming()),
            Listener::Unix(l) => Incoming::Unix(l.incoming()),
        };
        poll_fn(|cx| {
            let mut accepted = self.accepted.borrow_mut();
            if let Some(conn) = accepted.ready.pop_front() {
                return Poll::Ready(Ok(conn));
            }
            accepted.waker = Some(cx.waker().clone());
            while accepted.running + accepted.ready.len() < self.opts.max_handshakes {
                let next = match &mut incoming {
                    Incoming::Tcp(i) => Pin::new(i)
                        .poll_next(cx)
                        .map(|r| r.map(|r| r.map(|(s, _)| Transport::Tcp(s)))),
                    Incoming::Unix(i) => Pin::new(i)
                        .poll_next(cx)
                        .map(|r| r.map(|r| r.map(|(s, _)| Transport::Unix(s)))),
                };
                match next {
                    Poll::Ready(Some(Ok(io))) => {
                        accepted.running += 1;
                        self.start_handshake(Connection::new(io, self.opts.max_frame));
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    // An accept stream never ends.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            Poll::Pending
        })
        .await
    }

    fn start_handshake(&self, conn: Connection) {
        let key = self.key.clone();
        let timeout = self.opts.handshake_timeout;
        let accepted = self.accepted.clone();
        let task = curio_kernel::spawn(async move {
            let r = within(timeout, conn.server_handshake(&key)).await;
            let mut accepted = accepted.borrow_mut();
            accepted.running -= 1;
            match r {
                Ok(()) => accepted.ready.push_back(conn),
                Err(e) => {
                    if accepted.rejected.len() == REJECTED_KEPT {
                        accepted.rejected.pop_front();
                    }
                    accepted.rejected.push_back(e);
                }
            }
            // A connection to take, or room for another handshake.
            if let Some(w) = accepted.waker.take() {
                w.wake();
            }
        });
        let mut handshakes = self.handshakes.borrow_mut();
        handshakes.retain(|t| !t.is_terminated());
        handshakes.push(task);
    }

    /// The errors of the handshakes that [`accept`](Self::accept) rejected since the last call,
    /// oldest first (the last 64 are kept).
    pub fn take_rejected(&self) -> Vec<io::Error> {
        self.accepted.borrow_mut().rejected.drain(..).collect()
    }

    /// Connects to a channel on a TCP address and authenticates, with the default options.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::connect`]; a failed handshake gives an error carrying a
    /// [`ChannelError`]: `DigestSentRejected` when the server has another key,
    /// `HandshakeTimedOut` when it does not answer in time.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection being made.
    pub async fn connect(addr: impl ToSocketAddrs, key: &[u8]) -> io::Result<Connection> {
        Channel::connect_with(addr, key, &ChannelOptions::default()).await
    }

    /// Connects to a channel on a TCP address with the given options.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection being made.
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        key: &[u8],
        opts: &ChannelOptions,
    ) -> io::Result<Connection> {
        let s = TcpStream::connect(addr).await?;
        Connection::new(Transport::Tcp(s), opts.max_frame)
            .client_handshake(key, opts)
            .await
    }

    /// Connects to a channel on a Unix socket path, with the default options.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), with [`UnixStream::connect`]'s errors.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection being made.
    pub async fn connect_unix(path: impl AsRef<Path>, key: &[u8]) -> io::Result<Connection> {
        Channel::connect_unix_with(path, key, &ChannelOptions::default()).await
    }

    /// Connects to a channel on a Unix socket path with the given options.
    ///
    /// # Errors
    ///
    /// As [`connect_unix`](Self::connect_unix).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection being made.
    pub async fn connect_unix_with(
        path: impl AsRef<Path>,
        key: &[u8],
        opts: &ChannelOptions,
    ) -> io::Result<Connection> {
        let s = UnixStream::connect(path).await?;
        Connection::new(Transport::Unix(s), opts.max_frame)
            .client_handshake(key, opts)
            .await
    }
}

/// Runs `fut` for at most `d` on the kernel's clock.
async fn within<T>(d: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    curio_kernel::timeout_after(d, fut)
        .await
        .unwrap_or_else(|_| Err(ChannelError::HandshakeTimedOut.into_io()))
}

enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Transport {
    async fn recv_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.recv_into(buf).await,
            Transport::Unix(s) => s.recv_into(buf).await,
        }
    }

    async fn sendall_counted(&self, data: &[u8], sent: &Cell<usize>) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.sendall_counted(data, sent).await,
            Transport::Unix(s) => s.sendall_counted(data, sent).await,
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.shutdown(how),
            Transport::Unix(s) => s.shutdown(how),
        }
    }
}

/// What the reading side keeps between calls, so a cancelled read loses nothing.
struct ReadState {
    decoder: FrameDecoder,
    /// Bytes received and not yet fed are `chunk[pos..end]`. While a read waits, the chunk is
    /// taken out (it holds nothing unread then) and a dropped read merely frees it.
    chunk: Vec<u8>,
    pos: usize,
    end: usize,
}

/// One end of an authenticated channel: sends and receives whole messages.
///
/// All methods take `&self`: one task may receive while another sends (share the connection
/// with an `Rc`). Two tasks receiving (or sending) at once get `io::ErrorKind::ResourceBusy`
/// from the socket.
///
/// # Examples
///
/// See the [module](self) docs; [`Connection::pair`] makes two connected ends without a
/// handshake.
pub struct Connection {
    io: Transport,
    read: RefCell<ReadState>,
    max_frame: Cell<usize>,
    /// Set when a send stopped in the middle of a frame.
    broken: Cell<bool>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Connection");
        match &self.io {
            Transport::Tcp(s) => d.field("stream", s),
            Transport::Unix(s) => d.field("stream", s),
        };
        d.field("max_frame", &self.max_frame.get())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(io: Transport, max_frame: usize) -> Connection {
        Connection {
            io,
            read: RefCell::new(ReadState {
                decoder: FrameDecoder::new(max_frame),
                chunk: Vec::new(),
                pos: 0,
                end: 0,
            }),
            max_frame: Cell::new(max_frame),
            broken: Cell::new(false),
        }
    }

    /// A connection over a TCP stream, not yet authenticated (Curio's `Connection(reader,
    /// writer)`), with the default limit.
    pub fn from_tcp(s: TcpStream) -> Connection {
        Connection::new(Transport::Tcp(s), ChannelOptions::default().max_frame)
    }

    /// A connection over a Unix stream, not yet authenticated, with the default limit.
    pub fn from_unix(s: UnixStream) -> Connection {
        Connection::new(Transport::Unix(s), ChannelOptions::default().max_frame)
    }

    /// Two connected ends over a Unix socket pair, not authenticated.
    ///
    /// # Errors
    ///
    /// As `socketpair`.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
    /// use curio::channel::Connection;
    ///
    /// curio::run(async {
    ///     let (a, b) = Connection::pair()?;
    ///     a.send_bytes(b"hello").await?;
    ///     assert_eq!(b.recv_bytes().await?, b"hello");
    ///     std::io::Result::Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(Connection, Connection)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Connection::from_unix(a), Connection::from_unix(b)))
    }

    /// The largest message this end sends or receives.
    pub fn max_frame(&self) -> usize {
        self.max_frame.get()
    }

    /// Changes the largest message this end sends or receives.
    pub fn set_max_frame(&self, n: usize) {
        self.max_frame.set(n);
        self.read.borrow_mut().decoder.set_max_frame(n);
    }

    /// Proves to the peer, which calls [`authenticate_client`](Self::authenticate_client), that
    /// this end has `key`, and checks that the peer has it (Curio's `authenticate_server`),
    /// without a time limit: wrap it in `timeout_after` for one.
    ///
    /// # Errors
    ///
    /// An error carrying a [`ChannelError`] when authentication fails (`DigestReceivedWrong`:
    /// the peer has another key) or the peer breaks the protocol; socket errors;
    /// `UnexpectedEof` when the peer closes.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped handshake leaves the connection in an unknown state; drop it.
    pub async fn authenticate_server(&self, key: &[u8]) -> io::Result<()> {
        self.server_handshake(&hmac::Key::new(hmac::HMAC_SHA256, key))
            .await
    }

    /// The client's side of [`authenticate_server`](Self::authenticate_server) (Curio's
    /// `authenticate_client`).
    ///
    /// # Errors
    ///
    /// As [`authenticate_server`](Self::authenticate_server); `DigestSentRejected` when the
    /// server has another key.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped handshake leaves the connection in an unknown state; drop it.
    pub async fn authenticate_client(&self, key: &[u8]) -> io::Result<()> {
        self.client_handshake_inner(&hmac::Key::new(hmac::HMAC_SHA256, key))
            .await
    }

    async fn client_handshake(self, key: &[u8], opts: &ChannelOptions) -> io::Result<Connection> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        within(opts.handshake_timeout, self.client_handshake_inner(&key)).await?;
        Ok(self)
    }

    async fn server_handshake(&self, key: &hmac::Key) -> io::Result<()> {
        self.with_handshake_limit(async {
            self.deliver_challenge(key, CLIENT_LABEL).await?;
            self.answer_challenge(key, SERVER_LABEL).await
        })
        .await
    }

    async fn client_handshake_inner(&self, key: &hmac::Key) -> io::Result<()> {
        self.with_handshake_limit(async {
            self.answer_challenge(key, CLIENT_LABEL).await?;
            self.deliver_challenge(key, SERVER_LABEL).await
        })
        .await
    }

    async fn with_handshake_limit(
        &self,
        handshake: impl Future<Output = io::Result<()>>,
    ) -> io::Result<()> {
        let max = self.max_frame.get();
        self.read
            .borrow_mut()
            .decoder
            .set_max_frame(HANDSHAKE_MAX_FRAME);
        let r = handshake.await;
        self.read.borrow_mut().decoder.set_max_frame(max);
        if r.is_err() {
            // A failed handshake ends the connection; the peer learns it at once.
            let _ = self.io.shutdown(Shutdown::Both);
        }
        r
    }

    /// Sends a challenge and checks the peer's digest, labelled `label`.
    async fn deliver_challenge(&self, key: &hmac::Key, label: &[u8]) -> io::Result<()> {
        let mut challenge = [0; CHALLENGE_LEN];
        SystemRandom::new()
            .fill(&mut challenge)
            .map_err(|_| io::Error::other("no randomness for the channel's challenge"))?;
        self.send_bytes(&[CHALLENGE, &challenge].concat()).await?;
        let digest = self.recv_bytes().await?;
        let msg = [label, &challenge].concat();
        if hmac::verify(key, &msg, &digest).is_ok() {
            self.send_bytes(WELCOME).await
        } else {
            self.send_bytes(FAILURE).await?;
            Err(ChannelError::DigestReceivedWrong.into_io())
        }
    }

    /// Answers the peer's challenge with a digest labelled `label`.
    async fn answer_challenge(&self, key: &hmac::Key, label: &[u8]) -> io::Result<()> {
        let msg = self.recv_bytes().await?;
        let challenge = match msg.strip_prefix(CHALLENGE) {
            Some(c) if c.len() == CHALLENGE_LEN => c,
            _ => return Err(ChannelError::BadHandshake.into_io()),
        };
        let digest = hmac::sign(key, &[label, challenge].concat());
        self.send_bytes(digest.as_ref()).await?;
        match &self.recv_bytes().await?[..] {
            WELCOME => Ok(()),
            FAILURE => Err(ChannelError::DigestSentRejected.into_io()),
            _ => Err(ChannelError::BadHandshake.into_io()),
        }
    }

    /// Sends `data` as one message and returns when it has all been written to the socket.
    ///
    /// # Errors
    ///
    /// `InvalidInput` carrying [`ChannelError::FrameTooLarge`] when `data` is longer than
    /// [`max_frame`](Self::max_frame) (nothing is sent); `BrokenPipe` carrying
    /// [`ChannelError::BrokenFrame`] after an earlier send stopped half-way; the socket's errors
    /// (`ResourceBusy` if another task is sending).
    ///
    /// # Cancel safety
    ///
    /// Dropped before any byte went out, nothing happened. Dropped after, the peer has part of
    /// a frame, and every later send fails with `BrokenFrame`: close the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
    /// # curio::run(async {
    /// let (a, b) = curio::channel::Connection::pair()?;
    /// a.send_bytes(&b"0123456789"[2..5]).await?; // Curio's offset and size are a slice
    /// assert_eq!(b.recv_bytes().await?, b"234");
    /// # std::io::Result::Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send_bytes(&self, data: &[u8]) -> io::Result<()> {
        if self.broken.get() {
            return Err(ChannelError::BrokenFrame.into_io());
        }
        let max = self.max_frame.get();
        let header = match frame::header(data.len()) {
            Some(h) if data.len() <= max => h,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    ChannelError::FrameTooLarge {
                        len: data.len() as u64,
                        max,
                    },
                ));
            }
        };
        struct Partial<'a> {
            sent: Cell<usize>,
            done: bool,
            broken: &'a Cell<bool>,
        }
        impl Drop for Partial<'_> {
            fn drop(&mut self) {
                if !self.done && self.sent.get() > 0 {
                    self.broken.set(true);
                }
            }
        }
        let mut partial = Partial {
            sent: Cell::new(0),
            done: false,
            broken: &self.broken,
        };
        if data.len() < COALESCE {
            let frame = [&header[..], data].concat();
            self.io.sendall_counted(&frame, &partial.sent).await?;
        } else {
            self.io.sendall_counted(&header, &partial.sent).await?;
            self.io.sendall_counted(data, &partial.sent).await?;
        }
        partial.done = true;
        Ok(())
    }

    /// Receives the next message.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` when the peer closed the connection (Curio's `EOFError`), even between
    /// messages; `InvalidData` carrying [`ChannelError::FrameTooLarge`] when the message is
    /// longer than [`max_frame`](Self::max_frame): the connection is then shut down, nothing was
    /// allocated for it, and every later receive fails; the socket's errors (`ResourceBusy` if
    /// another task is receiving).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the bytes of a message received so far stay in the connection, and the next
    /// call returns the whole message.
    pub async fn recv_bytes(&self) -> io::Result<Vec<u8>> {
        self.fill(false).await?;
        Ok(self
            .read
            .borrow_mut()
            .decoder
            .next_frame()
            .expect("fill returned without a frame"))
    }

    /// Receives the next message into `buf[offset..]` and returns its length.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `offset > buf.len()`; `InvalidInput` carrying
    /// [`ChannelError::MessageTooLargeToFit`] when the message is longer than
    /// `buf.len() - offset`, and then the message stays queued for the next receive (Curio
    /// drains it); otherwise as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
    /// use curio::channel::{ChannelError, Connection};
    ///
    /// # curio::run(async {
    /// let (a, b) = Connection::pair()?;
    /// a.send_bytes(b"hello").await?;
    /// let mut buf = [0; 8];
    /// let e = b.recv_bytes_into(&mut buf, 4).await.unwrap_err();
    /// assert_eq!(
    ///     ChannelError::of(&e),
    ///     Some(&ChannelError::MessageTooLargeToFit { len: 5, room: 4 })
    /// );
    /// assert_eq!(b.recv_bytes_into(&mut buf, 2).await?, 5);
    /// assert_eq!(&buf[2..7], b"hello");
    /// # std::io::Result::Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_bytes_into(&self, buf: &mut [u8], offset: usize) -> io::Result<usize> {
        if offset > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer length < offset",
            ));
        }
        let room = buf.len() - offset;
        self.fill(true).await?;
        let len = self
            .read
            .borrow()
            .decoder
            .frame_len()
            .expect("fill returned without a header");
        if len > room {
            return Err(ChannelError::MessageTooLargeToFit { len, room }.into_io());
        }
        let frame = self.recv_bytes().await?;
        buf[offset..offset + len].copy_from_slice(&frame);
        Ok(len)
    }

    /// Sends `value` encoded with postcard as one message.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `value` cannot be encoded; as [`send_bytes`](Self::send_bytes).
    ///
    /// # Cancel safety
    ///
    /// As [`send_bytes`](Self::send_bytes).
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let bytes = postcard::to_stdvec(value)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send_bytes(&bytes).await
    }

    /// Receives a message and decodes it from postcard as a `T`.
    ///
    /// # Errors
    ///
    /// `InvalidData` when the message is not a `T` (the message is consumed); as
    /// [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`recv_bytes`](Self::recv_bytes).
    pub async fn recv<T: DeserializeOwned>(&self) -> io::Result<T> {
        let bytes = self.recv_bytes().await?;
        postcard::from_bytes(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Shuts the connection down in both directions: the peer's receives end with
    /// `UnexpectedEof`, and so do this end's. Dropping the connection closes it too.
    ///
    /// # Errors
    ///
    /// As `shutdown(2)`, such as `NotConnected` when the peer has already reset the connection.
    pub fn close(&self) -> io::Result<()> {
        self.io.shutdown(Shutdown::Both)
    }

    /// Receives until a whole frame is buffered, or with `header_only` until its length is
    /// known.
    async fn fill(&self, header_only: bool) -> io::Result<()> {
        loop {
            let mut chunk = {
                let mut st = self.read.borrow_mut();
                let st = &mut *st;
                loop {
                    if st.decoder.has_frame() || (header_only && st.decoder.frame_len().is_some()) {
                        return Ok(());
                    }
                    if st.pos == st.end {
                        break;
                    }
                    match st.decoder.feed(&st.chunk[st.pos..st.end]) {
                        Ok(n) => st.pos += n,
                        Err(e) => {
                            // The stream cannot be resynchronised after a refused header.
                            let _ = self.io.shutdown(Shutdown::Both);
                            return Err(e);
                        }
                    }
                }
                std::mem::take(&mut st.chunk)
            };
            if chunk.is_empty() {
                chunk = vec![0; READ_CHUNK];
            }
            let n = self.io.recv_into(&mut chunk).await?;
            let mut st = self.read.borrow_mut();
            st.chunk = chunk;
            st.pos = 0;
            st.end = n;
            if n == 0 {
                let what = if st.decoder.is_idle() {
                    "the channel's peer closed the connection"
                } else {
                    "the channel's peer closed the connection in the middle of a message"
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
            }
        }
    }
}
