//! The `kernel` backend: mechanisms that shipped, measured on the running kernel. This version: seccomp filter stacks (per-task chains), timed in re-exec'd worker processes.
//!
//! Seccomp filters belong to the task that installs them and cannot be removed, so each
//! measurement runs in a fresh `hookbench worker seccomp '<request>'` process (exec'd, never a
//! fork of the multi-threaded harness) that installs N filters and times `getppid()`; the harness
//! collects its samples. The zero-filter worker is the native syscall cost and is the baseline.

use crate::backend::{Backend, CellError, CellSpec, Measured};
use crate::measure::stats::{histogram_to_base64, new_histogram_ps, record_ps, Summary, PS_PER_NS};
use crate::suite::Metric;
use hookbench_model::{ModelKind, Params};
use hookbench_reports::{cell_id, Accounting, Baseline, Cell};
use hookbench_workloads::seccomp::{spawn_worker, FilterBody, WorkerRequest};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Name of this backend in the results.
pub const NAME: &str = "kernel";

/// Syscalls per timed sample in a seccomp worker (about 80 ns each natively, so a sample lasts
/// tens of microseconds: the clock's own cost is negligible).
pub const SECCOMP_BATCH: u64 = 500;

/// The kernel backend's mechanisms, with the DESIGN.md model each realises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelMechanism {
    /// A stack of classic-BPF seccomp filters that load a syscall argument: the kernel's action
    /// cache cannot prove their result, so every filter of the chain runs on every syscall
    /// (`struct seccomp_filter`'s `prev` list, kernel/seccomp.c `seccomp_run_filters`).
    SeccompArgLoad,
    /// A stack of filters whose result depends only on the syscall number and arch: the action
    /// cache (`seccomp_cache_check_allow`) skips the whole chain.
    SeccompNrOnly,
}

impl KernelMechanism {
    /// Every kernel mechanism of this version.
    pub const ALL: [KernelMechanism; 2] = [KernelMechanism::SeccompArgLoad, KernelMechanism::SeccompNrOnly];

    /// The results name: "seccomp-arg-load" or "seccomp-nr-only".
    pub fn as_str(self) -> &'static str {
        match self {
            KernelMechanism::SeccompArgLoad => "seccomp-arg-load",
            KernelMechanism::SeccompNrOnly => "seccomp-nr-only",
        }
    }

    /// The dispatch model the mechanism realises (a seccomp stack is a per-task chain).
    pub fn model(self) -> ModelKind {
        ModelKind::TaskChain
    }

    fn body(self) -> FilterBody {
        match self {
            KernelMechanism::SeccompArgLoad => FilterBody::ArgLoad,
            KernelMechanism::SeccompNrOnly => FilterBody::NrOnly,
        }
    }
}

/// Checks a `[backend.kernel]` mechanism name of a suite; returns its model.
pub fn kernel_mechanism(name: &str) -> Result<ModelKind, String> {
    KernelMechanism::ALL
        .into_iter()
        .find(|m| m.as_str() == name)
        .map(KernelMechanism::model)
        .ok_or_else(|| {
            format!(
                "unknown mechanism '{name}': expected one of {}",
                KernelMechanism::ALL.map(KernelMechanism::as_str).join(", ")
            )
        })
}

/// The kernel backend. Keeps the native (zero-filter) samples per repetition count, measured once.
pub struct KernelBackend {
    exe: PathBuf,
    /// `Err(reason)` when seccomp filters cannot be installed here (from the environment probe).
    seccomp: Result<(), String>,
    native: HashMap<(usize, usize), Vec<Vec<f64>>>,
}

impl KernelBackend {
    /// A kernel backend whose workers are `exe` (this binary); `seccomp` says whether seccomp
    /// filters can be installed here, or why not.
    pub fn new(exe: PathBuf, seccomp: Result<(), String>) -> KernelBackend {
        KernelBackend {
            exe,
            seccomp,
            native: HashMap::new(),
        }
    }

    /// Runs one worker per repetition and returns each one's per-syscall samples (ns).
    fn workers(&self, body: FilterBody, filters: u32, spec: &CellSpec<'_>) -> Result<Vec<Vec<f64>>, CellError> {
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions {
            let req = WorkerRequest {
                body,
                filters,
                samples: spec.samples,
                batch: SECCOMP_BATCH,
            };
            let report = spawn_worker(&self.exe, &["worker", "seccomp"], &req)
                .map_err(|e| CellError::Fatal(anyhow::anyhow!("seccomp worker failed: {e}")))?;
            if let Some(error) = report.error {
                // The kernel refused (e.g. the seccomp instruction budget): this cell only.
                return Err(CellError::Skip(error));
            }
            reps.push(report.samples_ns);
        }
        Ok(reps)
    }

    fn seccomp_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        if let Err(reason) = &self.seccomp {
            return Err(CellError::Skip(format!(
                "seccomp filters cannot be installed here: {reason}"
            )));
        }
        let p = spec.params;
        if p.working_set != 1 || p.cpus != 1 || p.foreign != 0 {
            return Err(CellError::Skip(format!(
                "seccomp cells measure one task on one CPU with every filter on the syscall: working_set = {}, cpus = {}, foreign = {} are not measured by this version",
                p.working_set, p.cpus, p.foreign
            )));
        }
        let key = (spec.samples, spec.repetitions);
        let native = match self.native.get(&key) {
            Some(n) => n.clone(),
            None => {
                let n = self.workers(FilterBody::NrOnly, 0, spec)?;
                self.native.insert(key, n.clone());
                n
            }
        };
        let raw = self.workers(mechanism.body(), p.programs, spec)?;
        let native_all: Vec<f64> = native.iter().flatten().copied().collect();
        let base = Summary::from_values_ns(&native_all);
        let raw_all: Vec<f64> = raw.iter().flatten().copied().collect();
        let raw_summary = Summary::from_values_ns(&raw_all);
        let points: Vec<f64> = raw_all.iter().map(|v| v - base.mean_ns).collect();
        let s = Summary::from_values_ns(&points);
        let mut hist = new_histogram_ps().map_err(|e| CellError::Fatal(anyhow::anyhow!("histogram: {e}")))?;
        for v in &raw_all {
            record_ps(&mut hist, (v.max(0.0) * PS_PER_NS).round() as u64);
        }
        let params = Params { tasks: 1, ..p };
        let cell = Cell {
            id: cell_id(&spec.suite.name, NAME, mechanism.as_str(), "hook_latency_ns", &params),
            suite: spec.suite.name.clone(),
            backend: NAME.to_string(),
            model: mechanism.model(),
            mechanism: mechanism.as_str().to_string(),
            metric: "hook_latency_ns".to_string(),
            unit: "ns".to_string(),
            params,
            samples: s.samples,
            mean: s.mean_ns,
            stddev: s.stddev_ns,
            cv: raw_summary.cv,
            p50: s.p50_ns,
            p90: s.p90_ns,
            p99: s.p99_ns,
            p999: s.p999_ns,
            max: s.max_ns,
            baseline_subtracted: true,
            baseline: Some(Baseline {
                mean: base.mean_ns,
                p50: base.p50_ns,
                samples: base.samples,
            }),
            batch_k: Some(SECCOMP_BATCH),
            repetitions: raw
                .iter()
                .map(|r| r.iter().sum::<f64>() / r.len().max(1) as f64 - base.mean_ns)
                .collect(),
            histogram_ps: histogram_to_base64(&hist).ok(),
            accounting: Some(Accounting {
                nodes_visited: match mechanism {
                    KernelMechanism::SeccompArgLoad => u64::from(p.programs),
                    KernelMechanism::SeccompNrOnly => 0,
                },
                programs_run: match mechanism {
                    KernelMechanism::SeccompArgLoad => u64::from(p.programs),
                    KernelMechanism::SeccompNrOnly => 0,
                },
                handles_checked: 0,
                map_lookups: 0,
            }),
            breakdown: BTreeMap::new(),
            throughput_hooks_per_sec: (raw_summary.mean_ns > 0.0).then(|| 1e9 / raw_summary.mean_ns),
            counters: BTreeMap::new(),
        };
        Ok(vec![Measured { cell, points }])
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        if spec.suite.metric != Metric::HookLatency {
            return Err(CellError::Skip(format!(
                "the kernel backend of this version measures hook_latency_ns only, not {}",
                spec.suite.metric.as_str()
            )));
        }
        let mechanism = KernelMechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == spec.mechanism.name)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("unknown kernel mechanism {}", spec.mechanism.name)))?;
        self.seccomp_cell(mechanism, spec)
    }
}
