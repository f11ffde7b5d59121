//! `hookbench compare BASE NEW`: matches the cells of two saved runs and reports significant changes, in the manner of kernel regression reports.
//!
//! Cells are matched by their id (suite, backend, mechanism, metric and every parameter). For
//! each pair the figures compared are the raw totals (a baseline-subtracted cell has its baseline
//! mean added back, so a change is relative to what a hook really costs, not to a difference near
//! zero). Significance: Welch's t-test on the per-repetition means (two-sided, p < 0.05). Every
//! metric hookbench records is smaller-is-better, so a regression is a significant increase
//! larger than the threshold.

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

/// One matched cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The cell id.
    pub id: String,
    /// Unit of `base` and `new`.
    pub unit: String,
    /// Base total (mean, baseline added back), in `unit`.
    pub base: f64,
    /// Base relative standard deviation of the repetition means, percent (NaN with one repetition).
    pub base_stddev_pct: f64,
    /// New total, in `unit`.
    pub new: f64,
    /// New relative standard deviation of the repetition means, percent.
    pub new_stddev_pct: f64,
    /// `(new - base) / base`, percent.
    pub change_pct: f64,
    /// Two-sided p-value of Welch's t-test on the repetition means, if both have two or more.
    pub p_value: Option<f64>,
    /// Significant (p < [`ALPHA`]) and beyond the threshold, upwards.
    pub regression: bool,
    /// Significant and beyond the threshold, downwards.
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
}

/// Reads a run: a run directory (its `results.json`) or a `results.json` path.
///
/// Errors: [`UsageError`] for an unreadable file or another schema.
pub fn read_run(path: &Path) -> Result<Results, UsageError> {
    let file: PathBuf = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    Results::read(&file).map_err(|e| UsageError::new(e.to_string()))
}

/// The raw mean of a cell and of each repetition (schema 2 saves raw figures).
fn totals(c: &Cell) -> (f64, Vec<f64>) {
    (c.mean, c.repetitions.clone())
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

/// Compares `base` and `new`. `threshold_pct` `None` chooses it from the noise: three times the
/// median relative standard deviation of BASE's repetition means, at least
/// [`MIN_DEFAULT_THRESHOLD_PCT`].
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
                .map(|(b, _)| rel_stddev_pct(&totals(b).1))
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
            let (base_total, base_reps) = totals(b);
            let (new_total, new_reps) = totals(n);
            let change_pct = 100.0 * (new_total - base_total) / base_total.abs();
            let p_value = welch_t_test(&new_reps, &base_reps).ok().map(|t| t.p_two_sided);
            let significant = p_value.is_some_and(|p| p < ALPHA);
            Row {
                id: b.id.clone(),
                unit: b.unit.clone(),
                base: base_total,
                base_stddev_pct: rel_stddev_pct(&base_reps),
                new: new_total,
                new_stddev_pct: rel_stddev_pct(&new_reps),
                change_pct,
                p_value,
                regression: significant && change_pct > threshold_pct,
                improvement: significant && change_pct < -threshold_pct,
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

/// The comparison as text: one row per matched cell, `base ±%stddev  %change mark  new ±%stddev
/// cell`, where the mark is `**` for a regression, `++` for an improvement, `*` for a
/// significant change within the threshold; then a summary line.
pub fn render_text(c: &Comparison) -> String {
    let mut s = String::new();
    let pct = |v: f64| {
        if v.is_finite() {
            format!("±{v:.0}%")
        } else {
            "".to_string()
        }
    };
    let _ = writeln!(
        s,
        "{:>12} {:>7} {:>9}    {:>12} {:>7}  cell (significance: Welch's t-test on repetition means, p < {ALPHA})",
        "base", "%stddev", "%change", "new", "%stddev"
    );
    for r in &c.rows {
        let mark = if r.regression {
            "**"
        } else if r.improvement {
            "++"
        } else if r.p_value.is_some_and(|p| p < ALPHA) {
            "*"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{:>12.4} {:>7} {:>+8.1}% {:<3}{:>12.4} {:>7}  {} ({})",
            r.base,
            pct(r.base_stddev_pct),
            r.change_pct,
            mark,
            r.new,
            pct(r.new_stddev_pct),
            r.id,
            r.unit
        );
    }
    let regressions = c.regressions().count();
    let _ = writeln!(
        s,
        "{} cells compared, {} unmatched; threshold {:.1}%{}; {} regression(s), {} improvement(s)",
        c.rows.len(),
        c.unmatched,
        c.threshold_pct,
        if c.threshold_from_noise {
            " (3x the median noise of BASE, at least 5%)"
        } else {
            ""
        },
        regressions,
        c.rows.iter().filter(|r| r.improvement).count()
    );
    s
}

/// The comparison as one self-contained HTML page (inline styles, no script, no external URL):
/// the same columns as [`render_text`], regressions shaded red, improvements green, significant
/// changes within the threshold marked `*`, then the summary.
pub fn render_html(c: &Comparison, base: &str, new: &str) -> String {
    use hookbench_reports::html::{esc, GENERATOR_META};
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>hookbench compare</title>\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px}}\
         td.n{{text-align:right;font-family:monospace}}.regression{{background:#f7d4d4}}\
         .improvement{{background:#d9f2d9}}</style></head><body>\n<h1>hookbench compare</h1>\n\
         <p>base: {}<br>new: {}</p>\n<p>Significance: Welch's t-test on the repetition means, p &lt; {ALPHA}; \
         threshold {:.1}%{}.</p>\n<table><tr><th>base</th><th>%stddev</th><th>%change</th><th></th><th>new</th>\
         <th>%stddev</th><th>p</th><th>cell</th><th>unit</th></tr>\n",
        esc(base),
        esc(new),
        c.threshold_pct,
        if c.threshold_from_noise {
            " (3x the median noise of BASE, at least 5%)"
        } else {
            ""
        }
    );
    let pct = |v: f64| {
        if v.is_finite() {
            format!("{v:.0}%")
        } else {
            String::new()
        }
    };
    for r in &c.rows {
        let (class, mark) = if r.regression {
            ("regression", "**")
        } else if r.improvement {
            ("improvement", "++")
        } else if r.p_value.is_some_and(|p| p < ALPHA) {
            ("", "*")
        } else {
            ("", "")
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td class=\"n\">{:.4}</td><td class=\"n\">{}</td><td class=\"n\">{:+.1}%</td>\
             <td>{mark}</td><td class=\"n\">{:.4}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            r.base,
            pct(r.base_stddev_pct),
            r.change_pct,
            r.new,
            pct(r.new_stddev_pct),
            r.p_value.map(|p| format!("{p:.3}")).unwrap_or_default(),
            esc(&r.id),
            esc(&r.unit)
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p>{} cells compared, {} unmatched; {} regression(s), {} improvement(s).</p></body></html>",
        c.rows.len(),
        c.unmatched,
        c.regressions().count(),
        c.rows.iter().filter(|r| r.improvement).count()
    );
    h
}

/// Formats of `hookbench export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Bencher Metric Format: `{cell id: {metric: {value, lower_value, upper_value}}}`.
    Bmf,
    /// github-action-benchmark's `customSmallerIsBetter`: `[{name, unit, value, range}]`.
    Gab,
}

/// The cells of `results` in an external benchmark service's JSON format. Values are each
/// cell's raw total (baseline added back, as in [`compare`]); BMF's bounds and GAB's range are
/// the mean plus or minus one standard deviation.
pub fn export(results: &Results, format: ExportFormat) -> serde_json::Value {
    match format {
        ExportFormat::Bmf => {
            let mut out = serde_json::Map::new();
            for c in &results.cells {
                let (total, _) = totals(c);
                let mut measure = serde_json::Map::new();
                measure.insert(
                    c.metric.clone(),
                    serde_json::json!({"value": total, "lower_value": total - c.stddev, "upper_value": total + c.stddev}),
                );
                out.insert(c.id.clone(), serde_json::Value::Object(measure));
            }
            serde_json::Value::Object(out)
        }
        ExportFormat::Gab => serde_json::Value::Array(
            results
                .cells
                .iter()
                .map(|c| {
                    let (total, _) = totals(c);
                    serde_json::json!({"name": c.id, "unit": c.unit, "value": total,
                                       "range": format!("± {}", c.stddev), "extra": c.metric})
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_stddev_of_repetitions() {
        assert!((rel_stddev_pct(&[9.0, 10.0, 11.0]) - 10.0).abs() < 1e-9);
        assert!(rel_stddev_pct(&[5.0]).is_nan());
    }
}
