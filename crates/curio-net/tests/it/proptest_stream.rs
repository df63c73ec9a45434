//! Property tests of `SocketStream`'s buffered reads against a model of the byte stream.
//!
//! Arbitrary bytes (lines of any length, with or without a final newline) are delivered in
//! arbitrary chunks, either by a scripted in-memory stream that returns exactly one chunk per
//! read and can answer `Pending` between chunks, or through a real `UnixStream` pair by a writer
//! task that writes the chunks and yields between some of them.
//! A reader runs a random sequence of `read_line`, `lines`, `read_exactly`, `read`, and polls of
//! `read_line` or `read_exactly` that are dropped after one poll, then `read_all` or `read_lines`.
//! Each call must return what the model says, whatever the chunking:
//!
//! - `read_line(max)`: the next line with its `\n` if it is at most `max` bytes; else
//!   `InvalidData` with nothing consumed, once `max` bytes without a newline are there; at
//!   end-of-file, the partial last line (shorter than `max`), then empty.
//! - `lines(max)`: the same lines, ending at end-of-file, or an `InvalidData` item.
//! - `read_exactly(n)`: `n` bytes, or at end-of-file `UnexpectedEof` carrying an `IncompleteRead`
//!   with everything that was left.
//! - `read(max)`: a non-empty prefix of at most `max` bytes, empty only at end-of-file.
//! - A read dropped after one `Pending` poll consumed nothing; one that was ready counts.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use curio_kernel::{spawn, yield_now};
use curio_net::{IncompleteRead, SocketStream, UnixStream};
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// A read side that hands out the chunks of a script, one per read (cut to the caller's buffer),
/// answering `Pending` once before each chunk marked so; then end-of-file. Writes are discarded.
struct Script {
    chunks: VecDeque<(Vec<u8>, bool)>,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let Some((chunk, pause)) = self.chunks.front_mut() else {
            return Poll::Ready(Ok(0));
        };
        if std::mem::take(pause) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Cuts `data` into chunks whose sizes cycle through `sizes` (each with its pause flag).
fn cut(data: &[u8], sizes: &[(usize, bool)]) -> VecDeque<(Vec<u8>, bool)> {
    let mut out = VecDeque::new();
    let mut rest = data;
    for &(size, pause) in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = size.clamp(1, rest.len());
        out.push_back((rest[..n].to_vec(), pause));
        rest = &rest[n..];
    }
    out
}

/// One reader call.
#[derive(Debug, Clone)]
enum Op {
    ReadLine(usize),
    Lines {
        max: usize,
        take: usize,
    },
    ReadExactly(usize),
    Read(usize),
    /// `read_line`, dropped after one poll if it is not ready.
    PollLine(usize),
    /// `read_exactly`, dropped after one poll if it is not ready.
    PollExactly(usize),
}

/// Reader calls whose sizes are multiplied by `scale`.
fn ops(scale: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (1usize..64).prop_map(move |m| Op::ReadLine(m * scale)),
        1 => ((1usize..64), (1usize..6)).prop_map(move |(m, take)| Op::Lines { max: m * scale, take }),
        2 => (0usize..48).prop_map(move |n| Op::ReadExactly(n * scale)),
        1 => (1usize..48).prop_map(move |m| Op::Read(m * scale)),
        1 => (1usize..64).prop_map(move |m| Op::PollLine(m * scale)),
        1 => (0usize..48).prop_map(move |n| Op::PollExactly(n * scale)),
    ];
    prop::collection::vec(op, 0..24)
}

/// Bytes made of segments of arbitrary bytes (which may hold newlines), most ended by a newline,
/// so that short lines, long lines and a final line without a newline all occur.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (prop::collection::vec(any::<u8>(), 0..90), any::<bool>()),
        0..12,
    )
    .prop_map(|segments| {
        let mut out = Vec::new();
        for (mut bytes, newline) in segments {
            if newline {
                bytes.push(b'\n');
            }
            out.extend(bytes);
        }
        out
    })
}

/// Chunk sizes for the writer, each with whether to pause (or yield) before it.
fn chunks(max: usize) -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((1..=max, any::<bool>()), 1..24)
}

/// The model of `read_line(max)` on `rest` followed by end-of-file: the length of the line, or
/// `Err` for the line-length error.
fn model_line(rest: &[u8], max: usize) -> Result<usize, ()> {
    match rest.iter().position(|&b| b == b'\n') {
        Some(k) if k < max => Ok(k + 1),
        _ if rest.len() >= max => Err(()),
        _ => Ok(rest.len()),
    }
}

/// Polls `fut` once; `None` if it was pending (and is then dropped by the caller).
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Checks one `read_line(max)` result against the model, advancing `pos`.
fn check_line(
    got: io::Result<Vec<u8>>,
    data: &[u8],
    pos: &mut usize,
    max: usize,
) -> Result<(), TestCaseError> {
    let rest = &data[*pos..];
    match (model_line(rest, max), got) {
        (Ok(n), Ok(line)) => {
            prop_assert_eq!(&line[..], &rest[..n], "read_line({}) at {}", max, *pos);
            *pos += n;
        }
        (Err(()), Err(e)) => prop_assert_eq!(e.kind(), io::ErrorKind::InvalidData),
        (want, got) => {
            return Err(TestCaseError::fail(format!(
                "read_line({max}) at {}: want {want:?}, got {got:?}",
                *pos
            )));
        }
    }
    Ok(())
}

/// Checks one `read_exactly(n)` result against the model, advancing `pos`.
fn check_exactly(
    got: io::Result<Vec<u8>>,
    data: &[u8],
    pos: &mut usize,
    n: usize,
) -> Result<(), TestCaseError> {
    let rest = &data[*pos..];
    if rest.len() >= n {
        let got = got.map_err(|e| TestCaseError::fail(format!("read_exactly({n}): {e}")))?;
        prop_assert_eq!(&got[..], &rest[..n]);
        *pos += n;
    } else {
        let e = match got {
            Ok(v) => return Err(TestCaseError::fail(format!("read_exactly({n}) gave {v:?}"))),
            Err(e) => e,
        };
        prop_assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<IncompleteRead>());
        let want = IncompleteRead {
            partial: rest.to_vec(),
            expected: n,
        };
        prop_assert_eq!(inner, Some(&want));
        *pos = data.len();
    }
    Ok(())
}

/// Runs `ops` on `s`, which delivers `data` and then end-of-file, then reads what is left with
/// `read_lines` or `read_all`; every result is checked against the model.
async fn check<S>(
    mut s: SocketStream<S>,
    data: &[u8],
    ops: &[Op],
    finish_with_lines: bool,
) -> Result<(), TestCaseError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pos = 0;
    for op in ops {
        match *op {
            Op::ReadLine(max) => {
                let got = s.read_line(max).await;
                check_line(got, data, &mut pos, max)?;
            }
            Op::Lines { max, take } => {
                let mut lines = s.lines(max);
                for _ in 0..take {
                    let item = std::future::poll_fn(|cx| Pin::new(&mut lines).poll_next(cx)).await;
                    let rest = &data[pos..];
                    match (model_line(rest, max), item) {
                        (Ok(0), None) => break,
                        (Ok(_), Some(line)) => check_line(line, data, &mut pos, max)?,
                        (Err(()), Some(Err(e))) => {
                            prop_assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                            break;
                        }
                        (want, got) => {
                            return Err(TestCaseError::fail(format!(
                                "lines({max}) at {pos}: want {want:?}, got {got:?}"
                            )));
                        }
                    }
                }
            }
            Op::ReadExactly(n) => {
                let got = s.read_exactly(n).await;
                check_exactly(got, data, &mut pos, n)?;
            }
            Op::Read(max) => {
                let got = s
                    .read(max)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let rest = &data[pos..];
                prop_assert_eq!(got.is_empty(), rest.is_empty(), "read({}) at {}", max, pos);
                prop_assert!(got.len() <= max);
                prop_assert_eq!(&got[..], &rest[..got.len()]);
                pos += got.len();
            }
            Op::PollLine(max) => {
                if let Some(got) = poll_once(s.read_line(max)).await {
                    check_line(got, data, &mut pos, max)?;
                }
            }
            Op::PollExactly(n) => {
                if let Some(got) = poll_once(s.read_exactly(n)).await {
                    check_exactly(got, data, &mut pos, n)?;
                }
            }
        }
    }
    let rest = &data[pos..];
    if finish_with_lines {
        let lines = s
            .read_lines()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want: Vec<Vec<u8>> = rest
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        prop_assert_eq!(lines, want);
    } else {
        let all = s
            .read_all()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&all[..], rest);
    }
    // At end-of-file: empty lines, and a short `read_exactly` with nothing in it.
    prop_assert!(s.read_line(10).await.unwrap().is_empty());
    let mut end = data.len();
    check_exactly(s.read_exactly(1).await, data, &mut end, 1)?;
    Ok(())
}

/// Delivers `data` cut by `sizes` through the scripted stream and checks `ops` on it.
fn run_scripted(
    data: &[u8],
    sizes: &[(usize, bool)],
    ops: &[Op],
    finish_with_lines: bool,
) -> Result<(), TestCaseError> {
    let script = Script {
        chunks: cut(data, sizes),
    };
    curio_kernel::run(check(
        SocketStream::new(script),
        data,
        ops,
        finish_with_lines,
    ))
}

/// Delivers `data` cut by `sizes` through a `UnixStream` pair and checks `ops` on the far end.
fn run_socket(
    data: &[u8],
    sizes: &[(usize, bool)],
    ops: &[Op],
    finish_with_lines: bool,
) -> Result<(), TestCaseError> {
    let chunks = cut(data, sizes);
    curio_kernel::run(async move {
        let (a, b) = UnixStream::pair().unwrap();
        let writer = spawn(async move {
            let mut w = a.as_stream();
            for (chunk, pause) in chunks {
                if pause {
                    yield_now().await;
                }
                w.write(&chunk).await?;
            }
            w.close().await
        });
        // A failed check drops the reading end, so a writer blocked on a full socket ends too;
        // its error then says nothing, and the check's failure is reported.
        let checked = check(b.as_stream(), data, ops, finish_with_lines).await;
        let written = writer.join().await;
        checked?;
        written
            .map_err(|e| TestCaseError::fail(format!("writer: {e}")))?
            .map_err(|e| TestCaseError::fail(format!("writer: {e}")))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(128)))]

    #[test]
    fn scripted_chunks_match_the_model(
        data in data(),
        sizes in chunks(40),
        ops in ops(1),
        finish_with_lines in any::<bool>(),
    ) {
        run_scripted(&data, &sizes, &ops, finish_with_lines)?;
    }

    #[test]
    fn unix_pair_chunks_match_the_model(
        data in data(),
        sizes in chunks(40),
        ops in ops(1),
        finish_with_lines in any::<bool>(),
    ) {
        run_socket(&data, &sizes, &ops, finish_with_lines)?;
    }
}

/// Bytes of about `len` made from `seed`: lines of up to `longest` bytes, most ended by a
/// newline; cheap to make in large sizes, unlike a `Vec<u8>` strategy.
fn big_data(seed: u64, len: usize, longest: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        let line = (next() as usize) % (longest + 1);
        out.extend((0..line).map(|i| b'a' + (i % 26) as u8));
        if next() % 8 != 0 {
            out.push(b'\n');
        }
    }
    out.truncate(len);
    out
}

proptest! {
    // Large reads make the buffer grow and compact; each case moves up to 300 KB.
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(24)))]

    #[test]
    fn large_streams_match_the_model(
        seed in any::<u64>(),
        len in 0usize..300_000,
        longest in prop_oneof![Just(100usize), Just(5_000), Just(70_000)],
        sizes in chunks(100_000),
        ops in ops(1_500),
        finish_with_lines in any::<bool>(),
        socket in any::<bool>(),
    ) {
        let data = big_data(seed, len, longest);
        if socket {
            run_socket(&data, &sizes, &ops, finish_with_lines)?;
        } else {
            run_scripted(&data, &sizes, &ops, finish_with_lines)?;
        }
    }
}
