//! `hookbench compare BASE NEW`: the significant changes between the cells of two saved runs.
//!
//! It reports them in the manner of kernel regression reports. Cells are matched by their id
//! (suite, backend, mechanism, metric and every parameter). For each pair the figure compared is
//! the cell's overhead over its interleaved baseline (`overhead.mean_ns`) when both cells have
//! one, else the raw mean: a machine that got slower as a whole moves the baseline too, and the
//! overhead does not move with it. The change is given relative to BASE's raw mean (what a hook
//! really costs), so a change in an overhead near zero is not blown up. Significance: Welch's
//! t-test on the per-repetition figures (each repetition's mean, less the cell's baseline mean
//! when overheads are compared; two-sided, p < 0.05). A cell flagged invalid (`validity.flags`:
//! mitigation state, CPU migrations, programs that did not run, a costly clock) in either run is
//! reported as noisy, never as a regression or an improvement. Every metric hookbench records is
//! smaller-is-better, so a regression is a significant increase larger than the threshold.
//! Results of schema 1, whose percentiles were shifted by the baseline, are refused as bad input.

use crate::error::UsageError;
use crate::measure::stats::welch_t_test;
use hookbench_reports::{Cell, Results};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Significance level of the t-test.
pub const ALPHA: f64 = 0.05;
/// Smallest default threshold, percent.
pub const MIN_DEFAULT_THRESHOLD_PCT: f64 = 5.0;

/// What a row compares: the overhead over the baseline, or the raw figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Both cells have an overhead over their interleaved baseline: `overhead.mean_ns`.
    Overhead,
    /// At least one has none (attach, set-up, bytes): the raw mean.
    Raw,
}

impl Basis {
    /// The name printed in a row: "overhead" or "raw".
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Overhead => "overhead",
            Basis::Raw => "raw",
        }
    }
}

/// One matched cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The cell id.
    pub id: String,
    /// Unit of `base` and `new`.
    pub unit: String,
    /// What `base` and `new` are: overheads over the baseline, or raw means.
    pub basis: Basis,
    /// Base figure (overhead mean or raw mean, see `basis`), in `unit`.
    pub base: f64,
    /// Base relative standard deviation of the raw repetition means, percent (NaN: 1 repetition).
    pub base_stddev_pct: f64,
    /// New figure, in `unit`.
    pub new: f64,
    /// New relative standard deviation of the raw repetition means, percent.
    pub new_stddev_pct: f64,
    /// `(new - base) / BASE's raw mean`, percent.
    pub change_pct: f64,
    /// Two-sided p-value of Welch's t-test on the repetition figures, if both have two or more.
    pub p_value: Option<f64>,
    /// Flagged invalid in BASE or NEW: not judged (neither a regression nor an improvement).
    pub noisy: bool,
    /// Why, one entry per flag: `BASE cpu-migration`, `NEW mitigation-differs`, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noisy_why: Vec<String>,
    /// Significant (p < [`ALPHA`]) and beyond the threshold, upwards, and not noisy.
    pub regression: bool,
    /// Significant and beyond the threshold, downwards, and not noisy.
    pub improvement: bool,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The threshold used, percent.
    pub threshold_pct: f64,
    /// Whether the threshold was chosen from the noise (no `--threshold`).
    pub threshold_from_noise: bool,
    /// The matched cells.
    pub rows: Vec<Row>,
    /// Cells of BASE with no match in NEW, and of NEW with none in BASE.
    pub unmatched: usize,
}

impl Comparison {
    /// Cells that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.regression)
    }

    /// Cells flagged invalid in either run, reported as noisy.
    pub fn noisy(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.noisy)
    }
}

/// Reads a run: a run directory (its `results.json`) or a `results.json` path.
///
/// Errors: [`UsageError`] for an unreadable file, another schema, or a schema-1 file (its
/// percentiles were shifted by the baseline: the message says to re-run it).
pub fn read_run(path: &Path) -> Result<Results, UsageError> {
    let file: PathBuf = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    Results::read(&file).map_err(|e| UsageError::new(e.to_string()))
}

/// A cell's figure of `basis` and the same figure per repetition.
///
/// Overhead: `overhead.mean_ns`, and each repetition's raw mean less the baseline's raw mean
/// (their spread is the between-repetition noise of the overhead). Raw: the mean and the
/// repetition means as saved.
fn figures(c: &Cell, basis: Basis) -> (f64, Vec<f64>) {
    match (basis, c.overhead, c.baseline) {
        (Basis::Overhead, Some(o), Some(b)) => (o.mean_ns, c.repetitions.iter().map(|r| r - b.mean).collect()),
        (Basis::Overhead, Some(o), None) => (
            o.mean_ns,
            c.repetitions.iter().map(|r| r - (c.mean - o.mean_ns)).collect(),
        ),
        _ => (c.mean, c.repetitions.clone()),
    }
}

/// The validity flags of a cell, each named with the run it comes from (`BASE`, `NEW`).
fn flags_of(run: &str, c: &Cell) -> Vec<String> {
    c.validity.flags.iter().map(|f| format!("{run} {}", f.code)).collect()
}

fn rel_stddev_pct(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    100.0 * var.sqrt() / mean.abs()
}

/// Compares `base` and `new` cell by cell, judging changes against `threshold_pct`.
///
/// `threshold_pct` `None` chooses it from the noise: three times the median relative standard
/// deviation of BASE's repetition means, at least [`MIN_DEFAULT_THRESHOLD_PCT`].
///
/// Errors: [`UsageError`] when the runs have no cell in common.
pub fn compare(base: &Results, new: &Results, threshold_pct: Option<f64>) -> Result<Comparison, UsageError> {
    let mut pairs = Vec::new();
    for b in &base.cells {
        if let Some(n) = new.cells.iter().find(|n| n.id == b.id) {
            pairs.push((b, n));
        }
    }
    if pairs.is_empty() {
        return Err(UsageError::new(
            "the two runs have no cell in common (different suites, backends or parameters): nothing to compare",
        ));
    }
    let unmatched = base.cells.len() + new.cells.len() - 2 * pairs.len();
    let (threshold_pct, from_noise) = match threshold_pct {
        Some(t) => (t, false),
        None => {
            let mut noise: Vec<f64> = pairs
                .iter()
                .map(|(b, _)| rel_stddev_pct(&b.repetitions))
                .filter(|v| v.is_finite())
                .collect();
            noise.sort_by(|a, b| a.total_cmp(b));
            let median = noise.get(noise.len() / 2).copied().unwrap_or(0.0);
            ((3.0 * median).max(MIN_DEFAULT_THRESHOLD_PCT), true)
        }
    };
    let rows = pairs
        .into_iter()
        .map(|(b, n)| {
            let basis = if b.overhead.is_some() && n.overhead.is_some() {
                Basis::Overhead
            } else {
                Basis::Raw
            };
            let (base_fig, base_reps) = figures(b, basis);
            let (new_fig, new_reps) = figures(n, basis);
            let change_pct = 100.0 * (new_fig - base_fig) / b.mean.abs();
            let p_value = welch_t_test(&new_reps, &base_reps).ok().map(|t| t.p_two_sided);
            let significant = p_value.is_some_and(|p| p < ALPHA);
            let noisy_why: Vec<String> = flags_of("BASE", b).into_iter().chain(flags_of("NEW", n)).collect();
            let noisy = !noisy_why.is_empty();
            Row {
                id: b.id.clone(),
                unit: b.unit.clone(),
                basis,
                base: base_fig,
                base_stddev_pct: rel_stddev_pct(&b.repetitions),
                new: new_fig,
                new_stddev_pct: rel_stddev_pct(&n.repetitions),
                change_pct,
                p_value,
                noisy,
                noisy_why,
                regression: !noisy && significant && change_pct > threshold_pct,
                improvement: !noisy && significant && change_pct < -threshold_pct,
            }
        })
        .collect();
    Ok(Comparison {
        threshold_pct,
        threshold_from_noise: from_noise,
        rows,
        unmatched,
    })
}

/// A row's mark, shared by both renderings: `**`, `++`, `~`, `*` or nothing.
///
/// `**` regression, `++` improvement, `~` noisy (flagged invalid, not judged), `*` a
/// significant change within the threshold, nothing otherwise.
fn mark(r: &Row) -> &'static str {
    if r.regression {
        "**"
    } else if r.improvement {
        "++"
    } else if r.noisy {
        "~"
    } else if r.p_value.is_some_and(|p| p < ALPHA) {
        "*"
    } else {
        ""
    }
}

/// What a comparison compares and how it judges, for the head of both renderings.
const METHOD: &str = "overhead over the baseline where both cells have one, else raw mean; change relative to \
                      BASE's raw mean; significance: Welch's t-test on repetition figures";

/// The figures of a row both renderings show, formatted once so the two cannot disagree.
///
/// In order: base, its relative stddev (`stddev_sign` before it, empty for one repetition),
/// change, mark, new, its relative stddev.
fn figure_columns(r: &Row, stddev_sign: &str) -> [String; 6] {
    let stddev = |v: f64| {
        if v.is_finite() {
            format!("{stddev_sign}{v:.0}%")
        } else {
            String::new()
        }
    };
    [
        format!("{:.4}", r.base),
        stddev(r.base_stddev_pct),
        format!("{:+.1}%", r.change_pct),
        mark(r).to_string(),
        format!("{:.4}", r.new),
        stddev(r.new_stddev_pct),
    ]
}

/// The threshold used and where it came from, e.g. `threshold 5.0% (3x the median noise ...)`.
fn threshold_note(c: &Comparison) -> String {
    format!(
        "threshold {:.1}%{}",
        c.threshold_pct,
        if c.threshold_from_noise {
            " (3x the median noise of BASE, at least 5%)"
        } else {
            ""
        }
    )
}

/// The verdict counts of the summary line: regressions, improvements, noisy cells.
fn verdict_counts(c: &Comparison) -> String {
    format!(
        "{} regression(s), {} improvement(s), {} noisy (not judged)",
        c.regressions().count(),
        c.rows.iter().filter(|r| r.improvement).count(),
        c.noisy().count()
    )
}

/// The comparison as text: one row per matched cell, then a summary line.
///
/// A row reads `base ±%stddev  %change mark  new ±%stddev  cell (unit, basis)`, where the mark
/// is `**` for a regression, `++` for an improvement, `~` for a noisy cell (flagged invalid in
/// either run, with the flags after the row), `*` for a significant change within the threshold.
pub fn render_text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>7} {:>9}    {:>12} {:>7}  cell ({METHOD}, p < {ALPHA}; ~ noisy: flagged invalid, not judged)",
        "base", "%stddev", "%change", "new", "%stddev"
    );
    for r in &c.rows {
        let noisy = if r.noisy {
            format!(" noisy: {}", r.noisy_why.join(", "))
        } else {
            String::new()
        };
        let [base, base_sd, change, mark, new, new_sd] = figure_columns(r, "±");
        let _ = writeln!(
            s,
            "{base:>12} {base_sd:>7} {change:>9} {mark:<3}{new:>12} {new_sd:>7}  {} ({}, {}){noisy}",
            r.id,
            r.unit,
            r.basis.as_str()
        );
    }
    let _ = writeln!(
        s,
        "{} cells compared, {} unmatched; {}; {}",
        c.rows.len(),
        c.unmatched,
        threshold_note(c),
        verdict_counts(c)
    );
    s
}

/// The comparison as one self-contained HTML page (inline styles, no script, no external URL).
///
/// The same columns as [`render_text`], regressions shaded red, improvements green, noisy cells
/// orange with their flags, significant changes within the threshold marked `*`, then the summary.
pub fn render_html(c: &Comparison, base: &str, new: &str) -> String {
    use hookbench_reports::html::{esc, GENERATOR_META};
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>hookbench compare</title>\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px}}\
         td.n{{text-align:right;font-family:monospace}}.regression{{background:#f7d4d4}}\
         .improvement{{background:#d9f2d9}}.noisy{{background:#ffe0b3}}</style></head><body>\n<h1>hookbench compare</h1>\n\
         <p>base: {}<br>new: {}</p>\n<p>Compared: {}, p &lt; {ALPHA}; {}. \
         A cell flagged invalid in either run is noisy and not judged.</p>\n<table><tr><th>base</th><th>%stddev</th>\
         <th>%change</th><th></th><th>new</th><th>%stddev</th><th>p</th><th>cell</th><th>unit</th><th>basis</th>\
         <th>validity</th></tr>\n",
        esc(base),
        esc(new),
        esc(METHOD),
        threshold_note(c)
    );
    for r in &c.rows {
        let class = if r.regression {
            "regression"
        } else if r.improvement {
            "improvement"
        } else if r.noisy {
            "noisy"
        } else {
            ""
        };
        let [base, base_sd, change, mark, new, new_sd] = figure_columns(r, "");
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td class=\"n\">{base}</td><td class=\"n\">{base_sd}</td><td class=\"n\">{change}</td>\
             <td>{mark}</td><td class=\"n\">{new}</td><td class=\"n\">{new_sd}</td><td class=\"n\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            r.p_value.map(|p| format!("{p:.3}")).unwrap_or_default(),
            esc(&r.id),
            esc(&r.unit),
            r.basis.as_str(),
            esc(&r.noisy_why.join(", "))
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p>{} cells compared, {} unmatched; {}.</p></body></html>",
        c.rows.len(),
        c.unmatched,
        verdict_counts(c)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hook cell `id` as saved JSON, with raw repetition means `reps`.
    ///
    /// With `baseline_mean`, an overhead of the mean over it; `flags` as validity flag codes.
    fn cell(id: &str, reps: &[f64], baseline_mean: Option<f64>, flags: &[&str]) -> serde_json::Value {
        let mean = reps.iter().sum::<f64>() / reps.len() as f64;
        let mut c = serde_json::json!({"id": id, "suite": "programs", "backend": "model", "model": "task-chain",
            "mechanism": "chain-walk", "metric": "hook_latency_ns", "unit": "ns",
            "params": {"programs": 8, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 1,
                       "working_set": 1, "cpus": 1, "body": "counter"},
            "samples": 300, "mean": mean, "stddev": 1.0, "cv": 0.01, "p50": mean, "p90": mean, "p99": mean,
            "p999": mean, "max": mean, "min": mean, "repetitions": reps,
            "validity": {"flags": flags.iter().map(|f| serde_json::json!({"code": f, "why": "test"})).collect::<Vec<_>>()}});
        if let Some(b) = baseline_mean {
            c["baseline"] = serde_json::json!({"mean": b, "p50": b, "samples": 300});
            c["overhead"] = serde_json::json!({"mean_ns": mean - b, "mean_ci95_ns": [mean - b - 1.0, mean - b + 1.0],
                                               "p50_ns": mean - b, "p50_ci95_ns": [mean - b - 1.0, mean - b + 1.0]});
        }
        c
    }

    fn run(cells: Vec<serde_json::Value>) -> Results {
        serde_json::from_value(
            serde_json::json!({"schema": hookbench_reports::SCHEMA, "hookbench_version": "0",
            "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [], "environment": {}, "cells": cells, "fits": [], "skipped": []}),
        )
        .expect("hand-made results parse")
    }

    fn scaled(reps: &[f64], k: f64) -> Vec<f64> {
        reps.iter().map(|r| r * k).collect()
    }

    const REPS: [f64; 4] = [139.0, 140.5, 140.0, 140.5];

    #[test]
    fn relative_stddev_of_repetitions() {
        assert!((rel_stddev_pct(&[9.0, 10.0, 11.0]) - 10.0).abs() < 1e-9);
        assert!(rel_stddev_pct(&[5.0]).is_nan());
    }

    #[test]
    fn a_machine_slower_as_a_whole_is_not_a_regression_of_the_overhead() {
        // Everything 10% slower, the baseline too: the raw mean rises 10%, the overhead 4 ns of 140.
        let base = run(vec![cell("a", &REPS, Some(100.0), &[]), cell("raw", &REPS, None, &[])]);
        let new = run(vec![
            cell("a", &scaled(&REPS, 1.1), Some(110.0), &[]),
            cell("raw", &scaled(&REPS, 1.1), None, &[]),
        ]);
        let c = compare(&base, &new, Some(5.0)).expect("cells in common");
        let a = &c.rows[0];
        assert_eq!(a.basis, Basis::Overhead);
        assert!((a.base - 40.0).abs() < 1e-9 && (a.new - 44.0).abs() < 1e-9, "{a:?}");
        assert!((a.change_pct - 100.0 * 4.0 / 140.0).abs() < 1e-9, "{a:?}");
        assert!(!a.regression);
        // Without overheads the raw figure is compared: +10%, a regression.
        let raw = &c.rows[1];
        assert_eq!(raw.basis, Basis::Raw);
        assert!((raw.change_pct - 10.0).abs() < 1e-9 && raw.regression, "{raw:?}");
    }

    #[test]
    fn a_grown_overhead_is_a_regression_and_a_flagged_cell_only_noisy() {
        let base = run(vec![
            cell("a", &REPS, Some(100.0), &[]),
            cell("b", &REPS, Some(100.0), &[]),
        ]);
        let grown: Vec<f64> = REPS.iter().map(|r| r + 30.0).collect();
        let new = run(vec![
            cell("a", &grown, Some(100.0), &[]),
            cell("b", &grown, Some(100.0), &["cpu-migration"]),
        ]);
        let c = compare(&base, &new, None).expect("cells in common");
        let (a, b) = (&c.rows[0], &c.rows[1]);
        assert!(
            a.regression && (a.change_pct - 100.0 * 30.0 / 140.0).abs() < 1e-9,
            "{a:?}"
        );
        assert!(b.noisy && !b.regression && !b.improvement, "{b:?}");
        assert_eq!(b.noisy_why, ["NEW cpu-migration"]);
        assert_eq!(c.regressions().count(), 1);
        let text = render_text(&c);
        assert!(text.contains("+21.4% **"), "{text}");
        assert!(
            text.contains("+21.4% ~ ") && text.contains("noisy: NEW cpu-migration"),
            "{text}"
        );
        assert!(text.contains("1 regression(s), 0 improvement(s), 1 noisy"), "{text}");
        let html = render_html(&c, "b", "n");
        assert_eq!(html.matches("<tr class=\"regression\">").count(), 1);
        assert_eq!(html.matches("<tr class=\"noisy\">").count(), 1);
        // Only noisy cells moved: nothing regressed.
        let new = run(vec![
            cell("a", &REPS, Some(100.0), &["mitigation-differs"]),
            cell("b", &grown, Some(100.0), &[]),
        ]);
        let base = run(vec![
            cell("a", &REPS, Some(100.0), &[]),
            cell("b", &grown, Some(100.0), &["programs-not-run"]),
        ]);
        let c = compare(&base, &new, None).expect("cells in common");
        assert_eq!(c.regressions().count(), 0);
        assert_eq!(c.noisy().count(), 2);
    }

    #[test]
    fn a_schema_1_file_is_refused_as_bad_input_saying_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.json");
        std::fs::write(&path, r#"{"schema": "hookbench.results/1", "cells": []}"#).expect("write");
        let err = read_run(dir.path()).expect_err("schema 1 is refused");
        assert!(
            err.message.contains("hookbench.results/1") && err.message.contains("re-run"),
            "{}",
            err.message
        );
    }
}
