//! Samples of the server process (descriptors, resident memory, live clients), one a second, and
//! the rule that says whether a curve is flat.
//!
//! The rule, for a curve sampled after the warm-up: its *level* is the median of its first five
//! samples; every later sample is within [`TOLERANCE`] of the level (10%), and the least-squares
//! slope over the last half of the run, times that half's length, is at most [`TREND`] of the
//! level (5%): a leak of a few bytes per connection shows as a trend long before it crosses 10%.

use std::fmt;

/// How far above its level a flat curve may go.
pub(crate) const TOLERANCE: f64 = 0.10;

/// How far a flat curve may climb over the last half of the run, as a share of its level.
pub(crate) const TREND: f64 = 0.05;

/// One second's sample.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Seconds since the load started.
    pub(crate) t: u64,
    pub(crate) fds: u64,
    pub(crate) rss: u64,
    pub(crate) live: u64,
}

/// The process's open descriptors.
pub(crate) fn fd_count() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// The process's resident memory in bytes.
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

/// Why a curve is not flat.
#[derive(Debug, PartialEq)]
pub(crate) enum NotFlat {
    /// Fewer samples after the warm-up than the rule needs.
    TooShort(usize),
    /// A sample above the level by more than the tolerance.
    Above { t: u64, value: f64, level: f64 },
    /// A climb over the last half.
    Trend { climb: f64, level: f64 },
}

impl fmt::Display for NotFlat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFlat::TooShort(n) => write!(f, "only {n} samples after the warm-up"),
            NotFlat::Above { t, value, level } => {
                write!(f, "{value:.0} at {t} s, over {level:.0} + 10%")
            }
            NotFlat::Trend { climb, level } => {
                write!(f, "climbs {climb:.0} over the last half (level {level:.0})")
            }
        }
    }
}

/// The level of a flat curve and its largest excursion, for the summary.
#[derive(Debug)]
pub(crate) struct Flat {
    pub(crate) level: f64,
    pub(crate) max: f64,
    /// The climb over the last half (negative: a fall).
    pub(crate) climb: f64,
}

/// Checks `points` (time in seconds, value) against the flatness rule.
pub(crate) fn flat(points: &[(u64, f64)]) -> Result<Flat, NotFlat> {
    if points.len() < 10 {
        return Err(NotFlat::TooShort(points.len()));
    }
    let mut first: Vec<f64> = points[..5].iter().map(|p| p.1).collect();
    first.sort_by(f64::total_cmp);
    let level = first[2];
    let mut max = level;
    for &(t, value) in points {
        if value > level * (1.0 + TOLERANCE) {
            return Err(NotFlat::Above { t, value, level });
        }
        max = max.max(value);
    }
    let half = &points[points.len() / 2..];
    let span = (half[half.len() - 1].0 - half[0].0) as f64;
    let climb = slope(half) * span;
    if climb > level * TREND {
        return Err(NotFlat::Trend { climb, level });
    }
    Ok(Flat { level, max, climb })
}

/// The least-squares slope of `points`.
fn slope(points: &[(u64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0 as f64).sum::<f64>() / n;
    let mv = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, v) in points {
        num += (t as f64 - mt) * (v - mv);
        den += (t as f64 - mt) * (t as f64 - mt);
    }
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(u64) -> f64) -> Vec<(u64, f64)> {
        (0..60).map(|t| (t, f(t))).collect()
    }

    #[test]
    fn a_noisy_level_curve_is_flat() {
        let c = curve(|t| 1000.0 + if t % 2 == 0 { 30.0 } else { -30.0 });
        let f = flat(&c).unwrap();
        assert!((f.level - 970.0).abs() < 61.0, "{f:?}");
        assert!(f.climb.abs() < 10.0, "{f:?}");
    }

    #[test]
    fn a_spike_over_ten_percent_is_not_flat() {
        let c = curve(|t| if t == 40 { 1200.0 } else { 1000.0 });
        assert_eq!(
            flat(&c).unwrap_err(),
            NotFlat::Above {
                t: 40,
                value: 1200.0,
                level: 1000.0
            }
        );
    }

    #[test]
    fn a_slow_leak_is_a_trend_before_it_is_a_spike() {
        // A leak that starts half-way: 5.8% by the end, under the 10% bound.
        let c = curve(|t| 1000.0 + 2.0 * t.saturating_sub(30) as f64);
        assert!(matches!(flat(&c), Err(NotFlat::Trend { .. })), "{c:?}");
    }

    #[test]
    fn a_falling_curve_is_flat_and_a_short_one_is_refused() {
        assert!(flat(&curve(|t| 1000.0 - t as f64)).is_ok());
        assert_eq!(
            flat(&curve(|_| 1.0)[..9]).unwrap_err(),
            NotFlat::TooShort(9)
        );
    }
}
