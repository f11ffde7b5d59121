//! Renders the first plain-text `evidence.txt` from saved results: a machine header, one line per cell, one per fit.

use crate::schema::{Cell, Results};
use std::collections::BTreeSet;

/// Widest line `evidence.txt` may hold (mailing-list replies wrap at 72 columns).
pub const MAX_COLUMNS: usize = 72;

/// Renders `evidence.txt` (ASCII only, so that it survives any mail client) from `results`: a header (kernel, CPU, clock, backends, whether the
/// machine is virtualized, hookbench version and command line), then per suite one line per cell (`mechanism axes: mean +- sd unit p50 .. p99 ..`)
/// and one line per fit (slope with its 95% CI, intercept, r²), then the skipped mechanisms.
/// Lines longer than [`MAX_COLUMNS`] are wrapped with a four-space continuation indent.
/// Deterministic: the same results give the same text.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        for l in wrap(&s) {
            out.push_str(&l);
            out.push('\n');
        }
    };
    line(format!(
        "hookbench {} evidence ({})",
        results.hookbench_version, results.schema
    ));
    line(format!("kernel: {}", results.env_str("kernel_release")));
    line(format!(
        "cpu: {} x {}",
        results.env_str("nr_cpus"),
        results.env_str("cpu_model")
    ));
    line(format!(
        "clock: {} (overhead {} ns), privileged: {}",
        results.env_str("clock"),
        fmt_num(results.environment.get("clock_overhead_ns").and_then(|v| v.as_f64())),
        results.env_str("privileged")
    ));
    let backends: std::collections::BTreeSet<&str> = results.cells.iter().map(|c| c.backend.as_str()).collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    line(format!(
        "backend: {}{}",
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join(", ")
        },
        if backends == ["model"] {
            " (userspace model of the dispatch models, not kernel timings)"
        } else {
            ""
        }
    ));
    let virt = results
        .environment
        .get("virtualization")
        .and_then(|v| v.get("available"))
        .and_then(|v| v.as_bool())
        .map(|v| {
            if v {
                "yes (timings include hypervisor effects)"
            } else {
                "no"
            }
        })
        .unwrap_or("unknown");
    line(format!("virtualized: {virt}"));
    line(format!("profile: {}, complete: {}", results.profile, results.complete));
    line(format!("command: {}", results.command_line.join(" ")));
    for suite in &results.suites {
        line(String::new());
        let claim = suite.claim.map(|c| format!("claim {c}: ")).unwrap_or_default();
        line(format!("== {} ({}{})", suite.name, claim, suite.hypothesis));
        let cells: Vec<&Cell> = results.cells.iter().filter(|c| c.suite == suite.name).collect();
        let varying = varying_axes(&cells);
        for c in &cells {
            let axes: Vec<String> = varying
                .iter()
                .map(|a| match c.params.axis(a) {
                    Some(v) => format!("{a}={v}"),
                    None => format!("{a}={}", c.params.body),
                })
                .collect();
            line(format!(
                "{} {} {}: {} +- {} {} p50 {} p99 {}{}",
                c.mechanism,
                c.metric,
                axes.join(","),
                fmt_num(Some(c.mean)),
                fmt_num(Some(c.stddev)),
                c.unit,
                fmt_num(Some(c.p50)),
                fmt_num(Some(c.p99)),
                if c.baseline_subtracted { " (-baseline)" } else { "" }
            ));
        }
        for f in results.fits.iter().filter(|f| f.suite == suite.name) {
            let fixed: Vec<String> = f
                .fixed
                .iter()
                .filter(|(k, _)| varying.contains(k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let at = if fixed.is_empty() {
                String::new()
            } else {
                format!(" at {}", fixed.join(","))
            };
            line(format!(
                "fit {} {} vs {}{}: slope {} [{}, {}] per {}, intercept {}, r2 {:.3}, n {}",
                f.mechanism,
                f.metric,
                f.x,
                at,
                fmt_num(Some(f.slope)),
                fmt_num(Some(f.slope_ci95[0])),
                fmt_num(Some(f.slope_ci95[1])),
                f.x,
                fmt_num(Some(f.intercept)),
                f.r2,
                f.n
            ));
            if let Some(d) = decompose(results, f) {
                line(format!(
                    "  {}: native {} ns + entry {} ns + {} ns per {}; parts add up within {:.1}% (limit 10%: {})",
                    f.mechanism,
                    fmt_num(Some(d.native_ns)),
                    fmt_num(Some(f.intercept)),
                    fmt_num(Some(f.slope)),
                    f.x,
                    d.max_relative_error * 100.0,
                    if d.max_relative_error <= 0.10 { "ok" } else { "FAILED" }
                ));
            }
        }
    }
    if !results.claims.is_empty() {
        line(String::new());
        line("== claims (verdicts from the fits above)".to_string());
        for c in &results.claims {
            line(format!(
                "claim {} [{}]: {}: {}",
                c.id,
                c.backend,
                c.verdict.as_str().to_uppercase(),
                c.evidence
            ));
        }
    }
    if !results.skipped.is_empty() {
        line(String::new());
        line("skipped:".to_string());
        for s in &results.skipped {
            let suite = s.suite.as_deref().map(|x| format!(" [{x}]")).unwrap_or_default();
            line(format!("{} {}{}: {}", s.backend, s.mechanism, suite, s.reason));
        }
    }
    out
}

/// A syscall's cost split the way the kernel's seccomp_benchmark.c splits it: native (the empty
/// chain), entry (the fit's intercept) and per program (its slope), with the largest relative
/// gap between `native + entry + n * slope` and a measured total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decomposition {
    /// Mean cost with no programs (the cells' baseline), ns.
    pub native_ns: f64,
    /// Largest `|predicted - measured| / measured` over the fit's cells, totals including native.
    pub max_relative_error: f64,
}

/// The decomposition of a baseline-subtracted `hook_latency_ns` fit over `programs` of the kernel
/// backend, from the fit and its cells; `None` for other fits or without baselines.
pub fn decompose(results: &Results, fit: &crate::schema::Fit) -> Option<Decomposition> {
    if fit.backend != "kernel" || fit.metric != "hook_latency_ns" || fit.x_axis != "programs" {
        return None;
    }
    let cells: Vec<&Cell> = results
        .cells
        .iter()
        .filter(|c| {
            c.suite == fit.suite && c.backend == fit.backend && c.mechanism == fit.mechanism && c.metric == fit.metric
        })
        .collect();
    let native_ns = cells.iter().find_map(|c| c.baseline.map(|b| b.mean))?;
    let max_relative_error = cells
        .iter()
        .filter_map(|c| {
            let n = f64::from(c.params.programs);
            let measured = native_ns + c.mean;
            let predicted = native_ns + fit.intercept + fit.slope * n;
            (measured > 0.0).then(|| ((predicted - measured) / measured).abs())
        })
        .fold(0.0_f64, f64::max);
    Some(Decomposition {
        native_ns,
        max_relative_error,
    })
}

/// The numeric axes (and `body`) whose value differs between `cells`, in `NUMERIC_AXES` order.
fn varying_axes(cells: &[&Cell]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for axis in hookbench_model::NUMERIC_AXES {
        let values: BTreeSet<Option<u32>> = cells.iter().map(|c| c.params.axis(axis)).collect();
        if values.len() > 1 {
            out.insert(axis);
        }
    }
    let bodies: BTreeSet<_> = cells.iter().map(|c| c.params.body).collect();
    if bodies.len() > 1 {
        out.insert("body");
    }
    out
}

/// Formats a figure with three significant digits where it is small, whole numbers where large.
pub fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_string(),
        Some(x) if !x.is_finite() => "n/a".to_string(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) if x != 0.0 && x.abs() < 0.001 => format!("{x:.2e}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// Splits `s` into lines of at most [`MAX_COLUMNS`] characters at spaces; continuation lines are
/// indented by four spaces. A single word longer than the limit is cut.
pub fn wrap(s: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut has_word = false;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if has_word && cur.chars().count() + 1 + word.chars().count() > MAX_COLUMNS {
            lines.push(std::mem::replace(&mut cur, "    ".to_string()));
            has_word = false;
        }
        if has_word {
            cur.push(' ');
        }
        cur.push_str(word);
        has_word = true;
        while cur.chars().count() > MAX_COLUMNS {
            let head: String = cur.chars().take(MAX_COLUMNS).collect();
            let tail: String = cur.chars().skip(MAX_COLUMNS).collect();
            lines.push(head);
            cur = format!("    {tail}");
        }
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_line_within_72_columns_and_loses_no_word() {
        let text = "fit effective-array hook_latency_ns vs programs at working_set=4096: slope 1.234 [1.200, 1.268] per programs, intercept 3.21, r2 0.998, n 600";
        let lines = wrap(text);
        assert!(lines.len() >= 2, "{lines:?}");
        for l in &lines {
            assert!(l.chars().count() <= MAX_COLUMNS, "too long: {l}");
        }
        let rejoined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let original: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(rejoined, original);
        assert!(lines[1].starts_with("    ") && !lines[1].starts_with("     "));
    }

    #[test]
    fn wrap_short_line_is_unchanged_and_long_word_is_cut() {
        assert_eq!(wrap("a b c"), vec!["a b c".to_string()]);
        let long = "x".repeat(200);
        let lines = wrap(&long);
        assert!(lines.iter().all(|l| l.chars().count() <= MAX_COLUMNS));
        assert_eq!(lines.iter().map(|l| l.trim().len()).sum::<usize>(), 200);
    }

    fn kernel_results(means: &[(u32, f64)], native: f64, slope: f64, intercept: f64) -> Results {
        let cells: Vec<serde_json::Value> = means
            .iter()
            .map(|&(n, mean)| {
                serde_json::json!({"id": format!("s/kernel/seccomp-arg-load/{n}"), "suite": "s", "backend": "kernel",
                    "model": "task-chain", "mechanism": "seccomp-arg-load", "metric": "hook_latency_ns", "unit": "ns",
                    "params": {"programs": n, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                               "working_set": 1, "cpus": 1, "body": "null"},
                    "samples": 10, "mean": mean, "stddev": 1.0, "cv": 0.1, "p50": mean, "p90": mean, "p99": mean,
                    "p999": mean, "max": mean, "baseline_subtracted": true,
                    "baseline": {"mean": native, "p50": native, "samples": 10}})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": crate::SCHEMA, "hookbench_version": "0", "command_line": [], "started_at": "",
            "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [{"name": "s", "claim": 7, "hypothesis": "h", "fit_x": ["programs"]}],
            "environment": {}, "cells": cells,
            "fits": [{"suite": "s", "backend": "kernel", "model": "task-chain", "mechanism": "seccomp-arg-load",
                      "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs", "fixed": {}, "n": 30,
                      "slope": slope, "slope_ci95": [slope - 1.0, slope + 1.0], "intercept": intercept, "r2": 0.9,
                      "points": []}],
            "skipped": []}))
        .expect("hand-made results parse")
    }

    #[test]
    fn seccomp_parts_add_up_when_the_line_fits_and_not_otherwise() {
        // native 80, entry 5, 16 per filter: exact cells.
        let exact = kernel_results(&[(1, 21.0), (8, 133.0), (32, 517.0)], 80.0, 16.0, 5.0);
        let d = decompose(&exact, &exact.fits[0]).expect("a kernel programs fit decomposes");
        assert_eq!(d.native_ns, 80.0);
        assert!(d.max_relative_error < 1e-12, "{d:?}");
        assert!(render(&exact).contains("parts add up within 0.0% (limit 10%: ok)"));
        // One cell 50% above the line: total 80+5+16*8 = 213 predicted against 80+133*1.5.
        let off = kernel_results(&[(1, 21.0), (8, 199.5), (32, 517.0)], 80.0, 16.0, 5.0);
        let d = decompose(&off, &off.fits[0]).expect("decomposes");
        assert!((d.max_relative_error - (279.5 - 213.0) / 279.5).abs() < 1e-12, "{d:?}");
        assert!(render(&off).contains("FAILED"));
    }

    #[test]
    fn fmt_num_scales() {
        assert_eq!(fmt_num(Some(12345.6)), "12346");
        assert_eq!(fmt_num(Some(123.45)), "123.5");
        assert_eq!(fmt_num(Some(1.2345)), "1.23");
        assert_eq!(fmt_num(Some(0.01234)), "0.012");
        assert_eq!(fmt_num(Some(0.0000151)), "1.51e-5");
        assert_eq!(fmt_num(Some(0.0)), "0.000");
        assert_eq!(fmt_num(Some(f64::NAN)), "n/a");
        assert_eq!(fmt_num(None), "n/a");
    }
}
