//! How figures are written, in `evidence.txt` and `report.html` alike.
//!
//! Latencies never negative, differences signed, percentages, p-values, and the axes that label a
//! cell.

use crate::schema::{Cell, Decomposition};
use std::collections::BTreeSet;

/// "hook_latency_ns" -> "hook", "attach_latency_ns" -> "attach", "metadata_bytes" -> "metadata".
pub(crate) fn short_metric(metric: &str) -> &str {
    metric
        .strip_suffix("_latency_ns")
        .or_else(|| metric.strip_suffix("_bytes"))
        .or_else(|| metric.strip_suffix("_ns"))
        .unwrap_or(metric)
}

/// How a decomposition compares with the other method's, for the end of its figure's line.
///
/// It is empty without a comparison, else "agrees with ..." or "DISAGREES with ..." and by how
/// much; where the two entries are of different kernel paths, the entries' distance is said
/// beside the judged 4-program total.
pub(crate) fn agreement_text(d: &Decomposition) -> String {
    let Some(a) = &d.agreement else {
        return String::new();
    };
    let limit = fmt_pct(a.limit);
    let paths = match (a.entry_paths_differ, a.total_rel_diff) {
        (true, Some(total)) => format!(
            " (per program {}% apart; entry + 4 x per program {}% from its 4-program cost; the \
             entries, {}% apart, are of different paths: the selftest's is the action cache's hit)",
            fmt_pct(a.per_program_rel_diff),
            fmt_pct(total),
            fmt_pct(a.entry_rel_diff)
        ),
        _ => String::new(),
    };
    if a.agrees {
        return format!(
            "; agrees with {} ({}) within {limit}%{paths}",
            a.other_method, a.other_mechanism
        );
    }
    let mut apart = Vec::new();
    if a.per_program_rel_diff.is_nan() || a.per_program_rel_diff > a.limit {
        apart.push(format!("per program {}% apart", fmt_pct(a.per_program_rel_diff)));
    }
    match a.total_rel_diff {
        Some(t) if a.entry_paths_differ && (t.is_nan() || t > a.limit) => {
            apart.push(format!(
                "entry + 4 x per program {}% from its 4-program cost",
                fmt_pct(t)
            ));
        }
        _ if !a.entry_paths_differ && a.entry_rel_diff.is_finite() && a.entry_rel_diff > a.limit => {
            apart.push(format!("entry {}% apart", fmt_pct(a.entry_rel_diff)));
        }
        _ => {}
    }
    if apart.is_empty() {
        apart.push("parts apart".to_string());
    }
    format!(
        "; DISAGREES with {} ({}): {}, limit {limit}%{paths}",
        a.other_method,
        a.other_mechanism,
        apart.join(", ")
    )
}

/// A latency (percentile, mean, native or entry cost), never printed negative.
///
/// A negative one is a broken figure and shows as `invalid`.
pub(crate) fn fmt_latency(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 0.0 => "invalid".to_string(),
        other => fmt_num(other),
    }
}

/// A difference (overhead, slope) with its sign always shown.
pub(crate) fn fmt_signed(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format!("+{}", fmt_num(Some(v)))
    } else {
        fmt_num(Some(v))
    }
}

/// An x value (a count of programs, cgroups...): whole numbers without decimals.
pub(crate) fn fmt_x(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        fmt_num(Some(v))
    }
}

/// A fraction as a percentage with one decimal below 10% and none above (`0.123` -> `12`).
pub(crate) fn fmt_pct(v: f64) -> String {
    let p = 100.0 * v;
    if !p.is_finite() {
        "n/a".to_string()
    } else if p.abs() < 10.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.0}")
    }
}

/// A p-value: three decimals, `<0.001` below.
pub(crate) fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "n/a".to_string()
    } else if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// The numeric axes (and `body`) whose value differs between `cells`, in `NUMERIC_AXES` order.
pub(crate) fn varying_axes(cells: &[&Cell]) -> BTreeSet<&'static str> {
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

/// `axis=value` for each of `varying` (the body by name), the label of a cell within its suite.
pub(crate) fn axis_labels(c: &Cell, varying: &BTreeSet<&'static str>) -> Vec<String> {
    varying
        .iter()
        .map(|a| match c.params.axis(a) {
            Some(v) => format!("{a}={v}"),
            None => format!("{a}={}", c.params.body),
        })
        .collect()
}

/// Sorts `cells` by backend, mechanism, metric and point, the order both reports list them in.
pub(crate) fn sort_cells(cells: &mut [&Cell]) {
    cells.sort_by(|a, b| {
        (&a.backend, &a.mechanism, &a.metric, &a.params).cmp(&(&b.backend, &b.mechanism, &b.metric, &b.params))
    });
}
