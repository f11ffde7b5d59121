//! Statistics over measurements: summaries, baseline subtraction, fits, t-tests, histograms.
//!
//! Latency summaries, least-squares fits with confidence intervals, Welch's t-test, and
//! hdrhistogram (de)serialisation.
//!
//! Sources: percentiles use the nearest-rank rule of hdrhistogram's `value_at_quantile`
//! (rank `max(1, ceil(q * n))`); the fit is ordinary least squares with the textbook standard
//! errors and a Student's t interval on n - 2 degrees of freedom (e.g. Montgomery & Runger,
//! *Applied Statistics and Probability for Engineers*, ch. 11); the t-test is Welch (1947) with
//! the Welch-Satterthwaite degrees of freedom; histograms are encoded with HdrHistogram's "V2
//! compressed" format (`V2DeflateSerializer`), then standard base64 (RFC 4648, with padding).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use thiserror::Error;

/// Significant decimal digits of every latency histogram hookbench records.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// Picoseconds per nanosecond: histograms store picoseconds, summaries report nanoseconds.
pub const PS_PER_NS: f64 = 1000.0;

/// A new empty latency histogram for values in picoseconds, growing as needed.
///
/// 3 significant digits, lowest discernible value 1 ps, auto-resizing (no upper bound).
///
/// Errors: only hdrhistogram's [`hdrhistogram::CreationError`], which these fixed parameters
/// never trigger.
pub fn new_histogram_ps() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new(HISTOGRAM_SIGFIG)
}

/// Records one picosecond value, growing the histogram as needed.
///
/// Only a value beyond what hdrhistogram can represent at all (about 2^63 ps, i.e. 106 days) is
/// clamped to the largest trackable value; hdrhistogram's `saturating_record` alone would clamp
/// without resizing.
pub fn record_ps(hist: &mut Histogram<u64>, value_ps: u64) {
    if hist.record(value_ps).is_err() {
        hist.saturating_record(value_ps);
    }
}

/// Distribution summary of per-invocation latency, in nanoseconds.
///
/// `stddev_ns` is the population standard deviation (divisor n, as hdrhistogram's `stdev`),
/// `cv = stddev_ns / mean_ns`. Percentiles use the nearest-rank rule (see
/// [`percentile_sorted`]); `min_ns`/`max_ns` are the 0th and 100th percentiles. An empty input
/// gives `samples = 0` and NaN everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values summarised.
    pub samples: u64,
    /// Arithmetic mean, ns.
    pub mean_ns: f64,
    /// Population standard deviation, ns.
    pub stddev_ns: f64,
    /// Coefficient of variation `stddev_ns / mean_ns` (dimensionless).
    pub cv: f64,
    /// Median, ns.
    pub p50_ns: f64,
    /// 90th percentile, ns.
    pub p90_ns: f64,
    /// 99th percentile, ns.
    pub p99_ns: f64,
    /// 99.9th percentile, ns.
    pub p999_ns: f64,
    /// Largest value, ns.
    pub max_ns: f64,
    /// Smallest value, ns.
    pub min_ns: f64,
}

impl Summary {
    fn empty() -> Summary {
        Summary {
            samples: 0,
            mean_ns: f64::NAN,
            stddev_ns: f64::NAN,
            cv: f64::NAN,
            p50_ns: f64::NAN,
            p90_ns: f64::NAN,
            p99_ns: f64::NAN,
            p999_ns: f64::NAN,
            max_ns: f64::NAN,
            min_ns: f64::NAN,
        }
    }

    /// Summary of a histogram whose values are picoseconds.
    ///
    /// Follows hdrhistogram: mean and stddev use each bucket's median-equivalent value,
    /// percentiles and max are the *highest* value equivalent to the ranked sample, min the
    /// *lowest* (so each is within the histogram's 3-significant-digit precision of the exact
    /// order statistic). Values are divided by 1000 to give ns.
    pub fn from_histogram_ps(hist: &Histogram<u64>) -> Summary {
        if hist.is_empty() {
            return Summary::empty();
        }
        let ns = |ps: u64| ps as f64 / PS_PER_NS;
        let mean_ns = hist.mean() / PS_PER_NS;
        let stddev_ns = hist.stdev() / PS_PER_NS;
        Summary {
            samples: hist.len(),
            mean_ns,
            stddev_ns,
            cv: stddev_ns / mean_ns,
            p50_ns: ns(hist.value_at_quantile(0.5)),
            p90_ns: ns(hist.value_at_quantile(0.9)),
            p99_ns: ns(hist.value_at_quantile(0.99)),
            p999_ns: ns(hist.value_at_quantile(0.999)),
            max_ns: ns(hist.max()),
            min_ns: ns(hist.min()),
        }
    }

    /// Exact summary of raw values in nanoseconds; the input is copied and sorted, not modified.
    ///
    /// Non-finite inputs make the moments non-finite; nothing is dropped.
    pub fn from_values_ns(values_ns: &[f64]) -> Summary {
        if values_ns.is_empty() {
            return Summary::empty();
        }
        let mut sorted = values_ns.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean_ns = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|v| (v - mean_ns).powi(2)).sum::<f64>() / n;
        let stddev_ns = var.sqrt();
        Summary {
            samples: sorted.len() as u64,
            mean_ns,
            stddev_ns,
            cv: stddev_ns / mean_ns,
            p50_ns: percentile_sorted(&sorted, 0.5),
            p90_ns: percentile_sorted(&sorted, 0.9),
            p99_ns: percentile_sorted(&sorted, 0.99),
            p999_ns: percentile_sorted(&sorted, 0.999),
            max_ns: percentile_sorted(&sorted, 1.0),
            min_ns: percentile_sorted(&sorted, 0.0),
        }
    }
}

/// The `q`-quantile (`0 <= q <= 1`) of ascending-sorted values by hdrhistogram's nearest rank.
///
/// That is the `max(1, ceil(q * n))`-th smallest value, as hdrhistogram's `value_at_quantile`
/// takes it: `q = 0` is the minimum and `q = 1` the maximum. Reference implementation for the
/// histogram path.
///
/// Returns NaN for an empty slice or a `q` outside `[0, 1]` (or NaN). The slice must be sorted
/// ascending (checked only in debug builds).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(
        sorted
            .windows(2)
            .all(|w| w[0] <= w[1] || w[0].is_nan() || w[1].is_nan()),
        "percentile_sorted needs ascending input"
    );
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Result of an ordinary least-squares fit `y = intercept + slope * x`.
///
/// Units are those of the inputs: with `x` in programs and `y` in ns, `slope` is ns per
/// program and `intercept` ns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Number of points.
    pub n: usize,
    /// `Sxy / Sxx`.
    pub slope: f64,
    /// `mean(y) - slope * mean(x)`.
    pub intercept: f64,
    /// 95% confidence interval of the slope: `slope -/+ t(0.975, n-2) * slope_stderr`.
    pub slope_ci95: (f64, f64),
    /// 95% confidence interval of the intercept, same construction.
    pub intercept_ci95: (f64, f64),
    /// Standard error of the slope, `residual_sd / sqrt(Sxx)`.
    pub slope_stderr: f64,
    /// Standard error of the intercept, `residual_sd * sqrt(1/n + mean(x)^2 / Sxx)`.
    pub intercept_stderr: f64,
    /// Coefficient of determination `1 - SSE / SST`.
    ///
    /// 1.0 when all `y` are equal (`SST = 0`, the horizontal line fits exactly).
    pub r2: f64,
    /// Residual standard deviation `sqrt(SSE / (n - 2))`, in y's unit.
    pub residual_sd: f64,
    /// Two-sided 95% Student's t critical value on `n - 2` degrees of freedom used above.
    pub t_crit95: f64,
}

/// Why [`fit_linear`] refused its input.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum FitError {
    /// `xs` and `ys` differ in length.
    #[error("xs has {xs} values but ys has {ys}")]
    LengthMismatch {
        /// `xs.len()`.
        xs: usize,
        /// `ys.len()`.
        ys: usize,
    },
    /// Fewer than 3 points: no degrees of freedom left for the error estimate.
    #[error("a fit with a confidence interval needs at least 3 points, got {n}")]
    TooFewPoints {
        /// Number of points given.
        n: usize,
    },
    /// A NaN or infinite value.
    #[error("{axis}[{index}] = {value} is not finite")]
    NonFinite {
        /// `"x"` or `"y"`.
        axis: &'static str,
        /// Position in the slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Fewer than 2 distinct x values: the slope is undefined.
    #[error("all x values equal {x}: the slope is undefined")]
    DegenerateX {
        /// The single x value.
        x: f64,
    },
    /// statrs refused the t distribution (not expected for n >= 3).
    #[error("Student's t distribution: {0}")]
    Distribution(String),
}

/// Ordinary least-squares fit of `ys` on `xs` with 95% confidence intervals.
///
/// The intervals are from Student's t on `n - 2` degrees of freedom
/// (`statrs::distribution::StudentsT::inverse_cdf(0.975)`). Sums are centred (two-pass) for
/// numerical stability.
///
/// Errors: [`FitError::LengthMismatch`], [`FitError::TooFewPoints`] (n < 3),
/// [`FitError::NonFinite`], [`FitError::DegenerateX`] (fewer than 2 distinct x).
pub fn fit_linear(xs: &[f64], ys: &[f64]) -> Result<LinearFit, FitError> {
    if xs.len() != ys.len() {
        return Err(FitError::LengthMismatch {
            xs: xs.len(),
            ys: ys.len(),
        });
    }
    let n = xs.len();
    if n < 3 {
        return Err(FitError::TooFewPoints { n });
    }
    for (axis, vals) in [("x", xs), ("y", ys)] {
        if let Some((index, &value)) = vals.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FitError::NonFinite { axis, index, value });
        }
    }
    let nf = n as f64;
    let x_mean = xs.iter().sum::<f64>() / nf;
    let y_mean = ys.iter().sum::<f64>() / nf;
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    if xs.iter().all(|&x| x == xs[0]) || sxx <= 0.0 {
        return Err(FitError::DegenerateX { x: xs[0] });
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - x_mean) * (y - y_mean)).sum();
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let sse: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - (intercept + slope * x)).powi(2))
        .sum();
    let sst: f64 = ys.iter().map(|y| (y - y_mean).powi(2)).sum();
    let df = nf - 2.0;
    let residual_sd = (sse / df).sqrt();
    let slope_stderr = residual_sd / sxx.sqrt();
    let intercept_stderr = residual_sd * (1.0 / nf + x_mean * x_mean / sxx).sqrt();
    let t_crit95 = StudentsT::new(0.0, 1.0, df)
        .map_err(|e| FitError::Distribution(e.to_string()))?
        .inverse_cdf(0.975);
    let r2 = if sst == 0.0 { 1.0 } else { 1.0 - sse / sst };
    Ok(LinearFit {
        n,
        slope,
        intercept,
        slope_ci95: (slope - t_crit95 * slope_stderr, slope + t_crit95 * slope_stderr),
        intercept_ci95: (
            intercept - t_crit95 * intercept_stderr,
            intercept + t_crit95 * intercept_stderr,
        ),
        slope_stderr,
        intercept_stderr,
        r2,
        residual_sd,
        t_crit95,
    })
}

/// Result of Welch's unequal-variances t-test of `mean(a) = mean(b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// `(mean(a) - mean(b)) / stderr`.
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom (not an integer in general).
    pub df: f64,
    /// Two-sided p-value `2 * P(T_df > |t|)`.
    pub p_two_sided: f64,
    /// `mean(a) - mean(b)`, in the inputs' unit.
    pub mean_diff: f64,
    /// Standard error of the difference, `sqrt(var_a / n_a + var_b / n_b)` (sample variances).
    pub stderr: f64,
}

/// Why [`welch_t_test`] refused its input.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum TTestError {
    /// A sample has fewer than 2 values, so it has no sample variance.
    #[error("sample {sample} has {n} values; Welch's t-test needs at least 2 in each")]
    TooFewValues {
        /// `"a"` or `"b"`.
        sample: &'static str,
        /// Its length.
        n: usize,
    },
    /// A NaN or infinite value.
    #[error("{sample}[{index}] = {value} is not finite")]
    NonFinite {
        /// `"a"` or `"b"`.
        sample: &'static str,
        /// Position in the slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Both samples are constant: the statistic is undefined (or infinite).
    #[error("both samples have zero variance (means {mean_a} and {mean_b})")]
    ZeroVariance {
        /// Mean of `a`.
        mean_a: f64,
        /// Mean of `b`.
        mean_b: f64,
    },
    /// statrs refused the t distribution.
    #[error("Student's t distribution: {0}")]
    Distribution(String),
}

/// Welch's t-test (Welch 1947) of equal means without assuming equal variances.
///
/// Uses sample variances (divisor n - 1) and the Welch-Satterthwaite degrees of freedom.
///
/// Errors: [`TTestError::TooFewValues`] (< 2 in a sample), [`TTestError::NonFinite`],
/// [`TTestError::ZeroVariance`] (both samples constant).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Result<TTest, TTestError> {
    let moments = |sample: &'static str, v: &[f64]| -> Result<(f64, f64, f64), TTestError> {
        if v.len() < 2 {
            return Err(TTestError::TooFewValues { sample, n: v.len() });
        }
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(TTestError::NonFinite { sample, index, value });
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Ok((n, mean, var))
    };
    let (na, mean_a, var_a) = moments("a", a)?;
    let (nb, mean_b, var_b) = moments("b", b)?;
    let (sa, sb) = (var_a / na, var_b / nb);
    if sa + sb == 0.0 {
        return Err(TTestError::ZeroVariance { mean_a, mean_b });
    }
    let stderr = (sa + sb).sqrt();
    let mean_diff = mean_a - mean_b;
    let t = mean_diff / stderr;
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| TTestError::Distribution(e.to_string()))?;
    let p_two_sided = (2.0 * dist.sf(t.abs())).min(1.0);
    Ok(TTest {
        t,
        df,
        p_two_sided,
        mean_diff,
        stderr,
    })
}

/// Why a histogram could not be encoded or decoded.
#[derive(Debug, Error)]
pub enum HistogramCodecError {
    /// hdrhistogram's V2 deflate serializer failed.
    #[error("hdrhistogram V2 deflate serialisation: {0}")]
    Serialize(#[from] hdrhistogram::serialization::V2DeflateSerializeError),
    /// The text is not standard base64.
    #[error("histogram base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an hdrhistogram V2 (compressed or not) histogram.
    #[error("hdrhistogram deserialisation: {0}")]
    Deserialize(#[from] hdrhistogram::serialization::DeserializeError),
}

/// Encodes a histogram as base64 of its HdrHistogram V2 compressed form (interval-log format).
///
/// Standard base64 with padding of the deflate-compressed V2 encoding, readable by the
/// Java/C/Go implementations.
///
/// Errors: [`HistogramCodecError::Serialize`] (not expected for in-memory output).
pub fn histogram_to_base64(hist: &Histogram<u64>) -> Result<String, HistogramCodecError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(hist, &mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes the output of [`histogram_to_base64`] (also accepts uncompressed V2).
///
/// Errors: [`HistogramCodecError::Base64`], [`HistogramCodecError::Deserialize`].
pub fn histogram_from_base64(text: &str) -> Result<Histogram<u64>, HistogramCodecError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::close;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn percentile_sorted_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert_eq!(percentile_sorted(&v, 0.25), 1.0);
        assert_eq!(percentile_sorted(&v, 0.26), 2.0);
        assert_eq!(percentile_sorted(&v, 0.5), 2.0);
        assert_eq!(percentile_sorted(&v, 0.75), 3.0);
        assert_eq!(percentile_sorted(&v, 0.76), 4.0);
        assert_eq!(percentile_sorted(&v, 1.0), 4.0);
        assert!(percentile_sorted(&v, 1.01).is_nan());
        assert!(percentile_sorted(&v, -0.1).is_nan());
        assert!(percentile_sorted(&v, f64::NAN).is_nan());
        assert!(percentile_sorted(&[], 0.5).is_nan());
        // 1000 values 1..=1000: p99.9 is the 999th.
        let w: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile_sorted(&w, 0.999), 999.0);
        assert_eq!(percentile_sorted(&w, 0.9), 900.0);
    }

    #[test]
    fn summary_from_values_exact() {
        let s = Summary::from_values_ns(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s.samples, 4);
        assert_eq!(s.mean_ns, 2.5);
        assert!(close(s.stddev_ns, 1.25f64.sqrt(), 1e-15));
        assert!(close(s.cv, 1.25f64.sqrt() / 2.5, 1e-15));
        assert_eq!((s.min_ns, s.p50_ns, s.p90_ns, s.max_ns), (1.0, 2.0, 4.0, 4.0));
        let e = Summary::from_values_ns(&[]);
        assert_eq!(e.samples, 0);
        assert!(e.mean_ns.is_nan() && e.p50_ns.is_nan());
        let h = new_histogram_ps().unwrap();
        assert_eq!(Summary::from_histogram_ps(&h).samples, 0);
    }

    #[test]
    fn histogram_summary_matches_sorted_reference() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut hist = new_histogram_ps().unwrap();
        let mut values_ns = Vec::new();
        for _ in 0..20_000 {
            // Long-tailed latencies between ~20 ns and ~20 us, recorded at 1 ps resolution.
            let u: f64 = rng.random();
            let ps = (20_000.0 * (1000.0f64).powf(u * u * u)).round() as u64;
            hist.record(ps).unwrap();
            values_ns.push(ps as f64 / PS_PER_NS);
        }
        let h = Summary::from_histogram_ps(&hist);
        let exact = Summary::from_values_ns(&values_ns);
        assert_eq!(h.samples, exact.samples);
        // 3 significant digits: bucket width <= value / 1024 (sub-bucket count 2048).
        let within = |got: f64, want: f64| close(got, want, want / 1000.0 + 1e-3);
        for (got, want, name) in [
            (h.p50_ns, exact.p50_ns, "p50"),
            (h.p90_ns, exact.p90_ns, "p90"),
            (h.p99_ns, exact.p99_ns, "p99"),
            (h.p999_ns, exact.p999_ns, "p999"),
            (h.max_ns, exact.max_ns, "max"),
            (h.min_ns, exact.min_ns, "min"),
            (h.mean_ns, exact.mean_ns, "mean"),
            (h.stddev_ns, exact.stddev_ns, "stddev"),
        ] {
            assert!(within(got, want), "{name}: histogram {got} vs exact {want}");
        }
        // The histogram reports the highest equivalent value: never below the exact quantile.
        assert!(h.p99_ns >= exact.p99_ns && h.max_ns >= exact.max_ns);
        assert!(h.p50_ns < h.p90_ns && h.p90_ns < h.p99_ns && h.p99_ns <= h.p999_ns);
    }

    #[test]
    fn record_ps_grows_instead_of_clamping() {
        let mut h = new_histogram_ps().unwrap();
        record_ps(&mut h, 5_000_000);
        record_ps(&mut h, 3);
        record_ps(&mut h, u64::MAX);
        assert_eq!(h.len(), 3);
        assert!(h.equivalent(h.value_at_quantile(0.5), 5_000_000));
        assert_eq!(h.min(), 3);
    }

    #[test]
    fn fit_hand_computed_example() {
        // x = 1..5, y = 2 4 5 4 5: slope 0.6, intercept 2.2, SSE 2.4, SST 6, Sxx 10.
        let fit = fit_linear(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 5.0, 4.0, 5.0]).unwrap();
        assert_eq!(fit.n, 5);
        assert!(close(fit.slope, 0.6, 1e-12));
        assert!(close(fit.intercept, 2.2, 1e-12));
        assert!(close(fit.r2, 0.6, 1e-12));
        assert!(close(fit.residual_sd, 0.8f64.sqrt(), 1e-12));
        assert!(close(fit.slope_stderr, 0.08f64.sqrt(), 1e-12));
        assert!(close(fit.intercept_stderr, 0.88f64.sqrt(), 1e-12));
        // t(0.975, 3) = 3.182446305284263 (tables; mpmath).
        assert!(close(fit.t_crit95, 3.182446305284263, 1e-6));
        let half = 3.182446305284263 * 0.08f64.sqrt();
        assert!(close(fit.slope_ci95.0, 0.6 - half, 1e-6));
        assert!(close(fit.slope_ci95.1, 0.6 + half, 1e-6));
    }

    #[test]
    fn t_critical_values_match_tables() {
        // t(0.975, df) for df = 1, 10, 98 (mpmath): 12.7062047, 2.2281389, 1.9844675.
        for (n, want) in [
            (3usize, 12.706204736174705),
            (12, 2.228138851986274),
            (100, 1.984467454508482),
        ] {
            let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let ys: Vec<f64> = xs.iter().map(|x| x * x).collect();
            let fit = fit_linear(&xs, &ys).unwrap();
            assert!(close(fit.t_crit95, want, 1e-6 * want), "n={n}: {}", fit.t_crit95);
        }
    }

    #[test]
    fn fit_exact_line_has_zero_error() {
        let xs = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0];
        let ys: Vec<f64> = xs.iter().map(|x| 7.0 + 2.5 * x).collect();
        let fit = fit_linear(&xs, &ys).unwrap();
        assert!(close(fit.slope, 2.5, 1e-12) && close(fit.intercept, 7.0, 1e-12));
        assert!(close(fit.r2, 1.0, 1e-12));
        assert!(fit.residual_sd < 1e-12 && fit.slope_stderr < 1e-12);
        assert!(close(fit.slope_ci95.0, 2.5, 1e-9) && close(fit.slope_ci95.1, 2.5, 1e-9));
        // Constant y: slope 0, r2 defined as 1.
        let flat = fit_linear(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]).unwrap();
        assert_eq!((flat.slope, flat.intercept, flat.r2), (0.0, 5.0, 1.0));
    }

    #[test]
    fn fit_rejects_degenerate_input() {
        assert_eq!(
            fit_linear(&[1.0, 2.0], &[1.0, 2.0]),
            Err(FitError::TooFewPoints { n: 2 })
        );
        assert_eq!(fit_linear(&[], &[]), Err(FitError::TooFewPoints { n: 0 }));
        assert_eq!(
            fit_linear(&[1.0, 2.0, 3.0], &[1.0, 2.0]),
            Err(FitError::LengthMismatch { xs: 3, ys: 2 })
        );
        assert_eq!(
            fit_linear(&[4.0, 4.0, 4.0, 4.0], &[1.0, 2.0, 3.0, 4.0]),
            Err(FitError::DegenerateX { x: 4.0 })
        );
        assert!(matches!(
            fit_linear(&[1.0, 2.0, 3.0], &[1.0, f64::NAN, 3.0]),
            Err(FitError::NonFinite {
                axis: "y",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            fit_linear(&[1.0, 2.0, f64::INFINITY], &[1.0, 2.0, 3.0]),
            Err(FitError::NonFinite {
                axis: "x",
                index: 2,
                ..
            })
        ));
        // Two distinct x among three points is enough.
        assert!(fit_linear(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]).is_ok());
    }

    #[test]
    fn welch_textbook_example() {
        // Wikipedia, "Welch's t-test", Examples, A1 vs A2: t = -2.46, df = 25.0, p = 0.021.
        // Precise values computed with mpmath (30 digits).
        let a1 = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4,
        ];
        let a2 = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4,
        ];
        let r = welch_t_test(&a1, &a2).unwrap();
        assert!(close(r.t, -2.455356398286005, 1e-9), "t = {}", r.t);
        assert!(close(r.df, 24.98852929023141, 1e-9), "df = {}", r.df);
        assert!(close(r.p_two_sided, 0.02137800146286703, 1e-7), "p = {}", r.p_two_sided);
        assert!(close(r.t * r.stderr, r.mean_diff, 1e-12));
        let swapped = welch_t_test(&a2, &a1).unwrap();
        assert!(close(swapped.t, -r.t, 1e-12) && close(swapped.p_two_sided, r.p_two_sided, 1e-12));
        // Same data: t = 0, p = 1.
        let same = welch_t_test(&a1, &a1).unwrap();
        assert_eq!(same.t, 0.0);
        assert!(close(same.p_two_sided, 1.0, 1e-12));
    }

    #[test]
    fn welch_rejects_bad_input() {
        assert_eq!(
            welch_t_test(&[1.0], &[1.0, 2.0]),
            Err(TTestError::TooFewValues { sample: "a", n: 1 })
        );
        assert!(matches!(
            welch_t_test(&[1.0, 2.0], &[1.0, f64::NAN]),
            Err(TTestError::NonFinite {
                sample: "b",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            welch_t_test(&[3.0, 3.0], &[4.0, 4.0, 4.0]),
            Err(TTestError::ZeroVariance { .. })
        ));
        // One constant sample is fine: df = n_other - 1.
        let r = welch_t_test(&[3.0, 3.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(close(r.df, 3.0, 1e-12));
    }

    #[test]
    fn histogram_base64_round_trip() {
        let mut hist = new_histogram_ps().unwrap();
        for v in [1u64, 17, 1_000, 12_345, 987_654_321, 5_000_000_000_000] {
            hist.record_n(v, v % 7 + 1).unwrap();
        }
        let text = histogram_to_base64(&hist).unwrap();
        assert!(text.bytes().all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)));
        let back = histogram_from_base64(&text).unwrap();
        assert_eq!(back, hist);
        assert_eq!(back.len(), hist.len());
        assert_eq!(back.value_at_quantile(0.99), hist.value_at_quantile(0.99));
        let empty = new_histogram_ps().unwrap();
        assert_eq!(
            histogram_from_base64(&histogram_to_base64(&empty).unwrap())
                .unwrap()
                .len(),
            0
        );
        assert!(matches!(
            histogram_from_base64("not base64!"),
            Err(HistogramCodecError::Base64(_))
        ));
        assert!(matches!(
            histogram_from_base64("AAAAAAAAAAA="),
            Err(HistogramCodecError::Deserialize(_))
        ));
    }
}
