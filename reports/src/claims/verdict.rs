//! The statistical tests behind a verdict: grows against flat, and the same slope within a margin.
//!
//! Each returns an [`Outcome`]: the verdict, one sentence of evidence with the figures, the
//! numbers by name, the fits compared and the margin used.

use super::pairs::{compared, fit_body, Pairing};
use super::{Compared, Verdict, CONFIDENCE, DEFAULT_MARGIN};
use crate::schema::{Fit, Results};
use hookbench_measure::estimate::{difference, tost, two_sided_critical, Estimate, Margin};
use std::collections::BTreeMap;

/// A fit's slope as an estimate: `slope`, `slope_se` and `n - 2` degrees of freedom.
///
/// A results file without `slope_se` (NaN) gets it back from the 95% interval,
/// `half-width / t(0.975, n - 2)`, the inverse of how the interval was made.
pub fn slope_estimate(f: &Fit) -> Estimate {
    let df = f.n as f64 - 2.0;
    let se = if f.slope_se.is_finite() {
        f.slope_se
    } else {
        (f.slope_ci95[1] - f.slope_ci95[0]) / 2.0 / two_sided_critical(CONFIDENCE, df)
    };
    Estimate { value: f.slope, se, df }
}

/// The margin of `suite`'s claim: the suite's own, else [`DEFAULT_MARGIN`].
pub fn suite_margin(results: &Results, suite: &str) -> Margin {
    results
        .suites
        .iter()
        .find(|s| s.name == suite)
        .and_then(|s| s.margin)
        .unwrap_or(DEFAULT_MARGIN)
}

/// What one claim concluded on one backend, before it is labelled with its id and hypothesis.
pub(super) struct Outcome {
    pub(super) verdict: Verdict,
    pub(super) evidence: String,
    pub(super) numbers: BTreeMap<String, f64>,
    pub(super) compared: Vec<Compared>,
    pub(super) margin: Option<f64>,
}

/// The outcome of a claim whose fits were not measured on a backend, saying `what` is missing.
pub(super) fn not_run(what: &str) -> Outcome {
    Outcome {
        verdict: Verdict::NotRun,
        evidence: format!("not measured on this backend: {what}"),
        numbers: BTreeMap::new(),
        compared: Vec::new(),
        margin: None,
    }
}

/// The slope's 95% interval lies above zero.
pub(super) fn grows(f: &Fit) -> bool {
    f.slope_ci95[0] > 0.0
}

/// The 95% interval lies entirely outside `[-m, +m]`.
pub(super) fn beyond(ci: [f64; 2], m: f64) -> bool {
    ci[0] > m || ci[1] < -m
}

/// `slope [lo, hi]` with three decimals and the slope's sign.
fn slope_text(f: &Fit) -> String {
    format!("{:+.3} [{:.3}, {:.3}]", f.slope, f.slope_ci95[0], f.slope_ci95[1])
}

/// Saves `f`'s slope, interval and standard error in `nums` under `name_*`.
pub(super) fn record(nums: &mut BTreeMap<String, f64>, name: &str, f: &Fit) {
    let e = slope_estimate(f);
    nums.insert(format!("{name}_slope"), f.slope);
    nums.insert(format!("{name}_ci95_lo"), f.slope_ci95[0]);
    nums.insert(format!("{name}_ci95_hi"), f.slope_ci95[1]);
    nums.insert(format!("{name}_se"), e.se);
}

/// The not-run outcome of a pair search that found no like-with-like pair.
pub(super) fn unpaired(r: &Results, pairing: Pairing<'_>, pairs: &[(&str, &str)], what: &str) -> Outcome {
    match pairing {
        Pairing::Unlike(a, b) => {
            let body = |f: &Fit| fit_body(r, f).unwrap_or_else(|| "unknown".to_string());
            let mut o = not_run(&format!(
                "{what}: {} ran body {} and {} body {}; fits of different programs are not compared",
                a.mechanism,
                body(a),
                b.mechanism,
                body(b)
            ));
            o.compared = vec![compared(r, a), compared(r, b)];
            o
        }
        Pairing::Found(..) | Pairing::Missing => {
            let names: Vec<String> = pairs.iter().map(|(a, b)| format!("{a} with {b}")).collect();
            not_run(&format!("{what} ({})", names.join(", or ")))
        }
    }
}

/// The test of "grows, flat" claims (1, 3, 4, 5, 7): `rising` must grow, `level` stay flat.
///
/// Flat is equivalence to 0 within the margin of `rising`'s suite, taken relative to `rising`'s
/// slope.
pub(super) fn grows_vs_flat(r: &Results, rising: &Fit, level: &Fit, names: (&str, &str)) -> Outcome {
    let margin = suite_margin(r, &rising.suite);
    let m = margin.of(rising.slope);
    let level_est = slope_estimate(level);
    let zero = Estimate {
        value: 0.0,
        se: 0.0,
        df: f64::INFINITY,
    };
    let eq = tost(level_est, zero, m);
    let level_ci = level_est.ci(CONFIDENCE);
    let mut nums = BTreeMap::new();
    record(&mut nums, names.0, rising);
    record(&mut nums, names.1, level);
    nums.insert("margin".into(), m);
    nums.insert("tost_p".into(), eq.p_value);
    nums.insert(format!("{}_ci90_lo", names.1), eq.ci90[0]);
    nums.insert(format!("{}_ci90_hi", names.1), eq.ci90[1]);
    let rising_grows = grows(rising);
    let level_off = beyond(level_ci, m);
    let rising_not = rising.slope_ci95[1] <= 0.0;
    let (verdict, why) = if rising_grows && eq.equivalent {
        (
            Verdict::Supported,
            format!(
                "{}: grows; {}: flat (90% CI [{:.3}, {:.3}] inside the margin, TOST p {:.3})",
                names.0, names.1, eq.ci90[0], eq.ci90[1], eq.p_value
            ),
        )
    } else if level_off || rising_not {
        let mut reasons = Vec::new();
        if level_off {
            reasons.push(format!("{} is not flat: its 95% CI lies beyond the margin", names.1));
        }
        if rising_not {
            reasons.push(format!("{} does not grow: its 95% CI is at or below 0", names.0));
        }
        (Verdict::Refuted, reasons.join("; "))
    } else {
        let mut reasons = Vec::new();
        if !rising_grows {
            reasons.push(format!("{}'s 95% CI holds 0", names.0));
        }
        if !eq.equivalent {
            reasons.push(format!(
                "{}'s 90% CI [{:.3}, {:.3}] is not inside the margin",
                names.1, eq.ci90[0], eq.ci90[1]
            ));
        }
        (
            Verdict::Inconclusive,
            format!("intervals too wide for the margin: {}", reasons.join("; ")),
        )
    };
    let evidence = format!(
        "{} ({}) {} vs {} ({}) {} per {}; margin +-{:.3}: {}",
        names.0,
        rising.mechanism,
        slope_text(rising),
        names.1,
        level.mechanism,
        slope_text(level),
        rising.x,
        m,
        why
    );
    Outcome {
        verdict,
        evidence,
        numbers: nums,
        compared: vec![compared(r, rising), compared(r, level)],
        margin: Some(m),
    }
}

/// Claim 2's test: the two per-program slopes are the same within the margin.
///
/// The test is TOST on their difference, with the margin relative to the mean of their
/// magnitudes.
pub(super) fn the_same(r: &Results, chain: &Fit, effective: &Fit) -> Outcome {
    let margin = suite_margin(r, &chain.suite);
    let reference = (chain.slope.abs() + effective.slope.abs()) / 2.0;
    let m = margin.of(reference);
    let (ce, ee) = (slope_estimate(chain), slope_estimate(effective));
    let eq = tost(ce, ee, m);
    let ci95 = difference(ce, ee).ci(CONFIDENCE);
    let mut nums = BTreeMap::new();
    record(&mut nums, "task-chain", chain);
    record(&mut nums, "cgroup-effective", effective);
    nums.insert("difference".into(), eq.diff);
    nums.insert("difference_ci90_lo".into(), eq.ci90[0]);
    nums.insert("difference_ci90_hi".into(), eq.ci90[1]);
    nums.insert("difference_ci95_lo".into(), ci95[0]);
    nums.insert("difference_ci95_hi".into(), ci95[1]);
    nums.insert("margin".into(), m);
    nums.insert("tost_p".into(), eq.p_value);
    let (verdict, why) = if eq.equivalent {
        (
            Verdict::Supported,
            format!(
                "the same within the margin (90% CI [{:.3}, {:.3}], TOST p {:.3})",
                eq.ci90[0], eq.ci90[1], eq.p_value
            ),
        )
    } else if eq.different && beyond(ci95, m) {
        (
            Verdict::Refuted,
            format!(
                "they differ by more than the margin (95% CI [{:.3}, {:.3}])",
                ci95[0], ci95[1]
            ),
        )
    } else if eq.different {
        (
            Verdict::Inconclusive,
            format!(
                "intervals too wide for the margin: they differ (95% CI [{:.3}, {:.3}] excludes 0) \
                 but not clearly by more than the margin",
                ci95[0], ci95[1]
            ),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "intervals too wide for the margin: the difference's 90% CI [{:.3}, {:.3}] is not inside it",
                eq.ci90[0], eq.ci90[1]
            ),
        )
    };
    let body = fit_body(r, chain).unwrap_or_else(|| "unknown".to_string());
    let evidence = format!(
        "per {}, body {}: task-chain ({}) {} vs cgroup-effective ({}) {}; difference {:+.3}, margin +-{:.3}: {}",
        chain.x,
        body,
        chain.mechanism,
        slope_text(chain),
        effective.mechanism,
        slope_text(effective),
        eq.diff,
        m,
        why
    );
    Outcome {
        verdict,
        evidence,
        numbers: nums,
        compared: vec![compared(r, chain), compared(r, effective)],
        margin: Some(m),
    }
}
