//! The runner: measures the cells of every suite in a seeded random order and writes the run.
//!
//! It expands suites into cells, journals every cell as it finishes, and fits slopes.
//!
//! Within each suite and backend, the (mechanism, point) pairs are measured in an order shuffled
//! with the run's `order_seed` (saved in results.json), so a machine that drifts during a sweep
//! spreads its drift over the points instead of drawing a slope; each cell records its place in
//! that order and when it finished. The analysis (fits with lack-of-fit and segments, entry
//! costs, decompositions, baseline drift) is in `crate::analysis`; it runs once every cell is
//! measured, the suites' fits in parallel (rayon), so no thread pool exists while workers are
//! started.

use crate::backend::{Backend, CellError, CellSpec, Measured};
use crate::output::RunDir;
use crate::suite::Suite;
use hookbench_reports::{cell_id, Results, Skipped, SuiteInfo, SCHEMA};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The suites, validated.
    pub suites: Vec<Suite>,
    /// Profile name (every suite has it: checked before anything is written).
    pub profile: String,
    /// The command line, for the results and the evidence header.
    pub command_line: Vec<String>,
    /// The machine description that goes into `results.json`'s `environment`.
    pub environment: serde_json::Value,
    /// Show progress bars (only when stderr is a terminal and not disabled).
    pub progress: bool,
    /// Set by the SIGINT/SIGTERM handler: the run stops before the next cell, saving what it has.
    pub stop: Arc<AtomicBool>,
    /// Seed of the measurement order (saved in results.json as `order_seed`).
    pub order_seed: u64,
}

/// Runs every suite of `config` on every backend into `dir` and returns the finished results.
///
/// It journals as it goes; the results are also saved as `results.json` and `evidence.txt`.
///
/// Errors: a backend's fatal error, an I/O error, or [`crate::error::Interrupted`] when
/// `config.stop` was set; everything measured before it stays saved (`"complete": false`).
pub fn run(config: &RunConfig, backends: &mut [Box<dyn Backend>], dir: &mut RunDir) -> anyhow::Result<Results> {
    let mut results = Results {
        schema: SCHEMA.to_string(),
        hookbench_version: env!("CARGO_PKG_VERSION").to_string(),
        command_line: config.command_line.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: None,
        complete: false,
        profile: config.profile.clone(),
        suites: config
            .suites
            .iter()
            .map(|s| SuiteInfo {
                name: s.name.clone(),
                claim: s.claim,
                hypothesis: s.hypothesis.clone(),
                fit_x: s.fits.iter().map(|f| f.label.clone()).collect(),
                margin: s.margin,
            })
            .collect(),
        environment: config.environment.clone(),
        cells: Vec::new(),
        fits: Vec::new(),
        skipped: Vec::new(),
        claims: Vec::new(),
        order_seed: config.order_seed,
        drift: Vec::new(),
        decompositions: Vec::new(),
    };
    dir.write_results(&results)?;

    let total: u64 = config
        .suites
        .iter()
        .map(|s| {
            let Ok(plan) = s.plan(&config.profile) else { return 0 };
            backends
                .iter()
                .flat_map(|b| b.mechanisms(s))
                .map(|m| plan.points.iter().filter(|p| m.admits(p)).count() as u64)
                .sum::<u64>()
        })
        .sum();
    let bar = progress_bar(total, config.progress);

    let started = std::time::Instant::now();
    let mut order = 0u64;
    // Every suite's measured cells with their fit points, fitted once nothing is measured any
    // more (the fits run in parallel: no worker is started after them).
    let mut by_suite: Vec<(&Suite, &crate::suite::Plan, Vec<Measured>)> = Vec::new();
    for suite in &config.suites {
        let plan = suite.plan(&config.profile)?;
        let mut measured: Vec<Measured> = Vec::new();
        for backend in backends.iter_mut() {
            let mechanisms = backend.mechanisms(suite);
            // A mechanism's `max` stops its sweep below a limit of its own.
            let mut pairs: Vec<(usize, usize)> = (0..mechanisms.len())
                .flat_map(|m| (0..plan.points.len()).map(move |p| (m, p)))
                .filter(|&(m, p)| mechanisms[m].admits(&plan.points[p]))
                .collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                config.order_seed ^ seed_of(&format!("{}/{}", suite.name, backend.name())),
            );
            pairs.shuffle(&mut rng);
            for (mi, pi) in pairs {
                let mechanism = &mechanisms[mi];
                let params = &suite.params_for(backend.name(), &plan.points[pi]);
                let name = mechanism.name.as_str();
                if config.stop.load(Ordering::SeqCst) {
                    bar.abandon();
                    return Err(interrupted(dir));
                }
                bar.set_message(progress_message(&suite.name, backend.name(), name));
                let id = cell_id(&suite.name, backend.name(), name, suite.metric.as_str(), params);
                let spec = CellSpec {
                    suite,
                    mechanism,
                    params: *params,
                    samples: plan.samples,
                    repetitions: plan.repetitions,
                    seed: seed_of(&id),
                };
                match backend.measure(&spec) {
                    Ok(cells) => {
                        let at = started.elapsed().as_secs_f64();
                        for mut m in cells {
                            m.cell.order = Some(order);
                            m.cell.measured_at_s = Some(at);
                            order += 1;
                            dir.append_cell(&m.cell)?;
                            results.cells.push(m.cell.clone());
                            measured.push(m);
                        }
                    }
                    Err(CellError::Skip(reason)) => {
                        results.skipped.push(Skipped {
                            backend: backend.name().to_string(),
                            mechanism: name.to_string(),
                            suite: Some(suite.name.clone()),
                            reason: format!("{id}: {reason}"),
                        });
                    }
                    Err(CellError::Fatal(e)) => {
                        bar.abandon();
                        // A signal also reaches the workers of the process group: report
                        // the interruption, not the worker that died of it.
                        if config.stop.load(Ordering::SeqCst) {
                            return Err(interrupted(dir));
                        }
                        return Err(e.context(format!("measuring {id}")));
                    }
                }
                for (derived, reason) in backend.take_skipped() {
                    let id = cell_id(&suite.name, backend.name(), &derived, suite.metric.as_str(), params);
                    results.skipped.push(Skipped {
                        backend: backend.name().to_string(),
                        mechanism: derived,
                        suite: Some(suite.name.clone()),
                        reason: format!("{id}: {reason}"),
                    });
                }
                dir.write_results(&results)?;
                bar.inc(1);
            }
        }
        by_suite.push((suite, plan, measured));
    }
    bar.finish_and_clear();
    use rayon::prelude::*;
    let fitted: Vec<_> = by_suite
        .par_iter()
        .map(|(suite, plan, measured)| crate::analysis::fits_for(suite, plan, measured))
        .collect();
    for (fits, unfit) in fitted {
        results.fits.extend(fits);
        results.skipped.extend(unfit);
    }
    results.drift = crate::analysis::drift(&results.cells);
    results.decompositions = crate::analysis::decompositions(&results);
    results.claims = hookbench_reports::claims::evaluate(&results);
    results.complete = true;
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    dir.write_results(&results)?;
    dir.write_reports(&results)?;
    Ok(results)
}

fn interrupted(dir: &RunDir) -> anyhow::Error {
    crate::error::Interrupted {
        dir: dir.path().display().to_string(),
    }
    .into()
}

/// A 64-bit FNV-1a hash of a cell id: the cell's seed, so reruns place objects identically.
pub fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The progress bar's message, kept short enough that the bar stays on one 80-column line.
fn progress_message(suite: &str, backend: &str, mechanism: &str) -> String {
    let text = format!("{suite} {backend} {mechanism}");
    text.chars().take(32).collect()
}

fn progress_bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} cells {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
