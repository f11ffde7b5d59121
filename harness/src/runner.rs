//! The runner: expands suites into cells, asks a backend to measure each, journals every cell as it finishes, fits slopes and writes the run.

use crate::backend::{Backend, CellError, CellSpec, Measured};
use crate::measure::stats::fit_linear;
use crate::output::RunDir;
use crate::suite::Suite;
use hookbench_model::Params;
use hookbench_reports::{cell_id, Fit, Results, Skipped, SuiteInfo, SCHEMA};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
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
}

/// Runs every suite of `config` on every backend into `dir`, journaling as it goes, and returns
/// the finished results (also saved as `results.json` and `evidence.txt`).
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
            })
            .collect(),
        environment: config.environment.clone(),
        cells: Vec::new(),
        fits: Vec::new(),
        skipped: Vec::new(),
        claims: Vec::new(),
    };
    dir.write_results(&results)?;

    let total: u64 = config
        .suites
        .iter()
        .map(|s| {
            let points = s.plan(&config.profile).map(|p| p.points.len()).unwrap_or(0) as u64;
            backends
                .iter()
                .map(|b| b.mechanisms(s).len() as u64 * points)
                .sum::<u64>()
        })
        .sum();
    let bar = progress_bar(total, config.progress);

    for suite in &config.suites {
        let plan = suite.plan(&config.profile)?;
        let mut measured: Vec<Measured> = Vec::new();
        for backend in backends.iter_mut() {
            for mechanism in backend.mechanisms(suite) {
                let name = mechanism.name.as_str();
                for params in &plan.points {
                    if config.stop.load(Ordering::SeqCst) {
                        bar.abandon();
                        return Err(interrupted(dir));
                    }
                    bar.set_message(format!("{} {} {}", suite.name, backend.name(), name));
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
                            for m in cells {
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
                    dir.write_results(&results)?;
                    bar.inc(1);
                }
            }
        }
        results.fits.extend(fits_for(suite, &measured));
        dir.write_results(&results)?;
    }
    bar.finish_and_clear();
    results.claims = hookbench_reports::claims::evaluate(&results);
    results.complete = true;
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    dir.write_results(&results)?;
    dir.write_reports(&results)?;
    Ok(results)
}

/// Least-squares fits of each group of cells that differ only in a fit axis of `suite`: one fit per
/// (backend, mechanism, metric, the other axes), over every sample of every cell in the group.
/// Groups with fewer than two distinct x values or three samples give no fit.
pub fn fits_for(suite: &Suite, measured: &[Measured]) -> Vec<Fit> {
    let mut fits = Vec::new();
    for axis in &suite.fits {
        let mut groups: BTreeMap<(String, String, String, Params), Vec<&Measured>> = BTreeMap::new();
        for m in measured {
            let mut key_params = m.cell.params;
            key_params.set_axis(&axis.axis, 0);
            let key = (
                m.cell.backend.clone(),
                m.cell.mechanism.clone(),
                m.cell.metric.clone(),
                key_params,
            );
            groups.entry(key).or_default().push(m);
        }
        for ((backend, mechanism, metric, fixed_params), group) in groups {
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            let mut points = Vec::new();
            for m in &group {
                let x = f64::from(m.cell.params.axis(&axis.axis).unwrap_or(0));
                for &y in &m.points {
                    xs.push(x);
                    ys.push(y);
                }
                points.push([x, m.cell.mean]);
            }
            points.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            let Ok(fit) = fit_linear(&xs, &ys) else { continue };
            let mut fixed = BTreeMap::new();
            for a in hookbench_model::NUMERIC_AXES {
                if a != axis.axis {
                    if let Some(v) = fixed_params.axis(a) {
                        fixed.insert(a.to_string(), serde_json::Value::from(v));
                    }
                }
            }
            fixed.insert("body".to_string(), serde_json::Value::from(fixed_params.body.as_str()));
            fits.push(Fit {
                suite: suite.name.clone(),
                backend,
                model: group[0].cell.model,
                mechanism,
                metric,
                x: axis.label.clone(),
                x_axis: axis.axis.clone(),
                fixed,
                n: xs.len() as u64,
                slope: fit.slope,
                slope_ci95: [fit.slope_ci95.0, fit.slope_ci95.1],
                intercept: fit.intercept,
                r2: fit.r2,
                points,
            });
        }
    }
    fits
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
