//! evidence.txt on pathological runs: it still fits a reply, and says where what it cut is.

use super::*;
use crate::schema::Results;
use serde_json::{json, Value};

/// A fit of `mechanism` on `backend` over `x`, `slope` +- 0.5, curved when `curved`.
fn fit(backend: &str, mechanism: &str, x: &str, slope: f64, curved: bool) -> Value {
    json!({"suite": "long-suite", "backend": backend, "model": "task-chain", "mechanism": mechanism,
           "metric": "hook_latency_ns", "x": x, "x_axis": "programs", "fixed": {"body": "null"},
           "n": 40, "slope": slope, "slope_ci95": [slope - 0.5, slope + 0.5], "slope_se": 0.25,
           "intercept": 1.0, "r2": 0.9, "y": "overhead", "points": [[1.0, 2.0], [8.0, 9.0]],
           "lack_of_fit": {"f": 9.0, "df_lof": 2.0, "df_pe": 30.0, "p_value": 0.001,
                           "max_rel_dev": 0.2, "worst_x": 1.0, "holds": !curved}})
}

/// A cell of `mechanism` flagged with each of `codes`.
fn cell(i: usize, mechanism: &str, codes: &[String]) -> Value {
    let flags: Vec<Value> = codes
        .iter()
        .map(|c| json!({"code": c, "why": format!("{c} happened {} times during the samples of this cell, which is a long story to tell", i + 3)}))
        .collect();
    json!({"id": format!("long-suite/kernel/{mechanism}/{i}"), "suite": "long-suite", "backend": "kernel",
           "model": "task-chain", "mechanism": mechanism, "metric": "hook_latency_ns", "unit": "ns",
           "params": {"programs": i, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                      "working_set": 1, "cpus": 1, "body": "null"},
           "samples": 100, "mean": 10.0, "stddev": 1.0, "cv": 0.1, "p50": 10.0, "p90": 11.0, "p99": 12.0,
           "p999": 13.0, "max": 14.0, "validity": {"flags": flags}})
}

/// A run of `claims` claims on each of `backends`, each comparing `per_claim` fits.
///
/// Their mechanisms' names are `mechanism_len` characters long; `long` adds a long kernel
/// release, CPU, config and command line, skipped mechanisms and an incomplete run.
fn run(claims: u32, backends: &[&str], per_claim: usize, mechanism_len: usize, long: bool) -> Results {
    let mut fits = Vec::new();
    let mut results = Vec::new();
    let verdicts = ["supported", "refuted", "inconclusive", "not-run"];
    for id in 1..=claims {
        for (b, backend) in backends.iter().enumerate() {
            let verdict = verdicts[(id as usize + b) % verdicts.len()];
            let mut compared = Vec::new();
            let mut numbers = serde_json::Map::new();
            if verdict != "not-run" {
                for k in 0..per_claim {
                    let stem = format!("mech-{id}-{k}-");
                    let mechanism = format!("{stem}{}", "m".repeat(mechanism_len.saturating_sub(stem.len())));
                    let slope = f64::from(id) * 10.0 + k as f64;
                    fits.push(fit(backend, &mechanism, "programs", slope, k % 2 == 0));
                    numbers.insert(format!("f{k}_slope"), json!(slope));
                    compared.push(
                        json!({"suite": "long-suite", "backend": backend, "mechanism": mechanism,
                                         "body": "null", "x": "programs"}),
                    );
                }
            }
            results.push(
                json!({"id": id, "hypothesis": "h", "backend": backend, "verdict": verdict,
                "evidence": format!("not measured on this backend: {}", "a very long reason ".repeat(10)),
                "numbers": numbers, "compared": compared, "margin": 0.75}),
            );
        }
    }
    let codes: Vec<String> = (0..15)
        .map(|i| format!("a-rather-long-validity-flag-code-number-{i}"))
        .collect();
    let cells: Vec<Value> = (0..60)
        .map(|i| {
            cell(
                i,
                "mech-1-0-m",
                &codes[i % codes.len()..(i % codes.len() + 2).min(codes.len())],
            )
        })
        .collect();
    let skipped: Vec<Value> = (0..40)
        .map(|i| json!({"backend": "kernel", "mechanism": format!("m{i}"), "reason": format!("reason {} {}", i % 9, "why ".repeat(30))}))
        .collect();
    let long_text = |s: &str, n: usize| if long { s.repeat(n) } else { s.to_string() };
    let config: Vec<Value> = (0..if long { 40 } else { 3 })
        .map(|i| json!([format!("CONFIG_SOMETHING_RATHER_LONG_{i}"), "y"]))
        .collect();
    let argv: Vec<String> = std::iter::once("hookbench".to_string())
        .chain((0..if long { 60 } else { 2 }).map(|i| format!("--an-option-{i}=a-value-with-a-long-name")))
        .collect();
    serde_json::from_value(json!({
        "schema": crate::SCHEMA, "hookbench_version": "0.1.0", "command_line": argv,
        "started_at": "2026-12-06T04:00:00Z", "finished_at": "2026-12-06T05:00:00Z", "complete": !long,
        "profile": "smoke",
        "suites": [{"name": "long-suite", "claim": 1, "hypothesis": "h", "fit_x": ["programs"]}],
        "environment": {"kernel_release": long_text("6.12.0-rc1-next-20261206-", 8), "machine": "x86_64",
            "cpu_model": long_text("Intel(R) Xeon(R) Platinum 8480+ ", 6), "nr_cpus": 224,
            "kernel_config_options": config, "emulated": if long { json!(long_text("qemu tcg ", 10)) } else { json!(null) },
            "mitigations": [["spectre_v2", long_text("Mitigation: Enhanced / Automatic IBRS; ", 4)],
                            ["spec_store_bypass", "Mitigation: Speculative Store Bypass disabled via prctl"],
                            ["retbleed", "Not affected"]],
            "clock": "tsc", "clock_overhead_ns": 14.6, "privileged": true},
        "cells": cells, "fits": fits, "skipped": if long { json!(skipped) } else { json!([]) },
        "claims": results, "order_seed": 1}))
    .expect("the pathological results parse")
}

/// The text's lines, checked to fit a reply: at most 80 of at most 72 ASCII columns.
fn fitting(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= MAX_LINES, "{} lines:\n{text}", lines.len());
    for l in &lines {
        assert!(l.is_ascii() && l.chars().count() <= MAX_COLUMNS, "bad line '{l}'");
    }
    let header = lines.iter().position(|l| l.is_empty()).expect("a header block");
    assert!(header <= MAX_HEADER_LINES, "{header} header lines:\n{text}");
    assert!(lines.last().is_some_and(|l| l.ends_with(FULL_FILE)), "{text}");
    lines
}

#[test]
fn a_pathological_run_still_fits_a_reply_and_points_to_the_full_file() {
    let r = run(60, &["model", "kernel", "kmod-on-a-long-named-backend"], 6, 48, true);
    let text = render(&r);
    let lines = fitting(&text);
    // The header cut its long lines, and kept what was measured on what first.
    assert!(lines[0].starts_with("hookbench 0.1.0 measured security hook dispatch (claims 1-60)"));
    let kernel = lines
        .iter()
        .find(|l| l.starts_with("kernel: 6.12.0-rc1"))
        .expect("kernel line");
    assert!(kernel.ends_with("..."), "{kernel}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("test machine: 224 x Intel(R)") && l.ends_with("...")));
    assert!(lines.iter().any(|l| l.starts_with("EMULATED (qemu tcg")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("run: INCOMPLETE")), "{text}");
    // The table kept the verdicts of the first claims, and says how many it cut.
    assert!(
        text.contains("\nclaim 1: model REFUTED, kernel INCONCLUSIVE, kmod-on-a-long-named-bac...\n"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("more claims' verdicts: evidence-full.txt")),
        "{text}"
    );
    // Many kinds of warning, counted, and the rest pointed to.
    assert!(text.contains("! a-rather-long-validity-flag-code-number-1: "), "{text}");
    assert!(text.contains("! curved: "), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("more kinds of warning: evidence-full.txt")),
        "{text}"
    );
    // The command is cut to four lines, marked as cut.
    let at = lines.iter().position(|l| *l == "reproduce:").expect("reproduce");
    let command: Vec<&&str> = lines[at + 1..lines.len() - 1].iter().collect();
    assert!(
        command.len() <= 4 && command[0].starts_with("  hookbench --an-option-0="),
        "{command:?}"
    );
    assert!(command.last().is_some_and(|l| l.ends_with("...")), "{command:?}");
    // The full file keeps all of it.
    let full = render_full(&r);
    assert!(full.contains(&r.command_line[60]) && full.lines().count() > 300);
}

#[test]
fn a_table_too_long_in_full_keeps_every_verdict_and_the_deciding_pair() {
    let backends = ["model", "kernel", "kmod"];
    let r = run(7, &backends, 5, 20, false);
    let text = render(&r);
    fitting(&text);
    assert!(
        text.contains("(rows cut to the first two fits; all of them: evidence-full.txt)"),
        "{text}"
    );
    for c in &r.claims {
        let word = match c.verdict {
            Verdict::NotRun => "not-run".to_string(),
            v => v.as_str().to_uppercase(),
        };
        let block = text
            .split(&format!("\nclaim {}: ", c.id))
            .nth(1)
            .and_then(|b| b.split("\nclaim ").next())
            .unwrap_or_else(|| panic!("no claim {}:\n{text}", c.id));
        assert!(block.contains(&format!("  {:<7} {word} ", c.backend)), "{block}");
        // The first two fits' slopes are there, the others' not.
        if let Some(first) = c.compared.first() {
            for (k, shown) in [(0, true), (1, true), (2, false)] {
                let slope = format!("+{} +-0.500", fmt_num(Some(f64::from(c.id) * 10.0 + f64::from(k))));
                let mechanism = format!("mech-{}-{k}-", c.id);
                let row = block.lines().find(|l| l.contains(&mechanism));
                assert_eq!(
                    row.is_some_and(|l| l.contains(&slope)),
                    shown,
                    "{k} of {first:?}:\n{block}"
                );
            }
            assert!(block.contains("m +-0.750"), "{block}");
        }
    }
    // A run that fits keeps every fit of every row.
    let small = run(2, &backends[..2], 3, 20, false);
    let text = render(&small);
    fitting(&text);
    assert!(!text.contains("rows cut") && text.contains("mech-2-2-"), "{text}");
}
