//! Renders the plain-text evidence from saved results: the mail, and everything in full.
//!
//! `evidence.txt` ([`render`], `mail`) is the mail: a robot-style header, one verdict table of
//! claims x backends with the slopes that decided them (`verdicts`), the warnings that apply and
//! the reproduce command, in at most [`MAX_LINES`] lines. `evidence-full.txt` ([`render_full`])
//! holds all of it: a longer header (`header`), per claim a fixed-width table and verdicts
//! (`tables`), the sections that follow (`sections`: decompositions, drift, one line per cell,
//! how to reproduce). Both are written 72 ASCII columns wide (`text`) with the figures
//! formatted as `report.html` formats them (`format`).
//!
//! Every latency printed (percentiles, means, native and entry costs) is a raw figure and is
//! never negative; costs over a baseline are differences and carry their sign and their 95%
//! confidence interval (`+23.4 ns [22.9, 23.9] over baseline p50 88.1`).

mod format;
mod header;
mod mail;
#[cfg(test)]
mod mail_tests;
mod sections;
mod tables;
#[cfg(test)]
mod tests;
mod text;
mod verdicts;

#[cfg(test)]
use crate::claims::Verdict;
use crate::claims::{ClaimResult, HYPOTHESES};
use crate::schema::{Results, SuiteInfo};
use text::Out;

pub use format::fmt_num;
pub(crate) use format::{agreement_text, fmt_latency, fmt_p, fmt_pct, fmt_signed, fmt_x, short_metric, varying_axes};
pub(crate) use format::{axis_labels, sort_cells};
pub use mail::{MAX_HEADER_LINES, MAX_LINES};
pub use sections::reproduce_command;
pub use text::{unwrap_lines, wrap, MAX_COLUMNS, MAX_INDENT};

/// File name of the full evidence, which `evidence.txt` points to where it cuts detail.
pub const FULL_FILE: &str = "evidence-full.txt";

/// Relative range of a baseline over a run above which evidence warns of drift (5%).
pub const DRIFT_WARN_REL_RANGE: f64 = 0.05;

/// Largest ratio of a set-up or tear-down to its floor (and of the floor to C) that is not over.
///
/// The floor is the one measured in the same run; the C reference runs the same loops in plain C.
/// Above it, evidence says OVER.
pub const FLOOR_RATIO_LIMIT: f64 = 1.25;

/// Renders `evidence.txt` from `results`: the mail, at most [`MAX_LINES`] x [`MAX_COLUMNS`].
///
/// ASCII only; in order:
/// 1. a header of at most [`MAX_HEADER_LINES`] lines, as a kernel test robot report opens: what
///    was measured (hookbench version, claims), on what (kernel, config, CPU, execution), with
///    which parameters (profile, backends, seed, suites); the mitigations that change a hook's
///    cost, the clock, governor, BPF JIT and LSMs, and whether the run completed;
/// 2. the verdict table: per claim a heading, per backend its verdict, the fits it compared
///    (`slope +-` 95% CI half-width, read from `results.claims`, not evaluated again) and the
///    margin; rows lose their extra fits, then lines, when the table would not fit;
/// 3. the validity warnings, one line per kind with counts (flagged cells by code, drift,
///    curved fits behind verdicts, disagreeing splits, skipped mechanisms);
/// 4. the command that reproduces the run, and where the rest is ([`FULL_FILE`]).
///
/// Every line that had to be cut ends in `...`. Deterministic: the same results give the same
/// text.
pub fn render(results: &Results) -> String {
    mail::render(results)
}

/// Renders `evidence-full.txt` from `results`, in the manner of a kernel test robot report.
///
/// ASCII only, so that it survives any mail client; in order:
/// 1. a header: kernel release, the relevant kernel config, CPU model and count, mitigations,
///    CPU frequency governor, BPF JIT, active LSMs, clock and its overhead, privileges,
///    virtualization, backends, hookbench version, profile, measurement order and command line;
/// 2. per claim of ARCHITECTURE.md: its hypothesis, one fixed-width table per backend and fitted axis
///    (one row per mechanism: slope +- 95% CI half-width, entry cost, raw p50 and p99 of the
///    cell at the largest x), whether each fit's line holds (per-segment marginal costs where
///    it does not), the native + entry + per-program split where one exists, and one verdict
///    line per backend naming the fits compared and the margin; for a working-set suite, the
///    bytes each rotation read against the L2 and last-level caches;
/// 3. the suites answering no claim (scaling, set-up), as tables too; for the kernel's scaling
///    cells, whether sharing a chain or an effective array shows ([`sections::sharing`]);
/// 4. `== decompositions`: every native + entry + per-program split, by method, and whether the
///    fit and the selftest's method agree within their limit (said beside the figure);
/// 5. `== drift`: how far each repeated baseline moved over the run;
/// 6. one line per measured cell (raw `p50 .. p99 .. mean .. sd`, what the percentiles are of),
///    its overhead over its interleaved baseline with the 95% CI, and its validity flags;
/// 7. what was skipped and why, and how to reproduce the run (the exact command).
///
/// Lines longer than [`MAX_COLUMNS`] are wrapped with a four-space continuation indent.
/// Deterministic: the same results give the same text.
pub fn render_full(results: &Results) -> String {
    let mut out = Out::default();
    header::header(&mut out, results);
    for (id, hypothesis) in HYPOTHESES {
        out.blank();
        out.line(format!("== claim {id}: {hypothesis}"));
        let suites: Vec<&SuiteInfo> = results.suites.iter().filter(|s| s.claim == Some(id)).collect();
        for suite in &suites {
            tables::fit_tables(&mut out, results, suite);
            sections::working_sets(&mut out, results, suite);
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
        tables::fit_tables(&mut out, results, suite);
        sections::floor_ratios(&mut out, results, suite);
        sections::sharing(&mut out, results, suite);
    }
    out.blank();
    sections::decompositions(&mut out, &results.decompositions);
    out.blank();
    sections::drift(&mut out, &results.drift);
    out.blank();
    sections::cells(&mut out, results);
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
    out.line(sections::reproduce_command(&results.command_line));
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
