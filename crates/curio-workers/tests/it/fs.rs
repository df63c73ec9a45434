//! Async files: Curio's `test_file.py` (the forms Rust has) with its test names.

use std::io::ErrorKind;
use std::path::PathBuf;

use curio_workers::fs::{self, AsyncFile, OpenOptions, SeekFrom};

const DATA: &str = "line 1\nline 2\nline 3\nlast line without newline";

/// A fresh file holding DATA, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!(
            "curio-workers-fs-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&p, DATA).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn open_read(p: &TempFile) -> AsyncFile {
    fs::aopen(&p.0, OpenOptions::new().read(true))
        .await
        .unwrap()
}

#[test]
fn test_read() {
    let t = TempFile::new("read");
    let data = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        let mut all = Vec::new();
        loop {
            let chunk = f.read(8).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 8);
            all.extend(chunk);
        }
        all
    });
    assert_eq!(data, DATA.as_bytes());
}

#[test]
fn test_readall() {
    let t = TempFile::new("readall");
    let data = curio_kernel::run(async { open_read(&t).await.read_to_end().await.unwrap() });
    assert_eq!(data, DATA.as_bytes());
}

#[test]
fn test_readline() {
    let t = TempFile::new("readline");
    let lines = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        let mut lines = Vec::new();
        loop {
            let l = f.read_line().await.unwrap();
            if l.is_empty() {
                break;
            }
            lines.push(l);
        }
        lines
    });
    let expect: Vec<String> = DATA.split_inclusive('\n').map(str::to_owned).collect();
    assert_eq!(lines, expect);
}

#[test]
fn test_readiter() {
    let t = TempFile::new("readiter");
    let lines = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        let mut lines = f.lines();
        let mut out = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            out.push(l);
        }
        out
    });
    let expect: Vec<&str> = DATA.lines().collect();
    assert_eq!(lines, expect);
}

#[test]
fn test_read_mixed() {
    // A read after read_line returns the line's read-ahead first.
    let t = TempFile::new("mixed");
    let (line, rest, pos) = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        let line = f.read_line().await.unwrap();
        let pos = f.tell().await.unwrap();
        (line, f.read_to_end().await.unwrap(), pos)
    });
    assert_eq!(line, "line 1\n");
    assert_eq!(pos, 7);
    assert_eq!(rest, &DATA.as_bytes()[7..]);
}

#[test]
fn test_write() {
    let t = TempFile::new("write");
    curio_kernel::run(async {
        let mut f = fs::aopen(&t.0, OpenOptions::new().write(true).truncate(true))
            .await
            .unwrap();
        let n = f.write(b"hello ").await.unwrap();
        assert!(n > 0);
        f.write_all(&b"hello world"[n..]).await.unwrap();
        f.flush().await.unwrap();
        f.close().await.unwrap();
    });
    assert_eq!(std::fs::read_to_string(&t.0).unwrap(), "hello world");
}

#[test]
fn test_seek_tell() {
    let t = TempFile::new("seek");
    let (a, b, c, d) = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        assert_eq!(f.seek(SeekFrom::Start(5)).await.unwrap(), 5);
        let a = f.read(3).await.unwrap();
        let here = f.tell().await.unwrap();
        let _ = f.read_line().await.unwrap();
        // A relative seek counts from the caller's position, not from the read-ahead's end.
        f.seek(SeekFrom::Start(here)).await.unwrap();
        let b = f.read(2).await.unwrap();
        let c = f.seek(SeekFrom::End(-4)).await.unwrap();
        let d = f.read_to_end().await.unwrap();
        (a, b, c, d)
    });
    assert_eq!(a, b"1\nl");
    assert_eq!(b, b"in");
    assert_eq!(c, DATA.len() as u64 - 4);
    assert_eq!(d, b"line");
}

#[test]
fn test_truncate() {
    let t = TempFile::new("truncate");
    let (pos, rest) = curio_kernel::run(async {
        let mut f = fs::aopen(&t.0, OpenOptions::new().read(true).write(true))
            .await
            .unwrap();
        let _ = f.read_line().await.unwrap();
        f.truncate(10).await.unwrap();
        // The position stays the caller's: after the first line.
        let pos = f.tell().await.unwrap();
        (pos, f.read_to_end().await.unwrap())
    });
    assert_eq!(pos, 7);
    assert_eq!(rest, b"lin");
    assert_eq!(std::fs::read(&t.0).unwrap(), &DATA.as_bytes()[..10]);
}

#[test]
fn test_write_after_read_line_writes_at_the_callers_position() {
    let t = TempFile::new("rw");
    curio_kernel::run(async {
        let mut f = fs::aopen(&t.0, OpenOptions::new().read(true).write(true))
            .await
            .unwrap();
        assert_eq!(f.read_line().await.unwrap(), "line 1\n");
        f.write_all(b"LINE 2").await.unwrap();
        f.close().await.unwrap();
    });
    assert!(
        std::fs::read_to_string(&t.0)
            .unwrap()
            .starts_with("line 1\nLINE 2\nline 3")
    );
}

#[test]
fn test_errors() {
    let t = TempFile::new("errors");
    curio_kernel::run(async {
        let missing = std::env::temp_dir().join("curio-workers-no-such-file");
        let e = fs::aopen(&missing, OpenOptions::new().read(true))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            fs::read(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::metadata(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        // Reading a file opened only for writing fails with the OS's error.
        let mut w = fs::aopen(&t.0, OpenOptions::new().write(true))
            .await
            .unwrap();
        assert!(w.read(4).await.is_err());
        // Every operation on a closed file fails; closing again does not.
        let mut f = open_read(&t).await;
        f.close().await.unwrap();
        assert!(f.is_closed());
        assert!(f.read(1).await.is_err());
        assert!(f.read_line().await.is_err());
        assert!(f.tell().await.is_err());
        assert!(f.write(b"x").await.is_err());
        f.close().await.unwrap();
    });
}

#[test]
fn one_shots() {
    let t = TempFile::new("oneshot");
    curio_kernel::run(async {
        assert_eq!(fs::read(&t.0).await.unwrap(), DATA.as_bytes());
        assert_eq!(fs::read_to_string(&t.0).await.unwrap(), DATA);
        assert_eq!(fs::metadata(&t.0).await.unwrap().len(), DATA.len() as u64);
        fs::write(&t.0, "new").await.unwrap();
        assert_eq!(fs::read_to_string(&t.0).await.unwrap(), "new");
    });
}

#[test]
fn dropped_read_loses_nothing() {
    // A read whose future is dropped after the job ran leaves its bytes for the next read.
    let t = TempFile::new("dropped");
    let data = curio_kernel::run(async {
        let mut f = open_read(&t).await;
        {
            let read = f.read(7);
            // Poll once (the job starts), then drop it at the timeout.
            let _ = curio_kernel::timeout_after(std::time::Duration::ZERO, read).await;
        }
        f.read_to_end().await.unwrap()
    });
    assert_eq!(data, DATA.as_bytes());
}
