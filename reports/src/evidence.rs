//! Renders the plain-text `evidence.txt` from saved results: a robot-style header, per claim a fixed-width table and verdicts, one line per cell, and how to reproduce.

use crate::claims::HYPOTHESES;
use crate::schema::{Cell, Fit, Results, SuiteInfo};
use std::collections::BTreeSet;

/// Widest line `evidence.txt` may hold (mailing-list replies wrap at 72 columns).
pub const MAX_COLUMNS: usize = 72;

/// Renders `evidence.txt` (ASCII only, so that it survives any mail client) from `results`, in
/// the manner of a kernel test robot report:
/// 1. a header: kernel release, the relevant kernel config, CPU model and count, mitigations,
///    CPU frequency governor, BPF JIT, active LSMs, clock and its overhead, privileges,
///    virtualization, backends, hookbench version, profile and command line;
/// 2. per claim of DESIGN.md: its hypothesis, one fixed-width table per backend and fitted axis
///    (one row per mechanism: slope +- 95% CI half-width, intercept, p50 and p99 of the cell at
///    the largest x), the seccomp native/entry/per-filter split where it applies, and one verdict
///    line per backend;
/// 3. the suites answering no claim (scaling, set-up), as tables too;
/// 4. one line per measured cell (`mechanism axes: p50 .. p99 .. mean .. sd .. unit`);
/// 5. what was skipped and why, and how to reproduce the run (the exact command).
///
/// Lines longer than [`MAX_COLUMNS`] are wrapped with a four-space continuation indent.
/// Deterministic: the same results give the same text.
pub fn render(results: &Results) -> String {
    let mut out = Out::default();
    header(&mut out, results);
    for (id, hypothesis) in HYPOTHESES {
        out.blank();
        out.line(format!("== claim {id}: {hypothesis}"));
        let suites: Vec<&SuiteInfo> = results.suites.iter().filter(|s| s.claim == Some(id)).collect();
        for suite in &suites {
            fit_tables(&mut out, results, suite);
        }
        if suites.is_empty() {
            out.line("  (no suite of this run answers it)".to_string());
        }
        for c in results.claims.iter().filter(|c| c.id == id) {
            out.line(format!(
                "verdict [{}]: {}: {}",
                c.backend,
                c.verdict.as_str().to_uppercase(),
                c.evidence
            ));
        }
    }
    for suite in results.suites.iter().filter(|s| s.claim.is_none()) {
        out.blank();
        out.line(format!("== {}: {}", suite.name, suite.hypothesis));
        fit_tables(&mut out, results, suite);
    }
    out.blank();
    out.line("== cells (one line per measured cell; -b: baseline subtracted)".to_string());
    for suite in &results.suites {
        let cells: Vec<&Cell> = results.cells.iter().filter(|c| c.suite == suite.name).collect();
        if cells.is_empty() {
            continue;
        }
        out.line(format!("[{}]", suite.name));
        let varying = varying_axes(&cells);
        for c in &cells {
            let axes: Vec<String> = varying
                .iter()
                .map(|a| match c.params.axis(a) {
                    Some(v) => format!("{a}={v}"),
                    None => format!("{a}={}", c.params.body),
                })
                .collect();
            out.line(format!(
                "{} {} {} {}: p50 {} p99 {} mean {} sd {} {}{}",
                c.backend,
                c.mechanism,
                short_metric(&c.metric),
                axes.join(","),
                fmt_num(Some(c.p50)),
                fmt_num(Some(c.p99)),
                fmt_num(Some(c.mean)),
                fmt_num(Some(c.stddev)),
                c.unit,
                if c.overhead.is_some() { " +b" } else { "" }
            ));
        }
    }
    if !results.skipped.is_empty() {
        out.blank();
        out.line("== skipped".to_string());
        for s in &results.skipped {
            let suite = s.suite.as_deref().map(|x| format!(" [{x}]")).unwrap_or_default();
            out.line(format!("{} {}{}: {}", s.backend, s.mechanism, suite, s.reason));
        }
    }
    out.blank();
    out.line(format!("== reproduce (hookbench {})", results.hookbench_version));
    out.line(reproduce_command(&results.command_line));
    out.text
}

/// The text being built, one wrapped line at a time.
#[derive(Default)]
struct Out {
    text: String,
}

/// `s` as printable ASCII: tabs become spaces, every other control or non-ASCII character `?`
/// (suite names, labels and paths come from user files; evidence.txt must survive any mailer).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => ' ',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl Out {
    fn line(&mut self, s: String) {
        for l in wrap(&ascii(&s)) {
            self.text.push_str(&l);
            self.text.push('\n');
        }
    }

    /// A line written as is (already within [`MAX_COLUMNS`], spacing kept: tables).
    fn raw(&mut self, s: String) {
        let s = ascii(&s);
        if s.chars().count() <= MAX_COLUMNS {
            self.text.push_str(s.trim_end());
            self.text.push('\n');
        } else {
            self.line(s);
        }
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }
}

/// The header: the machine, kernel and run, one `name: value` line each.
fn header(out: &mut Out, r: &Results) {
    let env = &r.environment;
    out.line(format!("hookbench {} evidence ({})", r.hookbench_version, r.schema));
    out.line(format!(
        "kernel: {} ({})",
        r.env_str("kernel_release"),
        r.env_str("machine")
    ));
    let config: Vec<String> = env
        .get("kernel_config_options")
        .and_then(|v| v.as_array())
        .map(|opts| {
            opts.iter()
                .filter_map(|o| {
                    let name = o.get(0)?.as_str()?;
                    let value = o.get(1)?.as_str()?;
                    Some(format!("{}={value}", name.trim_start_matches("CONFIG_")))
                })
                .collect()
        })
        .unwrap_or_default();
    out.line(format!(
        "config: {}",
        if config.is_empty() {
            format!("unknown ({})", probe_text(env.get("kernel_config")))
        } else {
            config.join(" ")
        }
    ));
    out.line(format!("cpu: {} x {}", r.env_str("nr_cpus"), r.env_str("cpu_model")));
    let mitigations: Vec<String> = env
        .get("mitigations")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|m| Some((m.get(0)?.as_str()?, m.get(1)?.as_str()?)))
                .filter(|(_, status)| *status != "Not affected")
                .map(|(name, status)| format!("{name}: {status};"))
                .collect()
        })
        .unwrap_or_default();
    out.line(format!(
        "mitigations: {}",
        if mitigations.is_empty() {
            "none reported (every entry 'Not affected', or unreadable)".to_string()
        } else {
            mitigations.join(" ").trim_end_matches(';').to_string()
        }
    ));
    // The governor's reason ends with what it means ("...: the CPU frequency is not under this
    // kernel's control"); the errno and path before it are in results.json.
    let governor = probe_text(env.get("governor"));
    let governor = match governor.strip_prefix("n/a (") {
        Some(reason) => format!("n/a ({}", reason.rsplit(": ").next().unwrap_or(reason)),
        None => governor,
    };
    out.line(format!("governor: {governor}"));
    out.line(format!(
        "bpf jit: {}, lsm: {}",
        probe_text(env.get("bpf_jit")),
        probe_text(env.get("lsm_list"))
    ));
    out.line(format!(
        "clock: {} (overhead {} ns), privileged: {}",
        r.env_str("clock"),
        fmt_num(env.get("clock_overhead_ns").and_then(|v| v.as_f64())),
        r.env_str("privileged")
    ));
    let virt = env
        .get("virtualization")
        .and_then(|v| v.get("available"))
        .and_then(|v| v.as_bool())
        .map(|v| {
            if v {
                "yes (timings include hypervisor effects)"
            } else {
                "no"
            }
        })
        .unwrap_or("unknown");
    out.line(format!("virtualized: {virt}"));
    if let Some(e) = env.get("emulated").and_then(|v| v.as_str()) {
        out.line(format!("emulated: {e} (timings not comparable with bare metal)"));
    }
    let backends: BTreeSet<&str> = r.cells.iter().map(|c| c.backend.as_str()).collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    out.line(format!(
        "backend: {}{}",
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join(", ")
        },
        if backends == ["model"] {
            " (userspace model of the dispatch models, not kernel timings)"
        } else {
            ""
        }
    ));
    out.line(format!(
        "hookbench: {}, profile {}, {}",
        r.hookbench_version,
        r.profile,
        if r.complete { "complete" } else { "INCOMPLETE (stopped)" }
    ));
    out.line(format!("command: {}", r.command_line.join(" ")));
}

/// An environment probe (`{"available", "value", "reason"}`) as text: its value, or "n/a (why)".
fn probe_text(p: Option<&serde_json::Value>) -> String {
    let Some(p) = p else {
        return "unknown".to_string();
    };
    match p.get("value").and_then(|v| v.as_str()) {
        Some(v) if p.get("available").and_then(|a| a.as_bool()) != Some(false) => v.to_string(),
        _ => format!(
            "n/a ({})",
            p.get("reason").and_then(|r| r.as_str()).unwrap_or("no reason recorded")
        ),
    }
}

/// "hook_latency_ns" -> "hook", "attach_latency_ns" -> "attach", "metadata_bytes" -> "metadata".
fn short_metric(metric: &str) -> &str {
    metric
        .strip_suffix("_latency_ns")
        .or_else(|| metric.strip_suffix("_bytes"))
        .or_else(|| metric.strip_suffix("_ns"))
        .unwrap_or(metric)
}

/// The fixed-width tables of `suite`'s fits: one per backend, metric and x, one row per fit
/// (`mechanism[ qualifiers]  slope +-CI  intercept  p50  p99`, p50/p99 of the cell at the largest
/// x), followed by the seccomp decomposition lines where they apply.
fn fit_tables(out: &mut Out, r: &Results, suite: &SuiteInfo) {
    let fits: Vec<&Fit> = r.fits.iter().filter(|f| f.suite == suite.name).collect();
    let mut groups: Vec<(&str, &str, &str)> = Vec::new();
    for f in &fits {
        let key = (f.backend.as_str(), f.metric.as_str(), f.x.as_str());
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    for (backend, metric, x) in groups {
        let group: Vec<&Fit> = fits
            .iter()
            .copied()
            .filter(|f| f.backend == backend && f.metric == metric && f.x == x)
            .collect();
        let unit = r
            .cells
            .iter()
            .find(|c| c.metric == metric)
            .map(|c| c.unit.as_str())
            .unwrap_or("");
        out.line(format!(
            "[{}] {} {} ({}) vs {}: slope per {}, 95% CI",
            suite.name,
            backend,
            short_metric(metric),
            unit,
            x,
            x
        ));
        out.raw(format!(
            "  {:<24} {:>8}   {:<7} {:>7} {:>7} {:>7}",
            "mechanism", "slope", "95%CI", "icept", "p50@max", "p99@max"
        ));
        for f in &group {
            let label = fit_label(f, &group);
            let last = r.cells_of(f).into_iter().max_by_key(|c| c.params.axis(&f.x_axis));
            let label = if label.chars().count() > 24 {
                out.raw(format!("  {label}"));
                String::new()
            } else {
                label
            };
            out.raw(format!(
                "  {:<24} {:>8} +-{:<7} {:>7} {:>7} {:>7}",
                label,
                fmt_num(Some(f.slope)),
                fmt_num(Some((f.slope_ci95[1] - f.slope_ci95[0]) / 2.0)),
                fmt_num(Some(f.intercept)),
                fmt_num(last.map(|c| c.p50)),
                fmt_num(last.map(|c| c.p99)),
            ));
        }
        for f in &group {
            if let Some(d) = decompose(r, f) {
                out.line(format!(
                    "  {}: native {} ns + entry {} ns + {} ns per {}; parts add up within {:.1}% (limit 10%: {})",
                    f.mechanism,
                    fmt_num(Some(d.native_ns)),
                    fmt_num(Some(f.intercept)),
                    fmt_num(Some(f.slope)),
                    f.x,
                    d.max_relative_error * 100.0,
                    if d.max_relative_error <= 0.10 { "ok" } else { "FAILED" }
                ));
            }
        }
    }
}

/// A fit's row label: its mechanism, plus `axis=value` for every fixed axis whose value differs
/// among the group's fits of the same mechanism (e.g. `chain-walk W=16384`).
fn fit_label(f: &Fit, group: &[&Fit]) -> String {
    let same: Vec<&&Fit> = group.iter().filter(|g| g.mechanism == f.mechanism).collect();
    let mut label = f.mechanism.clone();
    for (axis, value) in &f.fixed {
        if same.iter().any(|g| g.fixed.get(axis) != Some(value)) {
            let short = match axis.as_str() {
                "working_set" => "W",
                "cpus" => "P",
                "cgroups" => "C",
                "tasks" => "T",
                "hooks" => "H",
                "depth" => "D",
                other => other,
            };
            let v = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
            label.push_str(&format!(" {short}={v}"));
        }
    }
    label
}

/// The command that reproduces the run: the saved command line with the program named
/// `hookbench` (it was run as e.g. `./target/release/hookbench`).
fn reproduce_command(argv: &[String]) -> String {
    let mut words: Vec<String> = argv.to_vec();
    if let Some(first) = words.first_mut() {
        if first.ends_with("hookbench") {
            *first = "hookbench".to_string();
        }
    }
    if words.is_empty() {
        return "(the command line was not recorded)".to_string();
    }
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// `w` quoted for a POSIX shell when it holds anything but `[A-Za-z0-9_./=:,@%+-]`.
fn shell_quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// A syscall's cost split the way the kernel's seccomp_benchmark.c splits it: native (the empty
/// chain), entry (the fit's intercept) and per program (its slope), with the largest relative
/// gap between `native + entry + n * slope` and a measured total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decomposition {
    /// Mean cost with no programs (the cells' baseline), ns.
    pub native_ns: f64,
    /// Largest `|predicted - measured| / measured` over the fit's cells, totals including native.
    pub max_relative_error: f64,
}

/// The decomposition of a baseline-subtracted `hook_latency_ns` fit over `programs` of the kernel
/// backend, from the fit and its cells; `None` for other fits or without baselines.
pub fn decompose(results: &Results, fit: &crate::schema::Fit) -> Option<Decomposition> {
    if fit.backend != "kernel" || fit.metric != "hook_latency_ns" || fit.x_axis != "programs" {
        return None;
    }
    let cells = results.cells_of(fit);
    let native_ns = cells.iter().find_map(|c| c.baseline.map(|b| b.mean))?;
    let max_relative_error = cells
        .iter()
        .filter_map(|c| {
            let n = f64::from(c.params.programs);
            let measured = native_ns + c.mean;
            let predicted = native_ns + fit.intercept + fit.slope * n;
            (measured > 0.0).then(|| ((predicted - measured) / measured).abs())
        })
        .fold(0.0_f64, f64::max);
    Some(Decomposition {
        native_ns,
        max_relative_error,
    })
}

/// The numeric axes (and `body`) whose value differs between `cells`, in `NUMERIC_AXES` order.
fn varying_axes(cells: &[&Cell]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for axis in hookbench_model::NUMERIC_AXES {
        let values: BTreeSet<Option<u32>> = cells.iter().map(|c| c.params.axis(axis)).collect();
        if values.len() > 1 {
            out.insert(axis);
        }
    }
    let bodies: BTreeSet<_> = cells.iter().map(|c| c.params.body).collect();
    if bodies.len() > 1 {
        out.insert("body");
    }
    out
}

/// Formats a figure with three significant digits where it is small, whole numbers where large.
pub fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_string(),
        Some(x) if !x.is_finite() => "n/a".to_string(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) if x != 0.0 && x.abs() < 0.001 => format!("{x:.2e}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// Splits `s` into lines of at most [`MAX_COLUMNS`] characters at spaces; continuation lines are
/// indented by four spaces. A single word longer than the limit is cut.
pub fn wrap(s: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut has_word = false;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if has_word && cur.chars().count() + 1 + word.chars().count() > MAX_COLUMNS {
            lines.push(std::mem::replace(&mut cur, "    ".to_string()));
            has_word = false;
        }
        if has_word {
            cur.push(' ');
        }
        cur.push_str(word);
        has_word = true;
        while cur.chars().count() > MAX_COLUMNS {
            let head: String = cur.chars().take(MAX_COLUMNS).collect();
            let tail: String = cur.chars().skip(MAX_COLUMNS).collect();
            lines.push(head);
            cur = format!("    {tail}");
        }
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_line_within_72_columns_and_loses_no_word() {
        let text = "fit effective-array hook_latency_ns vs programs at working_set=4096: slope 1.234 [1.200, 1.268] per programs, intercept 3.21, r2 0.998, n 600";
        let lines = wrap(text);
        assert!(lines.len() >= 2, "{lines:?}");
        for l in &lines {
            assert!(l.chars().count() <= MAX_COLUMNS, "too long: {l}");
        }
        let rejoined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let original: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(rejoined, original);
        assert!(lines[1].starts_with("    ") && !lines[1].starts_with("     "));
    }

    #[test]
    fn wrap_short_line_is_unchanged_and_long_word_is_cut() {
        assert_eq!(wrap("a b c"), vec!["a b c".to_string()]);
        let long = "x".repeat(200);
        let lines = wrap(&long);
        assert!(lines.iter().all(|l| l.chars().count() <= MAX_COLUMNS));
        assert_eq!(lines.iter().map(|l| l.trim().len()).sum::<usize>(), 200);
    }

    fn kernel_results(means: &[(u32, f64)], native: f64, slope: f64, intercept: f64) -> Results {
        let cells: Vec<serde_json::Value> = means
            .iter()
            .map(|&(n, mean)| {
                serde_json::json!({"id": format!("s/kernel/seccomp-arg-load/{n}"), "suite": "s", "backend": "kernel",
                    "model": "task-chain", "mechanism": "seccomp-arg-load", "metric": "hook_latency_ns", "unit": "ns",
                    "params": {"programs": n, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                               "working_set": 1, "cpus": 1, "body": "null"},
                    "samples": 10, "mean": mean, "stddev": 1.0, "cv": 0.1, "p50": mean, "p90": mean, "p99": mean,
                    "p999": mean, "max": mean, "baseline_subtracted": true,
                    "baseline": {"mean": native, "p50": native, "samples": 10}})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": crate::SCHEMA, "hookbench_version": "0", "command_line": [], "started_at": "",
            "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [{"name": "s", "claim": 7, "hypothesis": "h", "fit_x": ["programs"]}],
            "environment": {}, "cells": cells,
            "fits": [{"suite": "s", "backend": "kernel", "model": "task-chain", "mechanism": "seccomp-arg-load",
                      "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs", "fixed": {}, "n": 30,
                      "slope": slope, "slope_ci95": [slope - 1.0, slope + 1.0], "intercept": intercept, "r2": 0.9,
                      "points": []}],
            "skipped": []}))
        .expect("hand-made results parse")
    }

    #[test]
    fn seccomp_parts_add_up_when_the_line_fits_and_not_otherwise() {
        // native 80, entry 5, 16 per filter: exact cells.
        let exact = kernel_results(&[(1, 21.0), (8, 133.0), (32, 517.0)], 80.0, 16.0, 5.0);
        let d = decompose(&exact, &exact.fits[0]).expect("a kernel programs fit decomposes");
        assert_eq!(d.native_ns, 80.0);
        assert!(d.max_relative_error < 1e-12, "{d:?}");
        assert!(render(&exact).contains("parts add up within 0.0% (limit 10%: ok)"));
        // One cell 50% above the line: total 80+5+16*8 = 213 predicted against 80+133*1.5.
        let off = kernel_results(&[(1, 21.0), (8, 199.5), (32, 517.0)], 80.0, 16.0, 5.0);
        let d = decompose(&off, &off.fits[0]).expect("decomposes");
        assert!((d.max_relative_error - (279.5 - 213.0) / 279.5).abs() < 1e-12, "{d:?}");
        assert!(render(&off).contains("FAILED"));
    }

    #[test]
    fn user_text_is_made_ascii_and_the_command_is_quoted() {
        assert_eq!(ascii("s\u{fc}ite\u{7}\tx\ny"), "s?ite? x?y");
        assert_eq!(
            reproduce_command(&[
                "./target/release/hookbench".into(),
                "run".into(),
                "--out".into(),
                "/tmp/a b".into(),
                "it's".into()
            ]),
            "hookbench run --out '/tmp/a b' 'it'\\''s'"
        );
    }

    #[test]
    fn fmt_num_scales() {
        assert_eq!(fmt_num(Some(12345.6)), "12346");
        assert_eq!(fmt_num(Some(123.45)), "123.5");
        assert_eq!(fmt_num(Some(1.2345)), "1.23");
        assert_eq!(fmt_num(Some(0.01234)), "0.012");
        assert_eq!(fmt_num(Some(0.0000151)), "1.51e-5");
        assert_eq!(fmt_num(Some(0.0)), "0.000");
        assert_eq!(fmt_num(Some(f64::NAN)), "n/a");
        assert_eq!(fmt_num(None), "n/a");
    }
}
