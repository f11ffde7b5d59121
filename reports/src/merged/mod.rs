//! Merges runs from many hosts, kernels and commits into one set (`merged.json`) and renders it.
//!
//! [`merge`] takes runs already read (`results.json` of schema [`crate::SCHEMA`]), refuses the
//! same run given twice, and keeps of each its identity (host, host class, kernel release,
//! hookbench version, commit, profile, `complete`) with its claims and fits. Runs are grouped by
//! [`HostClass`]: slopes are set side by side, and their differences tested, only between runs of
//! one class, so figures from different hardware (or an emulated guest and a native host) are
//! never compared as if they came from one machine. [`render_html`] draws the claims x (host
//! class, kernel) verdict matrix and one slope chart per claim and class; [`render_evidence`] is
//! the same in at most 72 ASCII columns for a reply.

mod evidence;
mod html;

pub use evidence::render_evidence;
pub use html::{render_html, slope_chart};

use crate::host::{hostname, kernel_release, Execution, HostClass};
use crate::schema::{ClaimResult, Fit, Results, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The schema tag of `merged.json`.
pub const MERGED_SCHEMA: &str = "hookbench.merged/1";

/// One input run as the merged set keeps it: who measured what, and its claims and fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedRun {
    /// Short label in the matrix, `r1`, `r2`, ... in the merged order.
    pub label: String,
    /// The path the run was read from, as given.
    pub source: String,
    /// The host name the run recorded.
    pub hostname: String,
    /// The run's host class: runs are compared only within one.
    pub host_class: HostClass,
    /// The kernel release (`uname -r`) the run measured.
    pub kernel_release: String,
    /// The hookbench version that made the run.
    pub hookbench_version: String,
    /// The commit under test when the run recorded one (`environment.commit`), else `None`.
    pub commit: Option<String>,
    /// The run's profile (`smoke`, `quick`, `full`).
    pub profile: String,
    /// `false` for a run that was killed or is still running: its verdicts are partial.
    pub complete: bool,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// The run's measurement-order seed (part of its identity).
    pub order_seed: u64,
    /// Every claim the run evaluated, per backend.
    pub claims: Vec<ClaimResult>,
    /// The fits the run's claims compared (the rest stay in the run's own results.json).
    pub fits: Vec<Fit>,
}

impl MergedRun {
    /// The column heading: kernel release, plus what makes the figures unlike a native run.
    pub fn heading(&self) -> String {
        let mut h = self.kernel_release.clone();
        match self.host_class.execution {
            Execution::Emulated => h.push_str(" (emulated, TCG)"),
            Execution::Uml => h.push_str(" (uml)"),
            _ => {}
        }
        if !self.complete {
            h.push_str(" INCOMPLETE");
        }
        h
    }
}

/// Runs of one host class, in kernel order: the only runs whose figures are set side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostGroup {
    /// The class (architecture, CPU model and count, execution).
    pub host_class: HostClass,
    /// Labels of its runs ([`MergedRun::label`]), in kernel-release order.
    pub runs: Vec<String>,
}

/// One row of the verdict matrix: a claim on a backend, its verdict in every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The claim, 1-7.
    pub claim: u32,
    /// The backend the verdicts are for.
    pub backend: String,
    /// The claim's hypothesis, as the runs state it.
    pub hypothesis: String,
    /// The verdict in each run, in [`Merged::runs`] order; `None` where the run has no such row.
    pub verdicts: Vec<Option<Verdict>>,
}

/// One fitted slope of a claim in one run: a point of the claim's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slope {
    /// The claim, 1-7.
    pub claim: u32,
    /// The run's label.
    pub run: String,
    /// Backend of the fit.
    pub backend: String,
    /// Mechanism of the fit.
    pub mechanism: String,
    /// The fit's x axis (`programs`, `foreign`, ...).
    pub x: String,
    /// The fit's metric (`hook_latency_ns`, ...).
    pub metric: String,
    /// The fixed axes that tell this claim's fits apart, as `axis=value` joined by spaces.
    ///
    /// Only the axes whose values differ between the claim's fits (in any run) are named.
    pub fixed: String,
    /// Slope, in the metric's unit per unit of x.
    pub slope: f64,
    /// The slope's 95% confidence interval.
    pub slope_ci95: [f64; 2],
}

impl Slope {
    /// What a slope is of (backend, mechanism, x, fixed axes, metric), so runs' slopes line up.
    ///
    /// The metric is named unless it is the hook latency, so that a claim's attach and detach
    /// fits (claim 4) are two series, not one label paired at random between runs.
    pub fn series(&self) -> String {
        let mut extra: Vec<&str> = Vec::new();
        if !self.fixed.is_empty() {
            extra.push(&self.fixed);
        }
        if self.metric != "hook_latency_ns" {
            extra.push(&self.metric);
        }
        if extra.is_empty() {
            format!("{} {} per {}", self.backend, self.mechanism, self.x)
        } else {
            format!(
                "{} {} per {} ({})",
                self.backend,
                self.mechanism,
                self.x,
                extra.join(", ")
            )
        }
    }
}

/// The difference of one series' slope between two kernels of one host class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The claim, 1-7.
    pub claim: u32,
    /// The host class both runs belong to.
    pub host_class: HostClass,
    /// The series ([`Slope::series`]).
    pub series: String,
    /// Label of the run on the older kernel.
    pub from_run: String,
    /// Its kernel release.
    pub from_kernel: String,
    /// Label of the run on the newer kernel.
    pub to_run: String,
    /// Its kernel release.
    pub to_kernel: String,
    /// The newer slope less the older, in the metric's unit per unit of x.
    pub diff: f64,
    /// 95% interval of the difference (the two slopes' half-widths added in quadrature).
    pub diff_ci95: [f64; 2],
    /// Whether the interval excludes 0: a difference beyond both runs' noise.
    pub exceeds_ci: bool,
}

/// The merged set written to `merged.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// Always [`MERGED_SCHEMA`].
    pub schema: String,
    /// The hookbench version that merged (the reports crate's, the workspace's version).
    pub merged_by: String,
    /// Every input run, grouped by host class and in kernel order within a class.
    pub runs: Vec<MergedRun>,
    /// The host classes and their runs.
    pub groups: Vec<HostGroup>,
    /// Claims x runs verdicts.
    pub matrix: Vec<MatrixRow>,
    /// Every slope a claim compared, per run.
    pub slopes: Vec<Slope>,
    /// Slope differences between kernels of one host class, each with its interval.
    pub differences: Vec<Difference>,
    /// What a reader must know before trusting the set (incomplete, emulated or mixed runs).
    pub warnings: Vec<String>,
}

impl Merged {
    /// The slopes of `claim` measured by the runs of host class group `g`.
    pub fn slopes_of(&self, claim: u32, g: &HostGroup) -> Vec<&Slope> {
        self.slopes
            .iter()
            .filter(|s| s.claim == claim && g.runs.contains(&s.run))
            .collect()
    }
}

/// Errors merging runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No run was given.
    #[error("no runs to merge: give at least one run directory or results.json")]
    Empty,
    /// The same run (host, start time, order seed, kernel) was given twice.
    #[error(
        "{second} is the same run as {first} (host {host}, started {started_at}): each run is merged once; \
         drop one of them"
    )]
    Duplicate {
        /// The path given first.
        first: String,
        /// The path given again.
        second: String,
        /// The run's host name.
        host: String,
        /// The run's start time.
        started_at: String,
    },
}

/// The numeric parts of a kernel release, for ordering (`5.10.0-32-amd64` before `6.1.0-57`).
pub fn kernel_order_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// The fixed axes of a fit among `keys` as `axis=value`, sorted by axis, for naming a series.
fn fixed_label(f: &Fit, keys: &BTreeSet<&str>) -> String {
    f.fixed
        .iter()
        .filter(|(k, _)| keys.contains(k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fits of `results` a claim compared (same suite, backend, mechanism, x and body).
fn compared_fits<'a>(results: &'a Results, claim: &ClaimResult) -> Vec<&'a Fit> {
    results
        .fits
        .iter()
        .filter(|f| {
            claim
                .compared
                .iter()
                .any(|c| c.is_over(f) && f.fixed.get("body").and_then(|b| b.as_str()) == Some(c.body.as_str()))
        })
        .collect()
}

/// Merges `runs` (each with the path it was read from) into one set.
///
/// Runs are ordered by host class, then kernel release ([`kernel_order_key`]), then start time,
/// and labelled `r1`, `r2`, ... in that order. Differences are made between every two runs of one
/// host class on different kernels, for every series both have.
///
/// Errors: [`MergeError::Empty`] without runs; [`MergeError::Duplicate`] when two paths hold the
/// same run (same host name, start time, order seed and kernel release).
pub fn merge(runs: Vec<(String, Results)>) -> Result<Merged, MergeError> {
    if runs.is_empty() {
        return Err(MergeError::Empty);
    }
    let mut seen: BTreeMap<(String, String, u64, String), String> = BTreeMap::new();
    for (path, r) in &runs {
        let key = (
            hostname(r).to_string(),
            r.started_at.clone(),
            r.order_seed,
            kernel_release(r).to_string(),
        );
        if let Some(first) = seen.get(&key) {
            return Err(MergeError::Duplicate {
                first: first.clone(),
                second: path.clone(),
                host: key.0,
                started_at: key.1,
            });
        }
        seen.insert(key, path.clone());
    }
    let mut runs: Vec<(String, Results, HostClass)> = runs
        .into_iter()
        .map(|(p, r)| {
            let class = HostClass::of(&r);
            (p, r, class)
        })
        .collect();
    runs.sort_by(|a, b| {
        (&a.2, kernel_order_key(kernel_release(&a.1)), &a.1.started_at).cmp(&(
            &b.2,
            kernel_order_key(kernel_release(&b.1)),
            &b.1.started_at,
        ))
    });
    // The fixed axes whose values differ between one claim's fits, in any run: they name series.
    let mut claim_fits: BTreeMap<u32, Vec<&Fit>> = BTreeMap::new();
    for (_, r, _) in &runs {
        for claim in &r.claims {
            claim_fits.entry(claim.id).or_default().extend(compared_fits(r, claim));
        }
    }
    let mut varying: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    for (id, fits) in &claim_fits {
        let entry = varying.entry(*id).or_default();
        for a in fits {
            for b in fits {
                for (k, v) in &a.fixed {
                    if b.fixed.get(k) != Some(v) {
                        entry.insert(k.as_str());
                    }
                }
            }
        }
    }
    let no_keys = BTreeSet::new();
    let mut merged_runs = Vec::new();
    let mut slopes = Vec::new();
    for (i, (path, r, class)) in runs.iter().enumerate() {
        let label = format!("r{}", i + 1);
        let mut fits: Vec<Fit> = Vec::new();
        for claim in &r.claims {
            for f in compared_fits(r, claim) {
                slopes.push(Slope {
                    claim: claim.id,
                    run: label.clone(),
                    backend: f.backend.clone(),
                    mechanism: f.mechanism.clone(),
                    x: f.x.clone(),
                    metric: f.metric.clone(),
                    fixed: fixed_label(f, varying.get(&claim.id).unwrap_or(&no_keys)),
                    slope: f.slope,
                    slope_ci95: f.slope_ci95,
                });
                if !fits.contains(f) {
                    fits.push(f.clone());
                }
            }
        }
        merged_runs.push(MergedRun {
            label,
            source: path.clone(),
            hostname: hostname(r).to_string(),
            host_class: class.clone(),
            kernel_release: kernel_release(r).to_string(),
            hookbench_version: r.hookbench_version.clone(),
            commit: r.environment.get("commit").and_then(|c| c.as_str()).map(str::to_string),
            profile: r.profile.clone(),
            complete: r.complete,
            started_at: r.started_at.clone(),
            order_seed: r.order_seed,
            claims: r.claims.clone(),
            fits,
        });
    }
    let groups = groups_of(&merged_runs);
    let matrix = matrix_of(&merged_runs);
    let differences = differences_of(&merged_runs, &groups, &slopes);
    let warnings = warnings_of(&merged_runs, &groups);
    Ok(Merged {
        schema: MERGED_SCHEMA.to_string(),
        merged_by: env!("CARGO_PKG_VERSION").to_string(),
        runs: merged_runs,
        groups,
        matrix,
        slopes,
        differences,
        warnings,
    })
}

/// The host classes of `runs` (already sorted by class), each with its runs' labels.
fn groups_of(runs: &[MergedRun]) -> Vec<HostGroup> {
    let mut groups: Vec<HostGroup> = Vec::new();
    for r in runs {
        match groups.last_mut() {
            Some(g) if g.host_class == r.host_class => g.runs.push(r.label.clone()),
            _ => groups.push(HostGroup {
                host_class: r.host_class.clone(),
                runs: vec![r.label.clone()],
            }),
        }
    }
    groups
}

/// One row per (claim, backend) any run evaluated, with each run's verdict.
fn matrix_of(runs: &[MergedRun]) -> Vec<MatrixRow> {
    let keys: BTreeSet<(u32, String)> = runs
        .iter()
        .flat_map(|r| r.claims.iter().map(|c| (c.id, c.backend.clone())))
        .collect();
    keys.into_iter()
        .map(|(claim, backend)| {
            let find = |r: &MergedRun| r.claims.iter().find(|c| c.id == claim && c.backend == backend).cloned();
            let hypothesis = runs
                .iter()
                .find_map(|r| find(r).map(|c| c.hypothesis))
                .unwrap_or_default();
            MatrixRow {
                claim,
                verdicts: runs.iter().map(|r| find(r).map(|c| c.verdict)).collect(),
                backend,
                hypothesis,
            }
        })
        .collect()
}

/// The difference of `b`'s slope and `a`'s, with its 95% interval and whether it excludes 0.
///
/// The two slopes' 95% half-widths are added in quadrature (the runs are independent
/// measurements), so the difference is beyond its CI when it is beyond both runs' noise.
pub fn slope_difference(a: &Slope, b: &Slope) -> (f64, [f64; 2], bool) {
    let half = |s: &Slope| (s.slope_ci95[1] - s.slope_ci95[0]).abs() / 2.0;
    let diff = b.slope - a.slope;
    let h = (half(a).powi(2) + half(b).powi(2)).sqrt();
    let ci = [diff - h, diff + h];
    let exceeds = diff.is_finite() && h.is_finite() && (ci[0] > 0.0 || ci[1] < 0.0);
    (diff, ci, exceeds)
}

/// Differences of every series between each two runs of one host class on different kernels.
fn differences_of(runs: &[MergedRun], groups: &[HostGroup], slopes: &[Slope]) -> Vec<Difference> {
    let by_label: BTreeMap<&str, &MergedRun> = runs.iter().map(|r| (r.label.as_str(), r)).collect();
    let mut out = Vec::new();
    for g in groups {
        for (i, a_label) in g.runs.iter().enumerate() {
            for b_label in &g.runs[i + 1..] {
                let (Some(a_run), Some(b_run)) = (by_label.get(a_label.as_str()), by_label.get(b_label.as_str()))
                else {
                    continue;
                };
                if a_run.kernel_release == b_run.kernel_release {
                    continue;
                }
                for a in slopes.iter().filter(|s| &s.run == a_label) {
                    let Some(b) = slopes
                        .iter()
                        .find(|s| &s.run == b_label && s.claim == a.claim && s.series() == a.series())
                    else {
                        continue;
                    };
                    let (diff, diff_ci95, exceeds_ci) = slope_difference(a, b);
                    out.push(Difference {
                        claim: a.claim,
                        host_class: g.host_class.clone(),
                        series: a.series(),
                        from_run: a_label.clone(),
                        from_kernel: a_run.kernel_release.clone(),
                        to_run: b_label.clone(),
                        to_kernel: b_run.kernel_release.clone(),
                        diff,
                        diff_ci95,
                        exceeds_ci,
                    });
                }
            }
        }
    }
    out
}

/// The warnings a reader needs: incomplete runs, emulated or UML runs, mixed versions/profiles.
fn warnings_of(runs: &[MergedRun], groups: &[HostGroup]) -> Vec<String> {
    let mut w = Vec::new();
    for r in runs.iter().filter(|r| !r.complete) {
        w.push(format!(
            "{} ({}, {}) is INCOMPLETE (complete=false: killed or still running): its verdicts cover only \
             what it measured",
            r.label, r.kernel_release, r.source
        ));
    }
    for r in runs {
        match r.host_class.execution {
            Execution::Emulated => w.push(format!(
                "{} ({}) ran under an emulated CPU (qemu TCG): its timings describe the emulator, not the \
                 kernel; compare it only with other emulated runs",
                r.label, r.kernel_release
            )),
            Execution::Uml => w.push(format!(
                "{} ({}) ran on User-Mode Linux: syscalls go through ptrace and BPF is interpreted; compare it \
                 only with other uml runs",
                r.label, r.kernel_release
            )),
            _ => {}
        }
    }
    if groups.len() > 1 {
        w.push(format!(
            "{} host classes: figures are compared only within a class, never across",
            groups.len()
        ));
    }
    for (what, values) in [
        (
            "hookbench versions",
            runs.iter()
                .map(|r| r.hookbench_version.as_str())
                .collect::<BTreeSet<_>>(),
        ),
        ("profiles", runs.iter().map(|r| r.profile.as_str()).collect()),
    ] {
        if values.len() > 1 {
            w.push(format!(
                "mixed {what} ({}): sweeps and statistics may differ between runs",
                values.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slopes_of_two_metrics_are_two_series() {
        let slope = |metric: &str| Slope {
            claim: 4,
            run: "r".into(),
            backend: "model".into(),
            mechanism: "chain-walk".into(),
            x: "descendants".into(),
            metric: metric.into(),
            fixed: String::new(),
            slope: 1.0,
            slope_ci95: [0.5, 1.5],
        };
        assert_ne!(slope("attach_latency_ns").series(), slope("detach_latency_ns").series());
        assert_eq!(slope("hook_latency_ns").series(), "model chain-walk per descendants");
        assert_eq!(
            slope("detach_latency_ns").series(),
            "model chain-walk per descendants (detach_latency_ns)"
        );
    }

    /// A run on `kernel` of host `host` (CPU count `cpus`), with claim 7's two fits.
    ///
    /// `arg` and `nr` are the (slope, CI half-width) of seccomp-arg-load and seccomp-nr-only.
    fn run(host: &str, cpus: u64, kernel: &str, started: &str, arg: (f64, f64), nr: (f64, f64)) -> Results {
        let fit = |mech: &str, (slope, h): (f64, f64)| {
            json!({"suite": "seccomp", "backend": "kernel", "model": "task-chain", "mechanism": mech,
                   "metric": "hook_latency_ns", "x": "programs", "x_axis": "programs",
                   "fixed": {"body": "null", "foreign": 0}, "n": 10, "slope": slope,
                   "slope_ci95": [slope - h, slope + h], "slope_se": h / 2.0, "intercept": 1.0, "r2": 0.99,
                   "y": "overhead", "points": [[1.0, slope], [2.0, 2.0 * slope]]})
        };
        let compared = |mech: &str| {
            json!({"suite": "seccomp", "backend": "kernel", "mechanism": mech,
                                           "body": "null", "x": "programs"})
        };
        serde_json::from_value(json!({
            "schema": crate::SCHEMA, "hookbench_version": "0.1.0", "command_line": [],
            "started_at": started, "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [], "order_seed": 7,
            "environment": {"hostname": host, "kernel_release": kernel, "machine": "x86_64",
                            "cpu_model": "Xeon", "nr_cpus": cpus},
            "cells": [], "skipped": [],
            "fits": [fit("seccomp-arg-load", arg), fit("seccomp-nr-only", nr),
                     fit("landlock", (5.0, 1.0))],
            "claims": [{"id": 7, "hypothesis": "cache", "backend": "kernel", "verdict": "supported",
                        "evidence": "", "numbers": {},
                        "compared": [compared("seccomp-arg-load"), compared("seccomp-nr-only")]},
                       {"id": 1, "hypothesis": "foreign", "backend": "kernel", "verdict": "not-run",
                        "evidence": "", "numbers": {}}]
        }))
        .expect("a test run")
    }

    fn three_kernels() -> Vec<(String, Results)> {
        vec![
            (
                "a/6.12".into(),
                run("h", 2, "6.12.118+deb13-amd64", "t3", (17.0, 0.5), (0.0, 0.1)),
            ),
            (
                "a/5.10".into(),
                run("h", 2, "5.10.0-46-amd64", "t1", (17.0, 0.5), (16.0, 0.5)),
            ),
            (
                "a/6.1".into(),
                run("h", 2, "6.1.0-57-amd64", "t2", (17.2, 0.5), (0.05, 0.1)),
            ),
        ]
    }

    #[test]
    fn kernels_are_ordered_by_their_numbers_not_as_text() {
        let mut k = vec!["6.12.1", "5.10.0-46-amd64", "6.1.0-57-amd64", "6.2"];
        k.sort_by_key(|r| kernel_order_key(r));
        assert_eq!(k, ["5.10.0-46-amd64", "6.1.0-57-amd64", "6.2", "6.12.1"]);
    }

    #[test]
    fn the_matrix_has_a_row_per_claim_and_backend_and_a_column_per_run_in_kernel_order() {
        let m = merge(three_kernels()).expect("merges");
        assert_eq!(m.schema, MERGED_SCHEMA);
        let kernels: Vec<&str> = m.runs.iter().map(|r| r.kernel_release.as_str()).collect();
        assert_eq!(kernels, ["5.10.0-46-amd64", "6.1.0-57-amd64", "6.12.118+deb13-amd64"]);
        assert_eq!(m.runs[0].source, "a/5.10");
        assert_eq!(m.groups.len(), 1);
        assert_eq!(m.groups[0].runs, ["r1", "r2", "r3"]);
        let rows: Vec<(u32, &str)> = m.matrix.iter().map(|r| (r.claim, r.backend.as_str())).collect();
        assert_eq!(rows, [(1, "kernel"), (7, "kernel")]);
        assert_eq!(m.matrix[1].verdicts, vec![Some(Verdict::Supported); 3]);
        assert_eq!(m.matrix[0].verdicts, vec![Some(Verdict::NotRun); 3]);
        // Only the fits claim 7 compared are kept: landlock's is not.
        assert_eq!(m.slopes.len(), 6);
        assert!(m.runs.iter().all(|r| r.fits.len() == 2));
    }

    #[test]
    fn differences_beyond_their_ci_are_marked_and_the_others_are_not() {
        let m = merge(three_kernels()).expect("merges");
        // 3 pairs of kernels x 2 series.
        assert_eq!(m.differences.len(), 6);
        let nr = |from: &str, to: &str| {
            m.differences
                .iter()
                .find(|d| d.series.contains("nr-only") && d.from_run == from && d.to_run == to)
                .expect("a difference")
        };
        // 5.10 (no action cache: 16 per filter) -> 6.1 (0.05): far beyond both CIs.
        let d = nr("r1", "r2");
        assert!(d.exceeds_ci && (d.diff - (0.05 - 16.0)).abs() < 1e-9, "{d:?}");
        assert_eq!(
            (d.from_kernel.as_str(), d.to_kernel.as_str()),
            ("5.10.0-46-amd64", "6.1.0-57-amd64")
        );
        // 6.1 -> 6.12: 0.05 -> 0.0 with CIs of +-0.1 each: inside the noise.
        assert!(!nr("r2", "r3").exceeds_ci);
        let arg = m
            .differences
            .iter()
            .find(|d| d.series.contains("arg-load") && d.from_run == "r1" && d.to_run == "r2")
            .expect("arg-load difference");
        assert!(!arg.exceeds_ci, "0.2 with half-widths 0.5 each is noise: {arg:?}");
    }

    #[test]
    fn a_slope_difference_is_beyond_its_ci_only_when_the_interval_excludes_zero() {
        let s = |slope: f64, h: f64| Slope {
            claim: 7,
            run: "r".into(),
            backend: "kernel".into(),
            mechanism: "m".into(),
            x: "programs".into(),
            metric: "hook_latency_ns".into(),
            fixed: String::new(),
            slope,
            slope_ci95: [slope - h, slope + h],
        };
        // Half-widths 3 and 4 add to 5 in quadrature.
        let (diff, ci, beyond) = slope_difference(&s(10.0, 3.0), &s(15.5, 4.0));
        assert!((diff - 5.5).abs() < 1e-12 && (ci[0] - 0.5).abs() < 1e-12 && (ci[1] - 10.5).abs() < 1e-12);
        assert!(beyond);
        assert!(!slope_difference(&s(10.0, 3.0), &s(14.5, 4.0)).2);
        assert!(slope_difference(&s(10.0, 3.0), &s(4.5, 4.0)).2, "a drop counts too");
        assert!(!slope_difference(&s(10.0, 3.0), &s(f64::NAN, 4.0)).2);
    }

    #[test]
    fn runs_of_different_host_classes_are_never_compared() {
        let mut runs = three_kernels();
        // The same kernel as r1 on a 64-CPU host, and an emulated guest on another kernel.
        runs.push((
            "b".into(),
            run("big", 64, "5.10.0-46-amd64", "t4", (3.0, 0.1), (3.0, 0.1)),
        ));
        let mut tcg = run("rig", 64, "6.1.0-57-amd64", "t5", (300.0, 5.0), (0.0, 1.0));
        tcg.environment["emulated"] = json!("hookbench_rig.emulated=1");
        runs.push(("c".into(), tcg));
        let m = merge(runs).expect("merges");
        assert_eq!(m.groups.len(), 3);
        for d in &m.differences {
            let class = |label: &str| &m.runs.iter().find(|r| r.label == label).expect("run").host_class;
            assert_eq!(class(&d.from_run), class(&d.to_run), "{d:?}");
            assert_eq!(class(&d.from_run), &d.host_class);
        }
        // The two 64-CPU runs differ in execution, so they do not share a class either.
        assert!(m.groups.iter().all(|g| g.host_class.nr_cpus != 64 || g.runs.len() == 1));
        assert!(
            m.warnings.iter().any(|w| w.contains("emulated CPU (qemu TCG)")),
            "{:?}",
            m.warnings
        );
        assert!(m.warnings.iter().any(|w| w.contains("3 host classes")));
        let html = render_html(&m);
        assert!(html.contains("emulated (TCG)"));
        assert_eq!(html.matches("<svg").count(), 3, "one chart per claim and host class");
    }

    #[test]
    fn the_same_run_twice_and_no_runs_are_refused() {
        let mut runs = three_kernels();
        let again = runs[1].1.clone();
        runs.push(("copy/of/5.10".into(), again));
        match merge(runs) {
            Err(MergeError::Duplicate { first, second, .. }) => {
                assert_eq!((first.as_str(), second.as_str()), ("a/5.10", "copy/of/5.10"));
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert_eq!(merge(Vec::new()), Err(MergeError::Empty));
    }

    #[test]
    fn an_incomplete_run_is_merged_but_flagged_everywhere() {
        let mut runs = three_kernels();
        runs[2].1.complete = false;
        let m = merge(runs).expect("merges");
        let r = m.runs.iter().find(|r| r.source == "a/6.1").expect("the 6.1 run");
        assert!(!r.complete);
        assert!(r.heading().contains("INCOMPLETE"));
        assert!(m
            .warnings
            .iter()
            .any(|w| w.starts_with("r2 ") && w.contains("INCOMPLETE")));
        let text = render_evidence(&m);
        assert!(text.contains("r2 A 6.1.0-57-amd64 smoke INCOMPLETE"), "{text}");
        assert!(render_html(&m).contains("<span class=\"incomplete\">INCOMPLETE</span>"));
    }

    #[test]
    fn evidence_is_ascii_72_columns_with_the_matrix_and_marked_differences() {
        let m = merge(three_kernels()).expect("merges");
        let text = render_evidence(&m);
        for l in text.lines() {
            assert!(l.len() <= 72 && l.is_ascii(), "{l:?}");
        }
        assert!(text.contains("  7 kernel          S    S    S"), "{text}");
        assert!(text.contains("  1 kernel          -    -    -"), "{text}");
        // The nr-only step from 5.10 is marked, the arg-load step is not.
        let marked: Vec<&str> = text.lines().filter(|l| l.starts_with("  * ")).collect();
        assert_eq!(marked.len(), 2, "{text}");
        assert!(text.contains("2 of 6"), "{text}");
    }

    #[test]
    fn the_merged_set_survives_a_round_trip_through_json() {
        let m = merge(three_kernels()).expect("merges");
        let back: Merged = serde_json::from_str(&serde_json::to_string(&m).expect("encodes")).expect("decodes");
        assert_eq!(back, m);
    }
}
