//! Renders the self-contained `report.html` from saved results: verdict table, environment, one section per suite with inline SVG charts (plotters), and raw tables.

use crate::claims::Verdict;
use crate::schema::{Fit, Results};
use plotters::prelude::*;
use std::fmt::Write as _;

/// One series of a chart: a legend name and its (x, y) points, sorted by x.
type Series = (String, Vec<(f64, f64)>);

/// Palette of the series (colour-blind-safe Okabe-Ito).
const COLORS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG line chart of `series` (points and lines) with the axes labelled, or a short note when
/// there is nothing to draw. Deterministic: the same input gives the same SVG text.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if points.is_empty() {
        return format!("<p class=\"note\">{}: no data in this run.</p>", esc(title));
    }
    let (mut x0, mut x1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);
    x0 = x0.min(0.0).max(x0 - (x1 - x0) * 0.02);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 360)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            return format!(
                "<p class=\"note\">{}: could not draw: {}</p>",
                esc(title),
                esc(&e.to_string())
            );
        }
    }
    svg
}

/// The series of the fits of `suite` for `metric` over `x`: one per (backend, mechanism, fixed
/// axes that vary), named `backend mechanism (model)`.
fn fit_series(results: &Results, suite: &str, metric: &str, x: &str) -> Vec<Series> {
    results
        .fits
        .iter()
        .filter(|f| f.suite == suite && f.metric == metric && f.x == x)
        .map(|f: &Fit| {
            let mut name = format!("{} {} ({})", f.backend, f.mechanism, f.model);
            if let Some(w) = f.fixed.get("working_set").filter(|w| w.as_f64().unwrap_or(1.0) > 1.0) {
                let _ = write!(name, " W={w}");
            }
            if suite == "metadata" {
                if let Some(h) = f.fixed.get("hooks") {
                    let _ = write!(name, " hooks={h}");
                }
            }
            (name, f.points.iter().map(|p| (p[0], p[1])).collect())
        })
        // One series per name: fits that differ only in an axis the name leaves out (e.g. the
        // tasks of a metadata sweep) would draw the same curve again.
        .fold(Vec::new(), |mut acc: Vec<Series>, s| {
            if !acc.iter().any(|(n, _)| *n == s.0) {
                acc.push(s);
            }
            acc
        })
}

/// Percentile profile (p50..p99.9) of each mechanism's cell with the most programs in `suite`.
fn percentile_series(results: &Results, suite: &str) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let mut mechanisms: Vec<(&str, &str)> = results
        .cells
        .iter()
        .filter(|c| c.suite == suite && c.metric == "hook_latency_ns")
        .map(|c| (c.backend.as_str(), c.mechanism.as_str()))
        .collect();
    mechanisms.dedup();
    for (backend, mechanism) in mechanisms {
        let best = results
            .cells
            .iter()
            .filter(|c| c.suite == suite && c.backend == backend && c.mechanism == mechanism)
            .max_by_key(|c| c.params.programs);
        if let Some(c) = best {
            let pts = vec![(50.0, c.p50), (90.0, c.p90), (99.0, c.p99), (99.9, c.p999)];
            out.push((format!("{backend} {mechanism} N={}", c.params.programs), pts));
        }
    }
    out
}

/// Renders `report.html`: one self-contained file (inline styles and SVG, no script, no external
/// URL) with the verdict table, the environment, the charts and the raw tables.
pub fn render(results: &Results) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hookbench report</title>\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         .supported{{background:#d9f2d9}}.refuted{{background:#f7d4d4}}.inconclusive{{background:#fff2cc}}\
         .not-run{{color:#777}}.note{{color:#777}}svg{{display:block;margin:8px 0}}</style></head><body>\n"
    );
    let _ = writeln!(h, "<h1>hookbench report</h1>");
    let _ = writeln!(
        h,
        "<p>{} cells, {} fits, {} skipped; profile {}; hookbench {}; {}</p>",
        results.cells.len(),
        results.fits.len(),
        results.skipped.len(),
        esc(&results.profile),
        esc(&results.hookbench_version),
        if results.complete {
            "complete"
        } else {
            "INCOMPLETE (the run was stopped)"
        }
    );
    let _ = writeln!(h, "<h2 id=\"summary\">Summary: verdicts</h2><table><tr><th>claim</th><th>backend</th><th>verdict</th><th>evidence</th></tr>");
    for c in &results.claims {
        let class = c.verdict.as_str();
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}: {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.id,
            esc(&c.hypothesis),
            esc(&c.backend),
            class,
            esc(&c.evidence)
        );
    }
    let _ = writeln!(h, "</table>");
    if results.claims.iter().all(|c| c.verdict == Verdict::NotRun) {
        let _ = writeln!(h, "<p class=\"note\">No claim could be evaluated from this run.</p>");
    }
    let _ = writeln!(h, "<h2 id=\"environment\">Environment</h2><table>");
    if let Some(map) = results.environment.as_object() {
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&text));
        }
    }
    let _ = writeln!(h, "</table>");
    if !results.skipped.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Skipped</h3><table><tr><th>backend</th><th>mechanism</th><th>reason</th></tr>"
        );
        for s in &results.skipped {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.backend),
                esc(&s.mechanism),
                esc(&s.reason)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let charts: [(&str, &str, &str, &str, &str, &str); 7] = [
        (
            "foreign",
            "hook_latency_ns",
            "foreign",
            "Hook latency against foreign programs",
            "foreign programs",
            "ns per hook (baseline subtracted)",
        ),
        (
            "programs",
            "hook_latency_ns",
            "programs",
            "Hook latency against programs on the hook",
            "programs",
            "ns per hook (baseline subtracted)",
        ),
        (
            "cgroup-handles",
            "hook_latency_ns",
            "handles",
            "Global filters: latency against cgroup handles",
            "handles",
            "ns per hook (baseline subtracted)",
        ),
        (
            "attach",
            "attach_latency_ns",
            "descendants",
            "Attach latency against descendants",
            "descendants",
            "ns per attach",
        ),
        (
            "metadata",
            "metadata_bytes",
            "cgroups",
            "Dispatch metadata against cgroups (per hooks)",
            "cgroups",
            "bytes",
        ),
        (
            "working-set",
            "hook_latency_ns",
            "programs",
            "Hook latency against programs at W = 1 and W = thousands",
            "programs",
            "ns per hook (baseline subtracted)",
        ),
        (
            "seccomp",
            "hook_latency_ns",
            "programs",
            "seccomp: argument-loading against number-only filters",
            "filters",
            "ns per syscall (native subtracted)",
        ),
    ];
    for (suite, metric, x, title, x_label, y_label) in charts {
        let _ = writeln!(h, "<h2 id=\"{suite}\">{}</h2>", esc(title));
        if let Some(info) = results.suites.iter().find(|s| s.name == suite) {
            let _ = writeln!(h, "<p>{}</p>", esc(&info.hypothesis));
        }
        h.push_str(&line_chart(
            title,
            x_label,
            y_label,
            &fit_series(results, suite, metric, x),
        ));
        h.push('\n');
    }
    let _ = writeln!(h, "<h2 id=\"percentiles\">Latency percentiles per model</h2>");
    h.push_str(&line_chart(
        "Percentiles at the most programs (programs suite)",
        "percentile",
        "ns per hook (baseline subtracted)",
        &percentile_series(results, "programs"),
    ));
    let _ = writeln!(h, "\n<h2 id=\"fits\">Fits</h2><table><tr><th>suite</th><th>backend</th><th>mechanism (model)</th><th>metric</th><th>x</th><th>slope [95% CI]</th><th>intercept</th><th>r2</th><th>n</th></tr>");
    for f in &results.fits {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{:.4} [{:.4}, {:.4}]</td><td>{:.4}</td><td>{:.3}</td><td>{}</td></tr>",
            esc(&f.suite), esc(&f.backend), esc(&f.mechanism), f.model, esc(&f.metric), esc(&f.x),
            f.slope, f.slope_ci95[0], f.slope_ci95[1], f.intercept, f.r2, f.n
        );
    }
    let _ = writeln!(h, "</table><h2 id=\"cells\">Cells</h2><table><tr><th>cell</th><th>unit</th><th>mean</th><th>stddev</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>samples</th></tr>");
    for c in &results.cells {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            esc(&c.id), esc(&c.unit), c.mean, c.stddev, c.p50, c.p90, c.p99, c.p999, c.max, c.samples
        );
    }
    let _ = writeln!(h, "</table></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_series_and_an_empty_one_says_so() {
        let svg = line_chart(
            "Hook latency",
            "programs",
            "ns",
            &[(
                "model chain-walk (task-chain)".into(),
                vec![(0.0, 1.0), (8.0, 9.0), (16.0, 17.0)],
            )],
        );
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("Hook latency") && svg.contains("model chain-walk (task-chain)"));
        assert_eq!(
            svg,
            line_chart(
                "Hook latency",
                "programs",
                "ns",
                &[(
                    "model chain-walk (task-chain)".into(),
                    vec![(0.0, 1.0), (8.0, 9.0), (16.0, 17.0)]
                )]
            )
        );
        let empty = line_chart("Nothing <here>", "x", "y", &[]);
        assert!(!empty.contains("<svg") && empty.contains("Nothing &lt;here&gt;: no data"));
    }
}
