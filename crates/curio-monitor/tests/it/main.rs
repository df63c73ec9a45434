//! The monitor end to end over TCP: every command, errors, a 1 MiB line, two clients, answers
//! while the kernel's thread is stuck in a blocking call, `cancel` refused and allowed, and the
//! `curio-monitor` client in a real terminal (tmux).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use curio_kernel::{Builder, Kernel, sleep};
use curio_monitor::MonitorBuilderExt;

/// How long any wait on another thread or process may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// A monitor session: sends lines, reads replies up to the next prompt.
struct Session {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Session {
    fn connect(addr: SocketAddr) -> Session {
        let s = TcpStream::connect(addr).expect("connect to the monitor");
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut session = Session {
            out: s.try_clone().unwrap(),
            input: BufReader::new(s),
        };
        let banner = session.reply();
        assert!(
            banner.contains("Curio Monitor:") && banner.contains("Type help"),
            "{banner}"
        );
        session
    }

    /// Reads until the prompt `curio > `.
    fn reply(&mut self) -> String {
        let mut text = Vec::new();
        while !text.ends_with(b"curio > ") {
            let mut byte = [0u8; 1];
            match self.input.read(&mut byte) {
                Ok(1) => text.push(byte[0]),
                other => panic!(
                    "the monitor stopped answering: {other:?}; so far {:?}",
                    String::from_utf8_lossy(&text)
                ),
            }
        }
        String::from_utf8(text).unwrap()
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.out, "{line}").unwrap();
        self.reply()
    }
}

/// Runs a kernel with the monitor on a thread: named tasks sleeping, waiting on a queue and
/// blocked in a socket read, then the main task blocks the kernel's thread in a plain blocking
/// call until the test lets it go. Returns the monitor's address, the task ids by name, the
/// spawn lines, and the sender that lets the kernel finish.
struct Program {
    addr: SocketAddr,
    ids: Vec<(String, u64)>,
    lines: Vec<(String, u32)>,
    release: mpsc::Sender<()>,
    /// With control on: whether the sleeper ended cancelled after the release.
    kernel: std::thread::JoinHandle<Option<bool>>,
}

fn start_program(control: bool) -> Program {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let kernel = std::thread::spawn(move || {
        let mut kernel = Kernel::builder()
            .monitor_addr("127.0.0.1:0".parse().unwrap())
            .monitor_control(control)
            .build();
        kernel.run(async move {
            let q: curio_sync::Queue<u8> = curio_sync::Queue::new(0);
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let mut lines = Vec::new();
            let mut ids = Vec::new();
            lines.push(("sleeper".to_string(), line!() + 2));
            let s = Builder::new().name("sleeper");
            let t1 = s.spawn(async { sleep(Duration::from_secs(3600)).await });
            lines.push(("getter".to_string(), line!() + 3));
            let g = Builder::new().name("getter");
            let q2 = q.clone();
            let t2 = g.spawn(async move { q2.get().await });
            let r = Builder::new().name("reader");
            let t3 = r.spawn(async move {
                a.set_nonblocking(true).unwrap();
                let a = curio_reactor::Async::new(a);
                a.readable().await
            });
            for (name, t) in [
                ("sleeper", t1.id()),
                ("getter", t2.id()),
                ("reader", t3.id()),
            ] {
                ids.push((name.to_string(), t.as_u64()));
            }
            curio_kernel::yield_now().await;
            curio_kernel::yield_now().await;
            ready_tx
                .send((curio_monitor::local_addr().unwrap(), ids, lines))
                .unwrap();
            // The kernel's thread is stuck here: the monitor must answer anyway.
            let _ = release_rx.recv_timeout(LIMIT);
            let cancelled = if control {
                // A `cancel` sent meanwhile lands now that the kernel runs again.
                let ended = curio_kernel::timeout_after(LIMIT, t1.wait()).await.is_ok();
                Some(ended && t1.is_cancelled())
            } else {
                None
            };
            drop((t1, t2, t3));
            cancelled
        })
    });
    let (addr, ids, lines) = ready_rx.recv_timeout(LIMIT).expect("the program started");
    Program {
        addr,
        ids,
        lines,
        release,
        kernel,
    }
}

fn id_of(p: &Program, name: &str) -> u64 {
    p.ids.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn every_command_while_the_kernel_is_blocked() {
    let p = start_program(false);
    let mut s = Session::connect(p.addr);
    let ps = s.ask("ps");
    // Other tests' kernels may share the process-wide server (under `cargo test`): then `ps`
    // lists a section per kernel, and this test looks only at its own tasks' rows.
    assert!(
        ps.lines()
            .any(|l| l.starts_with("Task   State        Cycles     Timeout Sleep   Task")),
        "{ps}"
    );
    for (name, state) in [
        ("sleeper", "TIME_SLEEP"),
        ("getter", "QUEUE_GET"),
        ("reader", "READ_WAIT"),
    ] {
        let id = id_of(&p, name);
        let row = ps
            .lines()
            .find(|l| l.starts_with(&format!("{id:<6} ")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{ps}"));
        assert!(row.contains(state) && row.ends_with(name), "{row}");
    }
    assert!(
        ps.contains("RUNNING") && ps.contains("main"),
        "the blocked main task: {ps}"
    );

    // `where` names this file's lines: the spawn, and the wait.
    let sleeper = id_of(&p, "sleeper");
    let w = s.ask(&format!("where {sleeper}"));
    let spawn_line = p.lines.iter().find(|(n, _)| n == "sleeper").unwrap().1;
    assert!(
        w.contains(&format!("spawned at {}:{spawn_line}", file!())),
        "{w}"
    );
    assert!(
        w.contains(&format!("waits on Sleep at {}:{spawn_line}", file!())),
        "{w}"
    );
    let getter = id_of(&p, "getter");
    let w = s.ask(&format!("where {getter}"));
    assert!(
        w.contains("waits on QueueGet at") && w.contains(file!()),
        "{w}"
    );

    let parents = s.ask(&format!("parents {sleeper}"));
    let lines: Vec<&str> = parents.lines().collect();
    assert!(lines[0].starts_with(&format!("{sleeper:<6}")) && lines[0].ends_with("sleeper"));
    assert!(lines[1].ends_with("main"), "{parents}");

    assert!(s.ask("help").contains("where taskid"));
    assert!(
        s.ask("frobnicate")
            .starts_with("Unknown command. Type help.")
    );
    assert!(s.ask("where x").starts_with("Bad command."));
    assert!(s.ask("where 999999").starts_with("No task 999999"));
    // Control commands are refused unless enabled.
    assert!(s.ask(&format!("cancel {sleeper}")).starts_with("Refused"));
    assert!(s.ask("signal USR1").starts_with("Refused"));

    // A 1 MiB line without a newline is refused, not kept, and the session goes on.
    let big = vec![b'x'; 1 << 20];
    s.out.write_all(&big).unwrap();
    let r = s.ask("");
    assert!(r.starts_with("Bad command. Line longer than"), "{r}");
    // A second client at the same time.
    let mut other = Session::connect(p.addr);
    assert!(other.ask("ps").contains("sleeper"));
    assert!(s.ask("ps").contains("getter"));
    writeln!(s.out, "quit").unwrap();
    let mut rest = String::new();
    s.input.read_line(&mut rest).unwrap();
    assert_eq!(rest.trim(), "Leaving monitor.");

    p.release.send(()).unwrap();
    p.kernel.join().unwrap();
    // The kernel is gone: its tasks are no longer listed.
    let ps = other.ask("ps");
    assert!(
        !ps.lines().any(|l| l.starts_with(&format!("{sleeper:<6} "))),
        "{ps}"
    );
}

#[test]
fn cancel_really_cancels_when_enabled() {
    let p = start_program(true);
    let mut s = Session::connect(p.addr);
    let sleeper = id_of(&p, "sleeper");
    assert!(
        s.ask(&format!("cancel {sleeper}"))
            .starts_with(&format!("Cancelling task {sleeper}"))
    );
    // The kernel is blocked: the cancel lands when it runs again.
    p.release.send(()).unwrap();
    assert_eq!(
        p.kernel.join().unwrap(),
        Some(true),
        "the sleeper was cancelled"
    );
}

/// Two kernels on one server: `cancel` follows the setting of the task's own kernel, and
/// `signal`, which reaches the whole process, needs every kernel's.
#[test]
fn cancel_follows_the_tasks_own_kernel() {
    let off = start_program(false);
    let on = start_program(true);
    assert_eq!(off.addr, on.addr, "one monitor server per process");
    let mut s = Session::connect(on.addr);
    let theirs = id_of(&off, "sleeper");
    assert!(
        s.ask(&format!("cancel {theirs}")).starts_with("Refused"),
        "a kernel without control keeps its tasks"
    );
    let mine = id_of(&on, "sleeper");
    assert!(
        s.ask(&format!("cancel {mine}"))
            .starts_with(&format!("Cancelling task {mine}"))
    );
    assert!(s.ask("signal USR1").starts_with("Refused"));
    off.release.send(()).unwrap();
    on.release.send(()).unwrap();
    assert_eq!(off.kernel.join().unwrap(), None);
    assert_eq!(
        on.kernel.join().unwrap(),
        Some(true),
        "the sleeper was cancelled"
    );
}

#[test]
fn the_client_in_a_terminal() {
    let p = start_program(false);
    let bin = env!("CARGO_BIN_EXE_curio-monitor");
    let session = format!("curio-monitor-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is on the machine image")
    };
    let cmd = format!("{bin} -H 127.0.0.1 -p {}", p.addr.port());
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "200",
        "-y",
        "50",
        &cmd,
    ]);
    assert!(out.status.success(), "{out:?}");
    let screen = |want: &str| {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = tmux(&["capture-pane", "-p", "-t", &session]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains(want) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} on the screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // (The pane trims trailing blanks: the prompt shows as `curio >`.)
    screen("curio >");
    tmux(&["send-keys", "-t", &session, "ps", "Enter"]);
    let text = screen("TIME_SLEEP");
    assert!(
        text.contains("sleeper") && text.contains("QUEUE_GET"),
        "{text}"
    );
    tmux(&["send-keys", "-t", &session, "quit", "Enter"]);
    screen("Leaving monitor.");
    tmux(&["kill-session", "-t", &session]);
    p.release.send(()).unwrap();
    p.kernel.join().unwrap();
}
