//! The sections of `evidence.txt` after the claims, each from one part of the results.
//!
//! Decompositions, set-up against its floors, drift, the cells one line each, and the command that
//! reproduces the run.

use super::text::Out;
use super::{
    agreement_text, axis_labels, fmt_latency, fmt_num, fmt_pct, fmt_signed, short_metric, sort_cells, varying_axes,
    DRIFT_WARN_REL_RANGE, FLOOR_RATIO_LIMIT,
};
use crate::schema::{Cell, Decomposition, DriftEntry, PercentileBasis, Results, SuiteInfo};
use std::collections::BTreeSet;

/// Bytes in binary units, one decimal: "512 B", "2.2 KiB", "16.5 MiB".
fn fmt_bytes(b: u64) -> String {
    match b {
        0..1024 => format!("{b} B"),
        1024..1_048_576 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

/// For a suite that rotates through W tasks or cgroups: each rotation's bytes against the caches.
///
/// Per backend, one line per mechanism with the bytes one rotation reads at each W (the cell with
/// the most programs) and where that stands against the L2 and the last-level cache, how the
/// bytes were counted, and whether the sweep went past the LLC: a cold-cache figure is only as
/// cold as its working set is large.
pub(super) fn working_sets(out: &mut Out, r: &Results, suite: &SuiteInfo) {
    let cells: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.suite == suite.name && c.working_set.is_some())
        .collect();
    if !cells.iter().any(|c| c.params.working_set > 1) {
        return;
    }
    let backends: BTreeSet<&str> = cells.iter().map(|c| c.backend.as_str()).collect();
    for backend in backends {
        let mine: Vec<&Cell> = cells.iter().copied().filter(|c| c.backend == backend).collect();
        let sets: Vec<&crate::schema::WorkingSetBytes> = mine.iter().filter_map(|c| c.working_set.as_ref()).collect();
        let Some(first) = sets.first() else { continue };
        let cache = |v: Option<u64>| v.map_or("unknown".to_string(), fmt_bytes);
        out.line(format!(
            "[{}] {backend} working set against the caches (L2 {}, LLC {}): bytes one rotation reads, at the \
             most programs",
            suite.name,
            cache(first.l2_bytes),
            cache(first.llc_bytes)
        ));
        let mechanisms: BTreeSet<&str> = mine.iter().map(|c| c.mechanism.as_str()).collect();
        for m in mechanisms {
            let ws: BTreeSet<u32> = mine
                .iter()
                .filter(|c| c.mechanism == m)
                .map(|c| c.params.working_set)
                .collect();
            let points: Vec<String> = ws
                .into_iter()
                .filter_map(|w| {
                    let c = mine
                        .iter()
                        .filter(|c| c.mechanism == m && c.params.working_set == w)
                        .max_by_key(|c| c.params.programs)?;
                    let b = c.working_set.as_ref()?;
                    Some(format!("W={w} {} ({})", fmt_bytes(b.bytes), b.level()))
                })
                .collect();
            out.line(format!("  {m}: {}", points.join("; ")));
        }
        out.line(format!("  bytes: {}", first.method));
        let largest = sets.iter().copied().max_by_key(|b| b.bytes);
        let verdict = match largest {
            Some(b) if b.level() == "past the LLC" => "the sweep went past the LLC".to_string(),
            Some(b) if b.llc_bytes.is_some() => format!(
                "the sweep did not go past the LLC: its largest working set, {}, is {}",
                fmt_bytes(b.bytes),
                b.level()
            ),
            _ => "the cache sizes are unknown: whether the sweep went past the LLC is not known".to_string(),
        };
        out.line(format!("  {verdict}"));
    }
}

/// `== decompositions`: every split of a mechanism's cost, by backend, mechanism and method.
pub(super) fn decompositions(out: &mut Out, list: &[Decomposition]) {
    out.line("== decompositions (native + entry + N x per program, ns; fit vs selftest)".to_string());
    if list.is_empty() {
        out.line("(none in this run)".to_string());
        return;
    }
    let mut sorted: Vec<&Decomposition> = list.iter().collect();
    sorted.sort_by(|a, b| (&a.backend, &a.mechanism, &a.method).cmp(&(&b.backend, &b.mechanism, &b.method)));
    for d in sorted {
        let (backend, mechanism, method, [n0, n1]) = (&d.backend, &d.mechanism, &d.method, d.range);
        let (native, entry) = (fmt_latency(Some(d.native_ns)), fmt_latency(Some(d.entry_ns)));
        let clamped = if d.entry_clamped { " (<0, shown as 0)" } else { "" };
        let per_program = fmt_num(Some(d.per_program_ns));
        let [lo, hi] = d.per_program_ci95.map(|v| fmt_num(Some(v)));
        let (agreement, within) = (agreement_text(d), fmt_pct(d.max_relative_error));
        out.line(format!(
            "{backend} {mechanism} [{method}, N={n0}..{n1}]: native {native} + entry {entry}{clamped} + {per_program} \
             [{lo}, {hi}] per program{agreement}; parts add up within {within}%"
        ));
    }
}

/// For the set-up suites: each point's set-up and tear-down against its floor, and the floor's.
///
/// Each figure (median of the repetitions) is set against the floor of the same run
/// (`<mechanism>-floor`), and the floor against the C reference (`<mechanism>-c`), with OVER
/// beside a ratio above [`FLOOR_RATIO_LIMIT`].
pub(super) fn floor_ratios(out: &mut Out, r: &Results, suite: &SuiteInfo) {
    let cells: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.suite == suite.name && (c.metric == "setup_seconds" || c.metric == "teardown_seconds"))
        .collect();
    let mechanisms: BTreeSet<&str> = cells
        .iter()
        .map(|c| c.mechanism.as_str())
        .filter(|m| !m.ends_with("-floor") && !m.ends_with("-c"))
        .collect();
    if mechanisms.is_empty() {
        return;
    }
    out.line(format!(
        "[{}] against the floor of this run (p50 of the repetitions; limit {FLOOR_RATIO_LIMIT}x)",
        suite.name
    ));
    let ratio = |a: f64, b: f64| {
        let x = a / b;
        let over = if x > FLOOR_RATIO_LIMIT { " OVER" } else { "" };
        format!("{x:.2}x{over}")
    };
    for m in mechanisms {
        let own: Vec<&&Cell> = cells.iter().filter(|c| c.mechanism == m).collect();
        for c in own {
            let peer = |suffix: &str| {
                cells
                    .iter()
                    .find(|p| p.mechanism == format!("{m}{suffix}") && p.metric == c.metric && p.params == c.params)
            };
            let what = if c.metric == "setup_seconds" {
                "set-up"
            } else {
                "tear-down"
            };
            let point = if c.params.tasks > 0 {
                format!("T={} in {} cgroups", c.params.tasks, c.params.cgroups)
            } else {
                format!("C={}", c.params.cgroups)
            };
            let mut line = format!("{m} {point} {what} {} s", fmt_num(Some(c.p50)));
            match peer("-floor") {
                Some(f) => {
                    line.push_str(&format!(" = {} floor {} s", ratio(c.p50, f.p50), fmt_num(Some(f.p50))));
                    if let Some(cc) = peer("-c") {
                        line.push_str(&format!(
                            "; floor = {} C {} s",
                            ratio(f.p50, cc.p50),
                            fmt_num(Some(cc.p50))
                        ));
                    } else {
                        line.push_str("; no C reference measured");
                    }
                }
                None => line.push_str("; no floor measured"),
            }
            out.line(line);
        }
    }
}

/// `== drift`: each repeated baseline's range and trend over the run.
///
/// A warning line follows when its range exceeds [`DRIFT_WARN_REL_RANGE`].
pub(super) fn drift(out: &mut Out, list: &[DriftEntry]) {
    out.line("== drift (baselines measured beside every cell, over the run)".to_string());
    if list.is_empty() {
        out.line("(no repeated baseline in this run)".to_string());
        return;
    }
    for e in list {
        let d = &e.drift;
        let trend = if d.rel_slope_ci95.iter().all(|v| v.is_finite()) {
            format!(
                "trend {}%/h [{}, {}]",
                fmt_signed(100.0 * d.rel_slope_per_hour),
                fmt_num(Some(100.0 * d.rel_slope_ci95[0])),
                fmt_num(Some(100.0 * d.rel_slope_ci95[1]))
            )
        } else {
            format!(
                "trend {}%/h (no CI from 2 points)",
                fmt_signed(100.0 * d.rel_slope_per_hour)
            )
        };
        out.line(format!(
            "{} {} {}: {} baselines over {} s, p50 {}..{}, range {}% of the median, {}",
            e.backend,
            e.mechanism,
            e.label,
            d.n,
            fmt_num(Some(d.span_s)),
            fmt_latency(Some(d.min)),
            fmt_latency(Some(d.max)),
            fmt_pct(d.rel_range),
            trend
        ));
        if d.rel_range > DRIFT_WARN_REL_RANGE {
            out.line(format!(
                "  ! drift: this baseline moved {}% over the run (more than {}%): cells far apart in \
                 time compare only through their own baselines",
                fmt_pct(d.rel_range),
                fmt_pct(DRIFT_WARN_REL_RANGE)
            ));
        }
    }
}

/// `== cells`: per suite, one line per cell with its raw figures, overhead and validity flags.
///
/// Cells come in (backend, mechanism, metric, point) order; the overhead is over the cell's own
/// baseline.
pub(super) fn cells(out: &mut Out, r: &Results) {
    out.line("== cells (raw figures; overhead over the interleaved baseline, 95% CI)".to_string());
    for suite in &r.suites {
        let mut cells: Vec<&Cell> = r.cells.iter().filter(|c| c.suite == suite.name).collect();
        if cells.is_empty() {
            continue;
        }
        sort_cells(&mut cells);
        out.line(format!("[{}]", suite.name));
        let varying = varying_axes(&cells);
        for c in &cells {
            cell_lines(out, c, &varying);
        }
    }
}

/// A cell's lines: raw figures, overhead, flags.
fn cell_lines(out: &mut Out, c: &Cell, varying: &BTreeSet<&'static str>) {
    let axes = axis_labels(c, varying);
    let basis = match (c.percentile_basis, c.batch_k) {
        (PercentileBasis::BatchMeans, Some(k)) => format!(" (K={k} batch means)"),
        (PercentileBasis::BatchMeans, None) => " (batch means)".to_string(),
        (PercentileBasis::Calls, _) => String::new(),
    };
    out.line(format!(
        "{} {} {} {}: p50 {} p99 {} mean {} sd {} {}{}",
        c.backend,
        c.mechanism,
        short_metric(&c.metric),
        axes.join(","),
        fmt_latency(Some(c.p50)),
        fmt_latency(Some(c.p99)),
        fmt_latency(Some(c.mean)),
        fmt_num(Some(c.stddev)),
        c.unit,
        basis
    ));
    if let Some(o) = &c.overhead {
        let base = c
            .baseline
            .map(|b| format!(" over baseline p50 {}", fmt_latency(Some(b.p50))))
            .unwrap_or_default();
        out.line(format!(
            "  {} {} [{}, {}]{base}; mean shift {} [{}, {}]",
            fmt_signed(o.p50_ns),
            c.unit,
            fmt_num(Some(o.p50_ci95_ns[0])),
            fmt_num(Some(o.p50_ci95_ns[1])),
            fmt_signed(o.mean_ns),
            fmt_num(Some(o.mean_ci95_ns[0])),
            fmt_num(Some(o.mean_ci95_ns[1])),
        ));
    }
    for flag in &c.validity.flags {
        out.line(format!("  ! {}: {}", flag.code, flag.why));
    }
    for note in &c.validity.notes {
        out.line(format!("  note: {note}"));
    }
}

/// The command that reproduces the run: the saved command line, its program named `hookbench`.
///
/// The run itself may have been started as e.g. `./target/release/hookbench`.
pub fn reproduce_command(argv: &[String]) -> String {
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

/// The margin of the `sharing` lines: a change of the per-program slope counts when beyond it.
///
/// As a share of the mechanism's one-CPU slope: 10%, about 1.3 to 2 ns per program for the
/// kernel's filters and programs on this project's VM, above one run's noise there.
pub const SHARING_MARGIN_REL: f64 = 0.10;

/// Whether a change `d` +- `h` (95% CI half-width) lies beyond `margin`, within it, or neither.
pub(super) fn change_verdict(d: f64, h: f64, margin: f64) -> &'static str {
    if d - h > margin || d + h < -margin {
        "shows"
    } else if d.abs() + h <= margin {
        "does not show"
    } else {
        "inconclusive (CI wider than the margin)"
    }
}

/// For a suite with many-CPU kernel cells: whether sharing a chain or an array shows.
///
/// Per mechanism (`seccomp-cpus-*`, `cgroup-bpf-cpus-*`): the per-program slope (fit over
/// `programs`, overhead) at P = 1 and at the largest P measured, the change with its 95% CI, and
/// a verdict against [`SHARING_MARGIN_REL`] of the one-CPU slope; per family, shared's change
/// less own's (what sharing adds beyond running on P CPUs). Then the throughput at each P at
/// the most programs, with its efficiency against P x the one-CPU figure, and each CPU's p50
/// and p99.
pub(super) fn sharing(out: &mut Out, r: &Results, suite: &SuiteInfo) {
    let fits: Vec<&crate::schema::Fit> = r
        .fits
        .iter()
        .filter(|f| {
            f.suite == suite.name && f.backend == "kernel" && f.x_axis == "programs" && f.mechanism.contains("-cpus-")
        })
        .collect();
    if fits.is_empty() {
        return;
    }
    let p_of = |f: &crate::schema::Fit| f.fixed.get("cpus").and_then(serde_json::Value::as_u64).unwrap_or(1);
    let half = |f: &crate::schema::Fit| (f.slope_ci95[1] - f.slope_ci95[0]) / 2.0;
    out.line(format!(
        "[{}] sharing on the kernel: per-program slope (ns, 95% CI) at P = 1 and the largest P; a change \
         shows when its CI lies beyond {}% of the P = 1 slope",
        suite.name,
        (SHARING_MARGIN_REL * 100.0).round()
    ));
    // (change, half-width, margin) per mechanism, for the family lines.
    let mut changes: std::collections::BTreeMap<&str, (f64, f64, f64)> = std::collections::BTreeMap::new();
    let mechanisms: BTreeSet<&str> = fits.iter().map(|f| f.mechanism.as_str()).collect();
    for m in mechanisms {
        let mut own: Vec<&crate::schema::Fit> = fits.iter().copied().filter(|f| f.mechanism == m).collect();
        own.sort_by_key(|f| p_of(f));
        let (Some(one), Some(top)) = (own.first().copied(), own.last().copied()) else {
            continue;
        };
        let mut line = format!(
            "{m}: P={} {} +-{}",
            p_of(one),
            fmt_signed(one.slope),
            fmt_num(Some(half(one)))
        );
        if p_of(top) > p_of(one) {
            let d = top.slope - one.slope;
            let h = half(top).hypot(half(one));
            let margin = SHARING_MARGIN_REL * one.slope.abs();
            changes.insert(m, (d, h, margin));
            line.push_str(&format!(
                ", P={} {} +-{}; change {} +-{} (margin {}): {}",
                p_of(top),
                fmt_signed(top.slope),
                fmt_num(Some(half(top))),
                fmt_signed(d),
                fmt_num(Some(h)),
                fmt_num(Some(margin)),
                change_verdict(d, h, margin)
            ));
        } else {
            line.push_str("; one P measured, nothing to compare");
        }
        out.line(line);
    }
    for family in ["seccomp-cpus", "cgroup-bpf-cpus"] {
        let (own, shared) = (format!("{family}-own"), format!("{family}-shared"));
        if let (Some(o), Some(s)) = (changes.get(own.as_str()), changes.get(shared.as_str())) {
            let (d, h, margin) = (s.0 - o.0, s.1.hypot(o.1), o.2);
            out.line(format!(
                "{family}: shared's change less own's {} +-{} ns per program (margin {}): sharing {}",
                fmt_signed(d),
                fmt_num(Some(h)),
                fmt_num(Some(margin)),
                change_verdict(d, h, margin)
            ));
        }
    }
    let cells: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.suite == suite.name && c.backend == "kernel" && !c.per_cpu.is_empty())
        .collect();
    let Some(n_max) = cells.iter().map(|c| c.params.programs).max() else {
        return;
    };
    let mechanisms: BTreeSet<&str> = cells.iter().map(|c| c.mechanism.as_str()).collect();
    for m in mechanisms {
        let mut at: Vec<&&Cell> = cells
            .iter()
            .filter(|c| c.mechanism == m && c.params.programs == n_max)
            .collect();
        at.sort_by_key(|c| c.params.cpus);
        let one = at
            .iter()
            .find(|c| c.params.cpus == 1)
            .and_then(|c| c.throughput_hooks_per_sec);
        let parts: Vec<String> = at
            .iter()
            .filter_map(|c| {
                let t = c.throughput_hooks_per_sec?;
                let eff = one
                    .filter(|o| *o > 0.0)
                    .map(|o| {
                        format!(
                            " ({}% of P x one CPU)",
                            fmt_num(Some(100.0 * t / (o * f64::from(c.params.cpus))))
                        )
                    })
                    .unwrap_or_default();
                let per: Vec<String> = c
                    .per_cpu
                    .iter()
                    .map(|p| {
                        format!(
                            "cpu{} p50 {} p99 {}",
                            p.cpu,
                            fmt_latency(Some(p.p50)),
                            fmt_latency(Some(p.p99))
                        )
                    })
                    .collect();
                Some(format!(
                    "P={} {} M/s{eff} [{}]",
                    c.params.cpus,
                    fmt_num(Some(t / 1e6)),
                    per.join(", ")
                ))
            })
            .collect();
        out.line(format!("{m} N={n_max}: {}", parts.join("; ")));
    }
}
