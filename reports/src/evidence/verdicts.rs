//! The verdict table of `evidence.txt`: claims x backends, with the slopes that decided each.
//!
//! Read from the claims' stored results (`results.claims`): the fits each verdict compared and the
//! margin it used; nothing is evaluated again here.

use super::text::{at_most, one_line};
use super::{fmt_num, fmt_signed};
use crate::claims::{fit_body, ClaimResult, Compared, Verdict, TITLES};
use crate::schema::{Fit, Results};

/// Width of the column of a row's fit labels: the longest mechanism names (27) with an axis.
const LABEL_WIDTH: usize = 30;

/// How much of each verdict row the table shows, from the whole row to its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    /// Every fit the verdict compared, one line each, and the margin under the verdict.
    Full,
    /// The first two fits compared (the deciding pair) and the margin.
    Pair,
    /// One line: the verdict and its first fit.
    Line,
    /// One line per claim: its verdict on each backend, no figures.
    Matrix,
}

/// The table's lines at `detail`, each within the column limit.
///
/// Per claim a heading (its number, what it says in a few words, the unit and x of its
/// slopes), then per backend the verdict with the fits it compared, `slope +-CI` (the 95%
/// interval's half-width) each, and `m +-margin` under the verdict.
pub(super) fn table(r: &Results, detail: Detail) -> Vec<String> {
    let mut out = vec!["verdicts (slope per x +- 95% CI half-width; m: margin)".to_string()];
    let mut ids: Vec<u32> = r.claims.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        out.push("  (no claim was evaluated in this run)".to_string());
    }
    for id in ids {
        let rows: Vec<&ClaimResult> = r.claims.iter().filter(|c| c.id == id).collect();
        if detail == Detail::Matrix {
            let verdicts: Vec<String> = rows
                .iter()
                .map(|c| format!("{} {}", c.backend, verdict_word(c.verdict)))
                .collect();
            out.push(one_line(&format!("claim {id}: {}", verdicts.join(", "))));
            continue;
        }
        out.extend(heading(r, id, &rows));
        for c in rows {
            out.extend(row(r, c, detail));
        }
    }
    out
}

/// A verdict as the table writes it: `SUPPORTED`, `REFUTED`, `INCONCLUSIVE` or `not-run`.
fn verdict_word(v: Verdict) -> String {
    match v {
        Verdict::NotRun => "not-run".to_string(),
        v => v.as_str().to_uppercase(),
    }
}

/// A claim's heading: `claim 1: what it says (ns per foreign)`.
fn heading(r: &Results, id: u32, rows: &[&ClaimResult]) -> Vec<String> {
    let title = TITLES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| t.to_string())
        .or_else(|| rows.first().map(|c| c.hypothesis.clone()))
        .unwrap_or_default();
    let compared: Vec<&Compared> = rows.iter().flat_map(|c| c.compared.iter()).collect();
    let mut xs: Vec<&str> = Vec::new();
    for f in &compared {
        if !xs.contains(&f.x.as_str()) {
            xs.push(&f.x);
        }
    }
    let unit = compared
        .iter()
        .find_map(|f| {
            r.fits
                .iter()
                .find(|g| g.suite == f.suite && g.backend == f.backend && g.mechanism == f.mechanism)
                .and_then(|g| r.cells.iter().find(|c| c.metric == g.metric))
                .map(|c| c.unit.clone())
        })
        .unwrap_or_default();
    let per = match (unit.is_empty(), xs.is_empty()) {
        (_, true) => String::new(),
        (true, false) => format!(" (per {})", xs.join("/")),
        (false, false) => format!(" ({unit} per {})", xs.join("/")),
    };
    at_most(&format!("claim {id}: {title}{per}"), 2)
}

/// One backend's row: the verdict, its fits with their slopes, and the margin.
fn row(r: &Results, c: &ClaimResult, detail: Detail) -> Vec<String> {
    let lead = format!("  {:<7} {:<12} ", c.backend, verdict_word(c.verdict));
    if c.verdict == Verdict::NotRun || c.compared.is_empty() {
        let why = c
            .evidence
            .strip_prefix("not measured on this backend: ")
            .unwrap_or(&c.evidence);
        return vec![one_line(&format!("{lead}{why}"))];
    }
    let fits = compared_fits(r, c);
    let shown = match detail {
        Detail::Full => fits.len(),
        Detail::Pair => fits.len().min(2),
        Detail::Line | Detail::Matrix => 1,
    };
    let margin = c.margin.map(|m| format!("m +-{}", fmt_num(Some(m))));
    let mut out = Vec::new();
    for (i, (label, fit)) in fits.iter().take(shown).enumerate() {
        let left = match (i, &margin) {
            (0, _) => lead.clone(),
            (1, Some(m)) if detail != Detail::Line => format!("  {:<7} {:<12} ", "", m),
            _ => format!("  {:<7} {:<12} ", "", ""),
        };
        let figures = match fit {
            Some(f) => format!(
                "{:>8} +-{}",
                fmt_signed(f.slope),
                fmt_num(Some((f.slope_ci95[1] - f.slope_ci95[0]) / 2.0))
            ),
            None => format!("{:>8}", "n/a"),
        };
        if label.chars().count() > LABEL_WIDTH {
            out.push(one_line(&format!("{left}{label}")));
            out.push(one_line(&format!(
                "  {:<7} {:<12} {:<LABEL_WIDTH$}{figures}",
                "", "", ""
            )));
        } else {
            out.push(one_line(&format!("{left}{label:<LABEL_WIDTH$}{figures}")));
        }
    }
    if shown == 1 && detail != Detail::Line {
        if let Some(m) = margin {
            out.push(format!("  {:<7} {m}", ""));
        }
    }
    out
}

/// Fixed axes that tell fits of one mechanism apart, in the order a short label tries them.
///
/// Each with the letter it is written with (`W=4096`).
const LABEL_AXES: [(&str, &str); 7] = [
    ("working_set", "W"),
    ("cpus", "P"),
    ("hooks", "H"),
    ("foreign", "foreign"),
    ("depth", "D"),
    ("cgroups", "C"),
    ("tasks", "T"),
];

/// A fit's shortest row label: its mechanism, plus the fewest fixed axes that tell it apart.
///
/// From `group` (the fits that matched the same compared entry), axes of [`LABEL_AXES`] are
/// added in order while another fit of the mechanism still agrees on all the axes so far:
/// `chain-walk W=2048` where the full file's table says `chain-walk T=2048 W=2048`.
fn short_label(f: &Fit, group: &[&Fit]) -> String {
    let mut rivals: Vec<&Fit> = group
        .iter()
        .copied()
        .filter(|g| g.mechanism == f.mechanism && !std::ptr::eq(*g, f))
        .collect();
    let mut label = f.mechanism.clone();
    for (axis, letter) in LABEL_AXES {
        if rivals.is_empty() {
            break;
        }
        let value = f.fixed.get(axis);
        if rivals.iter().any(|g| g.fixed.get(axis) != value) {
            let v = value.map_or("-".to_string(), |v| {
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            });
            label.push_str(&format!(" {letter}={v}"));
            rivals.retain(|g| g.fixed.get(axis) == value);
        }
    }
    label
}

/// The fits a verdict compared, each with its row label, in the claim's order.
///
/// A compared fit is found by suite, backend, mechanism, x and body; where several fits match
/// (one per working set, or per hook count), the one whose slope the claim recorded in its
/// numbers is taken, and the label names the fixed axes that tell them apart ([`short_label`]).
fn compared_fits<'a>(r: &'a Results, c: &ClaimResult) -> Vec<(String, Option<&'a Fit>)> {
    let recorded: Vec<f64> = c.numbers.values().copied().collect();
    let mut used: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for want in &c.compared {
        let candidates: Vec<(usize, &Fit)> = r
            .fits
            .iter()
            .enumerate()
            .filter(|(_, f)| want.is_over(f) && fit_body(r, f).is_none_or(|b| b == want.body))
            .collect();
        let fresh: Vec<&(usize, &Fit)> = candidates.iter().filter(|(i, _)| !used.contains(i)).collect();
        let chosen = fresh
            .iter()
            .find(|(_, f)| recorded.contains(&f.slope))
            .or_else(|| fresh.first())
            .copied()
            .or_else(|| candidates.first());
        let group: Vec<&Fit> = candidates.iter().map(|(_, f)| *f).collect();
        out.push(match chosen {
            Some((i, f)) => {
                used.push(*i);
                (short_label(f, &group), Some(*f))
            }
            None => (want.mechanism.clone(), None),
        });
    }
    out
}
