//! BPF LSM cells of the kernel backend: `lsm_cgroup` effective arrays and global `lsm`
//! programs behind the `socket_create` trampoline, against the same cgroup path with none.

use super::{one_task_hook_cell, KernelBackend, KernelMechanism};
use crate::backend::{check_program_runs, interleaved, CellError, CellSpec, Cells};
use hookbench_measure::SampleSet;
use hookbench_model::Body;
use hookbench_reports::Accounting;
use hookbench_workloads::lsm::{GlobalLsmRequest, LsmCgroupTree, MAX_GLOBAL_PROGRAMS};
use hookbench_workloads::trigger::Trigger;

impl KernelBackend {
    /// A hook cell of a BPF LSM mechanism: N programs against none, workers alternating.
    ///
    /// The baseline is a path of the same depth with no program (for global programs, no program
    /// attached). With the counter body every program's count is checked: once per `socket()` of
    /// the cell's workers (for `lsm-global-unmarked`: never).
    pub(super) fn lsm_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let p = spec.params;
        if mechanism != KernelMechanism::LsmCgroup && p.programs > MAX_GLOBAL_PROGRAMS {
            return Err(CellError::Skip(format!(
                "{}: {} global programs on one hook: a BPF trampoline holds at most BPF_MAX_TRAMP_LINKS = \
                 {MAX_GLOBAL_PROGRAMS} (kernel/bpf/trampoline.c: bpf_trampoline_link_prog returns E2BIG)",
                mechanism.as_str(),
                p.programs
            )));
        }
        let depth = p.depth.max(1);
        let skip = |e: hookbench_workloads::cgroup_bpf::CgroupBpfError| {
            CellError::Skip(format!("{}: {e}", mechanism.as_str()))
        };
        let run = self.run_tree()?;
        let empty = LsmCgroupTree::build(run, depth, 0, p.body).map_err(skip)?;
        let with = if mechanism == KernelMechanism::LsmCgroup {
            LsmCgroupTree::build(run, depth, p.programs, p.body).map_err(skip)?
        } else {
            LsmCgroupTree::build(run, depth, 0, p.body).map_err(skip)?
        };
        let mark_self = mechanism == KernelMechanism::LsmGlobal;
        let global = (mechanism != KernelMechanism::LsmCgroup && p.programs > 0).then_some(GlobalLsmRequest {
            programs: p.programs,
            body: p.body,
            mark_self,
        });
        let mut calls = 0u64;
        let mut global_counts: Vec<u64> = Vec::new();
        let (base, cell) = interleaved(
            spec.seed,
            spec.repetitions,
            |baseline| -> Result<SampleSet, CellError> {
                if baseline {
                    return Ok(self.sock_worker(empty.leaf(), Trigger::Socket, None, spec)?.samples);
                }
                let r = self.sock_worker(with.leaf(), Trigger::Socket, global, spec)?;
                calls += r.calls;
                global_counts.resize(r.counters.len().max(global_counts.len()), 0);
                for (sum, c) in global_counts.iter_mut().zip(&r.counters) {
                    *sum += c;
                }
                Ok(r.samples)
            },
        )?;
        let cgroup_counts = if mechanism == KernelMechanism::LsmCgroup && p.body == Body::Counter {
            Some(with.counters().map_err(skip)?)
        } else {
            None
        };
        drop((with, empty));
        let mut m = one_task_hook_cell(spec, mechanism, depth, &cell, &base)?;
        let n = u64::from(p.programs);
        if p.body == Body::Counter && n > 0 {
            let (expected, observed) = match (cgroup_counts, mechanism) {
                (Some(c), _) => (calls * n, c.iter().sum()),
                (None, KernelMechanism::LsmGlobal) => (calls * n, global_counts.iter().sum()),
                _ => (0, global_counts.iter().sum()),
            };
            check_program_runs(&mut m.cell, expected, observed, "BPF LSM counter bodies");
        }
        let bodies = if mechanism == KernelMechanism::LsmGlobalUnmarked {
            0
        } else {
            n
        };
        m.cell.accounting = Some(Accounting {
            nodes_visited: n,
            programs_run: bodies,
            handles_checked: 0,
            map_lookups: if mechanism == KernelMechanism::LsmCgroup { 0 } else { n },
        });
        Ok(vec![m])
    }
}
