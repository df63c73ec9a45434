//! Rounds, medians and the report table.

use std::fmt::Write as _;

/// The measurements of one runtime on one benchmark, one per round.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) runtime: &'static str,
    pub(crate) values: Vec<f64>,
}

impl Series {
    pub(crate) fn median(&self) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    pub(crate) fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub(crate) fn max(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// One benchmark's results: a unit, whether lower is better, and a series per runtime.
#[derive(Debug, Clone)]
pub(crate) struct Result {
    pub(crate) name: String,
    pub(crate) unit: &'static str,
    pub(crate) lower_is_better: bool,
    pub(crate) series: Vec<Series>,
    /// The target this benchmark is held to, if any.
    pub(crate) target: Option<Target>,
}

/// A bound on curio-rt's median over the best median of one or more peers.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) peers: Vec<&'static str>,
    pub(crate) bound: f64,
}

impl Target {
    /// Held to `bound` times `peer`.
    pub(crate) fn of(peer: &'static str, bound: f64) -> Target {
        Target {
            peers: vec![peer],
            bound,
        }
    }

    /// Held to `bound` times the best of `peers`.
    pub(crate) fn best_of(peers: &[&'static str], bound: f64) -> Target {
        Target {
            peers: peers.to_vec(),
            bound,
        }
    }
}

impl Result {
    /// The series of `runtime`; a label such as `tokio-ct (spawn)` answers to `tokio-ct`.
    fn of(&self, runtime: &str) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.runtime == runtime || s.runtime.split(" (").next() == Some(runtime))
    }

    /// curio-rt's median divided by `peer`'s.
    pub(crate) fn ratio(&self, peer: &str) -> Option<f64> {
        Some(self.of("curio-rt")?.median() / self.of(peer)?.median())
    }

    /// The ratio to the best of the target's peers, and that peer's label.
    fn target_ratio(&self) -> Option<(f64, &'static str)> {
        let t = self.target.as_ref()?;
        let mut best: Option<(f64, &'static str)> = None;
        for p in &t.peers {
            let Some(s) = self.of(p) else { continue };
            let Some(r) = self.ratio(p) else { continue };
            // The best peer is the one curio-rt compares worst against.
            let worse = |a: f64, b: f64| if self.lower_is_better { a > b } else { a < b };
            if best.is_none_or(|(b, _)| worse(r, b)) {
                best = Some((r, s.runtime));
            }
        }
        best
    }

    /// Whether the target is met, if there is one.
    pub(crate) fn target_met(&self) -> Option<bool> {
        let bound = self.target.as_ref()?.bound;
        let (r, _) = self.target_ratio()?;
        Some(if self.lower_is_better {
            r <= bound
        } else {
            r >= bound
        })
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The Markdown table of all results.
pub(crate) fn table(results: &[Result]) -> String {
    let mut out = String::new();
    out.push_str("| benchmark | runtime | median | min–max | unit | curio-rt ÷ runtime |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in results {
        for s in &r.series {
            let ratio = r
                .ratio(s.runtime)
                .filter(|_| s.runtime.split(" (").next() != Some("curio-rt"))
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}–{} | {} | {} |",
                r.name,
                s.runtime,
                fmt_value(s.median()),
                fmt_value(s.min()),
                fmt_value(s.max()),
                r.unit,
                ratio
            );
        }
    }
    out
}

/// The targets and whether this run met them.
pub(crate) fn targets(results: &[Result]) -> String {
    let mut out = String::new();
    out.push_str("| benchmark | target | measured | against | met |\n|---|---|---|---|---|\n");
    for r in results {
        if let (Some(t), Some((ratio, against))) = (&r.target, r.target_ratio()) {
            let cmp = if r.lower_is_better { "<=" } else { ">=" };
            let peers = if t.peers.len() > 1 {
                format!("the best of {}", t.peers.join(", "))
            } else {
                t.peers.join(", ")
            };
            let met = r.target_met().unwrap_or(false);
            let _ = writeln!(
                out,
                "| {} | {cmp} {}x {peers} | {ratio:.2}x | {against} | {} |",
                r.name,
                t.bound,
                if met { "yes" } else { "no" }
            );
        }
    }
    out
}
