//! Renders the self-contained `report.html` from saved results, for reading a run in a browser.
//!
//! In reading order: the verdicts (a matrix of claims x backends) and, per claim, what its
//! figures show; one section per suite with inline SVG charts (plotters); the environment as a
//! table grouped by topic; what was skipped, grouped by reason; then the tables: the verdicts in
//! full, fits, decompositions, drift and cells.
//!
//! The same content as `evidence.txt`, in tables: raw percentiles with the baseline's beside
//! them, overheads with their 95% CIs, validity flags highlighted, decompositions with their
//! agreement, drift, lack-of-fit and segments per fit, and the claims with the fits they
//! compared and their margins. No latency is shown negative.
//!
//! The files: `page` (the shell and style every page shares), `verdicts`, `chart`,
//! `environment`, `skipped` and `tables`. The pieces another page built from runs may reuse are
//! `pub(crate)`: [`page::page_start`], [`verdicts::verdict_cell`], [`verdicts::verdict_matrix`],
//! [`environment::environment_table`], [`skipped::skipped_section`].

mod chart;
pub(crate) mod environment;
mod page;
pub(crate) mod skipped;
mod tables;
pub(crate) mod verdicts;

pub use chart::{line_chart, Series, MAX_PLOTTED};
pub(crate) use chart::{svg_chart, COLORS};
pub use page::{esc, is_hookbench_page, GENERATOR_META, PAGE_HEAD_BYTES};
pub(crate) use page::{page_end, page_start};

use crate::claims::Verdict;
use crate::host::{hostname, kernel_release, HostClass};
use crate::schema::Results;
use std::fmt::Write as _;

/// Renders `report.html`: one self-contained file for reading a run in a browser.
///
/// Inline styles and SVG, no script, no external URL; the verdicts first, then the charts, the
/// environment, the skipped cells and the raw tables.
pub fn render(results: &Results) -> String {
    let mut h = page_start("hookbench report");
    let _ = writeln!(h, "<h1>hookbench report</h1>");
    let _ = writeln!(
        h,
        "<p>Kernel <b>{}</b> on {} ({}). {} cells, {} fits, {} skipped; profile {}; hookbench {}; {}.</p>",
        esc(kernel_release(results)),
        esc(hostname(results)),
        esc(&HostClass::of(results).label()),
        results.cells.len(),
        results.fits.len(),
        results.skipped.len(),
        esc(&results.profile),
        esc(&results.hookbench_version),
        if results.complete {
            "complete"
        } else {
            "INCOMPLETE (the run was stopped)"
        }
    );
    if let Some(e) = results.environment.get("emulated").and_then(|v| v.as_str()) {
        let _ = writeln!(
            h,
            "<p class=\"refuted\"><b>Emulated CPU</b>: {}. These timings come from an emulated guest and are not \
             comparable with bare metal; they show that the code paths run, not what they cost.</p>",
            esc(e)
        );
    }
    if let Some(u) = results.environment.get("uml").filter(|u| u.is_object()) {
        let field = |k: &str| u.get(k).and_then(|v| v.as_str()).unwrap_or("unknown");
        let _ = writeln!(
            h,
            "<p class=\"note\"><b>User-Mode Linux</b> {} (BPF bodies {}): the kernel runs natively on one host CPU, \
             so the kmod backend's in-kernel loop cells compare with bare metal's (the -builtin cells best: no BPF); \
             syscalls are trapped by the host's ptrace, so userspace-timed figures do not.</p>",
            esc(field("release")),
            esc(field("bpf_bodies"))
        );
    }
    let _ = write!(h, "<h2 id=\"summary\">Summary: verdicts</h2>");
    h.push_str(&verdicts::verdict_matrix(&results.claims));
    if results.claims.iter().all(|c| c.verdict == Verdict::NotRun) {
        let _ = writeln!(h, "<p class=\"note\">No claim could be evaluated from this run.</p>");
    }
    verdicts::what_this_shows(&mut h, results);
    chart::suite_charts(&mut h, results);
    let _ = writeln!(h, "<h2 id=\"environment\">Environment</h2>");
    let seed = format!(
        "{} (sweep points measured in a shuffled order, each cell's repetitions alternating with its baseline's)",
        results.order_seed
    );
    h.push_str(&environment::environment_table(
        &results.environment,
        &[("order seed", seed)],
    ));
    skipped::skipped_section(&mut h, &results.skipped);
    verdicts::verdict_details(&mut h, results);
    tables::fits_table(&mut h, results);
    tables::decompositions_table(&mut h, results);
    tables::drift_table(&mut h, results);
    tables::cells_table(&mut h, results);
    h.push_str(page_end());
    h
}
