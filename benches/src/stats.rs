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
    /// The target this benchmark is held to, if any, e.g. "<= 0.5x tokio-ct".
    pub(crate) target: Option<(&'static str, f64)>,
}

impl Result {
    fn of(&self, runtime: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.runtime == runtime)
    }

    /// curio-rt's median divided by `peer`'s.
    pub(crate) fn ratio(&self, peer: &str) -> Option<f64> {
        Some(self.of("curio-rt")?.median() / self.of(peer)?.median())
    }

    /// Whether the target is met, if there is one.
    pub(crate) fn target_met(&self) -> Option<bool> {
        let (peer, bound) = self.target?;
        let r = self.ratio(peer)?;
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
                .filter(|_| s.runtime != "curio-rt")
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
    out.push_str("| benchmark | target | measured | met |\n|---|---|---|---|\n");
    for r in results {
        if let (Some((peer, bound)), Some(ratio)) =
            (r.target, r.target.and_then(|(p, _)| r.ratio(p)))
        {
            let cmp = if r.lower_is_better { "<=" } else { ">=" };
            let met = r.target_met().unwrap_or(false);
            let _ = writeln!(
                out,
                "| {} | {cmp} {bound}x {peer} | {ratio:.2}x | {} |",
                r.name,
                if met { "yes" } else { "no" }
            );
        }
    }
    out
}
