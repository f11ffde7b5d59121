//! The comparison as text, a robot-style mail, markdown for a CI summary, and an HTML page.

use super::*;

/// How the comparison was judged, one line for every rendering.
pub fn method_line(c: &Comparison) -> String {
    let runs = format!("{} BASE run(s), {} NEW run(s)", c.base_runs.len(), c.new_runs.len());
    match (c.test, c.critical_z) {
        (Test::RangeSeparation, _) => format!(
            "{runs}; figures: overhead over each run's own interleaved baseline (raw median without one), \
             relative to BASE's raw median; test: range separation of the runs' trimmed min/median/max \
             (lkp-tests), noise: the wider side's range; threshold {:.1}%",
            c.threshold_pct
        ),
        (Test::ZTest, z) => {
            let [zc, zg] = z.unwrap_or([f64::NAN; 2]);
            format!(
                "{runs}; figures: overhead over each run's own interleaved baseline (raw median without one), \
                 relative to BASE's raw median; test: z on each run's interval plus the between-run noise, \
                 family-wise {:.0}% (critical z {zc:.2} per cell, {zg:.2} per mechanism); noise: critical z x \
                 standard error; threshold {:.1}%",
                100.0 * ALPHA,
                c.threshold_pct
            )
        }
    }
}

/// The between-run noise per backend, e.g. `model 1.9% (repeated baselines 1.5%, spread 1.9%)`.
pub fn noise_line(c: &Comparison) -> Option<String> {
    if c.noise.is_empty() {
        return None;
    }
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "none".to_string());
    Some(format!(
        "between-run noise (1 sd): {}",
        c.noise
            .iter()
            .map(|n| format!(
                "{} repeated baselines {}, spread of this pair's changes {}",
                n.backend,
                pct(n.drift_pct),
                pct(n.spread_pct)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// The verdict counts: regressions, improvements and noisy cells, and the mechanisms'.
fn verdict_counts(c: &Comparison) -> String {
    format!(
        "{} regression(s), {} improvement(s), {} noisy, {} unchanged; mechanisms: {} regressed, {} improved, \
         {} noisy of {}",
        c.count(Outcome::Regressed),
        c.count(Outcome::Improved),
        c.count(Outcome::Noisy),
        c.count(Outcome::Unchanged),
        c.groups_with(Outcome::Regressed).count(),
        c.groups_with(Outcome::Improved).count(),
        c.groups_with(Outcome::Noisy).count(),
        c.groups.len()
    )
}

/// A percentage with its sign, or `-` when it is not a number.
fn pct_signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.1}%")
    } else {
        "-".to_string()
    }
}

/// A noise as `±x%` (`sign` chosen by the rendering), or `-` when it is not a number.
fn pct_noise(v: f64, sign: &str) -> String {
    if v.is_finite() {
        format!("{sign}{v:.1}%")
    } else {
        "-".to_string()
    }
}

/// A row's figures as every rendering prints them: `[base, new, change, noise]`.
///
/// Base and new in the row's basis, the change signed, the noise after `sign` (`±`, or `+-` in
/// ASCII renderings); a change or noise that is not a number is `-`.
fn row_figures(r: &Row, sign: &str) -> [String; 4] {
    [
        r.basis.figure(r.base),
        r.basis.figure(r.new),
        pct_signed(r.change_pct),
        pct_noise(r.noise_pct, sign),
    ]
}

/// The headline of a comparison: what it found, for a subject line or a summary heading.
pub fn headline(c: &Comparison) -> String {
    let worst_group = c
        .groups_with(c.verdict)
        .max_by(|a, b| a.change_pct.abs().total_cmp(&b.change_pct.abs()));
    let worst_row = c
        .rows
        .iter()
        .filter(|r| r.outcome == c.verdict)
        .max_by(|a, b| a.change_pct.abs().total_cmp(&b.change_pct.abs()));
    let what = match (worst_group, worst_row) {
        (Some(g), _) => format!(
            "{} {} (noise {})",
            g.name,
            pct_signed(g.change_pct),
            pct_noise(g.noise_pct, "+-")
        ),
        (None, Some(r)) => format!(
            "{} {} (noise {})",
            r.id,
            pct_signed(r.change_pct),
            pct_noise(r.noise_pct, "+-")
        ),
        _ => String::new(),
    };
    match c.verdict {
        Outcome::Regressed => format!("regression: {what}"),
        Outcome::Improved => format!("improvement: {what}"),
        Outcome::Noisy => format!(
            "too noisy to decide at {:.1}%: {} of {} mechanisms and {} of {} cells noisy",
            c.threshold_pct,
            c.groups_with(Outcome::Noisy).count(),
            c.groups.len(),
            c.count(Outcome::Noisy),
            c.rows.len()
        ),
        Outcome::Unchanged => format!(
            "no change beyond {:.1}% in {} cells of {} mechanisms",
            c.threshold_pct,
            c.rows.len(),
            c.groups.len()
        ),
    }
}

/// The comparison as text: a head, one row per matched cell, the mechanisms, a summary line.
///
/// A row reads `base ±noise %change mark new outcome cell (unit, basis)`, the mark `**` for a
/// regression, `++` for an improvement, `~` for noisy (with the validity flags after the row).
pub fn render_text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "hookbench compare: {}", headline(c));
    let _ = writeln!(s, "host: {}", c.host);
    if let Some(why) = &c.host_mismatch {
        let _ = writeln!(s, "host classes differ (allowed): {why}");
    }
    let _ = writeln!(s, "{}", method_line(c));
    if let Some(n) = noise_line(c) {
        let _ = writeln!(s, "{n}");
    }
    let _ = writeln!(
        s,
        "{:>12} {:>8} {:>9}    {:>12}  {:<9}  cell (unit, basis)",
        "base", "±noise", "%change", "new", "outcome"
    );
    for r in &c.rows {
        let flags = flags_note(r, " flagged: ", "");
        let [base, new, change, noise] = row_figures(r, "±");
        let (mark, outcome, basis) = (r.outcome.mark(), r.outcome.as_str(), r.basis.as_str());
        let _ = writeln!(
            s,
            "{base:>12} {noise:>8} {change:>9} {mark:<3}{new:>12}  {outcome:<9}  {} ({}, {basis}){flags}",
            r.id, r.unit
        );
    }
    let _ = writeln!(s, "mechanisms (cells pooled):");
    for g in &c.groups {
        let _ = writeln!(
            s,
            "{:>5} cells {:>9} {:>8} {:<3}{:<9}  {}",
            g.cells,
            pct_signed(g.change_pct),
            pct_noise(g.noise_pct, "±"),
            g.outcome.mark(),
            g.outcome.as_str(),
            g.name
        );
    }
    let _ = writeln!(
        s,
        "{} cells compared, {} unmatched; threshold {:.1}%; {}; verdict: {}",
        c.rows.len(),
        c.unmatched,
        c.threshold_pct,
        verdict_counts(c),
        c.verdict.as_str()
    );
    s
}

/// The kernels of a side's runs, deduplicated: `6.1.0-18-amd64` or `6.1.0, 6.12.0`.
fn kernels(runs: &[RunInfo]) -> String {
    let mut k: Vec<&str> = runs.iter().map(|r| r.kernel.as_str()).collect();
    k.dedup();
    k.join(", ")
}

/// The cells and mechanisms a report lists: everything but the unchanged.
fn notable(c: &Comparison) -> (Vec<&Group>, Vec<&Row>) {
    let groups = c.groups.iter().filter(|g| g.outcome != Outcome::Unchanged).collect();
    let mut rows: Vec<&Row> = c.rows.iter().filter(|r| r.outcome != Outcome::Unchanged).collect();
    rows.sort_by(|a, b| {
        a.outcome
            .cmp(&b.outcome)
            .then(b.change_pct.abs().total_cmp(&a.change_pct.abs()))
    });
    (groups, rows)
}

/// Most cells a mail or markdown report lists one by one.
pub const MAX_LISTED_CELLS: usize = 40;

/// The comparison as a regression report in the kernel test robot's manner, for a mail.
///
/// A `Subject:` line, what changed by how much with its noise, the machine, the parameters and
/// how to reproduce; ASCII, cell ids on lines of their own.
pub fn render_mail(c: &Comparison) -> String {
    let mut s = String::new();
    let subject = match c.verdict {
        Outcome::Regressed | Outcome::Improved => headline(c),
        _ => format!("{}: {}", c.verdict.as_str(), headline(c)),
    };
    let _ = writeln!(s, "Subject: [hookbench] {subject}\n");
    let _ = writeln!(s, "Hello,\n");
    let _ = writeln!(
        s,
        "hookbench compared {} NEW run(s) against {} BASE run(s) on one host class;\n\
         verdict: {}.\n",
        c.new_runs.len(),
        c.base_runs.len(),
        c.verdict.as_str().to_uppercase()
    );
    let (groups, rows) = notable(c);
    if groups.is_empty() && rows.is_empty() {
        let _ = writeln!(s, "No mechanism or cell changed beyond {:.1}%.\n", c.threshold_pct);
    }
    if !groups.is_empty() {
        let _ = writeln!(
            s,
            "mechanisms (change of the pooled cells, relative to BASE's raw median):"
        );
        let _ = writeln!(
            s,
            "  {:<10} {:>8} {:>8} {:>5}  mechanism",
            "outcome", "change", "noise", "cells"
        );
        for g in &groups {
            let _ = writeln!(
                s,
                "  {:<10} {:>8} {:>8} {:>5}  {}",
                g.outcome.as_str(),
                pct_signed(g.change_pct),
                pct_noise(g.noise_pct, "+-"),
                g.cells,
                g.name
            );
        }
        s.push('\n');
    }
    if !rows.is_empty() {
        let _ = writeln!(s, "cells (base -> new in their unit, change, noise):");
        for r in rows.iter().take(MAX_LISTED_CELLS) {
            let flags = flags_note(r, " [", "]");
            let [base, new, change, noise] = row_figures(r, "+-");
            let (outcome, basis) = (r.outcome.as_str(), r.basis.as_str());
            let _ = writeln!(
                s,
                "  {outcome:<10} {change:>8} {noise:>8}  {base} -> {new} {} {basis}{flags}\n    {}",
                r.unit, r.id
            );
        }
        if rows.len() > MAX_LISTED_CELLS {
            let _ = writeln!(
                s,
                "  ... and {} more (hookbench compare --json)",
                rows.len() - MAX_LISTED_CELLS
            );
        }
        s.push('\n');
    }
    let b = &c.base_runs[0];
    let _ = writeln!(s, "machine:    {} (host {})", c.host, b.hostname);
    if let Some(why) = &c.host_mismatch {
        let _ = writeln!(s, "            host classes differ (allowed): {why}");
    }
    let _ = writeln!(
        s,
        "kernel:     BASE {}; NEW {}",
        kernels(&c.base_runs),
        kernels(&c.new_runs)
    );
    let seeds = |runs: &[RunInfo]| {
        runs.iter()
            .map(|r| r.order_seed.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let _ = writeln!(
        s,
        "parameters: profile {}; hookbench {}; seeds BASE {} NEW {}; threshold {:.1}%",
        b.profile,
        b.hookbench_version,
        seeds(&c.base_runs),
        seeds(&c.new_runs),
        c.threshold_pct
    );
    let _ = writeln!(s, "method:     {}", method_line(c));
    if let Some(n) = noise_line(c) {
        let _ = writeln!(s, "noise:      {n}");
    }
    let _ = writeln!(s, "\nTo reproduce:\n");
    let _ = writeln!(s, "  # on the BASE kernel, once per BASE run");
    let _ = writeln!(s, "  {}", b.command);
    let _ = writeln!(s, "  # on the NEW kernel, once per NEW run");
    let _ = writeln!(s, "  {}", c.new_runs[0].command);
    let _ = writeln!(
        s,
        "  hookbench compare {} -- {}",
        c.base_runs
            .iter()
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        c.new_runs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join(" ")
    );
    s.chars().map(|ch| if ch.is_ascii() { ch } else { '?' }).collect()
}

/// `|` and newlines of a markdown table cell escaped.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The comparison as GitHub-flavoured markdown, for `$GITHUB_STEP_SUMMARY`.
///
/// A heading with the verdict, the mechanisms that did not stay unchanged, the cells likewise
/// (folded), and the machine, method and runs.
pub fn render_markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let icon = match c.verdict {
        Outcome::Regressed => ":x:",
        Outcome::Improved => ":rocket:",
        Outcome::Noisy => ":warning:",
        Outcome::Unchanged => ":white_check_mark:",
    };
    let _ = writeln!(s, "### {icon} hookbench compare: {}\n", md(&headline(c)));
    let _ = writeln!(
        s,
        "**{}**: {} cells, {} mechanisms; {}.\n",
        c.verdict.as_str(),
        c.rows.len(),
        c.groups.len(),
        verdict_counts(c)
    );
    let (groups, rows) = notable(c);
    if !groups.is_empty() {
        let _ = writeln!(
            s,
            "| mechanism | cells | change | noise | outcome |\n|---|---:|---:|---:|---|"
        );
        for g in &groups {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} |",
                md(&g.name),
                g.cells,
                pct_signed(g.change_pct),
                pct_noise(g.noise_pct, "±"),
                g.outcome.as_str()
            );
        }
        s.push('\n');
    }
    if !rows.is_empty() {
        let _ = writeln!(s, "<details><summary>{} cell(s) not unchanged</summary>\n", rows.len());
        let _ = writeln!(
            s,
            "| cell | base | new | change | noise | outcome |\n|---|---:|---:|---:|---:|---|"
        );
        for r in rows.iter().take(MAX_LISTED_CELLS) {
            let outcome = format!("{}{}", r.outcome.as_str(), flags_note(r, " (", ")"));
            let [base, new, change, noise] = row_figures(r, "±");
            let _ = writeln!(
                s,
                "| `{}` | {base} {} | {new} | {change} | {noise} | {} |",
                md(&r.id),
                md(&r.unit),
                md(&outcome)
            );
        }
        if rows.len() > MAX_LISTED_CELLS {
            let _ = writeln!(
                s,
                "\n... and {} more (`hookbench compare --json`)",
                rows.len() - MAX_LISTED_CELLS
            );
        }
        let _ = writeln!(s, "\n</details>\n");
    }
    let _ = writeln!(s, "- machine: {}", md(&c.host));
    if let Some(why) = &c.host_mismatch {
        let _ = writeln!(s, "- host classes differ (allowed): {}", md(why));
    }
    let _ = writeln!(
        s,
        "- kernel: BASE `{}`, NEW `{}`",
        md(&kernels(&c.base_runs)),
        md(&kernels(&c.new_runs))
    );
    let _ = writeln!(s, "- method: {}", md(&method_line(c)));
    if let Some(n) = noise_line(c) {
        let _ = writeln!(s, "- {}", md(&n));
    }
    let _ = writeln!(s, "- reproduce: `{}`", md(&c.new_runs[0].command));
    s
}

/// The comparison as one self-contained HTML page (inline styles, no script, no external URL).
///
/// The same columns as [`render_text`], regressed cells shaded red, improved green, noisy
/// orange with their flags; then the mechanisms and the summary.
pub fn render_html(c: &Comparison) -> String {
    use hookbench_reports::html::{esc, GENERATOR_META};
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>hookbench compare</title>\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px}}\
         td.n{{text-align:right;font-family:monospace}}.regressed{{background:#f7d4d4}}\
         .improved{{background:#d9f2d9}}.noisy{{background:#ffe0b3}}</style></head><body>\n<h1>hookbench compare</h1>\n\
         <p><b>{}</b></p>\n<p>base: {}<br>new: {}<br>host: {}</p>\n<p>{}</p>\n",
        esc(&headline(c)),
        esc(&c.base_runs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join(", ")),
        esc(&c.new_runs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join(", ")),
        esc(&c.host),
        esc(&method_line(c))
    );
    if let Some(n) = noise_line(c) {
        let _ = writeln!(h, "<p>{}</p>", esc(&n));
    }
    h.push_str(
        "<table><tr><th>base</th><th>noise</th><th>%change</th><th></th><th>new</th><th>outcome</th><th>cell</th>\
         <th>unit</th><th>basis</th><th>validity</th></tr>\n",
    );
    let class = |o: Outcome| if o == Outcome::Unchanged { "" } else { o.as_str() };
    for r in &c.rows {
        let [base, new, change, noise] = row_figures(r, "±");
        let (mark, outcome, basis) = (r.outcome.mark(), r.outcome.as_str(), r.basis.as_str());
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td class=\"n\">{base}</td><td class=\"n\">{noise}</td><td class=\"n\">{change}</td>\
             <td>{mark}</td><td class=\"n\">{new}</td><td>{outcome}</td><td>{}</td><td>{}</td><td>{basis}</td><td>{}</td></tr>",
            class(r.outcome),
            esc(&r.id),
            esc(&r.unit),
            esc(&r.flags.join(", "))
        );
    }
    h.push_str(
        "</table>\n<h2>Mechanisms</h2>\n<table><tr><th>mechanism</th><th>cells</th><th>%change</th><th>noise</th>\
         <th>outcome</th></tr>\n",
    );
    for g in &c.groups {
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            class(g.outcome),
            esc(&g.name),
            g.cells,
            pct_signed(g.change_pct),
            pct_noise(g.noise_pct, "±"),
            g.outcome.as_str()
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p>{} cells compared, {} unmatched; {}; verdict: {}.</p></body></html>",
        c.rows.len(),
        c.unmatched,
        esc(&verdict_counts(c)),
        c.verdict.as_str()
    );
    h
}

/// A row's validity flags as `{open}flag, flag{close}`, or nothing when it has none.
fn flags_note(r: &Row, open: &str, close: &str) -> String {
    if r.flags.is_empty() {
        String::new()
    } else {
        format!("{open}{}{close}", r.flags.join(", "))
    }
}
