//! The merged set as text: runs, verdict matrix, slopes and differences in 72 ASCII columns.

use super::*;
use crate::evidence::{fmt_num, wrap};

/// One-letter verdict for the text matrix.
fn verdict_letter(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Supported) => "S",
        Some(Verdict::Refuted) => "R",
        Some(Verdict::Inconclusive) => "I",
        Some(Verdict::NotRun) => "-",
        None => ".",
    }
}

/// `s` cut to `n` characters (with `...` when cut), for fixed-width columns.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let head: String = s.chars().take(n.saturating_sub(3)).collect();
        format!("{head}...")
    }
}

/// Renders the merged evidence text: runs, verdict matrix, slopes and differences, warnings.
///
/// Slopes are listed per claim and host class with the differences between kernels (`*` beyond
/// their 95% CI).
/// At most 72 ASCII columns (prose is wrapped as evidence.txt's is, tables are built to fit);
/// every incomplete, emulated or UML run is said beside it and in the warnings.
pub fn render_evidence(m: &Merged) -> String {
    let mut lines: Vec<String> = Vec::new();
    let prose = |lines: &mut Vec<String>, s: String| lines.extend(wrap(&s));
    prose(
        &mut lines,
        format!(
            "hookbench merge: {} run(s), {} host class(es), merged by hookbench {}",
            m.runs.len(),
            m.groups.len(),
            m.merged_by
        ),
    );
    lines.push(String::new());
    lines.push("host classes (runs are compared only within one):".to_string());
    for (i, g) in m.groups.iter().enumerate() {
        prose(
            &mut lines,
            format!("  {} {}: {}", class_letter(i), g.host_class.label(), g.runs.join(" ")),
        );
    }
    lines.push(String::new());
    lines.push("runs:".to_string());
    for r in &m.runs {
        let class = m.groups.iter().position(|g| g.host_class == r.host_class).unwrap_or(0);
        prose(
            &mut lines,
            format!(
                "  {} {} {} {} {}{} host {} hookbench {}{}",
                r.label,
                class_letter(class),
                r.kernel_release,
                r.profile,
                if r.complete { "complete" } else { "INCOMPLETE" },
                match r.host_class.execution {
                    Execution::Emulated => " EMULATED(TCG)",
                    Execution::Uml => " UML",
                    _ => "",
                },
                r.hostname,
                r.hookbench_version,
                r.commit.as_deref().map(|c| format!(" commit {c}")).unwrap_or_default()
            ),
        );
    }
    lines.push(String::new());
    lines.push("verdicts (S supported, R refuted, I inconclusive, - not run,".to_string());
    lines.push("          . absent):".to_string());
    const PER_BLOCK: usize = 11;
    for (b, block) in m.runs.chunks(PER_BLOCK).enumerate() {
        let mut head = format!("  {:<14}", "claim backend");
        for r in block {
            head.push_str(&format!(" {:>4}", cut(&r.label, 4)));
        }
        lines.push(head);
        for row in &m.matrix {
            let mut line = format!("  {:<14}", cut(&format!("{} {}", row.claim, row.backend), 14));
            let from = b * PER_BLOCK;
            for v in row.verdicts.iter().skip(from).take(block.len()) {
                line.push_str(&format!(" {:>4}", verdict_letter(*v)));
            }
            lines.push(line);
        }
    }
    let beyond = m.differences.iter().filter(|d| d.exceeds_ci).count();
    lines.push(String::new());
    prose(
        &mut lines,
        format!(
            "slopes per unit of x [95% CI], by claim and host class; {} of {} differences between \
             kernels of one class are beyond their CI (*):",
            beyond,
            m.differences.len()
        ),
    );
    let claims: BTreeSet<u32> = m.slopes.iter().map(|s| s.claim).collect();
    for claim in claims {
        for (gi, g) in m.groups.iter().enumerate() {
            let slopes = m.slopes_of(claim, g);
            if slopes.is_empty() {
                continue;
            }
            lines.push(format!("claim {claim}, class {}:", class_letter(gi)));
            let names: BTreeSet<String> = slopes.iter().map(|s| s.series()).collect();
            for name in names {
                prose(&mut lines, format!("  {name}:"));
                for s in slopes.iter().filter(|s| s.series() == name) {
                    let kernel = m
                        .runs
                        .iter()
                        .find(|r| r.label == s.run)
                        .map(|r| r.kernel_release.as_str())
                        .unwrap_or("?");
                    lines.push(format!(
                        "    {:<4} {:<24} {}",
                        cut(&s.run, 4),
                        cut(kernel, 24),
                        cut(&interval(s.slope, s.slope_ci95), 36)
                    ));
                }
                for d in m
                    .differences
                    .iter()
                    .filter(|d| d.claim == claim && d.host_class == g.host_class && d.series == name)
                {
                    lines.push(format!(
                        "  {} {:<4}-> {:<4} {:<18} {}",
                        if d.exceeds_ci { "*" } else { " " },
                        cut(&d.from_run, 4),
                        cut(&d.to_run, 4),
                        "difference",
                        cut(&interval(d.diff, d.diff_ci95), 36)
                    ));
                }
            }
        }
    }
    if !m.warnings.is_empty() {
        lines.push(String::new());
        lines.push("warnings:".to_string());
        for w in &m.warnings {
            prose(&mut lines, format!("  - {w}"));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    // Host and CPU names are the runs' own: keep the text ASCII for mail.
    out.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect()
}

/// `+1.23 [0.98, 1.48]`: a signed figure and its interval.
fn interval(v: f64, ci: [f64; 2]) -> String {
    format!("{} [{}, {}]", signed(v), fmt_num(Some(ci[0])), fmt_num(Some(ci[1])))
}

/// `A`, `B`, ... naming host classes in the text.
fn class_letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// A figure with its sign.
pub(super) fn signed(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format!("+{}", fmt_num(Some(v)))
    } else {
        fmt_num(Some(v))
    }
}
