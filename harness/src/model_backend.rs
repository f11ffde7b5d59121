//! The `model` backend: the userspace model of every dispatch model, measured in workers.
//!
//! Each cell is measured in a fresh `hookbench worker model` process, interleaved with its
//! baseline world.
//!
//! The model's worlds live in hookbench-workloads; the worker (`workloads::model_worker`)
//! builds the cell's world and the baseline world (no program on any hook) and alternates their
//! repetitions, so the harness's own state (its heap, caches, page tables) never enters a
//! figure. This file only turns the worker's samples into cells.

use crate::backend::{
    cell_from_sets, check_program_runs, plain_cell, worker_failure, Backend, CellError, CellSpec, Cells, Timing,
};
use crate::mechanism::Impl;
use crate::suite::Metric;
use hookbench_measure::SampleSet;
use hookbench_reports::Accounting;
use hookbench_workloads::model_worker::{ModelMetric, ModelReport, ModelRequest, ModelWorker};
use std::path::PathBuf;

/// Name of this backend in the results.
pub const NAME: &str = "model";

/// How the model's working-set bytes are counted, as its cells say it.
pub const MODEL_WORKING_SET_METHOD: &str =
    "exact: the model's own allocations of dispatch metadata and programs for the W slots (metadata_bytes + program bytes)";

/// A model cell's working set, beside this machine's L2 and last-level caches.
///
/// `world_bytes` is the whole world's; each CPU rotates through its own W slots, a share of it.
fn model_working_set(world_bytes: u64, params: &hookbench_model::Params) -> hookbench_reports::WorkingSetBytes {
    let caches = hookbench_sys::cache::CacheSizes::read();
    let bytes = world_bytes / u64::from(params.cpus.max(1));
    hookbench_reports::WorkingSetBytes {
        bytes,
        per_slot_bytes: bytes / u64::from(params.working_set.max(1)),
        method: MODEL_WORKING_SET_METHOD.to_string(),
        l2_bytes: caches.l2_bytes,
        llc_bytes: caches.llc_bytes,
    }
}

/// The userspace model backend.
pub struct ModelBackend {
    exe: PathBuf,
    timing: Timing,
}

impl ModelBackend {
    /// A model backend whose workers are `exe worker model ...`, timed as `timing` says.
    pub fn new(exe: PathBuf, timing: Timing) -> ModelBackend {
        ModelBackend { exe, timing }
    }

    fn run(
        &self,
        spec: &CellSpec<'_>,
        mechanism: hookbench_model::Mechanism,
        metric: ModelMetric,
    ) -> Result<ModelReport, CellError> {
        let req = ModelRequest {
            mechanism,
            params: spec.params,
            metric,
            seed: spec.seed,
            repetitions: spec.repetitions.max(1),
            timing: hookbench_measure::TimingRequest {
                warmup_ns: self.timing.model_warmup_ns,
                ..self.timing.request(spec.samples, 0)
            },
        };
        hookbench_workloads::worker::spawn::<ModelWorker>(&self.exe, &req).map_err(|e| worker_failure("model", e))
    }
}

impl Backend for ModelBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Cells {
        let mechanism = spec.implementation(NAME, Impl::model)?;
        let name = spec.mechanism.name.as_str();
        match spec.suite.metric {
            Metric::HookLatency => match self.run(spec, mechanism, ModelMetric::Hook)? {
                ModelReport::Hook {
                    params,
                    reps,
                    accounting,
                    counters,
                    program_runs,
                    working_set_bytes,
                } => {
                    let cell: Vec<SampleSet> = reps.iter().flat_map(|r| r.cell.iter().cloned()).collect();
                    let base: Vec<SampleSet> = reps.iter().flat_map(|r| r.baseline.iter().cloned()).collect();
                    let mut m = cell_from_sets(spec, NAME, name, params, "hook_latency_ns", &cell, &base)?;
                    // Each CPU fires on its own: throughput adds up over CPUs.
                    if params.cpus > 1 && m.cell.mean > 0.0 {
                        m.cell.throughput_hooks_per_sec = Some(f64::from(params.cpus) * 1e9 / m.cell.mean);
                    }
                    m.cell.accounting = Some(Accounting {
                        nodes_visited: accounting.nodes_visited,
                        programs_run: accounting.programs_run,
                        handles_checked: accounting.handles_checked,
                        map_lookups: accounting.map_lookups,
                    });
                    m.cell.counters = counters;
                    if let Some([expected, observed, foreign]) = program_runs {
                        check_program_runs(&mut m.cell, expected, observed + foreign, "counter bodies on slot 0");
                    }
                    m.cell.working_set = working_set_bytes.map(|bytes| model_working_set(bytes, &params));
                    Ok(vec![m])
                }
                _ => Err(CellError::Fatal(anyhow::anyhow!(
                    "the model worker answered a hook cell with another report"
                ))),
            },
            Metric::AttachLatency => match self.run(spec, mechanism, ModelMetric::Attach)? {
                ModelReport::Attach { params, attach, detach } => {
                    let mut out = Vec::with_capacity(2);
                    for (metric, sets) in [("attach_latency_ns", &attach), ("detach_latency_ns", &detach)] {
                        out.push(cell_from_sets(spec, NAME, name, params, metric, sets, &[])?);
                    }
                    Ok(out)
                }
                _ => Err(CellError::Fatal(anyhow::anyhow!(
                    "the model worker answered an attach cell with another report"
                ))),
            },
            Metric::MetadataBytes => match self.run(spec, mechanism, ModelMetric::Metadata)? {
                ModelReport::Metadata {
                    params,
                    bytes,
                    breakdown,
                } => {
                    let mut m = plain_cell(
                        spec,
                        NAME,
                        name,
                        params,
                        "metadata_bytes",
                        "bytes",
                        &[vec![bytes as f64]],
                    )?;
                    m.cell.breakdown = breakdown;
                    Ok(vec![m])
                }
                _ => Err(CellError::Fatal(anyhow::anyhow!(
                    "the model worker answered a metadata cell with another report"
                ))),
            },
            Metric::SetupSeconds => Err(CellError::Skip(
                "the model backend has no set-up cost to measure; setup_seconds is the kernel backend's".into(),
            )),
        }
    }
}
