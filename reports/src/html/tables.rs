//! The tables at the end of report.html: fits, decompositions, baseline drift and cells.

use super::page::esc;
use crate::evidence::{
    agreement_text, axis_labels, fmt_latency, fmt_num, fmt_p, fmt_pct, fmt_signed, fmt_x, short_metric, sort_cells,
    varying_axes,
};
use crate::schema::{Cell, PercentileBasis, Results};
use std::fmt::Write as _;

/// `[lo, hi]` of an interval.
fn ci(v: [f64; 2]) -> String {
    format!("[{}, {}]", fmt_num(Some(v[0])), fmt_num(Some(v[1])))
}

/// The fits table: slope with its CI, entry cost, and whether the line holds.
///
/// Where the line does not hold, the marginal cost per segment follows.
pub(super) fn fits_table(h: &mut String, results: &Results) {
    let _ = writeln!(
        h,
        "\n<h2 id=\"fits\">Fits</h2><div class=\"wide\"><table><tr><th>suite</th><th>backend</th><th>mechanism (model)</th>\
         <th>metric</th><th>x</th><th>y</th><th>slope [95% CI]</th><th>entry</th><th>line</th>\
         <th>per segment [95% CI]</th><th>r2</th><th>n</th></tr>"
    );
    for f in &results.fits {
        let entry = match f.entry {
            Some(e) if e.clamped => format!("{} (&lt;0, shown as 0)", fmt_latency(Some(e.entry))),
            Some(e) => fmt_latency(Some(e.entry)),
            None => String::new(),
        };
        let (line, curved) = match &f.lack_of_fit {
            Some(l) if l.holds => ("line holds".to_string(), false),
            Some(l) => (
                format!(
                    "<span class=\"flag\">curved</span>: worst at x={}, {}% off (p {})",
                    fmt_x(l.worst_x),
                    fmt_pct(l.max_rel_dev),
                    esc(&fmt_p(l.p_value))
                ),
                true,
            ),
            None => ("not tested".to_string(), false),
        };
        let segments: Vec<String> = if curved {
            f.segments
                .iter()
                .map(|s| {
                    format!(
                        "{}-{}: {} {}",
                        fmt_x(s.x0),
                        fmt_x(s.x1),
                        fmt_signed(s.slope.value),
                        ci(s.slope.ci(0.95))
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} {}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td></tr>",
            esc(&f.suite),
            esc(&f.backend),
            esc(&f.mechanism),
            f.model,
            esc(&f.metric),
            esc(&f.x),
            esc(&f.y),
            fmt_signed(f.slope),
            ci(f.slope_ci95),
            entry,
            line,
            segments.join("<br>"),
            f.r2,
            f.n
        );
    }
    let _ = writeln!(h, "</table></div>");
}

/// The native + entry + per-program splits, by method, and whether fit and selftest agree.
pub(super) fn decompositions_table(h: &mut String, results: &Results) {
    let _ = writeln!(
        h,
        "<h2 id=\"decompositions\">Decompositions: native + entry + N &times; per program</h2>"
    );
    if results.decompositions.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">No decomposition in this run.</p>");
        return;
    }
    let _ = writeln!(
        h,
        "<table><tr><th>backend</th><th>mechanism</th><th>method</th><th>N</th><th>native ns</th><th>entry ns</th>\
         <th>per program ns [95% CI]</th><th>parts add up within</th><th>agreement</th></tr>"
    );
    for d in &results.decompositions {
        let disagrees = d.agreement.as_ref().is_some_and(|a| !a.agrees);
        let agreement = agreement_text(d);
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}..{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}{}</td><td class=\"n\">{} {}</td><td class=\"n\">{}%</td><td>{}</td></tr>",
            if disagrees { " class=\"flagged\"" } else { "" },
            esc(&d.backend),
            esc(&d.mechanism),
            esc(&d.method),
            d.range[0],
            d.range[1],
            fmt_latency(Some(d.native_ns)),
            fmt_latency(Some(d.entry_ns)),
            if d.entry_clamped { " (&lt;0, shown as 0)" } else { "" },
            fmt_num(Some(d.per_program_ns)),
            ci(d.per_program_ci95),
            fmt_pct(d.max_relative_error),
            esc(agreement.trim_start_matches("; "))
        );
    }
    let _ = writeln!(h, "</table>");
}

/// How each repeated baseline moved over the run; a range above 5% is highlighted.
pub(super) fn drift_table(h: &mut String, results: &Results) {
    let _ = writeln!(h, "<h2 id=\"drift\">Drift of the baselines over the run</h2>");
    if results.drift.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">No repeated baseline in this run.</p>");
        return;
    }
    let _ = writeln!(
        h,
        "<table><tr><th>backend</th><th>mechanism</th><th>baseline</th><th>n</th><th>over s</th><th>p50 min..max</th>\
         <th>range (of the median)</th><th>trend %/h [95% CI]</th></tr>"
    );
    for e in &results.drift {
        let d = &e.drift;
        let warn = d.rel_range > crate::evidence::DRIFT_WARN_REL_RANGE;
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}..{}</td><td class=\"n\">{}%{}</td><td class=\"n\">{} {}</td></tr>",
            if warn { " class=\"flagged\"" } else { "" },
            esc(&e.backend),
            esc(&e.mechanism),
            esc(&e.label),
            d.n,
            fmt_num(Some(d.span_s)),
            fmt_latency(Some(d.min)),
            fmt_latency(Some(d.max)),
            fmt_pct(d.rel_range),
            if warn { " <span class=\"flag\">drift</span>" } else { "" },
            fmt_signed(100.0 * d.rel_slope_per_hour),
            ci([100.0 * d.rel_slope_ci95[0], 100.0 * d.rel_slope_ci95[1]])
        );
    }
    let _ = writeln!(h, "</table>");
}

/// What a cell's percentiles are of: calls, or means of batches of K.
fn basis(c: &Cell) -> String {
    match (c.percentile_basis, c.batch_k) {
        (PercentileBasis::BatchMeans, Some(k)) => format!("K={k} batch means"),
        (PercentileBasis::BatchMeans, None) => "batch means".to_string(),
        (PercentileBasis::Calls, _) => "calls".to_string(),
    }
}

/// The cells table, per suite: raw figures, the baseline's, the overhead and the validity flags.
///
/// The overhead comes with its CIs; flagged rows are highlighted. Each row is labelled with the
/// axes that vary within its suite; its full id is the row's tooltip.
pub(super) fn cells_table(h: &mut String, results: &Results) {
    let _ = writeln!(
        h,
        "<h2 id=\"cells\">Cells</h2><p>Raw figures (never shifted by the baseline); the overhead is the cell's cost over \
         its interleaved baseline (median shift with a Price&ndash;Bonett 95% CI, mean shift with Welch's).</p>"
    );
    let mut suites: Vec<&str> = results.suites.iter().map(|s| s.name.as_str()).collect();
    for c in &results.cells {
        if !suites.contains(&c.suite.as_str()) {
            suites.push(&c.suite);
        }
    }
    for suite in suites {
        let mut cells: Vec<&Cell> = results.cells.iter().filter(|c| c.suite == suite).collect();
        if cells.is_empty() {
            continue;
        }
        sort_cells(&mut cells);
        let varying = varying_axes(&cells);
        let _ = writeln!(
            h,
            "<h3>{}</h3><div class=\"wide\"><table><tr><th>cell</th><th>unit</th><th>percentiles of</th><th>mean</th>\
             <th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>baseline p50</th><th>baseline mean</th>\
             <th>overhead p50 [95% CI]</th><th>overhead mean [95% CI]</th><th>samples</th><th>validity</th></tr>",
            esc(suite)
        );
        for c in cells {
            let axes = axis_labels(c, &varying);
            let label = format!(
                "{} {} {} {}",
                c.backend,
                c.mechanism,
                short_metric(&c.metric),
                axes.join(" ")
            );
            let flagged = !c.validity.flags.is_empty();
            let flags: Vec<String> = c
                .validity
                .flags
                .iter()
                .map(|f| format!("<span class=\"flag\">{}</span>: {}", esc(&f.code), esc(&f.why)))
                .chain(c.validity.notes.iter().map(|n| format!("note: {}", esc(n))))
                .collect();
            let (over_p50, over_mean) = match &c.overhead {
                Some(o) => (
                    format!("{} {}", fmt_signed(o.p50_ns), ci(o.p50_ci95_ns)),
                    format!("{} {}", fmt_signed(o.mean_ns), ci(o.mean_ci95_ns)),
                ),
                None => (String::new(), String::new()),
            };
            let _ =
                writeln!(
                h,
                "<tr{} title=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                if flagged { " class=\"flagged\"" } else { "" },
                esc(&c.id),
                esc(&label),
                esc(&c.unit),
                basis(c),
                fmt_latency(Some(c.mean)),
                fmt_latency(Some(c.p50)),
                fmt_latency(Some(c.p90)),
                fmt_latency(Some(c.p99)),
                fmt_latency(Some(c.p999)),
                fmt_latency(Some(c.max)),
                c.baseline.map(|b| fmt_latency(Some(b.p50))).unwrap_or_default(),
                c.baseline.map(|b| fmt_latency(Some(b.mean))).unwrap_or_default(),
                over_p50,
                over_mean,
                c.samples,
                if flags.is_empty() { "ok".to_string() } else { flags.join("<br>") }
            );
        }
        let _ = writeln!(h, "</table></div>");
    }
}
