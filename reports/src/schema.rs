//! Defines the results contract (`results.json`, `cells.jsonl`) runs write and renderers read.
//!
//! The schema is "hookbench.results/2"; ARCHITECTURE.md, "Results and their versions", says when
//! it changes.
//!
//! Version 2 (this one) saves raw percentiles: a cell's `p50`..`max` are of its own samples,
//! never shifted by a baseline; the baseline's own percentiles sit beside them and the cost over
//! the baseline is a separate estimate with its interval (`overhead`). Version 1 shifted every
//! sample by the baseline's mean, so its percentiles could go negative; it is not read.

use hookbench_measure::fitcheck::{lack_of_fit, segments};
use hookbench_measure::stats::{LinearFit, Summary};
use hookbench_model::{ModelKind, Params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reads a figure that JSON may hold as `null` back as NaN.
///
/// serde_json writes NaN and infinities as `null` (e.g. the coefficient of variation of a cell
/// whose mean is 0).
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`f64_or_nan`] for a pair (a confidence interval).
fn pair_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[f64; 2], D::Error> {
    let [a, b] = <[Option<f64>; 2]>::deserialize(d)?;
    Ok([a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)])
}

/// [`f64_or_nan`] for a list.
fn vec_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// Largest `results.json` [`Results::read`] reads, bytes, since it holds the file in memory.
///
/// A full-profile run with histograms is tens of MB; anything far larger is not a results file.
pub const MAX_RESULTS_BYTES: u64 = 256 << 20;

/// The schema tag at the top of every `results.json`.
pub const SCHEMA: &str = "hookbench.results/2";

/// A whole run: environment, every measured cell, the fits over swept axes, and what was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// hookbench's version (Cargo package version).
    pub hookbench_version: String,
    /// The command line that produced the run, one argument per entry.
    pub command_line: Vec<String>,
    /// RFC 3339 time the run started.
    pub started_at: String,
    /// RFC 3339 time the run finished, or `None` while it is still running (or was killed).
    pub finished_at: Option<String>,
    /// `true` once every requested cell was measured or skipped; a killed run leaves `false`.
    pub complete: bool,
    /// The profile (`smoke`, `quick`, `full`).
    pub profile: String,
    /// The suites that were run, by name.
    pub suites: Vec<SuiteInfo>,
    /// The machine, kernel and clock, as `hookbench::env::Environment` probed them.
    ///
    /// It is kept opaque here so that renderers can read results written by newer probes. It
    /// always holds at least `kernel_release`, `cpu_model`, `nr_cpus`, `privileged`, `clock`,
    /// `clock_overhead_ns`.
    pub environment: serde_json::Value,
    /// Every measured cell, in measurement order.
    pub cells: Vec<Cell>,
    /// Least-squares fits of a metric against a swept axis.
    pub fits: Vec<Fit>,
    /// What could not be run, with the reason.
    pub skipped: Vec<Skipped>,
    /// Every claim of ARCHITECTURE.md ("Names") evaluated on every backend of the run.
    ///
    /// It is written at the end.
    #[serde(default)]
    pub claims: Vec<ClaimResult>,
    /// Seed of the run's shuffled measurement order, so that drift cannot look like a slope.
    ///
    /// The (mechanism, point) pairs of every suite and backend are measured in an order shuffled
    /// with it.
    #[serde(default)]
    pub order_seed: u64,
    /// How each repeated baseline moved over the run (written at the end).
    #[serde(default)]
    pub drift: Vec<DriftEntry>,
    /// Native, entry and per-program parts of a mechanism's cost, by method (fit, selftest).
    #[serde(default)]
    pub decompositions: Vec<Decomposition>,
}

/// How a baseline configuration (one trigger with no programs) moved over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEntry {
    /// Backend name.
    pub backend: String,
    /// The mechanism whose baselines these are.
    pub mechanism: String,
    /// What the baselines have in common (trigger, depth...), as a short label.
    pub label: String,
    /// The baseline medians over the run, `[seconds since start, p50]`, in measurement order.
    pub points: Vec<[f64; 2]>,
    /// The drift statistics of those points.
    pub drift: hookbench_measure::drift::Drift,
}

/// A mechanism's cost split into native + entry + per-program parts.
///
/// The split is the one the kernel's tools/testing/selftests/seccomp/seccomp_benchmark.c makes
/// of seccomp's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decomposition {
    /// Backend name.
    pub backend: String,
    /// Mechanism name (of the fit, or of the selftest-method cells).
    pub mechanism: String,
    /// How the parts were taken: `fit` or `selftest`.
    ///
    /// `fit` takes them from a sweep's baseline, smallest points and slope; `selftest` from the
    /// selftest's own steps (native, 1 and 2 cacheable filters, a 3rd and 4th full filter).
    pub method: String,
    /// The trigger with no program, ns.
    #[serde(deserialize_with = "f64_or_nan")]
    pub native_ns: f64,
    /// The fixed cost of entering the mechanism at all, ns, never negative.
    #[serde(deserialize_with = "f64_or_nan")]
    pub entry_ns: f64,
    /// The entry estimate was below zero and is shown as 0.
    #[serde(default)]
    pub entry_clamped: bool,
    /// Marginal cost of one more program, ns.
    #[serde(deserialize_with = "f64_or_nan")]
    pub per_program_ns: f64,
    /// 95% confidence interval of `per_program_ns`.
    #[serde(deserialize_with = "pair_or_nan")]
    pub per_program_ci95: [f64; 2],
    /// The program counts the parts were taken from, smallest and largest.
    pub range: [u32; 2],
    /// Largest relative error of the parts' sum against the measured cost at the points used.
    ///
    /// The sum is native + entry + N x per-program (the selftest's "parts add up" check).
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_relative_error: f64,
    /// Agreement with the other method's decomposition of the same mechanism, when both exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
}

/// Whether two methods' decompositions of one mechanism agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The other method.
    pub other_method: String,
    /// The other method's mechanism (the selftest cells have their own name).
    pub other_mechanism: String,
    /// |this - other| / other for the per-program cost.
    #[serde(deserialize_with = "f64_or_nan")]
    pub per_program_rel_diff: f64,
    /// |this - other| / other for the entry cost (NaN when the other entry is 0).
    #[serde(deserialize_with = "f64_or_nan")]
    pub entry_rel_diff: f64,
    /// The relative limit the parts must agree within (0.15).
    #[serde(deserialize_with = "f64_or_nan")]
    pub limit: f64,
    /// The two entries are of different kernel paths (a cache hit against a walk of the chain).
    ///
    /// Then `entry_rel_diff` is shown but not judged; `total_rel_diff` is judged instead.
    #[serde(default)]
    pub entry_paths_differ: bool,
    /// |(entry + 4 x per program) - the other's 4-program overhead| / the latter, when judged.
    ///
    /// The selftest's own check of its parts: they must make its 4-filter cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rel_diff: Option<f64>,
    /// The parts judged (per program, and the entry or the 4-program total) agree within `limit`.
    pub agrees: bool,
}

/// A suite as it was run: its name, the claim it answers and its hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteInfo {
    /// Suite name, e.g. "foreign".
    pub name: String,
    /// The claim number (1-7 in ARCHITECTURE.md, "Names") the suite answers, if any.
    pub claim: Option<u32>,
    /// The claim's hypothesis in one sentence.
    pub hypothesis: String,
    /// The axis the suite's fits are over, as named in the fits' `x` (e.g. "descendants").
    pub fit_x: Vec<String>,
    /// The equivalence margin the suite's claim uses for "the same" and "flat".
    ///
    /// It is absolute in the metric's unit per unit of x, and relative to the reference slope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<hookbench_measure::estimate::Margin>,
}

/// Exact per-hook accounting from the model's own walk (nodes visited, programs run, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Chain nodes, array slots or list entries touched by one hook.
    pub nodes_visited: u64,
    /// Program bodies run by one hook.
    pub programs_run: u64,
    /// Cgroup handles compared by one hook (global-filter handle loop).
    pub handles_checked: u64,
    /// Hash-map lookups made by the dispatch itself (global-filter cgroup-id map).
    pub map_lookups: u64,
}

/// One CPU's share of a many-CPU cell: its own raw percentiles and hooks per second.
///
/// The `scaling` suite's kernel cells pin one task to each of P CPUs; the cell's percentiles
/// pool them, these keep each CPU apart (raw, never below 0: the clock pair is subtracted and
/// clamped per sample, the baseline is not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuLatency {
    /// The CPU the task was pinned to.
    pub cpu: u32,
    /// Samples of this CPU over the repetitions.
    pub samples: u64,
    /// Mean per-call latency on this CPU, ns.
    pub mean: f64,
    /// Median per-call latency on this CPU, ns.
    pub p50: f64,
    /// 99th percentile on this CPU, ns.
    pub p99: f64,
    /// Median of the same CPU's baseline (same task, no program), ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p50: Option<f64>,
    /// Hooks per second this CPU fired (1e9 / its mean).
    pub throughput_hooks_per_sec: f64,
}

/// What a working-set cell's W tasks or cgroups hold for the hook, beside the caches it must beat.
///
/// "Cold" means something only against the caches: a rotation whose dispatch metadata and
/// programs fit in the L2 stays warm however many tasks take turns. `method` says how the bytes
/// were counted (the model counts its own allocations exactly; the kernel's are estimated from
/// object layouts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingSetBytes {
    /// Bytes of dispatch metadata and programs one rotation through the W slots reads.
    pub bytes: u64,
    /// The same for one slot: a task or cgroup with its N programs.
    pub per_slot_bytes: u64,
    /// How the bytes were counted, e.g. "exact: ..." or "estimate: ...".
    pub method: String,
    /// The machine's L2 cache, bytes (CPU 0's, from sysfs), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_bytes: Option<u64>,
    /// The machine's last-level cache, bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llc_bytes: Option<u64>,
}

impl WorkingSetBytes {
    /// Where the working set stands against the caches, in words.
    ///
    /// One of "within the L2", "past the L2, within the LLC", "past the LLC", or "cache sizes
    /// unknown".
    pub fn level(&self) -> &'static str {
        match (self.l2_bytes, self.llc_bytes) {
            (_, Some(llc)) if self.bytes > llc => "past the LLC",
            (Some(l2), _) if self.bytes <= l2 => "within the L2",
            (_, Some(_)) => "past the L2, within the LLC",
            _ => "cache sizes unknown",
        }
    }
}

/// The baseline a cell was measured against (same trigger, no programs), with its own raw figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Baseline mean, in the cell's unit.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    /// Baseline standard deviation, in the cell's unit.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub stddev: f64,
    /// Baseline median, in the cell's unit.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p50: f64,
    /// Baseline 90th percentile.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub p90: f64,
    /// Baseline 99th percentile.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub p99: f64,
    /// Baseline 99.9th percentile.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub p999: f64,
    /// Baseline largest sample.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub max: f64,
    /// Baseline trimmed mean, in the cell's unit, the overheads' estimator.
    ///
    /// [`hookbench_measure::estimate::TRIM`] is cut from each end. The estimator of the overheads, so a decomposition's native figure adds up with them;
    /// the plain mean of a VM's syscall loop is ruled by rare preemptions. NaN in results
    /// written before it existed.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub trimmed_mean: f64,
    /// Baseline samples.
    pub samples: u64,
}

fn nan() -> f64 {
    f64::NAN
}

/// A cell's cost over its baseline, estimated on its own: never read off shifted percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// mean(cell) - mean(baseline), ns.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_ns: f64,
    /// 95% confidence interval of `mean_ns` (Welch).
    #[serde(deserialize_with = "pair_or_nan")]
    pub mean_ci95_ns: [f64; 2],
    /// median(cell) - median(baseline), ns.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p50_ns: f64,
    /// 95% confidence interval of `p50_ns` (Price & Bonett 2002 standard errors of the medians).
    #[serde(deserialize_with = "pair_or_nan")]
    pub p50_ci95_ns: [f64; 2],
}

/// What a cell's percentiles are percentiles of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PercentileBasis {
    /// Single invocations (batch K = 1, or one operation per sample: attach, set-up).
    #[default]
    Calls,
    /// Means of batches of K invocations (K in `batch_k`), whose tails are thinner than calls'.
    BatchMeans,
}

/// One reason a cell may not measure what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidityFlag {
    /// Short code, one of the six below.
    ///
    /// `mitigation-differs`, `cpu-migration`, `programs-not-run`, `expensive-clock`,
    /// `busy-system`, `cache-differs` (seccomp's action cache runs a chain it should skip).
    pub code: String,
    /// One sentence with the facts.
    pub why: String,
}

/// The facts a cell's validity is judged on, and the flags raised (empty = nothing found).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Validity {
    /// Why the cell may be invalid; empty when no check failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<ValidityFlag>,
    /// `Speculation_Store_Bypass` of /proc/PID/status of the measuring task(s) of the cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculation_store_bypass: Option<String>,
    /// `SpeculationIndirectBranch` of /proc/PID/status of the measuring task(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculation_indirect_branch: Option<String>,
    /// The same two lines for the baseline's task(s), when the cell has a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_speculation: Option<[String; 2]>,
    /// CPU migrations of the measuring task(s) during the timed samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_migrations: Option<u64>,
    /// The clock-read pair's share of one timed sample (overhead / sample interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_share: Option<f64>,
    /// Program runs counted by the kernel or the programs (expected, observed), when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_runs: Option<[u64; 2]>,
    /// Facts about the checks that raise no flag: how a check was made, or why it could not be.
    ///
    /// For example: `BPF_ENABLE_STATS` refused, so whether null-body programs ran was not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One measured point: a mechanism at one point of the scenario space, for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Stable identifier: `suite/backend/mechanism/metric/axis=value,...` (used by `compare`).
    pub id: String,
    /// Suite name.
    pub suite: String,
    /// Backend: "model", "kernel" or "kmod".
    pub backend: String,
    /// The dispatch model the mechanism realises.
    pub model: ModelKind,
    /// How the model was realised, e.g. "chain-walk", "effective-array", "handle-loop".
    pub mechanism: String,
    /// Metric name: "hook_latency_ns", "attach_latency_ns", "detach_latency_ns", "metadata_bytes".
    pub metric: String,
    /// Unit of every figure of the cell: "ns" or "bytes".
    pub unit: String,
    /// The scenario point, as built (auto sizes resolved).
    pub params: Params,
    /// Number of samples behind the figures (batches for hook latency, operations for attach).
    pub samples: u64,
    /// Mean, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    /// Standard deviation of the samples, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub stddev: f64,
    /// Coefficient of variation of the samples (stddev / mean of the raw, unsubtracted samples).
    #[serde(deserialize_with = "f64_or_nan")]
    pub cv: f64,
    /// Median, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p50: f64,
    /// 90th percentile, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p90: f64,
    /// 99th percentile, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p99: f64,
    /// 99.9th percentile, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p999: f64,
    /// Largest sample, in `unit`.
    #[serde(deserialize_with = "f64_or_nan")]
    pub max: f64,
    /// Smallest sample, in `unit`.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub min: f64,
    /// What the percentiles are of: single calls or means of batches of `batch_k` calls.
    #[serde(default)]
    pub percentile_basis: PercentileBasis,
    /// The baseline (same trigger, no programs) measured interleaved with this cell's repetitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// The cell's cost over its baseline, with intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<Overhead>,
    /// Hook invocations per timed batch (K), when invocations were batched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_k: Option<u64>,
    /// Mean of each repetition, in `unit` (raw).
    #[serde(default, deserialize_with = "vec_or_nan")]
    pub repetitions: Vec<f64>,
    /// Raw (unsubtracted) per-invocation latency histogram, picoseconds.
    ///
    /// It is encoded as hdrhistogram V2+deflate, in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_ps: Option<String>,
    /// Exact accounting of one hook for this scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting: Option<Accounting>,
    /// Per-component bytes, for `metadata_bytes` cells.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: BTreeMap<String, u64>,
    /// Hooks per second over all CPUs of the cell (raw, unsubtracted), for hook-latency cells.
    ///
    /// Scaling efficiency at P CPUs is this figure over P times the one-CPU figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_hooks_per_sec: Option<f64>,
    /// Each CPU's own percentiles, for cells measured on P CPUs at once (kernel `scaling` cells).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_cpu: Vec<CpuLatency>,
    /// Raw hardware counters per invocation ("cycles", "instructions"), where the CPU has them.
    ///
    /// The baseline is not subtracted; they are counted over a separate run of hooks after the
    /// timed samples. Absent counters are absent here, never zero (the environment's
    /// `perf_counters` says why).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, f64>,
    /// Validity checks of the cell, whose flags say why its figures may mislead.
    ///
    /// They cover the mitigation state against the baseline's, CPU migrations, programs that ran
    /// and the clock's share.
    #[serde(default)]
    pub validity: Validity,
    /// Position of the cell in the run's measurement order (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    /// Seconds from the run's start to the end of the cell's measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_at_s: Option<f64>,
    /// What the cell's working set holds for the hook, against the L2 and last-level caches.
    ///
    /// Hook cells that rotate through W tasks or cgroups have one; older results have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set: Option<WorkingSetBytes>,
}

/// A least-squares fit of a metric against one swept axis, the other axes held fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Suite name.
    pub suite: String,
    /// Backend name.
    pub backend: String,
    /// The dispatch model the mechanism realises.
    pub model: ModelKind,
    /// Mechanism name.
    pub mechanism: String,
    /// Metric that was fitted (the y axis), e.g. "hook_latency_ns".
    pub metric: String,
    /// The swept axis (the x axis), e.g. "programs", "foreign", "descendants".
    pub x: String,
    /// The params axis `x` reads its values from.
    ///
    /// It differs from `x` when `x` is a label such as "descendants" for the `cgroups` axis.
    pub x_axis: String,
    /// The axes held fixed for this fit, by name.
    pub fixed: BTreeMap<String, serde_json::Value>,
    /// Number of points in the fit (one per sample or repetition).
    pub n: u64,
    /// Slope, in the metric's unit per unit of x (e.g. ns per program).
    #[serde(deserialize_with = "f64_or_nan")]
    pub slope: f64,
    /// 95% confidence interval of the slope (Student's t, n-2 degrees of freedom).
    #[serde(deserialize_with = "pair_or_nan")]
    pub slope_ci95: [f64; 2],
    /// Standard error of the slope (degrees of freedom: `n - 2`), for equivalence tests.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub slope_se: f64,
    /// Intercept, in the metric's unit: with `y` = "overhead" the cost over the baseline at x = 0.
    #[serde(deserialize_with = "f64_or_nan")]
    pub intercept: f64,
    /// Coefficient of determination.
    #[serde(deserialize_with = "f64_or_nan")]
    pub r2: f64,
    /// What was fitted: "overhead" or "raw".
    ///
    /// "overhead" is each cell's samples less its own interleaved baseline's mean, so drift
    /// between cells cancels; "raw" is for cells without a baseline (attach, set-up, bytes).
    #[serde(default)]
    pub y: String,
    /// The distinct x values and the mean y at each, for plotting.
    pub points: Vec<[f64; 2]>,
    /// Whether a straight line holds over the points (lack-of-fit F test and relative deviation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lack_of_fit: Option<hookbench_measure::fitcheck::LackOfFit>,
    /// Marginal cost between consecutive x values, with intervals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<hookbench_measure::fitcheck::Segment>,
    /// Entry cost from the two smallest x >= 1 against the baseline (never negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<hookbench_measure::fitcheck::Entry>,
}

/// Which cells a [`Fit`] is of, and the axis it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitSubject<'a> {
    /// The cells' suite, backend, model, mechanism and metric (the fit's y axis).
    pub name: CellName<'a>,
    /// The swept axis as the results name it (the x axis).
    pub x: &'a str,
    /// The params axis `x` reads its values from.
    pub x_axis: &'a str,
}

impl Fit {
    /// The fit of `line`, the least-squares line through the samples `xs`, `ys` of `subject`.
    ///
    /// `fixed` holds the axes held fixed; `overhead` says each sample is less its own cell's
    /// baseline mean (`y` = "overhead"), not raw. The line holds where no point mean is further
    /// than `line_rel_tolerance` from it, relative. `points` are the mean y at each distinct x;
    /// the entry cost is left out (set `entry` where the overheads are known).
    pub fn new(
        subject: FitSubject<'_>,
        fixed: BTreeMap<String, serde_json::Value>,
        overhead: bool,
        (xs, ys): (&[f64], &[f64]),
        line: &LinearFit,
        line_rel_tolerance: f64,
    ) -> Fit {
        Fit {
            suite: subject.name.suite.to_string(),
            backend: subject.name.backend.to_string(),
            model: subject.name.model,
            mechanism: subject.name.mechanism.to_string(),
            metric: subject.name.metric.to_string(),
            x: subject.x.to_string(),
            x_axis: subject.x_axis.to_string(),
            fixed,
            n: xs.len() as u64,
            slope: line.slope,
            slope_ci95: [line.slope_ci95.0, line.slope_ci95.1],
            slope_se: line.slope_stderr,
            intercept: line.intercept,
            r2: line.r2,
            y: if overhead { "overhead" } else { "raw" }.to_string(),
            points: mean_per_x(xs, ys),
            lack_of_fit: lack_of_fit(xs, ys, line, line_rel_tolerance),
            segments: segments(xs, ys),
            entry: None,
        }
    }
}

/// The distinct values of `xs` in ascending order, each with the mean of its `ys`.
fn mean_per_x(xs: &[f64], ys: &[f64]) -> Vec<[f64; 2]> {
    let mut sums: Vec<(f64, f64, u32)> = Vec::new();
    for (&x, &y) in xs.iter().zip(ys) {
        match sums.iter_mut().find(|(at, _, _)| at.total_cmp(&x).is_eq()) {
            Some((_, sum, n)) => {
                *sum += y;
                *n += 1;
            }
            None => sums.push((x, y, 1)),
        }
    }
    sums.sort_by(|a, b| a.0.total_cmp(&b.0));
    sums.into_iter().map(|(x, sum, n)| [x, sum / f64::from(n)]).collect()
}

/// Something a run could not measure, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Backend name.
    pub backend: String,
    /// Mechanism name (or "*" for the whole backend).
    pub mechanism: String,
    /// Suite name, when the skip concerns one suite's cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Why, in words a user can act on.
    pub reason: String,
}

/// Errors reading a results file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON for this schema.
    #[error("{path} is not a hookbench results file: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The path is not a regular file (a device, a FIFO, a directory without results.json).
    #[error("{path} is not a regular file: give a run directory or its results.json")]
    NotRegular {
        /// The path.
        path: String,
    },
    /// The file is larger than [`MAX_RESULTS_BYTES`].
    #[error("{path} holds {bytes} bytes, more than the {MAX_RESULTS_BYTES} a results file may: is it a results.json?")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// A results file of schema 1, whose percentiles were shifted by the baseline.
    #[error(
        "{path} is a results file of schema hookbench.results/1, whose percentiles were shifted by the baseline's \
         mean: they cannot be compared with raw ones; re-run it with this hookbench"
    )]
    OldSchema {
        /// The file.
        path: String,
    },
    /// The schema tag is not [`SCHEMA`].
    #[error("{path} has schema '{found}', this hookbench reads '{SCHEMA}'")]
    Schema {
        /// The file.
        path: String,
        /// The tag found.
        found: String,
    },
}

impl Results {
    /// Reads and checks a `results.json`.
    ///
    /// Errors: [`ReadError::Io`] when unreadable, [`ReadError::NotRegular`] for devices, FIFOs
    /// and directories, [`ReadError::TooLarge`] over [`MAX_RESULTS_BYTES`],
    /// [`ReadError::Parse`] when not this schema's JSON,
    /// [`ReadError::Schema`] when the schema tag differs.
    pub fn read(path: &std::path::Path) -> Result<Results, ReadError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ReadError::NotRegular { path: shown });
        }
        if meta.len() > MAX_RESULTS_BYTES {
            return Err(ReadError::TooLarge {
                path: shown,
                bytes: meta.len(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|source| ReadError::Parse {
            path: shown.clone(),
            source,
        })?;
        let found = value.get("schema").and_then(|s| s.as_str()).unwrap_or("(none)");
        if found == "hookbench.results/1" {
            return Err(ReadError::OldSchema { path: shown });
        }
        if found != SCHEMA {
            return Err(ReadError::Schema {
                path: shown,
                found: found.to_string(),
            });
        }
        serde_json::from_value(value).map_err(|source| ReadError::Parse { path: shown, source })
    }

    /// The cells a fit was made from, so renderers can show them beside it.
    ///
    /// They share the fit's suite, backend, mechanism and metric, and every axis the fit holds
    /// fixed at the fit's value (numeric axes compared as numbers, `body` by name).
    pub fn cells_of(&self, fit: &Fit) -> Vec<&Cell> {
        self.cells
            .iter()
            .filter(|c| {
                c.suite == fit.suite
                    && c.backend == fit.backend
                    && c.mechanism == fit.mechanism
                    && c.metric == fit.metric
            })
            .filter(|c| {
                fit.fixed.iter().all(|(axis, value)| match c.params.axis(axis) {
                    Some(v) => value.as_f64() == Some(f64::from(v)),
                    None if axis == "body" => value.as_str() == Some(c.params.body.to_string().as_str()),
                    None => true,
                })
            })
            .collect()
    }

    /// A string field of the environment, or "unknown".
    pub fn env_str(&self, key: &str) -> String {
        match self.environment.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "unknown".to_string(),
            Some(other) => other.to_string(),
        }
    }
}

/// What names a cell (and the cells of a [`Fit`]): suite, backend, model, mechanism, metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellName<'a> {
    /// Suite name.
    pub suite: &'a str,
    /// Backend: "model", "kernel" or "kmod".
    pub backend: &'a str,
    /// The dispatch model the mechanism realises.
    pub model: ModelKind,
    /// The mechanism (or derived) name the cell is recorded under.
    pub mechanism: &'a str,
    /// Metric name, e.g. "hook_latency_ns".
    pub metric: &'a str,
}

impl Cell {
    /// A cell named `name` at `params`: the figures of `s` (in `unit`), optional fields empty.
    ///
    /// The one constructor of cells: the backends (`base_cell`) and the synthetic results start
    /// here and fill what they measured; its `id` is [`cell_id`]'s.
    pub fn from_summary(name: CellName<'_>, unit: &str, params: Params, s: &Summary) -> Cell {
        let CellName {
            suite,
            backend,
            model,
            mechanism,
            metric,
        } = name;
        Cell {
            id: cell_id(suite, backend, mechanism, metric, &params),
            suite: suite.to_string(),
            backend: backend.to_string(),
            model,
            mechanism: mechanism.to_string(),
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
            min: s.min_ns,
            percentile_basis: PercentileBasis::Calls,
            baseline: None,
            overhead: None,
            batch_k: None,
            repetitions: Vec::new(),
            histogram_ps: None,
            accounting: None,
            breakdown: BTreeMap::new(),
            throughput_hooks_per_sec: None,
            per_cpu: Vec::new(),
            counters: BTreeMap::new(),
            validity: Validity::default(),
            order: None,
            measured_at_s: None,
            working_set: None,
        }
    }
}

/// Builds a cell id: `suite/backend/mechanism/metric/programs=..,foreign=..,...,body=..`.
pub fn cell_id(suite: &str, backend: &str, mechanism: &str, metric: &str, params: &Params) -> String {
    let axes: Vec<String> = hookbench_model::NUMERIC_AXES
        .iter()
        .filter_map(|a| params.axis(a).map(|v| format!("{a}={v}")))
        .chain(std::iter::once(format!("body={}", params.body)))
        .collect();
    format!("{suite}/{backend}/{mechanism}/{metric}/{}", axes.join(","))
}

/// A claim's outcome on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The data agree with the hypothesis.
    Supported,
    /// The data contradict it.
    Refuted,
    /// The intervals are too wide to tell.
    Inconclusive,
    /// The mechanisms it needs were not measured on this backend.
    NotRun,
}

impl Verdict {
    /// The results name, e.g. "not-run".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Refuted => "refuted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotRun => "not-run",
        }
    }
}

/// One claim evaluated on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// The ARCHITECTURE.md claim number, 1-7.
    pub id: u32,
    /// The hypothesis in one sentence.
    pub hypothesis: String,
    /// Backend the verdict is for.
    pub backend: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence with the figures.
    pub evidence: String,
    /// The numbers behind it (slopes, CI bounds, differences), by name.
    pub numbers: BTreeMap<String, f64>,
    /// The fits the verdict compared, so a reader can find them (and their cells).
    #[serde(default)]
    pub compared: Vec<Compared>,
    /// The equivalence margin a "the same" or "flat" test used, in the fits' unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

/// One fit a claim compared: where it comes from and what it was over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// Suite of the fit.
    pub suite: String,
    /// Backend of the fit.
    pub backend: String,
    /// Mechanism of the fit.
    pub mechanism: String,
    /// The program body the fit's cells ran (`null`, `counter`, `map-lookup`).
    pub body: String,
    /// The fit's x axis.
    pub x: String,
}

impl Compared {
    /// Whether `f` is a fit of this suite, backend, mechanism and x (of any body).
    pub fn is_over(&self, f: &Fit) -> bool {
        self.suite == f.suite && self.backend == f.backend && self.mechanism == f.mechanism && self.x == f.x
    }
}

#[cfg(test)]
mod tests;
