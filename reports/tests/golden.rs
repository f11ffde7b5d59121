//! Golden-file tests of the renderers over a fixed results file, so any change of output shows.
//!
//! The file is `tests/data/results-smoke.json` (schema 2, both backends): `evidence.txt` and
//! `evidence-full.txt` must match their snapshots byte for byte (`tests/snapshots/`, reviewed with
//! `cargo insta review`). `evidence.txt` must fit a reply (80 lines of 72 ASCII columns, a header
//! of 12) with every claim's verdict on every backend, the slopes it compared and its margin;
//! `evidence-full.txt` must keep every line within 72 ASCII columns, carry the header fields and a
//! verdict line for every claim on every backend, print no negative latency, and show each cell's
//! overhead, flags, decompositions and drift; `report.html` must be self-contained with at least six
//! charts and the same tables.
//!
//! The fixture is synthetic (`cargo run -p hookbench-reports --example synthetic_results`); when
//! it is replaced by a real run's `results.json`, re-accept the snapshot: every other test reads
//! what it checks from the fixture itself.

use hookbench_reports::evidence::{render, render_full, unwrap_lines, MAX_COLUMNS, MAX_HEADER_LINES, MAX_LINES};
use hookbench_reports::schema::Results;
use regex::Regex;
use std::path::Path;

fn fixture() -> Results {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/results-smoke.json");
    Results::read(&path).expect("the fixture is a results file of this schema")
}

/// Every line where `text` prints a latency as a negative number.
///
/// The latencies are percentiles, means, native, entry and drift figures.
fn negative_latencies(text: &str) -> Vec<String> {
    // "p50 -3", "mean -1.2", "entry -33", "native -4", "baseline p50 -2", "p50 -1..4"; overheads
    // ("+23.4 ns [..] over", "mean shift -0.3") and slopes are differences and are not matched.
    let field =
        Regex::new(r"(?:^|[\s(\[,;])(?:p50|p90|p99|p99\.9|p999|max|min|mean|entry|native)\s+-\d").expect("regex");
    let mut found: Vec<String> = unwrap_lines(text).into_iter().filter(|l| field.is_match(l)).collect();
    // The fit tables: the last three columns are entry, p50 and p99 at the largest x.
    let mut in_table = false;
    for l in text.lines() {
        if l.contains("p50@max") {
            in_table = true;
            continue;
        }
        if in_table && l.starts_with("  ") && l.contains("+-") {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.iter().rev().take(3).any(|c| c.starts_with('-')) {
                found.push(l.to_string());
            }
        } else if !l.starts_with("  ") {
            in_table = false;
        }
    }
    found
}

#[test]
fn evidence_matches_the_golden_file() {
    insta::assert_snapshot!("evidence-smoke", render(&fixture()));
}

#[test]
fn evidence_fits_a_reply_with_every_verdict_its_slopes_and_its_margin() {
    let r = fixture();
    let text = render(&r);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= MAX_LINES, "{} lines", lines.len());
    for (i, line) in lines.iter().enumerate() {
        assert!(line.is_ascii(), "line {} is not ASCII: {line}", i + 1);
        assert!(line.chars().count() <= MAX_COLUMNS, "line {} too long: {line}", i + 1);
    }
    // The header is the first block, robot-style: what, on what, with which parameters.
    let header = lines
        .iter()
        .position(|l| l.is_empty())
        .expect("a blank line after the header");
    assert!(header <= MAX_HEADER_LINES, "{header} header lines");
    assert!(lines[0].starts_with("hookbench 0.1.0 measured ") && lines[0].ends_with(" on:"));
    for field in [
        "kernel: 6.18.44-fc-v669 x86_64",
        "test machine: 2 x ",
        "parameters: profile smoke",
    ] {
        assert!(
            lines[..header].iter().any(|l| l.starts_with(field)),
            "header lacks '{field}'"
        );
    }
    assert!(
        text.contains("mitigations: spectre_v2=Retpolines ssb=Vulnerable"),
        "{text}"
    );
    assert!(
        text.contains("\ntest machine: 2 x Intel(R) Xeon(R) Processor, virtualized\n"),
        "{text}"
    );
    // Per claim a heading, per backend a row with the verdict and the slope of each fit compared.
    let fmt = |v: f64| hookbench_reports::evidence::fmt_num(Some(v));
    for c in &r.claims {
        let block = text
            .split(&format!("\nclaim {}: ", c.id))
            .nth(1)
            .unwrap_or_else(|| panic!("no heading for claim {}", c.id))
            .split("\nclaim ")
            .next()
            .unwrap_or("");
        let word = match c.verdict.as_str() {
            "not-run" => "not-run".to_string(),
            v => v.to_uppercase(),
        };
        let head = format!("  {:<7} {word} ", c.backend);
        let at = block
            .lines()
            .position(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("claim {} has no '{head}' row:\n{block}", c.id));
        if c.verdict.as_str() == "not-run" {
            continue;
        }
        let row: Vec<&str> = block.lines().skip(at).take(1 + 2 * c.compared.len()).collect();
        for want in &c.compared {
            let fit = r
                .fits
                .iter()
                .find(|f| want.is_over(f) && c.numbers.values().any(|v| *v == f.slope))
                .unwrap_or_else(|| panic!("claim {} compared {} with no recorded slope", c.id, want.mechanism));
            let half = fmt((fit.slope_ci95[1] - fit.slope_ci95[0]) / 2.0);
            assert!(
                row.iter()
                    .any(|l| l.contains(&format!("{} +-{half}", fmt(fit.slope).trim_start_matches('-')))),
                "claim {} [{}] lacks {} {} +-{half}:\n{}",
                c.id,
                c.backend,
                want.mechanism,
                fmt(fit.slope),
                row.join("\n")
            );
        }
        if let Some(m) = c.margin {
            assert!(
                row.iter().any(|l| l.contains(&format!("m +-{}", fmt(m)))),
                "claim {} [{}] lacks its margin {}:\n{}",
                c.id,
                c.backend,
                fmt(m),
                row.join("\n")
            );
        }
    }
    // The warnings are grouped by kind and counted; the fixture's flagged cells are all there.
    let flagged: std::collections::BTreeSet<&str> = r
        .cells
        .iter()
        .flat_map(|c| c.validity.flags.iter().map(|f| f.code.as_str()))
        .collect();
    for code in flagged {
        let n = r
            .cells
            .iter()
            .filter(|c| c.validity.flags.iter().any(|f| f.code == code))
            .count();
        assert!(
            text.contains(&format!("! {code}: {n} of {} cells", r.cells.len())),
            "no counted '{code}' warning:\n{text}"
        );
    }
    let reproduce = lines.iter().position(|l| *l == "reproduce:").expect("reproduce");
    assert_eq!(
        lines[reproduce + 1],
        "  hookbench run --backend auto --profile smoke --out /tmp/hb"
    );
    assert!(lines.last().is_some_and(|l| l.ends_with("evidence-full.txt")));
}

#[test]
fn evidence_full_matches_the_golden_file() {
    insta::assert_snapshot!("evidence-full-smoke", render_full(&fixture()));
}

#[test]
fn evidence_prints_no_negative_latency() {
    let text = render_full(&fixture());
    let bad = negative_latencies(&text);
    assert!(bad.is_empty(), "negative latencies:\n{}", bad.join("\n"));
    // The scan is not vacuous: it sees the fields, and it catches a planted negative one.
    assert!(text.contains(" p50 ") && text.contains(" mean ") && text.contains("p50@max"));
    for planted in [
        "kernel x hook programs=1: p50 -244.9 p99 12.0 mean 3.0 sd 1.0 ns",
        "  x: native 88.1 ns + entry -33.0 ns + 26.6 ns per program",
        "  cgroup-bpf                  15.80 +-30.14      2.00  -414.0   612.0",
    ] {
        let mut t = text.clone();
        t.push_str("\n[s] kernel hook (ns) vs programs\n  mechanism slope 95%CI entry p50@max p99@max\n");
        t.push_str(planted);
        t.push('\n');
        assert_eq!(negative_latencies(&t).len(), 1, "{planted}");
    }
    // Overheads may be negative: they are differences, printed with their sign.
    let ok = "  -0.300 ns [-0.800, 0.200] over baseline p50 88.10; mean shift -0.1 [-0.5, 0.3]";
    assert!(negative_latencies(ok).is_empty());
}

#[test]
fn evidence_is_narrow_ascii_with_the_header_fields_and_every_verdict() {
    let r = fixture();
    let text = render_full(&r);
    for (i, line) in text.lines().enumerate() {
        assert!(line.is_ascii(), "line {} is not ASCII: {line}", i + 1);
        assert!(line.chars().count() <= MAX_COLUMNS, "line {} too long: {line}", i + 1);
    }
    for field in [
        "kernel: ",
        "config: ",
        "cpu: ",
        "mitigations: ",
        "governor: ",
        "bpf jit: ",
        "clock: ",
        "hookbench: ",
        "order: seed ",
        "command: ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(field)), "header lacks '{field}'");
    }
    assert!(text.contains("config: BPF_LSM=y"), "config options are listed");
    for backend in ["kernel", "model"] {
        for id in 1..=7 {
            let claim = text
                .split(&format!("== claim {id}: "))
                .nth(1)
                .unwrap_or_else(|| panic!("no section for claim {id}"));
            let section = claim.split("\n== ").next().unwrap_or("");
            let verdict = r
                .claims
                .iter()
                .find(|c| c.id == id && c.backend == backend)
                .expect("the fixture has every claim on both backends");
            let expected = format!("verdict [{backend}]: {}:", verdict.verdict.as_str().to_uppercase());
            assert!(section.contains(&expected), "claim {id} lacks '{expected}':\n{section}");
            // Each verdict names the fits it compared (and the margin it used).
            if let Some(first) = verdict.compared.first() {
                let joined = unwrap_lines(section).join("\n");
                let compared = joined
                    .split(&expected)
                    .nth(1)
                    .and_then(|s| s.lines().find(|l| l.starts_with("  compared: ")))
                    .unwrap_or_else(|| panic!("claim {id} [{backend}] names no fit:\n{section}"));
                assert!(
                    compared.contains(&format!("{}/{}", first.suite, first.mechanism)),
                    "{compared}"
                );
                if verdict.margin.is_some() {
                    assert!(compared.contains("margin +-"), "{compared}");
                }
            }
        }
    }
    let reproduce = text.split("== reproduce").nth(1).expect("a reproduce section");
    assert!(
        reproduce.contains("hookbench run --backend auto --profile smoke"),
        "{reproduce}"
    );
}

#[test]
fn claim_tables_show_every_fit_of_the_claims_suites_with_its_slope() {
    let r = fixture();
    let text = render_full(&r);
    let claim1 = text
        .split("== claim 1: ")
        .nth(1)
        .expect("claim 1")
        .split("\n== ")
        .next()
        .unwrap_or("");
    for f in r.fits.iter().filter(|f| f.suite == "foreign") {
        let slope = hookbench_reports::evidence::fmt_num(Some(f.slope));
        assert!(
            claim1
                .lines()
                .any(|l| l.trim_start().starts_with(&f.mechanism) && l.contains(&format!(" {slope} +-"))),
            "claim 1 has no row for {} with slope {slope}:\n{claim1}",
            f.mechanism
        );
    }
    // Every fit says whether its line holds.
    let joined = unwrap_lines(&text).join("\n");
    for f in &r.fits {
        let said = match &f.lack_of_fit {
            Some(l) if l.holds => "line holds".to_string(),
            Some(_) => "curved: worst at x=".to_string(),
            None => "line not tested".to_string(),
        };
        assert!(
            joined
                .lines()
                .any(|l| l.starts_with(&format!("  {}", f.mechanism)) && l.contains(&said)),
            "no '{said}' for {} {}",
            f.backend,
            f.mechanism
        );
    }
    // The seccomp split appears under claim 7 for the kernel's argument-loading filters.
    let claim7 = text.split("== claim 7: ").nth(1).expect("claim 7");
    assert!(claim7.contains("seccomp-arg-load: native"), "{claim7}");
}

#[test]
fn evidence_shows_overheads_flags_decompositions_and_drift_from_the_results() {
    let r = fixture();
    let text = render_full(&r);
    let lines = unwrap_lines(&text);
    let cells_at = lines
        .iter()
        .position(|l| l.starts_with("== cells"))
        .expect("a cells section");
    let cells = &lines[cells_at..];
    for c in &r.cells {
        let fmt = |v: f64| hookbench_reports::evidence::fmt_num(Some(v));
        let head = format!("{} {} ", c.backend, c.mechanism);
        let figures = format!("p50 {} p99 {} mean {} ", fmt(c.p50), fmt(c.p99), fmt(c.mean));
        let i = cells
            .iter()
            .position(|l| l.starts_with(&head) && l.contains(&figures))
            .unwrap_or_else(|| panic!("no line for {} with '{figures}'", c.id));
        let mut next = i + 1;
        if let Some(o) = &c.overhead {
            assert!(
                cells[next].trim_start().starts_with(['+', '-']) && cells[next].contains(" over baseline p50 "),
                "{} lacks its overhead: {}",
                c.id,
                cells[next]
            );
            let sign = if o.p50_ns >= 0.0 { "+" } else { "" };
            assert!(cells[next].contains(&format!(
                "{sign}{}",
                hookbench_reports::evidence::fmt_num(Some(o.p50_ns))
            )));
            next += 1;
        }
        for flag in &c.validity.flags {
            assert!(
                cells[next].starts_with(&format!("  ! {}: ", flag.code)),
                "{} lacks its flag beside it: {}",
                c.id,
                cells[next]
            );
            next += 1;
        }
        if c.percentile_basis == hookbench_reports::schema::PercentileBasis::BatchMeans {
            assert!(cells[i].contains("batch means)"), "{}", cells[i]);
        }
    }
    let decomp = text.split("== decompositions").nth(1).expect("decompositions");
    let decomp = decomp.split("\n== ").next().unwrap_or("");
    for d in &r.decompositions {
        assert!(
            decomp.contains(&format!("{} {} [{}", d.backend, d.mechanism, d.method)),
            "{decomp}"
        );
    }
    let disagreements = r
        .decompositions
        .iter()
        .filter(|d| d.agreement.as_ref().is_some_and(|a| !a.agrees))
        .count();
    assert_eq!(decomp.matches("DISAGREES").count(), disagreements, "{decomp}");
    let drift = text.split("== drift").nth(1).expect("drift");
    let drift = drift.split("\n== ").next().unwrap_or("");
    let warnings = r.drift.iter().filter(|d| d.drift.rel_range > 0.05).count();
    assert_eq!(drift.matches("  ! drift:").count(), warnings, "{drift}");
}

#[test]
fn report_html_is_self_contained_with_six_charts_and_the_tables() {
    let r = fixture();
    let html = hookbench_reports::html::render(&r);
    let charts = html.matches("<svg").count();
    assert!(charts >= 6, "{charts} charts");
    assert!(html.contains("<h2 id=\"summary\">Summary: verdicts</h2><table>"));
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..html.len().min(i + attr.len() + 12)];
            assert!(
                !value.contains("http") && !value.contains("//"),
                "external reference at {i}: {value}"
            );
        }
    }
    assert!(!html.contains("<script"));
    for id in ["fits", "decompositions", "drift", "cells"] {
        assert!(html.contains(&format!("<h2 id=\"{id}\">")), "no {id} section");
    }
    // Flagged cells are highlighted, with their reason.
    for c in r.cells.iter().filter(|c| !c.validity.flags.is_empty()) {
        let row = html
            .lines()
            .find(|l| l.contains(&format!(" title=\"{}\">", hookbench_reports::html::esc(&c.id))))
            .expect("a row per cell");
        assert!(row.starts_with("<tr class=\"flagged\" title="), "{row}");
        assert!(row.contains(&c.validity.flags[0].code), "{row}");
    }
    // Overhead fits are charted as means over the baseline.
    if r.fits.iter().any(|f| f.y == "overhead" && f.suite == "programs") {
        assert!(html.contains("over baseline (mean)"));
    }
    // No raw latency cell of the tables is negative.
    let cell = Regex::new(r#"<td class="n">-\d"#).expect("regex");
    for row in html.lines().filter(|l| l.contains("<td>") && cell.is_match(l)) {
        assert!(
            row.contains(" [") || row.contains("<th>"),
            "a negative figure that is not an interval's estimate: {row}"
        );
    }
}

#[test]
fn an_emulated_guest_is_marked_in_both_renderings() {
    let mut r = fixture();
    assert!(!render_full(&r).contains("emulated:"), "the fixture is not emulated");
    r.environment["emulated"] = serde_json::json!("qemu tcg (hookbench rig guest)");
    assert!(render_full(&r).contains("emulated: qemu tcg (hookbench rig guest) (timings not comparable"));
    assert!(hookbench_reports::html::render(&r).contains("<b>Emulated CPU</b>: qemu tcg"));
    // The mail says it in its header, right under the machine.
    let mail = render(&r);
    assert!(
        mail.contains("Processor, emulated\nEMULATED (qemu tcg (hookbench rig guest)): timings describe"),
        "{mail}"
    );
    assert!(mail.lines().count() <= MAX_LINES);
}
