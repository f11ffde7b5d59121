//! Charts of report.html: inline SVG line charts (plotters) of fits and percentiles, per suite.
//!
//! Charts of fits with `y` = "overhead" plot each point's mean overhead over its interleaved
//! baseline; one chart per backend, so a kernel's microseconds do not flatten a model's
//! nanoseconds.

use super::page::esc;
use crate::schema::{Fit, Results};
use plotters::coord::types::RangedCoordf64;
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
pub(crate) const COLORS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

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
    svg_chart(title, x0..x1, y0..y1, |chart| {
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
        Ok(())
    })
}

/// The drawing area of [`svg_chart`]'s charts: numeric x and y.
pub(crate) type SvgChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A 640x360 SVG chart of report pages: caption, axis areas, `draw`'s mesh and series, a legend.
///
/// The legend sits at the upper left: every sweep's curves and every slope chart's bars rise to
/// the right or leave room there, so that corner is the emptiest. An error from plotters gives a
/// note naming `title` instead of the chart.
pub(crate) fn svg_chart(
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut SvgChart<'_, '_>) -> Result<(), Box<dyn std::error::Error>>,
) -> String {
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
                .build_cartesian_2d(x, y)?;
            draw(&mut chart)?;
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

/// What each suite's chart plots: (suite, metric, x, title, x label, y label).
const SUITE_CHARTS: [(&str, &str, &str, &str, &str, &str); 7] = [
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

/// One section per suite with its hypothesis and one chart per backend, then the percentiles.
///
/// Each section's `<h2>` has the suite's name as its id, so a claim can link to its charts.
pub(super) fn suite_charts(h: &mut String, results: &Results) {
    for (suite, metric, x, title, x_label, y_label) in SUITE_CHARTS {
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
