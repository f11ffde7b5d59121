//! The claims engine: each claim of DESIGN.md as data (the fits it reads and the test it applies), evaluated per backend into a verdict with the numbers behind it.
//!
//! Tests on fits (slopes with 95% confidence intervals from `results.json`):
//! - *grows*: the slope's CI lies above zero;
//! - *flat against a reference*: `|slope|` is at most 10% of the reference slope, or the CI holds 0
//!   and its half-width is under 10% of the reference;
//! - *too wide*: the CI's half-width exceeds `|slope|` and 10% of the reference: inconclusive.
//!
//! A claim whose fits are missing on a backend is `not-run` there, with what was missing.

use crate::schema::{Fit, Results};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How much of the reference slope still counts as "flat" (and as "the same" in claim 2).
pub const RELATIVE_TOLERANCE: f64 = 0.10;

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

fn half_width(f: &Fit) -> f64 {
    (f.slope_ci95[1] - f.slope_ci95[0]) / 2.0
}

fn grows(f: &Fit) -> bool {
    f.slope_ci95[0] > 0.0
}

fn flat(f: &Fit, reference: f64) -> bool {
    let tol = RELATIVE_TOLERANCE * reference.abs();
    f.slope.abs() <= tol || (f.slope_ci95[0] <= 0.0 && f.slope_ci95[1] >= 0.0 && half_width(f) < tol)
}

/// The first fit on `backend` of one of `mechanisms` (in preference order) for `metric` over
/// `x`, among fits whose fixed axes satisfy `keep`.
fn find<'a>(
    results: &'a Results,
    backend: &str,
    mechanisms: &[&str],
    metric: &str,
    x: &str,
    keep: impl Fn(&Fit) -> bool,
) -> Option<&'a Fit> {
    mechanisms.iter().find_map(|m| {
        results
            .fits
            .iter()
            .find(|f| f.backend == backend && f.mechanism == *m && f.metric == metric && f.x == x && keep(f))
    })
}

fn fixed(f: &Fit, axis: &str) -> Option<f64> {
    f.fixed.get(axis).and_then(|v| v.as_f64())
}

fn numbers(pairs: &[(&str, &Fit)]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, f) in pairs {
        out.insert(format!("{name}_slope"), f.slope);
        out.insert(format!("{name}_ci95_lo"), f.slope_ci95[0]);
        out.insert(format!("{name}_ci95_hi"), f.slope_ci95[1]);
    }
    out
}

/// "grows, flat" claims (1, 3, 4, 7): `rising` must grow, `level` must stay flat against it.
fn grows_vs_flat(rising: &Fit, level: &Fit, names: (&str, &str)) -> (Verdict, String, BTreeMap<String, f64>) {
    let nums = numbers(&[(names.0, rising), (names.1, level)]);
    let text = format!(
        "{} {:.3} [{:.3}, {:.3}] vs {} {:.3} [{:.3}, {:.3}] per {}",
        names.0,
        rising.slope,
        rising.slope_ci95[0],
        rising.slope_ci95[1],
        names.1,
        level.slope,
        level.slope_ci95[0],
        level.slope_ci95[1],
        rising.x
    );
    // Refuted: the level side grows too (beyond the tolerance), or the rising side clearly does
    // not grow (its whole interval at or below zero).
    let level_grows = grows(level) && level.slope > RELATIVE_TOLERANCE * rising.slope;
    let verdict = if grows(rising) && flat(level, rising.slope) {
        Verdict::Supported
    } else if (grows(rising) && level_grows) || rising.slope_ci95[1] <= 0.0 {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    (verdict, text, nums)
}

/// Evaluates every claim on every backend that has cells in `results`.
pub fn evaluate(results: &Results) -> Vec<ClaimResult> {
    let mut backends: Vec<&str> = results.cells.iter().map(|c| c.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut out = Vec::new();
    for backend in backends {
        for (id, hypothesis) in HYPOTHESES {
            let (verdict, evidence, numbers) = evaluate_one(results, backend, id);
            out.push(ClaimResult {
                id,
                hypothesis: hypothesis.to_string(),
                backend: backend.to_string(),
                verdict,
                evidence,
                numbers,
                compared: Vec::new(),
                margin: None,
            });
        }
    }
    out
}

fn not_run(what: &str) -> (Verdict, String, BTreeMap<String, f64>) {
    (
        Verdict::NotRun,
        format!("not measured on this backend: {what}"),
        BTreeMap::new(),
    )
}

/// Mechanisms realising a task chain, in preference order: the model's walk, seccomp on the
/// same trigger as cgroup-bpf (kernel), hookbench.ko's `task-chain` (kmod: mechanism = model).
const CHAIN: [&str; 3] = ["chain-walk", "seccomp-socket", "task-chain"];
/// Mechanisms realising per-cgroup effective arrays: the model's, cgroup-bpf (kernel),
/// hookbench.ko's `cgroup-effective` (kmod).
const EFFECTIVE: [&str; 3] = ["effective-array", "cgroup-bpf", "cgroup-effective"];
const HOOK: &str = "hook_latency_ns";

fn evaluate_one(r: &Results, b: &str, id: u32) -> (Verdict, String, BTreeMap<String, f64>) {
    let w1 = |f: &Fit| fixed(f, "working_set").is_none_or(|w| w <= 1.0) && fixed(f, "cpus").is_none_or(|c| c <= 1.0);
    match id {
        1 => match (
            find(r, b, &CHAIN, HOOK, "foreign", w1),
            find(r, b, &EFFECTIVE, HOOK, "foreign", w1),
        ) {
            (Some(c), Some(e)) => grows_vs_flat(c, e, ("task-chain", "cgroup-effective")),
            _ => not_run("fits over foreign for both a task chain and an effective array"),
        },
        2 => {
            let in_suite = |f: &Fit| f.suite == "programs" && w1(f);
            match (
                find(r, b, &CHAIN, HOOK, "programs", in_suite),
                find(r, b, &EFFECTIVE, HOOK, "programs", in_suite),
            ) {
                (Some(c), Some(e)) => {
                    let mut nums = numbers(&[("task-chain", c), ("cgroup-effective", e)]);
                    let diff = c.slope - e.slope;
                    let mean = (c.slope.abs() + e.slope.abs()) / 2.0;
                    let overlap = c.slope_ci95[0] <= e.slope_ci95[1] && e.slope_ci95[0] <= c.slope_ci95[1];
                    nums.insert("difference".into(), diff);
                    let text = format!(
                        "per program: task-chain ({}) {:.3} [{:.3}, {:.3}] vs cgroup-effective ({}) {:.3} [{:.3}, {:.3}] ns",
                        c.mechanism, c.slope, c.slope_ci95[0], c.slope_ci95[1], e.mechanism, e.slope, e.slope_ci95[0], e.slope_ci95[1]
                    );
                    let verdict = if half_width(c).max(half_width(e)) > 0.5 * mean {
                        Verdict::Inconclusive
                    } else if overlap || diff.abs() <= RELATIVE_TOLERANCE * mean {
                        Verdict::Supported
                    } else {
                        Verdict::Refuted
                    };
                    (verdict, text, nums)
                }
                _ => not_run("fits over programs in the programs suite for both models"),
            }
        }
        3 => match (
            find(r, b, &["handle-loop"], HOOK, "handles", w1),
            find(r, b, &["cgroup-id-map"], HOOK, "handles", w1),
        ) {
            (Some(h), Some(m)) => grows_vs_flat(h, m, ("handle-loop", "cgroup-id-map")),
            _ => not_run("fits over handles for the handle loop and the cgroup-id map"),
        },
        4 => {
            let a = "attach_latency_ns";
            match (
                find(r, b, &EFFECTIVE, a, "descendants", |_| true),
                find(
                    r,
                    b,
                    &["chain-walk", "seccomp-arg-load", "landlock", "task-chain"],
                    a,
                    "descendants",
                    |_| true,
                ),
            ) {
                (Some(e), Some(t)) => grows_vs_flat(e, t, ("cgroup attach", "task install")),
                _ => not_run("attach fits over descendants for a cgroup and a task mechanism"),
            }
        }
        5 => {
            let m = "metadata_bytes";
            let per_cgroup: Vec<&Fit> = r
                .fits
                .iter()
                .filter(|f| f.backend == b && f.mechanism == "effective-array" && f.metric == m && f.x == "cgroups")
                .collect();
            let task = find(r, b, &["chain-walk"], m, "tasks", |_| true);
            let (Some(t), false) = (task, per_cgroup.is_empty()) else {
                return not_run("metadata fits over cgroups (effective arrays) and over tasks (task chains)");
            };
            let by_hooks = |f: &&Fit| fixed(f, "hooks").unwrap_or(0.0);
            let few = per_cgroup
                .iter()
                .min_by(|a, b| by_hooks(a).total_cmp(&by_hooks(b)))
                .copied();
            let many = per_cgroup
                .iter()
                .max_by(|a, b| by_hooks(a).total_cmp(&by_hooks(b)))
                .copied();
            let (Some(few), Some(many)) = (few, many) else {
                return not_run("metadata fits over cgroups");
            };
            let mut nums = numbers(&[
                ("per_cgroup_few_hooks", few),
                ("per_cgroup_many_hooks", many),
                ("per_task", t),
            ]);
            nums.insert("few_hooks".into(), by_hooks(&few));
            nums.insert("many_hooks".into(), by_hooks(&many));
            let text = format!(
                "bytes per cgroup {:.0} at {} hooks, {:.0} at {} hooks; bytes per forked task {:.1}",
                few.slope,
                by_hooks(&few),
                many.slope,
                by_hooks(&many),
                t.slope
            );
            let grows_with_hooks = by_hooks(&many) > by_hooks(&few) && many.slope_ci95[0] > few.slope_ci95[1];
            // Shared chains: a forked task adds a pointer, a small fraction of what a cgroup adds.
            let verdict = if grows(few) && grows_with_hooks && t.slope < RELATIVE_TOLERANCE * many.slope {
                Verdict::Supported
            } else if grows(few) || grows(many) {
                Verdict::Refuted
            } else {
                Verdict::Inconclusive
            };
            (verdict, text, nums)
        }
        6 => {
            let ws = |mechs: &[&str]| -> Option<(&Fit, &Fit)> {
                let fits: Vec<&Fit> = r
                    .fits
                    .iter()
                    .filter(|f| f.backend == b && mechs.contains(&f.mechanism.as_str()) && f.metric == HOOK)
                    .filter(|f| f.suite == "working-set" && f.x == "programs")
                    .collect();
                let w = |f: &&Fit| fixed(f, "working_set").unwrap_or(1.0);
                let lo = fits.iter().min_by(|a, b| w(a).total_cmp(&w(b)))?;
                let hi = fits.iter().max_by(|a, b| w(a).total_cmp(&w(b)))?;
                (w(hi) > w(lo)).then_some((*lo, *hi))
            };
            let (Some((c1, cw)), Some((e1, ew))) = (ws(&CHAIN), ws(&EFFECTIVE)) else {
                return not_run("working-set fits over programs at two working sets for both models");
            };
            let rise_c = cw.slope - c1.slope;
            let rise_e = ew.slope - e1.slope;
            // Standard errors from the 95% half-widths (about 1.96 standard errors each).
            let se = |f: &Fit| half_width(f) / 1.96;
            let se_diff = (se(c1).powi(2) + se(cw).powi(2) + se(e1).powi(2) + se(ew).powi(2)).sqrt();
            let mut nums = numbers(&[
                ("chain_w1", c1),
                ("chain_wmax", cw),
                ("effective_w1", e1),
                ("effective_wmax", ew),
            ]);
            nums.insert("chain_rise".into(), rise_c);
            nums.insert("effective_rise".into(), rise_e);
            nums.insert("rise_difference_se".into(), se_diff);
            let text = format!(
                "per-program slope rise from W={} to W={}: task-chain {:+.3} ns, cgroup-effective {:+.3} ns (difference {:+.3} +- {:.3})",
                fixed(c1, "working_set").unwrap_or(1.0),
                fixed(cw, "working_set").unwrap_or(0.0),
                rise_c,
                rise_e,
                rise_c - rise_e,
                1.96 * se_diff
            );
            let verdict = if rise_c - rise_e > 1.96 * se_diff {
                Verdict::Supported
            } else if rise_e - rise_c > 1.96 * se_diff {
                Verdict::Refuted
            } else {
                Verdict::Inconclusive
            };
            (verdict, text, nums)
        }
        7 => match (
            find(r, b, &["seccomp-arg-load"], HOOK, "programs", |_| true),
            find(r, b, &["seccomp-nr-only"], HOOK, "programs", |_| true),
        ) {
            (Some(a), Some(n)) => grows_vs_flat(a, n, ("argument-loading filters", "number-only filters")),
            _ => not_run("seccomp fits over programs for both filter bodies (kernel backend)"),
        },
        _ => not_run("unknown claim"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fit of `mechanism` over `x` with slope `s` and 95% CI `s +- hw`.
    fn fit(
        suite: &str,
        mechanism: &str,
        metric: &str,
        x: &str,
        s: f64,
        hw: f64,
        fixed: serde_json::Value,
    ) -> serde_json::Value {
        serde_json::json!({"suite": suite, "backend": "model", "model": "task-chain", "mechanism": mechanism,
            "metric": metric, "x": x, "x_axis": x, "fixed": fixed, "n": 100, "slope": s,
            "slope_ci95": [s - hw, s + hw], "intercept": 1.0, "r2": 0.9, "points": []})
    }

    fn results(fits: Vec<serde_json::Value>) -> Results {
        let cell = serde_json::json!({"id": "x", "suite": "s", "backend": "model", "model": "task-chain",
            "mechanism": "chain-walk", "metric": HOOK, "unit": "ns",
            "params": {"programs": 1, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 1,
                       "working_set": 1, "cpus": 1, "body": "null"},
            "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
            "p999": 1.0, "max": 1.0, "baseline_subtracted": false});
        serde_json::from_value(serde_json::json!({"schema": crate::SCHEMA, "hookbench_version": "0",
            "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [], "environment": {}, "cells": [cell], "fits": fits, "skipped": []}))
        .expect("hand-made results parse")
    }

    fn verdict(r: &Results, id: u32) -> Verdict {
        evaluate(r)
            .into_iter()
            .find(|c| c.id == id && c.backend == "model")
            .map(|c| c.verdict)
            .expect("claim")
    }

    const W1: fn() -> serde_json::Value = || serde_json::json!({"working_set": 1, "cpus": 1});

    #[test]
    fn claim_1_supported_refuted_inconclusive_and_not_run() {
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.05, W1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.01, 0.02, W1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Supported);
        // The effective array grows as much as the chain: refuted.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.05, W1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.9, 0.05, W1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Refuted);
        // A chain slope whose interval spans zero widely: cannot tell.
        let r = results(vec![
            fit("foreign", "chain-walk", HOOK, "foreign", 0.5, 3.0, W1()),
            fit("foreign", "effective-array", HOOK, "foreign", 0.0, 3.0, W1()),
        ]);
        assert_eq!(verdict(&r, 1), Verdict::Inconclusive);
        let r = results(vec![fit("foreign", "chain-walk", HOOK, "foreign", 1.0, 0.05, W1())]);
        let c = evaluate(&r).into_iter().find(|c| c.id == 1).expect("claim 1");
        assert_eq!(c.verdict, Verdict::NotRun);
        assert!(c.evidence.contains("foreign"), "{}", c.evidence);
    }

    #[test]
    fn claim_2_same_slope_is_supported_and_different_refuted() {
        let same = results(vec![
            fit("programs", "chain-walk", HOOK, "programs", 5.0, 0.2, W1()),
            fit("programs", "effective-array", HOOK, "programs", 5.2, 0.2, W1()),
        ]);
        assert_eq!(verdict(&same, 2), Verdict::Supported);
        let different = results(vec![
            fit("programs", "chain-walk", HOOK, "programs", 8.0, 0.2, W1()),
            fit("programs", "effective-array", HOOK, "programs", 5.0, 0.2, W1()),
        ]);
        assert_eq!(verdict(&different, 2), Verdict::Refuted);
        let wide = results(vec![
            fit("programs", "chain-walk", HOOK, "programs", 5.0, 4.0, W1()),
            fit("programs", "effective-array", HOOK, "programs", 5.0, 4.0, W1()),
        ]);
        assert_eq!(verdict(&wide, 2), Verdict::Inconclusive);
    }

    #[test]
    fn claim_6_compares_the_rise_of_the_slopes() {
        let ws = |w: u32| serde_json::json!({"working_set": w, "cpus": 1});
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.05, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 3.0, 0.05, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.05, ws(1)),
            fit("working-set", "effective-array", HOOK, "programs", 1.5, 0.05, ws(4096)),
        ]);
        let c = evaluate(&r).into_iter().find(|c| c.id == 6).expect("claim 6");
        assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
        assert!((c.numbers["chain_rise"] - 2.0).abs() < 1e-12);
        assert!((c.numbers["effective_rise"] - 0.5).abs() < 1e-12);
        let r = results(vec![
            fit("working-set", "chain-walk", HOOK, "programs", 1.0, 0.05, ws(1)),
            fit("working-set", "chain-walk", HOOK, "programs", 1.5, 0.05, ws(4096)),
            fit("working-set", "effective-array", HOOK, "programs", 1.0, 0.05, ws(1)),
            fit("working-set", "effective-array", HOOK, "programs", 3.0, 0.05, ws(4096)),
        ]);
        assert_eq!(verdict(&r, 6), Verdict::Refuted);
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
        assert_eq!(verdict(&r, 5), Verdict::Supported);
        // A task costing as much as a cgroup: not shared.
        let r = results(vec![
            fit("metadata", "effective-array", m, "cgroups", 96.0, 0.0, h(2)),
            fit("metadata", "effective-array", m, "cgroups", 384.0, 0.0, h(8)),
            fit("metadata", "chain-walk", m, "tasks", 300.0, 0.0, h(8)),
        ]);
        assert_eq!(verdict(&r, 5), Verdict::Refuted);
    }

    #[test]
    fn every_claim_is_evaluated_for_every_backend() {
        let r = results(vec![]);
        let all = evaluate(&r);
        assert_eq!(all.len(), 7);
        assert!(all
            .iter()
            .all(|c| c.verdict == Verdict::NotRun && !c.hypothesis.is_empty()));
    }
}
