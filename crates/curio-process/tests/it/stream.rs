//! `FileStream` and bad input: missing programs, NUL bytes, reads after exit, two readers.

use std::os::fd::AsFd;
use std::rc::Rc;

use curio_process::{Command, FileStream, Stdio};
use rustix::fs::OFlags;

use crate::{bounded, sh};

#[test]
fn missing_program_is_an_error_naming_it() {
    let e = Command::new("/nonexistent/curio-prog").spawn().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("/nonexistent/curio-prog"), "{e}");
    let e = Command::new("curio-no-such-program-anywhere")
        .spawn()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(
        e.to_string().contains("curio-no-such-program-anywhere"),
        "{e}"
    );
}

#[test]
fn program_that_is_not_executable_is_an_error_naming_it() {
    let path = std::env::temp_dir().join(format!("curio-not-exec-{}", std::process::id()));
    std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
    let e = Command::new(&path).spawn().unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("curio-not-exec"), "{e}");
}

#[test]
fn nul_bytes_are_an_error() {
    let e = Command::new("echo").arg("a\0b").spawn().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = Command::new("ec\0ho").spawn().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn pipe_read_after_the_child_exited_is_eof() {
    curio_kernel::run(async {
        let mut p = sh("echo bye").stdout(Stdio::piped()).spawn().unwrap();
        assert!(bounded("wait", p.wait()).await.unwrap().success());
        let out = p.stdout.take().unwrap();
        assert_eq!(out.read(100).await.unwrap(), b"bye\n");
        assert_eq!(out.read(100).await.unwrap(), b"");
        assert_eq!(out.read(100).await.unwrap(), b"");
    });
}

#[test]
fn two_readers_of_one_pipe_get_resource_busy() {
    curio_kernel::run(async {
        let mut p = sh("read x; echo $x")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Rc::new(p.stdout.take().unwrap());
        let o = out.clone();
        let first = curio_kernel::spawn(async move { o.read(100).await });
        curio_kernel::yield_now().await; // let it wait
        let e = out.read(100).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
        p.stdin.take().unwrap().write_all(b"hi\n").await.unwrap();
        assert_eq!(
            bounded("first", first.join()).await.unwrap().unwrap(),
            b"hi\n"
        );
        assert!(bounded("wait", p.wait()).await.unwrap().success());
    });
}

#[test]
fn file_stream_restores_the_flags_it_changed() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    // A duplicate shares the file description, as a tty shared with a shell does.
    let dup = r.try_clone().unwrap();
    let s = FileStream::new(dup).unwrap();
    assert!(
        rustix::fs::fcntl_getfl(&r)
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
    let back = s.into_fd();
    assert!(
        !rustix::fs::fcntl_getfl(&r)
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
    let s = FileStream::new(back).unwrap();
    assert!(
        rustix::fs::fcntl_getfl(s.as_fd())
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
    drop(s);
    assert!(
        !rustix::fs::fcntl_getfl(&r)
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
    drop(w);
}

#[test]
fn file_stream_over_a_pipe_reads_and_writes() {
    curio_kernel::run(async {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (r, w) = (FileStream::new(r).unwrap(), FileStream::new(w).unwrap());
        let reader = curio_kernel::spawn(async move { r.read_to_end().await });
        // More than a pipe holds, so the writer waits for the reader.
        let data = vec![7u8; 1 << 20];
        w.write_all(&data).await.unwrap();
        drop(w);
        let got = bounded("reader", reader.join()).await.unwrap().unwrap();
        assert!(got == data);
    });
}

#[test]
fn a_pipe_passed_to_another_child_is_blocking_again() {
    curio_kernel::run(async {
        let mut p1 = sh("echo through").stdout(Stdio::piped()).spawn().unwrap();
        let pipe = p1.stdout.take().unwrap();
        assert!(
            rustix::fs::fcntl_getfl(pipe.as_fd())
                .unwrap()
                .contains(OFlags::NONBLOCK)
        );
        let stdio = Stdio::from(pipe);
        let mut p2 = Command::new("cat")
            .stdin(stdio)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = bounded("communicate", p2.communicate(b"")).await.unwrap();
        assert_eq!(out.stdout, b"through\n");
        bounded("wait", p1.wait()).await.unwrap();
    });
}

#[test]
fn stderr_to_stdout_shares_a_file() {
    let path = std::env::temp_dir().join(format!("curio-merged-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    curio_kernel::run(async {
        let mut p = sh("echo out; echo err >&2; echo out2")
            .stdout(file)
            .stderr_to_stdout()
            .spawn()
            .unwrap();
        assert!(bounded("wait", p.wait()).await.unwrap().success());
    });
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(text, "out\nerr\nout2\n");
}
