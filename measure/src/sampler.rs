//! The measurement loop, whatever is measured: warm-up, batch size, timed batches, histogram.
//!
//! It warms up, calibrates the batch size, times repeated batches and keeps a per-invocation
//! latency histogram.
//!
//! Source: the batching scheme is the one of Google Benchmark / criterion-style harnesses and
//! of Paoloni, "How to Benchmark Code Execution Times on Intel IA-32 and IA-64 Instruction Set
//! Architectures" (Intel white paper, 2010): when one invocation is too short to time against
//! the clock's own cost, K invocations are timed as one interval and the interval is divided
//! by K. The measured closure runs the K-iteration loop itself, so the loop is compiled
//! together with the measured body.

use std::hint::black_box;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::{Clock, ClockInfo};
use crate::stats::{new_histogram_ps, record_ps, Summary, PS_PER_NS};

/// How long to run the measured closure, untimed, before calibrating and measuring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warmup {
    /// Keep invoking (in growing chunks) for at least this many nanoseconds of wall time;
    /// 0 disables warm-up.
    DurationNs(u64),
    /// Exactly this many invocations, in chunks of at most `max_batch`.
    Invocations(u64),
}

/// Parameters of [`measure`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    /// Untimed warm-up before calibration. Default: 50 ms.
    pub warmup: Warmup,
    /// Timed batches per repetition (each gives one per-invocation sample). Default: 2000.
    pub samples: usize,
    /// Repetitions of the `samples` batches (for between-repetition spread). Default: 5.
    pub repetitions: usize,
    /// Largest share of one timed sample the clock-read pair may take. Default: 0.05 (5%).
    ///
    /// K is the smallest power of two whose batch lasts at least `overhead / max_clock_share`.
    pub max_clock_share: f64,
    /// Each repetition takes at least this many nanoseconds of samples. Default: 0 (`samples`).
    ///
    /// `samples` is raised to `ceil(min_duration_ns / batch_ns)` (at most `max_samples`), so a
    /// small K does not leave a repetition with too few calls.
    pub min_duration_ns: u64,
    /// Upper bound on samples per repetition when `min_duration_ns` raises them. Default: 200 000.
    pub max_samples: usize,
    /// Upper bound on the batch size K. Default: 2^20.
    pub max_batch: u64,
    /// Use this K instead of calibrating. Default: `None`.
    ///
    /// For example reuse the baseline's K so both carry the same clock overhead per invocation.
    pub fixed_batch: Option<u64>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            warmup: Warmup::DurationNs(50_000_000),
            samples: 2000,
            repetitions: 5,
            max_clock_share: 0.05,
            min_duration_ns: 0,
            max_samples: 200_000,
            max_batch: 1 << 20,
            fixed_batch: None,
        }
    }
}

/// Why a measurement was refused.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum SamplerError {
    /// A configuration field is out of range.
    #[error("invalid sampler configuration: {field} = {value} ({why})")]
    InvalidConfig {
        /// Field name.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is required.
        why: &'static str,
    },
    /// The histogram could not be created (not expected).
    #[error("histogram: {0}")]
    Histogram(String),
}

impl SamplerConfig {
    /// Checks the ranges of every field.
    ///
    /// `samples >= 1`, `repetitions >= 1`, `max_batch >= 1`, `max_clock_share` in (0, 1],
    /// `max_samples >= samples`, `fixed_batch` (if set) `>= 1`.
    ///
    /// Errors: [`SamplerError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let bad = |field, value: String, why| Err(SamplerError::InvalidConfig { field, value, why });
        if self.samples == 0 {
            return bad("samples", "0".into(), "need at least 1");
        }
        if self.repetitions == 0 {
            return bad("repetitions", "0".into(), "need at least 1");
        }
        if self.max_batch == 0 {
            return bad("max_batch", "0".into(), "need at least 1");
        }
        if !(self.max_clock_share > 0.0 && self.max_clock_share <= 1.0) {
            return bad("max_clock_share", self.max_clock_share.to_string(), "must be in (0, 1]");
        }
        if self.max_samples < self.samples {
            return bad("max_samples", self.max_samples.to_string(), "must be >= samples");
        }
        if self.fixed_batch == Some(0) {
            return bad("fixed_batch", "0".into(), "need at least 1");
        }
        Ok(())
    }
}

/// Outcome of [`calibrate_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchCalibration {
    /// Chosen batch size K (invocations per timed interval).
    pub k: u64,
    /// Median time of one single invocation including one clock overhead, ns.
    pub single_ns: f64,
    /// Median time of a K-invocation batch minus the clock overhead, ns.
    pub batch_net_ns: f64,
    /// Required net batch time, `overhead_ns * (1 / max_clock_share - 1)`, ns.
    pub target_ns: f64,
    /// True when K hit `max_batch` before the batch reached `target_ns`.
    pub capped: bool,
}

/// Timed trials per candidate K in [`calibrate_batch`]; the median is used.
const CALIBRATION_TRIALS: usize = 31;

fn median_batch_ns<F>(clock: &Clock, f: &mut F, k: u64) -> f64
where
    F: FnMut(u64) -> u64 + ?Sized,
{
    let mut times = [0.0f64; CALIBRATION_TRIALS];
    for t in times.iter_mut() {
        let t0 = clock.now();
        let v = f(black_box(k));
        let t1 = clock.now();
        black_box(v);
        *t = clock.elapsed_ns(t0, t1);
    }
    times.sort_by(f64::total_cmp);
    times[CALIBRATION_TRIALS / 2]
}

/// Picks the batch size K for `f`: the smallest whose clock pair is within `max_clock_share`.
///
/// `f` has the shape `FnMut(iterations: u64) -> u64`; the return value is passed to `black_box`.
///
/// Doubling search: starting at K = 1, time 31 batches of K invocations and take the median
/// minus `clock.overhead_ns()`; stop at the first K whose net batch time is at least
/// `overhead * (1 / config.max_clock_share - 1)`, i.e. the clock pair is at most
/// `max_clock_share` of the sample. So K = 1 when one invocation already
/// lasts that long, else the smallest power of two that does (or `max_batch`, flagged
/// `capped`). `config.fixed_batch` is ignored here (see [`measure`]). Invalid configurations
/// are not checked here: a zero `max_batch` acts as 1.
pub fn calibrate_batch<F>(clock: &Clock, config: &SamplerConfig, f: &mut F) -> BatchCalibration
where
    F: FnMut(u64) -> u64 + ?Sized,
{
    let overhead_ns = clock.overhead_ns();
    let target_ns = overhead_ns * (1.0 / config.max_clock_share.clamp(1e-6, 1.0) - 1.0);
    let max_batch = config.max_batch.max(1);
    let single_ns = median_batch_ns(clock, f, 1);
    let mut k = 1u64;
    let mut batch_ns = single_ns;
    loop {
        let net = batch_ns - overhead_ns;
        if net >= target_ns || k >= max_batch {
            return BatchCalibration {
                k,
                single_ns,
                batch_net_ns: net,
                target_ns,
                capped: net < target_ns,
            };
        }
        k = k.saturating_mul(2).min(max_batch);
        batch_ns = median_batch_ns(clock, f, k);
    }
}

/// Result of [`measure`] or [`measure_each`].
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The clock used (kind, TSC Hz, overhead ns).
    pub clock: ClockInfo,
    /// Invocations per timed interval (1 for [`measure_each`]).
    pub batch_k: u64,
    /// How K was chosen; `None` when fixed by the configuration or by [`measure_each`].
    pub calibration: Option<BatchCalibration>,
    /// Per-invocation time of each sample, picoseconds, the clock-read pair removed.
    ///
    /// Each is `(batch_ns - overhead) * 1000 / K`, rounded, never below 0; repetition-major: sample
    /// `s` of repetition `r` is at `r * samples_per_repetition + s`.
    pub samples_ps: Vec<u64>,
    /// Mean per-invocation time of each repetition, ns (from the unrounded values).
    pub repetition_means_ns: Vec<f64>,
    /// All `samples_ps`, as a histogram in picoseconds with 3 significant digits.
    pub histogram: Histogram<u64>,
    /// Total timed invocations (`samples * repetitions * K`).
    pub invocations: u64,
    /// Samples per repetition actually taken (`config.samples`, raised by `min_duration_ns`).
    pub samples_per_repetition: usize,
    /// The CPU the first sample ran on (`sched_getcpu`), when known.
    pub cpu: Option<u32>,
    /// Times the CPU changed between consecutive samples (read outside the timed interval).
    pub cpu_migrations: u64,
    /// The clock-read pair's share of the median timed interval (`overhead / interval`).
    pub clock_share: f64,
}

impl Measurement {
    /// Latency summary (ns) of the histogram, see [`Summary::from_histogram_ps`].
    pub fn summary(&self) -> Summary {
        Summary::from_histogram_ps(&self.histogram)
    }

    /// Exact summary (ns) of the raw `samples_ps`, see [`Summary::from_values_ns`].
    pub fn exact_summary(&self) -> Summary {
        let ns: Vec<f64> = self.samples_ps.iter().map(|&ps| ps as f64 / PS_PER_NS).collect();
        Summary::from_values_ns(&ns)
    }

    /// Summary (ns) of the per-repetition means: its `cv` is the between-repetition spread.
    pub fn repetition_summary(&self) -> Summary {
        Summary::from_values_ns(&self.repetition_means_ns)
    }
}

fn warm_up<F>(clock: &Clock, config: &SamplerConfig, f: &mut F)
where
    F: FnMut(u64) -> u64 + ?Sized,
{
    match config.warmup {
        Warmup::DurationNs(0) | Warmup::Invocations(0) => {}
        Warmup::Invocations(n) => {
            let chunk = config.max_batch.max(1);
            let mut left = n;
            while left > 0 {
                let c = left.min(chunk);
                black_box(f(black_box(c)));
                left -= c;
            }
        }
        Warmup::DurationNs(total_ns) => {
            let total_ns = total_ns as f64;
            let start = clock.now();
            let mut chunk = 1u64;
            loop {
                let t0 = clock.now();
                black_box(f(black_box(chunk)));
                let t1 = clock.now();
                if clock.elapsed_ns(start, t1) >= total_ns {
                    break;
                }
                // Grow chunks while a call is short, so the overshoot stays below ~1/8.
                if clock.elapsed_ns(t0, t1) < total_ns / 16.0 {
                    chunk = chunk.saturating_mul(2);
                }
            }
        }
    }
}

/// Measures `f`, which runs the measured operation `iterations` times: one set of samples.
///
/// `f` has the shape `FnMut(iterations: u64) -> u64`; its return value is passed to `black_box`.
///
/// Warm-up per `config.warmup`; K from `config.fixed_batch` or [`calibrate_batch`]; then for
/// each of `config.repetitions` repetitions, `config.samples` batches (raised by
/// `config.min_duration_ns`), each timed as one `clock.now()` pair around `f(K)`, recording
/// `(batch_ns - clock overhead) / K` in picoseconds (never below 0). The CPU is read with
/// `sched_getcpu` between samples, outside the timed interval, to count migrations.
///
/// Errors: [`SamplerError::InvalidConfig`] (see [`SamplerConfig::validate`]).
pub fn measure<F>(clock: &Clock, config: &SamplerConfig, f: &mut F) -> Result<Measurement, SamplerError>
where
    F: FnMut(u64) -> u64 + ?Sized,
{
    config.validate()?;
    warm_up(clock, config, f);
    let (k, calibration) = match config.fixed_batch {
        Some(k) => (k, None),
        None => {
            let c = calibrate_batch(clock, config, f);
            (c.k, Some(c))
        }
    };
    let samples = samples_for(config, calibration.map(|c| c.batch_net_ns + clock.overhead_ns()));
    let mut rec = Recorder::new(clock, k, samples * config.repetitions);
    for _ in 0..config.repetitions {
        for _ in 0..samples {
            rec.cpus.check();
            let t0 = clock.now();
            let v = f(black_box(k));
            let t1 = clock.now();
            black_box(v);
            rec.record(clock.elapsed_ns(t0, t1));
        }
        rec.end_repetition();
    }
    rec.finish(clock, calibration, samples)
}

/// Samples per repetition: `config.samples`, raised so a repetition lasts `min_duration_ns`
/// when the batch time is known (at most `max_samples`).
fn samples_for(config: &SamplerConfig, batch_ns: Option<f64>) -> usize {
    match batch_ns {
        Some(b) if b > 0.0 && config.min_duration_ns > 0 => {
            let wanted = (config.min_duration_ns as f64 / b).ceil() as usize;
            wanted.clamp(config.samples, config.max_samples.max(config.samples))
        }
        _ => config.samples,
    }
}

/// The clock pair's share of the median interval (0 when there is none).
fn clock_share(overhead_ns: f64, intervals_ns: &mut [f64]) -> f64 {
    if intervals_ns.is_empty() {
        return 0.0;
    }
    intervals_ns.sort_by(f64::total_cmp);
    let median = intervals_ns[intervals_ns.len() / 2];
    if median > 0.0 {
        (overhead_ns / median).min(1.0)
    } else {
        1.0
    }
}

/// Counts CPU changes between samples, always outside the timed interval.
///
/// It calls `sched_getcpu(3)` (vDSO `getcpu`, a few ns).
struct CpuTracker {
    first: Option<u32>,
    last: Option<u32>,
    migrations: u64,
}

impl CpuTracker {
    fn new() -> CpuTracker {
        CpuTracker {
            first: None,
            last: None,
            migrations: 0,
        }
    }

    #[inline(always)]
    fn check(&mut self) {
        // SAFETY: sched_getcpu takes no argument and only returns a number or -1.
        let cpu = unsafe { libc::sched_getcpu() };
        let Ok(cpu) = u32::try_from(cpu) else { return };
        self.observe(cpu);
    }

    /// Counts `cpu` as the CPU of the next sample (read by whoever ran it).
    fn observe(&mut self, cpu: u32) {
        match self.last {
            Some(last) if last != cpu => self.migrations += 1,
            None => self.first = Some(cpu),
            _ => {}
        }
        self.last = Some(cpu);
    }
}

/// The bookkeeping the measure loops share, all of it outside the timed interval.
///
/// Each sample less the clock pair and divided by K, the per-repetition means, the intervals (for
/// the clock share) and the CPU tracking.
struct Recorder {
    overhead_ns: f64,
    k: u64,
    samples_ps: Vec<u64>,
    intervals_ns: Vec<f64>,
    repetition_means_ns: Vec<f64>,
    /// Sum and count of the per-invocation times of the current repetition, ns.
    repetition: (f64, usize),
    cpus: CpuTracker,
}

impl Recorder {
    /// A recorder of batches of `k` invocations timed with `clock`, room for `capacity` samples.
    fn new(clock: &Clock, k: u64, capacity: usize) -> Recorder {
        Recorder {
            overhead_ns: clock.overhead_ns(),
            k,
            samples_ps: Vec::with_capacity(capacity),
            intervals_ns: Vec::with_capacity(capacity),
            repetition_means_ns: Vec::new(),
            repetition: (0.0, 0),
            cpus: CpuTracker::new(),
        }
    }

    /// Records one timed interval, less the clock-read pair (never below 0) and divided by K.
    ///
    /// The clock-read pair is not part of the K invocations.
    #[inline(always)]
    fn record(&mut self, interval_ns: f64) {
        self.intervals_ns.push(interval_ns);
        let per_invocation_ns = (interval_ns - self.overhead_ns).max(0.0) / self.k as f64;
        self.repetition.0 += per_invocation_ns;
        self.repetition.1 += 1;
        self.samples_ps.push((per_invocation_ns * PS_PER_NS).round() as u64);
    }

    /// Closes a repetition: the mean of its samples.
    fn end_repetition(&mut self) {
        let (sum_ns, n) = std::mem::take(&mut self.repetition);
        self.repetition_means_ns.push(sum_ns / n as f64);
    }

    /// The measurement of `samples` samples per repetition, with its histogram.
    fn finish(
        mut self,
        clock: &Clock,
        calibration: Option<BatchCalibration>,
        samples: usize,
    ) -> Result<Measurement, SamplerError> {
        self.cpus.check();
        self.finish_as_is(clock, calibration, samples)
    }

    /// [`Recorder::finish`] without reading this thread's CPU again (the samples ran elsewhere).
    fn finish_as_is(
        mut self,
        clock: &Clock,
        calibration: Option<BatchCalibration>,
        samples: usize,
    ) -> Result<Measurement, SamplerError> {
        let mut histogram = new_histogram_ps().map_err(|e| SamplerError::Histogram(e.to_string()))?;
        for &ps in &self.samples_ps {
            record_ps(&mut histogram, ps);
        }
        Ok(Measurement {
            clock: clock.info(),
            batch_k: self.k,
            calibration,
            invocations: (self.samples_ps.len() as u64).saturating_mul(self.k),
            samples_ps: self.samples_ps,
            repetition_means_ns: self.repetition_means_ns,
            histogram,
            samples_per_repetition: samples,
            cpu: self.cpus.first,
            cpu_migrations: self.cpus.migrations,
            clock_share: clock_share(self.overhead_ns, &mut self.intervals_ns),
        })
    }
}

/// Measures a non-batchable operation (attach, detach, install), one `op()` per sample.
///
/// `warmup` untimed rounds, then `samples` rounds each timing exactly one `op()` (its result goes
/// to `black_box`) and then running `undo()` untimed to restore the state for the next round.
///
/// The result has `batch_k = 1`, no calibration, and one repetition.
///
/// Errors: [`SamplerError::InvalidConfig`] when `samples == 0`.
pub fn measure_each(
    clock: &Clock,
    samples: usize,
    warmup: usize,
    mut op: impl FnMut() -> u64,
    mut undo: impl FnMut(),
) -> Result<Measurement, SamplerError> {
    if samples == 0 {
        return Err(SamplerError::InvalidConfig {
            field: "samples",
            value: "0".into(),
            why: "need at least 1",
        });
    }
    for _ in 0..warmup {
        black_box(op());
        undo();
    }
    let mut rec = Recorder::new(clock, 1, samples);
    for _ in 0..samples {
        rec.cpus.check();
        let t0 = clock.now();
        let v = op();
        let t1 = clock.now();
        black_box(v);
        undo();
        rec.record(clock.elapsed_ns(t0, t1));
    }
    rec.end_repetition();
    rec.finish(clock, None, samples)
}

/// [`measure_each`] driven by a [`SamplerConfig`], for operations that cannot be batched.
///
/// Something must be undone between two of them (a socket to close, a file to close): K = 1
/// always. Warm-up by `config.warmup` (operation and undo, untimed), then `config.samples` timed
/// operations per repetition (raised to reach `config.min_duration_ns`, estimated from the
/// warm-up's median operation), each followed by its untimed `undo`.
///
/// Errors: [`SamplerError::InvalidConfig`] (see [`SamplerConfig::validate`]).
pub fn measure_each_config(
    clock: &Clock,
    config: &SamplerConfig,
    mut op: impl FnMut() -> u64,
    mut undo: impl FnMut(),
) -> Result<Measurement, SamplerError> {
    config.validate()?;
    let mut warm: Vec<f64> = Vec::new();
    let mut time_one = || {
        let t0 = clock.now();
        black_box(op());
        let t1 = clock.now();
        undo();
        clock.elapsed_ns(t0, t1)
    };
    match config.warmup {
        Warmup::Invocations(n) => {
            for _ in 0..n {
                warm.push(time_one());
            }
        }
        Warmup::DurationNs(total) => {
            let start = clock.now();
            while clock.elapsed_ns(start, clock.now()) < total as f64 {
                warm.push(time_one());
            }
        }
    }
    let estimate = if warm.is_empty() {
        None
    } else {
        warm.sort_by(f64::total_cmp);
        Some(warm[warm.len() / 2])
    };
    let samples = samples_for(config, estimate);
    let mut rec = Recorder::new(clock, 1, samples * config.repetitions);
    for _ in 0..config.repetitions {
        for _ in 0..samples {
            rec.cpus.check();
            let interval_ns = time_one();
            rec.record(interval_ns);
        }
        rec.end_repetition();
    }
    rec.finish(clock, None, samples)
}

/// The measurement of intervals timed elsewhere: by tasks that took turns, for example.
///
/// Each of `intervals_ns` is one sample of `k` invocations timed with `clock` (its read pair
/// included, as [`measure`] times a batch), and `cpus[i]` the CPU sample `i` ran on (`None`
/// when unknown; migrations are counted between consecutive known CPUs). The samples form one
/// repetition and go through the same bookkeeping as [`measure`]'s: the clock pair removed,
/// divided by `k`, a histogram, the clock's share of the median interval.
///
/// Errors: [`SamplerError::InvalidConfig`] when `intervals_ns` is empty or `k` is 0.
pub fn measurement_from_intervals(
    clock: &Clock,
    k: u64,
    intervals_ns: &[f64],
    cpus: &[Option<u32>],
) -> Result<Measurement, SamplerError> {
    let bad = |field, value: String| SamplerError::InvalidConfig {
        field,
        value,
        why: "need at least 1",
    };
    if intervals_ns.is_empty() {
        return Err(bad("intervals", "0".into()));
    }
    if k == 0 {
        return Err(bad("k", "0".into()));
    }
    let mut rec = Recorder::new(clock, k, intervals_ns.len());
    for (i, &interval_ns) in intervals_ns.iter().enumerate() {
        if let Some(cpu) = cpus.get(i).copied().flatten() {
            rec.cpus.observe(cpu);
        }
        rec.record(interval_ns);
    }
    rec.end_repetition();
    rec.finish_as_is(clock, None, intervals_ns.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A near-free body: one wrapping add per iteration.
    fn near_free(n: u64) -> u64 {
        let mut acc = 0u64;
        for i in 0..n {
            acc = acc.wrapping_add(black_box(i));
        }
        acc
    }

    /// Busy-waits, per iteration, until `spin_ns` of `clock` time have passed (no sleeping).
    fn spinner(clock: Clock, spin_ns: f64) -> impl FnMut(u64) -> u64 {
        move |n| {
            let mut reads = 0u64;
            for _ in 0..n {
                let start = clock.now();
                while clock.elapsed_ns(start, clock.now()) < spin_ns {
                    reads += 1;
                }
            }
            reads
        }
    }

    /// The default configuration with these warm-up, sample, repetition and duration settings.
    fn sized(warmup: Warmup, samples: usize, repetitions: usize, min_duration_ns: u64) -> SamplerConfig {
        SamplerConfig {
            warmup,
            samples,
            repetitions,
            min_duration_ns,
            ..SamplerConfig::default()
        }
    }

    fn quick_config() -> SamplerConfig {
        sized(Warmup::Invocations(1000), 50, 3, 0)
    }

    #[test]
    fn calibration_batches_near_free_closures() {
        for clock in [Clock::detect(), Clock::monotonic_raw()] {
            let mut f = near_free;
            let c = calibrate_batch(&clock, &SamplerConfig::default(), &mut f);
            assert!(c.k > 1, "{}: K = {} for a near-free closure", clock.kind(), c.k);
            assert!(c.k.is_power_of_two());
            assert!(!c.capped);
            assert!(c.batch_net_ns >= c.target_ns);
            assert!((c.target_ns - 19.0 * clock.overhead_ns()).abs() < 1e-9);
        }
    }

    #[test]
    fn calibration_keeps_k_1_for_slow_closures() {
        for clock in [Clock::detect(), Clock::monotonic_raw()] {
            let mut f = spinner(clock, 50.0 * clock.overhead_ns());
            let c = calibrate_batch(&clock, &SamplerConfig::default(), &mut f);
            assert_eq!(c.k, 1, "{}: {c:?}", clock.kind());
            assert!(c.single_ns >= 50.0 * clock.overhead_ns());
        }
    }

    #[test]
    fn calibration_respects_max_batch() {
        let clock = Clock::detect();
        let config = SamplerConfig {
            max_batch: 3,
            max_clock_share: 1e-9,
            ..SamplerConfig::default()
        };
        let mut f = near_free;
        let c = calibrate_batch(&clock, &config, &mut f);
        assert_eq!(c.k, 3);
        assert!(c.capped);
    }

    #[test]
    fn measure_records_every_sample_with_calibrated_k() {
        let clock = Clock::detect();
        let config = quick_config();
        let mut calls = 0u64;
        let mut invocations = 0u64;
        let mut f = |n: u64| {
            calls += 1;
            invocations += n;
            near_free(n)
        };
        let m = measure(&clock, &config, &mut f).unwrap();
        assert_eq!(m.samples_ps.len(), 150);
        assert_eq!(m.histogram.len(), 150);
        assert_eq!(m.repetition_means_ns.len(), 3);
        let cal = m.calibration.unwrap();
        assert_eq!(m.batch_k, cal.k);
        assert_eq!(m.invocations, 150 * m.batch_k);
        // Warm-up (1000) + calibration + 150 timed batches of K.
        assert!(invocations >= 1000 + 150 * m.batch_k);
        assert!(calls > 150);
        // Per-invocation values: each batch lasted >= its net target, so the per-invocation
        // time is positive and the summary is consistent with the raw samples.
        let s = m.summary();
        let e = m.exact_summary();
        assert_eq!(s.samples, 150);
        assert!(s.min_ns > 0.0);
        assert!((s.p50_ns - e.p50_ns).abs() <= e.p50_ns / 1000.0 + 1e-3, "{s:?} {e:?}");
        assert!((s.max_ns - e.max_ns).abs() <= e.max_ns / 1000.0 + 1e-3, "{s:?} {e:?}");
        let mean_of_means = m.repetition_means_ns.iter().sum::<f64>() / 3.0;
        assert!((mean_of_means - e.mean_ns).abs() <= 1e-3 + e.mean_ns * 1e-6);
    }

    #[test]
    fn measure_divides_batches_by_fixed_k() {
        // A closure that spins 40 * overhead per iteration, timed with K = 8 and K = 1: the
        // per-invocation time must be close to the spin in both (within the spin's own
        // overshoot of one clock read plus the K=1 overhead).
        let clock = Clock::monotonic_raw();
        let spin_ns = 40.0 * clock.overhead_ns();
        for k in [1u64, 8] {
            let config = SamplerConfig {
                fixed_batch: Some(k),
                ..sized(Warmup::DurationNs(0), 41, 1, 0)
            };
            let mut f = spinner(clock, spin_ns);
            let m = measure(&clock, &config, &mut f).unwrap();
            assert_eq!(m.batch_k, k);
            assert!(m.calibration.is_none());
            let p50 = m.exact_summary().p50_ns;
            assert!(
                p50 >= spin_ns - clock.overhead_ns(),
                "K={k}: p50 {p50} < spin {spin_ns}"
            );
            assert!(
                p50 <= spin_ns + 3.0 * clock.overhead_ns() + 0.5 * spin_ns,
                "K={k}: p50 {p50} vs spin {spin_ns}"
            );
        }
    }

    #[test]
    fn min_duration_raises_samples_and_clock_share_is_bounded() {
        let clock = Clock::detect();
        let spin_ns = 100.0 * clock.overhead_ns().max(1.0);
        let config = sized(Warmup::DurationNs(0), 10, 2, (spin_ns * 300.0) as u64);
        let mut f = spinner(clock, spin_ns);
        let m = measure(&clock, &config, &mut f).unwrap();
        // About 300 samples of one spin each (K = 1: one spin is far above 19 x overhead).
        assert_eq!(m.batch_k, 1);
        assert!(
            (200..=400).contains(&m.samples_per_repetition),
            "{} samples",
            m.samples_per_repetition
        );
        assert_eq!(m.samples_ps.len(), 2 * m.samples_per_repetition);
        assert!(m.clock_share > 0.0 && m.clock_share <= 0.05, "share {}", m.clock_share);
        // No minimum duration: exactly `samples`.
        let m = measure(
            &clock,
            &SamplerConfig {
                min_duration_ns: 0,
                ..config
            },
            &mut f,
        )
        .unwrap();
        assert_eq!(m.samples_per_repetition, 10);
        let capped = SamplerConfig {
            max_samples: 5,
            ..config
        };
        assert!(
            measure(&clock, &capped, &mut f).is_err(),
            "max_samples < samples is refused"
        );
    }

    #[test]
    fn pinned_measurement_counts_no_migration() {
        let Ok(cpus) = crate::pin::allowed_cpus() else { return };
        let clock = Clock::detect();
        let m = std::thread::scope(|s| {
            s.spawn(|| {
                crate::pin::pin_current_thread(cpus[0]).expect("pin");
                measure(&clock, &quick_config(), &mut near_free).expect("measures")
            })
            .join()
            .expect("thread")
        });
        assert_eq!(m.cpu, Some(cpus[0] as u32));
        assert_eq!(m.cpu_migrations, 0);
    }

    #[test]
    fn measure_each_times_op_not_undo() {
        let clock = Clock::detect();
        let mut state = 0u64;
        let undo_spin = 200.0 * clock.overhead_ns();
        let state_cell = std::cell::Cell::new(0u64);
        let mut ops = 0u64;
        let m = measure_each(
            &clock,
            25,
            5,
            || {
                ops += 1;
                state_cell.set(state_cell.get() + 1);
                state_cell.get()
            },
            || {
                // Undo restores the state and is slow; it must not be in the samples.
                state_cell.set(state_cell.get() - 1);
                let start = clock.now();
                while clock.elapsed_ns(start, clock.now()) < undo_spin {}
                state += 1;
            },
        )
        .unwrap();
        assert_eq!(ops, 30);
        assert_eq!(state, 30);
        assert_eq!(state_cell.get(), 0);
        assert_eq!(m.batch_k, 1);
        assert_eq!(m.samples_ps.len(), 25);
        assert_eq!(m.repetition_means_ns.len(), 1);
        let s = m.exact_summary();
        assert!(s.p50_ns < undo_spin / 2.0, "op p50 {} includes undo?", s.p50_ns);
    }

    #[test]
    fn measure_each_config_raises_samples_and_keeps_undo_out() {
        let clock = Clock::detect();
        let op_spin = 50.0 * clock.overhead_ns().max(1.0);
        let undo_spin = 4.0 * op_spin;
        let mut undone = 0u64;
        let config = sized(Warmup::Invocations(20), 5, 2, (op_spin * 100.0) as u64);
        let m = measure_each_config(
            &clock,
            &config,
            || {
                let start = clock.now();
                while clock.elapsed_ns(start, clock.now()) < op_spin {}
                1
            },
            || {
                undone += 1;
                let start = clock.now();
                while clock.elapsed_ns(start, clock.now()) < undo_spin {}
            },
        )
        .expect("measures");
        assert_eq!(m.batch_k, 1);
        assert!(
            (60..=140).contains(&m.samples_per_repetition),
            "{}",
            m.samples_per_repetition
        );
        assert_eq!(undone, 20 + 2 * m.samples_per_repetition as u64);
        let p50 = m.exact_summary().p50_ns;
        assert!(p50 < 2.0 * op_spin, "p50 {p50} includes the undo ({undo_spin})?");
    }

    #[test]
    fn invalid_configs_are_refused() {
        let clock = Clock::monotonic_raw();
        let mut f = near_free;
        for (config, field) in [
            (
                SamplerConfig {
                    samples: 0,
                    ..quick_config()
                },
                "samples",
            ),
            (
                SamplerConfig {
                    repetitions: 0,
                    ..quick_config()
                },
                "repetitions",
            ),
            (
                SamplerConfig {
                    max_batch: 0,
                    ..quick_config()
                },
                "max_batch",
            ),
            (
                SamplerConfig {
                    max_clock_share: f64::NAN,
                    ..quick_config()
                },
                "max_clock_share",
            ),
            (
                SamplerConfig {
                    fixed_batch: Some(0),
                    ..quick_config()
                },
                "fixed_batch",
            ),
        ] {
            match measure(&clock, &config, &mut f) {
                Err(SamplerError::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
        assert!(measure_each(&clock, 0, 0, || 0, || {}).is_err());
    }

    #[test]
    fn config_serde_defaults_and_warmup_names() {
        let c: SamplerConfig = serde_json::from_str(r#"{"samples": 10, "warmup": {"invocations": 7}}"#).unwrap();
        assert_eq!(c.samples, 10);
        assert_eq!(c.warmup, Warmup::Invocations(7));
        assert_eq!(c.repetitions, SamplerConfig::default().repetitions);
        assert_eq!(c.max_clock_share, 0.05);
        let json = serde_json::to_string(&Warmup::DurationNs(5)).unwrap();
        assert_eq!(json, r#"{"duration_ns":5}"#);
    }

    #[test]
    fn intervals_timed_elsewhere_get_the_same_bookkeeping() {
        let clock = Clock::detect();
        let overhead = clock.overhead_ns();
        let intervals: Vec<f64> = [100.0, 200.0, 300.0].iter().map(|v| v + overhead).collect();
        let cpus = [Some(1), Some(1), Some(0)];
        let m = measurement_from_intervals(&clock, 2, &intervals, &cpus).expect("measurement");
        let ns: Vec<f64> = m.samples_ps.iter().map(|&ps| ps as f64 / PS_PER_NS).collect();
        for (got, want) in ns.iter().zip([50.0, 100.0, 150.0]) {
            assert!((got - want).abs() < 0.01, "{ns:?}");
        }
        assert_eq!((m.batch_k, m.invocations, m.cpu, m.cpu_migrations), (2, 6, Some(1), 1));
        assert_eq!(m.repetition_means_ns.len(), 1);
        assert!(measurement_from_intervals(&clock, 1, &[], &[]).is_err());
        assert!(measurement_from_intervals(&clock, 0, &intervals, &cpus).is_err());
    }
}
