//! The claims engine: each claim as data, evaluated per backend into a verdict with its numbers.
//!
//! A claim reads fits (which mechanisms, metric and x: `pairs`), applies a statistical test to
//! their slopes (`verdict`) and says why, with the numbers behind it; `engine` holds what each of
//! the seven claims compares. What a results file stores of a claim (`ClaimResult`, `Verdict`,
//! `Compared`) is part of the results contract, `crate::schema`, re-exported here.
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

mod deciding;
mod engine;
mod pairs;
#[cfg(test)]
mod tests;
mod verdict;

use hookbench_measure::estimate::Margin;
#[cfg(doc)]
use hookbench_measure::estimate::{tost, Estimate};

pub use crate::schema::{ClaimResult, Compared, Verdict};
pub use deciding::{deciding, Deciding};
pub use engine::evaluate;
pub use pairs::{fit_body, CHAIN_VS_EFFECTIVE};
pub use verdict::{slope_estimate, suite_margin};

/// Margin of "flat" and "the same" when the claim's suite names none.
///
/// 0.5 (ns, or the fit's unit) per unit of x, or 10% of the reference slope, whichever is larger.
pub const DEFAULT_MARGIN: Margin = Margin { abs: 0.5, rel: 0.10 };

/// Confidence level of the "grows" test and of the intervals quoted in evidence.
pub const CONFIDENCE: f64 = 0.95;

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

/// The claims of [`HYPOTHESES`] in a few words each, for a heading in a 72-column table.
///
/// Short enough that `claim N: title (unit per x)` fits on one line.
pub const TITLES: [(u32, &str); 7] = [
    (1, "chain grows with foreign programs, array not"),
    (2, "same cost per program on the hook itself"),
    (3, "handle loop grows, cgroup-id map not"),
    (4, "cgroup attach grows, task install flat"),
    (5, "per-cgroup metadata; chains shared"),
    (6, "chain rises more with the working set"),
    (7, "action cache skips number-only filters"),
];
