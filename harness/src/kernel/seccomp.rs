//! seccomp cells of the kernel backend: filter chains, the selftest's steps, filter installs.
//!
//! Filter chains are timed on a syscall against the native syscall; the kernel selftest's own
//! native/entry/per-filter steps are measured as it measures them.

use super::{every_node_runs, family_part, kernel_samples, one_task_hook_cell, KernelBackend, KernelMechanism, NAME};
use crate::backend::{cell_from_sets, interleaved, worker_failure, CellError, CellSpec, Cells};
use hookbench_measure::SampleSet;
use hookbench_model::Params;
use hookbench_workloads::seccomp::{
    max_filters, FilterBody, SeccompReport, SeccompRequest, SeccompStep, SeccompWorker,
};
use hookbench_workloads::trigger::Trigger;

/// The steps of the kernel selftest's method, as (filter body, filters added) pairs.
///
/// As tools/testing/selftests/seccomp/seccomp_benchmark.c: native, one and two filters the action
/// cache can prove (number-only), then a third and a fourth that load an argument, after which
/// the cache cannot skip the chain and all four filters run. Each step's chain length is the
/// cell's `programs`.
pub const SELFTEST_STEPS: [(FilterBody, u32); 5] = [
    (FilterBody::NrOnly, 0),
    (FilterBody::NrOnly, 1),
    (FilterBody::NrOnly, 1),
    (FilterBody::ArgLoad, 1),
    (FilterBody::ArgLoad, 1),
];

impl KernelMechanism {
    /// The filter body and timed syscall of a seccomp mechanism, `None` for the others.
    pub(super) fn seccomp(self) -> Option<(FilterBody, Trigger)> {
        match self {
            KernelMechanism::SeccompArgLoad => Some((FilterBody::ArgLoad, Trigger::Getppid)),
            KernelMechanism::SeccompNrOnly => Some((FilterBody::NrOnly, Trigger::Getppid)),
            KernelMechanism::SeccompSocket => Some((FilterBody::ArgLoad, Trigger::Socket)),
            KernelMechanism::SeccompGetsockname => Some((FilterBody::ArgLoad, Trigger::Getsockname)),
            _ => None,
        }
    }

    /// Claim 1's seccomp shapes: how each builds its chain and what it times; `None` otherwise.
    ///
    /// The foreign filters' body, whether on-hook filters sit below them, and the timed syscall
    /// (cgroup-bpf's, for the like-with-like pair).
    pub(super) fn seccomp_foreign(self) -> Option<(FilterBody, bool, Trigger)> {
        let t = Trigger::Getsockname;
        match self {
            KernelMechanism::SeccompForeignNrFirst => Some((FilterBody::ForeignNrFirst, true, t)),
            KernelMechanism::SeccompForeignArgFirst => Some((FilterBody::ForeignArgFirst, true, t)),
            KernelMechanism::SeccompForeignCached => Some((FilterBody::ForeignNrFirst, false, t)),
            _ => None,
        }
    }
}

/// What a seccomp worker times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timed {
    /// The trigger after every step.
    EveryStep,
    /// The trigger after the last step only (a chain built in several shapes).
    LastStep,
    /// The installs only (attach cells).
    Installs,
}

impl KernelBackend {
    /// Runs one seccomp worker with `steps` on `trigger`, timing what `timed` says.
    fn seccomp_worker(
        &self,
        steps: Vec<SeccompStep>,
        trigger: Trigger,
        spec: &CellSpec<'_>,
        timed: Timed,
    ) -> Result<SeccompReport, CellError> {
        let req = SeccompRequest {
            steps,
            trigger,
            timing: self.timing_for(spec),
            installs_only: timed == Timed::Installs,
            time_last_only: timed == Timed::LastStep,
            spec_allow: true,
        };
        hookbench_workloads::worker::spawn::<SeccompWorker>(&self.exe, &req).map_err(|e| worker_failure("seccomp", e))
    }

    /// The samples of one worker that builds its chain by `steps`, timed on `trigger` at the end.
    fn seccomp_samples(
        &self,
        steps: Vec<SeccompStep>,
        trigger: Trigger,
        spec: &CellSpec<'_>,
    ) -> Result<SampleSet, CellError> {
        let report = self.seccomp_worker(steps, trigger, spec, Timed::LastStep)?;
        report
            .steps
            .into_iter()
            .last()
            .and_then(|s| s.samples)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the seccomp worker returned no samples")))
    }

    /// A hook cell of a seccomp mechanism: N filters against none (the native syscall).
    ///
    /// One worker each, alternating repetition by repetition.
    pub(super) fn seccomp_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        if mechanism.seccomp_foreign().is_some() {
            return self.seccomp_foreign_cell(mechanism, spec);
        }
        let (body, trigger) = family_part(mechanism, mechanism.seccomp(), "seccomp")?;
        let programs = spec.params.programs;
        let (base, cell) = interleaved(spec.seed, spec.repetitions, |baseline| {
            let add = if baseline { 0 } else { programs };
            self.seccomp_samples(vec![SeccompStep { body, add }], trigger, spec)
        })?;
        let mut m = one_task_hook_cell(spec, mechanism, 0, &cell, &base)?;
        // From the kernel's rules: the action cache skips a number-only chain for this syscall.
        let runs = if body == FilterBody::NrOnly {
            0
        } else {
            u64::from(programs)
        };
        m.cell.accounting = Some(every_node_runs(runs));
        Ok(vec![m])
    }

    /// A claim-1 cell: a chain with foreign filters, timed against no filter at all.
    ///
    /// On-hook argument-loading filters (unless the shape has none) and `foreign` filters for
    /// another syscall, timed on cgroup-bpf's trigger.
    ///
    /// One worker builds the whole chain and times once; the baseline worker installs nothing.
    fn seccomp_foreign_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let (foreign_body, on_hook, trigger) = family_part(mechanism, mechanism.seccomp_foreign(), "seccomp")?;
        let p = spec.params;
        let programs = if on_hook { p.programs } else { 0 };
        let (base, cell) = interleaved(spec.seed, spec.repetitions, |baseline| {
            let (own, foreign) = if baseline { (0, 0) } else { (programs, p.foreign) };
            let steps = vec![
                SeccompStep {
                    body: FilterBody::ArgLoad,
                    add: own,
                },
                SeccompStep {
                    body: foreign_body,
                    add: foreign,
                },
            ];
            self.seccomp_samples(steps, trigger, spec)
        })?;
        let spec_programs = CellSpec {
            params: Params { programs, ..p },
            ..spec.clone()
        };
        let mut m = one_task_hook_cell(&spec_programs, mechanism, 0, &cell, &base)?;
        // With an on-hook filter the cache is off for the syscall and every filter runs; with
        // number-first foreign filters alone, the cache skips the whole chain.
        let runs = if on_hook {
            u64::from(programs) + u64::from(p.foreign)
        } else {
            0
        };
        m.cell.accounting = Some(every_node_runs(runs));
        Ok(vec![m])
    }

    /// The selftest-method cells: per repetition one worker walks [`SELFTEST_STEPS`].
    ///
    /// Five cells (`programs` = 0..4 filters in the chain), each of 1..4 against step 0 of the
    /// same workers (the native syscall in the same process, as the selftest measures it).
    pub(super) fn selftest_split_cells(&mut self, spec: &CellSpec<'_>) -> Cells {
        let mechanism = KernelMechanism::SeccompSelftestSplit;
        let steps: Vec<SeccompStep> = SELFTEST_STEPS
            .iter()
            .map(|&(body, add)| SeccompStep { body, add })
            .collect();
        let mut per_step: Vec<Vec<SampleSet>> = vec![Vec::new(); steps.len()];
        for _ in 0..spec.repetitions.max(1) {
            let report = self.seccomp_worker(steps.clone(), Trigger::Getppid, spec, Timed::EveryStep)?;
            for (i, s) in report.steps.into_iter().enumerate() {
                if let (Some(slot), Some(set)) = (per_step.get_mut(i), s.samples) {
                    slot.push(set);
                }
            }
        }
        let mut out = Vec::with_capacity(per_step.len());
        for (n, sets) in per_step.iter().enumerate() {
            let params = Params {
                programs: n as u32,
                foreign: 0,
                tasks: 1,
                cgroups: 0,
                ..spec.params
            };
            let base: &[SampleSet] = if n == 0 { &[] } else { &per_step[0] };
            let mut m = cell_from_sets(spec, NAME, mechanism.as_str(), params, "hook_latency_ns", sets, base)?;
            // Filters 1 and 2 are skipped by the action cache; from the third on, all run.
            let runs = if n >= 3 { n as u64 } else { 0 };
            m.cell.accounting = Some(every_node_runs(runs));
            out.push(m);
        }
        Ok(out)
    }

    /// Install cost of one seccomp filter on a task, for the attach suite.
    ///
    /// One worker per repetition installs as many filters as the samples asked (within the
    /// instruction budget) and times each. A per-task install touches only that task, so
    /// `cgroups` (descendants) does not enter; there is no detach (a filter cannot be removed).
    pub(super) fn seccomp_install_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let (body, trigger) = mechanism.seccomp().unwrap_or((FilterBody::ArgLoad, Trigger::Getppid));
        let n = u32::try_from(kernel_samples(spec))
            .unwrap_or(u32::MAX)
            .min(max_filters(body));
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions.max(1) {
            let report = self.seccomp_worker(vec![SeccompStep { body, add: n }], trigger, spec, Timed::Installs)?;
            reps.push(
                report
                    .steps
                    .into_iter()
                    .flat_map(|s| s.install_ns)
                    .collect::<Vec<f64>>(),
            );
        }
        install_cell(spec, mechanism.as_str(), &reps)
    }
}

/// An `attach_latency_ns` cell of per-task installs (one value list per worker).
pub(super) fn install_cell(spec: &CellSpec<'_>, mechanism: &str, reps: &[Vec<f64>]) -> Cells {
    let params = Params {
        tasks: 1,
        ..spec.params
    };
    let mut m = crate::backend::plain_cell(spec, NAME, mechanism, params, "attach_latency_ns", "ns", reps)?;
    m.cell.batch_k = Some(1);
    Ok(vec![m])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_1_shapes_sweep_foreign_on_cgroup_bpfs_trigger() {
        let shapes: Vec<KernelMechanism> = KernelMechanism::ALL
            .into_iter()
            .filter(|m| m.seccomp_foreign().is_some())
            .collect();
        assert_eq!(shapes.len(), 3);
        for m in shapes {
            assert!(m.sweeps_foreign(), "{}", m.as_str());
            assert_eq!(m.seccomp(), None, "{}: one cell kind", m.as_str());
            // The same syscall as cgroup-bpf: the claim-1 pair is like with like.
            assert_eq!(
                m.seccomp_foreign().map(|(_, _, t)| t),
                KernelMechanism::CgroupBpf.cgroup_hook().map(|(_, t)| t),
                "{}",
                m.as_str()
            );
        }
    }
}
