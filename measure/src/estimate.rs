//! Point estimates with standard errors: overhead over a baseline, medians, equivalence tests.
//!
//! Every figure hookbench compares is an [`Estimate`]: a value, its standard error and the
//! degrees of freedom of the reference distribution (Student's t, or the normal when `df` is
//! infinite). Differences of independent estimates combine their SEs in quadrature with the
//! Welch–Satterthwaite degrees of freedom, so the difference of two sample means is exactly
//! Welch's (1947) unequal-variances estimate.
//!
//! Sources:
//! - B. L. Welch (1947), "The generalization of 'Student's' problem when several different
//!   population variances are involved", *Biometrika* 34, 28–35; F. E. Satterthwaite (1946),
//!   "An approximate distribution of estimates of variance components", *Biometrics Bulletin*
//!   2, 110–114.
//! - R. M. Price & D. G. Bonett (2001), "Estimating the variance of the sample median",
//!   *J. Statist. Comput. Simul.* 68, 295–305; D. G. Bonett & R. M. Price (2002), "Statistical
//!   inference for a linear function of medians", *Psychological Methods* 7, 370–383 (the
//!   distribution-free SE of a median used by [`median_with_se`]).
//! - D. J. Schuirmann (1987), "A comparison of the two one-sided tests procedure and the power
//!   approach for assessing the equivalence of average bioavailability", *J. Pharmacokinetics
//!   and Biopharmaceutics* 15, 657–680 ([`tost`]).

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};
use thiserror::Error;

use crate::stats::percentile_sorted;

/// Degrees of freedom above which Student's t is replaced by the normal distribution.
pub const NORMAL_DF: f64 = 1e6;

/// A point estimate with its standard error and degrees of freedom (f64::INFINITY = normal).
///
/// Units are those of `value` (ns for latencies). In JSON every field is a number, except a
/// non-finite one: `"inf"`, `"-inf"` or `"nan"` (see [`json_f64`]); an infinite `df` is
/// written `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    #[serde(with = "json_f64")]
    pub value: f64,
    /// Its standard error, same unit as `value`.
    #[serde(with = "json_f64")]
    pub se: f64,
    /// Degrees of freedom of the Student's t reference distribution.
    ///
    /// `f64::INFINITY` (or anything above [`NORMAL_DF`]) means the standard normal.
    #[serde(with = "json_f64")]
    pub df: f64,
}

impl Estimate {
    /// Two-sided confidence interval at `level` (e.g. 0.95), to report the estimate's precision.
    ///
    /// From Student's t on `df` (normal when df is infinite or > 1e6): `value -/+ q * se` with
    /// `q` from [`two_sided_critical`]. A zero `se` gives `[value, value]`; a `level` outside
    /// `(0, 1)` or a `df` that is not positive gives NaN bounds.
    pub fn ci(&self, level: f64) -> [f64; 2] {
        let half = self.half_width(level);
        [self.value - half, self.value + half]
    }

    /// Half-width of the two-sided confidence interval at `level`: `q * se` (0 when `se` is 0).
    pub fn half_width(&self, level: f64) -> f64 {
        if self.se == 0.0 && (level > 0.0 && level < 1.0) {
            return 0.0;
        }
        two_sided_critical(level, self.df) * self.se
    }
}

/// Critical value `q` with `P(|T| <= q) = level` for Student's t on `df`, so CIs match tables.
///
/// The normal quantile when `df` is infinite or above [`NORMAL_DF`]; statrs'
/// `StudentsT::inverse_cdf` / `Normal::inverse_cdf` at `(1 + level) / 2`. NaN when `level` is
/// outside `(0, 1)` or `df` is not positive (NaN included).
pub fn two_sided_critical(level: f64, df: f64) -> f64 {
    if !is_probability(level) || !is_positive(df) {
        return f64::NAN;
    }
    quantile(0.5 + level / 2.0, df)
}

/// `p` is strictly between 0 and 1 (false for NaN).
fn is_probability(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

/// `x` is above 0 (false for NaN).
fn is_positive(x: f64) -> bool {
    x > 0.0
}

/// `P(T_df <= x)`, the normal CDF when `df` is infinite or above [`NORMAL_DF`]; NaN for bad df.
fn cdf(x: f64, df: f64) -> f64 {
    if !is_positive(df) || x.is_nan() {
        return f64::NAN;
    }
    with_t(df, |t| t.cdf(x))
}

/// Inverse CDF at `p` in `(0, 1)` of Student's t on `df > 0` (normal above [`NORMAL_DF`]).
fn quantile(p: f64, df: f64) -> f64 {
    if !is_probability(p) || !is_positive(df) {
        return f64::NAN;
    }
    with_t(df, |t| t.inverse_cdf(p))
}

/// `f` of the standard Student's t on `df` degrees of freedom (the normal above [`NORMAL_DF`]).
///
/// NaN when `df` makes no t distribution.
fn with_t(df: f64, f: impl Fn(&dyn ContinuousCDF<f64, f64>) -> f64) -> f64 {
    if df > NORMAL_DF {
        return f(&Normal::standard());
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => f(&t),
        Err(_) => f64::NAN,
    }
}

/// Overhead of a cell over its baseline (same trigger, no programs), ns.
///
/// Both are differences of the raw samples' statistics; the raw percentiles themselves are
/// reported elsewhere, unshifted. In JSON: `{"mean": Estimate, "p50": Estimate}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// mean(cell) - mean(baseline), ns, with Welch's SE and Welch–Satterthwaite df.
    pub mean: Estimate,
    /// median(cell) - median(baseline), ns: the shift of the typical call, robust to tails.
    ///
    /// SE from the Price & Bonett (2002) order-statistic SE of each median (df = infinity).
    pub p50: Estimate,
}

/// Why an estimate could not be made from a sample.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum EstimateError {
    /// The sample has no values at all.
    #[error("{what} has no values: measure at least one repetition before estimating")]
    Empty {
        /// Which sample (`"values"`, `"cell"`, `"baseline"`).
        what: &'static str,
    },
    /// A NaN or infinite value: a timing went wrong upstream.
    #[error("{what}[{index}] = {value} is not finite: drop or re-measure that sample")]
    NonFinite {
        /// Which sample.
        what: &'static str,
        /// Position in the slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Fewer values than the estimator needs (2 for a mean's SE, 3 for a median's).
    #[error("{what} has {n} values but this estimate needs at least {need}: measure more samples")]
    TooFew {
        /// Which sample.
        what: &'static str,
        /// Number of values given.
        n: usize,
        /// Minimum needed.
        need: usize,
    },
}

/// Checks a sample is non-empty, finite and has at least `need` values.
fn check(what: &'static str, values: &[f64], need: usize) -> Result<(), EstimateError> {
    if values.is_empty() {
        return Err(EstimateError::Empty { what });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(EstimateError::NonFinite { what, index, value });
    }
    if values.len() < need {
        return Err(EstimateError::TooFew {
            what,
            n: values.len(),
            need,
        });
    }
    Ok(())
}

/// Mean with its standard error (df = n-1).
///
/// `se = s / sqrt(n)` with the sample standard deviation `s` (divisor n - 1), two-pass.
///
/// Errors: [`EstimateError::Empty`], [`EstimateError::NonFinite`], [`EstimateError::TooFew`]
/// (n < 2: no variance), all naming the sample `"values"`.
pub fn mean_with_se(values: &[f64]) -> Result<Estimate, EstimateError> {
    mean_of("values", values)
}

fn mean_of(what: &'static str, values: &[f64]) -> Result<Estimate, EstimateError> {
    check(what, values, 2)?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok(Estimate {
        value: mean,
        se: (var / n).sqrt(),
        df: n - 1.0,
    })
}

/// Median of a sample with its Price–Bonett standard error, for robust comparisons.
///
/// Used by [`overhead`]; public for reuse.
///
/// The value is the nearest-rank median of [`percentile_sorted`] (the lower middle value for
/// an even n), so it equals the `p50_ns` hookbench prints for the same values.
///
/// The SE is distribution-free (Price & Bonett 2001; Bonett & Price 2002, eq. 3): with the
/// values sorted `y(1) <= ... <= y(n)` and `c = round((n + 1) / 2 - sqrt(n))` clamped to
/// `[1, n]`, the order statistics `y(c)` and `y(n-c+1)` bound an interval that holds the
/// population median with probability `1 - 2 P(B <= c - 1)`, `B ~ Binomial(n, 1/2)`. That
/// interval is read as `median -/+ z0 * SE`, so `SE = (y(n-c+1) - y(c)) / (2 z0)` with
/// `z0 = Phi^-1(1 - P(B <= c - 1))`. (For large n `z0` tends to 2; the exact binomial `z0`
/// corrects for the rounding of `c`, as D. G. Bonett's `statpsych::ci.median` does.) `df` is
/// infinite: intervals use the normal. The interval is never narrower than the sample's
/// resolution (its smallest gap between distinct values): a clock tick or batch that quantises
/// the values puts ties at `y(c)` and `y(n-c+1)`, and an SE of 0 would claim a precision no
/// such measurement has. Only a sample of one repeated value has an SE of 0.
///
/// Errors: [`EstimateError::Empty`], [`EstimateError::NonFinite`], [`EstimateError::TooFew`]
/// (n < 3), all naming the sample `"values"`.
pub fn median_with_se(values: &[f64]) -> Result<Estimate, EstimateError> {
    median_of("values", values)
}

fn median_of(what: &'static str, values: &[f64]) -> Result<Estimate, EstimateError> {
    check(what, values, 3)?;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let c = (((n as f64 + 1.0) / 2.0 - (n as f64).sqrt()).round() as usize).clamp(1, n);
    let tail = binomial_half_cdf(n as u64, c as u64 - 1);
    let z0 = Normal::standard().inverse_cdf(1.0 - tail);
    let resolution = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let width = (sorted[n - c] - sorted[c - 1]).max(if resolution.is_finite() { resolution } else { 0.0 });
    Ok(Estimate {
        value: percentile_sorted(&sorted, 0.5),
        se: width / (2.0 * z0),
        df: f64::INFINITY,
    })
}

/// `P(B <= k)` for `B ~ Binomial(n, 1/2)`, which bounds a median's order-statistic interval.
///
/// It is the probability that a sample of n leaves the population median above its (k+1)-th
/// order statistic (statrs `Binomial::cdf`; matches exact rational sums to ~1e-10 relative up to
/// n = 100,000, see the tests).
fn binomial_half_cdf(n: u64, k: u64) -> f64 {
    Binomial::new(0.5, n).map_or(f64::NAN, |b| b.cdf(k))
}

/// Share of a sample trimmed from each end for the robust mean ([`trimmed_mean_with_se`]).
///
/// Latency samples carry rare, huge outliers (an interrupt, a preemption by another task: one
/// sample of 400 ns becomes 4 ms), which make a plain mean and its interval useless; trimming
/// 1% of each end removes them and keeps the mean's meaning for the body of the distribution.
pub const TRIM: f64 = 0.01;

/// The `gamma`-trimmed mean of a sample with its Tukey–McLaughlin standard error.
///
/// With `g = floor(gamma * n)` values cut from each end of the sorted sample and `h = n - 2g`
/// kept, the trimmed mean is the mean of the kept values; its SE is
/// `s_w / ((1 - 2 gamma) sqrt(n))` with `s_w` the standard deviation of the sample winsorized at
/// the same points (Tukey & McLaughlin 1963; the variance Yuen (1974) uses), df `h - 1`.
/// `gamma = 0` is the plain mean.
///
/// Errors: [`EstimateError::Empty`], [`EstimateError::NonFinite`], [`EstimateError::TooFew`]
/// (fewer than 2 values kept), naming the sample `"values"`.
pub fn trimmed_mean_with_se(values: &[f64], gamma: f64) -> Result<Estimate, EstimateError> {
    trimmed_of("values", values, gamma)
}

/// The values of a sample that a `gamma`-trimmed mean keeps, sorted.
///
/// That is without the `floor(gamma * n)` smallest and largest: the points a fit over trimmed
/// samples uses.
pub fn trimmed(values: &[f64], gamma: f64) -> Vec<f64> {
    let n = values.len();
    let g = (gamma.clamp(0.0, 0.49) * n as f64).floor() as usize;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[g..n - g].to_vec()
}

/// The values within `k` robust standard deviations (1.4826 x MAD) plus `floor` of the median.
///
/// Returns them in their order, and how many were left out. For repeated readings where a rare
/// one carries someone else's work (another process's allocations between two readings of
/// kernel memory): the median and MAD ignore such a reading, so one outlier in five cannot widen
/// the interval of the rest. `floor` keeps readings that differ by less than the counter's own
/// resolution when the MAD is 0. NaN values are left out. Pure.
pub fn mad_inliers(values: &[f64], k: f64, floor: f64) -> (Vec<f64>, usize) {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return (Vec::new(), values.len());
    }
    sorted.sort_by(f64::total_cmp);
    let median = percentile_sorted(&sorted, 0.5);
    let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let bound = k * 1.4826 * percentile_sorted(&deviations, 0.5) + floor;
    let kept: Vec<f64> = values.iter().copied().filter(|v| (v - median).abs() <= bound).collect();
    let dropped = values.len() - kept.len();
    (kept, dropped)
}

fn trimmed_of(what: &'static str, values: &[f64], gamma: f64) -> Result<Estimate, EstimateError> {
    check(what, values, 2)?;
    let n = values.len();
    let gamma = gamma.clamp(0.0, 0.49);
    let g = (gamma * n as f64).floor() as usize;
    let h = n - 2 * g;
    if h < 2 {
        return Err(EstimateError::TooFew { what, n, need: 2 });
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let kept = &sorted[g..n - g];
    let mean = kept.iter().sum::<f64>() / h as f64;
    let (lo, hi) = (kept[0], kept[h - 1]);
    let wmean = sorted.iter().map(|v| v.clamp(lo, hi)).sum::<f64>() / n as f64;
    let wvar = sorted.iter().map(|v| (v.clamp(lo, hi) - wmean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let se = wvar.sqrt() / ((1.0 - 2.0 * g as f64 / n as f64) * (n as f64).sqrt());
    Ok(Estimate {
        value: mean,
        se,
        df: (h - 1) as f64,
    })
}

/// Overhead of a cell's samples over its baseline's: difference of (trimmed) means and of medians.
///
/// `mean` is Yuen's (1974) difference of [`TRIM`]-trimmed means, each with its winsorized SE
/// ([`trimmed_mean_with_se`]), combined as Welch (1947) does with the Welch–Satterthwaite df.
/// `p50` is the difference of the nearest-rank medians (the printed `p50_ns` of each) with the
/// Price–Bonett SE of each median combined in quadrature and normal intervals (Bonett & Price
/// 2002, section "Linear contrasts of medians").
///
/// Errors: as [`median_with_se`] (each sample needs 3 finite values), naming `"cell"` or
/// `"baseline"`.
pub fn overhead(cell: &[f64], baseline: &[f64]) -> Result<Overhead, EstimateError> {
    check("cell", cell, 3)?;
    check("baseline", baseline, 3)?;
    Ok(Overhead {
        mean: difference(trimmed_of("cell", cell, TRIM)?, trimmed_of("baseline", baseline, TRIM)?),
        p50: difference(median_of("cell", cell)?, median_of("baseline", baseline)?),
    })
}

/// Linear combination `sum(c_i * e_i)` of independent estimates, with Satterthwaite's df.
///
/// `se = sqrt(sum(c_i^2 se_i^2))`; `df = se^4 / sum((c_i^2 se_i^2)^2 / df_i)` (Satterthwaite
/// 1946), where a term with infinite df contributes 0 to the denominator (so all-normal
/// inputs give an infinite df). When every weighted variance is 0 the df is the smallest
/// input df among the terms with a non-zero coefficient (the interval is 0 wide anyway).
/// An empty slice gives `{0, 0, inf}`.
pub fn combine(terms: &[(f64, Estimate)]) -> Estimate {
    let value = terms.iter().map(|(c, e)| c * e.value).sum::<f64>();
    let vars: Vec<(f64, f64)> = terms.iter().map(|(c, e)| (c * c * e.se * e.se, e.df)).collect();
    let var = vars.iter().map(|(v, _)| v).sum::<f64>();
    let df = if var == 0.0 {
        terms
            .iter()
            .filter(|(c, _)| *c != 0.0)
            .map(|(_, e)| e.df)
            .fold(f64::INFINITY, f64::min)
    } else {
        let den = vars
            .iter()
            .filter(|(v, _)| *v != 0.0)
            .map(|(v, df)| v * v / df)
            .sum::<f64>();
        if den == 0.0 {
            f64::INFINITY
        } else {
            var * var / den
        }
    };
    Estimate {
        value,
        se: var.sqrt(),
        df,
    }
}

/// Difference a - b of two independent estimates, to compare cells or fits.
///
/// SE combined in quadrature, df by Welch–Satterthwaite. With two sample means (df = n - 1
/// each) this is exactly Welch's t statistic's numerator, denominator and df. See [`combine`]
/// for the edge cases.
pub fn difference(a: Estimate, b: Estimate) -> Estimate {
    combine(&[(1.0, a), (-1.0, b)])
}

/// Margin of "the same" for an equivalence test: absolute, or relative to a reference value.
///
/// Suites name both (`abs` in the estimates' unit, ns; `rel` as a fraction, 0.1 = 10%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Margin {
    /// Absolute margin, in the estimates' unit (ns).
    pub abs: f64,
    /// Relative margin, a fraction of the reference value's magnitude.
    pub rel: f64,
}

impl Margin {
    /// The margin used against `reference`: `max(abs, rel * |reference|)`, so the larger wins.
    pub fn of(&self, reference: f64) -> f64 {
        self.abs.max(self.rel * reference.abs())
    }
}

/// Outcome of a two-one-sided-tests equivalence test of two estimates (Schuirmann 1987).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Equivalence {
    /// a - b, in the estimates' unit.
    #[serde(with = "json_f64")]
    pub diff: f64,
    /// 90% CI of the difference (TOST at alpha = 0.05).
    #[serde(with = "json_f64::array")]
    pub ci90: [f64; 2],
    /// The margin used, in the estimates' unit.
    #[serde(with = "json_f64")]
    pub margin: f64,
    /// TOST p-value = max of the two one-sided p-values.
    #[serde(with = "json_f64")]
    pub p_value: f64,
    /// ci90 inside [-margin, +margin] (strictly; equivalently `p_value < 0.05`).
    pub equivalent: bool,
    /// The 95% CI of the difference excludes 0.
    pub different: bool,
}

/// Is a equivalent to b within `margin` (TOST at 5%)? Also reports whether they differ.
///
/// Schuirmann's (1987) two one-sided tests: with `d = a - b` and its SE and df from
/// [`difference`], `H0-: d <= -margin` is rejected when `(d + margin) / se` exceeds the t
/// quantile, `H0+: d >= margin` when `(d - margin) / se` is below minus it; equivalence is
/// both rejections at 5%, i.e. the 90% CI inside `(-margin, margin)`. Equivalent and
/// different can both hold (a real but small difference), or neither (too noisy to tell).
///
/// A negative or NaN `margin` is invalid: `equivalent` is false and `p_value` 1. With a zero
/// SE the p-value is 0 when `|d| < margin` and 1 otherwise.
pub fn tost(a: Estimate, b: Estimate, margin: f64) -> Equivalence {
    let d = difference(a, b);
    let ci90 = d.ci(0.90);
    let ci95 = d.ci(0.95);
    let valid = margin >= 0.0;
    let p_value = if !valid {
        1.0
    } else if d.se == 0.0 {
        if d.value.abs() < margin {
            0.0
        } else {
            1.0
        }
    } else {
        // P(T >= (d + m)/se) under d = -m, and P(T <= (d - m)/se) under d = +m.
        let p_lower = 1.0 - cdf((d.value + margin) / d.se, d.df);
        let p_upper = cdf((d.value - margin) / d.se, d.df);
        if p_lower.is_nan() || p_upper.is_nan() {
            f64::NAN
        } else {
            p_lower.max(p_upper)
        }
    };
    Equivalence {
        diff: d.value,
        ci90,
        margin,
        p_value,
        equivalent: valid && ci90[0] > -margin && ci90[1] < margin,
        different: ci95[0] > 0.0 || ci95[1] < 0.0,
    }
}

/// Serde for f64 that survives JSON: finite values as numbers, others as strings.
///
/// serde_json writes NaN and infinities as `null` and cannot read `null` back into an f64, so
/// results holding an infinite df would not round-trip. This module writes `"inf"`, `"-inf"`
/// and `"nan"` instead and reads numbers, those strings, or `null` (as NaN). Use with
/// `#[serde(with = "hookbench_measure::estimate::json_f64")]`, or `json_f64::array` for
/// `[f64; 2]`.
pub mod json_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Either a JSON number or one of the strings this module writes for non-finite values.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Text(String),
        Null(()),
    }

    fn to_f64<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
        match r {
            Repr::Num(v) => Ok(v),
            Repr::Null(()) => Ok(f64::NAN),
            Repr::Text(s) => match s.as_str() {
                "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                "nan" | "NaN" => Ok(f64::NAN),
                other => Err(E::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", got {other:?}"
                ))),
            },
        }
    }

    /// Writes a finite `v` as a number, otherwise `"inf"`, `"-inf"` or `"nan"`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("nan")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    /// Reads a number, `"inf"`, `"-inf"`, `"nan"` or `null` (NaN).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        to_f64(Repr::deserialize(d)?)
    }

    /// The same for a pair such as a confidence interval `[low, high]`.
    pub mod array {
        use serde::ser::SerializeTuple;
        use serde::{Deserialize, Deserializer, Serializer};

        struct Item(f64);
        impl serde::Serialize for Item {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::serialize(&self.0, s)
            }
        }

        /// Writes `[a, b]` with each element as [`super::serialize`] does.
        pub fn serialize<S: Serializer>(v: &[f64; 2], s: S) -> Result<S::Ok, S::Error> {
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(&Item(v[0]))?;
            t.serialize_element(&Item(v[1]))?;
            t.end()
        }

        /// Reads a two-element array, each element as [`super::deserialize`] does.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 2], D::Error> {
            let [a, b] = <[super::Repr; 2]>::deserialize(d)?;
            Ok([super::to_f64(a)?, super::to_f64(b)?])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{close, gauss, normal_est};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn mad_inliers_drop_one_outlier_and_keep_a_tight_sample() {
        let v = [10_872.0, 516_128.0, -37_600.0, -1_288.0, 55_008.0];
        let (kept, dropped) = mad_inliers(&v, 5.0, 4096.0);
        assert_eq!((kept, dropped), (vec![10_872.0, -37_600.0, -1_288.0, 55_008.0], 1));
        // MAD 0: the floor keeps readings within it, and only those.
        let (kept, dropped) = mad_inliers(&[64.0, 64.0, 64.0, 128.0, 9000.0], 5.0, 100.0);
        assert_eq!((kept, dropped), (vec![64.0, 64.0, 64.0, 128.0], 1));
        assert_eq!(mad_inliers(&[], 5.0, 0.0), (vec![], 0));
        assert_eq!(mad_inliers(&[f64::NAN, 1.0], 5.0, 0.0), (vec![1.0], 1));
    }

    #[test]
    fn ci_uses_t_and_normal_quantiles() {
        // t(0.975, 5) = 2.5705818356363, t(0.95, 5) = 2.0150483733330, z(0.975) = 1.9599639845401
        // (mpmath, 30 digits).
        let e = Estimate {
            value: 10.0,
            se: 2.0,
            df: 5.0,
        };
        let ci = e.ci(0.95);
        assert!(close(ci[0], 10.0 - 2.0 * 2.570581835636315, 1e-7), "{ci:?}");
        assert!(close(ci[1], 10.0 + 2.0 * 2.570581835636315, 1e-7), "{ci:?}");
        let ci90 = e.ci(0.90);
        assert!(close(ci90[1] - 10.0, 2.0 * 2.015048373333024, 1e-7), "{ci90:?}");
        for df in [f64::INFINITY, 2e6] {
            let n = Estimate { df, ..e }.ci(0.95);
            assert!(close(n[1] - 10.0, 2.0 * 1.959963984540054, 1e-9), "df {df}: {n:?}");
        }
        // Just below the switch, t is still used and is (slightly) wider than the normal.
        let t = Estimate { df: 1e5, ..e }.ci(0.95);
        assert!(t[1] - 10.0 > 2.0 * 1.959963984540054);
        assert_eq!(Estimate { se: 0.0, ..e }.ci(0.95), [10.0, 10.0]);
        assert!(e.ci(1.0)[0].is_nan() && e.ci(0.0)[1].is_nan() && e.ci(f64::NAN)[0].is_nan());
        assert!(Estimate { df: 0.0, ..e }.ci(0.95)[0].is_nan());
        assert!(Estimate { df: f64::NAN, ..e }.ci(0.95)[0].is_nan());
    }

    #[test]
    fn mean_with_se_hand_computed() {
        // 1 2 3 4: mean 2.5, s^2 = 5/3, se = sqrt(5/12).
        let m = mean_with_se(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert!(close(m.value, 2.5, 1e-15));
        assert!(close(m.se, (5.0f64 / 12.0).sqrt(), 1e-15));
        assert_eq!(m.df, 3.0);
        assert_eq!(mean_with_se(&[]), Err(EstimateError::Empty { what: "values" }));
        assert_eq!(
            mean_with_se(&[1.0]),
            Err(EstimateError::TooFew {
                what: "values",
                n: 1,
                need: 2
            })
        );
        assert!(matches!(
            mean_with_se(&[1.0, f64::INFINITY]),
            Err(EstimateError::NonFinite {
                what: "values",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn median_se_matches_price_bonett_by_hand() {
        // n = 10, values 1..10 (shuffled): c = round(5.5 - 3.162) = 2, interval y(2) = 2 ..
        // y(9) = 9, P(B <= 1) = 11/1024, z0 = 2.2993622974032285 (mpmath), SE = 7 / (2 z0).
        let v = [7.0, 2.0, 10.0, 1.0, 5.0, 9.0, 3.0, 8.0, 4.0, 6.0];
        let m = median_with_se(&v).unwrap();
        assert_eq!(m.value, 5.0, "nearest-rank (lower) median for even n");
        assert!(close(m.se, 1.5221611678823753, 1e-9), "se {}", m.se);
        assert_eq!(m.df, f64::INFINITY);
        // n = 3: c clamps to 1, interval y(1)..y(3) = 1..9, P(B <= 0) = 1/8,
        // SE = 8 / (2 Phi^-1(7/8)) = 3.4772044634757335.
        let m3 = median_with_se(&[5.0, 1.0, 9.0]).unwrap();
        assert_eq!(m3.value, 5.0);
        assert!(close(m3.se, 3.4772044634757335, 1e-9), "se {}", m3.se);
        // The SE scales with the data and ignores a shift.
        let scaled: Vec<f64> = v.iter().map(|x| 100.0 + 3.0 * x).collect();
        let ms = median_with_se(&scaled).unwrap();
        assert!(close(ms.se, 3.0 * m.se, 1e-9) && ms.value == 115.0);
        // One repeated value: SE 0.
        assert_eq!(median_with_se(&[4.0; 12]).unwrap().se, 0.0);
        // Quantised values tied at both order statistics: the interval is one quantum (0.25)
        // wide, not 0. n = 12: c = round(6.5 - 3.464) = 3, y(3) = y(10) = 4.
        let q = [3.75, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.5];
        let mq = median_with_se(&q).unwrap();
        let z0 = Normal::standard().inverse_cdf(1.0 - binomial_half_cdf(12, 2));
        assert!(mq.value == 4.0 && close(mq.se, 0.25 / (2.0 * z0), 1e-12), "{mq:?}");
        assert_eq!(
            median_with_se(&[1.0, 2.0]),
            Err(EstimateError::TooFew {
                what: "values",
                n: 2,
                need: 3
            })
        );
        assert_eq!(median_with_se(&[]), Err(EstimateError::Empty { what: "values" }));
        assert!(matches!(
            median_with_se(&[1.0, f64::NAN, 3.0]),
            Err(EstimateError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn binomial_tail_matches_exact_sums() {
        // P(B <= c - 1) for the c median_with_se uses; exact rational sums (Python integers).
        for (n, c, want) in [
            (10u64, 2u64, 0.0107421875),
            (11, 3, 0.03271484375),
            (100, 41, 0.028_443_966_820_490_4),
            (1000, 469, 0.023_145_598_680_249_08),
            (100_000, 49_684, 0.022_657_062_559_636_77),
        ] {
            let got = binomial_half_cdf(n, c - 1);
            assert!(close(got, want, 1e-9 * want), "n={n}: {got} vs {want}");
        }
        assert!(close(binomial_half_cdf(3, 0), 0.125, 1e-15));
        // For large n the tail tends to Phi(-2) = 0.02275 (c is about n/2 - sqrt(n)).
        let big = binomial_half_cdf(10_000_000, 4_996_837);
        assert!(big > 0.0225 && big < 0.0230, "{big}");
    }

    #[test]
    fn difference_is_welch_for_means() {
        // a = 1 2 3 4 (var/n = 5/12), b = 2 4 6 (var/n = 4/3): diff -1.5, se^2 = 7/4,
        // df = (7/4)^2 / ((5/12)^2/3 + (4/3)^2/2) = 21168/6544 = 3.2347188264058680.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [2.0, 4.0, 6.0];
        let d = difference(mean_with_se(&a).unwrap(), mean_with_se(&b).unwrap());
        assert!(close(d.value, -1.5, 1e-15));
        assert!(close(d.se, 1.75f64.sqrt(), 1e-15));
        assert!(close(d.df, 21168.0 / 6544.0, 1e-12), "df {}", d.df);
        // t(0.975, 3.2347) = 3.0557127104258971 (mpmath).
        assert!(close(d.ci(0.95)[1], -1.5 + 3.055712710425897 * 1.75f64.sqrt(), 1e-6));
        // And it agrees with the harness's own Welch t-test on the Wikipedia example.
        let a1 = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4,
        ];
        let a2 = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4,
        ];
        let o = overhead(&a1, &a2).unwrap();
        assert!(close(o.mean.df, 24.98852929023141, 1e-9), "df {}", o.mean.df);
        assert!(close(o.mean.value / o.mean.se, -2.455356398286005, 1e-9));
        let w = crate::stats::welch_t_test(&a1, &a2).unwrap();
        assert!(close(o.mean.se, w.stderr, 1e-12) && close(o.mean.df, w.df, 1e-9));
    }

    #[test]
    fn combine_edge_cases() {
        // Two normal estimates: df stays infinite.
        let d = difference(normal_est(5.0, 3.0), normal_est(1.0, 4.0));
        assert_eq!((d.value, d.se, d.df), (4.0, 5.0, f64::INFINITY));
        // One exact estimate (se 0): the other's df carries over.
        let t = Estimate {
            value: 2.0,
            se: 1.0,
            df: 7.0,
        };
        let d = difference(t, normal_est(1.0, 0.0));
        assert!(close(d.df, 7.0, 1e-12) && d.se == 1.0);
        // Both exact: zero SE, smallest df, zero-width CI.
        let e = difference(Estimate { se: 0.0, ..t }, Estimate { se: 0.0, df: 3.0, ..t });
        assert_eq!((e.se, e.df), (0.0, 3.0));
        assert_eq!(e.ci(0.95), [0.0, 0.0]);
        // Weighted: 2a - b with a, b of df 4 and equal variance 1: var 5, df = 25 / (16/4 + 1/4).
        let u = Estimate {
            value: 1.0,
            se: 1.0,
            df: 4.0,
        };
        let c = combine(&[(2.0, u), (-1.0, u)]);
        assert!(close(c.value, 1.0, 1e-15) && close(c.se, 5f64.sqrt(), 1e-15));
        assert!(close(c.df, 25.0 / 4.25, 1e-12), "df {}", c.df);
        assert_eq!(combine(&[]), normal_est(0.0, 0.0));
    }

    #[test]
    fn overhead_reports_mean_and_median_shift() {
        let baseline = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0, 100.2];
        let cell: Vec<f64> = baseline.iter().map(|v| v + 40.0).collect();
        let o = overhead(&cell, &baseline).unwrap();
        assert!(close(o.mean.value, 40.0, 1e-12) && close(o.p50.value, 40.0, 1e-12));
        assert!(close(o.mean.df, 12.0, 1e-9), "equal variances, equal n: df = 2n - 2");
        assert_eq!(o.p50.df, f64::INFINITY);
        let m = median_with_se(&baseline).unwrap();
        assert!(close(o.p50.se, 2f64.sqrt() * m.se, 1e-12));
        // A baseline slower than the cell gives a negative overhead (not clamped).
        let neg = overhead(&baseline, &cell).unwrap();
        assert!(close(neg.mean.value, -40.0, 1e-12) && neg.mean.ci(0.95)[1] < 0.0);
        assert_eq!(
            overhead(&cell, &[1.0, 2.0]),
            Err(EstimateError::TooFew {
                what: "baseline",
                n: 2,
                need: 3
            })
        );
        assert_eq!(overhead(&[], &baseline), Err(EstimateError::Empty { what: "cell" }));
        assert!(matches!(
            overhead(&[1.0, 2.0, f64::NAN], &baseline),
            Err(EstimateError::NonFinite {
                what: "cell",
                index: 2,
                ..
            })
        ));
    }

    /// The share of 400 simulated cell/baseline pairs whose 95% interval from `ci` covers 25 ns.
    ///
    /// 25 ns is the true shift. Each pair is `n` values `center + scale * draw()` for the baseline,
    /// then for the cell, `draw` taking a generator seeded with `seed`.
    fn coverage_of_25(
        seed: u64,
        draw: impl Fn(&mut StdRng) -> f64,
        [baseline, cell]: [(usize, f64, f64); 2],
        ci: impl Fn(Overhead) -> Estimate,
    ) -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sample = |(n, center, scale): (usize, f64, f64)| -> Vec<f64> {
            (0..n).map(|_| center + scale * draw(&mut rng)).collect()
        };
        let trials = 400;
        let mut covered = 0;
        for _ in 0..trials {
            let baseline = sample(baseline);
            let cell = sample(cell);
            let ci = ci(overhead(&cell, &baseline).unwrap()).ci(0.95);
            if ci[0] <= 25.0 && 25.0 <= ci[1] {
                covered += 1;
            }
        }
        covered as f64 / trials as f64
    }

    #[test]
    fn overhead_mean_ci_covers_true_shift_about_95_percent() {
        // 400 simulated cell/baseline pairs of unequal size and spread; the true shift is
        // 25 ns. Welch's 95% CI must cover it in 90-99% of them.
        let rate = coverage_of_25(0x5eed_0009, gauss, [(25, 300.0, 8.0), (40, 325.0, 20.0)], |o| o.mean);
        assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn overhead_p50_ci_covers_true_shift_about_95_percent() {
        // Skewed (exponential) latencies, where a mean-based interval would be off: the
        // Price–Bonett interval for a difference of medians should still cover the true
        // shift of the medians (here 25 ns; both medians are 200 + 30 ln 2 plus the shift).
        let expo = |rng: &mut StdRng| -(1.0 - rng.random::<f64>()).ln();
        let rate = coverage_of_25(0x5eed_0050, expo, [(61, 200.0, 30.0), (81, 225.0, 30.0)], |o| o.p50);
        assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn margin_takes_the_larger() {
        let m = Margin { abs: 0.5, rel: 0.1 };
        assert_eq!(m.of(2.0), 0.5);
        assert!(close(m.of(-20.0), 2.0, 1e-15));
        assert_eq!(Margin { abs: 0.0, rel: 0.0 }.of(100.0), 0.0);
    }

    #[test]
    fn tost_equivalent_and_different() {
        // Equal estimates with small SE: equivalent, not different.
        let a = normal_est(8.0, 0.05);
        let e = tost(a, a, 0.5);
        assert!(e.equivalent && !e.different, "{e:?}");
        assert_eq!(e.diff, 0.0);
        assert!(e.p_value < 1e-6, "p {}", e.p_value);
        assert_eq!(e.margin, 0.5);
        // A difference bigger than the margin: not equivalent, different.
        let far = tost(normal_est(8.7, 0.05), normal_est(7.8, 0.05), 0.5);
        assert!(!far.equivalent && far.different, "{far:?}");
        assert!(far.p_value > 0.5);
        // Hand-computed, normal: d = 1, se = 1, margin 3. p = max(Phi(-4), Phi(-2)) = Phi(-2)
        // = 0.022_750_131_948_179_21; 90% CI 1 -/+ 1.6448536269514729 inside (-3, 3); the 95%
        // CI holds 0.
        let h = tost(normal_est(10.0, 1.0), normal_est(9.0, 0.0), 3.0);
        assert!(close(h.p_value, 0.022_750_131_948_179_21, 1e-9), "p {}", h.p_value);
        assert!(close(h.ci90[0], 1.0 - 1.6448536269514729, 1e-9));
        assert!(h.equivalent && !h.different);
        // Same with Student's t on 10 df: p = P(T10 <= -2) = 0.03669401738537018.
        let t10 = Estimate {
            value: 10.0,
            se: 1.0,
            df: 10.0,
        };
        let ht = tost(t10, normal_est(9.0, 0.0), 3.0);
        assert!(close(ht.p_value, 0.03669401738537018, 1e-8), "p {}", ht.p_value);
        assert!(close(ht.diff, 1.0, 1e-15));
        // p < 0.05 exactly when the 90% CI is inside the margin: a margin just too small.
        let tight = tost(normal_est(10.0, 1.0), normal_est(9.0, 0.0), 2.6);
        assert!(!tight.equivalent && tight.p_value > 0.05, "{tight:?}");
        // Too noisy to tell: neither equivalent nor different.
        let noisy = tost(normal_est(1.0, 5.0), normal_est(0.0, 5.0), 2.0);
        assert!(!noisy.equivalent && !noisy.different);
        // A real but small difference: both.
        let both = tost(normal_est(1.0, 0.01), normal_est(0.9, 0.01), 0.5);
        assert!(both.equivalent && both.different);
        // Invalid margins never give equivalence.
        for m in [-1.0, f64::NAN] {
            let bad = tost(a, a, m);
            assert!(!bad.equivalent && bad.p_value == 1.0, "{bad:?}");
        }
        // Zero SE: decided by |d| against the margin.
        let exact = tost(normal_est(1.0, 0.0), normal_est(0.0, 0.0), 2.0);
        assert!(exact.equivalent && exact.different && exact.p_value == 0.0);
        assert!(!tost(normal_est(3.0, 0.0), normal_est(0.0, 0.0), 2.0).equivalent);
    }

    #[test]
    fn json_round_trip_keeps_infinite_df() {
        let o = overhead(&[3.0, 4.0, 5.0, 6.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let text = serde_json::to_string(&o).unwrap();
        assert!(text.contains("\"df\":\"inf\""), "{text}");
        let back: Overhead = serde_json::from_str(&text).unwrap();
        assert_eq!(back, o);
        let e = Equivalence {
            diff: 1.0,
            ci90: [f64::NEG_INFINITY, f64::INFINITY],
            margin: 2.0,
            p_value: f64::NAN,
            equivalent: false,
            different: false,
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.contains("[\"-inf\",\"inf\"]") && text.contains("\"p_value\":\"nan\""),
            "{text}"
        );
        let back: Equivalence = serde_json::from_str(&text).unwrap();
        assert_eq!(back.ci90, e.ci90);
        assert!(back.p_value.is_nan());
        let nul: Estimate = serde_json::from_str(r#"{"value":1.5,"se":null,"df":"inf"}"#).unwrap();
        assert!(nul.se.is_nan() && nul.df == f64::INFINITY && nul.value == 1.5);
        assert!(serde_json::from_str::<Estimate>(r#"{"value":"x","se":1,"df":1}"#).is_err());
    }

    #[test]
    fn trimmed_means_ignore_rare_huge_outliers() {
        let mut v: Vec<f64> = (0..1000).map(|i| 100.0 + f64::from(i % 10)).collect();
        let plain = mean_with_se(&v).expect("mean");
        let trimmed = trimmed_mean_with_se(&v, TRIM).expect("trimmed");
        assert!((plain.value - trimmed.value).abs() < 0.5, "{plain:?} {trimmed:?}");
        // Three preemptions of 4 ms: the plain mean moves by 12 us, the trimmed one does not.
        for i in [7, 500, 901] {
            v[i] = 4_000_000.0;
        }
        let plain = mean_with_se(&v).expect("mean");
        let trimmed = trimmed_mean_with_se(&v, TRIM).expect("trimmed");
        assert!(plain.value > 10_000.0 && plain.se > 1_000.0, "{plain:?}");
        assert!((trimmed.value - 104.5).abs() < 0.5 && trimmed.se < 1.0, "{trimmed:?}");
        assert_eq!(trimmed.df, 979.0);
        // gamma 0 is the plain mean with the same SE.
        let zero = trimmed_mean_with_se(&v, 0.0).expect("untrimmed");
        assert!((zero.value - plain.value).abs() < 1e-9 && (zero.se - plain.se).abs() < 1e-9);
        assert!(trimmed_mean_with_se(&[1.0], TRIM).is_err());
    }
}
