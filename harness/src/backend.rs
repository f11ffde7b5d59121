//! The backend interface: one small trait through which a backend measures one cell of a suite.
//!
//! The trait is in the manner of hyperfine's `Executor`. The runner owns the sweep, the journal
//! and the fits; a backend only turns a [`CellSpec`] into measured cells. `model` is the
//! userspace backend (`crate::model_backend`); the tests use a mock backend with known answers.

use crate::measure::stats::{histogram_to_base64, new_histogram_ps, record_ps, Summary, PS_PER_NS};
use crate::mechanism::Impl;
use crate::suite::{Suite, SuiteMechanism};
use hookbench_measure::estimate::{trimmed_mean_with_se, TRIM};
use hookbench_measure::{SampleSet, TimingRequest};
use hookbench_model::Params;
use hookbench_reports::{Baseline, Cell, CellName, Overhead, PercentileBasis, Validity, ValidityFlag};

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

impl CellSpec<'_> {
    /// The registry's implementation of this cell's mechanism on `backend`, as `pick` reads it.
    ///
    /// Errors: [`CellError::Fatal`] when the registry has no such mechanism on `backend` or
    /// `pick` finds another kind of implementation (the suite parser refuses both before a run).
    pub fn implementation<T>(&self, backend: &str, pick: fn(Impl) -> Option<T>) -> Result<T, CellError> {
        crate::mechanism::find(backend, &self.mechanism.name)
            .ok()
            .and_then(|m| pick(m.implementation))
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("unknown {backend} mechanism {}", self.mechanism.name)))
    }
}

/// A measured cell plus the per-sample values that fits are computed from (in the cell's unit:
/// each sample less its baseline's mean for cells with a baseline, raw otherwise).
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
    /// The cell cannot run here; the run goes on and the reason lands in `skipped`.
    ///
    /// For example a limit reached, or a mechanism the machine lacks.
    #[error("{0}")]
    Skip(String),
    /// Something broke; the run stops (what was measured is already saved).
    #[error(transparent)]
    Fatal(#[from] anyhow::Error),
}

/// What measuring one cell gives: its cells, or why there are none.
///
/// An attach cell comes with its detach cell.
pub type Cells = Result<Vec<Measured>, CellError>;

/// A way of measuring the mechanisms: `model`, `kernel`, `kmod`.
pub trait Backend {
    /// The backend's results name, e.g. "model".
    fn name(&self) -> &'static str;
    /// The mechanisms of `suite` this backend measures.
    ///
    /// By default, those the suite names under `[backend.NAME]` for this backend's name.
    fn mechanisms<'s>(&self, suite: &'s Suite) -> &'s [SuiteMechanism] {
        suite.mechanisms_for(self.name())
    }
    /// Measures one cell; may return several cells (attach cells come with their detach cell).
    fn measure(&mut self, spec: &CellSpec<'_>) -> Cells;
    /// The derived cells the last [`Backend::measure`] could not measure, for `skipped`.
    ///
    /// Derived cells are those of a C floor measured beside the suite's mechanism, left out
    /// while the mechanism's own cells were measured: `(mechanism, reason)`. None by default.
    fn take_skipped(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// How the run's workers time, one value shared by every backend so that all time the same way.
///
/// It holds the harness's calibrated clock, the CPU workers are pinned to, and how long a
/// repetition lasts at least.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The clock the harness calibrated.
    ///
    /// Workers rebuild it with [`hookbench_measure::Clock::from_info`].
    pub clock: hookbench_measure::ClockInfo,
    /// The CPU every timed worker is pinned to, so a cell and its baseline run on the same CPU.
    ///
    /// It is the last CPU this process may use.
    pub cpu: Option<u32>,
    /// A repetition of a kernel cell lasts at least this long, ns.
    pub kernel_min_duration_ns: u64,
    /// Warm-up before each measurement of a model cell, ns.
    pub model_warmup_ns: u64,
}

impl Timing {
    /// The run's timing with `clock`, pinning workers to the last allowed CPU.
    pub fn new(clock: hookbench_measure::ClockInfo) -> Timing {
        let cpu = hookbench_measure::pin::allowed_cpus()
            .ok()
            .and_then(|c| c.last().copied())
            .and_then(|c| u32::try_from(c).ok());
        Timing {
            clock,
            cpu,
            kernel_min_duration_ns: 20_000_000,
            model_warmup_ns: 5_000_000,
        }
    }

    /// A worker's timing request for `samples` samples of at least `min_duration_ns` in all.
    pub fn request(&self, samples: usize, min_duration_ns: u64) -> TimingRequest {
        TimingRequest {
            clock: self.clock,
            cpu: self.cpu,
            samples: samples.max(1),
            min_duration_ns,
            warmup_ns: 5_000_000,
            max_clock_share: MAX_CLOCK_SHARE,
            single: false,
        }
    }
}

/// The largest share of a timed sample the clock-read pair may take; K is chosen for it.
///
/// A cell whose samples went over it (K capped) is flagged `expensive-clock`.
pub const MAX_CLOCK_SHARE: f64 = 0.05;

/// Read-pair cost, ns, above which a clock is flagged as expensive for single-call cells.
pub const EXPENSIVE_CLOCK_NS: f64 = 100.0;

/// A cell of `spec` on `backend` named `mechanism`: the one place the backends build cells from.
///
/// It has the raw figures of `s` (in `unit`) and every optional field empty.
pub fn base_cell(
    spec: &CellSpec<'_>,
    backend: &str,
    mechanism: &str,
    metric: &str,
    unit: &str,
    params: Params,
    s: &Summary,
) -> Cell {
    let name = CellName {
        suite: &spec.suite.name,
        backend,
        model: spec.mechanism.model,
        mechanism,
        metric,
    };
    Cell::from_summary(name, unit, params, s)
}

/// A cell from raw sample sets and, for hook cells, the sets of its interleaved baseline.
///
/// There is one set per repetition, or per repetition and CPU; `mechanism` names the cell (the
/// suite's mechanism or a derived name). The cell has:
/// - raw percentiles of the cell and of the baseline;
/// - the overhead estimated on its own ([`hookbench_measure::estimate::overhead`]: Yuen's
///   trimmed means, Price-Bonett for the medians; the mean's interval widened to the
///   repetitions' spread when that is larger);
/// - the validity flags from what the workers saw;
/// - the fit points: one per repetition, its trimmed mean less its own interleaved baseline's
///   (drift between cells and rare preemptions do not bend a fit, and a fit's interval reflects
///   what a rerun would show); without a baseline, each repetition's trimmed mean.
///
/// Errors: [`CellError::Skip`] naming the mechanism when the workers returned no sample.
pub fn cell_from_sets(
    spec: &CellSpec<'_>,
    backend: &str,
    mechanism: &str,
    params: Params,
    metric: &str,
    cell: &[SampleSet],
    baseline: &[SampleSet],
) -> Result<Measured, CellError> {
    let raw: Vec<f64> = cell.iter().flat_map(|s| s.values_ns.iter().copied()).collect();
    if raw.is_empty() {
        return Err(CellError::Skip(format!("{mechanism}: the workers returned no samples")));
    }
    let base: Vec<f64> = baseline.iter().flat_map(|s| s.values_ns.iter().copied()).collect();
    let s = Summary::from_values_ns(&raw);
    let mut c = base_cell(spec, backend, mechanism, metric, "ns", params, &s);
    let batch_k = cell.iter().map(|s| s.batch_k).max().unwrap_or(1);
    c.batch_k = Some(batch_k);
    c.percentile_basis = if batch_k > 1 {
        PercentileBasis::BatchMeans
    } else {
        PercentileBasis::Calls
    };
    c.repetitions = cell.iter().map(SampleSet::mean_ns).collect();
    let mut hist = new_histogram_ps().map_err(|e| CellError::Fatal(anyhow::anyhow!("histogram: {e}")))?;
    for v in &raw {
        record_ps(&mut hist, (v.max(0.0) * PS_PER_NS).round() as u64);
    }
    c.histogram_ps = histogram_to_base64(&hist).ok();
    c.throughput_hooks_per_sec = (s.mean_ns > 0.0).then(|| 1e9 / s.mean_ns);
    c.validity = validity(cell, baseline);
    let tm = |v: &[f64]| trimmed_mean_with_se(v, TRIM).ok().map(|e| e.value);
    let points: Vec<f64> = if base.is_empty() {
        cell.iter().filter_map(|s| tm(&s.values_ns)).collect()
    } else {
        let b = Summary::from_values_ns(&base);
        let pooled = tm(&base).unwrap_or(b.mean_ns);
        c.baseline = Some(Baseline {
            mean: b.mean_ns,
            stddev: b.stddev_ns,
            p50: b.p50_ns,
            p90: b.p90_ns,
            p99: b.p99_ns,
            p999: b.p999_ns,
            max: b.max_ns,
            trimmed_mean: pooled,
            samples: b.samples,
        });
        // One point per repetition: its trimmed mean less its own baseline's (the repetitions
        // alternate, so drift falls on both), or less the pooled baseline when they are not
        // paired. Repetitions are the unit of replication: samples of one worker share its
        // state, so a fit or an interval over samples would claim a precision no rerun shows.
        let paired = cell.len() == baseline.len();
        let points: Vec<f64> = cell
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let own = if paired {
                    tm(&baseline[i].values_ns)
                } else {
                    Some(pooled)
                };
                Some(tm(&s.values_ns)? - own?)
            })
            .collect();
        if let Ok(o) = hookbench_measure::estimate::overhead(&raw, &base) {
            // The interval is the wider of the samples' (Yuen) and the repetitions' (paired
            // differences, t on R - 1 df).
            let mean = match hookbench_measure::estimate::mean_with_se(&points) {
                Ok(reps) if reps.se > o.mean.se => hookbench_measure::estimate::Estimate {
                    value: o.mean.value,
                    se: reps.se,
                    df: reps.df,
                },
                _ => o.mean,
            };
            c.overhead = Some(Overhead {
                mean_ns: mean.value,
                mean_ci95_ns: mean.ci(0.95),
                p50_ns: o.p50.value,
                p50_ci95_ns: o.p50.ci(0.95),
            });
        }
        points
    };
    Ok(Measured { cell: c, points })
}

/// A cell of values that are not latencies of a trigger (seconds, bytes, one operation each):
/// raw figures in `unit`, no histogram, no baseline. `reps` holds one value list per
/// repetition; the fit points are the repetitions' means.
pub fn plain_cell(
    spec: &CellSpec<'_>,
    backend: &str,
    mechanism: &str,
    params: Params,
    metric: &str,
    unit: &str,
    reps: &[Vec<f64>],
) -> Result<Measured, CellError> {
    let raw: Vec<f64> = reps.iter().flatten().copied().collect();
    if raw.is_empty() {
        return Err(CellError::Skip(format!("{mechanism}: nothing was measured")));
    }
    let s = Summary::from_values_ns(&raw);
    let mut c = base_cell(spec, backend, mechanism, metric, unit, params, &s);
    c.repetitions = reps
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.iter().sum::<f64>() / r.len() as f64)
        .collect();
    // One fit point per repetition (see [`cell_from_sets`]).
    let points = c.repetitions.clone();
    Ok(Measured { cell: c, points })
}

/// The validity facts of a cell's sample sets against its baseline's, and the flags they raise:
/// a speculation-mitigation state that differs between the two (installing a seccomp filter can
/// switch SSBD on for the task), CPU migrations during the samples, a clock-read pair above
/// [`MAX_CLOCK_SHARE`] of a sample or above [`EXPENSIVE_CLOCK_NS`].
pub fn validity(cell: &[SampleSet], baseline: &[SampleSet]) -> Validity {
    let mut v = Validity::default();
    let state = |sets: &[SampleSet]| -> Option<[String; 2]> {
        sets.first().map(|s| {
            [
                s.speculation.store_bypass.clone().unwrap_or_default(),
                s.speculation.indirect_branch.clone().unwrap_or_default(),
            ]
        })
    };
    let mixed = |sets: &[SampleSet]| sets.windows(2).any(|w| w[0].speculation != w[1].speculation);
    if let Some([ssb, ib]) = state(cell) {
        v.speculation_store_bypass = Some(ssb);
        v.speculation_indirect_branch = Some(ib);
    }
    v.baseline_speculation = state(baseline);
    if mixed(cell) || mixed(baseline) {
        v.flags.push(ValidityFlag {
            code: "mitigation-differs".into(),
            why: "the measuring tasks' speculation-mitigation state changed between repetitions".into(),
        });
    } else if let (Some(c), Some(b)) = (state(cell), &v.baseline_speculation) {
        if &c != b {
            v.flags.push(ValidityFlag {
                code: "mitigation-differs".into(),
                why: format!(
                    "the cell ran with Speculation_Store_Bypass '{}' / SpeculationIndirectBranch '{}', its baseline \
                     with '{}' / '{}'",
                    c[0], c[1], b[0], b[1]
                ),
            });
        }
    }
    let migrations: u64 = cell.iter().chain(baseline).map(|s| s.cpu_migrations).sum();
    v.cpu_migrations = Some(migrations);
    if migrations > 0 {
        v.flags.push(ValidityFlag {
            code: "cpu-migration".into(),
            why: format!("{migrations} CPU migration(s) during the timed samples of the cell or its baseline"),
        });
    }
    let share = cell
        .iter()
        .chain(baseline)
        .map(|s| s.clock_share)
        .fold(0.0_f64, f64::max);
    v.clock_share = Some(share);
    let overhead = cell
        .iter()
        .chain(baseline)
        .map(|s| s.clock_overhead_ns)
        .fold(0.0_f64, f64::max);
    if share > MAX_CLOCK_SHARE * 1.2 || overhead > EXPENSIVE_CLOCK_NS {
        v.flags.push(ValidityFlag {
            code: "expensive-clock".into(),
            why: format!(
                "the clock-read pair ({overhead:.1} ns) took {:.1}% of a sample (limit {:.0}%)",
                share * 100.0,
                MAX_CLOCK_SHARE * 100.0
            ),
        });
    }
    v
}

/// Adds a fact about `cell`'s checks that raises no flag, to `validity.notes`.
///
/// The fact is how a check was made, or why it could not be.
pub fn note_validity(cell: &mut Cell, note: String) {
    cell.validity.notes.push(note);
}

/// Records program runs `[expected, observed]` in `cell` and flags it when they differ.
pub fn check_program_runs(cell: &mut Cell, expected: u64, observed: u64, what: &str) {
    cell.validity.program_runs = Some([expected, observed]);
    if expected != observed {
        cell.validity.flags.push(ValidityFlag {
            code: "programs-not-run".into(),
            why: format!("{what}: the programs ran {observed} times, {expected} expected"),
        });
    }
}

/// The run's cgroup subtree held in `slot`, created on first use.
///
/// It is created under the cgroup2 mount found in mountinfo, after removing what killed runs
/// left ([`hookbench_workloads::cgroupfs::cleanup_stale`]). Shared by the backends that build
/// cgroup trees (`kernel`, `kmod`).
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

/// Measures `reps` pairs of (baseline, cell) measurements, so that drift falls on both alike.
///
/// The baseline is first or second in each pair by a seeded coin flip. `measure(true)` measures
/// the baseline, `measure(false)` the cell.
///
/// Errors: the first error of `measure`.
pub fn interleaved<T>(
    seed: u64,
    reps: usize,
    mut measure: impl FnMut(bool) -> Result<T, CellError>,
) -> Result<(Vec<T>, Vec<T>), CellError> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed.rotate_left(29));
    let (mut base, mut cell) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps.max(1) {
        if rng.random_bool(0.5) {
            base.push(measure(true)?);
            cell.push(measure(false)?);
        } else {
            cell.push(measure(false)?);
            base.push(measure(true)?);
        }
    }
    Ok((base, cell))
}

/// A worker's failure as a cell error: a skip when the worker said why, else a fatal error.
///
/// A worker that says why it could not measure (a kernel limit, a refused program) skips the
/// cell with that reason; anything else stops the run.
pub fn worker_failure(what: &str, e: hookbench_workloads::worker::WorkerError) -> CellError {
    match e {
        hookbench_workloads::worker::WorkerError::Refused(why) => CellError::Skip(why),
        other => CellError::Fatal(anyhow::anyhow!("{what} worker failed: {other}")),
    }
}
