//! Renders the self-contained `report.html` from saved results, for reading a run in a browser.
//!
//! A verdict table, the environment, one section per suite with inline SVG charts (plotters),
//! and raw tables.
//!
//! The same content as `evidence.txt`, in tables: raw percentiles with the baseline's beside
//! them, overheads with their 95% CIs, validity flags highlighted, decompositions with their
//! agreement, drift, lack-of-fit and segments per fit, and the claims with the fits they
//! compared and their margins. Charts of fits with `y` = "overhead" plot each point's mean
//! overhead over its interleaved baseline; no latency is shown negative.

use crate::claims::Verdict;
use crate::evidence::{
    agreement_text, axis_labels, fmt_latency, fmt_num, fmt_p, fmt_pct, fmt_signed, fmt_x, short_metric, sort_cells,
    varying_axes,
};
use crate::schema::{Cell, Fit, PercentileBasis, Results};
use plotters::prelude::*;
use std::fmt::Write as _;

/// One series of a chart: a legend name, its points and, from a fit, its line and band.
///
/// The measured (x, y) points are sorted by x; a fit's series carries the fitted line with its 95%
/// confidence band.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name (backend, mechanism, model, qualifiers).
    pub name: String,
    /// Measured points: the mean y at each distinct x.
    pub points: Vec<(f64, f64)>,
    /// The fitted line `(intercept, slope)`, drawn instead of joining the points.
    pub fit: Option<(f64, f64)>,
    /// The fit's 95% confidence band for the mean response, `(x, lo, hi)` sorted by x.
    ///
    /// Empty without a fit.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// A series of measured points joined by straight lines (no fit, no band).
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            fit: None,
            band: Vec::new(),
        }
    }

    /// A fit's series: its points, its line and its 95% confidence band for the mean response.
    ///
    /// The band is `y(x) +- h * sqrt(var_x + (x - mean_x)^2)` where `h` is the slope's CI
    /// half-width and `var_x`, `mean_x` are over the fit's distinct x values. This is the textbook
    /// band `t * s * sqrt(1/n + (x - mean_x)^2 / Sxx)` rewritten with `h = t * s / sqrt(Sxx)` and
    /// `Sxx = n * var_x`, which holds when every x has the same number of samples (every sweep
    /// measures each point with the same sample count).
    pub fn from_fit(name: impl Into<String>, f: &Fit) -> Series {
        let points: Vec<(f64, f64)> = f.points.iter().map(|p| (p[0], p[1])).collect();
        let k = points.len().max(1) as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / k;
        let var_x = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum::<f64>() / k;
        let h = (f.slope_ci95[1] - f.slope_ci95[0]) / 2.0;
        let (x0, x1) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let mut band = Vec::new();
        if h.is_finite() && x1 > x0 {
            const STEPS: usize = 24;
            for i in 0..=STEPS {
                let x = x0 + (x1 - x0) * i as f64 / STEPS as f64;
                let y = f.intercept + f.slope * x;
                let w = h * (var_x + (x - mean_x).powi(2)).sqrt();
                band.push((x, y - w, y + w));
            }
        }
        Series {
            name: name.into(),
            points,
            fit: (f.slope.is_finite() && f.intercept.is_finite()).then_some((f.intercept, f.slope)),
            band,
        }
    }
}

/// Largest absolute coordinate a chart draws.
pub const MAX_PLOTTED: f64 = 1e15;

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

/// `s` with the HTML special characters (`& < > "`) escaped, for text and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG line chart of `series`, axes labelled, or a note when there is nothing to draw.
///
/// Series are drawn as points, fitted lines with shaded 95% bands, or joined points.
/// Deterministic: the same input gives the same SVG text.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .copied()
                .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
        })
        .collect();
    if points.is_empty() {
        return format!("<p class=\"note\">{}: no data in this run.</p>", esc(title));
    }
    // plotters' axis key points loop (or overflow) on ranges near f64's limits: such figures
    // come from a damaged or hand-edited results file; the tables below still show them.
    if points
        .iter()
        .any(|p| !(p.0.abs() <= MAX_PLOTTED && p.1.abs() <= MAX_PLOTTED))
    {
        return format!(
            "<p class=\"note\">{}: not drawn: a figure is not finite or beyond {MAX_PLOTTED:e} (see the tables).</p>",
            esc(title)
        );
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
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                if !s.band.is_empty() {
                    let outline: Vec<(f64, f64)> = s
                        .band
                        .iter()
                        .map(|&(x, lo, _)| (x, lo))
                        .chain(s.band.iter().rev().map(|&(x, _, hi)| (x, hi)))
                        .collect();
                    chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.18).filled())))?;
                }
                let line: Vec<(f64, f64)> = match (s.fit, s.points.first(), s.points.last()) {
                    (Some((a, b)), Some(first), Some(last)) => {
                        vec![(first.0, a + b * first.0), (last.0, a + b * last.0)]
                    }
                    _ => s.points.clone(),
                };
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            // Upper left: every sweep's curves rise to the right, so that corner is the emptiest.
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
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

/// The series of the fits of `suite` for `metric` over `x`, one per plotted line.
///
/// There is one per (backend, mechanism, fixed axes that vary), named
/// `backend mechanism (model)`.
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
            Series::from_fit(name, f)
        })
        // One series per name: fits that differ only in an axis the name leaves out (e.g. the
        // tasks of a metadata sweep) would draw the same curve again.
        .fold(Vec::new(), |mut acc: Vec<Series>, s| {
            if !acc.iter().any(|a| a.name == s.name) {
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
            // x in "nines", -log10(1 - p): p50 0.3, p90 1, p99 2, p99.9 3, evenly spread.
            let nines = |p: f64| -(1.0 - p / 100.0).log10();
            let pts = vec![
                (nines(50.0), c.p50),
                (nines(90.0), c.p90),
                (nines(99.0), c.p99),
                (nines(99.9), c.p999),
            ];
            out.push(Series::points(
                format!("{backend} {mechanism} N={}", c.params.programs),
                pts,
            ));
        }
    }
    out
}

/// The tag in the `<head>` of every page hookbench writes: a later write may replace the page.
///
/// Both report.html and `compare --html` carry it.
pub const GENERATOR_META: &str = "<meta name=\"generator\" content=\"hookbench\">";

/// Bytes at the start of a file that [`is_hookbench_page`] looks at (the `<head>` is in them).
pub const PAGE_HEAD_BYTES: usize = 4096;

/// Whether `head`, the first [`PAGE_HEAD_BYTES`] of a file, is a page hookbench wrote.
///
/// It is when it holds [`GENERATOR_META`], or the title of a page written before the tag existed.
pub fn is_hookbench_page(head: &str) -> bool {
    head.contains(GENERATOR_META)
        || (head.starts_with("<!DOCTYPE html>")
            && (head.contains("<title>hookbench report</title>") || head.contains("<title>hookbench compare</title>")))
}

/// Renders `report.html`: one self-contained file for reading a run in a browser.
///
/// Inline styles and SVG, no script, no external URL; the verdict table, the environment, the
/// charts and the raw tables.
pub fn render(results: &Results) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>hookbench report</title>\
         <style>body{{font-family:sans-serif;max-width:1300px;margin:1em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left;overflow-wrap:break-word}}th{{white-space:nowrap}}\
         .wide{{overflow-x:auto}}.v{{white-space:nowrap}}\
         .supported{{background:#d9f2d9}}.refuted{{background:#f7d4d4}}.inconclusive{{background:#fff2cc}}\
         .not-run{{color:#777}}.note{{color:#777}}.flagged{{background:#ffe0b3}}.flag{{color:#a40000;font-weight:bold}}\
         td.n{{text-align:right;font-family:monospace;white-space:nowrap}}svg{{display:block;margin:8px 0}}</style></head><body>\n"
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
    if let Some(e) = results.environment.get("emulated").and_then(|v| v.as_str()) {
        let _ = writeln!(
            h,
            "<p class=\"refuted\"><b>Emulated CPU</b>: {}. These timings come from an emulated guest and are not \
             comparable with bare metal; they show that the code paths run, not what they cost.</p>",
            esc(e)
        );
    }
    if let Some(u) = results.environment.get("uml").filter(|u| u.is_object()) {
        let field = |k: &str| u.get(k).and_then(|v| v.as_str()).unwrap_or("unknown");
        let _ = writeln!(
            h,
            "<p><b>User-Mode Linux</b> {} (BPF bodies {}): the kernel runs natively on one host CPU, so the \
             kmod backend's in-kernel loop cells compare with bare metal's (the -builtin cells best: no BPF); \
             syscalls are trapped by the host's ptrace, so userspace-timed figures do not.</p>",
            esc(field("release")),
            esc(field("bpf_bodies"))
        );
    }
    let _ = writeln!(
        h,
        "<h2 id=\"summary\">Summary: verdicts</h2><table><tr><th>claim</th><th>backend</th><th>verdict</th>\
         <th>evidence</th><th>fits compared</th><th>margin</th></tr>"
    );
    for c in &results.claims {
        let class = c.verdict.as_str();
        let compared: Vec<String> = c
            .compared
            .iter()
            .map(|f| {
                esc(&format!(
                    "{}/{}/{} (body {}, over {})",
                    f.suite, f.backend, f.mechanism, f.body, f.x
                ))
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}: {}</td><td>{}</td><td class=\"v\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            c.id,
            esc(&c.hypothesis),
            esc(&c.backend),
            class,
            esc(&c.evidence),
            compared.join("<br>"),
            c.margin.map(|m| format!("&plusmn;{}", fmt_num(Some(m)))).unwrap_or_default()
        );
    }
    let _ = writeln!(h, "</table>");
    if results.claims.iter().all(|c| c.verdict == Verdict::NotRun) {
        let _ = writeln!(h, "<p class=\"note\">No claim could be evaluated from this run.</p>");
    }
    let _ = writeln!(h, "<h2 id=\"environment\">Environment</h2><table>");
    let _ = writeln!(
        h,
        "<tr><th>order_seed</th><td>{} (sweep points measured in a shuffled order, each cell's repetitions \
         alternating with its baseline's)</td></tr>",
        results.order_seed
    );
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
            "ns per hook",
        ),
        (
            "programs",
            "hook_latency_ns",
            "programs",
            "Hook latency against programs on the hook",
            "programs",
            "ns per hook",
        ),
        (
            "cgroup-handles",
            "hook_latency_ns",
            "handles",
            "Global filters: latency against cgroup handles",
            "handles",
            "ns per hook",
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
            "ns per hook",
        ),
        (
            "seccomp",
            "hook_latency_ns",
            "programs",
            "seccomp: argument-loading against number-only filters",
            "filters",
            "ns per syscall",
        ),
    ];
    for (suite, metric, x, title, x_label, y_label) in charts {
        let _ = writeln!(h, "<h2 id=\"{suite}\">{}</h2>", esc(title));
        if let Some(info) = results.suites.iter().find(|s| s.name == suite) {
            let _ = writeln!(h, "<p>{}</p>", esc(&info.hypothesis));
        }
        // One chart per backend: a kernel's microseconds would flatten a model's nanoseconds.
        let series = fit_series(results, suite, metric, x);
        let mut backends: Vec<&str> = results
            .fits
            .iter()
            .filter(|f| f.suite == suite && f.metric == metric && f.x == x)
            .map(|f| f.backend.as_str())
            .collect();
        backends.sort_unstable();
        backends.dedup();
        if backends.is_empty() {
            h.push_str(&line_chart(title, x_label, y_label, &series));
        }
        for backend in backends {
            let prefix = format!("{backend} ");
            let mine: Vec<Series> = series.iter().filter(|s| s.name.starts_with(&prefix)).cloned().collect();
            // Fits of each point's overhead over its own baseline plot mean overheads.
            let overhead = results
                .fits
                .iter()
                .filter(|f| f.suite == suite && f.metric == metric && f.x == x && f.backend == backend)
                .all(|f| f.y == "overhead");
            let y = if overhead {
                format!("{y_label} over baseline (mean)")
            } else {
                y_label.to_string()
            };
            h.push_str(&line_chart(&format!("{title} ({backend})"), x_label, &y, &mine));
            h.push('\n');
        }
    }
    let _ = writeln!(h, "<h2 id=\"percentiles\">Latency percentiles per model</h2>");
    h.push_str(&line_chart(
        "Percentiles at the most programs (programs suite)",
        "percentile as nines (0.3 = p50, 1 = p90, 2 = p99, 3 = p99.9)",
        "ns per hook",
        &percentile_series(results, "programs"),
    ));
    fits_table(&mut h, results);
    decompositions_table(&mut h, results);
    drift_table(&mut h, results);
    cells_table(&mut h, results);
    let _ = writeln!(h, "</body></html>");
    h
}

/// `[lo, hi]` of an interval.
fn ci(v: [f64; 2]) -> String {
    format!("[{}, {}]", fmt_num(Some(v[0])), fmt_num(Some(v[1])))
}

/// The fits table: slope with its CI, entry cost, and whether the line holds.
///
/// Where the line does not hold, the marginal cost per segment follows.
fn fits_table(h: &mut String, results: &Results) {
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
fn decompositions_table(h: &mut String, results: &Results) {
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
fn drift_table(h: &mut String, results: &Results) {
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
fn cells_table(h: &mut String, results: &Results) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_series_and_an_empty_one_says_so() {
        let svg = line_chart(
            "Hook latency",
            "programs",
            "ns",
            &[Series::points(
                "model chain-walk (task-chain)",
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
                &[Series::points(
                    "model chain-walk (task-chain)",
                    vec![(0.0, 1.0), (8.0, 9.0), (16.0, 17.0)]
                )]
            )
        );
        let empty = line_chart("Nothing <here>", "x", "y", &[]);
        assert!(!empty.contains("<svg") && empty.contains("Nothing &lt;here&gt;: no data"));
    }

    #[test]
    fn a_fit_band_is_narrowest_at_the_mean_x_and_holds_the_line() {
        let fit: Fit = serde_json::from_value(serde_json::json!({
            "suite": "programs", "backend": "model", "model": "task-chain", "mechanism": "chain-walk",
            "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs", "fixed": {}, "n": 300,
            "slope": 2.0, "slope_ci95": [1.5, 2.5], "intercept": 10.0, "r2": 0.9,
            "points": [[0.0, 10.0], [10.0, 30.0], [20.0, 50.0]]}))
        .expect("hand-made fit");
        let s = Series::from_fit("chain", &fit);
        assert_eq!(s.fit, Some((10.0, 2.0)));
        let width = |x: f64| {
            let &(_, lo, hi) = s.band.iter().find(|b| (b.0 - x).abs() < 1e-9).expect("band point");
            assert!(
                lo <= 10.0 + 2.0 * x && 10.0 + 2.0 * x <= hi,
                "band holds the line at {x}"
            );
            hi - lo
        };
        // var_x = 200/3 over {0, 10, 20}; at the mean x the half-width is 0.5 * sqrt(var_x).
        assert!((width(10.0) - 2.0 * 0.5 * (200.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!(width(0.0) > width(10.0) && width(20.0) > width(10.0));
        let svg = line_chart("t", "x", "y", &[s]);
        assert!(svg.contains("<polygon"), "the band is drawn");
        // A figure near f64's limits is not drawn (plotters' axis loop would not end).
        let huge = line_chart("t", "x", "y", &[Series::points("s", vec![(0.0, 1.0), (1.0, 1e308)])]);
        assert!(huge.contains("not drawn") && !huge.contains("<svg"), "{huge}");
        let nan = line_chart("t", "x", "y", &[Series::points("s", vec![(0.0, f64::NAN)])]);
        assert!(nan.contains("not drawn"), "{nan}");
    }
}
