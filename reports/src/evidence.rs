//! Renders the plain-text `evidence.txt` from saved results: a robot-style header, per claim a fixed-width table and verdicts, decompositions, drift, one line per cell, and how to reproduce.
//!
//! Every latency printed (percentiles, means, native and entry costs) is a raw figure and is
//! never negative; costs over a baseline are differences and carry their sign and their 95%
//! confidence interval (`+23.4 ns [22.9, 23.9] over baseline p50 88.1`).

use crate::claims::{ClaimResult, HYPOTHESES};
use crate::schema::{Cell, Decomposition, DriftEntry, Fit, PercentileBasis, Results, SuiteInfo};
use std::collections::BTreeSet;

/// Widest line `evidence.txt` may hold (mailing-list replies wrap at 72 columns).
pub const MAX_COLUMNS: usize = 72;

/// Relative range of a baseline over a run above which evidence warns of drift (5%).
pub const DRIFT_WARN_REL_RANGE: f64 = 0.05;

/// Renders `evidence.txt` (ASCII only, so that it survives any mail client) from `results`, in
/// the manner of a kernel test robot report:
/// 1. a header: kernel release, the relevant kernel config, CPU model and count, mitigations,
///    CPU frequency governor, BPF JIT, active LSMs, clock and its overhead, privileges,
///    virtualization, backends, hookbench version, profile, measurement order and command line;
/// 2. per claim of DESIGN.md: its hypothesis, one fixed-width table per backend and fitted axis
///    (one row per mechanism: slope +- 95% CI half-width, entry cost, raw p50 and p99 of the
///    cell at the largest x), whether each fit's line holds (per-segment marginal costs where
///    it does not), the native + entry + per-program split where one exists, and one verdict
///    line per backend naming the fits compared and the margin;
/// 3. the suites answering no claim (scaling, set-up), as tables too;
/// 4. `== decompositions`: every native + entry + per-program split, by method, and whether the
///    fit and the selftest's method agree within their limit (said beside the figure);
/// 5. `== drift`: how far each repeated baseline moved over the run;
/// 6. one line per measured cell (raw `p50 .. p99 .. mean .. sd`, what the percentiles are of),
///    its overhead over its interleaved baseline with the 95% CI, and its validity flags;
/// 7. what was skipped and why, and how to reproduce the run (the exact command).
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
            verdict(&mut out, c);
        }
    }
    for suite in results.suites.iter().filter(|s| s.claim.is_none()) {
        out.blank();
        out.line(format!("== {}: {}", suite.name, suite.hypothesis));
        fit_tables(&mut out, results, suite);
        floor_ratios(&mut out, results, suite);
    }
    out.blank();
    decompositions(&mut out, &results.decompositions);
    out.blank();
    drift(&mut out, &results.drift);
    out.blank();
    cells(&mut out, results);
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

/// One claim's verdict line, and the fits it compared with the margin it used.
fn verdict(out: &mut Out, c: &ClaimResult) {
    out.line(format!(
        "verdict [{}]: {}: {}",
        c.backend,
        c.verdict.as_str().to_uppercase(),
        c.evidence
    ));
    if c.compared.is_empty() {
        return;
    }
    let mut xs: Vec<&str> = c.compared.iter().map(|f| f.x.as_str()).collect();
    xs.dedup();
    let fits: Vec<String> = c
        .compared
        .iter()
        .map(|f| format!("{}/{} ({})", f.suite, f.mechanism, f.body))
        .collect();
    let margin = c
        .margin
        .map(|m| format!("; margin +-{} per {}", fmt_num(Some(m)), xs.join("/")))
        .unwrap_or_default();
    out.line(format!("  compared: {} over {}{margin}", fits.join(", "), xs.join("/")));
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
    out.line(format!(
        "order: seed {}: sweep points in a shuffled order, each cell's repetitions alternating \
         with its baseline's",
        r.order_seed
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
pub(crate) fn short_metric(metric: &str) -> &str {
    metric
        .strip_suffix("_latency_ns")
        .or_else(|| metric.strip_suffix("_bytes"))
        .or_else(|| metric.strip_suffix("_ns"))
        .unwrap_or(metric)
}

/// The fixed-width tables of `suite`'s fits: one per backend, metric and x, one row per fit
/// (`mechanism[ qualifiers]  slope +-CI  entry  p50  p99`, raw p50/p99 of the cell at the largest
/// x), then per fit whether its line holds, and the native + entry + per-program split where a
/// decomposition of the fit exists.
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
        let over = if group.iter().all(|f| f.y == "overhead") {
            " over baseline"
        } else {
            ""
        };
        out.line(format!(
            "[{}] {} {} ({}{}) vs {}: slope per {}, 95% CI",
            suite.name,
            backend,
            short_metric(metric),
            unit,
            over,
            x,
            x
        ));
        out.raw(format!(
            "  {:<24} {:>8}   {:<7} {:>7} {:>7} {:>7}",
            "mechanism", "slope", "95%CI", "entry", "p50@max", "p99@max"
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
                fmt_latency(f.entry.map(|e| e.entry)),
                fmt_latency(last.map(|c| c.p50)),
                fmt_latency(last.map(|c| c.p99)),
            ));
        }
        for f in &group {
            fit_details(out, f, &fit_label(f, &group));
        }
        for f in group.iter().filter(|f| f.x_axis == "programs") {
            for d in r
                .decompositions
                .iter()
                .filter(|d| d.backend == f.backend && d.mechanism == f.mechanism && d.method == "fit")
            {
                out.line(format!(
                    "  {}: native {} ns + entry {} ns{} + {} ns per program (N={}..{}){}",
                    d.mechanism,
                    fmt_latency(Some(d.native_ns)),
                    fmt_latency(Some(d.entry_ns)),
                    if d.entry_clamped { " (<0, shown as 0)" } else { "" },
                    fmt_num(Some(d.per_program_ns)),
                    d.range[0],
                    d.range[1],
                    agreement_text(d)
                ));
            }
        }
    }
}

/// Whether a fit's line holds (lack-of-fit), its marginal costs per segment where it does not,
/// and a clamped entry cost.
fn fit_details(out: &mut Out, f: &Fit, label: &str) {
    let line = match &f.lack_of_fit {
        Some(l) if l.holds => "line holds".to_string(),
        Some(l) => format!(
            "curved: worst at x={}, {}% off (lack-of-fit p {})",
            fmt_x(l.worst_x),
            fmt_pct(l.max_rel_dev),
            fmt_p(l.p_value)
        ),
        None => "line not tested (fewer than 3 points with repeats)".to_string(),
    };
    let entry = match f.entry {
        Some(e) if e.clamped => "; entry 0 (<0, shown as 0)",
        _ => "",
    };
    out.line(format!("  {label}: {line}{entry}"));
    let curved = f.lack_of_fit.is_some_and(|l| !l.holds);
    if curved && !f.segments.is_empty() {
        let parts: Vec<String> = f
            .segments
            .iter()
            .map(|s| {
                let ci = s.slope.ci(0.95);
                format!(
                    "{}-{} {} [{}, {}]",
                    fmt_x(s.x0),
                    fmt_x(s.x1),
                    fmt_signed(s.slope.value),
                    fmt_num(Some(ci[0])),
                    fmt_num(Some(ci[1]))
                )
            })
            .collect();
        out.line(format!("    per {} by segment: {}", f.x, parts.join("; ")));
    }
}

/// How a decomposition compares with the other method's, for the end of its figure's line:
/// empty without a comparison, else "agrees with ..." or "DISAGREES with ..." and by how much.
pub(crate) fn agreement_text(d: &Decomposition) -> String {
    let Some(a) = &d.agreement else {
        return String::new();
    };
    let limit = fmt_pct(a.limit);
    if a.agrees {
        return format!(
            "; agrees with {} ({}) within {limit}%",
            a.other_method, a.other_mechanism
        );
    }
    let mut apart = Vec::new();
    if a.per_program_rel_diff.is_nan() || a.per_program_rel_diff > a.limit {
        apart.push(format!("per program {}% apart", fmt_pct(a.per_program_rel_diff)));
    }
    if a.entry_rel_diff.is_finite() && a.entry_rel_diff > a.limit {
        apart.push(format!("entry {}% apart", fmt_pct(a.entry_rel_diff)));
    }
    if apart.is_empty() {
        apart.push("parts apart".to_string());
    }
    format!(
        "; DISAGREES with {} ({}): {}, limit {limit}%",
        a.other_method,
        a.other_mechanism,
        apart.join(", ")
    )
}

/// `== decompositions`: every split of a mechanism's cost, by backend, mechanism and method.
fn decompositions(out: &mut Out, list: &[Decomposition]) {
    out.line("== decompositions (native + entry + N x per program, ns; fit vs selftest)".to_string());
    if list.is_empty() {
        out.line("(none in this run)".to_string());
        return;
    }
    let mut sorted: Vec<&Decomposition> = list.iter().collect();
    sorted.sort_by(|a, b| (&a.backend, &a.mechanism, &a.method).cmp(&(&b.backend, &b.mechanism, &b.method)));
    for d in sorted {
        let ci = d.per_program_ci95;
        out.line(format!(
            "{} {} [{}, N={}..{}]: native {} + entry {}{} + {} [{}, {}] per program{}; parts add up within {}%",
            d.backend,
            d.mechanism,
            d.method,
            d.range[0],
            d.range[1],
            fmt_latency(Some(d.native_ns)),
            fmt_latency(Some(d.entry_ns)),
            if d.entry_clamped { " (<0, shown as 0)" } else { "" },
            fmt_num(Some(d.per_program_ns)),
            fmt_num(Some(ci[0])),
            fmt_num(Some(ci[1])),
            agreement_text(d),
            fmt_pct(d.max_relative_error)
        ));
    }
}

/// The most a set-up or tear-down may take against the floor measured in the same run (and the
/// floor against the same loops in plain C) before evidence says it is over.
pub const FLOOR_RATIO_LIMIT: f64 = 1.25;

/// For the set-up suites: each point's set-up and tear-down (median of the repetitions) against
/// the floor of the same run (`<mechanism>-floor`) and the floor against the C reference
/// (`<mechanism>-c`), with OVER beside a ratio above [`FLOOR_RATIO_LIMIT`].
fn floor_ratios(out: &mut Out, r: &Results, suite: &SuiteInfo) {
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

/// `== drift`: each repeated baseline's range and trend over the run, with a warning line when
/// its range exceeds [`DRIFT_WARN_REL_RANGE`].
fn drift(out: &mut Out, list: &[DriftEntry]) {
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

/// `== cells`: per suite, one line per cell in (backend, mechanism, metric, point) order with raw
/// figures, then its overhead over its baseline and its validity flags.
fn cells(out: &mut Out, r: &Results) {
    out.line("== cells (raw figures; overhead over the interleaved baseline, 95% CI)".to_string());
    for suite in &r.suites {
        let mut cells: Vec<&Cell> = r.cells.iter().filter(|c| c.suite == suite.name).collect();
        if cells.is_empty() {
            continue;
        }
        cells.sort_by(|a, b| {
            (&a.backend, &a.mechanism, &a.metric, &a.params).cmp(&(&b.backend, &b.mechanism, &b.metric, &b.params))
        });
        out.line(format!("[{}]", suite.name));
        let varying = varying_axes(&cells);
        for c in &cells {
            cell_lines(out, c, &varying);
        }
    }
}

/// A cell's lines: raw figures, overhead, flags.
fn cell_lines(out: &mut Out, c: &Cell, varying: &BTreeSet<&'static str>) {
    let axes: Vec<String> = varying
        .iter()
        .map(|a| match c.params.axis(a) {
            Some(v) => format!("{a}={v}"),
            None => format!("{a}={}", c.params.body),
        })
        .collect();
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

/// A latency (percentile, mean, native or entry cost): never printed negative; a negative one
/// is a broken figure and shows as `invalid`.
pub(crate) fn fmt_latency(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 0.0 => "invalid".to_string(),
        other => fmt_num(other),
    }
}

/// A difference (overhead, slope) with its sign always shown.
pub(crate) fn fmt_signed(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format!("+{}", fmt_num(Some(v)))
    } else {
        fmt_num(Some(v))
    }
}

/// An x value (a count of programs, cgroups...): whole numbers without decimals.
pub(crate) fn fmt_x(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        fmt_num(Some(v))
    }
}

/// A fraction as a percentage with one decimal below 10% and none above (`0.123` -> `12`).
pub(crate) fn fmt_pct(v: f64) -> String {
    let p = 100.0 * v;
    if !p.is_finite() {
        "n/a".to_string()
    } else if p.abs() < 10.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.0}")
    }
}

/// A p-value: three decimals, `<0.001` below.
pub(crate) fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "n/a".to_string()
    } else if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
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

/// The numeric axes (and `body`) whose value differs between `cells`, in `NUMERIC_AXES` order.
pub(crate) fn varying_axes(cells: &[&Cell]) -> BTreeSet<&'static str> {
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

/// Splits `s` into lines of at most [`MAX_COLUMNS`] characters at spaces. The line's leading
/// spaces (at most [`MAX_INDENT`]) are kept, and continuation lines are indented four spaces
/// more. A single word longer than the limit is cut.
pub fn wrap(s: &str) -> Vec<String> {
    let leading = (s.len() - s.trim_start_matches(' ').len()).min(MAX_INDENT);
    let indent = " ".repeat(leading);
    let cont = format!("{indent}    ");
    let mut lines = Vec::new();
    let mut cur = indent.clone();
    let mut has_word = false;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if has_word && cur.chars().count() + 1 + word.chars().count() > MAX_COLUMNS {
            lines.push(std::mem::replace(&mut cur, cont.clone()));
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
            cur = format!("{cont}{tail}");
        }
    }
    lines.push(cur);
    lines
}

/// Deepest indentation [`wrap`] keeps, so that a continuation line always has room for text.
pub const MAX_INDENT: usize = 16;

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
    fn cell(
        mechanism: &str,
        programs: u32,
        p50: f64,
        overhead_p50: f64,
        flags: serde_json::Value,
    ) -> serde_json::Value {
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

    /// The text with every wrapped line joined back into one (a continuation is indented four
    /// spaces more than the line it continues).
    fn logical(text: &str) -> String {
        let mut out: Vec<(usize, String)> = Vec::new();
        for l in text.lines() {
            let indent = l.len() - l.trim_start().len();
            if let Some((base, cur)) = out.last_mut() {
                if !l.trim().is_empty() && indent == *base + 4 {
                    cur.push(' ');
                    cur.push_str(l.trim_start());
                    continue;
                }
            }
            out.push((indent, l.to_string()));
        }
        out.into_iter().map(|(_, s)| s).collect::<Vec<_>>().join("\n")
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
        let text = render(&results(serde_json::json!({})));
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
        let text = render(&results(serde_json::json!({})));
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
        let text = logical(&render(&r));
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
        let text = render(&r);
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
        let text = logical(&render(&agree));
        assert!(
            text.contains("agrees with selftest (seccomp-selftest-split) within 15%") && !text.contains("DISAGREES"),
            "{text}"
        );
        assert!(render(&results(serde_json::json!({}))).contains("== decompositions"));
    }

    #[test]
    fn drift_gives_range_and_trend_and_warns_above_five_percent() {
        let entry = |label: &str, range: f64| {
            serde_json::json!({"backend": "kernel", "mechanism": "seccomp-arg-load", "label": label,
                "points": [[0.0, 88.0], [60.0, 88.0 * (1.0 + range)]],
                "drift": {"n": 8, "first": 88.0, "last": 88.0 * (1.0 + range), "min": 88.0, "max": 88.0 * (1.0 + range),
                          "rel_range": range, "rel_slope_per_hour": 0.9, "rel_slope_ci95": [0.5, 1.3], "span_s": 60.0}})
        };
        let text = render(&results(
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
        let text = render(&r);
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
        let text = logical(&render(&r));
        let line = text
            .lines()
            .find(|l| l.contains("seccomp-arg-load hook programs=1:"))
            .expect("cell line");
        assert!(line.contains("p50 invalid") && line.contains("mean invalid"), "{line}");
        assert!(!text.contains("p50 -4") && !text.contains("mean -1"));
    }

    /// A set-up suite's lines hold each mechanism against its floor and the floor against C,
    /// and say OVER beside a ratio above the limit.
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
        let text = render(&r);
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
}
