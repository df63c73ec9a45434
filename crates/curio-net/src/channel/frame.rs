//! The frame reader: a decoder of length-prefixed frames that does no I/O.
//!
//! It knows nothing of sockets or of the handshake, so the connection and the property tests
//! drive the same code.

use std::fmt;
use std::io;

use super::error::ChannelError;

/// The length of a frame's header: the payload's length as a big-endian `u32`.
pub const HEADER_LEN: usize = 4;

/// A frame body starts with at most this much capacity and grows as its bytes arrive, so a
/// header that claims much more than the peer sends costs little memory.
const INITIAL_BODY: usize = 64 * 1024;

/// Decodes length-prefixed frames from a byte stream fed to it in arbitrary pieces.
///
/// A frame is a 4-byte big-endian unsigned length followed by that many bytes of payload (see the
/// [wire format](super#wire-format)). [`feed`](Self::feed) takes bytes up to the end of the
/// current frame and no further, so the decoder holds at most one frame; the caller keeps the rest
/// of its buffer for the next call. A header that claims more than the limit is an error before
/// anything is allocated for the body, and the body's capacity never exceeds its length.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::{run, spawn}; pub use curio_net::channel; }
/// use curio::channel::FrameDecoder;
///
/// let mut d = FrameDecoder::new(1024);
/// let stream = [0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
/// let mut pos = 0;
/// let mut frames = Vec::new();
/// while pos < stream.len() {
///     pos += d.feed(&stream[pos..])?;
///     if let Some(f) = d.next_frame() {
///         frames.push(f);
///     }
/// }
/// assert_eq!(frames, [b"hi".to_vec(), Vec::new()]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FrameDecoder {
    max_frame: usize,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// The payload's length, once the header is complete and within the limit.
    len: Option<usize>,
    body: Vec<u8>,
    /// A header that claimed this many bytes was refused; the stream cannot be resynchronised.
    refused: Option<u64>,
}

impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("max_frame", &self.max_frame)
            .field("frame_len", &self.len)
            .field("received", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame,
            header: [0; HEADER_LEN],
            header_len: 0,
            len: None,
            body: Vec::new(),
            refused: None,
        }
    }

    /// The largest payload accepted.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Changes the limit; it applies to headers not yet complete.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Takes bytes from the front of `data` up to the end of the current frame, and returns how
    /// many it took.
    ///
    /// It takes nothing while a complete frame waits for [`next_frame`](Self::next_frame).
    ///
    /// # Errors
    ///
    /// `InvalidData` carrying [`ChannelError::FrameTooLarge`] when a header claims more than the
    /// limit, then on every later call: the stream cannot be read further.
    pub fn feed(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(len) = self.refused {
            return Err(self.too_large(len));
        }
        let mut used = 0;
        let len = match self.len {
            Some(len) => len,
            None => {
                let take = (HEADER_LEN - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                used += take;
                if self.header_len < HEADER_LEN {
                    return Ok(used);
                }
                let claimed = u32::from_be_bytes(self.header);
                // The check comes before any allocation for the body.
                let len = match usize::try_from(claimed) {
                    Ok(len) if len <= self.max_frame => len,
                    _ => {
                        self.refused = Some(u64::from(claimed));
                        return Err(self.too_large(u64::from(claimed)));
                    }
                };
                self.body = Vec::with_capacity(len.min(INITIAL_BODY));
                self.len = Some(len);
                len
            }
        };
        let take = (len - self.body.len()).min(data.len() - used);
        let need = self.body.len() + take;
        if need > self.body.capacity() {
            // Doubling, but never past the frame's length.
            let target = need.max(self.body.capacity().saturating_mul(2)).min(len);
            self.body.reserve_exact(target - self.body.len());
        }
        self.body.extend_from_slice(&data[used..used + take]);
        Ok(used + take)
    }

    /// The length of the frame being received, once its header is complete.
    pub fn frame_len(&self) -> Option<usize> {
        self.len
    }

    /// Whether a complete frame waits for [`next_frame`](Self::next_frame).
    pub fn has_frame(&self) -> bool {
        self.len == Some(self.body.len())
    }

    /// Whether the decoder is between frames: no byte of a next frame has been fed.
    pub fn is_idle(&self) -> bool {
        self.header_len == 0 && self.refused.is_none()
    }

    /// Takes the complete frame, if there is one.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        if !self.has_frame() {
            return None;
        }
        self.len = None;
        self.header_len = 0;
        Some(std::mem::take(&mut self.body))
    }

    /// The bytes of heap memory the decoder holds (the body's capacity); never more than the
    /// current frame's length.
    pub fn allocated(&self) -> usize {
        self.body.capacity()
    }

    fn too_large(&self, len: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            ChannelError::FrameTooLarge {
                len,
                max: self.max_frame,
            },
        )
    }
}

/// The header of a frame of `len` bytes.
pub(super) fn header(len: usize) -> Option<[u8; HEADER_LEN]> {
    u32::try_from(len).ok().map(u32::to_be_bytes)
}
