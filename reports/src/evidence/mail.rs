//! `evidence.txt`, the mail: at most [`MAX_LINES`] lines of 72 ASCII columns.
//!
//! A robot-style header, the verdict table, the warnings that apply and the command that
//! reproduces the run. Every part is cut to fit rather than wrapped without end; a cut line ends in `...`, and the
//! last line points at `evidence-full.txt`, which holds everything.

use super::sections::reproduce_command;
use super::text::{at_most, one_line};
use super::verdicts::{table, Detail};
use super::{fmt_num, fmt_pct, DRIFT_WARN_REL_RANGE, FULL_FILE};
use crate::host::{kernel_release, Execution, HostClass};
use crate::schema::{Cell, Fit, Results};
use std::collections::{BTreeMap, BTreeSet};

/// Most lines `evidence.txt` holds: what fits in a reply beside the text it answers.
pub const MAX_LINES: usize = 80;

/// Most lines of the header.
pub const MAX_HEADER_LINES: usize = 12;

/// Fewest lines the warnings get when the verdict table would take all the room.
const MIN_WARNING_LINES: usize = 8;

/// Most lines the reproduce command takes; a longer one is cut (it is whole in the full file).
const MAX_COMMAND_LINES: usize = 4;

/// The CPU vulnerabilities whose mitigations change what a hook dispatch costs.
///
/// Programs are called indirectly (`spectre_v2`: retpolines, IBRS, BHI; `indirect_target_selection`),
/// every call returns (`retbleed`, `srso`: return thunks), and seccomp turns on SSBD for a task
/// with filters unless told otherwise (`spec_store_bypass`).
///
/// Each with the short name the header gives it.
const MITIGATIONS_THAT_MATTER: [(&str, &str); 5] = [
    ("spectre_v2", "spectre_v2"),
    ("spec_store_bypass", "ssb"),
    ("retbleed", "retbleed"),
    ("srso", "srso"),
    ("indirect_target_selection", "its"),
];

/// Renders `evidence.txt`; see [`super::render`].
pub(super) fn render(r: &Results) -> String {
    let header = header(r);
    let mut reproduce = vec!["reproduce:".to_string()];
    let command = format!("  {}", reproduce_command(&r.command_line));
    reproduce.extend(at_most(&command, MAX_COMMAND_LINES));
    let footer = format!("every fit, cell, flag and figure: {FULL_FILE}");
    // Three blank lines part the four blocks; the warnings take what the whole table leaves,
    // and at least MIN_WARNING_LINES when it leaves less.
    let fixed = header.len() + reproduce.len() + 1 + 3;
    let room = MAX_LINES.saturating_sub(fixed);
    let whole_table = table(r, Detail::Full).len();
    let warnings = warnings(r, room.saturating_sub(whole_table).max(MIN_WARNING_LINES));
    let table = fitted_table(r, room.saturating_sub(warnings.len()));
    let mut lines = header;
    lines.push(String::new());
    lines.extend(table);
    lines.push(String::new());
    lines.extend(warnings);
    lines.push(String::new());
    lines.extend(reproduce);
    lines.push(footer);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The verdict table in at most `room` lines: as much of each row as fits, else rows cut.
fn fitted_table(r: &Results, room: usize) -> Vec<String> {
    let full = table(r, Detail::Full);
    if full.len() <= room {
        return full;
    }
    for (detail, note) in [
        (Detail::Pair, "rows cut to the first two fits; all of them"),
        (Detail::Line, "rows cut to their first fit; all of them"),
        (Detail::Matrix, "verdicts only; their figures"),
    ] {
        let mut t = table(r, detail);
        if t.len() < room {
            t.push(one_line(&format!("  ({note}: {FULL_FILE})")));
            return t;
        }
    }
    let mut t = table(r, Detail::Matrix);
    let keep = room.saturating_sub(1);
    let cut = t.len().saturating_sub(keep);
    t.truncate(keep);
    t.push(one_line(&format!("  ... {cut} more claims' verdicts: {FULL_FILE}")));
    t
}

/// The header, at most [`MAX_HEADER_LINES`] lines, each cut to one line.
///
/// As a kernel test robot report opens: what was measured, on what, with which parameters;
/// then the mitigations that matter, the clock, and whether the timings are native.
fn header(r: &Results) -> Vec<String> {
    let env = &r.environment;
    let mut ids: Vec<u32> = r.claims.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let claims = match (ids.first(), ids.last()) {
        (Some(a), Some(b)) if a != b => format!("claims {a}-{b}"),
        (Some(a), _) => format!("claim {a}"),
        _ => "no claims".to_string(),
    };
    let backends: BTreeSet<&str> = r
        .cells
        .iter()
        .map(|c| c.backend.as_str())
        .chain(r.claims.iter().map(|c| c.backend.as_str()))
        .collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    let class = HostClass::of(r);
    let mut lines = vec![
        format!(
            "hookbench {} measured security hook dispatch ({claims}) on:",
            r.hookbench_version
        ),
        format!(
            "kernel: {} {}, lsm {}",
            kernel_release(r),
            class.arch,
            probe_value(env.get("lsm_list"))
        ),
        format!("config: {}", config(env)),
        format!(
            "test machine: {} x {}, {}",
            class.nr_cpus,
            class.cpu_model,
            class.execution.as_str()
        ),
    ];
    if let Some(why) = not_native(r, class.execution) {
        lines.push(why);
    }
    lines.extend([
        format!(
            "parameters: profile {}, backends {}, seed {}",
            r.profile,
            if backends.is_empty() {
                "none".to_string()
            } else {
                backends.join("+")
            },
            r.order_seed
        ),
        format!(
            "suites: {}",
            r.suites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
        ),
        format!("mitigations: {}", mitigations(env)),
        format!(
            "clock: {}, {} ns a read; governor: {}; bpf jit: {}",
            r.env_str("clock"),
            fmt_num(env.get("clock_overhead_ns").and_then(|v| v.as_f64())),
            probe_value(env.get("governor")),
            probe_value(env.get("bpf_jit"))
        ),
        format!(
            "run: {}, {}, {} to {}",
            if r.complete { "complete" } else { "INCOMPLETE (stopped)" },
            match env.get("privileged").and_then(|v| v.as_bool()) {
                Some(true) => "as root",
                Some(false) => "unprivileged",
                None => "privileges unknown",
            },
            whole_seconds(&r.started_at),
            finished(&r.started_at, r.finished_at.as_deref())
        ),
    ]);
    if backends == ["model"] {
        lines.push("model backend only: a userspace model of the dispatch, not kernel timings".to_string());
    }
    lines.truncate(MAX_HEADER_LINES);
    // Each line is cut to one, except that the lines of WRAPPED_HEADER (in that order) may take a
    // second while the header stays within its limit.
    let mut out: Vec<Vec<String>> = lines.iter().map(|l| vec![one_line(l)]).collect();
    for prefix in WRAPPED_HEADER {
        let Some(i) = lines.iter().position(|l| l.starts_with(prefix)) else {
            continue;
        };
        let two = at_most(&lines[i], 2);
        if out.iter().map(Vec::len).sum::<usize>() - out[i].len() + two.len() <= MAX_HEADER_LINES {
            out[i] = two;
        }
    }
    out.concat()
}

/// Header lines that may take a second line, most useful first.
const WRAPPED_HEADER: [&str; 4] = ["mitigations: ", "parameters: ", "config: ", "suites: "];

/// `2026-12-06T21:59:38.614424701+00:00` without its fraction of a second.
fn whole_seconds(t: &str) -> String {
    match t.split_once('.') {
        Some((head, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}{zone}")
        }
        None => t.to_string(),
    }
}

/// When the run finished, without the date when it is the start's.
fn finished(started: &str, finished: Option<&str>) -> String {
    let Some(f) = finished else {
        return "(not finished)".to_string();
    };
    let f = whole_seconds(f);
    match (started.split_once('T'), f.split_once('T')) {
        (Some((d0, _)), Some((d1, time))) if d0 == d1 => time.to_string(),
        _ => f.clone(),
    }
}

/// The kernel config options the run recorded, `NAME=value` without `CONFIG_`.
fn config(env: &serde_json::Value) -> String {
    let options = super::header::config_options(env);
    if options.is_empty() {
        "unknown (no kernel config readable)".to_string()
    } else {
        options.join(" ")
    }
}

/// The mitigations of [`MITIGATIONS_THAT_MATTER`] in force, `name=what` (the first clause).
fn mitigations(env: &serde_json::Value) -> String {
    let list: BTreeMap<&str, &str> = env
        .get("mitigations")
        .and_then(|v| v.as_array())
        .map(|l| {
            l.iter()
                .filter_map(|m| Some((m.get(0)?.as_str()?, m.get(1)?.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        return "unknown (no /sys/devices/system/cpu/vulnerabilities)".to_string();
    }
    let shown: Vec<String> = MITIGATIONS_THAT_MATTER
        .iter()
        .filter_map(|(name, short)| {
            let status = list.get(name)?;
            if *status == "Not affected" {
                return None;
            }
            let what = status.strip_prefix("Mitigation: ").unwrap_or(status);
            let what = what.split(';').next().unwrap_or(what).trim();
            Some(format!("{short}={}", what.replace(" / ", "/").replace(' ', "_")))
        })
        .collect();
    if shown.is_empty() {
        "none needed: the CPU is not affected by spectre_v2, ssb, retbleed, srso, its".to_string()
    } else {
        shown.join(" ")
    }
}

/// An environment probe's value, or `n/a` when it could not be read (why: in the full file).
fn probe_value(p: Option<&serde_json::Value>) -> String {
    match p {
        Some(p) if p.get("available").and_then(|a| a.as_bool()) != Some(false) => {
            p.get("value").and_then(|v| v.as_str()).unwrap_or("unknown").to_string()
        }
        Some(_) => "n/a".to_string(),
        None => "unknown".to_string(),
    }
}

/// For an emulated or User-Mode Linux kernel: a line saying how far its timings are native.
///
/// Bare metal and virtualized guests are said on the test machine line.
fn not_native(r: &Results, e: Execution) -> Option<String> {
    match e {
        Execution::BareMetal | Execution::Virtualized => None,
        Execution::Emulated => Some(format!(
            "EMULATED ({}): timings describe the emulator, not comparable with bare metal",
            r.env_str("emulated")
        )),
        Execution::Uml => {
            let uml = r.environment.get("uml");
            let field = |k: &str| uml.and_then(|u| u.get(k)).and_then(|v| v.as_str()).unwrap_or("unknown");
            Some(format!(
                "uml: {}, BPF bodies {}: in-kernel cells only",
                field("release"),
                field("bpf_bodies")
            ))
        }
    }
}

/// A warning group naming its members, `! <tag>: <n> of <total> <what>: a, b`; none when empty.
fn named_group(tag: &str, names: &[&str], total: usize, what: &str) -> Option<String> {
    (!names.is_empty()).then(|| format!("! {tag}: {} of {total} {what}: {}", names.len(), names.join(", ")))
}

/// The validity warnings that apply, one group per kind with its count, in at most `max` lines.
///
/// An incomplete run, drifting baselines, curved fits behind verdicts, decompositions whose
/// methods disagree, cell flags by code (how many cells, how many of them behind a verdict's
/// fits, one example; those behind the most first), and skipped mechanisms by reason.
fn warnings(r: &Results, max: usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    if !r.complete {
        groups.push("! INCOMPLETE: the run was stopped; verdicts use the cells measured so far".to_string());
    }
    let drifting: Vec<_> = r
        .drift
        .iter()
        .filter(|d| d.drift.rel_range > DRIFT_WARN_REL_RANGE)
        .collect();
    if let Some(worst) = drifting
        .iter()
        .max_by(|a, b| a.drift.rel_range.total_cmp(&b.drift.rel_range))
    {
        groups.push(format!(
            "! drift: {} of {} baselines moved over {}% in the run (most: {}%, {} {})",
            drifting.len(),
            r.drift.len(),
            fmt_pct(DRIFT_WARN_REL_RANGE),
            fmt_pct(worst.drift.rel_range),
            worst.backend,
            worst.mechanism
        ));
    }
    let behind = verdict_fits(r);
    let curved: Vec<&str> = behind
        .iter()
        .filter(|f| f.lack_of_fit.is_some_and(|l| !l.holds))
        .map(|f| f.mechanism.as_str())
        .collect();
    groups.extend(named_group(
        "curved",
        &curved,
        behind.len(),
        "fits behind verdicts are not straight lines (lack-of-fit)",
    ));
    let disagree: Vec<&str> = r
        .decompositions
        .iter()
        .filter(|d| d.agreement.as_ref().is_some_and(|a| !a.agrees))
        .map(|d| d.mechanism.as_str())
        .collect();
    groups.extend(named_group(
        "split",
        &disagree,
        r.decompositions.len(),
        "native + entry + per-program splits disagree between methods",
    ));
    let verdict_cells = verdict_cells(r);
    let mut by_code: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
    for c in &r.cells {
        for f in &c.validity.flags {
            by_code.entry(f.code.as_str()).or_default().push(c);
        }
    }
    let mut by_code: Vec<(&str, Vec<&Cell>)> = by_code.into_iter().collect();
    let under = |cells: &[&Cell]| cells.iter().filter(|c| verdict_cells.contains(c.id.as_str())).count();
    // The kinds that concern a verdict's cells most come first.
    by_code.sort_by_key(|(_, cells)| std::cmp::Reverse((under(cells), cells.len())));
    for (code, cells) in &by_code {
        let under = under(cells);
        let example = cells
            .first()
            .and_then(|c| c.validity.flags.iter().find(|f| f.code == *code))
            .map(|f| f.why.as_str())
            .unwrap_or("");
        groups.push(format!(
            "! {code}: {} of {} cells ({under} behind a verdict), e.g. {example}",
            cells.len(),
            r.cells.len()
        ));
    }
    if !r.skipped.is_empty() {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &r.skipped {
            *reasons.entry(s.reason.as_str()).or_default() += 1;
        }
        let (most, n) = reasons
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(r, n)| (*r, *n))
            .unwrap_or(("", 0));
        groups.push(format!(
            "skipped: {} mechanism runs for {} reason(s); {n} of them: {most}",
            r.skipped.len(),
            reasons.len()
        ));
    }
    let mut out = vec![if groups.is_empty() {
        "warnings: none (no cell flagged, no baseline drifted, every line holds)".to_string()
    } else {
        format!("warnings (one line per kind; each cell's own: {FULL_FILE}):")
    }];
    // Two lines a kind while they all fit, else one; then the kinds that do not fit are counted.
    let two: Vec<Vec<String>> = groups.iter().map(|g| at_most(g, 2)).collect();
    let per_kind: Vec<Vec<String>> = if out.len() + two.iter().map(Vec::len).sum::<usize>() <= max {
        two
    } else {
        groups.iter().map(|g| vec![one_line(g)]).collect()
    };
    for (i, lines) in per_kind.iter().enumerate() {
        let left = groups.len() - i;
        if out.len() + lines.len() + usize::from(left > 1) > max {
            out.push(format!("... {left} more kinds of warning: {FULL_FILE}"));
            break;
        }
        out.extend(lines.iter().cloned());
    }
    out
}

/// The fits some verdict compared (all fits matching a compared entry).
fn verdict_fits(r: &Results) -> Vec<&Fit> {
    r.fits
        .iter()
        .filter(|f| r.claims.iter().any(|c| c.compared.iter().any(|w| w.is_over(f))))
        .collect()
}

/// Ids of the cells behind the fits some verdict compared.
fn verdict_cells(r: &Results) -> BTreeSet<&str> {
    verdict_fits(r)
        .into_iter()
        .flat_map(|f| r.cells_of(f))
        .map(|c| c.id.as_str())
        .collect()
}
