//! The verdicts of report.html: claims x backends, what each claim's figures show, the details.
//!
//! Everything here is read from the run's stored claim results (verdict, numbers, fits compared,
//! margin, evidence) and suite hypotheses; no figure is written in the code.

use super::page::esc;
use crate::claims::Verdict;
use crate::evidence::{fmt_num, fmt_signed};
use crate::schema::{ClaimResult, Fit, Results};
use std::fmt::Write as _;

/// A table cell showing `verdict` in its colour, with `title` (the evidence) as its tooltip.
pub(crate) fn verdict_cell(verdict: Verdict, title: &str) -> String {
    format!(
        "<td class=\"verdict {v}\" title=\"{}\">{v}</td>",
        esc(title),
        v = verdict.as_str()
    )
}

/// The backends of `claims` in the order they first appear (the engine lists them sorted).
fn backends(claims: &[ClaimResult]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in claims {
        if !out.contains(&c.backend.as_str()) {
            out.push(&c.backend);
        }
    }
    out
}

/// The claim ids of `claims`, ascending, each with the hypothesis of its first result.
fn claim_ids(claims: &[ClaimResult]) -> Vec<(u32, &str)> {
    let mut out: Vec<(u32, &str)> = Vec::new();
    for c in claims {
        if !out.iter().any(|(id, _)| *id == c.id) {
            out.push((c.id, &c.hypothesis));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}

/// The verdict matrix: one row per claim (number, hypothesis), one verdict cell per backend.
///
/// The claim number links to what the claim's figures show below it; a backend that has no
/// result for a claim shows `not evaluated`.
pub(crate) fn verdict_matrix(claims: &[ClaimResult]) -> String {
    let backends = backends(claims);
    let mut h = String::from("<table><tr><th>claim</th><th>hypothesis</th>");
    for b in &backends {
        let _ = write!(h, "<th>{}</th>", esc(b));
    }
    h.push_str("</tr>\n");
    for (id, hypothesis) in claim_ids(claims) {
        let _ = write!(
            h,
            "<tr><td><a href=\"#claim-{id}\">{id}</a></td><td>{}</td>",
            esc(hypothesis)
        );
        for b in &backends {
            match claims.iter().find(|c| c.id == id && c.backend == *b) {
                Some(c) => h.push_str(&verdict_cell(c.verdict, &c.evidence)),
                None => h.push_str("<td class=\"note\">not evaluated</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h
}

/// "ns per program", "bytes per cgroup": the unit of a slope of `metric` over `x`.
fn slope_unit(metric: &str, x: &str) -> String {
    let unit = if metric.ends_with("_ns") {
        "ns"
    } else if metric.ends_with("_bytes") {
        "bytes"
    } else {
        metric
    };
    let per = match x {
        "foreign" => "foreign program",
        other => other.strip_suffix('s').unwrap_or(other),
    };
    format!("{unit} per {per}")
}

/// The figures a claim's verdict rests on, as words: each slope it compared, its differences.
///
/// A figure is a name `B` of the claim's `numbers` with `B_ci95_lo` and `B_ci95_hi`: a slope
/// (`B_slope`) that is one of the compared fits' (named by its role, mechanism and unit), or a
/// difference (`B` itself). Compared fits come first, in the claim's order.
fn deciding_figures(results: &Results, c: &ClaimResult) -> Vec<String> {
    let n = &c.numbers;
    let fit_of = |slope: f64| -> Option<(usize, &Fit)> {
        results.fits.iter().find_map(|f| {
            let at = c
                .compared
                .iter()
                .position(|k| k.suite == f.suite && k.mechanism == f.mechanism && k.x == f.x)?;
            (f.backend == c.backend && f.slope.to_bits() == slope.to_bits()).then_some((at, f))
        })
    };
    let mut slopes: Vec<(usize, String)> = Vec::new();
    let mut differences: Vec<String> = Vec::new();
    let mut units: Vec<String> = Vec::new();
    for key in n.keys() {
        let Some(base) = key.strip_suffix("_ci95_lo") else {
            continue;
        };
        let (Some(lo), Some(hi)) = (n.get(key), n.get(&format!("{base}_ci95_hi"))) else {
            continue;
        };
        let interval = format!("[{}, {}]", fmt_num(Some(*lo)), fmt_num(Some(*hi)));
        let role = base.replace('_', " ");
        if let Some(slope) = n.get(&format!("{base}_slope")) {
            if let Some((at, f)) = fit_of(*slope) {
                let u = slope_unit(&f.metric, &f.x);
                slopes.push((
                    at,
                    format!(
                        "{} ({}) {} {interval} {u}",
                        esc(&role),
                        esc(&f.mechanism),
                        fmt_signed(*slope)
                    ),
                ));
                if !units.contains(&u) {
                    units.push(u);
                }
            }
        } else if base.contains("difference") {
            if let Some(v) = n.get(base) {
                differences.push(format!("{} {} {interval}", esc(&role), fmt_signed(*v)));
            }
        }
    }
    slopes.sort_by_key(|(at, _)| *at);
    // Differences and the margin are in the slopes' unit when they share one (claim 5's margin
    // is on bytes per task, its rising side in bytes per cgroup: then no unit is given).
    let unit = match units.as_slice() {
        [one] => one.as_str(),
        _ => "",
    };
    let mut out: Vec<String> = slopes.into_iter().map(|(_, s)| s).collect();
    out.extend(
        differences
            .into_iter()
            .map(|d| format!("{d} {unit}").trim_end().to_string()),
    );
    if let Some(m) = c.margin {
        out.push(
            format!("margin &plusmn;{} {unit}", fmt_num(Some(m)))
                .trim_end()
                .to_string(),
        );
    }
    out
}

/// What a verdict means for its claim, in one sentence.
///
/// It speaks of the margin only when the claim used one. A `not-run` claim says what was
/// missing, up to the first detail (the full text is in the verdict details).
fn meaning(c: &ClaimResult) -> String {
    let with_margin = c.margin.is_some();
    match c.verdict {
        Verdict::Supported if with_margin => "The measured slopes agree with the claim, within the margin.".to_string(),
        Verdict::Supported => "The measured slopes agree with the claim.".to_string(),
        Verdict::Refuted if with_margin => "The measured slopes contradict the claim, beyond the margin.".to_string(),
        Verdict::Refuted => "The measured slopes contradict the claim.".to_string(),
        Verdict::Inconclusive => format!(
            "The intervals are too wide {}to decide; a longer profile (more samples and repetitions) narrows them.",
            if with_margin { "for the margin " } else { "" }
        ),
        Verdict::NotRun => {
            let what = c
                .evidence
                .strip_prefix("not measured on this backend: ")
                .unwrap_or(&c.evidence);
            let what = what.split([';', '(']).next().unwrap_or(what).trim();
            format!("Not measured on this backend: {}.", esc(what))
        }
    }
}

/// "What this shows": per claim and backend, the verdict, its figures and what it means.
///
/// Each claim's heading is its hypothesis, followed by the suite that measures it (a link to
/// its charts).
pub(super) fn what_this_shows(h: &mut String, results: &Results) {
    let _ = writeln!(h, "<h2 id=\"claims\">What this shows</h2>");
    if results.claims.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">No claim was evaluated in this run.</p>");
        return;
    }
    for (id, hypothesis) in claim_ids(&results.claims) {
        let _ = writeln!(h, "<h3 id=\"claim-{id}\">Claim {id}: {}</h3>", esc(hypothesis));
        let suites: Vec<String> = results
            .suites
            .iter()
            .filter(|s| s.claim == Some(id))
            .map(|s| {
                let differs = if s.hypothesis == hypothesis {
                    String::new()
                } else {
                    format!(" (its hypothesis: {})", esc(&s.hypothesis))
                };
                format!("<a href=\"#{0}\">{0}</a>{differs}", esc(&s.name))
            })
            .collect();
        if !suites.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"note\">Measured by the suite {}; its charts are below.</p>",
                suites.join(", ")
            );
        }
        h.push_str("<ul class=\"claims\">");
        for c in results.claims.iter().filter(|c| c.id == id) {
            let figures = deciding_figures(results, c);
            let _ = write!(
                h,
                "<li><span class=\"verdict {v}\">{v}</span> on <b>{}</b>: ",
                esc(&c.backend),
                v = c.verdict.as_str()
            );
            if !figures.is_empty() {
                let _ = write!(h, "{}. ", figures.join("; "));
            }
            let _ = write!(h, "{}</li>", meaning(c));
        }
        h.push_str("</ul>\n");
    }
}

/// Every claim result in full: the evidence sentence, the fits compared and the margin used.
pub(super) fn verdict_details(h: &mut String, results: &Results) {
    let _ = writeln!(
        h,
        "<h2 id=\"verdict-details\">Verdicts in detail</h2><table><tr><th>claim</th><th>backend</th><th>verdict</th>\
         <th>evidence</th><th>fits compared</th><th>margin</th></tr>"
    );
    for c in &results.claims {
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
            "<tr><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            c.id,
            esc(&c.backend),
            verdict_cell(c.verdict, ""),
            esc(&c.evidence),
            compared.join("<br>"),
            c.margin
                .map(|m| format!("&plusmn;{}", fmt_num(Some(m))))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(h, "</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden fixture: a smoke run's results with claims on two backends.
    fn fixture() -> Results {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/results-smoke.json"))
            .expect("fixture");
        serde_json::from_str(&text).expect("fixture parses")
    }

    #[test]
    fn the_matrix_has_a_row_per_claim_and_a_verdict_cell_per_backend() {
        let r = fixture();
        let m = verdict_matrix(&r.claims);
        let backends = backends(&r.claims);
        assert!(backends.len() >= 2, "{backends:?}");
        for (id, _) in claim_ids(&r.claims) {
            let row = m
                .lines()
                .find(|l| l.starts_with(&format!("<tr><td><a href=\"#claim-{id}\">")))
                .unwrap_or_else(|| panic!("no row for claim {id}: {m}"));
            for (b, c) in backends
                .iter()
                .map(|b| (b, r.claims.iter().find(|c| c.id == id && c.backend == *b)))
            {
                let c = c.unwrap_or_else(|| panic!("claim {id} on {b}"));
                assert!(row.contains(&verdict_cell(c.verdict, &c.evidence)), "{row}");
            }
            assert_eq!(row.matches("<td class=\"verdict ").count(), backends.len(), "{row}");
        }
    }

    #[test]
    fn what_this_shows_quotes_the_stored_slopes_and_the_margin() {
        let r = fixture();
        let mut h = String::new();
        what_this_shows(&mut h, &r);
        for c in r
            .claims
            .iter()
            .filter(|c| c.verdict != Verdict::NotRun && c.margin.is_some())
        {
            let section = h
                .split("<h3 id=\"claim-")
                .find(|s| s.starts_with(&format!("{}\"", c.id)))
                .expect("a section per claim");
            let item = section
                .split("<li>")
                .find(|li| li.contains(&format!("</span> on <b>{}</b>", c.backend)))
                .unwrap_or_else(|| panic!("claim {} on {}: {h}", c.id, c.backend));
            for f in &c.compared {
                let fit = r
                    .fits
                    .iter()
                    .find(|x| x.backend == c.backend && x.mechanism == f.mechanism && x.suite == f.suite)
                    .expect("compared fit");
                if c.numbers.values().any(|v| v.to_bits() == fit.slope.to_bits()) {
                    assert!(item.contains(&format!("({}) ", f.mechanism)), "{item}");
                }
            }
            let m = c.margin.unwrap_or_default();
            assert!(item.contains(&format!("margin &plusmn;{}", fmt_num(Some(m)))), "{item}");
            assert!(item.contains(c.verdict.as_str()), "{item}");
        }
        // A not-run claim says what was missing, without the details after it.
        let not_run = r
            .claims
            .iter()
            .find(|c| c.verdict == Verdict::NotRun)
            .expect("a not-run claim");
        assert!(meaning(not_run).starts_with("Not measured on this backend: "));
        assert!(!meaning(not_run).contains(';'));
    }

    #[test]
    fn a_margin_is_spoken_of_only_where_a_claim_used_one() {
        let r = fixture();
        let mut c = r
            .claims
            .iter()
            .find(|c| c.verdict == Verdict::Supported && c.margin.is_some())
            .expect("a supported claim with a margin")
            .clone();
        assert!(meaning(&c).contains("margin"), "{}", meaning(&c));
        c.margin = None;
        assert!(!meaning(&c).contains("margin"), "{}", meaning(&c));
        assert!(!deciding_figures(&r, &c).iter().any(|f| f.contains("margin")));
        c.verdict = Verdict::Inconclusive;
        assert!(!meaning(&c).contains("margin") && meaning(&c).contains("too wide"));
    }

    #[test]
    fn units_follow_the_metric_and_the_axis() {
        assert_eq!(slope_unit("hook_latency_ns", "programs"), "ns per program");
        assert_eq!(slope_unit("hook_latency_ns", "foreign"), "ns per foreign program");
        assert_eq!(slope_unit("metadata_bytes", "cgroups"), "bytes per cgroup");
        assert_eq!(slope_unit("attach_latency_ns", "descendants"), "ns per descendant");
    }
}
