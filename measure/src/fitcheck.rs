//! Where a straight line holds: lack-of-fit test, marginal cost per segment, selftest entry cost.
//!
//! A least-squares line over a sweep (cost against number of programs) says nothing about
//! whether the cost *is* linear; a curved cost gives a wrong slope and an intercept that can
//! go negative. This module checks the line against the replicated points (the classical
//! lack-of-fit F test, e.g. Montgomery, Peck & Vining, *Introduction to Linear Regression
//! Analysis*, section 4.5), gives the marginal cost between consecutive points of the sweep,
//! and takes the entry (fixed) cost the way the kernel's seccomp selftest does
//! (tools/testing/selftests/seccomp/seccomp_benchmark.c): from the two smallest counts
//! against the baseline, never from an extrapolated intercept.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use crate::estimate::{combine, json_f64, mean_with_se, Estimate};
use crate::stats::LinearFit;

/// p-value below which the lack-of-fit F test rejects the line (see [`LackOfFit::holds`]).
pub const LACK_OF_FIT_ALPHA: f64 = 0.01;

/// Result of the lack-of-fit F test of a line over replicated points, with the worst deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LackOfFit {
    /// The lack-of-fit statistic `(SS_lof / df_lof) / (SS_pe / df_pe)`.
    ///
    /// Infinite when the replicates agree exactly but the point means miss the line, 0 when both
    /// sums are 0.
    #[serde(with = "json_f64")]
    pub f: f64,
    /// Lack-of-fit degrees of freedom: distinct x values - 2.
    pub df_lof: f64,
    /// Pure-error degrees of freedom: points - distinct x values.
    pub df_pe: f64,
    /// `P(F(df_lof, df_pe) >= f)`.
    #[serde(with = "json_f64")]
    pub p_value: f64,
    /// Largest relative deviation of a point mean from the line, to say how far off it is.
    ///
    /// `|mean(y at x) - line(x)|` over the distinct x, relative to the line's largest magnitude
    /// over the sweep (the size of the effect; relative to `line(x)` itself, a line of overheads
    /// near 0 at x = 0 would make any deviation there look infinite).
    #[serde(with = "json_f64")]
    pub max_rel_dev: f64,
    /// x where that largest deviation is.
    pub worst_x: f64,
    /// The line holds: `p_value >= 0.01` or `max_rel_dev <= rel_tolerance`.
    ///
    /// With many samples the F test rejects any curvature, so a small relative deviation also
    /// counts as holding.
    pub holds: bool,
}

/// One distinct x and the y values measured there.
struct Group {
    x: f64,
    ys: Vec<f64>,
}

impl Group {
    fn mean(&self) -> f64 {
        self.ys.iter().sum::<f64>() / self.ys.len() as f64
    }
}

/// Groups (x, y) pairs by exact x, ascending. None for unequal lengths or a non-finite value.
fn group_by_x(xs: &[f64], ys: &[f64]) -> Option<Vec<Group>> {
    if xs.len() != ys.len() || xs.iter().chain(ys).any(|v| !v.is_finite()) {
        return None;
    }
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut groups: Vec<Group> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if g.x == xs[i] => g.ys.push(ys[i]),
            _ => groups.push(Group {
                x: xs[i],
                ys: vec![ys[i]],
            }),
        }
    }
    Some(groups)
}

/// Classical lack-of-fit F test with replicates: does a straight line describe the sweep?
///
/// Pure error comes from the within-x spread. None when fewer than 3 distinct x or no
/// replicate at any x.
///
/// The residual sum of squares about `fit` splits into pure error, `SS_pe = sum over x of
/// sum (y - mean(y at x))^2` on `N - m` df, and lack of fit, `SS_lof = sum over x of
/// n_x (mean(y at x) - line(x))^2` on `m - 2` df (N points, m distinct x). Under a straight
/// line `F = (SS_lof / (m-2)) / (SS_pe / (N-m))` follows `F(m-2, N-m)` (statrs
/// `FisherSnedecor`). `fit` should be the least-squares line of these same points
/// ([`crate::stats::fit_linear`]); another line is tested as given. Groups are formed by
/// exact x.
///
/// `rel_tolerance` is the largest relative deviation of a point mean from the line that still
/// counts as a straight line when the F test rejects it (a fraction, 0.05 = 5%). Also None
/// for unequal lengths or a non-finite value.
pub fn lack_of_fit(xs: &[f64], ys: &[f64], fit: &LinearFit, rel_tolerance: f64) -> Option<LackOfFit> {
    let groups = group_by_x(xs, ys)?;
    let (n, m) = (xs.len(), groups.len());
    if m < 3 || n <= m {
        return None;
    }
    let line = |x: f64| fit.intercept + fit.slope * x;
    // Deviations are relative to the line's largest magnitude over the sweep (the size of the
    // effect), not to its value at each x: near x = 0 an overhead line is close to 0 and any
    // deviation would look infinite.
    let scale = groups.iter().map(|g| line(g.x).abs()).fold(0.0_f64, f64::max);
    let mut ss_pe = 0.0;
    let mut ss_lof = 0.0;
    let mut max_rel_dev = f64::NEG_INFINITY;
    let mut worst_x = groups[0].x;
    for g in &groups {
        let mean = g.mean();
        ss_pe += g.ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>();
        let dev = mean - line(g.x);
        ss_lof += g.ys.len() as f64 * dev * dev;
        let rel = if dev == 0.0 { 0.0 } else { dev.abs() / scale };
        if rel > max_rel_dev {
            max_rel_dev = rel;
            worst_x = g.x;
        }
    }
    let (df_lof, df_pe) = ((m - 2) as f64, (n - m) as f64);
    let f = if ss_pe > 0.0 {
        (ss_lof / df_lof) / (ss_pe / df_pe)
    } else if ss_lof > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let p_value = FisherSnedecor::new(df_lof, df_pe).map_or(f64::NAN, |d| d.sf(f));
    Some(LackOfFit {
        f,
        df_lof,
        df_pe,
        p_value,
        max_rel_dev,
        worst_x,
        holds: p_value >= LACK_OF_FIT_ALPHA || max_rel_dev <= rel_tolerance,
    })
}

/// Marginal cost over one segment of a sweep: the slope between two consecutive x values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Lower x of the segment.
    pub x0: f64,
    /// Upper x of the segment.
    pub x1: f64,
    /// `(mean(y|x1) - mean(y|x0)) / (x1 - x0)` in y's unit per x unit (ns per program).
    pub slope: Estimate,
}

/// Slope between two independent estimates `(e1 - e0) / (x1 - x0)`, with Welch SE and df.
///
/// The SE is `sqrt(se0^2 + se1^2) / |x1 - x0|`, df by Welch–Satterthwaite ([`combine`]).
/// NaN estimate when `x1 == x0`.
pub fn slope_between(x0: f64, e0: Estimate, x1: f64, e1: Estimate) -> Estimate {
    let dx = x1 - x0;
    if dx == 0.0 || !dx.is_finite() {
        return Estimate {
            value: f64::NAN,
            se: f64::NAN,
            df: f64::NAN,
        };
    }
    combine(&[(1.0 / dx, e1), (-1.0 / dx, e0)])
}

/// Marginal cost between consecutive distinct x values, to show where a cost bends.
///
/// Each segment is `(mean(y|x1) - mean(y|x0)) / (x1 - x0)` with Welch SE and df. Input: all
/// (x, y) pairs; groups formed by exact x.
///
/// Each x's mean comes from [`mean_with_se`]; an x with fewer than 2 values has no SE and is
/// left out (the segment then spans from its neighbour below to its neighbour above).
/// Segments are in ascending x. Empty for unequal lengths, a non-finite value, or fewer than
/// two x values with replicates.
pub fn segments(xs: &[f64], ys: &[f64]) -> Vec<Segment> {
    let Some(groups) = group_by_x(xs, ys) else {
        return Vec::new();
    };
    let means: Vec<(f64, Estimate)> = groups
        .iter()
        .filter_map(|g| mean_with_se(&g.ys).ok().map(|e| (g.x, e)))
        .collect();
    means
        .windows(2)
        .map(|w| Segment {
            x0: w[0].0,
            x1: w[1].0,
            slope: slope_between(w[0].0, w[0].1, w[1].0, w[1].1),
        })
        .collect()
}

/// Entry (fixed) cost of a mechanism: the selftest's estimate, clamped at zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Entry (fixed) cost, ns, never negative: max(0, raw).
    #[serde(with = "json_f64")]
    pub entry: f64,
    /// The unclamped estimate with its SE.
    pub raw: Estimate,
    /// raw was below zero (then `entry` is 0 and a report must say so).
    pub clamped: bool,
}

impl Entry {
    /// Clamps an unclamped entry estimate at zero, recording whether it was clamped.
    ///
    /// A NaN raw value stays NaN in `entry` (not clamped).
    pub fn from_raw(raw: Estimate) -> Entry {
        let clamped = raw.value < 0.0;
        Entry {
            entry: if clamped { 0.0 } else { raw.value },
            raw,
            clamped,
        }
    }
}

/// Weights `(1 + k, -k)`, `k = x1 / (x2 - x1)`, of the selftest's extrapolation to x = 0.
fn entry_weights(x1: f64, x2: f64) -> Option<(f64, f64)> {
    if !(x1.is_finite() && x2.is_finite() && x2 > x1) {
        return None;
    }
    let k = x1 / (x2 - x1);
    Some((1.0 + k, -k))
}

fn nan_entry() -> Entry {
    Entry::from_raw(Estimate {
        value: f64::NAN,
        se: f64::NAN,
        df: f64::NAN,
    })
}

/// Entry cost as the kernel's seccomp selftest takes it, so it is never an extrapolated intercept.
///
/// From the two smallest x >= 1 against the baseline:
/// `entry = ov(x1) - x1 * (ov(x2) - ov(x1)) / (x2 - x1)`, where `ov` is the overhead over the
/// baseline (an [`Estimate`]). With x1 = 1, x2 = 2 this is the selftest's
/// `bitmap1 - native - (bitmap2 - bitmap1)`. SE propagated assuming independence.
///
/// Source: tools/testing/selftests/seccomp/seccomp_benchmark.c (`entry = bitmap1 - native -
/// per_filter`, `per_filter = bitmap2 - bitmap1`), generalised to any two counts: the line
/// through (x1, ov1) and (x2, ov2) evaluated at x = 0, `(1 + k) ov1 - k ov2` with
/// `k = x1 / (x2 - x1)`. Independence overstates the SE when ov1 and ov2 share a baseline
/// (the baseline's variance enters both); [`entry_cost_from_means`] propagates it exactly.
/// Needs `x2 > x1`, both finite; otherwise every field is NaN and `clamped` false.
pub fn entry_cost(x1: f64, ov1: Estimate, x2: f64, ov2: Estimate) -> Entry {
    match entry_weights(x1, x2) {
        Some((w1, w2)) => Entry::from_raw(combine(&[(w1, ov1), (w2, ov2)])),
        None => nan_entry(),
    }
}

/// Entry cost from the raw means (native, at x1, at x2), with the shared baseline counted once.
///
/// Same formula as [`entry_cost`], `(1 + k) at1 - k at2 - native` with `k = x1 / (x2 - x1)`,
/// but taking the three independently measured means so the SE counts the native baseline's
/// variance once (the weights of the baseline in `ov1` and `ov2` sum to 1). With x1 = 1,
/// x2 = 2: `2 bitmap1 - bitmap2 - native`, the selftest's expression.
pub fn entry_cost_from_means(native: Estimate, x1: f64, at1: Estimate, x2: f64, at2: Estimate) -> Entry {
    match entry_weights(x1, x2) {
        Some((w1, w2)) => Entry::from_raw(combine(&[(w1, at1), (w2, at2), (-1.0, native)])),
        None => nan_entry(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fit_linear;
    use crate::test_support::{close, normal_est};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// `reps` points at each x with y = f(x) + uniform noise in [-noise, noise].
    fn sweep(xs: &[f64], reps: usize, noise: f64, seed: u64, f: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut px = Vec::new();
        let mut py = Vec::new();
        for &x in xs {
            for _ in 0..reps {
                px.push(x);
                py.push(f(x) + noise * (2.0 * rng.random::<f64>() - 1.0));
            }
        }
        (px, py)
    }

    #[test]
    fn lack_of_fit_hand_computed() {
        // x 1..4 twice; y means 3 8 9 10, each pair -/+1. OLS line 2 + 2.2x; SS_pe = 8 on 4 df,
        // SS_lof = 9.6 on 2 df, F = 2.4, p = P(F(2,4) >= 2.4) = 0.20661157024793388 (mpmath).
        let xs = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
        let ys = [2.0, 4.0, 7.0, 9.0, 8.0, 10.0, 9.0, 11.0];
        let fit = fit_linear(&xs, &ys).unwrap();
        assert!(close(fit.slope, 2.2, 1e-12) && close(fit.intercept, 2.0, 1e-12));
        let l = lack_of_fit(&xs, &ys, &fit, 0.05).unwrap();
        assert!(close(l.f, 2.4, 1e-12), "F {}", l.f);
        assert_eq!((l.df_lof, l.df_pe), (2.0, 4.0));
        assert!(close(l.p_value, 0.206_611_570_247_933_9, 1e-9), "p {}", l.p_value);
        // Worst point: x = 2, |8 - 6.4| over the line's largest value, 10.8 at x = 4.
        assert!(close(l.max_rel_dev, 1.6 / 10.8, 1e-12) && l.worst_x == 2.0);
        assert!(l.holds, "p >= 0.01 holds even though the deviation is 15%");
        // Input order does not matter.
        let (rx, ry): (Vec<f64>, Vec<f64>) = xs.iter().rev().zip(ys.iter().rev()).map(|(a, b)| (*a, *b)).unzip();
        assert_eq!(lack_of_fit(&rx, &ry, &fit, 0.05), Some(l));
    }

    #[test]
    fn curved_relation_does_not_hold_linear_one_does() {
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        // Quadratic: clearly curved, far beyond a 5% tolerance.
        let (cx, cy) = sweep(&xs, 10, 2.0, 1, |x| 100.0 + x * x);
        let cfit = fit_linear(&cx, &cy).unwrap();
        let c = lack_of_fit(&cx, &cy, &cfit, 0.05).unwrap();
        assert!(!c.holds && c.p_value < 1e-10 && c.max_rel_dev > 0.1, "{c:?}");
        // Linear with noise: the F test does not reject.
        let (lx, ly) = sweep(&xs, 10, 2.0, 2, |x| 100.0 + 20.0 * x);
        let lfit = fit_linear(&lx, &ly).unwrap();
        let l = lack_of_fit(&lx, &ly, &lfit, 0.0).unwrap();
        assert!(l.holds && l.p_value >= 0.01 && l.max_rel_dev < 0.01, "{l:?}");
        assert_eq!((l.df_lof, l.df_pe), (4.0, 54.0));
    }

    #[test]
    fn small_curvature_holds_only_within_tolerance() {
        // Many quiet samples: the F test sees a 1% bend, the tolerance decides.
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (px, py) = sweep(&xs, 200, 0.5, 3, |x| 1000.0 + 20.0 * x + 0.5 * x * x);
        let fit = fit_linear(&px, &py).unwrap();
        let tight = lack_of_fit(&px, &py, &fit, 0.001).unwrap();
        assert!(tight.p_value < 0.01 && !tight.holds, "{tight:?}");
        let loose = lack_of_fit(&px, &py, &fit, 0.05).unwrap();
        assert!(
            loose.p_value < 0.01 && loose.max_rel_dev < 0.05 && loose.holds,
            "{loose:?}"
        );
    }

    #[test]
    fn lack_of_fit_refuses_what_it_cannot_test() {
        let fit = fit_linear(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]).unwrap();
        // No replicate.
        assert_eq!(lack_of_fit(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0], &fit, 0.05), None);
        // Two distinct x.
        assert_eq!(
            lack_of_fit(&[1.0, 1.0, 2.0, 2.0], &[1.0, 2.0, 3.0, 4.0], &fit, 0.05),
            None
        );
        assert_eq!(lack_of_fit(&[1.0, 2.0], &[1.0], &fit, 0.05), None);
        assert_eq!(
            lack_of_fit(&[1.0, 2.0, 3.0, 3.0], &[1.0, f64::NAN, 3.0, 3.0], &fit, 0.05),
            None
        );
        // Exact replicates on an exact line: F = 0, p = 1; off the line: F infinite, p = 0.
        let xs = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let on = [3.0, 3.0, 5.0, 5.0, 7.0, 7.0];
        let fit = fit_linear(&xs, &on).unwrap();
        let l = lack_of_fit(&xs, &on, &fit, 0.0).unwrap();
        assert!(
            l.f == 0.0 && close(l.p_value, 1.0, 1e-12) && l.holds && l.max_rel_dev == 0.0,
            "{l:?}"
        );
        let off = [3.0, 3.0, 6.0, 6.0, 7.0, 7.0];
        let fit = fit_linear(&xs, &off).unwrap();
        let l = lack_of_fit(&xs, &off, &fit, 0.0).unwrap();
        assert!(l.f.is_infinite() && l.p_value == 0.0 && !l.holds, "{l:?}");
    }

    #[test]
    fn segments_give_marginal_cost_with_welch_se() {
        // Cost 20 ns per program up to 8, 26 beyond: segments see both.
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0];
        let cost = |x: f64| {
            if x <= 8.0 {
                100.0 + 20.0 * x
            } else {
                260.0 + 26.0 * (x - 8.0)
            }
        };
        let (px, py) = sweep(&xs, 30, 3.0, 4, cost);
        let segs = segments(&px, &py);
        assert_eq!(segs.len(), 4);
        assert_eq!((segs[0].x0, segs[0].x1, segs[3].x0, segs[3].x1), (1.0, 2.0, 8.0, 16.0));
        for s in &segs[..3] {
            let ci = s.slope.ci(0.95);
            assert!(ci[0] < 20.0 && 20.0 < ci[1], "{s:?}");
        }
        let last = segs[3].slope.ci(0.95);
        assert!(last[0] < 26.0 && 26.0 < last[1] && last[0] > 20.0, "{:?}", segs[3]);
        // Hand-computed: x=0: 1 2 3 (mean 2, var/n 1/3); x=2: 6 8 10 (mean 8, var/n 4/3).
        // slope = 3, se = sqrt(5/3) / 2, df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 100/34.
        let s = segments(&[0.0, 2.0, 0.0, 2.0, 0.0, 2.0], &[1.0, 6.0, 2.0, 8.0, 3.0, 10.0]);
        assert_eq!(s.len(), 1);
        assert!(close(s[0].slope.value, 3.0, 1e-12));
        assert!(close(s[0].slope.se, (5.0f64 / 3.0).sqrt() / 2.0, 1e-12));
        assert!(close(s[0].slope.df, 100.0 / 34.0, 1e-12), "df {}", s[0].slope.df);
        // An x with a single value is skipped; bad input gives no segments.
        let s = segments(&[0.0, 0.0, 1.0, 2.0, 2.0], &[1.0, 3.0, 50.0, 5.0, 7.0]);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].x0, s[0].x1, s[0].slope.value), (0.0, 2.0, 2.0));
        assert!(segments(&[1.0, 2.0], &[1.0]).is_empty());
        assert!(segments(&[1.0, 1.0, 2.0, 2.0], &[1.0, 1.0, f64::INFINITY, 2.0]).is_empty());
        assert!(segments(&[], &[]).is_empty());
    }

    #[test]
    fn entry_cost_follows_the_selftest() {
        // The selftest: bitmap1 - native = 20, bitmap2 - native = 38 -> per filter 18, entry 2.
        let e = entry_cost(1.0, normal_est(20.0, 1.0), 2.0, normal_est(38.0, 1.0));
        assert!(close(e.entry, 2.0, 1e-12) && close(e.raw.value, 2.0, 1e-12) && !e.clamped);
        // raw = 2 ov1 - ov2: se = sqrt(4 + 1).
        assert!(close(e.raw.se, 5f64.sqrt(), 1e-12));
        assert_eq!(e.raw.df, f64::INFINITY);
        // Other counts: ov(2) = 50, ov(4) = 90 -> 20 per program, entry 50 - 2*20 = 10.
        let e = entry_cost(2.0, normal_est(50.0, 0.0), 4.0, normal_est(90.0, 0.0));
        assert!(close(e.entry, 10.0, 1e-12) && e.raw.se == 0.0);
        // A negative raw entry clamps to 0 and says so.
        let neg = entry_cost(1.0, normal_est(20.0, 1.0), 2.0, normal_est(45.0, 1.0));
        assert!(
            neg.clamped && neg.entry == 0.0 && close(neg.raw.value, -5.0, 1e-12),
            "{neg:?}"
        );
        // t-distributed inputs: df by Satterthwaite with weights 2 and -1.
        let t = |v| Estimate {
            value: v,
            se: 1.0,
            df: 9.0,
        };
        let e = entry_cost(1.0, t(20.0), 2.0, t(38.0));
        assert!(close(e.raw.df, 25.0 / ((16.0 + 1.0) / 9.0), 1e-9), "df {}", e.raw.df);
        // Bad x: NaN, not clamped.
        for (x1, x2) in [(2.0, 2.0), (2.0, 1.0), (f64::NAN, 2.0)] {
            let bad = entry_cost(x1, t(1.0), x2, t(2.0));
            assert!(bad.entry.is_nan() && bad.raw.value.is_nan() && !bad.clamped);
        }
    }

    #[test]
    fn entry_from_means_counts_the_baseline_once() {
        // native 88, bitmap1 108, bitmap2 126: entry 2 * 108 - 126 - 88 = 2.
        let (native, b1, b2) = (normal_est(88.0, 1.0), normal_est(108.0, 1.0), normal_est(126.0, 1.0));
        let e = entry_cost_from_means(native, 1.0, b1, 2.0, b2);
        assert!(close(e.entry, 2.0, 1e-12) && !e.clamped);
        assert!(close(e.raw.se, 6f64.sqrt(), 1e-12), "se {}", e.raw.se);
        // Through overheads with independence the baseline counts 4 + 1 times instead of once.
        let ov = |m: Estimate| crate::estimate::difference(m, native);
        let via_ov = entry_cost(1.0, ov(b1), 2.0, ov(b2));
        assert!(close(via_ov.raw.value, 2.0, 1e-12) && close(via_ov.raw.se, 10f64.sqrt(), 1e-12));
        let neg = entry_cost_from_means(native, 1.0, b1, 2.0, normal_est(140.0, 1.0));
        assert!(neg.clamped && neg.entry == 0.0);
        assert!(entry_cost_from_means(native, 3.0, b1, 3.0, b2).raw.value.is_nan());
    }

    #[test]
    fn json_round_trip() {
        let l = LackOfFit {
            f: f64::INFINITY,
            df_lof: 2.0,
            df_pe: 4.0,
            p_value: 0.0,
            max_rel_dev: 0.5,
            worst_x: 1.0,
            holds: false,
        };
        let back: LackOfFit = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        let e = entry_cost(1.0, normal_est(20.0, 1.0), 2.0, normal_est(45.0, 1.0));
        let back: Entry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
