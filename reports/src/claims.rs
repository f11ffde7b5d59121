//! The claims engine: each claim as data, evaluated per backend into a verdict with its numbers.
//!
//! A claim reads fits (which mechanisms, metric and x: `pairs`), applies a statistical test to
//! their slopes (`verdict`) and says why, with the numbers behind it; `engine` holds what each of
//! the seven claims compares. This file holds what a results file stores of a claim.
//!
//! Every test reads fits' slopes as [`Estimate`]s (the slope, its standard error `slope_se` and
//! `n - 2` degrees of freedom, see [`slope_estimate`]); the statistics are those of
//! `hookbench_measure::estimate`:
//! - *grows*: the slope's 95% confidence interval lies above zero;
//! - *flat*: the slope is equivalent to 0 within the margin, by two one-sided tests at 5%
//!   (Schuirmann 1987, [`tost`]): its 90% interval lies inside `(-m, +m)`;
//! - *the same* (claim 2): the difference of two slopes is equivalent to 0 within the margin.
//!
//! The margin `m` is the claim's suite's (`results.suites[].margin`, absolute in the fit's unit
//! per unit of x, and relative to the reference slope; [`Margin::of`] takes the larger), or
//! [`DEFAULT_MARGIN`] when the suite names none; the margin used is saved in
//! [`ClaimResult::margin`]. A claim is *refuted* when the flat side clearly leaves the margin
//! (its 95% interval lies entirely outside `[-m, +m]`), when two slopes that should be the same
//! clearly differ by more than the margin, or when the rising side's 95% interval is at or
//! below 0; it is *inconclusive* otherwise, saying why (usually: intervals too wide for the
//! margin).
//!
//! Claims compare like with like: two fits are compared only when their cells ran the same
//! program body (`fixed["body"]`) on the same trigger (the mechanism pairs of `pairs` are chosen
//! per trigger). A claim whose fits are missing on a backend is `not-run` there, with what was
//! missing; every result lists the fits it compared in [`ClaimResult::compared`].

mod engine;
mod pairs;
#[cfg(test)]
mod tests;
mod verdict;

use hookbench_measure::estimate::Margin;
#[cfg(doc)]
use hookbench_measure::estimate::{tost, Estimate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use engine::evaluate;
pub use pairs::{fit_body, CHAIN_VS_EFFECTIVE};
pub use verdict::{slope_estimate, suite_margin};

/// Margin of "flat" and "the same" when the claim's suite names none.
///
/// 0.5 (ns, or the fit's unit) per unit of x, or 10% of the reference slope, whichever is larger.
pub const DEFAULT_MARGIN: Margin = Margin { abs: 0.5, rel: 0.10 };

/// Confidence level of the "grows" test and of the intervals quoted in evidence.
pub const CONFIDENCE: f64 = 0.95;

/// A claim's outcome on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The data agree with the hypothesis.
    Supported,
    /// The data contradict it.
    Refuted,
    /// The intervals are too wide to tell.
    Inconclusive,
    /// The mechanisms it needs were not measured on this backend.
    NotRun,
}

impl Verdict {
    /// The results name, e.g. "not-run".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Refuted => "refuted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotRun => "not-run",
        }
    }
}

/// One claim evaluated on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// The ARCHITECTURE.md claim number, 1-7.
    pub id: u32,
    /// The hypothesis in one sentence.
    pub hypothesis: String,
    /// Backend the verdict is for.
    pub backend: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence with the figures.
    pub evidence: String,
    /// The numbers behind it (slopes, CI bounds, differences), by name.
    pub numbers: BTreeMap<String, f64>,
    /// The fits the verdict compared, so a reader can find them (and their cells).
    #[serde(default)]
    pub compared: Vec<Compared>,
    /// The equivalence margin a "the same" or "flat" test used, in the fits' unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

/// One fit a claim compared: where it comes from and what it was over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// Suite of the fit.
    pub suite: String,
    /// Backend of the fit.
    pub backend: String,
    /// Mechanism of the fit.
    pub mechanism: String,
    /// The program body the fit's cells ran (`null`, `counter`, `map-lookup`).
    pub body: String,
    /// The fit's x axis.
    pub x: String,
}

/// The claims of ARCHITECTURE.md, by number.
pub const HYPOTHESES: [(u32, &str); 7] = [
    (1, "The task chain's cost grows with programs attached for other hooks; effective arrays' does not."),
    (2, "For programs on the hook itself, the per-program cost is the same in both models."),
    (3, "A loop over cgroup handles per hook grows with the handles; a cgroup-array or map lookup does not."),
    (4, "Per-cgroup attach costs grow with the number of descendants; per-task install does not."),
    (5, "Per-cgroup metadata grows with cgroups x hooks; per-task chains are shared across fork."),
    (6, "With thousands of tasks or cgroups in the working set, the task chain's cost per node rises more than the effective array's cost per program."),
    (7, "seccomp's action cache removes the chain walk for filters whose result depends only on the syscall number."),
];
