//! The claims engine: each claim of DESIGN.md as data (the fits it reads and the test it applies), evaluated per backend into a verdict with the numbers behind it.
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
//! program body (`fixed["body"]`) on the same trigger (the mechanism pairs below are chosen per
//! trigger). A claim whose fits are missing on a backend is `not-run` there, with what was
//! missing; every result lists the fits it compared in [`ClaimResult::compared`].

use crate::schema::{Fit, Results};
use hookbench_measure::estimate::{combine, difference, tost, two_sided_critical, Estimate, Margin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Margin of "flat" and "the same" when the claim's suite names none: 0.5 (ns, or the fit's
/// unit) per unit of x, or 10% of the reference slope, whichever is larger.
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
    /// The DESIGN.md claim number, 1-7.
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

/// The claims of DESIGN.md, by number.
pub const HYPOTHESES: [(u32, &str); 7] = [
    (1, "The task chain's cost grows with programs attached for other hooks; effective arrays' does not."),
    (2, "For programs on the hook itself, the per-program cost is the same in both models."),
    (3, "A loop over cgroup handles per hook grows with the handles; a cgroup-array or map lookup does not."),
    (4, "Per-cgroup attach costs grow with the number of descendants; per-task install does not."),
    (5, "Per-cgroup metadata grows with cgroups x hooks; per-task chains are shared across fork."),
    (6, "With thousands of tasks or cgroups in the working set, the task chain's cost per node rises more than the effective array's cost per program."),
    (7, "seccomp's action cache removes the chain walk for filters whose result depends only on the syscall number."),
];

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

/// The program body a fit's cells ran: `fixed["body"]`, else the one body of its cells.
pub fn fit_body(results: &Results, f: &Fit) -> Option<String> {
    if let Some(b) = f.fixed.get("body").and_then(|v| v.as_str()) {
        return Some(b.to_string());
    }
    let bodies: BTreeSet<String> = results.cells_of(f).iter().map(|c| c.params.body.to_string()).collect();
    match bodies.len() {
        1 => bodies.into_iter().next(),
        _ => None,
    }
}

fn compared(results: &Results, f: &Fit) -> Compared {
    Compared {
        suite: f.suite.clone(),
        backend: f.backend.clone(),
        mechanism: f.mechanism.clone(),
        body: fit_body(results, f).unwrap_or_else(|| "unknown".to_string()),
        x: f.x.clone(),
    }
}

/// What one claim concluded on one backend, before it is labelled with its id and hypothesis.
struct Outcome {
    verdict: Verdict,
    evidence: String,
    numbers: BTreeMap<String, f64>,
    compared: Vec<Compared>,
    margin: Option<f64>,
}

fn not_run(what: &str) -> Outcome {
    Outcome {
        verdict: Verdict::NotRun,
        evidence: format!("not measured on this backend: {what}"),
        numbers: BTreeMap::new(),
        compared: Vec::new(),
        margin: None,
    }
}

fn grows(f: &Fit) -> bool {
    f.slope_ci95[0] > 0.0
}

/// The 95% interval lies entirely outside `[-m, +m]`.
fn beyond(ci: [f64; 2], m: f64) -> bool {
    ci[0] > m || ci[1] < -m
}

/// `slope [lo, hi]` with three decimals and the slope's sign.
fn slope_text(f: &Fit) -> String {
    format!("{:+.3} [{:.3}, {:.3}]", f.slope, f.slope_ci95[0], f.slope_ci95[1])
}

fn record(nums: &mut BTreeMap<String, f64>, name: &str, f: &Fit) {
    let e = slope_estimate(f);
    nums.insert(format!("{name}_slope"), f.slope);
    nums.insert(format!("{name}_ci95_lo"), f.slope_ci95[0]);
    nums.insert(format!("{name}_ci95_hi"), f.slope_ci95[1]);
    nums.insert(format!("{name}_se"), e.se);
}

/// Every fit on `backend` of `mechanism` for `metric` over `x` that `keep` accepts.
fn fits_of<'a>(
    r: &'a Results,
    backend: &str,
    mechanism: &str,
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Vec<&'a Fit> {
    r.fits
        .iter()
        .filter(|f| f.backend == backend && f.mechanism == mechanism && f.metric == metric && f.x == x && keep(f))
        .collect()
}

/// The first fit on `backend` of one of `mechanisms` (in preference order).
fn find<'a>(
    r: &'a Results,
    backend: &str,
    mechanisms: &[&str],
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Option<&'a Fit> {
    mechanisms
        .iter()
        .find_map(|m| fits_of(r, backend, m, metric, x, keep).into_iter().next())
}

/// Preference among bodies when a sweep ran several: the null body isolates dispatch.
fn body_rank(body: &str) -> usize {
    ["null", "counter", "map-lookup"]
        .iter()
        .position(|b| *b == body)
        .unwrap_or(3)
}

/// How a pair of mechanisms was found on a backend.
enum Pairing<'a> {
    /// Two fits with the same body (and, by the pair's choice, the same trigger).
    Found(&'a Fit, &'a Fit),
    /// Both mechanisms were measured, but never with the same body.
    Unlike(&'a Fit, &'a Fit),
    /// At least one side of every pair is missing.
    Missing,
}

/// The first pair of `pairs` (mechanisms on the same trigger, in preference order) with fits on
/// `backend` that ran the same program body; the null body first when several match.
fn like_pair<'a>(
    r: &'a Results,
    backend: &str,
    pairs: &[(&str, &str)],
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Pairing<'a> {
    let mut unlike = None;
    for (ma, mb) in pairs {
        let fa = fits_of(r, backend, ma, metric, x, keep);
        let fb = fits_of(r, backend, mb, metric, x, keep);
        let mut best: Option<(usize, &Fit, &Fit)> = None;
        for a in &fa {
            let Some(body) = fit_body(r, a) else { continue };
            for b in &fb {
                if fit_body(r, b).as_deref() == Some(body.as_str())
                    && best.is_none_or(|(rank, _, _)| body_rank(&body) < rank)
                {
                    best = Some((body_rank(&body), *a, *b));
                }
            }
        }
        if let Some((_, a, b)) = best {
            return Pairing::Found(a, b);
        }
        if unlike.is_none() {
            if let (Some(a), Some(b)) = (fa.first(), fb.first()) {
                unlike = Some(Pairing::Unlike(a, b));
            }
        }
    }
    unlike.unwrap_or(Pairing::Missing)
}

/// The not-run outcome of a pair search that found no like-with-like pair.
fn unpaired(r: &Results, pairing: Pairing<'_>, pairs: &[(&str, &str)], what: &str) -> Outcome {
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

/// "grows, flat" claims (1, 3, 4, 5, 7): `rising` must grow, `level` must be equivalent to 0
/// within the margin of `rising`'s suite, taken relative to `rising`'s slope.
fn grows_vs_flat(r: &Results, rising: &Fit, level: &Fit, names: (&str, &str)) -> Outcome {
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

/// Claim 2's test: the two per-program slopes are the same within the margin (TOST on their
/// difference), with the margin relative to the mean of their magnitudes.
fn the_same(r: &Results, chain: &Fit, effective: &Fit) -> Outcome {
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

/// Evaluates every claim on every backend that has cells in `results`.
pub fn evaluate(results: &Results) -> Vec<ClaimResult> {
    let mut backends: Vec<&str> = results.cells.iter().map(|c| c.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut out = Vec::new();
    for backend in backends {
        for (id, hypothesis) in HYPOTHESES {
            let o = evaluate_one(results, backend, id);
            out.push(ClaimResult {
                id,
                hypothesis: hypothesis.to_string(),
                backend: backend.to_string(),
                verdict: o.verdict,
                evidence: o.evidence,
                numbers: o.numbers,
                compared: o.compared,
                margin: o.margin,
            });
        }
    }
    out
}

/// Task-chain and cgroup-effective mechanisms on the same trigger, in preference order: the
/// model's walk and array; on the kernel, argument-loading seccomp filters timed on
/// getsockname() against cgroup/getsockname4 programs on the same call, else seccomp and
/// cgroup/sock_create programs both on socket(); hookbench.ko's models on its one hook.
pub const CHAIN_VS_EFFECTIVE: [(&str, &str); 4] = [
    ("chain-walk", "effective-array"),
    ("seccomp-getsockname", "cgroup-bpf"),
    ("seccomp-socket", "cgroup-bpf-socket"),
    ("task-chain", "cgroup-effective"),
];
/// Mechanisms realising per-cgroup effective arrays for attach: the model's, cgroup-bpf
/// (kernel), hookbench.ko's `cgroup-effective` (kmod).
const EFFECTIVE_ATTACH: [&str; 3] = ["effective-array", "cgroup-bpf", "cgroup-effective"];
/// Per-task installs: the model's chain, seccomp filters and Landlock layers, hookbench.ko's.
const TASK_INSTALL: [&str; 4] = ["chain-walk", "seccomp-arg-load", "landlock", "task-chain"];
const HOOK: &str = "hook_latency_ns";

fn at_one_cpu_w1(f: &Fit) -> bool {
    let fixed = |axis: &str| f.fixed.get(axis).and_then(|v| v.as_f64());
    fixed("working_set").is_none_or(|w| w <= 1.0) && fixed("cpus").is_none_or(|c| c <= 1.0)
}

fn evaluate_one(r: &Results, b: &str, id: u32) -> Outcome {
    match id {
        1 => match like_pair(r, b, &CHAIN_VS_EFFECTIVE, HOOK, "foreign", &at_one_cpu_w1) {
            Pairing::Found(c, e) => grows_vs_flat(r, c, e, ("task-chain", "cgroup-effective")),
            other => {
                let found: Vec<&str> = CHAIN_VS_EFFECTIVE
                    .iter()
                    .flat_map(|(a, b)| [*a, *b])
                    .filter(|m| !fits_of(r, b, m, HOOK, "foreign", &at_one_cpu_w1).is_empty())
                    .collect();
                let mut what =
                    "fits over foreign of a task chain and an effective array on the same trigger and body".to_string();
                if b == "kernel" {
                    what.push_str(" (seccomp filters for other syscalls are not measured yet)");
                }
                if !found.is_empty() {
                    what.push_str(&format!("; measured: {}", found.join(", ")));
                }
                unpaired(r, other, &CHAIN_VS_EFFECTIVE, &what)
            }
        },
        2 => {
            let in_suite = |f: &Fit| f.suite == "programs" && at_one_cpu_w1(f);
            match like_pair(r, b, &CHAIN_VS_EFFECTIVE, HOOK, "programs", &in_suite) {
                Pairing::Found(c, e) => the_same(r, c, e),
                other => unpaired(
                    r,
                    other,
                    &CHAIN_VS_EFFECTIVE,
                    "no like-with-like pair: fits over programs in the programs suite of a task chain and \
                     an effective array with the same body on the same trigger",
                ),
            }
        }
        3 => {
            let pairs = [("handle-loop", "cgroup-id-map")];
            match like_pair(r, b, &pairs, HOOK, "handles", &at_one_cpu_w1) {
                Pairing::Found(h, m) => grows_vs_flat(r, h, m, ("handle-loop", "cgroup-id-map")),
                other => unpaired(
                    r,
                    other,
                    &pairs,
                    "fits over handles for the handle loop and the cgroup-id map with the same body",
                ),
            }
        }
        4 => {
            let a = "attach_latency_ns";
            match (
                find(r, b, &EFFECTIVE_ATTACH, a, "descendants", &|_| true),
                find(r, b, &TASK_INSTALL, a, "descendants", &|_| true),
            ) {
                (Some(e), Some(t)) => grows_vs_flat(r, e, t, ("cgroup attach", "task install")),
                _ => not_run("attach fits over descendants for a cgroup and a task mechanism"),
            }
        }
        5 => claim_5(r, b),
        6 => claim_6(r, b),
        7 => {
            let pairs = [("seccomp-arg-load", "seccomp-nr-only")];
            match like_pair(r, b, &pairs, HOOK, "programs", &|_| true) {
                Pairing::Found(a, n) => grows_vs_flat(r, a, n, ("argument-loading filters", "number-only filters")),
                other => unpaired(
                    r,
                    other,
                    &pairs,
                    "seccomp fits over programs for both filter bodies (kernel backend)",
                ),
            }
        }
        _ => not_run("unknown claim"),
    }
}

/// Claim 5: bytes per cgroup grow, and grow with hooks; bytes per forked task are equivalent to
/// 0 within the margin relative to the bytes per cgroup at the most hooks (shared chains).
fn claim_5(r: &Results, b: &str) -> Outcome {
    let m = "metadata_bytes";
    let per_cgroup = fits_of(r, b, "effective-array", m, "cgroups", &|_| true);
    let task = find(r, b, &["chain-walk"], m, "tasks", &|_| true);
    let hooks = |f: &Fit| f.fixed.get("hooks").and_then(|v| v.as_f64()).unwrap_or(0.0);
    let few = per_cgroup.iter().copied().min_by(|a, b| hooks(a).total_cmp(&hooks(b)));
    let many = per_cgroup.iter().copied().max_by(|a, b| hooks(a).total_cmp(&hooks(b)));
    let (Some(t), Some(few), Some(many)) = (task, few, many) else {
        return not_run("metadata fits over cgroups (effective arrays) and over tasks (task chains)");
    };
    let mut o = grows_vs_flat(r, many, t, ("per_cgroup_many_hooks", "per_task"));
    record(&mut o.numbers, "per_cgroup_few_hooks", few);
    o.numbers.insert("few_hooks".into(), hooks(few));
    o.numbers.insert("many_hooks".into(), hooks(many));
    let margin = o.margin.unwrap_or(f64::NAN);
    let t_ci = slope_estimate(t).ci(CONFIDENCE);
    let grows_with_hooks = hooks(many) > hooks(few) && many.slope_ci95[0] > few.slope_ci95[1];
    let shrinks_with_hooks = hooks(many) > hooks(few) && many.slope_ci95[1] < few.slope_ci95[0];
    let task_flat = o.numbers.get("tost_p").is_some_and(|p| *p < 0.05);
    let (verdict, why) = if grows(few) && grows_with_hooks && task_flat {
        (
            Verdict::Supported,
            "bytes per cgroup grow with hooks; a forked task adds bytes within the margin".to_string(),
        )
    } else if beyond(t_ci, margin) || shrinks_with_hooks || few.slope_ci95[1] <= 0.0 {
        (
            Verdict::Refuted,
            "a forked task adds more than the margin, or bytes per cgroup do not grow (with hooks)".to_string(),
        )
    } else {
        (
            Verdict::Inconclusive,
            "intervals too wide for the margin, or too few hook counts to see the growth".to_string(),
        )
    };
    o.verdict = verdict;
    o.evidence = format!(
        "bytes per cgroup {:.0} at {} hooks, {:.0} at {} hooks; bytes per forked task {:.1} [{:.1}, {:.1}]; \
         margin +-{:.1}: {}",
        few.slope,
        hooks(few),
        many.slope,
        hooks(many),
        t.slope,
        t.slope_ci95[0],
        t.slope_ci95[1],
        margin,
        why
    );
    o.compared = vec![compared(r, few), compared(r, many), compared(r, t)];
    o
}

/// Claim 6: the rise of the per-program slope from the smallest to the largest working set is
/// larger for the task chain than for the effective array (95% CI of the difference of the
/// rises above 0); fits of the same body only.
fn claim_6(r: &Results, b: &str) -> Outcome {
    let pairs = [("chain-walk", "effective-array"), ("task-chain", "cgroup-effective")];
    let ws = |f: &Fit| f.fixed.get("working_set").and_then(|v| v.as_f64()).unwrap_or(1.0);
    let in_suite = |f: &Fit| f.suite == "working-set";
    // The smallest and the largest working set of one mechanism's fits of one body.
    let extremes = |mech: &str, body: &str| -> Option<(&Fit, &Fit)> {
        let fits: Vec<&Fit> = fits_of(r, b, mech, HOOK, "programs", &in_suite)
            .into_iter()
            .filter(|f| fit_body(r, f).as_deref() == Some(body))
            .collect();
        let lo = fits.iter().copied().min_by(|a, b| ws(a).total_cmp(&ws(b)))?;
        let hi = fits.iter().copied().max_by(|a, b| ws(a).total_cmp(&ws(b)))?;
        (ws(hi) > ws(lo)).then_some((lo, hi))
    };
    let mut bodies: Vec<String> = r
        .fits
        .iter()
        .filter(|f| f.backend == b && in_suite(f))
        .filter_map(|f| fit_body(r, f))
        .collect();
    bodies.sort_by_key(|x| body_rank(x));
    bodies.dedup();
    let found = pairs.iter().find_map(|(mc, me)| {
        bodies
            .iter()
            .find_map(|body| Some((extremes(mc, body)?, extremes(me, body)?)))
    });
    let Some(((c1, cw), (e1, ew))) = found else {
        return not_run("working-set fits over programs at two working sets for both models, with the same body");
    };
    let rise = combine(&[
        (1.0, slope_estimate(cw)),
        (-1.0, slope_estimate(c1)),
        (-1.0, slope_estimate(ew)),
        (1.0, slope_estimate(e1)),
    ]);
    let ci = rise.ci(CONFIDENCE);
    let rise_c = cw.slope - c1.slope;
    let rise_e = ew.slope - e1.slope;
    let mut nums = BTreeMap::new();
    record(&mut nums, "chain_w1", c1);
    record(&mut nums, "chain_wmax", cw);
    record(&mut nums, "effective_w1", e1);
    record(&mut nums, "effective_wmax", ew);
    nums.insert("chain_rise".into(), rise_c);
    nums.insert("effective_rise".into(), rise_e);
    nums.insert("rise_difference".into(), rise.value);
    nums.insert("rise_difference_se".into(), rise.se);
    nums.insert("rise_difference_ci95_lo".into(), ci[0]);
    nums.insert("rise_difference_ci95_hi".into(), ci[1]);
    let verdict = if ci[0] > 0.0 {
        Verdict::Supported
    } else if ci[1] < 0.0 {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let why = match verdict {
        Verdict::Supported => "the chain's rises more",
        Verdict::Refuted => "the effective array's rises more",
        _ => "intervals too wide: the 95% CI of the difference holds 0",
    };
    let evidence = format!(
        "per-program slope rise from W={} to W={}: task-chain ({}) {:+.3} ns, cgroup-effective ({}) {:+.3} ns; \
         difference {:+.3} [{:.3}, {:.3}]: {}",
        ws(c1),
        ws(cw),
        c1.mechanism,
        rise_c,
        e1.mechanism,
        rise_e,
        rise.value,
        ci[0],
        ci[1],
        why
    );
    Outcome {
        verdict,
        evidence,
        numbers: nums,
        compared: vec![compared(r, c1), compared(r, cw), compared(r, e1), compared(r, ew)],
        margin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The t quantile the fits' intervals use (n = 100 points: 98 df).
    fn q() -> f64 {
        two_sided_critical(CONFIDENCE, 98.0)
    }

    /// A fit of `mechanism` over `x` on `backend` with slope `s`, standard error `se` (n = 100)
    /// and its 95% CI.
    #[allow(clippy::too_many_arguments)]
    fn fit_on(
        backend: &str,
        suite: &str,
        mechanism: &str,
        metric: &str,
        x: &str,
        s: f64,
        se: f64,
        fixed: serde_json::Value,
    ) -> serde_json::Value {
        serde_json::json!({"suite": suite, "backend": backend, "model": "task-chain", "mechanism": mechanism,
            "metric": metric, "x": x, "x_axis": x, "fixed": fixed, "n": 100, "slope": s,
            "slope_ci95": [s - q() * se, s + q() * se], "slope_se": se, "intercept": 1.0, "r2": 0.9,
            "y": "overhead", "points": []})
    }

    fn fit(
        suite: &str,
        mechanism: &str,
        metric: &str,
        x: &str,
        s: f64,
        se: f64,
        fixed: serde_json::Value,
    ) -> serde_json::Value {
        fit_on("model", suite, mechanism, metric, x, s, se, fixed)
    }

    /// Results with `fits`, suites `suites` (`[name, claim, margin or null]`) and one cell per
    /// backend of the fits (and the model's).
    fn results_with(fits: Vec<serde_json::Value>, suites: serde_json::Value) -> Results {
        let mut backends: BTreeSet<String> = fits
            .iter()
            .filter_map(|f| f["backend"].as_str().map(str::to_string))
            .collect();
        backends.insert("model".into());
        let cells: Vec<serde_json::Value> = backends
            .iter()
            .map(|b| {
                serde_json::json!({"id": format!("x/{b}"), "suite": "s", "backend": b, "model": "task-chain",
                    "mechanism": "chain-walk", "metric": HOOK, "unit": "ns",
                    "params": {"programs": 1, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 1,
                               "working_set": 1, "cpus": 1, "body": "null"},
                    "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
                    "p999": 1.0, "max": 1.0, "min": 1.0, "percentile_basis": "calls"})
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schema": crate::SCHEMA, "hookbench_version": "0",
            "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
            "suites": suites, "environment": {}, "cells": cells, "fits": fits, "skipped": [],
            "order_seed": 7, "drift": [], "decompositions": []}))
        .expect("hand-made results parse")
    }

    fn results(fits: Vec<serde_json::Value>) -> Results {
        results_with(fits, serde_json::json!([]))
    }

    fn suite(name: &str, claim: u32, margin: Option<(f64, f64)>) -> serde_json::Value {
        let mut s = serde_json::json!({"name": name, "claim": claim, "hypothesis": "h", "fit_x": ["programs"]});
        if let Some((abs, rel)) = margin {
            s["margin"] = serde_json::json!({"abs": abs, "rel": rel});
        }
        s
    }

    fn claim_on(r: &Results, backend: &str, id: u32) -> ClaimResult {
        evaluate(r)
            .into_iter()
            .find(|c| c.id == id && c.backend == backend)
            .expect("claim")
    }

    fn claim(r: &Results, id: u32) -> ClaimResult {
        claim_on(r, "model", id)
    }

    fn verdict(r: &Results, id: u32) -> Verdict {
        claim(r, id).verdict
    }

    fn w1() -> serde_json::Value {
        serde_json::json!({"working_set": 1, "cpus": 1, "body": "counter"})
    }

    fn body(b: &str) -> serde_json::Value {
        serde_json::json!({"working_set": 1, "cpus": 1, "body": b})
    }

    fn mechanisms(c: &ClaimResult) -> Vec<&str> {
        c.compared.iter().map(|f| f.mechanism.as_str()).collect()
    }

    #[test]
    fn a_slope_estimate_has_n_minus_2_df_and_its_se_comes_back_from_the_ci() {
        let r = results(vec![fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.05, w1())]);
        let e = slope_estimate(&r.fits[0]);
        assert_eq!((e.value, e.se, e.df), (1.0, 0.05, 98.0));
        let mut f = r.fits[0].clone();
        f.slope_se = f64::NAN;
        let back = slope_estimate(&f);
        assert!((back.se - 0.05).abs() < 1e-12, "{back:?}");
    }

    #[test]
    fn claim_1_supported_refuted_inconclusive_and_not_run() {
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, w1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.01, 0.01, w1()),
        ]);
        let c = claim(&r, 1);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        // No margin in the suite: the default, max(0.5, 10% of 1.0).
        assert_eq!(c.margin, Some(0.5));
        assert_eq!(mechanisms(&c), ["chain-walk", "effective-array"]);
        assert!(c
            .compared
            .iter()
            .all(|f| f.body == "counter" && f.x == "foreign" && f.suite == "foreign"));
        assert!(c.evidence.contains("margin +-0.500"), "{}", c.evidence);
        // The effective array grows as much as the chain: refuted (its CI is above the margin).
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, w1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.9, 0.02, w1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Refuted);
        // The chain does not grow at all: refuted.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", -0.5, 0.1, w1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.0, 0.01, w1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Refuted);
        // A chain slope whose interval spans zero widely: cannot tell.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 0.5, 1.5, w1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.0, 1.5, w1()),
        ]);
        let c = claim(&r, 1);
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert!(
            c.evidence.contains("intervals too wide for the margin"),
            "{}",
            c.evidence
        );
        // The chain grows but the array's interval is wider than the margin: still inconclusive,
        // although it holds 0 (the old "CI holds 0" test would have called it flat).
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, w1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.0, 0.4, w1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Inconclusive);
        let r = results(vec![fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.05, w1())]);
        let c = claim(&r, 1);
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(
            c.evidence.contains("foreign") && c.compared.is_empty(),
            "{}",
            c.evidence
        );
    }

    #[test]
    fn claim_1_uses_the_suites_margin_and_never_pairs_different_bodies() {
        // With the default margin 0.5 the array's 0.3 +- 0.05 is flat; with abs 0.1 it is not.
        let fits = || {
            vec![
                fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, w1()),
                fit("foreign", "effective-array", HOOK, "foreign", 0.3, 0.02, w1()),
            ]
        };
        assert_eq!(verdict(&results(fits()), 1), Verdict::Supported);
        let strict = results_with(fits(), serde_json::json!([suite("foreign", 1, Some((0.1, 0.05)))]));
        let c = claim(&strict, 1);
        assert_eq!(c.verdict, Verdict::Refuted, "{}", c.evidence);
        assert_eq!(c.margin, Some(0.1));
        // Different bodies: not compared.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, body("null")),
            fit(
                "foreign",
                "effective-array",
                HOOK,
                "foreign",
                0.0,
                0.01,
                body("counter"),
            ),
        ]);
        let c = claim(&r, 1);
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(c.evidence.contains("different programs"), "{}", c.evidence);
        // Several bodies: the null one is compared.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.02, body("counter")),
            fit("foreign", "chain-walk", HOOK, "foreign", 0.8, 0.02, body("null")),
            fit(
                "foreign",
                "effective-array",
                HOOK,
                "foreign",
                0.0,
                0.01,
                body("counter"),
            ),
            fit("foreign", "effective-array", HOOK, "foreign", 0.0, 0.01, body("null")),
        ]);
        let c = claim(&r, 1);
        assert_eq!(c.verdict, Verdict::Supported);
        assert!(c.compared.iter().all(|f| f.body == "null"), "{:?}", c.compared);
    }

    #[test]
    fn claim_1_on_the_kernel_without_a_chain_side_is_not_run_with_the_reason() {
        let r = results(vec![fit_on(
            "kernel",
            "foreign",
            "cgroup-bpf",
            HOOK,
            "foreign",
            0.01,
            0.1,
            body("null"),
        )]);
        let c = claim_on(&r, "kernel", 1);
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(
            c.evidence
                .contains("seccomp filters for other syscalls are not measured yet")
                && c.evidence.contains("measured: cgroup-bpf"),
            "{}",
            c.evidence
        );
    }

    #[test]
    fn claim_2_same_slope_is_supported_different_refuted_and_wide_inconclusive() {
        let suites = serde_json::json!([suite("programs", 2, Some((0.5, 0.10)))]);
        let same = results_with(
            vec![
                fit("programs", "chain-walk", HOOK, "programs", 5.0, 0.05, w1()),
                fit("programs", "effective-array", HOOK, "programs", 5.2, 0.05, w1()),
            ],
            suites.clone(),
        );
        let c = claim(&same, 2);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        // Margin: max(0.5, 10% of the mean slope 5.1).
        assert!((c.margin.expect("margin") - 0.51).abs() < 1e-12);
        assert_eq!(mechanisms(&c), ["chain-walk", "effective-array"]);
        assert!((c.numbers["difference"] + 0.2).abs() < 1e-12);
        // 8.7 against 7.8 (11% apart): more than the margin, and clearly so.
        let different = results_with(
            vec![
                fit("programs", "chain-walk", HOOK, "programs", 8.7, 0.02, w1()),
                fit("programs", "effective-array", HOOK, "programs", 7.8, 0.02, w1()),
            ],
            suites.clone(),
        );
        let c = claim(&different, 2);
        assert_eq!(c.verdict, Verdict::Refuted, "{}", c.evidence);
        let wide = results_with(
            vec![
                fit("programs", "chain-walk", HOOK, "programs", 5.0, 2.0, w1()),
                fit("programs", "effective-array", HOOK, "programs", 5.0, 2.0, w1()),
            ],
            suites.clone(),
        );
        let c = claim(&wide, 2);
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert!(
            c.evidence.contains("intervals too wide for the margin"),
            "{}",
            c.evidence
        );
        // They differ, but whether by more than the margin the intervals cannot say.
        let edge = results_with(
            vec![
                fit("programs", "chain-walk", HOOK, "programs", 5.5, 0.15, w1()),
                fit("programs", "effective-array", HOOK, "programs", 5.0, 0.15, w1()),
            ],
            suites,
        );
        assert_eq!(verdict(&edge, 2), Verdict::Inconclusive);
        // Fits outside the programs suite are not claim 2's.
        let elsewhere = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 5.0, 0.05, w1()),
            fit("working-set", "effective-array", HOOK, "programs", 5.0, 0.05, w1()),
        ]);
        assert_eq!(verdict(&elsewhere, 2), Verdict::NotRun);
    }

    #[test]
    fn claim_2_on_the_kernel_compares_the_same_body_on_the_same_trigger() {
        let k = |m: &str, s: f64, b: &str| fit_on("kernel", "programs", m, HOOK, "programs", s, 0.3, body(b));
        // seccomp on socket() against cgroup-bpf on getsockname(): never paired.
        let r = results(vec![k("seccomp-socket", 47.0, "null"), k("cgroup-bpf", 16.0, "null")]);
        let c = claim_on(&r, "kernel", 2);
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(c.evidence.contains("like-with-like"), "{}", c.evidence);
        // The getsockname pair, both null bodies: compared.
        let r = results(vec![
            k("seccomp-getsockname", 20.0, "null"),
            k("cgroup-bpf", 20.4, "null"),
            k("seccomp-socket", 47.0, "null"),
            k("cgroup-bpf-socket", 16.0, "null"),
        ]);
        let c = claim_on(&r, "kernel", 2);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert_eq!(mechanisms(&c), ["seccomp-getsockname", "cgroup-bpf"]);
        assert!(c.compared.iter().all(|f| f.body == "null" && f.backend == "kernel"));
        assert!(c.margin.is_some());
        // Only the socket() pair: the fallback.
        let r = results(vec![
            k("seccomp-socket", 20.0, "null"),
            k("cgroup-bpf-socket", 26.0, "null"),
        ]);
        let c = claim_on(&r, "kernel", 2);
        assert_eq!(mechanisms(&c), ["seccomp-socket", "cgroup-bpf-socket"]);
        assert_eq!(c.verdict, Verdict::Refuted, "{}", c.evidence);
        // The getsockname pair with different bodies and no other pair: not run, saying why.
        let r = results(vec![
            k("seccomp-getsockname", 20.0, "null"),
            k("cgroup-bpf", 30.0, "counter"),
        ]);
        let c = claim_on(&r, "kernel", 2);
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(
            c.evidence.contains("body null") && c.evidence.contains("body counter"),
            "{}",
            c.evidence
        );
        assert_eq!(mechanisms(&c), ["seccomp-getsockname", "cgroup-bpf"]);
    }

    #[test]
    fn claim_2_on_kmod_pairs_the_modules_models() {
        let k = |m: &str, s: f64| fit_on("kmod", "programs", m, HOOK, "programs", s, 0.05, w1());
        let r = results(vec![k("task-chain", 7.8), k("cgroup-effective", 7.9)]);
        let c = claim_on(&r, "kmod", 2);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert_eq!(mechanisms(&c), ["task-chain", "cgroup-effective"]);
    }

    #[test]
    fn claim_3_handle_loop_against_map_lookup() {
        let r = results(vec![
            fit("cgroup-handles", "handle-loop", HOOK, "handles", 2.0, 0.05, w1()),
            fit("cgroup-handles", "cgroup-id-map", HOOK, "handles", 0.001, 0.01, w1()),
        ]);
        let c = claim(&r, 3);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert_eq!(mechanisms(&c), ["handle-loop", "cgroup-id-map"]);
        assert!(c.margin.is_some());
        let r = results(vec![
            fit("cgroup-handles", "handle-loop", HOOK, "handles", 2.0, 0.05, w1()),
            fit("cgroup-handles", "cgroup-id-map", HOOK, "handles", 1.5, 0.05, w1()),
        ]);
        assert_eq!(verdict(&r, 3), Verdict::Refuted);
        let r = results(vec![
            fit("cgroup-handles", "handle-loop", HOOK, "handles", 2.0, 0.05, w1()),
            fit("cgroup-handles", "cgroup-id-map", HOOK, "handles", 0.1, 0.5, w1()),
        ]);
        assert_eq!(verdict(&r, 3), Verdict::Inconclusive);
        assert_eq!(verdict(&results(vec![]), 3), Verdict::NotRun);
    }

    #[test]
    fn claim_4_attach_grows_install_is_flat() {
        let a = "attach_latency_ns";
        let f = |m: &str, s: f64, se: f64| fit("attach", m, a, "descendants", s, se, w1());
        let c = claim(
            &results(vec![f("effective-array", 110.0, 1.0), f("chain-walk", 0.01, 0.01)]),
            4,
        );
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert!((c.margin.expect("margin") - 11.0).abs() < 1e-9);
        assert_eq!(mechanisms(&c), ["effective-array", "chain-walk"]);
        let c = claim(
            &results(vec![f("effective-array", 110.0, 1.0), f("chain-walk", 50.0, 1.0)]),
            4,
        );
        assert_eq!(c.verdict, Verdict::Refuted);
        let c = claim(
            &results(vec![f("effective-array", 110.0, 1.0), f("chain-walk", 0.0, 20.0)]),
            4,
        );
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert_eq!(
            claim(&results(vec![f("effective-array", 110.0, 1.0)]), 4).verdict,
            Verdict::NotRun
        );
    }

    #[test]
    fn claim_5_reads_bytes_per_cgroup_and_per_task() {
        let h = |hooks: u32| serde_json::json!({"hooks": hooks});
        let m = "metadata_bytes";
        let r = results(vec![
            fit("metadata", "effective-array", m, "cgroups", 96.0, 0.0, h(2)),
            fit("metadata", "effective-array", m, "cgroups", 384.0, 0.0, h(8)),
            fit("metadata", "chain-walk", m, "tasks", 8.0, 0.0, h(8)),
        ]);
        let c = claim(&r, 5);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert!((c.margin.expect("margin") - 38.4).abs() < 1e-9);
        assert_eq!(c.compared.len(), 3);
        // A task costing as much as a cgroup: not shared.
        let r = results(vec![
            fit("metadata", "effective-array", m, "cgroups", 96.0, 0.0, h(2)),
            fit("metadata", "effective-array", m, "cgroups", 384.0, 0.0, h(8)),
            fit("metadata", "chain-walk", m, "tasks", 300.0, 0.0, h(8)),
        ]);
        assert_eq!(verdict(&r, 5), Verdict::Refuted);
        // A noisy per-task figure (a kernel's Slab: deltas): cannot tell.
        let r = results(vec![
            fit("metadata", "effective-array", m, "cgroups", 96.0, 1.0, h(2)),
            fit("metadata", "effective-array", m, "cgroups", 384.0, 1.0, h(8)),
            fit("metadata", "chain-walk", m, "tasks", 8.0, 40.0, h(8)),
        ]);
        assert_eq!(verdict(&r, 5), Verdict::Inconclusive);
        assert_eq!(verdict(&results(vec![]), 5), Verdict::NotRun);
    }

    #[test]
    fn claim_6_compares_the_rise_of_the_slopes() {
        let ws = |w: u32| serde_json::json!({"working_set": w, "cpus": 1, "body": "counter"});
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.02, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 3.0, 0.02, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.02, ws(1)),
            fit("working-set", "effective-array", HOOK, "programs", 1.5, 0.02, ws(4096)),
        ]);
        let c = claim(&r, 6);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert!((c.numbers["chain_rise"] - 2.0).abs() < 1e-12);
        assert!((c.numbers["effective_rise"] - 0.5).abs() < 1e-12);
        assert!((c.numbers["rise_difference_se"] - 0.04).abs() < 1e-12);
        assert_eq!(c.compared.len(), 4);
        assert_eq!(c.margin, None);
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.02, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 1.5, 0.02, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.02, ws(1)),
            fit("working-set", "effective-array", HOOK, "programs", 3.0, 0.02, ws(4096)),
        ]);
        assert_eq!(verdict(&r, 6), Verdict::Refuted);
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.5, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 1.5, 0.5, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.5, ws(1)),
            fit("working-set", "effective-array", HOOK, "programs", 1.2, 0.5, ws(4096)),
        ]);
        assert_eq!(verdict(&r, 6), Verdict::Inconclusive);
        // The effective array's fits ran another body: not compared.
        let other = |w: u32| serde_json::json!({"working_set": w, "cpus": 1, "body": "null"});
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.02, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 3.0, 0.02, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.02, other(1)),
            fit(
                "working-set",
                "effective-array",
                HOOK,
                "programs",
                1.5,
                0.02,
                other(4096),
            ),
        ]);
        assert_eq!(verdict(&r, 6), Verdict::NotRun);
    }

    #[test]
    fn claim_7_argument_loading_grows_and_number_only_is_flat() {
        let s =
            |m: &str, slope: f64, se: f64| fit_on("kernel", "seccomp", m, HOOK, "programs", slope, se, body("null"));
        let suites = serde_json::json!([suite("seccomp", 7, Some((1.0, 0.10)))]);
        let r = results_with(
            vec![s("seccomp-arg-load", 20.8, 0.3), s("seccomp-nr-only", 0.05, 0.1)],
            suites.clone(),
        );
        let c = claim_on(&r, "kernel", 7);
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert!((c.margin.expect("margin") - 2.08).abs() < 1e-9);
        assert_eq!(mechanisms(&c), ["seccomp-arg-load", "seccomp-nr-only"]);
        assert!(c.evidence.contains("margin +-2.080"), "{}", c.evidence);
        let r = results_with(
            vec![s("seccomp-arg-load", 20.8, 0.3), s("seccomp-nr-only", 18.0, 0.3)],
            suites.clone(),
        );
        assert_eq!(claim_on(&r, "kernel", 7).verdict, Verdict::Refuted);
        let r = results_with(
            vec![s("seccomp-arg-load", 20.8, 0.3), s("seccomp-nr-only", 1.4, 0.9)],
            suites,
        );
        let c = claim_on(&r, "kernel", 7);
        assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.evidence);
        let r = results(vec![s("seccomp-arg-load", 20.8, 0.3)]);
        assert_eq!(claim_on(&r, "kernel", 7).verdict, Verdict::NotRun);
    }

    #[test]
    fn every_claim_is_evaluated_for_every_backend() {
        let r = results(vec![]);
        let all = evaluate(&r);
        assert_eq!(all.len(), 7);
        assert!(all
            .iter()
            .all(|c| c.verdict == Verdict::NotRun && !c.hypothesis.is_empty() && c.margin.is_none()));
    }
}
