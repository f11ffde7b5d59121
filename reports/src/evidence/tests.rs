//! evidence.txt on hand-made results: wrapping, figures, and each section's lines.

use super::sections::reproduce_command;
use super::text::ascii;
use super::*;

use crate::schema::Results;

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

#[test]
fn wrap_keeps_the_indent_and_indents_continuations_further() {
    let text = format!("  ! cpu-migration: {}", "word ".repeat(30));
    let lines = wrap(&text);
    assert!(lines[0].starts_with("  ! cpu"), "{lines:?}");
    assert!(lines[1..]
        .iter()
        .all(|l| l.starts_with("      ") && !l.starts_with("       ")));
    assert!(lines.iter().all(|l| l.chars().count() <= MAX_COLUMNS));
    let deep = format!("{}{}", " ".repeat(80), "y".repeat(100));
    assert!(wrap(&deep).iter().all(|l| l.chars().count() <= MAX_COLUMNS));
}

/// A kernel cell of `mechanism` at `programs`, raw `p50`, with a baseline and an overhead.
fn cell(mechanism: &str, programs: u32, p50: f64, overhead_p50: f64, flags: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"id": format!("seccomp/kernel/{mechanism}/{programs}"), "suite": "seccomp",
        "backend": "kernel", "model": "task-chain", "mechanism": mechanism, "metric": "hook_latency_ns",
        "unit": "ns",
        "params": {"programs": programs, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                   "working_set": 1, "cpus": 1, "body": "null"},
        "samples": 1000, "mean": p50 + 1.0, "stddev": 4.0, "cv": 0.04, "p50": p50, "p90": p50 + 5.0,
        "p99": p50 + 12.0, "p999": p50 + 20.0, "max": p50 + 40.0, "min": p50 - 3.0,
        "percentile_basis": "batch-means", "batch_k": 4,
        "baseline": {"mean": 88.9, "stddev": 3.0, "p50": 88.1, "p90": 92.0, "p99": 99.0, "p999": 104.0,
                     "max": 130.0, "samples": 1000},
        "overhead": {"mean_ns": overhead_p50 + 0.6, "mean_ci95_ns": [overhead_p50 - 0.3, overhead_p50 + 1.5],
                     "p50_ns": overhead_p50, "p50_ci95_ns": [overhead_p50 - 0.5, overhead_p50 + 0.5]},
        "validity": {"flags": flags}})
}

fn results(extra: serde_json::Value) -> Results {
    let mut v = serde_json::json!({
        "schema": crate::SCHEMA, "hookbench_version": "0", "command_line": ["hookbench", "run"],
        "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
        "suites": [{"name": "seccomp", "claim": 7, "hypothesis": "h", "fit_x": ["programs"],
                    "margin": {"abs": 1.0, "rel": 0.1}}],
        "environment": {}, "cells": [
            cell("seccomp-arg-load", 1, 111.5, 23.4, serde_json::json!([])),
            cell("seccomp-arg-load", 128, 3398.0, 3304.0, serde_json::json!([
                {"code": "mitigation-differs", "why": "SSBD 'thread force mitigated' against 'thread vulnerable'"}])),
            cell("seccomp-nr-only", 1, 87.8, -0.3, serde_json::json!([
                {"code": "cpu-migration", "why": "3 CPU migrations during the samples"}]))],
        "fits": [{"suite": "seccomp", "backend": "kernel", "model": "task-chain", "mechanism": "seccomp-arg-load",
                  "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs", "fixed": {"body": "null"},
                  "n": 2000, "slope": 25.7, "slope_ci95": [25.6, 25.8], "slope_se": 0.05, "intercept": -33.0,
                  "r2": 0.99, "y": "overhead", "points": [[1.0, 23.4], [128.0, 3304.0]],
                  "lack_of_fit": {"f": 90.0, "df_lof": 6.0, "df_pe": 7992.0, "p_value": 1e-9,
                                  "max_rel_dev": 0.12, "worst_x": 128.0, "holds": false},
                  "segments": [{"x0": 1.0, "x1": 8.0, "slope": {"value": 20.8, "se": 0.2, "df": 900.0}},
                               {"x0": 8.0, "x1": 128.0, "slope": {"value": 26.0, "se": 0.1, "df": 900.0}}],
                  "entry": {"entry": 0.0, "raw": {"value": -33.0, "se": 4.0, "df": 900.0}, "clamped": true}}],
        "skipped": [], "order_seed": 42});
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            obj.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).expect("hand-made results parse")
}

/// The text with every wrapped line joined back into one.
fn logical(text: &str) -> String {
    unwrap_lines(text).join("\n")
}

/// The logical lines of the section of `text` whose title starts with `title`.
fn section(text: &str, title: &str) -> String {
    let joined = logical(text);
    joined
        .split(title)
        .nth(1)
        .and_then(|s| s.split("\n== ").next())
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_cell_shows_raw_percentiles_its_overhead_with_its_ci_and_its_flags() {
    let text = render_full(&results(serde_json::json!({})));
    let cells = section(&text, "== cells");
    let lines: Vec<&str> = cells.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in:\n{cells}"))
    };
    let first = at("seccomp-arg-load hook programs=1:");
    assert!(lines[first].contains("p50 111.5 p99 123.5"), "{}", lines[first]);
    assert!(cells.contains("(K=4 batch means)"), "{cells}");
    assert_eq!(
        lines[first + 1],
        "  +23.40 ns [22.90, 23.90] over baseline p50 88.10; mean shift +24.00 [23.10, 24.90]"
    );
    // A negative overhead keeps its sign; it is a difference, not a latency.
    let nr = at("seccomp-nr-only hook programs=1:");
    assert!(
        lines[nr + 1].starts_with("  -0.300 ns [-0.800, 0.200] over baseline p50 88.10"),
        "{}",
        lines[nr + 1]
    );
    // Flags sit beside (right under) the cell they concern.
    assert!(
        lines[nr + 2].starts_with("  ! cpu-migration: 3 CPU migrations"),
        "{cells}"
    );
    let big = at("seccomp-arg-load hook programs=128:");
    assert!(lines[big + 2].starts_with("  ! mitigation-differs: SSBD"), "{cells}");
}

#[test]
fn a_curved_fit_says_where_and_gives_its_segments_and_a_clamped_entry() {
    let text = render_full(&results(serde_json::json!({})));
    let claim = section(&text, "== claim 7:");
    assert!(
        claim.contains(
            "  seccomp-arg-load: curved: worst at x=128, 12% off (lack-of-fit p <0.001); entry 0 (<0, shown as 0)"
        ),
        "{claim}"
    );
    assert!(
        claim.contains("    per programs by segment: 1-8 +20.80 [20.41, 21.19]; 8-128 +26.00"),
        "{claim}"
    );
    let row = claim
        .lines()
        .find(|l| l.starts_with("  seccomp-arg-load ") && l.contains("+-"))
        .expect("table row");
    assert!(row.contains(" 0.000 ") && !row.contains("-33"), "{row}");
    // A line that holds says so and gives no segments.
    let mut r = results(serde_json::json!({}));
    if let Some(l) = r.fits[0].lack_of_fit.as_mut() {
        l.holds = true;
    }
    let text = logical(&render_full(&r));
    assert!(
        text.contains("  seccomp-arg-load: line holds; entry 0 (<0, shown as 0)") && !text.contains("by segment"),
        "{text}"
    );
}

#[test]
fn decompositions_say_beside_the_figure_when_the_methods_disagree() {
    let d = |mechanism: &str, method: &str, pp: f64, agrees: bool, other: &str| {
        serde_json::json!({"backend": "kernel", "mechanism": mechanism, "method": method, "native_ns": 88.1,
            "entry_ns": 14.2, "per_program_ns": pp, "per_program_ci95": [pp - 0.5, pp + 0.5], "range": [1, 8],
            "max_relative_error": 0.031,
            "agreement": {"other_method": if method == "fit" { "selftest" } else { "fit" },
                          "other_mechanism": other, "per_program_rel_diff": if agrees { 0.04 } else { 0.31 },
                          "entry_rel_diff": 0.05, "limit": 0.15, "agrees": agrees}})
    };
    let r = results(serde_json::json!({"decompositions": [
        d("seccomp-arg-load", "fit", 26.6, false, "seccomp-selftest-split"),
        d("seccomp-selftest-split", "selftest", 20.1, false, "seccomp-arg-load")]}));
    let text = render_full(&r);
    let sect = section(&text, "== decompositions");
    assert!(
        sect.contains(
            "kernel seccomp-arg-load [fit, N=1..8]: native 88.10 + entry 14.20 + 26.60 [26.10, 27.10] per \
             program; DISAGREES with selftest (seccomp-selftest-split): per program 31% apart, limit 15%; \
             parts add up within 3.1%"
        ),
        "{sect}"
    );
    // Beside the fit's figure in the claim's table too.
    let claim = section(&text, "== claim 7:");
    assert!(
        claim.contains(
            "  seccomp-arg-load: native 88.10 ns + entry 14.20 ns + 26.60 ns per program (N=1..8); DISAGREES"
        ),
        "{claim}"
    );
    let agree = results(
        serde_json::json!({"decompositions": [d("seccomp-arg-load", "fit", 20.8, true, "seccomp-selftest-split")]}),
    );
    let text = logical(&render_full(&agree));
    assert!(
        text.contains("agrees with selftest (seccomp-selftest-split) within 15%") && !text.contains("DISAGREES"),
        "{text}"
    );
    assert!(render_full(&results(serde_json::json!({}))).contains("== decompositions"));
}

#[test]
fn drift_gives_range_and_trend_and_warns_above_five_percent() {
    let entry = |label: &str, range: f64| {
        serde_json::json!({"backend": "kernel", "mechanism": "seccomp-arg-load", "label": label,
            "points": [[0.0, 88.0], [60.0, 88.0 * (1.0 + range)]],
            "drift": {"n": 8, "first": 88.0, "last": 88.0 * (1.0 + range), "min": 88.0, "max": 88.0 * (1.0 + range),
                      "rel_range": range, "rel_slope_per_hour": 0.9, "rel_slope_ci95": [0.5, 1.3], "span_s": 60.0}})
    };
    let text = render_full(&results(
        serde_json::json!({"drift": [entry("getppid", 0.072), entry("getpid", 0.02)]}),
    ));
    let sect = section(&text, "== drift");
    let lines: Vec<&str> = sect.lines().collect();
    let i = lines.iter().position(|l| l.contains("getppid")).expect("drift line");
    assert!(
        sect.contains("range 7.2% of the median, trend +90.00%/h [50.00, 130.0]"),
        "{sect}"
    );
    let warn = lines[i..]
        .iter()
        .position(|l| l.starts_with("  ! drift: this baseline moved 7.2%"))
        .expect("warning");
    assert!(
        !lines[i + 1..i + warn].iter().any(|l| l.contains("getpid:")),
        "warning beside its line"
    );
    assert_eq!(sect.matches("! drift").count(), 1, "{sect}");
}

#[test]
fn verdict_lines_name_the_fits_compared_and_the_margin() {
    let r = results(
        serde_json::json!({"claims": [{"id": 7, "hypothesis": "h", "backend": "kernel",
        "verdict": "supported", "evidence": "grows; flat", "numbers": {},
        "compared": [{"suite": "seccomp", "backend": "kernel", "mechanism": "seccomp-arg-load", "body": "null", "x": "programs"},
                     {"suite": "seccomp", "backend": "kernel", "mechanism": "seccomp-nr-only", "body": "null", "x": "programs"}],
        "margin": 2.57}]}),
    );
    let text = render_full(&r);
    let claim = section(&text, "== claim 7:");
    assert!(claim.contains("verdict [kernel]: SUPPORTED: grows; flat"), "{claim}");
    assert!(
        claim.contains("  compared: seccomp/seccomp-arg-load (null), seccomp/seccomp-nr-only (null) over"),
        "{claim}"
    );
    assert!(claim.contains("margin +-2.57 per programs"), "{claim}");
}

#[test]
fn a_negative_latency_is_never_printed() {
    let mut r = results(serde_json::json!({}));
    r.cells[0].p50 = -4.0;
    r.cells[0].mean = -1.0;
    let text = logical(&render_full(&r));
    let line = text
        .lines()
        .find(|l| l.contains("seccomp-arg-load hook programs=1:"))
        .expect("cell line");
    assert!(line.contains("p50 invalid") && line.contains("mean invalid"), "{line}");
    assert!(!text.contains("p50 -4") && !text.contains("mean -1"));
}

/// A set-up suite's lines hold each mechanism against its floor and the floor against C.
///
/// They say OVER beside a ratio above the limit.
#[test]
fn set_up_lines_hold_the_mechanism_against_the_floor_and_c() {
    let cell = |mechanism: &str, metric: &str, p50: f64| {
        serde_json::json!({"id": format!("{mechanism}/{metric}"), "suite": "setup-tasks", "backend": "kernel",
            "model": "task-chain", "mechanism": mechanism, "metric": metric, "unit": "s",
            "params": {"programs": 0, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 100, "tasks": 10000,
                       "working_set": 1, "cpus": 1, "body": "null"},
            "samples": 5, "mean": p50, "stddev": 0.0, "cv": 0.0, "p50": p50, "p90": p50, "p99": p50,
            "p999": p50, "max": p50})
    };
    let r: Results = serde_json::from_value(serde_json::json!({"schema": crate::SCHEMA, "hookbench_version": "0",
        "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "quick",
        "suites": [{"name": "setup-tasks", "claim": null, "hypothesis": "h", "fit_x": []}],
        "environment": {}, "fits": [], "skipped": [], "cells": [
            cell("setup-tasks", "setup_seconds", 1.0), cell("setup-tasks-floor", "setup_seconds", 1.25),
            cell("setup-tasks-c", "setup_seconds", 0.5), cell("setup-tasks", "teardown_seconds", 0.9),
            cell("setup-tasks-floor", "teardown_seconds", 0.6)]}))
    .expect("results parse");
    let text = render_full(&r);
    assert!(text.lines().all(|l| l.chars().count() <= MAX_COLUMNS));
    // Wrapped lines continue indented: join them back.
    let joined = text.replace("\n    ", " ");
    let line = |what: &str| {
        joined
            .lines()
            .find(|l| l.starts_with(&format!("setup-tasks T=10000 in 100 cgroups {what}")))
            .unwrap_or_else(|| panic!("no {what} line in\n{text}"))
            .to_string()
    };
    let setup = line("set-up");
    assert!(
        setup.contains("= 0.80x floor") && setup.contains("floor = 2.50x OVER C"),
        "{setup}"
    );
    let teardown = line("tear-down");
    assert!(
        teardown.contains("= 1.50x OVER floor") && teardown.contains("no C reference"),
        "{teardown}"
    );
}

/// A working-set suite's cells say how many bytes each rotation read against the caches.
#[test]
fn working_set_bytes_are_held_against_the_l2_and_the_llc() {
    let ws_cell = |mechanism: &str, w: u32, programs: u32, bytes: u64| {
        let mut c = cell(mechanism, programs, 300.0, 100.0, serde_json::json!([]));
        c["suite"] = "working-set".into();
        c["params"]["working_set"] = w.into();
        c["working_set"] = serde_json::json!({"bytes": bytes, "per_slot_bytes": bytes / u64::from(w),
            "method": "estimate: lines", "l2_bytes": 2u64 << 20, "llc_bytes": 480u64 << 20});
        c
    };
    let r = results(serde_json::json!({
        "suites": [{"name": "working-set", "claim": 6, "hypothesis": "h", "fit_x": ["programs"]}],
        "cells": [ws_cell("seccomp-working-set", 1, 16, 4224), ws_cell("seccomp-working-set", 4096, 0, 1 << 19),
                  ws_cell("seccomp-working-set", 4096, 16, 17_301_504)],
        "fits": []}));
    let claim = section(&render_full(&r), "== claim 6");
    assert!(
        claim.contains("[working-set] kernel working set against the caches (L2 2.0 MiB, LLC 480.0 MiB)"),
        "{claim}"
    );
    assert!(
        claim.contains(
            "seccomp-working-set: W=1 4.1 KiB (within the L2); W=4096 16.5 MiB (past the L2, within the LLC)"
        ),
        "{claim}"
    );
    assert!(claim.contains("bytes: estimate: lines"), "{claim}");
    assert!(
        claim.contains("the sweep did not go past the LLC: its largest working set, 16.5 MiB"),
        "{claim}"
    );
    // Past the LLC, and no section without a working set above one slot.
    let mut big = ws_cell("seccomp-working-set", 4096, 16, 600 << 20);
    big["id"] = "big".into();
    let r = results(serde_json::json!({
        "suites": [{"name": "working-set", "claim": 6, "hypothesis": "h", "fit_x": ["programs"]}],
        "cells": [big], "fits": []}));
    assert!(section(&render_full(&r), "== claim 6").contains("the sweep went past the LLC"));
    let r = results(serde_json::json!({}));
    assert!(!render_full(&r).contains("working set against the caches"));
}

#[test]
fn a_uml_run_says_how_to_read_its_figures_and_an_ordinary_one_does_not() {
    let uml = results(serde_json::json!({"environment": {"uml": {
        "release": "6.1.192 #1", "host": "Linux box", "native_cpu": true, "cpus": 1,
        "bpf_bodies": "interpreted", "syscalls": "ptrace-trapped", "config_source": "/proc/config.gz",
        "config_options": []}}}));
    let text = logical(&render(&uml));
    let line = text.lines().find(|l| l.starts_with("uml: ")).expect("a uml line");
    assert!(
        line.contains("6.1.192") && line.contains("BPF bodies interpreted") && line.contains("in-kernel"),
        "{line}"
    );
    let plain = logical(&render(&results(serde_json::json!({}))));
    assert!(!plain.lines().any(|l| l.starts_with("uml: ")), "{plain}");
}

/// The kernel's scaling cells say whether sharing shows, against the margin named, per CPU.
#[test]
fn sharing_lines_compare_the_slope_at_p_against_one_cpu_and_shared_against_own() {
    let fit = |mechanism: &str, cpus: u32, slope: f64, half: f64| {
        serde_json::json!({"suite": "scaling", "backend": "kernel", "model": "task-chain", "mechanism": mechanism,
            "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs",
            "fixed": {"cpus": cpus, "body": "null"}, "n": 600, "slope": slope,
            "slope_ci95": [slope - half, slope + half], "slope_se": half / 2.0, "intercept": 0.0, "r2": 0.99,
            "y": "overhead", "points": [[0.0, 0.0], [16.0, slope * 16.0]]})
    };
    let cell = |cpus: u32, per_cpu: serde_json::Value, throughput: f64| {
        serde_json::json!({"id": format!("scaling/kernel/seccomp-cpus-own/{cpus}"), "suite": "scaling",
            "backend": "kernel", "model": "task-chain", "mechanism": "seccomp-cpus-own", "metric": "hook_latency_ns",
            "unit": "ns", "params": {"programs": 16, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0,
            "tasks": cpus, "working_set": 1, "cpus": cpus, "body": "null"},
            "samples": 100, "mean": 500.0, "stddev": 1.0, "cv": 0.0, "p50": 480.0, "p90": 490.0, "p99": 900.0,
            "p999": 950.0, "max": 990.0, "throughput_hooks_per_sec": throughput, "per_cpu": per_cpu})
    };
    let cpu = |c: u32, p50: f64| {
        serde_json::json!({"cpu": c, "samples": 50, "mean": 500.0, "p50": p50, "p99": 900.0,
                           "throughput_hooks_per_sec": 2e6})
    };
    let r: Results = serde_json::from_value(serde_json::json!({"schema": crate::SCHEMA, "hookbench_version": "0",
        "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "quick",
        "suites": [{"name": "scaling", "claim": null, "hypothesis": "h", "fit_x": ["programs"]}],
        "environment": {}, "skipped": [],
        "fits": [fit("seccomp-cpus-own", 1, 20.0, 0.5), fit("seccomp-cpus-own", 2, 20.1, 0.5),
                 fit("seccomp-cpus-shared", 1, 20.0, 0.5), fit("seccomp-cpus-shared", 2, 25.0, 0.5),
                 fit("cgroup-bpf-cpus-own", 1, 13.0, 3.0), fit("cgroup-bpf-cpus-own", 2, 13.0, 3.0)],
        "cells": [cell(1, serde_json::json!([cpu(1, 480.0)]), 2e6),
                  cell(2, serde_json::json!([cpu(1, 481.0), cpu(0, 482.0)]), 3e6)]}))
    .expect("results parse");
    let text = logical(&render_full(&r));
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start} in\n{text}"))
            .to_string()
    };
    // 0.1 +- 0.71 ns within the 2 ns margin (10% of 20): does not show.
    let own = line("seccomp-cpus-own: P=1");
    assert!(own.contains("(margin 2.00): does not show"), "{own}");
    // 5 +- 0.71 beyond it: shows; and shared's change less own's shows too.
    assert!(line("seccomp-cpus-shared: P=1").ends_with(": shows"), "{text}");
    let family = line("seccomp-cpus: shared's change less own's +4.90");
    assert!(family.ends_with("sharing shows"), "{family}");
    // A CI wider than the margin decides nothing; no family line without the shared peer.
    assert!(line("cgroup-bpf-cpus-own: P=1").ends_with("inconclusive (CI wider than the margin)"));
    assert!(!text.contains("cgroup-bpf-cpus: shared's"), "{text}");
    // Throughput with its efficiency against P x one CPU, and every CPU's own percentiles.
    let t = line("seccomp-cpus-own N=16:");
    assert!(t.contains("P=2 3.00 M/s (75.00% of P x one CPU)"), "{t}");
    assert!(t.contains("cpu0 p50 482.0 p99 900.0"), "{t}");
}
