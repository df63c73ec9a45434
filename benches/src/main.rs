//! The curio-rt benchmark suite: echo servers and kernel micro-benchmarks, each on curio-rt and
//! its peers (tokio, smol, a hand-written epoll loop) in the same run, reported as ratios.
//!
//! `cargo xtask bench [--quick] [--only NAME]` runs it and writes `BENCHMARKS.md`.
#![allow(
    unreachable_pub,
    reason = "the echo example is included as a module; its items are pub for readers"
)]

mod echo;
mod micro;
mod stats;

use std::fmt::Write as _;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: curio-bench [--quick] [--python] [--only NAME] [--out FILE]\n       curio-bench serve KIND PORT_FILE\n       curio-bench memory RUNTIME N"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 3 => match echo::serve(&args[1], &args[2]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("serve: {e}");
                ExitCode::FAILURE
            }
        },
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
    stats::Result {
        name: "idle_task_memory".into(),
        unit: "bytes/task",
        lower_is_better: true,
        series,
        target: Some(("tokio-ct", 1.0)),
    }
}

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
    let mut out_file = String::from("BENCHMARKS.md");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--python" => python = true,
            "--only" => only = it.next().cloned(),
            "--out" => match it.next() {
                Some(f) => out_file = f.clone(),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let rounds = if quick { 3 } else { 5 };
    let mut results = Vec::new();
    let run = |name: &str| {
        only.as_deref()
            .is_none_or(|o| name.starts_with(o) || o.starts_with(name))
    };
    if run("echo") {
        let mut servers: Vec<&'static str> = echo::SERVERS.to_vec();
        if python {
            servers.extend(echo::python_peers());
        }
        results.extend(echo::run_all(rounds, quick, &servers));
    }
    // The micro-benchmarks run on CPU 1, away from nothing else of ours.
    echo::pin(1);
    let sizes = micro::Sizes {
        rounds,
        scale: if quick { 2 } else { 10 },
    };
    let micro_only = only
        .as_deref()
        .filter(|o| !o.starts_with("echo") && *o != "idle_task_memory");
    if only.is_none() || micro_only.is_some() {
        results.extend(micro::run_all(sizes, micro_only));
    }
    if run("idle_task_memory") {
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
    md.push_str("Peers: tokio `current_thread` (`tokio-ct`) and `multi_thread` with one worker (`tokio-mt1`), smol's `LocalExecutor` (`smol`), and a hand-written epoll loop (`epoll`, the floor for echo); with `--python`, the seed's Python servers (`py-curio`, `py-asyncio`, `py-uvloop`, `py-trio`).\n");
    md.push_str("Echo servers run in their own process pinned to CPU 0; the load generator and the micro-benchmarks run pinned to CPU 1.\n\n");
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
    if let Err(e) = std::fs::write(&out_file, md) {
        eprintln!("cannot write {out_file}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {out_file}");
    ExitCode::SUCCESS
}
