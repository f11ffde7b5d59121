//! The model worker (`hookbench worker model`): measures one model world in a fresh process.
//!
//! It builds the userspace world of one model mechanism and measures it there, interleaved with
//! its baseline.
//!
//! The model backend's timings used to run in the harness itself, whose heap, caches and page
//! tables grow with everything it ran before. Here each cell gets a process whose state does not
//! depend on the run: it builds the cell's world and the baseline world (the same params with no
//! program on any hook), and alternates their repetitions in a seeded order (baseline first or
//! cell first per pair), so drift over the cell's time falls on both. With the `counter` body it
//! then fires 1,000 hooks on slot 0 and checks the programs ran exactly as the accounting says.

use std::collections::BTreeMap;
use std::time::Duration;

use hookbench_measure::{
    counters::HwCounters, measure, measure_each_config, pin, SampleSet, Speculation, TimingRequest,
};
use hookbench_model::{Body, HookAccounting, Mechanism, Params};
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::{build_attach_bench, build_world, AttachBench, World};

/// Hooks run with the hardware counters enabled, after the timed samples.
pub const COUNTED_HOOKS: u64 = 100_000;

/// Hooks fired on slot 0 to check that the counter programs ran (untimed).
pub const CHECK_HOOKS: u64 = 1_000;

/// What a model cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelMetric {
    /// Hook latency against the baseline world.
    Hook,
    /// Attach and detach latency of one program at the attach point.
    Attach,
    /// Exact metadata bytes of the world.
    Metadata,
}

/// What a model worker is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The mechanism to build.
    pub mechanism: Mechanism,
    /// The scenario point.
    pub params: Params,
    /// What to measure.
    pub metric: ModelMetric,
    /// Seed of the slot order and of the baseline/cell order.
    pub seed: u64,
    /// Repetitions (each: one baseline measurement and one cell measurement).
    pub repetitions: usize,
    /// How to time (samples, clock, the CPU of a one-CPU cell).
    pub timing: TimingRequest,
}

/// One repetition of a hook cell: a measurement per CPU of the baseline and of the cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRep {
    /// The baseline world's samples, one set per CPU.
    pub baseline: Vec<SampleSet>,
    /// The cell world's samples, one set per CPU.
    pub cell: Vec<SampleSet>,
    /// Whether the baseline was measured first in this repetition.
    pub baseline_first: bool,
}

/// What a model worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelReport {
    /// Hook latency.
    Hook {
        /// The params as built (auto sizes resolved).
        params: Params,
        /// The repetitions, in measurement order.
        reps: Vec<ModelRep>,
        /// Exact accounting of one hook of slot 0.
        accounting: HookAccounting,
        /// Hardware counters per hook (empty when the machine has none).
        counters: BTreeMap<String, f64>,
        /// Program runs on slot 0 over [`CHECK_HOOKS`] hooks (counter body only).
        ///
        /// `[expected, observed, foreign]`: the foreign programs' runs must be 0.
        program_runs: Option<[u64; 3]>,
        /// Exact bytes of the world's dispatch metadata and programs.
        ///
        /// What rotating through its slots reads at most.
        #[serde(default)]
        working_set_bytes: Option<u64>,
    },
    /// Attach and detach latency.
    Attach {
        /// The params as built.
        params: Params,
        /// Attach samples, one set per repetition.
        attach: Vec<SampleSet>,
        /// Detach samples, one set per repetition.
        detach: Vec<SampleSet>,
    },
    /// Metadata bytes.
    Metadata {
        /// The params as built.
        params: Params,
        /// Exact bytes of the world's dispatch metadata.
        bytes: u64,
        /// The same by component.
        breakdown: BTreeMap<String, u64>,
    },
}

crate::worker::worker_kind! {
    /// The model worker kind (`hookbench worker model`).
    pub struct ModelWorker("model", ModelRequest => ModelReport, Duration::from_secs(600)) = run_model;
}

/// The model worker's body: checks the repetitions and measures the request's metric.
fn run_model(req: &ModelRequest) -> Result<ModelReport, String> {
    if req.repetitions == 0 || req.repetitions > 1000 {
        return Err(format!(
            "model worker: repetitions = {} is invalid: use 1..=1000",
            req.repetitions
        ));
    }
    match req.metric {
        ModelMetric::Hook => hook(req),
        ModelMetric::Attach => attach(req),
        ModelMetric::Metadata => {
            let world = build_world(req.mechanism, &req.params, req.seed).map_err(|e| e.to_string())?;
            Ok(ModelReport::Metadata {
                params: world.params(),
                bytes: world.metadata_bytes(),
                breakdown: world
                    .metadata_breakdown()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            })
        }
    }
}

/// Each CPU's slot order: CPU c rotates through its own W slots in a seeded random order.
fn slot_orders(params: &Params, seed: u64) -> Vec<Vec<u32>> {
    let w = params.working_set as usize;
    (0..params.cpus as usize)
        .map(|c| {
            let mut order: Vec<u32> = ((c * w) as u32..((c + 1) * w) as u32).collect();
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ c as u64);
            order.shuffle(&mut rng);
            order
        })
        .collect()
}

/// One measurement of `world` on its pinned CPUs, one [`SampleSet`] per CPU.
///
/// Pinned to the request's CPU for one CPU, to the first `cpus` allowed CPUs otherwise.
fn measure_world(world: &dyn World, orders: &[Vec<u32>], timing: &TimingRequest) -> Result<Vec<SampleSet>, String> {
    let clock = timing.clock();
    let config = timing.sampler_config();
    let measure_on = |c: usize| -> Result<SampleSet, String> {
        let order = &orders[c];
        let m = measure(&clock, &config, &mut |iterations| world.trigger(order, iterations))
            .map_err(|e| format!("measuring hook latency: {e}"))?;
        Ok(SampleSet::from_measurement(&m, Speculation::of_self()))
    };
    if orders.len() == 1 {
        timing.pin().map_err(|e| format!("pinning: {e}"))?;
        return Ok(vec![measure_on(0)?]);
    }
    let allowed = pin::allowed_cpus().map_err(|e| format!("reading the CPUs this process may use: {e}"))?;
    if allowed.len() < orders.len() {
        return Err(format!(
            "cpus = {} but this process may run on {} CPU(s)",
            orders.len(),
            allowed.len()
        ));
    }
    pin::run_pinned(&allowed[..orders.len()], measure_on)
        .map_err(|e| format!("running pinned measuring threads: {e}"))?
        .into_iter()
        .collect()
}

/// A hook cell: the cell world and the baseline world measured in alternation.
fn hook(req: &ModelRequest) -> Result<ModelReport, String> {
    let world = build_world(req.mechanism, &req.params, req.seed).map_err(|e| e.to_string())?;
    let base_params = Params {
        programs: 0,
        foreign: 0,
        ..req.params
    };
    let base = build_world(req.mechanism, &base_params, req.seed).map_err(|e| e.to_string())?;
    let params = world.params();
    let orders = slot_orders(&params, req.seed);
    let base_orders = slot_orders(&base.params(), req.seed);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(req.seed.rotate_left(17));
    let mut reps = Vec::with_capacity(req.repetitions);
    for _ in 0..req.repetitions {
        let baseline_first = rng.random_bool(0.5);
        let (b, c) = if baseline_first {
            let b = measure_world(base.as_ref(), &base_orders, &req.timing)?;
            (b, measure_world(world.as_ref(), &orders, &req.timing)?)
        } else {
            let c = measure_world(world.as_ref(), &orders, &req.timing)?;
            (measure_world(base.as_ref(), &base_orders, &req.timing)?, c)
        };
        reps.push(ModelRep {
            baseline: b,
            cell: c,
            baseline_first,
        });
    }
    drop(base);
    let accounting = world.accounting(0);
    let mut counters = BTreeMap::new();
    if params.cpus == 1 {
        if let Ok(mut hw) = HwCounters::open() {
            let order: Vec<u32> = (0..params.working_set).collect();
            if let Ok((_, c)) = hw.count_per(COUNTED_HOOKS, || world.trigger(&order, COUNTED_HOOKS)) {
                counters = c;
            }
        }
    }
    let program_runs = (params.body == Body::Counter).then(|| {
        let before = world.run_counts(0).unwrap_or_default();
        world.trigger(&[0], CHECK_HOOKS);
        let after = world.run_counts(0).unwrap_or_default();
        [
            CHECK_HOOKS * accounting.programs_run,
            after.measured - before.measured,
            after.foreign - before.foreign,
        ]
    });
    Ok(ModelReport::Hook {
        params,
        reps,
        accounting,
        counters,
        program_runs,
        working_set_bytes: Some(world.metadata_bytes() + world.program_bytes()),
    })
}

/// An attach or a detach on a model attach bench, returning its work units.
type BenchOp = fn(&mut (dyn AttachBench + 'static)) -> u64;

/// Attach and detach latency, `req.repetitions` series of each.
///
/// Per repetition: timed attaches (each undone by an untimed detach), then timed detaches (each
/// undone by an untimed attach).
fn attach(req: &ModelRequest) -> Result<ModelReport, String> {
    let bench = build_attach_bench(req.mechanism, &req.params, req.seed).map_err(|e| e.to_string())?;
    let params = bench.params();
    let bench = std::cell::RefCell::new(bench);
    req.timing.pin().map_err(|e| format!("pinning: {e}"))?;
    let clock = req.timing.clock();
    let config = req.timing.sampler_config();
    // One timed series of `op` on the bench, each undone by an untimed `undo`.
    let series = |what: &str, op: BenchOp, undo: BenchOp| {
        measure_each_config(
            &clock,
            &config,
            || op(bench.borrow_mut().as_mut()),
            || {
                undo(bench.borrow_mut().as_mut());
            },
        )
        .map(|m| SampleSet::from_measurement(&m, Speculation::of_self()))
        .map_err(|e| format!("measuring {what} latency: {e}"))
    };
    let mut attach = Vec::with_capacity(req.repetitions);
    let mut detach = Vec::with_capacity(req.repetitions);
    for _ in 0..req.repetitions {
        attach.push(series("attach", AttachBench::attach, AttachBench::detach)?);
        bench.borrow_mut().attach();
        let d = series("detach", AttachBench::detach, AttachBench::attach);
        bench.borrow_mut().detach();
        detach.push(d?);
    }
    Ok(ModelReport::Attach { params, attach, detach })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::spawn_test;
    use hookbench_measure::Clock;

    fn request(mechanism: Mechanism, metric: ModelMetric, body: Body) -> ModelRequest {
        ModelRequest {
            mechanism,
            params: Params {
                programs: 8,
                foreign: 4,
                hooks: 4,
                depth: 2,
                body,
                ..Params::default()
            },
            metric,
            seed: 7,
            repetitions: 3,
            timing: TimingRequest {
                warmup_ns: 1_000_000,
                ..TimingRequest::new(Clock::detect().info(), None, 200, 0)
            },
        }
    }

    #[test]
    fn hook_cells_alternate_with_their_baseline_and_check_the_programs() {
        for mechanism in [Mechanism::ChainWalk, Mechanism::EffectiveArray] {
            let report = spawn_test::<ModelWorker>(&request(mechanism, ModelMetric::Hook, Body::Counter)).expect("ran");
            let ModelReport::Hook {
                reps,
                accounting,
                program_runs,
                params,
                ..
            } = report
            else {
                panic!("not a hook report")
            };
            assert_eq!(params.programs, 8);
            assert_eq!(reps.len(), 3);
            assert!(reps.iter().all(|r| r.baseline.len() == 1 && r.cell.len() == 1));
            assert!(reps.iter().all(|r| r.cell[0].values_ns.len() == 200));
            assert_eq!(accounting.programs_run, 8);
            let [expected, observed, foreign] = program_runs.expect("counter body is checked");
            assert_eq!((expected, observed, foreign), (8 * CHECK_HOOKS, 8 * CHECK_HOOKS, 0));
            // Eight counter programs cost more than none.
            let mean = |v: &[SampleSet]| v.iter().map(SampleSet::mean_ns).sum::<f64>() / v.len() as f64;
            let cell: f64 = reps.iter().map(|r| mean(&r.cell)).sum();
            let base: f64 = reps.iter().map(|r| mean(&r.baseline)).sum();
            assert!(cell > base, "{mechanism:?}: {cell} vs {base}");
        }
        let mut req = request(Mechanism::ChainWalk, ModelMetric::Hook, Body::Null);
        req.repetitions = 0;
        let err = spawn_test::<ModelWorker>(&req).expect_err("refused");
        assert!(err.to_string().contains("repetitions = 0"), "{err}");
    }

    #[test]
    fn attach_and_metadata_cells() {
        let report = spawn_test::<ModelWorker>(&request(Mechanism::EffectiveArray, ModelMetric::Attach, Body::Null))
            .expect("ran");
        let ModelReport::Attach { attach, detach, .. } = report else {
            panic!("not an attach report")
        };
        assert_eq!((attach.len(), detach.len()), (3, 3));
        assert!(attach.iter().all(|s| s.batch_k == 1 && s.values_ns.len() == 200));
        let report =
            spawn_test::<ModelWorker>(&request(Mechanism::ChainWalk, ModelMetric::Metadata, Body::Null)).expect("ran");
        let ModelReport::Metadata { bytes, breakdown, .. } = report else {
            panic!("not a metadata report")
        };
        assert!(bytes > 0);
        assert_eq!(breakdown.values().sum::<u64>(), bytes);
    }
}
