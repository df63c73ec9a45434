//! The channel's error payload, carried inside `io::Error`s.

use std::error::Error;
use std::fmt;
use std::io;

/// What went wrong in a channel, beyond the socket's own errors.
///
/// Channel operations return `io::Error`s; those the channel itself raises carry a
/// `ChannelError` ([`ChannelError::of`] finds it) and have the kind listed on each variant.
/// Curio raises `AuthenticationError` for the first two.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
/// use curio::channel::ChannelError;
/// use std::io;
///
/// let e = io::Error::new(io::ErrorKind::PermissionDenied, ChannelError::DigestReceivedWrong);
/// assert_eq!(ChannelError::of(&e), Some(&ChannelError::DigestReceivedWrong));
/// assert!(ChannelError::of(&e).unwrap().is_authentication());
/// assert_eq!(e.to_string(), "digest received was wrong");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer's answer to our challenge was wrong: it does not have our key
    /// (`PermissionDenied`).
    DigestReceivedWrong,
    /// The peer rejected our answer to its challenge: we do not have its key
    /// (`PermissionDenied`).
    DigestSentRejected,
    /// The peer sent something that is not part of the handshake (`InvalidData`).
    BadHandshake,
    /// The handshake did not finish within the time allowed (`TimedOut`).
    HandshakeTimedOut,
    /// A frame's header claimed `len` bytes, more than the limit `max`: received, this closes the
    /// connection (`InvalidData`); sent, nothing was sent (`InvalidInput`).
    FrameTooLarge {
        /// The length claimed or asked for.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// `recv_bytes_into`'s buffer has room for `room` bytes and the next message has `len`;
    /// the message stays queued (`InvalidInput`).
    MessageTooLargeToFit {
        /// The message's length.
        len: usize,
        /// The room left in the buffer after the offset.
        room: usize,
    },
    /// An earlier `send` was dropped or failed after part of its frame went out, so the stream
    /// cannot carry another frame (`BrokenPipe`).
    BrokenFrame,
}

impl ChannelError {
    /// The `ChannelError` inside `e`, if the channel raised it.
    pub fn of(e: &io::Error) -> Option<&ChannelError> {
        e.get_ref()?.downcast_ref()
    }

    /// Whether this is a failed authentication (Curio's `AuthenticationError`).
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            ChannelError::DigestReceivedWrong | ChannelError::DigestSentRejected
        )
    }

    pub(crate) fn into_io(self) -> io::Error {
        let kind = match self {
            ChannelError::DigestReceivedWrong | ChannelError::DigestSentRejected => {
                io::ErrorKind::PermissionDenied
            }
            ChannelError::BadHandshake => io::ErrorKind::InvalidData,
            ChannelError::HandshakeTimedOut => io::ErrorKind::TimedOut,
            ChannelError::FrameTooLarge { .. } => io::ErrorKind::InvalidData,
            ChannelError::MessageTooLargeToFit { .. } => io::ErrorKind::InvalidInput,
            ChannelError::BrokenFrame => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::DigestReceivedWrong => f.write_str("digest received was wrong"),
            ChannelError::DigestSentRejected => f.write_str("digest sent was rejected"),
            ChannelError::BadHandshake => f.write_str("unexpected message in the handshake"),
            ChannelError::HandshakeTimedOut => f.write_str("handshake timed out"),
            ChannelError::FrameTooLarge { len, max } => {
                write!(f, "message too large: {len} bytes, the limit is {max}")
            }
            ChannelError::MessageTooLargeToFit { len, room } => write!(
                f,
                "message is too large to fit: {len} bytes, room for {room}"
            ),
            ChannelError::BrokenFrame => {
                f.write_str("an earlier send stopped in the middle of a frame")
            }
        }
    }
}

impl Error for ChannelError {}
