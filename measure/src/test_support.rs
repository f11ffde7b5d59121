//! Helpers the measurement crate's unit tests share: tolerances and normal estimates.

use crate::estimate::Estimate;
use rand::{rngs::StdRng, Rng};

/// Whether `a` is within `tol` of `b`.
pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// An estimate with a normal distribution (infinite degrees of freedom).
pub(crate) fn normal_est(value: f64, se: f64) -> Estimate {
    Estimate {
        value,
        se,
        df: f64::INFINITY,
    }
}

/// One standard normal draw (Box–Muller).
pub(crate) fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
