//! The claims engine on hand-made fits: each claim supported, refuted, inconclusive and not run.

use super::pairs::HOOK;
use super::*;
use crate::schema::Results;
use hookbench_measure::estimate::two_sided_critical;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The t quantile the fits' intervals use (n = 100 points: 98 df).
fn q() -> f64 {
    two_sided_critical(CONFIDENCE, 98.0)
}

/// A fit of `mechanism` over `x` on `backend` with slope `s` and standard error `se`.
///
/// It has n = 100 and the 95% CI that follows.
#[allow(clippy::too_many_arguments)]
fn fit_on(backend: &str, suite: &str, mechanism: &str, metric: &str, x: &str, s: f64, se: f64, fixed: Value) -> Value {
    json!({"suite": suite, "backend": backend, "model": "task-chain", "mechanism": mechanism,
        "metric": metric, "x": x, "x_axis": x, "fixed": fixed, "n": 100, "slope": s,
        "slope_ci95": [s - q() * se, s + q() * se], "slope_se": se, "intercept": 1.0, "r2": 0.9,
        "y": "overhead", "points": []})
}

fn fit(suite: &str, mechanism: &str, metric: &str, x: &str, s: f64, se: f64, fixed: Value) -> Value {
    fit_on("model", suite, mechanism, metric, x, s, se, fixed)
}

/// Hook fits on the model of the two `mechanisms` of `suite` over `x`, `a` and `b` for each.
///
/// `a` and `b` are `(slope, standard error)`; the fits are at W = 1 with the counter body.
fn pair_of(suite: &str, x: &str, mechanisms: (&str, &str), a: (f64, f64), b: (f64, f64)) -> Vec<Value> {
    vec![
        fit(suite, mechanisms.0, HOOK, x, a.0, a.1, w1()),
        fit(suite, mechanisms.1, HOOK, x, b.0, b.1, w1()),
    ]
}

/// [`pair_of`] the model's chain walk and effective array.
fn walk_and_array(suite: &str, x: &str, walk: (f64, f64), array: (f64, f64)) -> Vec<Value> {
    pair_of(suite, x, ("chain-walk", "effective-array"), walk, array)
}

/// Claim 5's metadata fits: bytes per cgroup at 2 and 8 hooks, and bytes per forked task.
///
/// The cgroup slopes are 96 and 384 with standard error `cgroup_se`; `task` is the task fit's
/// `(slope, standard error)`.
fn metadata(cgroup_se: f64, task: (f64, f64)) -> Vec<Value> {
    let h = |hooks: u32| json!({"hooks": hooks});
    let m = "metadata_bytes";
    vec![
        fit("metadata", "effective-array", m, "cgroups", 96.0, cgroup_se, h(2)),
        fit("metadata", "effective-array", m, "cgroups", 384.0, cgroup_se, h(8)),
        fit("metadata", "chain-walk", m, "tasks", task.0, task.1, h(8)),
    ]
}

/// Claim 6's working-set fits over programs: slopes at W = 1 and W = 4096 of walk and array.
///
/// The chain walk's ran the counter body, the effective array's `array_body`; standard error
/// `se` each.
fn working_set(walk: [f64; 2], array: [f64; 2], se: f64, array_body: &str) -> Vec<Value> {
    let at = |w: u32, body: &str| json!({"working_set": w, "cpus": 1, "body": body});
    let mut fits = Vec::new();
    for (mechanism, slopes, body) in [("chain-walk", walk, "counter"), ("effective-array", array, array_body)] {
        for (w, s) in [1, 4096].into_iter().zip(slopes) {
            fits.push(fit("working-set", mechanism, HOOK, "programs", s, se, at(w, body)));
        }
    }
    fits
}

/// Results with `fits`, `suites` and one cell per backend of the fits (and the model's).
///
/// Each suite is `[name, claim, margin or null]`.
fn results_with(fits: Vec<Value>, suites: Value) -> Results {
    let mut backends: BTreeSet<String> = fits
        .iter()
        .filter_map(|f| f["backend"].as_str().map(str::to_string))
        .collect();
    backends.insert("model".into());
    let cells: Vec<Value> = backends
        .iter()
        .map(|b| {
            json!({"id": format!("x/{b}"), "suite": "s", "backend": b, "model": "task-chain",
                "mechanism": "chain-walk", "metric": HOOK, "unit": "ns",
                "params": {"programs": 1, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 1,
                           "working_set": 1, "cpus": 1, "body": "null"},
                "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
                "p999": 1.0, "max": 1.0, "min": 1.0, "percentile_basis": "calls"})
        })
        .collect();
    serde_json::from_value(json!({"schema": crate::SCHEMA, "hookbench_version": "0",
        "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
        "suites": suites, "environment": {}, "cells": cells, "fits": fits, "skipped": [],
        "order_seed": 7, "drift": [], "decompositions": []}))
    .expect("hand-made results parse")
}

fn results(fits: Vec<Value>) -> Results {
    results_with(fits, json!([]))
}

fn suite(name: &str, claim: u32, margin: Option<(f64, f64)>) -> Value {
    let mut s = json!({"name": name, "claim": claim, "hypothesis": "h", "fit_x": ["programs"]});
    if let Some((abs, rel)) = margin {
        s["margin"] = json!({"abs": abs, "rel": rel});
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

fn w1() -> Value {
    json!({"working_set": 1, "cpus": 1, "body": "counter"})
}

fn body(b: &str) -> Value {
    json!({"working_set": 1, "cpus": 1, "body": b})
}

/// Asserts that `c` is inconclusive because its intervals are too wide for the margin.
fn assert_too_wide(c: &ClaimResult) {
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert_says(c, &["intervals too wide for the margin"]);
}

/// Asserts that the claim's evidence says every one of `parts`, naming the one it does not.
#[track_caller]
fn assert_says(c: &ClaimResult, parts: &[&str]) {
    for part in parts {
        assert!(c.evidence.contains(part), "{part:?} missing from: {}", c.evidence);
    }
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
    let foreign = |walk, array| results(walk_and_array("foreign", "foreign", walk, array));
    let c = claim(&foreign((1.0, 0.02), (0.01, 0.01)), 1);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    // No margin in the suite: the default, max(0.5, 10% of 1.0).
    assert_eq!(c.margin, Some(0.5));
    assert_eq!(mechanisms(&c), ["chain-walk", "effective-array"]);
    assert!(c
        .compared
        .iter()
        .all(|f| f.body == "counter" && f.x == "foreign" && f.suite == "foreign"));
    assert_says(&c, &["margin +-0.500"]);
    // The effective array grows as much as the chain: refuted (its CI is above the margin).
    assert_eq!(verdict(&foreign((1.0, 0.02), (0.9, 0.02)), 1), Verdict::Refuted);
    // The chain does not grow at all: refuted.
    assert_eq!(verdict(&foreign((-0.5, 0.1), (0.0, 0.01)), 1), Verdict::Refuted);
    // A chain slope whose interval spans zero widely: cannot tell.
    assert_too_wide(&claim(&foreign((0.5, 1.5), (0.0, 1.5)), 1));
    // The chain grows but the array's interval is wider than the margin: still inconclusive,
    // although it holds 0 (the old "CI holds 0" test would have called it flat).
    assert_eq!(verdict(&foreign((1.0, 0.02), (0.0, 0.4)), 1), Verdict::Inconclusive);
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
    let fits = || walk_and_array("foreign", "foreign", (1.0, 0.02), (0.3, 0.02));
    assert_eq!(verdict(&results(fits()), 1), Verdict::Supported);
    let strict = results_with(fits(), json!([suite("foreign", 1, Some((0.1, 0.05)))]));
    let c = claim(&strict, 1);
    assert_eq!(c.verdict, Verdict::Refuted, "{}", c.evidence);
    assert_eq!(c.margin, Some(0.1));
    let foreign =
        |mechanism: &str, s: f64, se: f64, b: &str| fit("foreign", mechanism, HOOK, "foreign", s, se, body(b));
    // Different bodies: not compared.
    let r = results(vec![
        foreign("chain-walk", 1.0, 0.02, "null"),
        foreign("effective-array", 0.0, 0.01, "counter"),
    ]);
    let c = claim(&r, 1);
    assert_eq!(c.verdict, Verdict::NotRun);
    assert_says(&c, &["different programs"]);
    // Several bodies: the null one is compared.
    let r = results(vec![
        foreign("chain-walk", 1.0, 0.02, "counter"),
        foreign("chain-walk", 0.8, 0.02, "null"),
        foreign("effective-array", 0.0, 0.01, "counter"),
        foreign("effective-array", 0.0, 0.01, "null"),
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
    assert_says(
        &c,
        &["measured: cgroup-bpf", "seccomp-foreign-nr-first with cgroup-bpf"],
    );
}

#[test]
fn claim_1_on_the_kernel_pairs_number_first_filters_and_reports_the_other_shapes() {
    let k = |mechanism: &str, s: f64| fit_on("kernel", "foreign", mechanism, HOOK, "foreign", s, 0.1, body("null"));
    let r = results(vec![
        k("cgroup-bpf", 0.01),
        k("seccomp-foreign-nr-first", 20.0),
        k("seccomp-foreign-arg-first", 21.0),
        k("seccomp-foreign-cached", 0.02),
    ]);
    let c = claim_on(&r, "kernel", 1);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert_eq!(
        mechanisms(&c),
        [
            "seccomp-foreign-nr-first",
            "cgroup-bpf",
            "seccomp-foreign-arg-first",
            "seccomp-foreign-cached"
        ]
    );
    assert_says(&c, &["seccomp-foreign-arg-first: +21.000", "action cache"]);
    assert_eq!(c.numbers.get("seccomp-foreign-cached_slope"), Some(&0.02));
    // Without the number-first shape there is no pair: the other shapes never decide the verdict.
    let r = results(vec![k("cgroup-bpf", 0.01), k("seccomp-foreign-arg-first", 21.0)]);
    assert_eq!(claim_on(&r, "kernel", 1).verdict, Verdict::NotRun);
}

#[test]
fn claim_1_on_the_kernel_says_whether_foreign_landlock_layers_are_flat() {
    let k =
        |mechanism: &str, s: f64, se: f64| fit_on("kernel", "foreign", mechanism, HOOK, "foreign", s, se, body("null"));
    let pair = || vec![k("cgroup-bpf", 0.01, 0.1), k("seccomp-foreign-nr-first", 20.0, 0.1)];
    // Flat: the 90% CI of 0.1 +- 1.66 * 0.05 lies inside the suite's 0.5 ns.
    let r = results([pair(), vec![k("landlock-foreign-net", 0.1, 0.05)]].concat());
    let c = claim_on(&r, "kernel", 1);
    assert_eq!(c.verdict, Verdict::Supported, "the pair decides: {}", c.evidence);
    assert!(
        c.evidence.contains("landlock-foreign-net: +0.100") && c.evidence.contains("flat within +-0.5 ns"),
        "{}",
        c.evidence
    );
    assert!(mechanisms(&c).contains(&"landlock-foreign-net"));
    // Growing by 2 ns per layer, and said even without the seccomp pair.
    let r = results(vec![k("cgroup-bpf", 0.01, 0.1), k("landlock-foreign-net", 2.0, 0.1)]);
    let c = claim_on(&r, "kernel", 1);
    assert_eq!(c.verdict, Verdict::NotRun);
    assert!(
        c.evidence.contains("+2.000") && c.evidence.contains(", grows ("),
        "{}",
        c.evidence
    );
    // Too wide to tell.
    let r = results([pair(), vec![k("landlock-foreign-net", 0.3, 1.0)]].concat());
    let c = claim_on(&r, "kernel", 1);
    assert!(
        c.evidence.contains("neither flat within +-0.5 ns nor growing"),
        "{}",
        c.evidence
    );
}

#[test]
fn claim_2_same_slope_is_supported_different_refuted_and_wide_inconclusive() {
    let suites = json!([suite("programs", 2, Some((0.5, 0.10)))]);
    let programs = |walk, array| results_with(walk_and_array("programs", "programs", walk, array), suites.clone());
    let c = claim(&programs((5.0, 0.05), (5.2, 0.05)), 2);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    // Margin: max(0.5, 10% of the mean slope 5.1).
    assert!((c.margin.expect("margin") - 0.51).abs() < 1e-12);
    assert_eq!(mechanisms(&c), ["chain-walk", "effective-array"]);
    assert!((c.numbers["difference"] + 0.2).abs() < 1e-12);
    // 8.7 against 7.8 (11% apart): more than the margin, and clearly so.
    let c = claim(&programs((8.7, 0.02), (7.8, 0.02)), 2);
    assert_eq!(c.verdict, Verdict::Refuted, "{}", c.evidence);
    assert_too_wide(&claim(&programs((5.0, 2.0), (5.0, 2.0)), 2));
    // They differ, but whether by more than the margin the intervals cannot say.
    assert_eq!(verdict(&programs((5.5, 0.15), (5.0, 0.15)), 2), Verdict::Inconclusive);
    // Fits outside the programs suite are not claim 2's.
    let elsewhere = results(walk_and_array("working-set", "programs", (5.0, 0.05), (5.0, 0.05)));
    assert_eq!(verdict(&elsewhere, 2), Verdict::NotRun);
}

#[test]
fn claim_2_on_the_kernel_compares_the_same_body_on_the_same_trigger() {
    let k = |m: &str, s: f64, b: &str| fit_on("kernel", "programs", m, HOOK, "programs", s, 0.3, body(b));
    // seccomp on socket() against cgroup-bpf on getsockname(): never paired.
    let r = results(vec![k("seccomp-socket", 47.0, "null"), k("cgroup-bpf", 16.0, "null")]);
    let c = claim_on(&r, "kernel", 2);
    assert_eq!(c.verdict, Verdict::NotRun);
    assert_says(&c, &["like-with-like"]);
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
    assert_says(&c, &["body null", "body counter"]);
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
    let handles = |lp, map| {
        results(pair_of(
            "cgroup-handles",
            "handles",
            ("handle-loop", "cgroup-id-map"),
            lp,
            map,
        ))
    };
    let c = claim(&handles((2.0, 0.05), (0.001, 0.01)), 3);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert_eq!(mechanisms(&c), ["handle-loop", "cgroup-id-map"]);
    assert!(c.margin.is_some());
    assert_eq!(verdict(&handles((2.0, 0.05), (1.5, 0.05)), 3), Verdict::Refuted);
    assert_eq!(verdict(&handles((2.0, 0.05), (0.1, 0.5)), 3), Verdict::Inconclusive);
    assert_eq!(verdict(&results(vec![]), 3), Verdict::NotRun);
}

#[test]
fn claim_3_on_the_kernel_pairs_the_raw_tracepoint_forms_and_says_the_outside_figures() {
    let k = |m: &str, s: f64, se: f64| fit_on("kernel", "cgroup-handles", m, HOOK, "handles", s, se, w1());
    let pair = vec![
        k("rawtp-handle-loop", 9.0, 0.05),
        k("rawtp-cgroup-id-map", 0.0001, 0.0005),
    ];
    let c = claim_on(&results(pair.clone()), "kernel", 3);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert_eq!(mechanisms(&c), ["rawtp-handle-loop", "rawtp-cgroup-id-map"]);
    assert!(!c.evidence.contains("no handle"), "{}", c.evidence);
    let mut with_outside = pair;
    with_outside.push(k("rawtp-handle-loop-outside", 8.5, 0.05));
    with_outside.push(k("rawtp-cgroup-id-map-outside", 0.0002, 0.0005));
    let c = claim_on(&results(with_outside), "kernel", 3);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert_eq!(mechanisms(&c), ["rawtp-handle-loop", "rawtp-cgroup-id-map"]);
    assert_says(
        &c,
        &[
            "from a task in no handle",
            "rawtp-handle-loop-outside +8.500",
            "rawtp-cgroup-id-map-outside",
        ],
    );
    assert_eq!(c.numbers.get("handle-loop-outside_slope"), Some(&8.5));
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
    let c = claim(&results(metadata(0.0, (8.0, 0.0))), 5);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert!((c.margin.expect("margin") - 38.4).abs() < 1e-9);
    assert_eq!(c.compared.len(), 3);
    // A task costing as much as a cgroup: not shared.
    assert_eq!(verdict(&results(metadata(0.0, (300.0, 0.0))), 5), Verdict::Refuted);
    // A noisy per-task figure (a kernel's Slab: deltas): cannot tell.
    assert_eq!(verdict(&results(metadata(1.0, (8.0, 40.0))), 5), Verdict::Inconclusive);
    assert_eq!(verdict(&results(vec![]), 5), Verdict::NotRun);
}

/// Claim 5 on the kernel gives bytes per cgroup and hook beside the model's exact figure.
///
/// cgroup-bpf per cgroup at 2 and 5 attach types, seccomp per forked task and per task that
/// installs its own chain, with and without the model's fit at 5 hooks.
#[test]
fn claim_5_on_the_kernel_quotes_the_models_exact_figure() {
    let h = |hooks: u32| json!({"hooks": hooks});
    let m = "metadata_bytes";
    let kernel =
        |mech: &str, x: &str, s: f64, se: f64, fixed: Value| fit_on("kernel", "metadata", mech, m, x, s, se, fixed);
    let mut fits = vec![
        kernel("cgroup-bpf", "cgroups", 128.0, 0.5, h(2)),
        kernel("cgroup-bpf", "cgroups", 320.0, 0.5, h(5)),
        kernel("seccomp-shared", "tasks", 0.5, 1.0, h(2)),
        kernel("seccomp-own", "tasks", 20_000.0, 10.0, h(2)),
    ];
    let c = claim_on(&results(fits.clone()), "kernel", 5);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert_says(&c, &["per cgroup and hook 64.0 ["]);
    assert!(
        !c.evidence.contains("the model's exact figure"),
        "no model fit: {}",
        c.evidence
    );
    assert_says(&c, &["a task installing its own chain adds 20000"]);
    assert_eq!(c.compared.len(), 4);
    fits.push(fit("metadata", "effective-array", m, "cgroups", 240.0, 0.0, h(5)));
    fits.push(fit("metadata", "effective-array", m, "cgroups", 96.0, 0.0, h(2)));
    let c = claim_on(&results(fits), "kernel", 5);
    assert_says(&c, &["(the model's exact figure: 48.0 at 5 hooks, its slots"]);
    assert_eq!(c.numbers["model_per_cgroup_per_hook"], 48.0);
    assert_eq!(c.compared.len(), 5);
    assert_eq!(c.compared[3].backend, "model");
}

#[test]
fn claim_6_compares_the_rise_of_the_slopes() {
    let c = claim(&results(working_set([1.0, 3.0], [1.0, 1.5], 0.02, "counter")), 6);
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert!((c.numbers["chain_rise"] - 2.0).abs() < 1e-12);
    assert!((c.numbers["effective_rise"] - 0.5).abs() < 1e-12);
    assert!((c.numbers["rise_difference_se"] - 0.04).abs() < 1e-12);
    assert_eq!(c.compared.len(), 4);
    assert_eq!(c.margin, None);
    let r = results(working_set([1.0, 1.5], [1.0, 3.0], 0.02, "counter"));
    assert_eq!(verdict(&r, 6), Verdict::Refuted);
    let r = results(working_set([1.0, 1.5], [1.0, 1.2], 0.5, "counter"));
    assert_eq!(verdict(&r, 6), Verdict::Inconclusive);
    // The effective array's fits ran another body: not compared.
    let r = results(working_set([1.0, 3.0], [1.0, 1.5], 0.02, "null"));
    assert_eq!(verdict(&r, 6), Verdict::NotRun);
}

/// On the kernel, the rings are paired and the verdict says where W's bytes stand against the LLC.
#[test]
fn claim_6_on_the_kernel_pairs_the_rings_and_says_whether_the_llc_was_passed() {
    let at = |w: u32| json!({"working_set": w, "cpus": 1, "body": "null"});
    let mut fits = Vec::new();
    for (mechanism, slopes) in [
        ("seccomp-working-set", [18.0, 650.0]),
        ("cgroup-bpf-working-set", [16.0, 380.0]),
    ] {
        for (w, slope) in [1, 4096].into_iter().zip(slopes) {
            fits.push(fit_on(
                "kernel",
                "working-set",
                mechanism,
                HOOK,
                "programs",
                slope,
                20.0,
                at(w),
            ));
        }
    }
    let mut r = results(fits);
    assert_eq!(claim_on(&r, "kernel", 6).verdict, Verdict::Supported);
    assert!(
        !claim_on(&r, "kernel", 6).evidence.contains("LLC"),
        "no cell says its bytes"
    );
    // The cells of the W = 4096 fits at 16 programs, with the bytes a rotation reads.
    for (mechanism, bytes) in [
        ("seccomp-working-set", 16u64 << 20),
        ("cgroup-bpf-working-set", 9 << 20),
    ] {
        r.cells.push(
            serde_json::from_value(json!({"id": mechanism, "suite": "working-set", "backend": "kernel",
                "model": "task-chain", "mechanism": mechanism, "metric": HOOK, "unit": "ns",
                "params": {"programs": 16, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 4096,
                           "working_set": 4096, "cpus": 1, "body": "null"},
                "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
                "p999": 1.0, "max": 1.0,
                "working_set": {"bytes": bytes, "per_slot_bytes": bytes / 4096, "method": "estimate",
                                "l2_bytes": 2u64 << 20, "llc_bytes": 480u64 << 20}}))
            .expect("cell"),
        );
    }
    let c = claim_on(&r, "kernel", 6);
    assert_eq!(c.verdict, Verdict::Supported);
    assert_says(
        &c,
        &[
            "(seccomp-working-set)",
            "16.0 MiB through the chains and 9.0 MiB through the arrays",
        ],
    );
    assert!(
        c.evidence.ends_with("both past the L2, within the LLC"),
        "{}",
        c.evidence
    );
    assert_eq!(c.numbers["llc_bytes"], f64::from(480u32 << 20));
    assert_eq!(c.numbers["chain_wmax_bytes"], f64::from(16u32 << 20));
}

#[test]
fn claim_7_argument_loading_grows_and_number_only_is_flat() {
    let suites = json!([suite("seccomp", 7, Some((1.0, 0.10)))]);
    let filters = |arg_load: (f64, f64), nr_only: Option<(f64, f64)>| {
        let s = |m: &str, (slope, se): (f64, f64)| {
            fit_on("kernel", "seccomp", m, HOOK, "programs", slope, se, body("null"))
        };
        let mut fits = vec![s("seccomp-arg-load", arg_load)];
        fits.extend(nr_only.map(|n| s("seccomp-nr-only", n)));
        claim_on(&results_with(fits, suites.clone()), "kernel", 7)
    };
    let c = filters((20.8, 0.3), Some((0.05, 0.1)));
    assert_eq!(c.verdict, Verdict::Supported, "{}", c.evidence);
    assert!((c.margin.expect("margin") - 2.08).abs() < 1e-9);
    assert_eq!(mechanisms(&c), ["seccomp-arg-load", "seccomp-nr-only"]);
    assert_says(&c, &["margin +-2.080"]);
    assert_eq!(filters((20.8, 0.3), Some((18.0, 0.3))).verdict, Verdict::Refuted);
    let c = filters((20.8, 0.3), Some((1.4, 0.9)));
    assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.evidence);
    assert_eq!(filters((20.8, 0.3), None).verdict, Verdict::NotRun);
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
