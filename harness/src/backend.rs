//! The backend interface (one small trait, in the manner of hyperfine's `Executor`): a backend measures one cell of a suite.
//!
//! The runner owns the sweep, the journal and the fits; a backend only turns a [`CellSpec`] into
//! measured cells. `model` is the userspace backend (`crate::model_backend`); the tests use a
//! mock backend with known answers.

use crate::suite::{Suite, SuiteMechanism};
use hookbench_model::Params;
use hookbench_reports::Cell;

/// One cell to measure: a mechanism at one point of a suite's sweep.
#[derive(Debug, Clone)]
pub struct CellSpec<'a> {
    /// The suite (its metric decides what is measured).
    pub suite: &'a Suite,
    /// The mechanism to build, as the suite names it for this backend.
    pub mechanism: &'a SuiteMechanism,
    /// The scenario point as requested (`cgroups`/`tasks` may be 0 = auto).
    pub params: Params,
    /// Timed samples per repetition.
    pub samples: usize,
    /// Repetitions.
    pub repetitions: usize,
    /// Seed for everything random in the cell (slot order, placement), derived from the cell id.
    pub seed: u64,
}

/// A measured cell plus the per-sample values (in the cell's unit, baseline subtracted when the cell
/// is) that fits are computed from.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The cell as it is saved.
    pub cell: Cell,
    /// One value per sample, in `cell.unit`.
    pub points: Vec<f64>,
}

/// Why a cell produced no figures.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The cell cannot run here (a limit reached, a mechanism the machine lacks); the run goes on
    /// and the reason lands in `skipped`.
    #[error("{0}")]
    Skip(String),
    /// Something broke; the run stops (what was measured is already saved).
    #[error(transparent)]
    Fatal(#[from] anyhow::Error),
}

/// A way of measuring the mechanisms: `model`, `kernel`, `kmod`.
pub trait Backend {
    /// The backend's results name, e.g. "model".
    fn name(&self) -> &'static str;
    /// The mechanisms of `suite` this backend measures: by default, those the suite names under
    /// `[backend.NAME]` for this backend's name.
    fn mechanisms<'s>(&self, suite: &'s Suite) -> &'s [SuiteMechanism] {
        suite.mechanisms_for(self.name())
    }
    /// Measures one cell; may return several cells (attach cells come with their detach cell).
    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError>;
}

/// A cell of `spec` on `backend` with the figures of `s` (in `unit`) and every optional field
/// empty: the one place both backends build cells from; each then fills in what it measured.
pub fn summary_cell(
    spec: &CellSpec<'_>,
    backend: &str,
    metric: &str,
    unit: &str,
    params: Params,
    s: &crate::measure::stats::Summary,
) -> Cell {
    Cell {
        id: hookbench_reports::cell_id(&spec.suite.name, backend, &spec.mechanism.name, metric, &params),
        suite: spec.suite.name.clone(),
        backend: backend.to_string(),
        model: spec.mechanism.model,
        mechanism: spec.mechanism.name.clone(),
        metric: metric.to_string(),
        unit: unit.to_string(),
        params,
        samples: s.samples,
        mean: s.mean_ns,
        stddev: s.stddev_ns,
        cv: s.cv,
        p50: s.p50_ns,
        p90: s.p90_ns,
        p99: s.p99_ns,
        p999: s.p999_ns,
        max: s.max_ns,
        baseline_subtracted: false,
        baseline: None,
        batch_k: None,
        repetitions: Vec::new(),
        histogram_ps: None,
        accounting: None,
        breakdown: std::collections::BTreeMap::new(),
        throughput_hooks_per_sec: None,
        counters: std::collections::BTreeMap::new(),
    }
}

/// A cell of `spec` on `backend` from per-repetition values (`raw[r][i]`, in ns), less the mean
/// of `baseline` when given: every value is shifted by that mean, so the percentiles stay
/// ordered and the baseline is saved in the cell. The raw values go into the histogram
/// (picoseconds) and the throughput; `points` (for the fits) are the shifted values. Used by the
/// backends whose workers return raw samples (`kmod`).
///
/// Errors: [`CellError::Skip`] naming `label` when `raw` holds no value.
pub fn cell_from_reps(
    spec: &CellSpec<'_>,
    backend: &str,
    label: &str,
    params: Params,
    metric: &str,
    raw: &[Vec<f64>],
    baseline: Option<&[Vec<f64>]>,
) -> Result<Measured, CellError> {
    use crate::measure::stats::{histogram_to_base64, new_histogram_ps, record_ps, Summary, PS_PER_NS};
    let raw_all: Vec<f64> = raw.iter().flatten().copied().collect();
    if raw_all.is_empty() {
        return Err(CellError::Skip(format!("{label}: the workers returned no samples")));
    }
    let base = baseline.map(|b| Summary::from_values_ns(&b.iter().flatten().copied().collect::<Vec<_>>()));
    let shift = base.as_ref().map(|b| b.mean_ns).unwrap_or(0.0);
    let raw_summary = Summary::from_values_ns(&raw_all);
    let points: Vec<f64> = raw_all.iter().map(|v| v - shift).collect();
    let s = Summary::from_values_ns(&points);
    let mut hist = new_histogram_ps().map_err(|e| CellError::Fatal(anyhow::anyhow!("histogram: {e}")))?;
    for v in &raw_all {
        record_ps(&mut hist, (v.max(0.0) * PS_PER_NS).round() as u64);
    }
    let mut cell = summary_cell(spec, backend, metric, "ns", params, &s);
    cell.cv = raw_summary.cv;
    cell.baseline_subtracted = base.is_some();
    cell.baseline = base.as_ref().map(|b| hookbench_reports::Baseline {
        mean: b.mean_ns,
        p50: b.p50_ns,
        samples: b.samples,
    });
    cell.repetitions = raw
        .iter()
        .map(|r| r.iter().sum::<f64>() / r.len().max(1) as f64 - shift)
        .collect();
    cell.histogram_ps = histogram_to_base64(&hist).ok();
    cell.throughput_hooks_per_sec = (raw_summary.mean_ns > 0.0).then(|| 1e9 / raw_summary.mean_ns);
    Ok(Measured { cell, points })
}

/// The run's cgroup subtree held in `slot`, created on first use (after removing what killed
/// runs left, [`hookbench_workloads::cgroupfs::cleanup_stale`]) under the cgroup2 mount found in
/// mountinfo. Shared by the backends that build cgroup trees (`kernel`, `kmod`).
///
/// Errors: [`CellError::Skip`] without a cgroup2 mount; [`CellError::Fatal`] when the subtree
/// cannot be created.
pub fn lazy_run_tree(
    slot: &mut Option<hookbench_workloads::cgroupfs::RunTree>,
) -> Result<&mut hookbench_workloads::cgroupfs::RunTree, CellError> {
    use hookbench_workloads::cgroupfs::{cleanup_stale, Cgroup2, RunTree};
    if slot.is_none() {
        let cg = Cgroup2::detect().map_err(|e| CellError::Skip(e.to_string()))?;
        if let Err(e) = cleanup_stale(&cg) {
            eprintln!("hookbench: warning: could not remove stale hookbench cgroups: {e}");
        }
        if let Err(e) = hookbench_workloads::cgroupfs::cleanup_stale_scratch(&std::env::temp_dir()) {
            eprintln!("hookbench: warning: could not remove stale hookbench scratch directories: {e}");
        }
        let run = RunTree::create(&cg)
            .map_err(|e| CellError::Fatal(anyhow::anyhow!("cannot create this run's cgroup subtree: {e}")))?;
        *slot = Some(run);
    }
    slot.as_mut()
        .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the run's cgroup subtree is missing")))
}
