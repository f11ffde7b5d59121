//! Integration tests of `hookbench::measure::stats`: the least-squares fit, via the public API.
//!
//! It is fitted on synthetic data with known noise.

use hookbench_measure::{fit_linear, welch_t_test};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Standard normal deviate by Box-Muller (rand_distr is not a dependency).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

const TRIALS: usize = 400;
const TRUE_INTERCEPT: f64 = 85.0; // ns of fixed entry cost
const TRUE_SLOPE: f64 = 3.25; // ns per program
const NOISE_SD: f64 = 4.0; // ns

/// Program counts as a sweep would use them: 0, 1, 2, 4, ... 256, each measured twice.
fn sweep_xs() -> Vec<f64> {
    let mut xs = vec![0.0];
    let mut x = 1.0;
    while x <= 256.0 {
        xs.push(x);
        x *= 2.0;
    }
    xs.iter().chain(xs.iter()).copied().collect()
}

#[test]
fn fit_recovers_known_line_and_ci_covers_at_the_nominal_rate() {
    let xs = sweep_xs();
    let n = xs.len() as f64;
    let x_mean = xs.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    let true_slope_sd = NOISE_SD / sxx.sqrt();

    let mut rng = StdRng::seed_from_u64(0x5eed_1a2d);
    let (mut slope_covered, mut intercept_covered) = (0usize, 0usize);
    let mut slopes = Vec::with_capacity(TRIALS);
    let mut residual_sds = Vec::with_capacity(TRIALS);
    for _ in 0..TRIALS {
        let ys: Vec<f64> = xs
            .iter()
            .map(|x| TRUE_INTERCEPT + TRUE_SLOPE * x + NOISE_SD * normal(&mut rng))
            .collect();
        let fit = fit_linear(&xs, &ys).expect("valid sweep");
        assert_eq!(fit.n, xs.len());
        let (lo, hi) = fit.slope_ci95;
        if lo <= TRUE_SLOPE && TRUE_SLOPE <= hi {
            slope_covered += 1;
        }
        let (ilo, ihi) = fit.intercept_ci95;
        if ilo <= TRUE_INTERCEPT && TRUE_INTERCEPT <= ihi {
            intercept_covered += 1;
        }
        // Within a few standard errors in every trial (|t| > 6 on 16 df: p ~ 2e-5).
        assert!(
            (fit.slope - TRUE_SLOPE).abs() < 6.0 * fit.slope_stderr,
            "slope {} +- {}",
            fit.slope,
            fit.slope_stderr
        );
        assert!(
            (fit.intercept - TRUE_INTERCEPT).abs() < 6.0 * fit.intercept_stderr,
            "intercept {} +- {}",
            fit.intercept,
            fit.intercept_stderr
        );
        assert!(fit.r2 > 0.99 && fit.r2 <= 1.0);
        slopes.push(fit.slope);
        residual_sds.push(fit.residual_sd);
    }
    let slope_rate = slope_covered as f64 / TRIALS as f64;
    let intercept_rate = intercept_covered as f64 / TRIALS as f64;
    assert!((0.88..=0.99).contains(&slope_rate), "slope CI coverage {slope_rate}");
    assert!(
        (0.88..=0.99).contains(&intercept_rate),
        "intercept CI coverage {intercept_rate}"
    );

    // Unbiased: the mean estimate is within 4 standard errors of the mean.
    let mean_slope = slopes.iter().sum::<f64>() / TRIALS as f64;
    assert!(
        (mean_slope - TRUE_SLOPE).abs() < 4.0 * true_slope_sd / (TRIALS as f64).sqrt(),
        "mean slope {mean_slope}"
    );
    // The stderr formula matches the empirical spread of the estimates (within 15%).
    let emp_sd = (slopes.iter().map(|s| (s - mean_slope).powi(2)).sum::<f64>() / (TRIALS as f64 - 1.0)).sqrt();
    assert!(
        (emp_sd / true_slope_sd - 1.0).abs() < 0.15,
        "empirical slope sd {emp_sd} vs theory {true_slope_sd}"
    );
    // residual_sd estimates the noise sd.
    let mean_resid = residual_sds.iter().sum::<f64>() / TRIALS as f64;
    assert!((mean_resid / NOISE_SD - 1.0).abs() < 0.05, "residual sd {mean_resid}");
}

#[test]
fn welch_p_values_are_uniform_under_the_null() {
    // Under equal means, p < 0.05 should happen in ~5% of trials (checks df and sf together).
    let mut rng = StdRng::seed_from_u64(42);
    let mut rejections = 0usize;
    for _ in 0..TRIALS {
        let a: Vec<f64> = (0..12).map(|_| 10.0 + normal(&mut rng)).collect();
        let b: Vec<f64> = (0..30).map(|_| 10.0 + 3.0 * normal(&mut rng)).collect();
        let t = welch_t_test(&a, &b).expect("valid samples");
        assert!((0.0..=1.0).contains(&t.p_two_sided));
        if t.p_two_sided < 0.05 {
            rejections += 1;
        }
    }
    let rate = rejections as f64 / TRIALS as f64;
    assert!((0.01..=0.12).contains(&rate), "false-positive rate {rate}");
}
