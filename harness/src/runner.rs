//! The runner: expands suites into cells, asks a backend to measure each, journals every cell as it finishes, fits slopes and writes the run.

use crate::backend::{Backend, CellError, CellSpec, Measured};
use crate::measure::stats::fit_linear;
use crate::output::RunDir;
use crate::suite::{Plan, Suite};
use hookbench_model::Params;
use hookbench_reports::{cell_id, Fit, Results, Skipped, SuiteInfo, SCHEMA};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, BTreeSet};
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
            let Ok(plan) = s.plan(&config.profile) else { return 0 };
            backends
                .iter()
                .flat_map(|b| b.mechanisms(s))
                .map(|m| plan.points.iter().filter(|p| m.admits(p)).count() as u64)
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
                // A mechanism's `max` stops its sweep below a limit of its own.
                for params in plan.points.iter().filter(|p| mechanism.admits(p)) {
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
        let (fits, unfit) = fits_for(suite, plan, &measured);
        results.fits.extend(fits);
        results.skipped.extend(unfit);
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
/// (backend, mechanism, metric, the other axes `plan` sweeps, body), over every sample of every
/// cell in the group. Axes the plan does not sweep do not split groups: a backend may resolve them
/// from the swept ones (the kernel backend's cgroup-bpf cells have `cgroups` = `depth`), and the
/// fit's `fixed` leaves out such an axis when it varies within the group. Returns the fits and,
/// for the groups that gave none (fewer than two distinct x values, too few samples), one
/// [`Skipped`] entry per fit axis, backend, mechanism and metric, naming the fit and why.
pub fn fits_for(suite: &Suite, plan: &Plan, measured: &[Measured]) -> (Vec<Fit>, Vec<Skipped>) {
    let swept: Vec<&str> = hookbench_model::NUMERIC_AXES
        .into_iter()
        .filter(|a| {
            let values: BTreeSet<Option<u32>> = plan.points.iter().map(|p| p.axis(a)).collect();
            values.len() > 1
        })
        .collect();
    let mut fits = Vec::new();
    let mut unfit = Vec::new();
    for axis in &suite.fits {
        let mut groups: BTreeMap<(String, String, String, Params), Vec<&Measured>> = BTreeMap::new();
        for m in measured {
            // The group key: the other swept axes and the body, as measured.
            let mut key_params = Params {
                body: m.cell.params.body,
                ..Params::default()
            };
            for a in swept.iter().filter(|a| **a != axis.axis) {
                key_params.set_axis(a, m.cell.params.axis(a).unwrap_or(0));
            }
            let key = (
                m.cell.backend.clone(),
                m.cell.mechanism.clone(),
                m.cell.metric.clone(),
                key_params,
            );
            groups.entry(key).or_default().push(m);
        }
        // Groups without a fit, by (backend, mechanism, metric): how many, and the first reason.
        let mut failed: BTreeMap<(String, String, String), (usize, usize, String)> = BTreeMap::new();
        for ((backend, mechanism, metric, _), group) in groups {
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
            let distinct: BTreeSet<u32> = group
                .iter()
                .map(|m| m.cell.params.axis(&axis.axis).unwrap_or(0))
                .collect();
            let result = if distinct.len() < 2 {
                Err(one_x_reason(
                    &axis.axis,
                    &distinct,
                    plan,
                    &swept,
                    measured,
                    &group[0].cell,
                ))
            } else {
                fit_linear(&xs, &ys).map_err(|e| e.to_string())
            };
            let entry = failed
                .entry((backend.clone(), mechanism.clone(), metric.clone()))
                .or_insert((0, 0, String::new()));
            entry.1 += 1;
            let fit = match result {
                Ok(fit) => fit,
                Err(why) => {
                    if entry.0 == 0 {
                        entry.2 = why;
                    }
                    entry.0 += 1;
                    continue;
                }
            };
            // Every other axis with one value over the group is held fixed; an axis the backend
            // resolved from the fitted one varies with it and is not.
            let mut fixed = BTreeMap::new();
            for a in hookbench_model::NUMERIC_AXES {
                if a != axis.axis {
                    let values: BTreeSet<Option<u32>> = group.iter().map(|m| m.cell.params.axis(a)).collect();
                    if let [Some(v)] = values.into_iter().collect::<Vec<_>>()[..] {
                        fixed.insert(a.to_string(), serde_json::Value::from(v));
                    }
                }
            }
            fixed.insert(
                "body".to_string(),
                serde_json::Value::from(group[0].cell.params.body.as_str()),
            );
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
        for ((backend, mechanism, metric), (bad, total, why)) in failed {
            if bad == 0 {
                continue;
            }
            let groups = if total > 1 {
                format!(" ({bad} of {total} groups)")
            } else {
                String::new()
            };
            unfit.push(Skipped {
                backend,
                mechanism,
                suite: Some(suite.name.clone()),
                reason: format!("no fit of {metric} over {}{groups}: {why}", axis.label),
            });
        }
    }
    (fits, unfit)
}

/// Why a group of cells measured at one value of `axis` (`distinct`) gives no fit: the other
/// points were skipped, the backend measured them all at one value, or the cells at other values
/// differ in a swept axis too (`cell` is one of the group's).
fn one_x_reason(
    axis: &str,
    distinct: &BTreeSet<u32>,
    plan: &Plan,
    swept: &[&str],
    measured: &[Measured],
    cell: &hookbench_reports::Cell,
) -> String {
    let join = |values: &BTreeSet<u32>| values.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let planned: BTreeSet<u32> = plan.points.iter().filter_map(|p| p.axis(axis)).collect();
    let same = |m: &&Measured| {
        m.cell.backend == cell.backend && m.cell.mechanism == cell.mechanism && m.cell.metric == cell.metric
    };
    let seen: BTreeSet<u32> = measured
        .iter()
        .filter(same)
        .filter_map(|m| m.cell.params.axis(axis))
        .collect();
    if seen.len() < 2 {
        return format!(
            "every measured cell has {axis} = {} (the suite sweeps {axis} = {}; the other points were skipped, or \
             this mechanism does not use {axis})",
            join(distinct),
            join(&planned)
        );
    }
    let tied: Vec<&str> = swept
        .iter()
        .copied()
        .filter(|a| *a != axis)
        .filter(|a| {
            let values: BTreeSet<Option<u32>> = measured.iter().filter(same).map(|m| m.cell.params.axis(a)).collect();
            values.len() > 1
        })
        .collect();
    format!(
        "the cells at {axis} = {} also differ in {}, so no two differ in {axis} alone (the backend resolves one \
         from the other, or the other points were skipped): fit over {axis} in a suite that does not sweep those",
        join(&seen),
        if tied.is_empty() {
            "another axis".to_string()
        } else {
            tied.join(", ")
        }
    )
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
