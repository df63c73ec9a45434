//! The curio-rt benchmark suite: echo servers and kernel micro-benchmarks, each on curio-rt and
//! its peers (tokio, smol, a hand-written epoll loop) in the same run, reported as ratios.
//!
//! `cargo xtask bench [--quick] [--rounds N] [--only PREFIX[,PREFIX...]]` runs it and writes
//! `BENCHMARKS.md` (with `--only`, pass `--out FILE` to keep the full run's file).
#![allow(
    unreachable_pub,
    reason = "the echo example is included as a module; its items are pub for readers"
)]

mod echo;
mod http;
mod micro;
mod process;
mod stats;
mod workers;

use std::fmt::Write as _;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: curio-bench [--quick] [--python] [--rounds N] [--only PREFIX[,PREFIX...]] [--out FILE]\n       curio-bench serve KIND PORT_FILE\n       curio-bench memory RUNTIME N\n       curio-bench load ADDR CONNS SIZE SECS"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The process pool's workers are this binary started again.
    curio::workers::worker_main(&workers::REGISTRY);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 3 => match if http::is_server(&args[1]) {
            http::serve(&args[1], &args[2])
        } else {
            echo::serve(&args[1], &args[2])
        } {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("serve: {e}");
                ExitCode::FAILURE
            }
        },
        Some("load") if args.len() == 5 => {
            let (Ok(c), Ok(sz), Ok(secs)) = (args[2].parse(), args[3].parse(), args[4].parse())
            else {
                return usage();
            };
            match echo::load_cmd(&args[1], c, sz, secs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("load: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("memory") if args.len() == 3 => {
            let (Some(rt), Ok(n)) = (micro::Rt::parse(&args[1]), args[2].parse()) else {
                return usage();
            };
            println!("{}", micro::idle_task_memory(rt, n));
            ExitCode::SUCCESS
        }
        _ => suite(&args),
    }
}

fn memory(n: usize, rounds: usize) -> stats::Result {
    let mut series = Vec::new();
    for rt in micro::Rt::ALL {
        series.push(stats::Series {
            runtime: rt.name(),
            values: Vec::new(),
        });
    }
    for _ in 0..rounds {
        for (i, rt) in micro::Rt::ALL.into_iter().enumerate() {
            let out = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["memory", rt.name(), &n.to_string()])
                .output();
            if let Ok(out) = out
                && let Ok(v) = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()
            {
                series[i].values.push(v);
            }
        }
    }
    let mut r = stats::Result {
        name: "idle_task_memory".into(),
        unit: "bytes/task",
        lower_is_better: true,
        series,
        target: Some(stats::Target::of("tokio-ct", 1.0)),
    };
    micro::merge_tokio(&mut r);
    r
}

/// How the figures are made; the head of `BENCHMARKS.md`.
const METHOD: &str = "\
Peers: tokio `current_thread` (`tokio-ct`) and `multi_thread` with one worker (`tokio-mt1`), smol (`LocalExecutor`, or `Executor` for remote_spawn, with `async-channel`), and a hand-written epoll loop (`epoll`, the floor for echo); with `--python`, the seed's Python servers (`py-curio`, `py-asyncio`, `py-uvloop`, `py-trio`).

## Method

- Every benchmark body runs as a spawned task of its runtime, never as the `block_on` or main future; the echo servers' accept loops too.
- The micro-benchmarks run tokio twice, with the body and its tasks spawned by `tokio::spawn` on a `current_thread` runtime and by `LocalSet::spawn_local`; the `tokio-ct` row is the faster of the two by median and says which: `tokio-ct (spawn)` or `tokio-ct (LocalSet)`.
  The echo and HTTP servers on tokio use `tokio::spawn`, tokio's usual form for a server, and are labelled `tokio-ct (spawn)`; the rows that cross threads or processes (subprocess, spawn_thread_await) run both forms like the micro-benchmarks.
- Single-threaded micro-benchmarks run pinned to CPU 1.
  Whatever involves more than one thread (universal_queue, universal_queue_rev, kernel_to_kernel, remote_spawn, run_in_thread) runs unpinned, threads free on both CPUs, as real programs do; `universal_queue pinned` runs the same workload with both threads on CPU 1, to show what pinning hides.
- Echo servers run in their own process pinned to CPU 0, the load generator (one thread, epoll, TCP_NODELAY) pinned to CPU 1; server CPU is user + system time from `/proc/PID/stat` over the window; latency is the time from a message's write to its complete echo, measured by the load generator, one message in flight per connection.
- `echo 1000x64B on 2 cores` runs each server on two threads, unpinned, the load generator still pinned to CPU 1 (so it shares a core with the server, and CPU per round trip is the headline): curio-rt on a `MultiKernel` of two kernels (`tcp_server_multi_on`, a `SO_REUSEPORT` listener per kernel), tokio `multi_thread` with two workers (`tokio-mt2`, one accept loop), smol with a `LocalExecutor` per thread (`smol-2`) and two epoll loops (`epoll-2`, the floor), each of these two on a `SO_REUSEPORT` listener of its own.
- `http_hello` serves hyper's HTTP/1.1 \"hello world\" with the same service code on curio-rt (curio-hyper) and on tokio `current_thread` (hyper-util's `TokioIo` and `TokioTimer`), pinned to CPU 0 as the echo servers are; the load generator keeps 100 keep-alive connections with one request in flight on each, and server CPU is per request.
- Rounds alternate the runtimes (A B C A B C ...); a figure is the median over rounds with min–max, and a ratio is curio-rt's median over the peer's in the same run.
  A target against \"the best of\" several peers compares with whichever of them curio-rt trails most.
- Focused runs: `cargo xtask bench --quick --only universal_queue,kernel_to_kernel --out /tmp/b.md` (`--only` takes name prefixes, `--rounds N` overrides the round count); only a full `cargo xtask bench` on a quiet machine rewrites this file.
  `CURIO_BENCH_RT=curio-rt,epoll` keeps only those runtimes and servers; `curio-bench serve KIND PORT_FILE` and `curio-bench load ADDR CONNS SIZE SECS` run an echo server and the load generator by hand, e.g. with the server under `valgrind --tool=callgrind` to count its instructions per round trip.

";

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn suite(args: &[String]) -> ExitCode {
    let mut quick = false;
    let mut python = false;
    let mut only: Option<String> = None;
    let mut rounds: Option<usize> = None;
    let mut out_file = String::from("BENCHMARKS.md");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--python" => python = true,
            "--only" => only = it.next().cloned(),
            "--rounds" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) => rounds = Some(n),
                None => return usage(),
            },
            "--out" => match it.next() {
                Some(f) => out_file = f.clone(),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let rounds = rounds.unwrap_or(if quick { 3 } else { 5 });
    let mut results = Vec::new();
    // `--only` takes name prefixes, e.g. `--only universal_queue,echo 1000`.
    let prefixes: Vec<String> = only
        .as_deref()
        .map(|o| o.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let wanted = |name: &str| prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p));
    // A quick run checks direction: the echo cases with targets and a smaller size of the rest.
    let wanted_echo = |name: &str| wanted(name) && (!quick || name.ends_with("x64B"));
    let mut servers: Vec<&'static str> = echo::SERVERS.to_vec();
    if python {
        servers.extend(echo::python_peers());
    }
    // For focused runs: `CURIO_BENCH_RT=curio-rt,epoll` keeps those servers and runtimes.
    if let Ok(rts) = std::env::var("CURIO_BENCH_RT") {
        servers.retain(|s| rts.split(',').any(|r| r == *s));
    }
    results.extend(echo::run_all(rounds, quick, &servers, &wanted_echo));
    if wanted(echo::MULTI_CASE.name) {
        results.extend(echo::run_multi(rounds, quick));
    }
    if wanted("http_hello") {
        results.extend(http::run_all(rounds, quick));
    }
    let sizes = micro::Sizes {
        rounds,
        scale: if quick { 2 } else { 10 },
    };
    // Each micro-benchmark sets its own placement: pinned to CPU 1, or unpinned.
    results.extend(micro::run_all(sizes, &wanted));
    if wanted("subprocess") {
        // `true` 1000 times per round and runtime (200 in a quick run).
        results.push(process::subprocess(rounds, if quick { 200 } else { 1000 }));
    }
    if wanted("run_in_process") {
        results.push(workers::run_in_process(
            rounds,
            if quick { 2_000 } else { 20_000 },
        ));
    }
    if wanted("spawn_thread_await") {
        results.push(workers::spawn_thread_await(
            rounds,
            if quick { 500 } else { 5_000 },
        ));
    }
    if wanted("idle_task_memory") {
        results.push(memory(
            if quick { 100_000 } else { 1_000_000 },
            rounds.min(3),
        ));
    }
    let table = stats::table(&results);
    let targets = stats::targets(&results);
    println!("{table}\n{targets}");
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str("Written by `cargo xtask bench`; every figure is a median of alternating rounds, with min–max, and the ratio is curio-rt's median over the peer's, measured in the same run.\n");
    md.push_str(METHOD);
    let _ = writeln!(
        md,
        "- machine: {} CPUs, Linux {}",
        // `--all`: this process is pinned to one CPU, and plain `nproc` counts only that one.
        sh("nproc", &["--all"]),
        sh("uname", &["-r"])
    );
    let _ = writeln!(
        md,
        "- command: `cargo xtask bench{}{}`",
        if quick { " --quick" } else { "" },
        if python { " --python" } else { "" }
    );
    let _ = writeln!(
        md,
        "- commit: {}",
        sh("git", &["rev-parse", "--short", "HEAD"])
    );
    let _ = writeln!(md, "- rounds: {rounds}\n");
    md.push_str("## Results\n\n");
    md.push_str(&table);
    md.push_str("\n## Targets\n\n");
    md.push_str(&targets);
    // Profiles of the targets a run misses, kept by hand beside the code that writes the table.
    if let Ok(notes) = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/notes.md")) {
        md.push_str("\n## Notes\n\n");
        md.push_str(&notes);
    }
    if let Err(e) = std::fs::write(&out_file, md) {
        eprintln!("cannot write {out_file}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {out_file}");
    ExitCode::SUCCESS
}
