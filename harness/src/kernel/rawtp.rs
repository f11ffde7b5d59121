//! Raw tracepoint cells of the kernel backend: one global `sys_enter` program per cell (claim 3).
//!
//! The program finds whether it applies to the current task by a loop over H cgroup handles
//! or by one cgroup-id lookup in a map of H ids (`hookbench_workloads::rawtp`), and is timed on
//! `getppid()` from a worker in the last handle (the loop's worst case) or, for the `-outside`
//! mechanisms, from a worker in none of them (what every other task pays). The baseline is the
//! same worker in the same cgroup with nothing attached. The handles are made for the cell
//! inside the run's subtree and removed after it; the program is attached only inside the
//! worker that measures, so it never outlives the worker, even a killed one.

use super::{KernelBackend, KernelMechanism, NAME};
use crate::backend::{
    cell_from_sets, check_program_runs, interleaved, note_validity, worker_failure, CellError, CellSpec, Measured,
};
use hookbench_model::{Body, Params};
use hookbench_reports::Accounting;
use hookbench_workloads::rawtp::{HandleCgroups, HandleDispatch, RawTpProgram, RawTpReport, RawTpRequest, RawTpWorker};
use std::path::Path;

impl KernelMechanism {
    /// A raw tracepoint mechanism's dispatch, and whether its worker sits in a handle (the last).
    ///
    /// `None` for the other mechanisms.
    pub(super) fn rawtp(self) -> Option<(HandleDispatch, bool)> {
        match self {
            KernelMechanism::RawtpHandleLoop => Some((HandleDispatch::HandleLoop, true)),
            KernelMechanism::RawtpCgroupIdMap => Some((HandleDispatch::CgroupIdMap, true)),
            KernelMechanism::RawtpHandleLoopOutside => Some((HandleDispatch::HandleLoop, false)),
            KernelMechanism::RawtpCgroupIdMapOutside => Some((HandleDispatch::CgroupIdMap, false)),
            _ => None,
        }
    }
}

impl KernelBackend {
    /// One raw tracepoint worker in `home` over `handles`, attaching `program` if any.
    fn rawtp_worker(
        &self,
        handles: &HandleCgroups,
        home: &Path,
        program: Option<RawTpProgram>,
        spec: &CellSpec<'_>,
    ) -> Result<RawTpReport, CellError> {
        let req = RawTpRequest {
            handles_dir: handles.dir().to_path_buf(),
            handles: handles.handles(),
            home: home.to_path_buf(),
            program,
            timing: self.timing_for(spec),
        };
        hookbench_workloads::worker::spawn::<RawTpWorker>(&self.exe, &req)
            .map_err(|e| worker_failure("raw tracepoint", e))
    }

    /// A hook cell of a raw tracepoint mechanism: one global program over H = `cgroups` handles.
    ///
    /// Timed against the same worker with nothing attached, repetition by repetition. With the
    /// counter body the program's counter is checked: once per `getppid()` of the worker in the
    /// last handle, never for the worker outside (the other bodies leave no count to check).
    pub(super) fn rawtp_hook_cell(
        &mut self,
        mechanism: KernelMechanism,
        spec: &CellSpec<'_>,
    ) -> Result<Vec<Measured>, CellError> {
        Self::one_task_one_cpu(mechanism, spec, false)?;
        let name = mechanism.as_str();
        let (dispatch, targeted) = mechanism
            .rawtp()
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("{name} is not a raw tracepoint mechanism")))?;
        let p = spec.params;
        if p.programs != 1 || p.cgroups == 0 {
            return Err(CellError::Skip(format!(
                "{name} measures one global program over cgroups >= 1 handles: programs = {}, cgroups = {} are not \
                 measured by this version",
                p.programs, p.cgroups
            )));
        }
        let handles = HandleCgroups::build(self.run_tree()?, p.cgroups)
            .map_err(|e| CellError::Skip(format!("{name}: the {} handle cgroups: {e}", p.cgroups)))?;
        let home = match (targeted, handles.last()) {
            (true, Some(last)) => last,
            _ => handles.outside().to_path_buf(),
        };
        let program = RawTpProgram { dispatch, body: p.body };
        let (mut calls, mut counted) = (0u64, 0u64);
        let measured = interleaved(spec.seed, spec.repetitions, |baseline| {
            let r = self.rawtp_worker(&handles, &home, (!baseline).then_some(program), spec)?;
            if !baseline {
                calls += r.calls;
                counted += r.counter.unwrap_or(0);
            }
            Ok(r.samples)
        });
        // Every worker has exited (and its program gone with it): the handles can go.
        let removed = handles.teardown();
        let (base, cell) = measured?;
        removed.map_err(|e| CellError::Fatal(anyhow::anyhow!("removing the handle cgroups of {name}: {e}")))?;
        let params = Params {
            tasks: 1,
            depth: 1,
            ..p
        };
        let mut m = cell_from_sets(spec, NAME, name, params, "hook_latency_ns", &cell, &base)?;
        if p.body == Body::Counter {
            let expected = if targeted { calls } else { 0 };
            check_program_runs(&mut m.cell, expected, counted, "raw tracepoint counter body");
        } else {
            note_validity(
                &mut m.cell,
                "programs ran: not checked (only the counter body counts its runs; a sys_enter program's run_cnt \
                 counts every task's syscalls)"
                    .to_string(),
            );
        }
        let looped = dispatch == HandleDispatch::HandleLoop;
        m.cell.accounting = Some(Accounting {
            nodes_visited: 1,
            programs_run: u64::from(targeted),
            // The worker is in the last handle or in none: the loop compares all H either way.
            handles_checked: if looped { u64::from(p.cgroups) } else { 0 },
            map_lookups: u64::from(!looped),
        });
        Ok(vec![m])
    }
}
