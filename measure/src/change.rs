//! Tests of a change between runs: range separation, family-wise critical values, robust spread.
//!
//! `hookbench compare` judges each cell with these. With three or more runs per side it uses
//! the range separation of the kernel test robot (lkp-tests `lib/stats.rb`, `gap?`): the runs'
//! figures are sorted, `n >> 5` are dropped from each end, and a change counts only when the
//! two ranges do not overlap and the gap between them is at least half the difference of their
//! medians. With fewer runs it uses a z-test whose critical value is corrected for the number of
//! cells judged at once (Bonferroni), so that a few hundred cells do not turn noise into a
//! regression.

use crate::estimate::{two_sided_critical, Estimate};
use crate::stats::percentile_sorted;

/// How many of `n` sorted runs the robot drops from each end before taking min and max.
///
/// lkp-tests' `sort_remove_margin`: `n >> 5` (none below 32 runs).
pub fn range_margin(n: usize) -> usize {
    n >> 5
}

/// The trimmed minimum, median and maximum of repeated runs' figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Smallest figure after dropping [`range_margin`] runs from each end.
    pub min: f64,
    /// Nearest-rank median of the kept figures.
    pub median: f64,
    /// Largest kept figure.
    pub max: f64,
}

impl Range {
    /// The range of `values` (NaN dropped); `None` when none is left.
    pub fn of(values: &[f64]) -> Option<Range> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let m = range_margin(sorted.len());
        let kept = &sorted[m..sorted.len() - m];
        Some(Range {
            min: kept[0],
            median: percentile_sorted(kept, 0.5),
            max: kept[kept.len() - 1],
        })
    }

    /// `max - min`: how far the runs of one side spread.
    pub fn width(&self) -> f64 {
        self.max - self.min
    }
}

/// Which way two ranges are separated, if they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separation {
    /// NEW's range lies above BASE's, with a gap of at least half the median difference.
    Up,
    /// NEW's range lies below BASE's, likewise.
    Down,
    /// The ranges overlap, or the gap is too narrow.
    None,
}

/// The robot's range separation of `new` against `base` (lkp-tests `gap?` with factor 1/2).
///
/// `Up` when `new.min > base.max` and `new.min - base.max > (new.median - base.median) / 2`;
/// `Down` mirrored; `None` otherwise.
pub fn separation(base: &Range, new: &Range) -> Separation {
    if new.min > base.max && new.min - base.max > (new.median - base.median) / 2.0 {
        Separation::Up
    } else if base.min > new.max && base.min - new.max > (base.median - new.median) / 2.0 {
        Separation::Down
    } else {
        Separation::None
    }
}

/// Two-sided normal critical value for `tests` tests at family-wise level `alpha` (Bonferroni).
///
/// `z` with `P(|Z| > z) = alpha / tests`; NaN for an `alpha` outside `(0, 1)`. `tests` 0
/// counts as 1.
pub fn familywise_critical(alpha: f64, tests: usize) -> f64 {
    if alpha.is_nan() || alpha <= 0.0 || alpha >= 1.0 {
        return f64::NAN;
    }
    let per_test = alpha / tests.max(1) as f64;
    two_sided_critical(1.0 - per_test, f64::INFINITY)
}

/// 1.4826 x the median absolute deviation: a standard deviation a few outliers cannot inflate.
///
/// NaN values are ignored; `None` for fewer than 3 values.
pub fn robust_sd(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.len() < 3 {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let median = percentile_sorted(&sorted, 0.5);
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some(1.4826 * percentile_sorted(&dev, 0.5))
}

/// Inverse-variance weighted mean of independent `(value, se)` pairs, with its standard error.
///
/// Pairs with a zero `se` are exact: when there are any, the result is their plain mean with a
/// zero `se`. Pairs whose value or se is not finite are ignored; `None` when none is left.
pub fn weighted_mean(pairs: &[(f64, f64)]) -> Option<Estimate> {
    let usable: Vec<(f64, f64)> = pairs
        .iter()
        .copied()
        .filter(|(v, se)| v.is_finite() && se.is_finite() && *se >= 0.0)
        .collect();
    if usable.is_empty() {
        return None;
    }
    let exact: Vec<f64> = usable.iter().filter(|(_, se)| *se == 0.0).map(|(v, _)| *v).collect();
    if !exact.is_empty() {
        return Some(Estimate {
            value: exact.iter().sum::<f64>() / exact.len() as f64,
            se: 0.0,
            df: f64::INFINITY,
        });
    }
    let weight: f64 = usable.iter().map(|(_, se)| 1.0 / (se * se)).sum();
    let value = usable.iter().map(|(v, se)| v / (se * se)).sum::<f64>() / weight;
    Some(Estimate {
        value,
        se: 1.0 / weight.sqrt(),
        df: f64::INFINITY,
    })
}

/// Pooled relative standard deviation of several series (each relative to its own median).
///
/// For the repeated baselines of a run: each series is one baseline measured again and again;
/// its variance over its squared median, pooled with `n - 1` weights. Series with fewer than 2
/// finite values or a zero median are skipped; `None` when none is left.
pub fn pooled_relative_sd(series: &[Vec<f64>]) -> Option<f64> {
    let (mut sum, mut df) = (0.0, 0usize);
    for values in series {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.len() < 2 {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let median = percentile_sorted(&v, 0.5);
        if median == 0.0 {
            continue;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        sum += (n - 1.0) * var / (median * median);
        df += v.len() - 1;
    }
    (df > 0).then(|| (sum / df as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_separate_only_with_a_gap_of_half_the_median_difference() {
        let base = Range::of(&[10.0, 11.0, 12.0]).expect("values");
        assert_eq!((base.min, base.median, base.max), (10.0, 11.0, 12.0));
        let apart = Range::of(&[15.0, 16.0, 17.0]).expect("values");
        assert_eq!(separation(&base, &apart), Separation::Up);
        assert_eq!(separation(&apart, &base), Separation::Down);
        // Apart, but the gap (0.5) is less than half the median difference (5.5 / 2).
        let wide = Range::of(&[12.5, 16.5, 30.0]).expect("values");
        assert_eq!(separation(&base, &wide), Separation::None);
        let overlapping = Range::of(&[11.5, 13.0, 14.0]).expect("values");
        assert_eq!(separation(&base, &overlapping), Separation::None);
    }

    #[test]
    fn the_robot_trims_one_run_per_32_from_each_end() {
        assert_eq!(range_margin(31), 0);
        assert_eq!(range_margin(64), 2);
        let mut v: Vec<f64> = (0..32).map(f64::from).collect();
        v.push(1000.0);
        let r = Range::of(&v).expect("values");
        assert_eq!((r.min, r.max), (1.0, 31.0));
        assert!(Range::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn familywise_critical_values_grow_with_the_number_of_tests() {
        assert!((familywise_critical(0.05, 1) - 1.959964).abs() < 1e-5);
        assert!((familywise_critical(0.05, 100) - 3.4807).abs() < 1e-3);
        assert!(familywise_critical(0.05, 300) > familywise_critical(0.05, 100));
        assert!(familywise_critical(1.5, 3).is_nan());
    }

    #[test]
    fn robust_sd_ignores_an_outlier_and_weighted_mean_trusts_precise_values() {
        let sd = robust_sd(&[1.0, 2.0, 3.0, 4.0, 1000.0]).expect("5 values");
        assert!((sd - 1.4826).abs() < 1e-9, "{sd}");
        assert!(robust_sd(&[1.0, 2.0]).is_none());
        let m = weighted_mean(&[(10.0, 1.0), (20.0, 3.0)]).expect("pairs");
        assert!(
            (m.value - 11.0).abs() < 1e-9 && (m.se - (0.9_f64).sqrt()).abs() < 1e-9,
            "{m:?}"
        );
        let exact = weighted_mean(&[(5.0, 0.0), (7.0, 0.0), (100.0, 1.0)]).expect("pairs");
        assert_eq!((exact.value, exact.se), (6.0, 0.0));
        assert!(weighted_mean(&[(f64::NAN, 1.0)]).is_none());
    }

    #[test]
    fn pooled_relative_sd_weighs_series_by_their_degrees_of_freedom() {
        // sd 1 around a median of 10 (10%, 2 df), and a second series of 4 values (3 df).
        let sd = pooled_relative_sd(&[vec![9.0, 10.0, 11.0], vec![98.0, 100.0, 101.0, 102.0]]).expect("series");
        let second = {
            let v = [98.0_f64, 100.0, 101.0, 102.0];
            let m = v.iter().sum::<f64>() / 4.0;
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 3.0 / (100.5_f64 * 100.5)
        };
        // The nearest-rank median of 4 values is the 2nd: 100.
        let second = second * 100.5_f64.powi(2) / 100.0_f64.powi(2);
        let expected = ((2.0 * 0.01 + 3.0 * second) / 5.0).sqrt();
        assert!((sd - expected).abs() < 1e-12, "{sd} vs {expected}");
        assert!(pooled_relative_sd(&[vec![1.0]]).is_none());
    }
}
