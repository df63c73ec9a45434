//! `curio-soak`: the soak test of curio-rt (`cargo xtask soak`, and a CI-sized run inside
//! `cargo xtask test`).
//!
//! ```text
//! curio-soak [--secs 60] [--conns 10000] [--sources 16] [--tls-every 10] [--hold-ms 1000]
//! ```
//!
//! This process serves echo twice, through `run_server` (what `tcp_server` runs) and through
//! `run_tls_server`, on one kernel, and starts the load generator (`curio-soak load`, see
//! `load.rs`) as a child process: `--conns` concurrent connections that churn, every
//! `--tls-every`-th over TLS, from `--sources` loopback addresses `127.0.0.1`, `127.0.0.2`, ...
//! Each second it samples its own descriptors, resident memory and live clients. At the end it
//! stops the servers, prints a summary table, and exits non-zero on any violation:
//!
//! - the load generator saw a wrong echo, an error on an established connection, or a stall;
//! - more than 1% of connects failed, or fewer than 95% of `--conns` were ever open at once;
//! - a server client ended with an error other than the peer's reset or end-of-file;
//! - the descriptor or memory curve was not flat after the warm-up (see `curves.rs` for the
//!   rule: within 10% of the level, and no climb over 5% across the last half);
//! - a descriptor, task or timer was left once the servers stopped.

mod curves;
mod load;
mod server;

use std::cell::RefCell;
use std::fmt::Display;
use std::process::ExitCode;
use std::rc::Rc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use curio::process::{Command, Stdio};
use curio::{Kernel, sleep, spawn, timeout_after};

use crate::curves::{Sample, fd_count, flat, rss_bytes};
use crate::server::{ServerStats, Servers};

/// The test certificates of `curio-net` (for `localhost` and `127.0.0.1`, valid until 2126).
pub(crate) const CA_PEM: &[u8] = include_bytes!("../../crates/curio-net/tests/certs/ca.pem");
pub(crate) const SERVER_PEM: &[u8] =
    include_bytes!("../../crates/curio-net/tests/certs/server.pem");
pub(crate) const SERVER_KEY: &[u8] =
    include_bytes!("../../crates/curio-net/tests/certs/server.key");

/// The usage text.
const USAGE: &str = "\
usage: curio-soak [--secs N] [--conns N] [--sources N] [--tls-every N] [--hold-ms N]
  --secs       how long the load runs (default 60)
  --conns      concurrent connections (default 10000)
  --sources    loopback source addresses 127.0.0.1.. (default 16)
  --tls-every  every N-th connection speaks TLS, 0 for none (default 10)
  --hold-ms    pauses between a connection's exchanges are drawn from 0..N ms (default 1000)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("load") => load::main(&args[1..]),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => soak(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("curio-soak: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The value after `name` in `args`.
///
/// # Errors
///
/// When the flag is missing or its value does not parse.
pub(crate) fn parse_flag<T: FromStr>(args: &[String], name: &str) -> Result<T, String>
where
    T::Err: Display,
{
    let i = args
        .iter()
        .position(|a| a == name)
        .ok_or_else(|| format!("missing {name}"))?;
    let v = args
        .get(i + 1)
        .ok_or_else(|| format!("{name} needs a value"))?;
    v.parse().map_err(|e| format!("{name} {v}: {e}"))
}

/// The value after `name`, or `default` when the flag is absent.
fn flag_or<T: FromStr>(args: &[String], name: &str, default: T) -> Result<T, String>
where
    T::Err: Display,
{
    if args.iter().any(|a| a == name) {
        parse_flag(args, name)
    } else {
        Ok(default)
    }
}

/// The load's ramp for a run of `secs`: a tenth of the run, at most 6 s, in whole seconds. The
/// load generator spreads its first connects over it; the curves are judged after it.
pub(crate) fn ramp_secs(secs: u64) -> u64 {
    secs.min(60).div_ceil(10)
}

/// Raises the soft descriptor limit to the hard one (20,000 on the project's machines).
pub(crate) fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("curio-soak: cannot raise the descriptor limit: {e}");
    }
}

/// A small, fast, seeded random number generator (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The summary table: one row per measure, with its bound and whether it held.
#[derive(Default)]
struct Table {
    rows: Vec<(String, String, String, bool)>,
}

impl Table {
    fn row(&mut self, what: &str, value: impl Display, bound: impl Display, ok: bool) {
        self.rows
            .push((what.into(), value.to_string(), bound.to_string(), ok));
    }

    fn info(&mut self, what: &str, value: impl Display) {
        self.row(what, value, "", true);
    }

    fn print(&self) -> bool {
        println!("\n| measure | value | bound | |\n|---|---:|---|---|");
        for (what, value, bound, ok) in &self.rows {
            let mark = if *ok { "ok" } else { "VIOLATION" };
            println!("| {what} | {value} | {bound} | {mark} |");
        }
        self.rows.iter().all(|r| r.3)
    }
}

/// The load generator's final counts, from its `loadgen key=value ...` line.
struct LoadCounts(Vec<(String, u64)>);

impl LoadCounts {
    fn parse(stdout: &str) -> Option<LoadCounts> {
        let line = stdout.lines().find(|l| l.starts_with("loadgen "))?;
        let pairs = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect();
        Some(LoadCounts(pairs))
    }

    fn get(&self, key: &str) -> u64 {
        self.0.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
    }
}

/// The soak itself; `Ok(false)` on a violation.
fn soak(args: &[String]) -> Result<bool, String> {
    let secs: u64 = flag_or(args, "--secs", 60)?;
    let conns: usize = flag_or(args, "--conns", 10_000)?;
    let sources: u8 = flag_or(args, "--sources", 16)?;
    let tls_every: usize = flag_or(args, "--tls-every", 10)?;
    let hold_ms: u64 = flag_or(args, "--hold-ms", 1000)?;
    if secs < 20 {
        return Err("--secs must be at least 20: the curves need samples after the warm-up".into());
    }
    raise_descriptor_limit();
    // The curves are judged from the end of the ramp plus a tenth of the run to settle, until
    // the first slot stops.
    let ramp = ramp_secs(secs);
    let warmup = ramp + secs / 10;
    let steady_end = secs - ramp;
    let mut table = Table::default();
    let mut kernel = Kernel::new();
    let samples = Rc::new(RefCell::new(Vec::<Sample>::new()));
    let stats = Rc::new(ServerStats::default());
    let (samples2, stats2) = (samples.clone(), stats.clone());
    let run = kernel.run(async move {
        let fds_before = fd_count();
        let servers = Servers::start(&stats2, 4096).map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("load")
            .args(["--plain", &servers.plain.to_string()])
            .args(["--tls", &servers.tls.to_string()])
            .args(["--conns", &conns.to_string(), "--secs", &secs.to_string()])
            .args(["--sources", &sources.to_string()])
            .args(["--tls-every", &tls_every.to_string()])
            .args(["--hold-ms", &hold_ms.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the load generator: {e}"))?;
        let sampler = spawn(async move {
            let start = Instant::now();
            loop {
                sleep(Duration::from_secs(1)).await;
                let s = Sample {
                    t: start.elapsed().as_secs(),
                    fds: fd_count(),
                    rss: rss_bytes(),
                    live: stats2.live.get(),
                };
                if s.t.is_multiple_of(10) {
                    eprintln!(
                        "soak: {:>4} s: {} clients live, {} descriptors, {} MiB resident",
                        s.t,
                        s.live,
                        s.fds,
                        s.rss >> 20
                    );
                }
                samples2.borrow_mut().push(s);
            }
        });
        let limit = Duration::from_secs(secs + 120);
        let out = timeout_after(limit, child.communicate(b"")).await;
        sampler.cancel().await;
        servers.stop().await?;
        drop(child);
        let fds_after = fd_count();
        let out = out
            .map_err(|_| format!("the load generator did not finish in {limit:?}"))?
            .map_err(|e| format!("the load generator: {e}"))?;
        Ok::<_, String>((fds_before, fds_after, out))
    });
    let (fds_before, fds_after, out) = run?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let load = LoadCounts::parse(&stdout).ok_or("the load generator printed no counts")?;
    let samples = samples.borrow();

    table.info("seconds of load", secs);
    table.row(
        "load generator exit",
        out.status,
        "success",
        out.status.success(),
    );
    let attempts = load.get("attempts");
    table.info(
        "connects (of them TLS)",
        format!("{} ({})", load.get("connects"), load.get("tls_connects")),
    );
    table.row(
        "failed connects",
        load.get("connect_errors"),
        format!("<= 1% of {attempts}"),
        load.get("connect_errors") * 100 <= attempts,
    );
    let peak = load.get("peak");
    table.row(
        "connections open at once (peak)",
        peak,
        format!(">= 95% of {conns}"),
        peak * 100 >= conns as u64 * 95,
    );
    table.row(
        "echo round trips",
        load.get("round_trips"),
        "> 0",
        load.get("round_trips") > 0,
    );
    table.info("echoed bytes", load.get("bytes"));
    table.info(
        "ends: reset / half-close / reset mid-echo / clean",
        format!(
            "{} / {} / {} / {}",
            load.get("resets"),
            load.get("half_closes"),
            load.get("mid_resets"),
            load.get("clean_closes")
        ),
    );
    for (what, key) in [
        ("wrong echoes", "mismatches"),
        ("errors on open connections", "errors"),
        ("stalls (no progress in 30 s)", "stalls"),
    ] {
        table.row(what, load.get(key), "0", load.get(key) == 0);
    }
    table.info(
        "server clients: accepted / eof / reset",
        format!(
            "{} / {} / {}",
            stats.accepted.get(),
            stats.eofs.get(),
            stats.resets.get()
        ),
    );
    let unexpected = stats.unexpected.get();
    let first = stats.first_unexpected.borrow();
    table.row(
        "server clients ended by another error",
        match first.as_deref() {
            Some(e) => format!("{unexpected} (first: {e})"),
            None => unexpected.to_string(),
        },
        "0",
        unexpected == 0,
    );
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t > warmup && s.t <= steady_end)
        .collect();
    let mut live: Vec<u64> = after.iter().map(|s| s.live).collect();
    live.sort_unstable();
    table.info(
        "server clients live after warm-up (median)",
        live.get(live.len() / 2).copied().unwrap_or(0),
    );
    let curve = |f: fn(&Sample) -> u64| -> Vec<(u64, f64)> {
        after.iter().map(|s| (s.t, f(s) as f64)).collect()
    };
    for (what, unit, points) in [
        ("descriptors", 1.0, curve(|s| s.fds)),
        ("resident memory (MiB)", 1_048_576.0, curve(|s| s.rss)),
    ] {
        let bound = format!("flat in {warmup}..{steady_end} s (+10%, climb <= 5%)");
        match flat(&points) {
            Ok(f) => table.row(
                what,
                format!(
                    "level {:.1}, max {:.1}, last-half climb {:+.1}",
                    f.level / unit,
                    f.max / unit,
                    f.climb / unit
                ),
                bound,
                true,
            ),
            Err(e) => table.row(what, e, bound, false),
        }
    }
    table.row(
        "descriptors after the servers stopped",
        fds_after,
        format!("= {fds_before} before they started"),
        fds_after == fds_before,
    );
    table.row(
        "tasks left",
        kernel.task_count(),
        "0",
        kernel.task_count() == 0,
    );
    table.row(
        "timers left",
        kernel.timer_count(),
        "0",
        kernel.timer_count() == 0,
    );
    let ok = table.print();
    println!("\ncurio-soak: {}", if ok { "passed" } else { "FAILED" });
    Ok(ok)
}
