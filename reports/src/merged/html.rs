//! The merged set as a page: the verdict matrix, one slope chart per claim and host class.

use super::evidence::signed;
use super::*;
use crate::evidence::fmt_num;
use crate::html::{esc, page_end, page_start, svg_chart, COLORS, MAX_PLOTTED};
use plotters::prelude::*;
use std::fmt::Write as _;

/// An SVG chart of slopes over kernels, one x position per run in kernel order.
///
/// A point with its 95% error bar per series and run; the points of a series are joined across
/// kernels.
///
/// `html::line_chart` draws numeric x axes; kernels are categories, so this chart is its own.
pub fn slope_chart(title: &str, y_label: &str, columns: &[String], series: &[(String, Vec<Option<Slope>>)]) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .flat_map(|s| [s.slope, s.slope_ci95[0], s.slope_ci95[1]])
        .collect();
    if values.is_empty() || columns.is_empty() {
        return format!("<p class=\"note\">{}: no slopes in these runs.</p>", esc(title));
    }
    if values.iter().any(|v| !v.is_finite() || v.abs() > MAX_PLOTTED) {
        return format!(
            "<p class=\"note\">{}: not drawn: a slope is not finite or beyond {MAX_PLOTTED:e} (see the tables).</p>",
            esc(title)
        );
    }
    let (mut y0, mut y1) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    y0 = y0.min(0.0);
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    // Room above the highest bar for the legend (upper left), one line per series.
    let span = y1 - y0;
    (y0, y1) = (y0 - span * 0.08, y1 + span * (0.15 + 0.08 * series.len() as f64));
    let n = columns.len();
    svg_chart(title, -0.5f64..(n as f64 - 0.5), y0..y1, |chart| {
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                columns[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_labels(n.max(2) * 2 + 1)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .x_desc("kernel (runs of one host class)")
            .y_desc(y_label)
            .draw()?;
        let k = series.len().max(1) as f64;
        for (si, (name, points)) in series.iter().enumerate() {
            let color = COLORS[si % COLORS.len()];
            // Series side by side around each kernel's position, so error bars do not overlap.
            let dx = if k > 1.0 {
                (si as f64 / (k - 1.0) - 0.5) * 0.3
            } else {
                0.0
            };
            let line: Vec<(f64, f64)> = points
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i as f64 + dx, s.slope)))
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            for (i, s) in points.iter().enumerate() {
                let Some(s) = s else { continue };
                let x = i as f64 + dx;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, s.slope_ci95[0]), (x, s.slope_ci95[1])],
                    color.stroke_width(2),
                )))?;
                for cap in s.slope_ci95 {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.03, cap), (x + 0.03, cap)],
                        color.stroke_width(2),
                    )))?;
                }
            }
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        Ok(())
    })
}

/// Renders the merged report.html: verdict matrix, slope charts per claim and class, runs.
///
/// The verdict matrix comes first, then per claim and host class a slope chart over kernels with
/// its table and the differences beyond their CIs, then the runs.
///
/// Self-contained (inline SVG and style); the page shell and style are report.html's.
pub fn render_html(m: &Merged) -> String {
    let mut h = page_start(&format!("hookbench merged report: {} runs", m.runs.len()));
    let _ = writeln!(
        h,
        "<h1>hookbench: {} runs merged, {} host class(es)</h1>",
        m.runs.len(),
        m.groups.len()
    );
    h.push_str(
        "<p>Each column is one run; runs are grouped by host class (architecture, CPU model and count, \
         and whether the CPU was native, virtualized, emulated or UML) and ordered by kernel. Slopes are \
         compared only within a host class.</p>\n",
    );
    if !m.warnings.is_empty() {
        h.push_str("<ul class=\"warn\">");
        for w in &m.warnings {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2 id=\"summary\">Verdicts: claims x (host class, kernel)</h2>\n");
    matrix_table(&mut h, m);
    claim_sections(&mut h, m);
    runs_table(&mut h, m);
    h.push_str(page_end());
    h
}

/// The column headings of a run: its kernel and its flags, as HTML.
fn run_heading_html(r: &MergedRun) -> String {
    let mut s = format!("{}<br>{}", esc(&r.label), esc(&r.kernel_release));
    match r.host_class.execution {
        Execution::Emulated => s.push_str("<br><span class=\"emulated\">emulated (TCG)</span>"),
        Execution::Uml => s.push_str("<br><span class=\"uml\">uml</span>"),
        _ => {}
    }
    if !r.complete {
        s.push_str("<br><span class=\"incomplete\">INCOMPLETE</span>");
    }
    s
}

fn matrix_table(h: &mut String, m: &Merged) {
    h.push_str("<table id=\"matrix\"><tr><th rowspan=\"2\">claim</th><th rowspan=\"2\">backend</th>");
    for g in &m.groups {
        let _ = write!(
            h,
            "<th colspan=\"{}\">{}</th>",
            g.runs.len(),
            esc(&g.host_class.label())
        );
    }
    h.push_str("</tr><tr>");
    for r in &m.runs {
        let _ = write!(h, "<th>{}</th>", run_heading_html(r));
    }
    h.push_str("</tr>\n");
    for row in &m.matrix {
        let _ = write!(
            h,
            "<tr class=\"claim\"><td title=\"{}\">{}</td><td>{}</td>",
            esc(&row.hypothesis),
            row.claim,
            esc(&row.backend)
        );
        for v in &row.verdicts {
            let (class, text) = match v {
                Some(v) => (v.as_str(), v.as_str()),
                None => ("absent", "absent"),
            };
            let _ = write!(h, "<td class=\"{class}\">{text}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn claim_sections(h: &mut String, m: &Merged) {
    let claims: BTreeSet<u32> = m.slopes.iter().map(|s| s.claim).collect();
    for claim in claims {
        let hypothesis = m
            .matrix
            .iter()
            .find(|r| r.claim == claim)
            .map(|r| r.hypothesis.as_str())
            .unwrap_or("");
        let _ = writeln!(
            h,
            "<h2 id=\"claim-{claim}\">Claim {claim}</h2><p>{}</p>",
            esc(hypothesis)
        );
        for g in &m.groups {
            let runs: Vec<&MergedRun> = m.runs.iter().filter(|r| g.runs.contains(&r.label)).collect();
            let slopes = m.slopes_of(claim, g);
            if slopes.is_empty() {
                continue;
            }
            let names: BTreeSet<String> = slopes.iter().map(|s| s.series()).collect();
            let series: Vec<(String, Vec<Option<Slope>>)> = names
                .iter()
                .map(|n| {
                    let per_run = runs
                        .iter()
                        .map(|r| {
                            slopes
                                .iter()
                                .find(|s| &s.series() == n && s.run == r.label)
                                .map(|s| (*s).clone())
                        })
                        .collect();
                    (n.clone(), per_run)
                })
                .collect();
            let columns: Vec<String> = runs
                .iter()
                .map(|r| format!("{} {}", r.label, r.kernel_release))
                .collect();
            let metric = slopes.first().map(|s| s.metric.as_str()).unwrap_or("");
            let _ = writeln!(h, "<h3>{}</h3>", esc(&g.host_class.label()));
            h.push_str(&slope_chart(
                &format!(
                    "Claim {claim}: slopes across kernels ({})",
                    g.host_class.execution.as_str()
                ),
                &format!("{metric} per unit of x"),
                &columns,
                &series,
            ));
            h.push_str("\n<table><tr><th>series</th>");
            for r in &runs {
                let _ = write!(h, "<th>{}</th>", run_heading_html(r));
            }
            h.push_str("</tr>\n");
            for (name, per_run) in &series {
                let _ = write!(h, "<tr><td>{}</td>", esc(name));
                for s in per_run {
                    match s {
                        Some(s) => {
                            let _ = write!(
                                h,
                                "<td>{} [{}, {}]</td>",
                                signed(s.slope),
                                fmt_num(Some(s.slope_ci95[0])),
                                fmt_num(Some(s.slope_ci95[1]))
                            );
                        }
                        None => h.push_str("<td class=\"absent\">absent</td>"),
                    }
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
            let diffs: Vec<&Difference> = m
                .differences
                .iter()
                .filter(|d| d.claim == claim && d.host_class == g.host_class)
                .collect();
            if diffs.is_empty() {
                h.push_str("<p class=\"note\">One kernel in this host class: no differences between kernels.</p>\n");
                continue;
            }
            h.push_str(
                "<table class=\"differences\"><tr><th>series</th><th>from</th><th>to</th><th>difference [95% CI]</th>\
                 <th>beyond CI</th></tr>\n",
            );
            for d in diffs {
                let _ = writeln!(
                    h,
                    "<tr{}><td>{}</td><td>{} {}</td><td>{} {}</td><td>{} [{}, {}]</td><td>{}</td></tr>",
                    if d.exceeds_ci { " class=\"beyond\"" } else { "" },
                    esc(&d.series),
                    esc(&d.from_run),
                    esc(&d.from_kernel),
                    esc(&d.to_run),
                    esc(&d.to_kernel),
                    signed(d.diff),
                    fmt_num(Some(d.diff_ci95[0])),
                    fmt_num(Some(d.diff_ci95[1])),
                    if d.exceeds_ci { "yes" } else { "no" }
                );
            }
            h.push_str("</table>\n");
        }
    }
}

fn runs_table(h: &mut String, m: &Merged) {
    h.push_str(
        "<h2 id=\"runs\">Runs</h2><table><tr><th>run</th><th>kernel</th><th>host class</th><th>host</th>\
         <th>hookbench</th><th>commit</th><th>profile</th><th>complete</th><th>started</th><th>source</th></tr>\n",
    );
    for r in &m.runs {
        let _ =
            writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            esc(&r.label),
            esc(&r.kernel_release),
            esc(&r.host_class.label()),
            esc(&r.hostname),
            esc(&r.hookbench_version),
            esc(r.commit.as_deref().unwrap_or("not recorded")),
            esc(&r.profile),
            if r.complete { "yes" } else { "<span class=\"incomplete\">no</span>" },
            esc(&r.started_at),
            esc(&r.source)
        );
    }
    h.push_str("</table>\n");
}
