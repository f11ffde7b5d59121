//! The `model` backend: builds userspace worlds of every dispatch model (hookbench-workloads) and measures them with the measurement core.

use crate::backend::{summary_cell, Backend, CellError, CellSpec, Measured};
use crate::measure::clock::Clock;
use crate::measure::counters::HwCounters;
use crate::measure::pin;
use crate::measure::sampler::{self, Measurement, SamplerConfig, Warmup};
use crate::measure::stats::{histogram_to_base64, Summary};
use crate::suite::Metric;
use anyhow::Context as _;
use hookbench_model::{Mechanism, Params};
use hookbench_reports::{Accounting, Baseline, Cell};
use hookbench_workloads::{build_attach_bench, build_world, World};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// Name of this backend in the results.
pub const NAME: &str = "model";

/// Warm-up before each hook-latency measurement, in nanoseconds.
pub const WARMUP_NS: u64 = 20_000_000;

/// The userspace model backend. Keeps the zero-programs baselines it measured, keyed by mechanism
/// and params, so that cells sharing a baseline (a sweep over `programs` or `foreign`) measure it once.
pub struct ModelBackend {
    clock: Clock,
    baselines: HashMap<(Mechanism, Params), Raw>,
    /// Hardware counters of the measuring thread, or why there are none.
    counters: Result<HwCounters, String>,
}

/// Hooks run with the hardware counters enabled, after the timed samples, for the per-hook counts.
pub const COUNTED_HOOKS: u64 = 100_000;

/// A cell spec with its mechanism parsed into the model's own type; derefs to the [`CellSpec`].
struct ModelSpec<'a> {
    spec: &'a CellSpec<'a>,
    mechanism: Mechanism,
}

impl<'a> std::ops::Deref for ModelSpec<'a> {
    type Target = CellSpec<'a>;
    fn deref(&self) -> &CellSpec<'a> {
        self.spec
    }
}

/// Raw (unsubtracted) figures of one hook-latency measurement, over all CPUs of the cell.
#[derive(Clone)]
struct Raw {
    summary: Summary,
    samples_ns: Vec<f64>,
    repetition_means_ns: Vec<f64>,
    batch_k: u64,
    histogram_b64: Option<String>,
    throughput_hooks_per_sec: f64,
}

impl ModelBackend {
    /// A model backend timing with `clock`.
    pub fn new(clock: Clock) -> ModelBackend {
        ModelBackend {
            clock,
            baselines: HashMap::new(),
            counters: HwCounters::open(),
        }
    }

    /// Why this backend records no hardware counters, or `None` when it does.
    pub fn counters_absent_reason(&self) -> Option<&str> {
        self.counters.as_ref().err().map(String::as_str)
    }

    fn sampler_config(spec: &ModelSpec<'_>) -> SamplerConfig {
        SamplerConfig {
            samples: spec.samples,
            repetitions: spec.repetitions,
            warmup: Warmup::DurationNs(WARMUP_NS),
            ..SamplerConfig::default()
        }
    }

    /// Measures the hook of `world` on `params.cpus` pinned CPUs, CPU c rotating through its own
    /// W slots in a seeded random order.
    fn measure_hooks(&self, world: &dyn World, spec: &ModelSpec<'_>) -> Result<Raw, CellError> {
        let p = world.params();
        let w = p.working_set as usize;
        let cpus = p.cpus as usize;
        let orders: Vec<Vec<u32>> = (0..cpus)
            .map(|c| {
                let mut order: Vec<u32> = ((c * w) as u32..((c + 1) * w) as u32).collect();
                let mut rng = rand::rngs::SmallRng::seed_from_u64(spec.seed ^ c as u64);
                order.shuffle(&mut rng);
                order
            })
            .collect();
        let config = Self::sampler_config(spec);
        let clock = self.clock;
        let measure_on = |c: usize| -> anyhow::Result<Measurement> {
            let order = &orders[c];
            sampler::measure(&clock, &config, &mut |iterations| world.trigger(order, iterations))
                .context("measuring hook latency")
        };
        let per_cpu: Vec<Measurement> = if cpus == 1 {
            vec![measure_on(0)?]
        } else {
            let allowed = pin::allowed_cpus().context("reading the CPUs this process may use")?;
            if allowed.len() < cpus {
                return Err(CellError::Skip(format!(
                    "cpus = {cpus} but this process may run on {} CPU(s)",
                    allowed.len()
                )));
            }
            pin::run_pinned(&allowed[..cpus], measure_on)
                .context("running pinned measuring threads")?
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        Ok(merge_cpus(&per_cpu, self.clock.overhead_ns())?)
    }

    fn baseline(&mut self, spec: &ModelSpec<'_>) -> Result<Raw, CellError> {
        let params = Params {
            programs: 0,
            foreign: 0,
            ..spec.params
        };
        if let Some(raw) = self.baselines.get(&(spec.mechanism, params)) {
            return Ok(raw.clone());
        }
        let world = build_world(spec.mechanism, &params, spec.seed).map_err(|e| CellError::Skip(e.to_string()))?;
        let raw = self.measure_hooks(world.as_ref(), spec)?;
        self.baselines.insert((spec.mechanism, params), raw.clone());
        Ok(raw)
    }

    fn hook_cell(&mut self, spec: &ModelSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let world = build_world(spec.mechanism, &spec.params, spec.seed).map_err(|e| CellError::Skip(e.to_string()))?;
        let raw = self.measure_hooks(world.as_ref(), spec)?;
        let base = self.baseline(spec)?;
        let params = world.params();
        let acc = world.accounting(0);
        let mut counts = BTreeMap::new();
        if let (Ok(counters), 1) = (self.counters.as_mut(), params.cpus) {
            let order: Vec<u32> = (0..params.working_set).collect();
            let (_, c) = counters
                .count_per(COUNTED_HOOKS, || world.trigger(&order, COUNTED_HOOKS))
                .context("reading hardware counters")?;
            counts = c;
        }
        drop(world);
        // Baseline subtraction shifts every sample by the baseline's mean, so the percentiles of
        // the result stay ordered (p_q(X - b) = p_q(X) - b) and the fits see the same values.
        let points: Vec<f64> = raw.samples_ns.iter().map(|v| v - base.summary.mean_ns).collect();
        let s = Summary::from_values_ns(&points);
        let mut cell = new_cell(spec, params, "hook_latency_ns", "ns", &s);
        cell.cv = raw.summary.cv;
        cell.baseline_subtracted = true;
        cell.baseline = Some(Baseline {
            mean: base.summary.mean_ns,
            p50: base.summary.p50_ns,
            samples: base.summary.samples,
        });
        cell.batch_k = Some(raw.batch_k);
        cell.repetitions = raw
            .repetition_means_ns
            .iter()
            .map(|m| m - base.summary.mean_ns)
            .collect();
        cell.histogram_ps = raw.histogram_b64.clone();
        cell.accounting = Some(Accounting {
            nodes_visited: acc.nodes_visited,
            programs_run: acc.programs_run,
            handles_checked: acc.handles_checked,
            map_lookups: acc.map_lookups,
        });
        cell.throughput_hooks_per_sec = Some(raw.throughput_hooks_per_sec);
        cell.counters = counts;
        Ok(vec![Measured { cell, points }])
    }

    /// Attach and detach latency of one program at the attach point: for each repetition,
    /// `samples` timed attaches (each undone by an untimed detach), then `samples` timed detaches
    /// (each undone by an untimed attach). No baseline is subtracted; the clock read pair's own
    /// overhead (`clock_overhead_ns` in the environment) is included.
    fn attach_cells(&mut self, spec: &ModelSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let bench =
            build_attach_bench(spec.mechanism, &spec.params, spec.seed).map_err(|e| CellError::Skip(e.to_string()))?;
        let params = bench.params();
        let bench = RefCell::new(bench);
        let warmup = (spec.samples / 10).clamp(1, 50);
        let mut attach = Vec::with_capacity(spec.repetitions);
        let mut detach = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions {
            attach.push(
                sampler::measure_each(
                    &self.clock,
                    spec.samples,
                    warmup,
                    || bench.borrow_mut().attach(),
                    || {
                        bench.borrow_mut().detach();
                    },
                )
                .context("measuring attach latency")?,
            );
            bench.borrow_mut().attach();
            let d = sampler::measure_each(
                &self.clock,
                spec.samples,
                warmup,
                || bench.borrow_mut().detach(),
                || {
                    bench.borrow_mut().attach();
                },
            )
            .context("measuring detach latency");
            bench.borrow_mut().detach();
            detach.push(d?);
        }
        let mut out = Vec::with_capacity(2);
        for (metric, runs) in [("attach_latency_ns", &attach), ("detach_latency_ns", &detach)] {
            let raw = concat_repetitions(runs)?;
            let mut cell = new_cell(spec, params, metric, "ns", &raw.summary);
            cell.batch_k = Some(1);
            cell.repetitions = raw.repetition_means_ns.clone();
            cell.histogram_ps = raw.histogram_b64.clone();
            out.push(Measured {
                cell,
                points: raw.samples_ns,
            });
        }
        Ok(out)
    }

    fn metadata_cell(&mut self, spec: &ModelSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let world = build_world(spec.mechanism, &spec.params, spec.seed).map_err(|e| CellError::Skip(e.to_string()))?;
        let bytes = world.metadata_bytes() as f64;
        let s = Summary::from_values_ns(&[bytes]);
        let mut cell = new_cell(spec, world.params(), "metadata_bytes", "bytes", &s);
        cell.stddev = 0.0;
        cell.cv = 0.0;
        cell.repetitions = vec![bytes];
        cell.breakdown = world
            .metadata_breakdown()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>();
        Ok(vec![Measured {
            cell,
            points: vec![bytes],
        }])
    }
}

impl Backend for ModelBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let mechanism: Mechanism = spec
            .mechanism
            .name
            .parse()
            .map_err(|e: hookbench_model::UnknownName| CellError::Fatal(e.into()))?;
        let spec = &ModelSpec { spec, mechanism };
        match spec.suite.metric {
            Metric::HookLatency => self.hook_cell(spec),
            Metric::AttachLatency => self.attach_cells(spec),
            Metric::MetadataBytes => self.metadata_cell(spec),
            Metric::SetupSeconds => Err(CellError::Skip(
                "the model backend has no set-up cost to measure; setup_seconds is the kernel backend's".into(),
            )),
        }
    }
}

/// A cell of `spec` with the figures of `s` (in `unit`) and everything else empty.
fn new_cell(spec: &ModelSpec<'_>, params: Params, metric: &str, unit: &str, s: &Summary) -> Cell {
    summary_cell(spec, NAME, metric, unit, params, s)
}

/// Merges per-CPU measurements: samples concatenated, each less the clock read pair's share
/// (`clock_overhead_ns / K`, so that cells with different K compare; the summary is computed
/// exactly from them; the saved histogram keeps the uncorrected values),
/// histograms added, repetition means averaged
/// across CPUs, throughput summed over CPUs (each CPU: 1e9 / its mean ns per hook).
fn merge_cpus(per_cpu: &[Measurement], clock_overhead_ns: f64) -> anyhow::Result<Raw> {
    let first = per_cpu.first().context("no measurement")?;
    let mut hist = first.histogram.clone();
    for m in &per_cpu[1..] {
        hist.add(&m.histogram).context("merging per-CPU histograms")?;
    }
    let share_ns = |m: &Measurement| clock_overhead_ns / m.batch_k.max(1) as f64;
    let samples_ns: Vec<f64> = per_cpu
        .iter()
        .flat_map(|m| m.samples_ps.iter().map(move |&ps| ps as f64 / 1000.0 - share_ns(m)))
        .collect();
    let reps = first.repetition_means_ns.len();
    let repetition_means_ns = (0..reps)
        .map(|r| {
            per_cpu
                .iter()
                .map(|m| m.repetition_means_ns[r] - share_ns(m))
                .sum::<f64>()
                / per_cpu.len() as f64
        })
        .collect();
    let throughput_hooks_per_sec = per_cpu
        .iter()
        .map(|m| {
            let mean = m.summary().mean_ns;
            if mean > 0.0 {
                1e9 / mean
            } else {
                0.0
            }
        })
        .sum();
    Ok(Raw {
        summary: Summary::from_values_ns(&samples_ns),
        samples_ns,
        repetition_means_ns,
        batch_k: first.batch_k,
        histogram_b64: histogram_to_base64(&hist).ok(),
        throughput_hooks_per_sec,
    })
}

/// Concatenates the repetitions of one operation (each a [`Measurement`] with one repetition).
fn concat_repetitions(runs: &[Measurement]) -> anyhow::Result<Raw> {
    let first = runs.first().context("no repetition measured")?;
    let mut hist = first.histogram.clone();
    for m in &runs[1..] {
        hist.add(&m.histogram).context("merging repetition histograms")?;
    }
    let samples_ns: Vec<f64> = runs
        .iter()
        .flat_map(|m| m.samples_ps.iter().map(|&ps| ps as f64 / 1000.0))
        .collect();
    Ok(Raw {
        summary: Summary::from_values_ns(&samples_ns),
        repetition_means_ns: runs
            .iter()
            .flat_map(|m| m.repetition_means_ns.iter().copied())
            .collect(),
        samples_ns,
        batch_k: 1,
        histogram_b64: histogram_to_base64(&hist).ok(),
        throughput_hooks_per_sec: 0.0,
    })
}
