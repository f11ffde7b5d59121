//! The tables of a claim's suites: one row per fit, whether its line holds, and its split.

use super::text::Out;
use super::{agreement_text, fmt_latency, fmt_num, fmt_p, fmt_pct, fmt_signed, fmt_x, short_metric};
use crate::schema::{Fit, Results, SuiteInfo};

/// The fixed-width tables of `suite`'s fits: one per backend, metric and x, one row per fit.
///
/// A row reads `mechanism[ qualifiers]  slope +-CI  entry  p50  p99` (raw p50/p99 of the cell
/// at the largest x). Then come, per fit, whether its line holds, and the native + entry +
/// per-program split where a decomposition of the fit exists.
pub(super) fn fit_tables(out: &mut Out, r: &Results, suite: &SuiteInfo) {
    let fits: Vec<&Fit> = r.fits.iter().filter(|f| f.suite == suite.name).collect();
    let mut groups: Vec<(&str, &str, &str)> = Vec::new();
    for f in &fits {
        let key = (f.backend.as_str(), f.metric.as_str(), f.x.as_str());
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    for (backend, metric, x) in groups {
        let group: Vec<&Fit> = fits
            .iter()
            .copied()
            .filter(|f| f.backend == backend && f.metric == metric && f.x == x)
            .collect();
        let unit = r
            .cells
            .iter()
            .find(|c| c.metric == metric)
            .map(|c| c.unit.as_str())
            .unwrap_or("");
        let over = if group.iter().all(|f| f.y == "overhead") {
            " over baseline"
        } else {
            ""
        };
        out.line(format!(
            "[{}] {} {} ({}{}) vs {}: slope per {}, 95% CI",
            suite.name,
            backend,
            short_metric(metric),
            unit,
            over,
            x,
            x
        ));
        out.raw(format!(
            "  {:<24} {:>8}   {:<7} {:>7} {:>7} {:>7}",
            "mechanism", "slope", "95%CI", "entry", "p50@max", "p99@max"
        ));
        for f in &group {
            let label = fit_label(f, &group);
            let last = r.cells_of(f).into_iter().max_by_key(|c| c.params.axis(&f.x_axis));
            let label = if label.chars().count() > 24 {
                out.raw(format!("  {label}"));
                String::new()
            } else {
                label
            };
            out.raw(format!(
                "  {:<24} {:>8} +-{:<7} {:>7} {:>7} {:>7}",
                label,
                fmt_num(Some(f.slope)),
                fmt_num(Some((f.slope_ci95[1] - f.slope_ci95[0]) / 2.0)),
                fmt_latency(f.entry.map(|e| e.entry)),
                fmt_latency(last.map(|c| c.p50)),
                fmt_latency(last.map(|c| c.p99)),
            ));
        }
        for f in &group {
            fit_details(out, f, &fit_label(f, &group));
        }
        for f in group.iter().filter(|f| f.x_axis == "programs") {
            for d in r
                .decompositions
                .iter()
                .filter(|d| d.backend == f.backend && d.mechanism == f.mechanism && d.method == "fit")
            {
                out.line(format!(
                    "  {}: native {} ns + entry {} ns{} + {} ns per program (N={}..{}){}",
                    d.mechanism,
                    fmt_latency(Some(d.native_ns)),
                    fmt_latency(Some(d.entry_ns)),
                    if d.entry_clamped { " (<0, shown as 0)" } else { "" },
                    fmt_num(Some(d.per_program_ns)),
                    d.range[0],
                    d.range[1],
                    agreement_text(d)
                ));
            }
        }
    }
}

/// The lines under a fit's row: whether its line holds, and its clamped entry cost.
///
/// Where the line does not hold (lack-of-fit), its marginal costs per segment follow.
fn fit_details(out: &mut Out, f: &Fit, label: &str) {
    let line = match &f.lack_of_fit {
        Some(l) if l.holds => "line holds".to_string(),
        Some(l) => format!(
            "curved: worst at x={}, {}% off (lack-of-fit p {})",
            fmt_x(l.worst_x),
            fmt_pct(l.max_rel_dev),
            fmt_p(l.p_value)
        ),
        None => "line not tested (fewer than 3 points with repeats)".to_string(),
    };
    let entry = match f.entry {
        Some(e) if e.clamped => "; entry 0 (<0, shown as 0)",
        _ => "",
    };
    out.line(format!("  {label}: {line}{entry}"));
    let curved = f.lack_of_fit.is_some_and(|l| !l.holds);
    if curved && !f.segments.is_empty() {
        let parts: Vec<String> = f
            .segments
            .iter()
            .map(|s| {
                let ci = s.slope.ci(0.95);
                format!(
                    "{}-{} {} [{}, {}]",
                    fmt_x(s.x0),
                    fmt_x(s.x1),
                    fmt_signed(s.slope.value),
                    fmt_num(Some(ci[0])),
                    fmt_num(Some(ci[1]))
                )
            })
            .collect();
        out.line(format!("    per {} by segment: {}", f.x, parts.join("; ")));
    }
}

/// A fit's row label: its mechanism, plus the fixed axes that tell it from its neighbours.
///
/// An `axis=value` is added for every fixed axis whose value differs among the group's fits of
/// the same mechanism (e.g. `chain-walk W=16384`).
fn fit_label(f: &Fit, group: &[&Fit]) -> String {
    let same: Vec<&&Fit> = group.iter().filter(|g| g.mechanism == f.mechanism).collect();
    let mut label = f.mechanism.clone();
    for (axis, value) in &f.fixed {
        if same.iter().any(|g| g.fixed.get(axis) != Some(value)) {
            let short = match axis.as_str() {
                "working_set" => "W",
                "cpus" => "P",
                "cgroups" => "C",
                "tasks" => "T",
                "hooks" => "H",
                "depth" => "D",
                other => other,
            };
            let v = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
            label.push_str(&format!(" {short}={v}"));
        }
    }
    label
}
