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

/// The progress line: elapsed time, a 20-column bar, cells done of all, and the cell's name.
///
/// `{wide_msg}` gives the message the columns the rest of the line leaves on the terminal and
/// cuts it there, so the line never wraps: on 80 columns a 3-digit cell count leaves 41.
const PROGRESS_TEMPLATE: &str = "{elapsed_precise} [{bar:20}] {pos}/{len} {wide_msg}";

/// The progress bar's message: the cell being measured, `suite backend mechanism`.
fn progress_message(suite: &str, backend: &str, mechanism: &str) -> String {
    format!("{suite} {backend} {mechanism}")
}

/// The run's progress bar on stderr when it is a terminal and `enabled`; else a hidden one.
fn progress_bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    styled_bar(total, ProgressDrawTarget::stderr())
}

/// A progress bar drawn with [`PROGRESS_TEMPLATE`] on `target`.
fn styled_bar(total: u64, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(PROGRESS_TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::Mutex;

    /// A terminal `width` columns wide that keeps every line drawn on it.
    #[derive(Debug)]
    struct Term {
        width: u16,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl TermLike for Term {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines a bar of `total` cells draws on a `width`-column terminal showing `message`.
    ///
    /// Only the lines drawn with the message: the first draw may come before it is set.
    fn drawn(width: u16, total: u64, message: &str) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let term = Term {
            width,
            lines: Arc::clone(&lines),
        };
        let bar = styled_bar(total, ProgressDrawTarget::term_like(Box::new(term)));
        bar.set_message(message.to_string());
        bar.set_position(total / 3);
        // Abandoning draws the last state whatever the refresh rate.
        bar.abandon();
        let out = lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out.into_iter().filter(|l| l.contains(&message[..8])).collect()
    }

    #[test]
    fn the_progress_line_fits_the_terminal_width() {
        // Lines that wrapped on 80 columns (effective-array, cgroup-id-map) and the longest name.
        let messages = [
            progress_message("working-set", "model", "effective-array"),
            progress_message("cgroup-handles", "model", "cgroup-id-map"),
            progress_message("cgroup-handles", "kernel", "rawtp-cgroup-id-map-outside"),
        ];
        for width in [60u16, 80, 100] {
            for message in &messages {
                let lines = drawn(width, 1266, message);
                // Cut at the end: the start of the message is still there.
                assert!(!lines.is_empty(), "no line with {message:?} at {width} columns");
                for line in &lines {
                    // The template has no colours: one char is one column.
                    let columns = line.chars().count();
                    assert!(columns <= usize::from(width), "{columns} > {width} columns: {line:?}");
                }
            }
        }
        // Where the terminal is wide enough the message is whole.
        let whole = drawn(200, 1266, &messages[0]);
        assert!(whole.iter().any(|l| l.trim_end().ends_with(&messages[0])), "{whole:?}");
    }
}
