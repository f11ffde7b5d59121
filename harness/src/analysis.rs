//! The run's analysis after measuring: fits, decompositions and the drift of every baseline.
//!
//! Fits say where a straight line holds, with entry costs; native + entry + per-program
//! decompositions come by fit and by the kernel selftest's method; drift says how each repeated
//! baseline moved over the run.
//!
//! Every statistic comes from the measurement crate (`hookbench_measure::{stats, fitcheck,
//! estimate, drift}`); this module only chooses what to fit. Hook cells' fit points are each
//! sample less its own interleaved baseline's mean (`y = "overhead"`), so a machine that drifts
//! between cells does not bend the line.

use crate::backend::Measured;
use crate::suite::{Plan, Suite};
use hookbench_measure::estimate::{combine, difference, Estimate};
use hookbench_measure::fitcheck::entry_cost;
use hookbench_measure::stats::fit_linear;
use hookbench_model::Params;
use hookbench_reports::{
    Agreement, Baseline, Cell, CellName, Decomposition, DriftEntry, Fit, FitSubject, Results, Skipped,
};
use std::collections::{BTreeMap, BTreeSet};

/// Relative distance of every point mean from a line within which the line "holds" over a sweep.
///
/// This holds even if the lack-of-fit F test (which rejects any curvature given enough
/// samples) says otherwise.
pub const LINE_REL_TOLERANCE: f64 = 0.05;

/// The largest program count a fit-method decomposition uses, as the kernel selftest's four.
///
/// The selftest measures one to four filters, and a chain's cost per filter bends beyond a few
/// (seen here: 16-18 ns per filter up to 8, about 20 above).
pub const DECOMPOSE_MAX_PROGRAMS: u32 = 4;

/// How far apart the fit and the selftest method may put the entry and per-program parts.
pub const DECOMPOSITION_AGREEMENT: f64 = 0.15;

/// The mechanism of the selftest-method cells, and the fitted mechanism it is the peer of.
///
/// Both run the same full filters on the same getppid().
pub const SELFTEST_PEER: (&str, &str) = ("seccomp-selftest-split", "seccomp-arg-load");

/// The fitted peer of the selftest's entry, whose filters the action cache skips.
///
/// The selftest takes its entry from number-only filters, whose result the action cache
/// proves, so the chain is never walked.
pub const SELFTEST_CACHED_PEER: &str = "seccomp-nr-only";

/// Least-squares fits of each group of cells that differ only in a fit axis of `suite`.
///
/// One fit per (backend, mechanism, metric, the other axes `plan` sweeps, body), over every
/// sample of every cell in the group, with the lack-of-fit test, the marginal cost per segment
/// and (over `programs`) the entry cost. Axes the plan does not sweep do not split groups: a
/// backend may resolve them from the swept ones (the kernel backend's cgroup-bpf cells have
/// `cgroups` = `depth`), and the fit's `fixed` leaves out such an axis when it varies within the
/// group. Returns the fits and, for the groups that gave none (fewer than two distinct x values,
/// too few samples), one [`Skipped`] entry per fit axis, backend, mechanism and metric, saying
/// why.
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
        // The selftest-method cells are steps of one worker, not a sweep: no line through them.
        for m in measured.iter().filter(|m| m.cell.mechanism != SELFTEST_PEER.0) {
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
        for ((backend, mechanism, metric, _), mut group) in groups {
            group.sort_by_key(|m| m.cell.params.axis(&axis.axis).unwrap_or(0));
            let x_of = |m: &Measured| f64::from(m.cell.params.axis(&axis.axis).unwrap_or(0));
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            let mut points = Vec::new();
            for m in &group {
                let x = x_of(m);
                for &y in &m.points {
                    xs.push(x);
                    ys.push(y);
                }
                let mean = m.points.iter().sum::<f64>() / m.points.len().max(1) as f64;
                points.push([x, mean]);
            }
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
            let entry_of_failed = failed
                .entry((backend.clone(), mechanism.clone(), metric.clone()))
                .or_insert((0, 0, String::new()));
            entry_of_failed.1 += 1;
            let fit = match result {
                Ok(fit) => fit,
                Err(why) => {
                    if entry_of_failed.0 == 0 {
                        entry_of_failed.2 = why;
                    }
                    entry_of_failed.0 += 1;
                    continue;
                }
            };
            let overhead = group.iter().all(|m| m.cell.overhead.is_some());
            let entry = if overhead && axis.axis == "programs" {
                let at: Vec<(f64, Estimate)> = group
                    .iter()
                    .filter(|m| x_of(m) >= 1.0)
                    .filter_map(|m| {
                        m.cell
                            .overhead
                            .map(|o| (x_of(m), ci_estimate(o.mean_ns, o.mean_ci95_ns)))
                    })
                    .collect();
                match at.as_slice() {
                    [(x1, o1), (x2, o2), ..] => Some(entry_cost(*x1, *o1, *x2, *o2)),
                    _ => None,
                }
            } else {
                None
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
            let subject = FitSubject {
                name: CellName {
                    suite: &suite.name,
                    backend: &backend,
                    model: group[0].cell.model,
                    mechanism: &mechanism,
                    metric: &metric,
                },
                x: &axis.label,
                x_axis: &axis.axis,
            };
            // One point per cell (its repetitions' mean), as the evidence tables list them.
            fits.push(Fit {
                points,
                entry,
                ..Fit::new(subject, fixed, overhead, (&xs, &ys), &fit, LINE_REL_TOLERANCE)
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

/// Why a group of cells measured at one value of `axis` (`distinct`) gives no fit.
///
/// The other points were skipped, the backend measured them all at one value, or the cells at
/// other values differ in a swept axis too (`cell` is one of the group's).
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

/// An estimate from a value and its 95% confidence interval, taken as normal.
///
/// The interval's half-width over 1.96 is the standard error.
fn ci_estimate(value: f64, ci95: [f64; 2]) -> Estimate {
    Estimate {
        value,
        se: (ci95[1] - ci95[0]) / 2.0 / 1.959_963_984_540_054,
        df: f64::INFINITY,
    }
}

/// How each baseline configuration moved over the run.
///
/// Cells with a baseline, grouped by backend, mechanism and every axis but `programs` and
/// `foreign` (what the baseline depends on), their baselines' medians against the time each
/// cell finished.
pub fn drift(cells: &[Cell]) -> Vec<DriftEntry> {
    let mut groups: BTreeMap<(String, String, String), Vec<[f64; 2]>> = BTreeMap::new();
    for c in cells {
        let (Some(b), Some(at)) = (c.baseline, c.measured_at_s) else {
            continue;
        };
        let p = c.params;
        let label = format!(
            "{} hooks={} depth={} W={} P={} body={}",
            c.suite, p.hooks, p.depth, p.working_set, p.cpus, p.body
        );
        groups
            .entry((c.backend.clone(), c.mechanism.clone(), label))
            .or_default()
            .push([at, b.p50]);
    }
    groups
        .into_iter()
        .filter_map(|((backend, mechanism, label), mut points)| {
            points.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let pairs: Vec<(f64, f64)> = points.iter().map(|p| (p[0], p[1])).collect();
            hookbench_measure::drift::drift(&pairs).map(|drift| DriftEntry {
                backend,
                mechanism,
                label,
                points,
                drift,
            })
        })
        .collect()
}

/// The native + entry + per-program splits of the run, by fit and by the selftest's method.
///
/// The split of every hook fit over `programs` with one task on one CPU (method `fit`, from
/// the points up to [`DECOMPOSE_MAX_PROGRAMS`]), and of the selftest-method cells (method
/// `selftest`); each fit-method split of the selftest's peer is checked against the selftest's
/// within [`DECOMPOSITION_AGREEMENT`].
pub fn decompositions(results: &Results) -> Vec<Decomposition> {
    let mut out: Vec<Decomposition> = results
        .fits
        .iter()
        .filter(|f| f.metric == "hook_latency_ns" && f.x_axis == "programs" && f.y == "overhead")
        .filter(|f| {
            let one = |a: &str| f.fixed.get(a).and_then(|v| v.as_f64()).is_none_or(|v| v <= 1.0);
            one("working_set") && one("cpus")
        })
        .filter_map(|f| by_fit(results, f))
        .collect();
    let mut selftest: Vec<Decomposition> = {
        let mut backends: Vec<&str> = results
            .cells
            .iter()
            .filter(|c| c.mechanism == SELFTEST_PEER.0)
            .map(|c| c.backend.as_str())
            .collect();
        backends.sort_unstable();
        backends.dedup();
        backends.into_iter().filter_map(|b| by_selftest(results, b)).collect()
    };
    let rel = |a: f64, b: f64| if b != 0.0 { (a - b).abs() / b.abs() } else { f64::NAN };
    let within = |x: f64| x <= DECOMPOSITION_AGREEMENT;
    for st in &mut selftest {
        let find = |m: &str| {
            out.iter()
                .find(|d| d.backend == st.backend && d.mechanism == m && d.method == "fit")
                .map(|d| (d.per_program_ns, d.entry_ns))
        };
        let Some((fit_per, fit_entry)) = find(SELFTEST_PEER.1) else {
            continue;
        };
        // The selftest takes its entry from filters the action cache skips: the fitted peer of
        // that path is the number-only sweep (the same filters on the same getppid()).
        let (entry_peer, cached_entry) = match find(SELFTEST_CACHED_PEER) {
            Some((_, e)) => (SELFTEST_CACHED_PEER, e),
            None => (SELFTEST_PEER.1, fit_entry),
        };
        let per = rel(st.per_program_ns, fit_per);
        let entry = rel(st.entry_ns, cached_entry);
        st.agreement = Some(Agreement {
            other_method: "fit".to_string(),
            other_mechanism: format!("{} (per filter), {entry_peer} (entry)", SELFTEST_PEER.1),
            per_program_rel_diff: per,
            entry_rel_diff: entry,
            limit: DECOMPOSITION_AGREEMENT,
            entry_paths_differ: false,
            total_rel_diff: None,
            agrees: within(per) && within(entry),
        });
        // The full-filter sweep's own split against the selftest's. Its entry is the full
        // path's (__seccomp_filter -> seccomp_run_filters, populate_seccomp_data), the
        // selftest's the action cache's hit (seccomp_cache_check_allow): different kernel
        // paths, so the entries are shown side by side, not judged; judged instead are the per
        // filter cost and the selftest's own check of parts, entry + 4 x per filter against its
        // 4-full-filter cost (whose overhead is the selftest's entry + 4 x its per filter).
        let (st_per, st_entry, st_mech) = (st.per_program_ns, st.entry_ns, st.mechanism.clone());
        let st_four = st_entry + 4.0 * st_per;
        if let Some(fit) = out
            .iter_mut()
            .find(|d| d.backend == st.backend && d.mechanism == SELFTEST_PEER.1 && d.method == "fit")
        {
            let per = rel(fit.per_program_ns, st_per);
            let total = rel(fit.entry_ns + 4.0 * fit.per_program_ns, st_four);
            fit.agreement = Some(Agreement {
                other_method: "selftest".to_string(),
                other_mechanism: st_mech,
                per_program_rel_diff: per,
                entry_rel_diff: rel(fit.entry_ns, st_entry),
                limit: DECOMPOSITION_AGREEMENT,
                entry_paths_differ: true,
                total_rel_diff: Some(total),
                agrees: within(per) && within(total),
            });
        }
    }
    out.extend(selftest);
    out
}

/// The native cost from a cell's baseline: its trimmed mean, the overheads' own estimator.
///
/// A VM's plain mean of a syscall loop is ruled by rare preemptions (a 72 ns getppid with a
/// 15 us standard deviation averages 200 ns or more); results written before the baseline kept
/// a trimmed mean fall back to the plain mean.
fn native_of(b: Baseline) -> f64 {
    if b.trimmed_mean.is_finite() {
        b.trimmed_mean
    } else {
        b.mean
    }
}

/// The fit-method split of `fit`, from its points up to [`DECOMPOSE_MAX_PROGRAMS`].
///
/// Native = the baselines' mean, entry from the two smallest program counts (as the selftest
/// takes it), per program = the slope over the points up to [`DECOMPOSE_MAX_PROGRAMS`].
fn by_fit(results: &Results, fit: &Fit) -> Option<Decomposition> {
    let mut cells: Vec<&Cell> = results
        .cells_of(fit)
        .into_iter()
        .filter(|c| c.overhead.is_some() && (1..=DECOMPOSE_MAX_PROGRAMS).contains(&c.params.programs))
        .collect();
    cells.sort_by_key(|c| c.params.programs);
    if cells.len() < 2 {
        return None;
    }
    let entry = fit.entry?;
    let (xs, ys): (Vec<f64>, Vec<f64>) = cells
        .iter()
        .filter_map(|c| c.overhead.map(|o| (f64::from(c.params.programs), o.mean_ns)))
        .unzip();
    // A weighted line through the overhead means would need their SEs; with two points the
    // slope is their difference, with more the least-squares line through the means.
    let (per, ci) = if xs.len() == 2 {
        let o: Vec<Estimate> = cells
            .iter()
            .filter_map(|c| c.overhead.map(|o| ci_estimate(o.mean_ns, o.mean_ci95_ns)))
            .collect();
        let s = hookbench_measure::fitcheck::slope_between(xs[0], o[0], xs[1], o[1]);
        (s.value, s.ci(0.95))
    } else {
        let line = fit_linear(&xs, &ys).ok()?;
        (line.slope, [line.slope_ci95.0, line.slope_ci95.1])
    };
    let native = cells.iter().filter_map(|c| c.baseline.map(native_of)).sum::<f64>() / cells.len() as f64;
    // The parts add up when entry + N x per program makes each point's overhead, relative to
    // the point's whole cost (native + overhead).
    let max_relative_error = cells
        .iter()
        .filter_map(|c| c.overhead.map(|o| (f64::from(c.params.programs), o.mean_ns)))
        .map(|(x, ov)| (entry.raw.value + per * x - ov).abs() / (native + ov))
        .fold(0.0, f64::max);
    Some(Decomposition {
        backend: fit.backend.clone(),
        mechanism: fit.mechanism.clone(),
        method: "fit".to_string(),
        native_ns: native,
        entry_ns: entry.entry,
        entry_clamped: entry.clamped,
        per_program_ns: per,
        per_program_ci95: ci,
        range: [cells[0].params.programs, cells[cells.len() - 1].params.programs],
        max_relative_error,
        agreement: None,
    })
}

/// The selftest-method split on `backend`, from the cells of [`SELFTEST_PEER`]`.0`.
///
/// Those cells have 0..4 filters, each with its overhead over step 0 of the same workers (the
/// native syscall in the same process): entry = ov(1 cached filter) - (ov(2 cached) - ov(1
/// cached)), as the selftest's `bitmap1 - native - (bitmap2 - bitmap1)`; per filter = (ov(4
/// full) - entry) / 4, the selftest's "filters / 4"; and its check that entry + 4 x the "last 2
/// diff" (ov(4) - ov(3)) makes the 4-filter overhead (relative to the 4-filter total). The
/// overheads use the same trimmed means as every other cell, so the two methods compare like
/// with like.
fn by_selftest(results: &Results, backend: &str) -> Option<Decomposition> {
    let cell = |n: u32| {
        results
            .cells
            .iter()
            .find(|c| c.backend == backend && c.mechanism == SELFTEST_PEER.0 && c.params.programs == n)
    };
    let ov = |n: u32| -> Option<Estimate> { cell(n)?.overhead.map(|o| ci_estimate(o.mean_ns, o.mean_ci95_ns)) };
    let native = native_of(cell(1)?.baseline?);
    let (o1, o2, o3, o4) = (ov(1)?, ov(2)?, ov(3)?, ov(4)?);
    let entry = entry_cost(1.0, o1, 2.0, o2);
    // The selftest's two per-filter estimates: "filters / 4" (the 4-filter overhead less the
    // entry, over 4: every filter of the chain, the steadier one, reported) and "last 2 diff"
    // (the 4th filter alone), which its own check uses.
    let per = combine(&[(0.25, o4), (-0.25, entry.raw)]);
    let last_two = difference(o4, o3);
    let predicted = combine(&[(1.0, entry.raw), (4.0, last_two)]).value;
    let total = native + o4.value;
    Some(Decomposition {
        backend: backend.to_string(),
        mechanism: SELFTEST_PEER.0.to_string(),
        method: "selftest".to_string(),
        native_ns: native,
        entry_ns: entry.entry,
        entry_clamped: entry.clamped,
        per_program_ns: per.value,
        per_program_ci95: per.ci(0.95),
        range: [1, 4],
        max_relative_error: (predicted - o4.value).abs() / total,
        agreement: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel hook cell of `mechanism` at `programs` with an overhead of `ov` ns (CI +-0.2)
    /// over a baseline of `native` ns.
    fn cell(mechanism: &str, programs: u32, native: f64, ov: Option<f64>) -> serde_json::Value {
        let mean = native + ov.unwrap_or(0.0);
        let mut c = serde_json::json!({"id": format!("seccomp/kernel/{mechanism}/{programs}"), "suite": "seccomp",
            "backend": "kernel", "model": "task-chain", "mechanism": mechanism, "metric": "hook_latency_ns",
            "unit": "ns", "params": {"programs": programs, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0,
            "tasks": 1, "working_set": 1, "cpus": 1, "body": "null"}, "samples": 1000, "mean": mean,
            "stddev": 1.0, "cv": 0.01, "p50": mean, "p90": mean, "p99": mean, "p999": mean, "max": mean});
        if let Some(ov) = ov {
            c["baseline"] = serde_json::json!({"mean": native, "p50": native, "samples": 1000});
            c["overhead"] = serde_json::json!({"mean_ns": ov, "mean_ci95_ns": [ov - 0.2, ov + 0.2], "p50_ns": ov,
                "p50_ci95_ns": [ov - 0.2, ov + 0.2]});
        }
        c
    }

    /// A fit over programs of `mechanism` with `slope` and the entry of its first two points.
    fn fit(mechanism: &str, slope: f64, entry: f64) -> serde_json::Value {
        serde_json::json!({"suite": "seccomp", "backend": "kernel", "model": "task-chain", "mechanism": mechanism,
            "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs",
            "fixed": {"foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1, "working_set": 1, "cpus": 1,
                      "body": "null"},
            "n": 3000, "slope": slope, "slope_ci95": [slope - 0.1, slope + 0.1], "intercept": entry, "r2": 0.99,
            "y": "overhead", "points": [],
            "entry": {"entry": entry, "raw": {"value": entry, "se": 0.1, "df": "inf"}, "clamped": false}})
    }

    /// Results with the numbers measured on this project's VM (quick profile, 2026-12-06).
    ///
    /// Full filters cost 26.7, 42.2, 71.0 ns over native at 1, 2, 4; the selftest's steps 9.7,
    /// 10.0, 55.5, 70.9.
    fn seccomp_results() -> Results {
        let cells = vec![
            cell("seccomp-arg-load", 1, 69.0, Some(26.67)),
            cell("seccomp-arg-load", 2, 69.0, Some(42.21)),
            cell("seccomp-arg-load", 4, 69.0, Some(70.96)),
            cell("seccomp-nr-only", 1, 70.0, Some(9.68)),
            cell("seccomp-nr-only", 2, 70.0, Some(9.69)),
            cell("seccomp-nr-only", 4, 70.0, Some(9.62)),
            cell("seccomp-selftest-split", 0, 69.7, None),
            cell("seccomp-selftest-split", 1, 69.7, Some(9.70)),
            cell("seccomp-selftest-split", 2, 69.7, Some(9.99)),
            cell("seccomp-selftest-split", 3, 69.7, Some(55.46)),
            cell("seccomp-selftest-split", 4, 69.7, Some(70.88)),
        ];
        let fits = vec![
            fit("seccomp-arg-load", 14.71, 26.67 - (42.21 - 26.67)),
            fit("seccomp-nr-only", -0.02, 9.68 - (9.69 - 9.68)),
        ];
        serde_json::from_value(
            serde_json::json!({"schema": hookbench_reports::SCHEMA, "hookbench_version": "0",
            "command_line": [], "started_at": "", "finished_at": null, "complete": true, "profile": "quick",
            "suites": [], "environment": {}, "cells": cells, "fits": fits, "skipped": []}),
        )
        .expect("results parse")
    }

    #[test]
    fn the_selftest_split_is_the_selftests_own_arithmetic_and_is_checked_against_the_fits() {
        let r = seccomp_results();
        let all = decompositions(&r);
        let st = all.iter().find(|d| d.method == "selftest").expect("selftest split");
        // entry = bitmap1 - native - (bitmap2 - bitmap1); per filter = (filter2 - native - entry) / 4.
        let entry = 9.70 - (9.99 - 9.70);
        assert!((st.entry_ns - entry).abs() < 1e-9, "{st:?}");
        assert!((st.per_program_ns - (70.88 - entry) / 4.0).abs() < 1e-9, "{st:?}");
        assert!((st.native_ns - 69.7).abs() < 1e-9);
        // Its entry is the cached path's: checked against the number-only fit (3% apart), its
        // per filter against the argument-loading fit (4% apart): they agree.
        let a = st.agreement.as_ref().expect("checked against the fits");
        assert!(
            a.agrees && a.per_program_rel_diff < 0.05 && a.entry_rel_diff < 0.05,
            "{a:?}"
        );
        assert!(a.other_mechanism.contains("seccomp-nr-only"), "{a:?}");
        // The full-filter fit's own entry (11.1 ns) is a walk of the chain, 18% above the
        // selftest's cached one: shown, not judged; its parts make the selftest's 4-filter
        // cost (11.1 + 4 x 14.71 = 69.97 against 70.88: 1.3%), and that is judged.
        let fit = all
            .iter()
            .find(|d| d.mechanism == "seccomp-arg-load" && d.method == "fit")
            .expect("fit split");
        let a = fit.agreement.as_ref().expect("checked against the selftest");
        assert!(a.entry_paths_differ && a.entry_rel_diff > 0.15, "{a:?}");
        let total = a.total_rel_diff.expect("the 4-filter total is judged");
        let expected = (70.88_f64 - (11.13 + 4.0 * 14.71)).abs() / 70.88;
        assert!((total - expected).abs() < 1e-3, "{a:?}");
        assert!(a.agrees && a.per_program_rel_diff < 0.15, "{a:?}");
        assert_eq!(fit.range, [1, 4]);
        assert!(fit.max_relative_error < 0.05, "{fit:?}");
    }

    #[test]
    fn a_fit_whose_parts_miss_the_selftests_four_filters_disagrees() {
        let mut r = seccomp_results();
        // An entry 17 ns too high: entry + 4 x per filter (86.97) is 23% above the selftest's
        // 4-filter cost (70.88), while the per filter cost still agrees.
        let high = 26.67 - (42.21 - 26.67) + 17.0;
        r.fits[0].entry = Some(hookbench_measure::fitcheck::Entry::from_raw(Estimate {
            value: high,
            se: 0.1,
            df: f64::INFINITY,
        }));
        let all = decompositions(&r);
        let fit = all
            .iter()
            .find(|d| d.mechanism == "seccomp-arg-load" && d.method == "fit")
            .expect("fit split");
        let a = fit.agreement.as_ref().expect("checked against the selftest");
        assert!(a.total_rel_diff.is_some_and(|t| t > 0.15) && !a.agrees, "{a:?}");
    }

    #[test]
    fn native_is_the_baselines_trimmed_mean_when_it_has_one() {
        let mut r = seccomp_results();
        for c in &mut r.cells {
            if let Some(b) = c.baseline.as_mut() {
                // A plain mean ruled by rare preemptions, as on a VM.
                b.mean = 250.0;
                b.trimmed_mean = 70.0;
            }
        }
        let all = decompositions(&r);
        assert!(!all.is_empty());
        for d in &all {
            assert!((d.native_ns - 70.0).abs() < 1e-9, "{d:?}");
        }
    }

    #[test]
    fn an_entry_below_zero_is_shown_as_zero_and_said() {
        let mut r = seccomp_results();
        // A curved sweep whose first two points extrapolate below zero.
        r.fits[0].entry = Some(hookbench_measure::fitcheck::Entry::from_raw(Estimate {
            value: -3.0,
            se: 0.1,
            df: f64::INFINITY,
        }));
        let fit = decompositions(&r)
            .into_iter()
            .find(|d| d.mechanism == "seccomp-arg-load")
            .expect("fit split");
        assert_eq!(fit.entry_ns, 0.0);
        assert!(fit.entry_clamped);
    }
}
