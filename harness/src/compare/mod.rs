//! `hookbench compare BASE... NEW...`: did NEW regress against BASE, judged by run-to-run noise.
//!
//! Cells are matched by id (suite, backend, mechanism, metric and every parameter) across every
//! run given. Each run's figure for a cell is taken against that run's own interleaved baseline:
//! the overhead (`overhead.mean_ns`, trimmed means) where every run has one, else the raw median
//! (`p50`). A change is given relative to BASE's raw median (what the hook invocation costs).
//!
//! The noise is what varies between runs, not inside one (repetitions of one run sit seconds
//! apart and agree to 1% while runs differ by far more):
//! - three or more runs per side: the kernel test robot's range separation
//!   ([`hookbench_measure::change::separation`]) on each side's trimmed min/median/max, the
//!   noise being the wider side's range;
//! - fewer: a z-test whose noise adds each run's own interval to the between-run noise, which is
//!   estimated from the run's repeated baselines (`drift`: how far one baseline wandered over the
//!   run) and, never below, the robust spread of all of this pair's changes on that backend; its
//!   critical value is family-wise (Bonferroni) over the cells judged.
//!
//! A cell, and each mechanism (the cells of one suite, backend, mechanism and metric, pooled),
//! comes out `regressed` or `improved` when the change is decided and larger than the threshold
//! (the minimum effect size), `noisy` when it is not decided and its noise is larger than the
//! threshold (or it is flagged invalid in a run), else `unchanged`. A mechanism's noise is never
//! below the robust spread of all mechanisms' changes on its backend. The mechanisms decide the
//! comparison: regressed when one regressed, noisy when one is noisy or most cells are flagged,
//! else unchanged (or improved); a lone cell's outlier does not. Runs of different host classes ([`HostClass`]) are refused
//! unless asked. Every metric hookbench records is smaller-is-better.

use crate::error::UsageError;
use crate::measure::change::{familywise_critical, pooled_relative_sd, robust_sd, separation, weighted_mean};
use crate::measure::change::{Range, Separation};
use crate::measure::estimate::two_sided_critical;
use hookbench_reports::host::{hostname, kernel_release, HostClass};
use hookbench_reports::{Cell, Results};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Family-wise significance level of the z-test (over all cells, and over all mechanisms).
pub const ALPHA: f64 = 0.05;
/// Default threshold: the smallest change that counts, percent of BASE's raw median.
pub const DEFAULT_THRESHOLD_PCT: f64 = 5.0;
/// Runs per side from which the range separation replaces the z-test (lkp-tests asks for 3).
pub const MIN_RANGE_RUNS: usize = 3;
/// Mechanisms on one backend from which their changes' spread is a floor of their noise.
pub const MIN_GROUPS_FOR_SPREAD: usize = 5;
/// Share of cells flagged invalid above which the whole comparison is noisy.
pub const NOISY_CELL_SHARE: f64 = 0.5;

/// What a row compares: the overhead over the run's own baseline, or the raw median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Every run's cell has an overhead over its interleaved baseline: `overhead.mean_ns`.
    Overhead,
    /// At least one has none (attach, set-up, bytes): the raw median `p50`.
    Raw,
}

impl Basis {
    /// The name printed in a row: "overhead" or "raw".
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Overhead => "overhead",
            Basis::Raw => "raw",
        }
    }

    /// A row's figure as printed, signed when it is a difference.
    ///
    /// An overhead keeps its sign (`+12.3000`, `-0.5000`); a raw median is a latency, never
    /// negative.
    pub fn figure(self, v: f64) -> String {
        match self {
            Basis::Overhead => format!("{v:+.4}"),
            Basis::Raw => format!("{v:.4}"),
        }
    }
}

/// The judgement of a cell, a mechanism, or the whole comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Decided, upwards, and larger than the threshold.
    Regressed,
    /// Decided, downwards, and larger than the threshold.
    Improved,
    /// Not decided and the noise is larger than the threshold, or flagged invalid in a run.
    Noisy,
    /// Within the threshold, with noise small enough to say so.
    Unchanged,
}

impl Outcome {
    /// The kebab-case name printed in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Regressed => "regressed",
            Outcome::Improved => "improved",
            Outcome::Noisy => "noisy",
            Outcome::Unchanged => "unchanged",
        }
    }

    /// The mark of the text table: `**`, `++`, `~` or nothing.
    pub fn mark(self) -> &'static str {
        match self {
            Outcome::Regressed => "**",
            Outcome::Improved => "++",
            Outcome::Noisy => "~",
            Outcome::Unchanged => "",
        }
    }
}

/// Which test decided: the robot's range separation, or the family-wise z-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    /// [`MIN_RANGE_RUNS`] or more runs per side: trimmed ranges separated by a gap.
    RangeSeparation,
    /// Fewer runs: change over a noise of within-run intervals and between-run noise.
    ZTest,
}

/// A run as given on the command line: where it was read from and what it holds.
#[derive(Debug, Clone)]
pub struct Run {
    /// The path as given (a run directory or a results.json).
    pub path: String,
    /// Its results.
    pub results: Results,
}

/// What a report says about one run: enough to tell the runs apart and to repeat them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The path as given.
    pub path: String,
    /// `uname -r` of the run's kernel.
    pub kernel: String,
    /// The run's host name.
    pub hostname: String,
    /// Profile (`smoke`, `quick`, `full`).
    pub profile: String,
    /// Seed of the measurement order.
    pub order_seed: u64,
    /// hookbench's version.
    pub hookbench_version: String,
    /// Whether every requested cell was measured or skipped.
    pub complete: bool,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The command that repeats it, quoted for a shell.
    pub command: String,
}

impl RunInfo {
    fn of(run: &Run) -> RunInfo {
        let r = &run.results;
        RunInfo {
            path: run.path.clone(),
            kernel: kernel_release(r).to_string(),
            hostname: hostname(r).to_string(),
            profile: r.profile.clone(),
            order_seed: r.order_seed,
            hookbench_version: r.hookbench_version.clone(),
            complete: r.complete,
            started_at: r.started_at.clone(),
            command: hookbench_reports::evidence::reproduce_command(&r.command_line),
        }
    }
}

/// One matched cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The cell id.
    pub id: String,
    /// Suite, backend, mechanism and metric: the mechanism group the row pools into.
    pub group: String,
    /// Unit of `base` and `new`.
    pub unit: String,
    /// What `base` and `new` are.
    pub basis: Basis,
    /// BASE's raw median (median over BASE's runs), the level changes are relative to, in `unit`.
    pub level: f64,
    /// BASE's figure (the mean over its runs; the median with the range separation), in `unit`.
    pub base: f64,
    /// NEW's figure, likewise.
    pub new: f64,
    /// `(new - base) / level`, percent.
    pub change_pct: f64,
    /// The noise of the change, percent of `level`: the half-width the test resolves.
    ///
    /// z-test: critical z x the change's standard error; range separation: the wider range.
    pub noise_pct: f64,
    /// Whether the test decided there is a change (whatever its size).
    pub decided: bool,
    /// The judgement.
    pub outcome: Outcome,
    /// Validity flags of the cell in the runs, each named with its side: `NEW cpu-migration`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// The pooled judgement of one mechanism: the judged cells of one suite, backend and metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// `suite/backend/mechanism/metric`.
    pub name: String,
    /// Judged cells (not flagged invalid) pooled.
    pub cells: usize,
    /// Pooled change, percent of the cells' levels.
    ///
    /// Inverse-variance weighted; with the range separation, from the median of the cells'
    /// relative figures per run.
    pub change_pct: f64,
    /// Its noise, percent, as for a [`Row`].
    pub noise_pct: f64,
    /// Whether the test decided there is a change.
    pub decided: bool,
    /// The judgement.
    pub outcome: Outcome,
}

/// The between-run noise of one backend as the z-test used it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendNoise {
    /// Backend name.
    pub backend: String,
    /// Relative standard deviation of the runs' repeated baselines, percent.
    ///
    /// Root mean square over the runs of both sides; `None`: no run recorded drift here.
    pub drift_pct: Option<f64>,
    /// Robust standard deviation of this comparison's changes on this backend, percent.
    pub spread_pct: Option<f64>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The threshold, percent of BASE's raw median.
    pub threshold_pct: f64,
    /// The test used.
    pub test: Test,
    /// Critical z of the cells and of the mechanisms (z-test only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_z: Option<[f64; 2]>,
    /// The host class of the runs (BASE's first run's when they differ).
    pub host: String,
    /// Set when the runs come from different host classes and that was allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_mismatch: Option<String>,
    /// The BASE runs.
    pub base_runs: Vec<RunInfo>,
    /// The NEW runs.
    pub new_runs: Vec<RunInfo>,
    /// Between-run noise per backend (z-test).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noise: Vec<BackendNoise>,
    /// The matched cells.
    pub rows: Vec<Row>,
    /// The mechanisms.
    pub groups: Vec<Group>,
    /// Cells not present in every run.
    pub unmatched: usize,
    /// The judgement of the whole comparison.
    pub verdict: Outcome,
}

impl Comparison {
    /// Cells that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.outcome == Outcome::Regressed)
    }

    /// Cells with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.rows.iter().filter(|r| r.outcome == outcome).count()
    }

    /// Mechanisms with `outcome`.
    pub fn groups_with(&self, outcome: Outcome) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(move |g| g.outcome == outcome)
    }
}

/// Reads a run: a run directory (its `results.json`) or a `results.json` path.
///
/// Errors: [`UsageError`] for an unreadable file, another schema, or a schema-1 file (its
/// percentiles were shifted by the baseline: the message says to re-run it).
pub fn read_run(path: &Path) -> Result<Results, UsageError> {
    let file: PathBuf = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    Results::read(&file).map_err(|e| UsageError::new(e.to_string()))
}

/// The host class all `runs` share, or a message naming the first run of another class.
pub fn host_check(base: &[Run], new: &[Run]) -> Result<HostClass, String> {
    let mut all = base.iter().map(|r| ("BASE", r)).chain(new.iter().map(|r| ("NEW", r)));
    let Some((first_side, first)) = all.next() else {
        return Err("no run given".to_string());
    };
    let class = HostClass::of(&first.results);
    for (side, run) in all {
        let other = HostClass::of(&run.results);
        if other != class {
            return Err(format!(
                "{first_side} {} ran on {} ({}) but {side} {} on {} ({})",
                first.path,
                class,
                hostname(&first.results),
                run.path,
                other,
                hostname(&run.results)
            ));
        }
    }
    Ok(class)
}

/// How `compare` judges: the threshold and whether runs of different host classes may be mixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Smallest change that counts, percent of BASE's raw median.
    pub threshold_pct: f64,
    /// Compare runs of different host classes anyway.
    pub allow_host_mismatch: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threshold_pct: DEFAULT_THRESHOLD_PCT,
            allow_host_mismatch: false,
        }
    }
}

/// One run's figure for a cell, with the run's own standard error of it, in the cell's unit.
#[derive(Debug, Clone, Copy)]
struct Figure {
    /// Overhead or raw median.
    x: f64,
    /// Standard error inside the run (the overhead's interval, or the repetitions' spread).
    within_se: f64,
    /// The run's between-run noise for this cell, relative (0 for a metric that is not a time).
    drift_rel: f64,
}

fn figure(c: &Cell, basis: Basis, drift_rel: f64) -> Figure {
    let timed = c.unit == "ns";
    let drift_rel = if timed { drift_rel } else { 0.0 };
    match (basis, c.overhead) {
        (Basis::Overhead, Some(o)) => {
            // The saved interval is Student's t on the repetitions' df when they widened it:
            // dividing by that t gives the smallest standard error it can stand for.
            let half = (o.mean_ci95_ns[1] - o.mean_ci95_ns[0]) / 2.0;
            let df = c.repetitions.len().saturating_sub(1).max(1) as f64;
            let se = half / two_sided_critical(0.95, df);
            Figure {
                x: o.mean_ns,
                within_se: if se.is_finite() { se } else { 0.0 },
                drift_rel,
            }
        }
        _ => {
            // A raw median of hundreds of samples: its own error is small next to the
            // between-run noise (the repetitions' means would carry every preempted sample).
            // Figures that are not times (bytes) keep the repetitions' spread.
            let r = &c.repetitions;
            let within_se = if !timed && r.len() >= 2 {
                let n = r.len() as f64;
                let mean = r.iter().sum::<f64>() / n;
                (r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
            } else {
                0.0
            };
            Figure {
                x: c.p50,
                within_se: if within_se.is_finite() { within_se } else { 0.0 },
                drift_rel,
            }
        }
    }
}

/// A run's between-run noise for `cell`: the pooled relative spread of its repeated baselines.
///
/// The larger of the whole backend's and that of the baselines of the cell's own suite and
/// mechanism (a burst of load while one suite ran shows in its baselines, not in the others').
fn drift_rel(results: &Results, cell: &Cell) -> Option<f64> {
    let suite = format!("{} ", cell.suite);
    let pooled = |own: bool| {
        let series: Vec<Vec<f64>> = results
            .drift
            .iter()
            .filter(|d| d.backend == cell.backend)
            .filter(|d| !own || (d.mechanism == cell.mechanism && d.label.starts_with(&suite)))
            .map(|d| d.points.iter().map(|p| p[1]).collect())
            .collect();
        pooled_relative_sd(&series)
    };
    match (pooled(false), pooled(true)) {
        (Some(all), Some(own)) => Some(all.max(own)),
        (all, own) => all.or(own),
    }
}

fn median(values: &[f64]) -> f64 {
    Range::of(values).map(|r| r.median).unwrap_or(f64::NAN)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// One matched cell before it is judged: its runs' figures on both sides.
struct Matched<'a> {
    first: &'a Cell,
    basis: Basis,
    level: f64,
    base: Vec<Figure>,
    new: Vec<Figure>,
    flags: Vec<String>,
}

/// The outcome of a change `change` (relative) with noise `noise` (relative) against `threshold`.
fn judge(decided: bool, change: f64, noise: f64, threshold: f64) -> Outcome {
    if decided && change > threshold {
        Outcome::Regressed
    } else if decided && change < -threshold {
        Outcome::Improved
    } else if noise > threshold || noise.is_nan() {
        Outcome::Noisy
    } else {
        Outcome::Unchanged
    }
}

/// Compares BASE's runs with NEW's, cell by cell and mechanism by mechanism (see the module).
///
/// Errors: [`UsageError`] when a side has no run, the runs come from different host classes and
/// `opts.allow_host_mismatch` is not set (saying which), or they have no cell in common.
pub fn compare(base: &[Run], new: &[Run], opts: &Options) -> Result<Comparison, UsageError> {
    if base.is_empty() || new.is_empty() {
        return Err(UsageError::new(
            "compare needs at least one BASE run and one NEW run: `compare BASE NEW`, `compare BASE... -- NEW...` \
             or `--base DIR --new DIR`",
        ));
    }
    let (host, host_mismatch) = match host_check(base, new) {
        Ok(class) => (class.label(), None),
        Err(why) if opts.allow_host_mismatch => (HostClass::of(&base[0].results).label(), Some(why)),
        Err(why) => {
            return Err(UsageError::new(format!(
                "the runs come from different host classes: {why}; timings of different hardware are not one \
                 machine's: compare runs of one host class, or pass --allow-host-mismatch to compare them anyway"
            )))
        }
    };
    let threshold = opts.threshold_pct / 100.0;
    let runs: Vec<&Run> = base.iter().chain(new).collect();
    let maps: Vec<BTreeMap<&str, &Cell>> = runs
        .iter()
        .map(|r| r.results.cells.iter().map(|c| (c.id.as_str(), c)).collect())
        .collect();
    let mut matched = Vec::new();
    let mut all_ids = std::collections::BTreeSet::new();
    for m in &maps {
        all_ids.extend(m.keys().copied());
    }
    for c in &base[0].results.cells {
        let cells: Option<Vec<&Cell>> = maps.iter().map(|m| m.get(c.id.as_str()).copied()).collect();
        let Some(cells) = cells else { continue };
        let basis = if cells.iter().all(|c| c.overhead.is_some()) {
            Basis::Overhead
        } else {
            Basis::Raw
        };
        let figures: Vec<Figure> = cells
            .iter()
            .zip(&runs)
            .map(|(cell, run)| figure(cell, basis, drift_rel(&run.results, cell).unwrap_or(0.0)))
            .collect();
        let (base_figs, new_figs) = figures.split_at(base.len());
        let base_p50: Vec<f64> = cells[..base.len()].iter().map(|c| c.p50).collect();
        // BASE's raw median; its figure's size when that is 0 or unknown; else 1 (no scale).
        let level = [
            median(&base_p50).abs(),
            median(&base_figs.iter().map(|f| f.x).collect::<Vec<_>>()).abs(),
        ]
        .into_iter()
        .find(|l| *l > 0.0)
        .unwrap_or(1.0);
        let flags = cells
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                let side = if i < base.len() { "BASE" } else { "NEW" };
                c.validity.flags.iter().map(move |f| format!("{side} {}", f.code))
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        matched.push(Matched {
            first: c,
            basis,
            level,
            base: base_figs.to_vec(),
            new: new_figs.to_vec(),
            flags,
        });
    }
    if matched.is_empty() {
        return Err(UsageError::new(
            "the runs have no cell in common (different suites, backends or parameters): nothing to compare",
        ));
    }
    let unmatched = all_ids.len() - matched.len();
    let test = if base.len() >= MIN_RANGE_RUNS && new.len() >= MIN_RANGE_RUNS {
        Test::RangeSeparation
    } else {
        Test::ZTest
    };
    let (rows, groups, critical_z, noise) = match test {
        Test::RangeSeparation => {
            let (rows, groups) = by_ranges(&matched, threshold);
            (rows, groups, None, Vec::new())
        }
        Test::ZTest => by_z(&matched, threshold),
    };
    let verdict = verdict_of(&rows, &groups);
    Ok(Comparison {
        threshold_pct: opts.threshold_pct,
        test,
        critical_z,
        host,
        host_mismatch,
        base_runs: base.iter().map(RunInfo::of).collect(),
        new_runs: new.iter().map(RunInfo::of).collect(),
        noise,
        rows,
        groups,
        unmatched,
        verdict,
    })
}

/// The whole comparison's judgement: its mechanisms decide, a lone cell does not.
///
/// A cell's outlier on a busy machine is common; a change of one point that matters moves its
/// mechanism's pooled change with it. Many cells flagged invalid make the comparison noisy.
fn verdict_of(rows: &[Row], groups: &[Group]) -> Outcome {
    let any = |o: Outcome| groups.iter().any(|g| g.outcome == o);
    let flagged = rows.iter().filter(|r| !r.flags.is_empty()).count();
    if any(Outcome::Regressed) {
        Outcome::Regressed
    } else if groups.iter().any(|g| g.outcome == Outcome::Noisy)
        || groups.is_empty()
        || flagged as f64 > NOISY_CELL_SHARE * rows.len() as f64
    {
        Outcome::Noisy
    } else if any(Outcome::Improved) {
        Outcome::Improved
    } else {
        Outcome::Unchanged
    }
}

fn group_name(c: &Cell) -> String {
    format!("{}/{}/{}/{}", c.suite, c.backend, c.mechanism, c.metric)
}

fn row(m: &Matched<'_>, base: f64, new: f64, change: f64, noise: f64, decided: bool, threshold: f64) -> Row {
    let outcome = if m.flags.is_empty() {
        judge(decided, change, noise, threshold)
    } else {
        Outcome::Noisy
    };
    Row {
        id: m.first.id.clone(),
        group: group_name(m.first),
        unit: m.first.unit.clone(),
        basis: m.basis,
        level: m.level,
        base,
        new,
        change_pct: 100.0 * change,
        noise_pct: 100.0 * noise,
        decided,
        outcome,
        flags: m.flags.clone(),
    }
}

/// Rows and mechanisms judged by the robot's range separation on relative figures.
fn by_ranges(matched: &[Matched<'_>], threshold: f64) -> (Vec<Row>, Vec<Group>) {
    let decide = |b: &[f64], n: &[f64]| -> Option<(f64, f64, bool)> {
        let (rb, rn) = (Range::of(b)?, Range::of(n)?);
        let decided = separation(&rb, &rn) != Separation::None;
        Some((rn.median - rb.median, rb.width().max(rn.width()), decided))
    };
    let rel = |figs: &[Figure], level: f64| figs.iter().map(|f| f.x / level).collect::<Vec<f64>>();
    let mut rows = Vec::new();
    let mut groups: BTreeMap<String, Vec<&Matched<'_>>> = BTreeMap::new();
    for m in matched {
        let (b, n) = (rel(&m.base, m.level), rel(&m.new, m.level));
        let (change, noise, decided) = decide(&b, &n).unwrap_or((f64::NAN, f64::NAN, false));
        rows.push(row(
            m,
            median(&m.base.iter().map(|f| f.x).collect::<Vec<_>>()),
            median(&m.new.iter().map(|f| f.x).collect::<Vec<_>>()),
            change,
            noise,
            decided,
            threshold,
        ));
        if m.flags.is_empty() {
            groups.entry(group_name(m.first)).or_default().push(m);
        }
    }
    let groups = groups
        .into_iter()
        .map(|(name, cells)| {
            // Each run's figure for the mechanism: the median of its cells' relative figures.
            let per_run = |new: bool| -> Vec<f64> {
                let side = |m: &Matched<'_>| if new { m.new.clone() } else { m.base.clone() };
                let runs = side(cells[0]).len();
                (0..runs)
                    .map(|i| median(&cells.iter().map(|m| side(m)[i].x / m.level).collect::<Vec<_>>()))
                    .collect()
            };
            let (b, n) = (per_run(false), per_run(true));
            let (change, noise, decided) = decide(&b, &n).unwrap_or((f64::NAN, f64::NAN, false));
            Group {
                name,
                cells: cells.len(),
                change_pct: 100.0 * change,
                noise_pct: 100.0 * noise,
                decided,
                outcome: judge(decided, change, noise, threshold),
            }
        })
        .collect();
    (rows, groups)
}

/// One side's mean figure and its within-run and between-run variances, in the unit squared.
fn side_stats(figs: &[Figure], level: f64) -> (f64, f64, f64) {
    let n = figs.len() as f64;
    let xs: Vec<f64> = figs.iter().map(|f| f.x).collect();
    let x = mean(&xs);
    let within = figs.iter().map(|f| f.within_se.powi(2)).sum::<f64>() / n / n;
    let mut between = figs.iter().map(|f| (f.drift_rel * level).powi(2)).sum::<f64>() / n / n;
    if figs.len() >= 2 {
        let observed = xs.iter().map(|v| (v - x).powi(2)).sum::<f64>() / (n - 1.0) / n;
        between = between.max(observed - within);
    }
    (x, within, between)
}

/// A mechanism's backend when its metric is a time, and its cells' (change, standard error).
type Pooled<'a> = (Option<&'a str>, Vec<(f64, f64)>);

type ZJudged = (Vec<Row>, Vec<Group>, Option<[f64; 2]>, Vec<BackendNoise>);

/// Rows and mechanisms judged by the family-wise z-test.
fn by_z(matched: &[Matched<'_>], threshold: f64) -> ZJudged {
    struct Z {
        base: f64,
        new: f64,
        change: f64,
        within_var: f64,
        between_var: f64,
    }
    let zs: Vec<Z> = matched
        .iter()
        .map(|m| {
            let (xb, wb, bb) = side_stats(&m.base, m.level);
            let (xn, wn, bn) = side_stats(&m.new, m.level);
            let l2 = m.level * m.level;
            Z {
                base: xb,
                new: xn,
                change: (xn - xb) / m.level,
                within_var: (wb + wn) / l2,
                between_var: (bb + bn) / l2,
            }
        })
        .collect();
    // The floor of the between-run noise: how far this pair's changes spread on each backend.
    let mut backends: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (m, z) in matched.iter().zip(&zs) {
        if m.flags.is_empty() && m.first.unit == "ns" && z.change.is_finite() {
            backends.entry(m.first.backend.as_str()).or_default().push(z.change);
        }
    }
    let spread: BTreeMap<&str, f64> = backends
        .iter()
        .filter_map(|(b, d)| robust_sd(d).map(|s| (*b, s)))
        .collect();
    let judged = matched.iter().filter(|m| m.flags.is_empty()).count();
    let z_cell = familywise_critical(ALPHA, judged);
    let mut rows = Vec::new();
    let mut se_of: Vec<f64> = Vec::new();
    for (m, z) in matched.iter().zip(&zs) {
        let floor = if m.first.unit == "ns" {
            spread.get(m.first.backend.as_str()).copied().unwrap_or(0.0)
        } else {
            0.0
        };
        let se = (z.within_var + z.between_var.max(floor * floor)).sqrt();
        se_of.push(se);
        let noise = z_cell * se;
        let decided = if se > 0.0 {
            z.change.abs() > noise
        } else {
            z.change != 0.0
        };
        rows.push(row(m, z.base, z.new, z.change, noise, decided, threshold));
    }
    // Each mechanism: its judged cells pooled, keyed by name, with its backend if it is timed.
    let mut pooled: BTreeMap<String, Pooled<'_>> = BTreeMap::new();
    for ((m, z), se) in matched.iter().zip(&zs).zip(&se_of) {
        if m.flags.is_empty() {
            let timed = (m.first.unit == "ns").then_some(m.first.backend.as_str());
            pooled
                .entry(group_name(m.first))
                .or_insert((timed, Vec::new()))
                .1
                .push((z.change, *se));
        }
    }
    let estimates: Vec<(String, Option<&str>, usize, f64, f64)> = pooled
        .into_iter()
        .map(|(name, (timed, pairs))| {
            let (change, se) = weighted_mean(&pairs)
                .map(|e| (e.value, e.se))
                .unwrap_or((f64::NAN, f64::NAN));
            (name, timed, pairs.len(), change, se)
        })
        .collect();
    // Cells of one mechanism share more than independent noise (a suite's worker, the time it
    // ran): the pooled noise is never below the robust spread of the mechanisms' changes on the
    // backend, once there are enough mechanisms to measure it.
    let mut by_backend: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (_, timed, _, change, _) in &estimates {
        if let Some(b) = timed {
            by_backend.entry(*b).or_default().push(*change);
        }
    }
    let group_floor: BTreeMap<&str, f64> = by_backend
        .into_iter()
        .filter(|(_, d)| d.len() >= MIN_GROUPS_FOR_SPREAD)
        .filter_map(|(b, d)| robust_sd(&d).map(|s| (b, s)))
        .collect();
    let z_group = familywise_critical(ALPHA, estimates.len());
    let groups = estimates
        .into_iter()
        .map(|(name, timed, cells, change, se)| {
            let floor = timed.and_then(|b| group_floor.get(b)).copied().unwrap_or(0.0);
            let se = se.max(floor);
            let noise = z_group * se;
            let decided = if se > 0.0 { change.abs() > noise } else { change != 0.0 };
            Group {
                name,
                cells,
                change_pct: 100.0 * change,
                noise_pct: 100.0 * noise,
                decided,
                outcome: judge(decided, change, noise, threshold),
            }
        })
        .collect();
    let mut names: Vec<&str> = matched.iter().map(|m| m.first.backend.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let noise = names
        .into_iter()
        .map(|b| {
            let drifts: Vec<f64> = matched
                .iter()
                .find(|m| m.first.backend == b && m.first.unit == "ns")
                .map(|m| m.base.iter().chain(&m.new).map(|f| f.drift_rel).collect())
                .unwrap_or_default();
            BackendNoise {
                backend: b.to_string(),
                drift_pct: (!drifts.is_empty() && drifts.iter().any(|d| *d > 0.0))
                    .then(|| 100.0 * (drifts.iter().map(|d| d * d).sum::<f64>() / drifts.len() as f64).sqrt()),
                spread_pct: spread.get(b).map(|s| 100.0 * s),
            }
        })
        .collect();
    (rows, groups, Some([z_cell, z_group]), noise)
}

mod render;
pub use render::{headline, method_line, noise_line, render_html, render_mail, render_markdown, render_text};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hook cell of `mechanism` at point `programs` as saved JSON.
    ///
    /// Raw median `p50` over a baseline of 100, its overhead `p50 - 100` with a 95% interval
    /// of +-`ci`, and validity `flags`.
    fn cell(mechanism: &str, programs: u32, p50: f64, ci: f64, flags: &[&str]) -> serde_json::Value {
        let ov = p50 - 100.0;
        json!({"id": format!("programs/model/{mechanism}/hook_latency_ns/programs={programs}"),
            "suite": "programs", "backend": "model", "model": "task-chain",
            "mechanism": mechanism, "metric": "hook_latency_ns", "unit": "ns",
            "params": {"programs": programs, "foreign": 0, "hooks": 4, "depth": 1, "cgroups": 0, "tasks": 1,
                       "working_set": 1, "cpus": 1, "body": "counter"},
            "samples": 300, "mean": p50, "stddev": 1.0, "cv": 0.01, "p50": p50, "p90": p50, "p99": p50,
            "p999": p50, "max": p50, "min": p50, "repetitions": [p50, p50],
            "baseline": {"mean": 100.0, "p50": 100.0, "samples": 300},
            "overhead": {"mean_ns": ov, "mean_ci95_ns": [ov - ci, ov + ci], "p50_ns": ov, "p50_ci95_ns": [ov, ov]},
            "validity": {"flags": flags.iter().map(|f| json!({"code": f, "why": "test"})).collect::<Vec<_>>()}})
    }

    /// A run of `cells` on host `cpus` whose repeated baselines wander by `drift` (relative sd).
    fn run(path: &str, cells: Vec<serde_json::Value>, drift: f64, cpus: u64) -> Run {
        // Five baselines around 100 whose sample sd is `drift` x 100.
        let k = drift * 100.0 / (2.5_f64).sqrt();
        let points: Vec<[f64; 2]> = [-2.0, -1.0, 0.0, 1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, z)| [i as f64, 100.0 + z * k])
            .collect();
        let results = serde_json::from_value(json!({"schema": hookbench_reports::SCHEMA, "hookbench_version": "0",
            "command_line": ["target/release/hookbench", "run", "--profile", "smoke"], "started_at": "",
            "finished_at": null, "complete": true, "profile": "smoke", "suites": [],
            "environment": {"machine": "x86_64", "cpu_model": "Xeon", "nr_cpus": cpus, "kernel_release": "6.1.0",
                            "hostname": "box"},
            "cells": cells, "fits": [], "skipped": [], "order_seed": 7,
            "drift": [{"backend": "model", "mechanism": "chain-walk", "label": "programs", "points": points,
                       "drift": {"n": 5, "first": 0, "last": 0, "min": 0, "max": 0, "rel_range": 0,
                                 "rel_slope_per_hour": 0, "rel_slope_ci95": [0, 0], "span_s": 4}}]}))
        .expect("hand-made results parse");
        Run {
            path: path.to_string(),
            results,
        }
    }

    /// Small changes that look like run-to-run wander: cell `i`'s relative offset.
    const WANDER: [f64; 8] = [0.004, -0.006, 0.002, -0.001, 0.007, -0.003, 0.0, 0.005];

    /// Cells of two mechanisms at 8 points each, raw medians 200..270, moved as a run would be.
    ///
    /// Each by `WANDER` plus `extra(mechanism)` of its level.
    fn cells(extra: impl Fn(&str) -> f64, flags: &[&str]) -> Vec<serde_json::Value> {
        ["chain-walk", "effective-array"]
            .iter()
            .flat_map(|m| {
                let extra = extra(m);
                (0..8).map(move |i| {
                    let p50 = 200.0 + 10.0 * i as f64;
                    cell(m, i, p50 * (1.0 + WANDER[i as usize] + extra), 1.0, flags)
                })
            })
            .collect()
    }

    fn judged(base: Vec<Run>, new: Vec<Run>, threshold_pct: f64) -> Comparison {
        let opts = Options {
            threshold_pct,
            allow_host_mismatch: false,
        };
        compare(&base, &new, &opts).expect("comparable runs")
    }

    fn group<'a>(c: &'a Comparison, mechanism: &str) -> &'a Group {
        c.groups
            .iter()
            .find(|g| g.name.contains(mechanism))
            .expect("the mechanism was pooled")
    }

    #[test]
    fn run_to_run_wander_within_the_noise_is_unchanged() {
        let base = run("a", cells(|_| 0.0, &[]), 0.01, 2);
        let new = run("b", cells(|_| 0.0, &[]).into_iter().rev().collect(), 0.01, 2);
        let c = judged(vec![base.clone()], vec![run("b", cells(|_| 0.002, &[]), 0.01, 2)], 5.0);
        assert_eq!(c.test, Test::ZTest);
        assert_eq!(c.verdict, Outcome::Unchanged, "{}", render_text(&c));
        assert!(c.rows.iter().all(|r| r.outcome == Outcome::Unchanged));
        // The noise holds the drift of both runs: 1% each, x critical z over 16 cells (3.0).
        let r = &c.rows[0];
        assert!(r.noise_pct > 3.0 * 1.4 * 0.9 && r.noise_pct < 5.0, "{r:?}");
        assert_eq!(c.noise[0].drift_pct.map(|d| (d * 10.0).round()), Some(10.0));
        // Cells are matched by id, not by order.
        let same = judged(vec![base], vec![new], 5.0);
        assert!(
            same.rows.iter().all(|r| r.change_pct.abs() < 1e-9),
            "{}",
            render_text(&same)
        );
    }

    #[test]
    fn a_10_percent_regression_of_one_mechanism_is_flagged_and_the_other_is_not() {
        let base = run("a", cells(|_| 0.0, &[]), 0.01, 2);
        let new = run("b", cells(|m| if m == "chain-walk" { 0.10 } else { 0.0 }, &[]), 0.01, 2);
        let c = judged(vec![base], vec![new], 5.0);
        assert_eq!(c.verdict, Outcome::Regressed, "{}", render_text(&c));
        let g = group(&c, "chain-walk");
        assert_eq!((g.outcome, g.cells), (Outcome::Regressed, 8));
        assert!((g.change_pct - 10.0).abs() < 1.0, "{g:?}");
        assert_eq!(group(&c, "effective-array").outcome, Outcome::Unchanged);
        assert_eq!(c.regressions().count(), 8);
        assert!(c.regressions().all(|r| r.id.contains("chain-walk")));
        let text = render_text(&c);
        assert!(
            text.contains("hookbench compare: regression: programs/model/chain-walk"),
            "{text}"
        );
        assert!(
            text.contains("8 regression(s)") && text.contains("verdict: regressed"),
            "{text}"
        );
        // An improvement is the mirror image.
        let c = judged(
            vec![run("a", cells(|_| 0.0, &[]), 0.01, 2)],
            vec![run("b", cells(|_| -0.2, &[]), 0.01, 2)],
            5.0,
        );
        assert_eq!(c.verdict, Outcome::Improved);
        assert_eq!(c.count(Outcome::Improved), 16);
    }

    #[test]
    fn a_lone_cell_outlier_is_listed_but_does_not_decide_the_comparison() {
        let base = run("a", cells(|_| 0.0, &[]), 0.01, 2);
        let mut new = run("b", cells(|_| 0.0, &[]), 0.01, 2);
        // One point of one mechanism 25% slower (a preempted worker), the other 15 as they were.
        let outlier = &mut new.results.cells[3];
        outlier.overhead.as_mut().expect("overhead").mean_ns += 0.25 * outlier.p50;
        let c = judged(vec![base], vec![new], 5.0);
        assert_eq!(c.count(Outcome::Regressed), 1, "{}", render_text(&c));
        // Pooled with its 7 unchanged neighbours it is +3%: within the threshold.
        let g = group(&c, "chain-walk");
        assert!(
            g.change_pct > 2.0 && g.change_pct < 4.5 && g.outcome != Outcome::Regressed,
            "{g:?}"
        );
        assert_ne!(c.verdict, Outcome::Regressed);
    }

    #[test]
    fn noise_larger_than_the_threshold_is_noisy_not_a_regression() {
        // Runs whose baselines wander by 6%: a 4% rise cannot be told from noise, and a 5% one
        // could not be resolved either (8 cells pooled: noise 2.24 x 8.5% / sqrt(8) = 6.7%).
        let base = run("a", cells(|_| 0.0, &[]), 0.06, 2);
        let new = run("b", cells(|_| 0.04, &[]), 0.06, 2);
        let c = judged(vec![base.clone()], vec![new.clone()], 5.0);
        assert_eq!(c.verdict, Outcome::Noisy, "{}", render_text(&c));
        assert_eq!(c.regressions().count(), 0);
        assert!(c
            .groups
            .iter()
            .all(|g| g.outcome == Outcome::Noisy && g.noise_pct > 5.0));
        // A threshold above the noise makes the same pair decidable: unchanged.
        let c = judged(vec![base], vec![new], 60.0);
        assert_eq!(c.verdict, Outcome::Unchanged, "{}", render_text(&c));
    }

    #[test]
    fn the_spread_of_the_pair_is_a_floor_of_the_between_run_noise() {
        // No drift recorded, but the cells moved by -12%..+12% around 0: noise, not a change.
        let spread = [0.12, -0.12, 0.08, -0.08, 0.04, -0.04, 0.1, -0.1];
        let moved: Vec<serde_json::Value> = (0..8)
            .map(|i| cell("chain-walk", i, 200.0 * (1.0 + spread[i as usize]), 0.1, &[]))
            .collect();
        let base: Vec<serde_json::Value> = (0..8).map(|i| cell("chain-walk", i, 200.0, 0.1, &[])).collect();
        let c = judged(vec![run("a", base, 0.0, 2)], vec![run("b", moved, 0.0, 2)], 5.0);
        assert_eq!(c.regressions().count(), 0, "{}", render_text(&c));
        assert_eq!(c.verdict, Outcome::Noisy);
        assert!(c.noise[0].spread_pct.is_some_and(|s| s > 5.0), "{:?}", c.noise);
    }

    #[test]
    fn a_machine_slower_as_a_whole_moves_the_baseline_and_not_the_overhead() {
        let base = run("a", cells(|_| 0.0, &[]), 0.01, 2);
        let mut slower = run("b", cells(|_| 0.0, &[]), 0.01, 2);
        for c in &mut slower.results.cells {
            // Cell and baseline 30 ns slower each: the overhead is the same.
            c.p50 += 30.0;
            c.mean += 30.0;
            if let Some(b) = c.baseline.as_mut() {
                b.mean += 30.0;
                b.p50 += 30.0;
            }
        }
        let c = judged(vec![base], vec![slower], 5.0);
        assert_eq!(c.verdict, Outcome::Unchanged, "{}", render_text(&c));
        assert!(c
            .rows
            .iter()
            .all(|r| r.basis == Basis::Overhead && r.change_pct.abs() < 1e-9));
    }

    #[test]
    fn three_runs_a_side_use_the_robots_range_separation() {
        let side = |path: &str, shift: f64| -> Vec<Run> {
            (0..3)
                .map(|k| run(&format!("{path}{k}"), cells(|_| shift + 0.004 * k as f64, &[]), 0.01, 2))
                .collect()
        };
        let c = judged(side("a", 0.0), side("b", 0.10), 5.0);
        assert_eq!(c.test, Test::RangeSeparation);
        assert!(c.critical_z.is_none() && c.noise.is_empty());
        assert_eq!(c.verdict, Outcome::Regressed, "{}", render_text(&c));
        assert!(c.groups.iter().all(|g| g.outcome == Outcome::Regressed && g.decided));
        // Overlapping ranges: unchanged while the ranges are narrow, noisy once wider than 5%.
        assert_eq!(
            judged(side("a", 0.0), side("b", 0.002), 5.0).verdict,
            Outcome::Unchanged
        );
        let wide = |path: &str| -> Vec<Run> {
            [0.0, 0.08, -0.02]
                .iter()
                .enumerate()
                .map(|(k, s)| run(&format!("{path}{k}"), cells(|_| *s, &[]), 0.01, 2))
                .collect()
        };
        let c = judged(wide("a"), wide("b"), 5.0);
        assert_eq!(c.verdict, Outcome::Noisy, "{}", render_text(&c));
        assert!(c.groups.iter().all(|g| !g.decided && g.noise_pct > 9.0));
    }

    #[test]
    fn flagged_cells_are_noisy_and_left_out_of_their_mechanism() {
        let base = run("a", cells(|_| 0.0, &[]), 0.01, 2);
        let mut new = run("b", cells(|_| 0.3, &[]), 0.01, 2);
        for c in new.results.cells.iter_mut().filter(|c| c.mechanism == "chain-walk") {
            c.validity.flags.push(hookbench_reports::ValidityFlag {
                code: "cpu-migration".to_string(),
                why: "test".to_string(),
            });
        }
        let c = judged(vec![base], vec![new], 5.0);
        let flagged: Vec<&Row> = c.rows.iter().filter(|r| r.id.contains("chain-walk")).collect();
        assert!(flagged
            .iter()
            .all(|r| r.outcome == Outcome::Noisy && r.flags == ["NEW cpu-migration"]));
        assert_eq!(c.groups.len(), 1, "{:?}", c.groups);
        assert_eq!(group(&c, "effective-array").outcome, Outcome::Regressed);
        assert!(render_text(&c).contains("flagged: NEW cpu-migration"));
    }

    #[test]
    fn runs_of_another_host_class_are_refused_unless_allowed() {
        let base = vec![run("a", cells(|_| 0.0, &[]), 0.01, 2)];
        let new = vec![run("b", cells(|_| 0.0, &[]), 0.01, 64)];
        let err = compare(&base, &new, &Options::default()).expect_err("2 vs 64 CPUs");
        assert!(
            err.message.contains("different host classes")
                && err.message.contains("x86_64, 64 CPUs, Xeon, bare-metal")
                && err.message.contains("--allow-host-mismatch"),
            "{}",
            err.message
        );
        let opts = Options {
            allow_host_mismatch: true,
            ..Options::default()
        };
        let c = compare(&base, &new, &opts).expect("allowed");
        assert!(c.host_mismatch.as_deref().is_some_and(|w| w.contains("64 CPUs")));
        assert!(render_mail(&c).contains("host classes differ (allowed)"));
        let none = compare(&base, &[run("c", vec![], 0.0, 2)], &Options::default()).expect_err("nothing shared");
        assert!(none.message.contains("no cell in common"), "{}", none.message);
    }

    #[test]
    fn mail_and_markdown_say_what_changed_on_what_and_how_to_reproduce() {
        let base = run("base-dir", cells(|_| 0.0, &[]), 0.01, 2);
        let new = run(
            "new-dir",
            cells(|m| if m == "chain-walk" { 0.10 } else { 0.0 }, &[]),
            0.01,
            2,
        );
        let c = judged(vec![base], vec![new], 5.0);
        let mail = render_mail(&c);
        let first = mail.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("Subject: [hookbench] regression: programs/model/chain-walk/hook_latency_ns +"),
            "{mail}"
        );
        for needle in [
            "verdict: REGRESSED",
            "regressed",
            "machine:    x86_64, 2 CPUs, Xeon, bare-metal (host box)",
            "kernel:     BASE 6.1.0; NEW 6.1.0",
            "profile smoke",
            "seeds BASE 7 NEW 7",
            "hookbench run --profile smoke",
            "hookbench compare base-dir -- new-dir",
        ] {
            assert!(mail.contains(needle), "{needle} missing:\n{mail}");
        }
        assert!(mail.is_ascii());
        // Only the regressed mechanism is listed, not the unchanged one.
        assert!(!mail.contains("effective-array/hook_latency_ns\n"), "{mail}");
        let md = render_markdown(&c);
        assert!(md.starts_with("### :x: hookbench compare: regression:"), "{md}");
        assert!(
            md.contains("| `programs/model/chain-walk/hook_latency_ns` | 8 | +"),
            "{md}"
        );
        assert!(
            md.contains("<details><summary>8 cell(s) not unchanged</summary>"),
            "{md}"
        );
        let quiet = judged(
            vec![run("a", cells(|_| 0.0, &[]), 0.01, 2)],
            vec![run("b", cells(|_| 0.0, &[]), 0.01, 2)],
            5.0,
        );
        assert!(render_markdown(&quiet).starts_with("### :white_check_mark: hookbench compare: no change beyond 5.0%"));
        assert!(render_mail(&quiet).starts_with("Subject: [hookbench] unchanged: no change beyond 5.0%"));
        let html = render_html(&c);
        assert_eq!(
            html.matches("<tr class=\"regressed\">").count(),
            9,
            "8 cells and 1 mechanism"
        );
    }

    #[test]
    fn a_schema_1_file_is_refused_as_bad_input_saying_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.json");
        std::fs::write(&path, r#"{"schema": "hookbench.results/1", "cells": []}"#).expect("write");
        let err = read_run(dir.path()).expect_err("schema 1 is refused");
        assert!(
            err.message.contains("hookbench.results/1") && err.message.contains("re-run"),
            "{}",
            err.message
        );
    }
}
