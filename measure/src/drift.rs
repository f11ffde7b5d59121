//! Drift of a baseline over a run: how far repeated measurements of one cell wander with time.
//!
//! When each cell's repetitions alternate with its baseline's, the baseline is measured many
//! times over the run; if the machine's speed drifts (frequency, thermal, noisy neighbours),
//! those measurements show it. A sweep measured in one order would turn such a drift into a
//! slope, so each run reports this alongside its results. The trend is an ordinary
//! least-squares line of value over time ([`crate::stats::fit_linear`]).

use serde::{Deserialize, Serialize};

use crate::estimate::json_f64;
use crate::stats::{fit_linear, percentile_sorted};

/// Seconds per hour: slopes are reported per hour of run time.
const S_PER_HOUR: f64 = 3600.0;

/// Drift of one baseline's repeated measurements over a run (values in their unit, e.g. ns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Number of measurements.
    pub n: usize,
    /// Value of the earliest measurement.
    pub first: f64,
    /// Value of the latest measurement.
    pub last: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// (max - min) / median of the values.
    ///
    /// The median is the nearest-rank one of [`percentile_sorted`], taken in magnitude.
    #[serde(with = "json_f64")]
    pub rel_range: f64,
    /// Trend of the value over the run, as a fraction of the median per hour.
    ///
    /// Least-squares slope of value over time, per hour, divided by the median; its 95% CI is
    /// `rel_slope_ci95`.
    #[serde(with = "json_f64")]
    pub rel_slope_per_hour: f64,
    /// 95% CI of `rel_slope_per_hour` (Student's t on n - 2 df); `[-inf, inf]` with 2 points.
    #[serde(with = "json_f64::array")]
    pub rel_slope_ci95: [f64; 2],
    /// Time from the earliest to the latest measurement, s.
    pub span_s: f64,
}

/// `x / |median|`; with a zero median, 0 for a zero `x` and an infinity of `x`'s sign otherwise.
fn relative(x: f64, median: f64) -> f64 {
    if median == 0.0 {
        if x == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(x)
        }
    } else {
        x / median.abs()
    }
}

/// Drift of a baseline's repeated measurements over a run, to tell drift from a real slope.
///
/// Points are (seconds since run start, value). None with fewer than 2 points.
///
/// Points may come in any order; `first` and `last` are by time (the input order breaks
/// ties). Also None when a time or value is not finite, or all times are equal (no slope).
/// With 2 points the slope is the line through them and its CI is unbounded.
pub fn drift(points: &[(f64, f64)]) -> Option<Drift> {
    let n = points.len();
    if n < 2 || points.iter().any(|(t, v)| !t.is_finite() || !v.is_finite()) {
        return None;
    }
    let mut by_time = points.to_vec();
    by_time.sort_by(|a, b| a.0.total_cmp(&b.0));
    let span_s = by_time[n - 1].0 - by_time[0].0;
    if span_s == 0.0 {
        return None;
    }
    let hours: Vec<f64> = by_time.iter().map(|(t, _)| t / S_PER_HOUR).collect();
    let values: Vec<f64> = by_time.iter().map(|(_, v)| *v).collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let (min, max) = (sorted[0], sorted[n - 1]);
    let median = percentile_sorted(&sorted, 0.5);
    let (slope, ci) = if n == 2 {
        (
            (values[1] - values[0]) / (hours[1] - hours[0]),
            [f64::NEG_INFINITY, f64::INFINITY],
        )
    } else {
        let fit = fit_linear(&hours, &values).ok()?;
        (fit.slope, [fit.slope_ci95.0, fit.slope_ci95.1])
    };
    Some(Drift {
        n,
        first: values[0],
        last: values[n - 1],
        min,
        max,
        rel_range: relative(max - min, median),
        rel_slope_per_hour: relative(slope, median),
        rel_slope_ci95: [relative(ci[0], median), relative(ci[1], median)],
        span_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::close;

    #[test]
    fn constant_series_has_no_drift() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (30.0 * i as f64, 250.0)).collect();
        let d = drift(&pts).unwrap();
        assert_eq!((d.n, d.first, d.last, d.min, d.max), (20, 250.0, 250.0, 250.0, 250.0));
        assert_eq!(d.rel_range, 0.0);
        assert_eq!(d.rel_slope_per_hour, 0.0);
        assert_eq!(d.rel_slope_ci95, [0.0, 0.0]);
        assert_eq!(d.span_s, 570.0);
    }

    #[test]
    fn rising_series_has_positive_slope() {
        // 100 ns rising by 2 ns over 10 minutes (12 ns per hour), with a -/+0.1 ns wobble.
        let pts: Vec<(f64, f64)> = (0..=60)
            .map(|i| {
                let t = 10.0 * i as f64;
                (t, 100.0 + 12.0 * t / 3600.0 + if i % 2 == 0 { 0.1 } else { -0.1 })
            })
            .collect();
        let d = drift(&pts).unwrap();
        assert!(d.rel_slope_per_hour > 0.0 && d.rel_slope_ci95[0] > 0.0, "{d:?}");
        // Median value 101 (nearest rank): 12 / 101 per hour.
        assert!(close(d.rel_slope_per_hour, 12.0 / 101.0, 0.005), "{d:?}");
        assert!(d.rel_slope_ci95[0] < 12.0 / 101.0 && 12.0 / 101.0 < d.rel_slope_ci95[1]);
        assert!(close(d.first, 100.1, 1e-12) && close(d.last, 102.1, 1e-9));
        assert!(close(d.rel_range, (d.max - d.min) / 101.0, 0.001));
        // Falling: negative.
        let down: Vec<(f64, f64)> = pts.iter().map(|(t, v)| (*t, 300.0 - v)).collect();
        assert!(drift(&down).unwrap().rel_slope_ci95[1] < 0.0);
    }

    #[test]
    fn order_of_points_does_not_matter() {
        let pts = [(0.0, 10.0), (3600.0, 12.0), (1800.0, 11.0), (900.0, 10.5)];
        let mut rev = pts;
        rev.reverse();
        let d = drift(&pts).unwrap();
        assert_eq!(drift(&rev), Some(d));
        assert_eq!((d.first, d.last, d.span_s), (10.0, 12.0, 3600.0));
        // Exact line 10 + 2 per hour; nearest-rank median of 10 10.5 11 12 is 10.5.
        assert!(close(d.rel_slope_per_hour, 2.0 / 10.5, 1e-12), "{d:?}");
    }

    #[test]
    fn two_points_and_bad_input() {
        let d = drift(&[(0.0, 100.0), (1800.0, 101.0)]).unwrap();
        assert!(close(d.rel_slope_per_hour, 2.0 / 100.0, 1e-12), "{d:?}");
        assert_eq!(d.rel_slope_ci95, [f64::NEG_INFINITY, f64::INFINITY]);
        assert!(close(d.rel_range, 0.01, 1e-12));
        assert_eq!(drift(&[]), None);
        assert_eq!(drift(&[(0.0, 1.0)]), None);
        assert_eq!(drift(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]), None);
        assert_eq!(drift(&[(0.0, 1.0), (1.0, f64::NAN)]), None);
        // A zero median: relative figures are infinite in the direction of the change.
        let z = drift(&[(0.0, 0.0), (3600.0, 0.0), (7200.0, 1.0)]).unwrap();
        assert_eq!((z.rel_range, z.rel_slope_per_hour), (f64::INFINITY, f64::INFINITY));
    }

    #[test]
    fn json_round_trip_with_unbounded_ci() {
        let d = drift(&[(0.0, 100.0), (1800.0, 101.0)]).unwrap();
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("[\"-inf\",\"inf\"]"), "{text}");
        let back: Drift = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
    }
}
