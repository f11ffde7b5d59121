//! cgroup-bpf cells of the kernel backend: hook latency and attach/detach latency.
//!
//! Effective arrays are timed from the leaf of a cgroup path against the same path with no
//! program (`cgroup/getsockname4` on `getsockname()`, or
//! `cgroup/sock_create` on `socket()`), checked afterwards by an untimed pass with the kernel's
//! run statistics on; attach/detach at a cgroup with K descendants, timed in the attach worker
//! beside the C attach floor. Their kernel memory is `metadata.rs`'s.

use super::{every_node_runs, family_part, kernel_samples, one_task_hook_cell, KernelBackend, KernelMechanism, NAME};
use crate::backend::{
    cell_from_sets, check_program_runs, interleaved, note_validity, worker_failure, CellError, CellSpec, Cells,
    Measured,
};
use hookbench_bpf::{MeasuredHook, RunStats};
use hookbench_measure::SampleSet;
use hookbench_model::{Body, Params};
use hookbench_sys::release::kernel_release;
use hookbench_workloads::attach_worker::{
    install_attach_floor, run_attach_floor, AttachProgram, AttachReport, AttachRequest, AttachWorker, FloorRequest,
};
use hookbench_workloads::cgroup_bpf::{wide_subtree, CgroupBpfError, CgroupBpfTree, WideSubtree};
use hookbench_workloads::sock_worker::{SockReport, SockRequest, SockWorker};
use hookbench_workloads::trigger::Trigger;
use std::path::{Path, PathBuf};

/// Triggers fired by the untimed run-count pass after a cgroup-bpf cell's timed samples.
pub const RUN_COUNT_FIRES: u64 = 1000;

impl KernelMechanism {
    /// The measured hook and the trigger of a cgroup-bpf mechanism, `None` for the others.
    pub(super) fn cgroup_hook(self) -> Option<(MeasuredHook, Trigger)> {
        match self {
            KernelMechanism::CgroupBpf => Some((MeasuredHook::Getsockname4, Trigger::Getsockname)),
            KernelMechanism::CgroupBpfSocket => Some((MeasuredHook::SockCreate, Trigger::Socket)),
            _ => None,
        }
    }
}

/// What the untimed run-count pass of a cgroup-bpf cell found.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCount {
    /// Run statistics were on for `calls` triggers, and counted the programs' runs.
    ///
    /// The measured and foreign programs ran `observed` times in all, `expected` = calls x
    /// programs (foreign programs: never).
    Counted {
        /// Triggers fired.
        calls: u64,
        /// Runs expected.
        expected: u64,
        /// Runs the kernel counted (`run_cnt` deltas).
        observed: u64,
    },
    /// The pass could not count: why (e.g. `BPF_ENABLE_STATS` refused).
    Unavailable(String),
}

/// Records `runs` in `cell`: a count is checked, an unavailable one is noted without a flag.
///
/// A count that differs from the expected one flags `programs-not-run`; an unavailable one is
/// said in the validity notes.
pub fn record_run_count(cell: &mut hookbench_reports::Cell, runs: &RunCount) {
    match runs {
        RunCount::Counted {
            calls,
            expected,
            observed,
        } => {
            check_program_runs(
                cell,
                *expected,
                *observed,
                "cgroup-bpf run_cnt (BPF_ENABLE_STATS, untimed pass)",
            );
            note_validity(
                cell,
                format!(
                    "programs ran: checked with the kernel's run statistics (BPF_ENABLE_STATS, bpf_prog_info.run_cnt) \
                     over {calls} untimed triggers after the timed samples: {observed} runs, {expected} expected"
                ),
            );
        }
        RunCount::Unavailable(why) => note_validity(cell, format!("programs ran: not checked by run_cnt: {why}")),
    }
}

impl KernelBackend {
    /// One socket worker in `cgroup`, with the global BPF LSM programs of `global_lsm` if any.
    pub(super) fn sock_worker(
        &self,
        cgroup: &Path,
        trigger: Trigger,
        global_lsm: Option<hookbench_workloads::lsm::GlobalLsmRequest>,
        spec: &CellSpec<'_>,
    ) -> Result<SockReport, CellError> {
        let req = SockRequest {
            cgroup: cgroup.to_path_buf(),
            trigger,
            timing: self.timing_for(spec),
            global_lsm,
            fire: None,
        };
        hookbench_workloads::worker::spawn::<SockWorker>(&self.exe, &req).map_err(|e| worker_failure("socket", e))
    }

    /// The untimed run-count pass: how often the kernel ran every program of `tree`.
    ///
    /// It turns the kernel's run statistics on (`BPF_ENABLE_STATS`, held only for this pass:
    /// statistics add two clock reads to every program run), fires [`RUN_COUNT_FIRES`] triggers
    /// from a socket worker in the tree's leaf, turns them off and reads every program's
    /// `run_cnt` delta. The measured programs must have run once per trigger each, the foreign
    /// ones never.
    fn run_count_pass(&self, tree: &CgroupBpfTree, trigger: Trigger, spec: &CellSpec<'_>) -> RunCount {
        let before = match tree.run_count_sums() {
            Ok(b) => b,
            Err(e) => return RunCount::Unavailable(e.to_string()),
        };
        let stats = match RunStats::enable() {
            Ok(s) => s,
            Err(e) => return RunCount::Unavailable(e.to_string()),
        };
        let req = SockRequest {
            cgroup: tree.leaf().to_path_buf(),
            trigger,
            timing: self.timing_for(spec),
            global_lsm: None,
            fire: Some(RUN_COUNT_FIRES),
        };
        let fired = hookbench_workloads::worker::spawn::<SockWorker>(&self.exe, &req);
        drop(stats);
        let fired = match fired {
            Ok(r) => r,
            Err(e) => return RunCount::Unavailable(format!("the run-count worker failed: {e}")),
        };
        match tree.run_count_sums() {
            Ok(after) => RunCount::Counted {
                calls: fired.calls,
                expected: fired.calls * tree.programs().len() as u64,
                observed: (after.0 - before.0) + (after.1 - before.1),
            },
            Err(e) => RunCount::Unavailable(e.to_string()),
        }
    }

    /// A hook cell of cgroup-bpf or cgroup-bpf-socket, with the programs' runs checked.
    ///
    /// cgroup-bpf has N `cgroup/getsockname4` programs, timed on `getsockname()`;
    /// cgroup-bpf-socket N `cgroup/sock_create` programs, timed on `socket()`; with `foreign`
    /// programs on other attach types, over a path of `depth` cgroups, against a path of the
    /// same depth with none; workers in the two leaves alternate. Then the run-count pass checks
    /// that every program ran once per trigger and no foreign one ever, whatever the body; with
    /// the counter body the counters of the timed workers are checked too.
    pub(super) fn cgroup_bpf_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let (hook, trigger) = family_part(mechanism, mechanism.cgroup_hook(), "cgroup-bpf")?;
        let p = spec.params;
        let depth = p.depth.max(1);
        let skip = |e: CgroupBpfError| CellError::Skip(hook_refused(mechanism, hook, &e));
        let run = self.run_tree()?;
        let empty = CgroupBpfTree::build(run, hook, depth, 0, 0, p.body).map_err(skip)?;
        let tree = CgroupBpfTree::build(run, hook, depth, p.programs, p.foreign, p.body).map_err(skip)?;
        let mut calls = 0u64;
        let (base, cell) = interleaved(
            spec.seed,
            spec.repetitions,
            |baseline| -> Result<SampleSet, CellError> {
                if baseline {
                    Ok(self.sock_worker(empty.leaf(), trigger, None, spec)?.samples)
                } else {
                    let r = self.sock_worker(tree.leaf(), trigger, None, spec)?;
                    calls += r.calls;
                    Ok(r.samples)
                }
            },
        )?;
        let counters =
            if p.body == Body::Counter {
                Some(tree.counter_sums().map_err(|e| {
                    CellError::Skip(format!("{}: reading the counter programs: {e}", mechanism.as_str()))
                })?)
            } else {
                None
            };
        let runs = self.run_count_pass(&tree, trigger, spec);
        drop((tree, empty));
        let mut m = one_task_hook_cell(spec, mechanism, depth, &cell, &base)?;
        record_run_count(&mut m.cell, &runs);
        if hookbench_bpf::stats_sysctl_enabled() == Some(true) {
            note_validity(
                &mut m.cell,
                "kernel.bpf_stats_enabled = 1: run statistics were on for every program run, timed ones too (two \
                 clock reads per run); `sysctl kernel.bpf_stats_enabled=0` for figures without them"
                    .to_string(),
            );
        }
        if let Some((own, foreign)) = counters {
            // The timed workers' own count, over every timed call: recorded last.
            let expected = calls * u64::from(p.programs);
            check_program_runs(
                &mut m.cell,
                expected,
                own + foreign,
                &format!("{} counter bodies", mechanism.as_str()),
            );
        }
        m.cell.accounting = Some(every_node_runs(u64::from(p.programs)));
        Ok(vec![m])
    }

    /// The C attach floor installed in this run's scratch directory (once), or why it cannot run.
    fn attach_floor(&mut self) -> Result<PathBuf, String> {
        if let Some(r) = &self.attach_floor {
            return r.clone();
        }
        let r = std::fs::create_dir_all(&self.scratch)
            .map_err(|e| format!("cannot create {}: {e}", self.scratch.display()))
            .and_then(|()| install_attach_floor(&self.scratch));
        self.attach_floor = Some(r.clone());
        r
    }

    /// One attach worker: `program` attached and detached at `sub`'s top, kept in `keeper`.
    fn attach_worker(
        &self,
        program: AttachProgram,
        sub: &WideSubtree,
        keeper: &WideSubtree,
        samples: usize,
        warmup: usize,
        spec: &CellSpec<'_>,
    ) -> Result<AttachReport, CellError> {
        let req = AttachRequest {
            program,
            body: spec.params.body,
            top: sub.top.clone(),
            keeper: keeper.top.clone(),
            warmup,
            timing: self.timing.request(samples, 0),
        };
        hookbench_workloads::worker::spawn::<AttachWorker>(&self.exe, &req).map_err(|e| worker_failure("attach", e))
    }

    /// Attach and detach latency of one program at the top of a subtree, beside the C floor.
    ///
    /// One `cgroup/getsockname4` program (cgroup-bpf), `cgroup/sock_create` program
    /// (cgroup-bpf-socket) or `lsm_cgroup/socket_create` program (lsm-cgroup) at the top of a
    /// subtree with `cgroups` descendants (ALLOW_MULTI, so every descendant's effective array is
    /// recomputed), timed in an attach worker that keeps the same program attached in a sibling
    /// cgroup (so the kernel's one-off work of a first program is not part of the figure). For
    /// cgroup-bpf and cgroup-bpf-socket, each worker run alternates (seeded order) with a run of
    /// the C attach floor on the same subtree: `<mechanism>-c` cells, the same syscalls with
    /// nothing around them; when the floor cannot run, its cells are skipped with the reason and
    /// the worker's are kept.
    pub(super) fn cgroup_attach_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let program = match mechanism {
            KernelMechanism::CgroupBpf => AttachProgram::Getsockname4,
            KernelMechanism::CgroupBpfSocket => AttachProgram::SockCreate,
            _ => AttachProgram::LsmCgroup,
        };
        let floor_name = format!("{}-c", mechanism.as_str());
        let floor = program
            .floor_arg()
            .map(|_| self.attach_floor().map_err(|why| format!("{floor_name}: {why}")));
        let skip = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let run = self.run_tree()?;
        let sub = wide_subtree(run, spec.params.cgroups).map_err(skip)?;
        let keeper = wide_subtree(run, 0).map_err(skip)?;
        let samples = kernel_samples(spec);
        let warmup = (samples / 10).clamp(1, 20);
        let mut worker_detach: Vec<SampleSet> = Vec::new();
        let (mut floor_attach, mut floor_detach): (Vec<SampleSet>, Vec<SampleSet>) = (Vec::new(), Vec::new());
        let mut floor_err: Option<String> = None;
        let worker_attach = match floor {
            Some(floor) => {
                let exe = floor.as_ref().ok().cloned();
                if let Err(why) = floor {
                    floor_err = Some(why);
                }
                let floor_req = FloorRequest {
                    program,
                    top: sub.top.clone(),
                    keeper: keeper.top.clone(),
                    samples,
                    warmup,
                    cpu: self.timing.cpu,
                };
                let (fa, wa) = interleaved(spec.seed, spec.repetitions, |is_floor| {
                    if !is_floor {
                        let r = self.attach_worker(program, &sub, &keeper, samples, warmup, spec)?;
                        worker_detach.push(r.detach);
                        return Ok(r.attach);
                    }
                    let (Some(exe), None) = (&exe, &floor_err) else {
                        return Ok(SampleSet::empty());
                    };
                    match run_attach_floor(exe, &floor_req) {
                        Ok(r) => {
                            let (a, d) = r.sample_sets();
                            floor_detach.push(d);
                            Ok(a)
                        }
                        Err(e) => {
                            floor_err = Some(format!("{floor_name}: the C attach floor failed: {e}"));
                            Ok(SampleSet::empty())
                        }
                    }
                })?;
                floor_attach = fa;
                wa
            }
            None => {
                let mut attach = Vec::with_capacity(spec.repetitions.max(1));
                for _ in 0..spec.repetitions.max(1) {
                    let r = self.attach_worker(program, &sub, &keeper, samples, warmup, spec)?;
                    attach.push(r.attach);
                    worker_detach.push(r.detach);
                }
                attach
            }
        };
        let params = Params {
            tasks: 0,
            ..spec.params
        };
        let mut out = Vec::with_capacity(4);
        let own = [
            ("attach_latency_ns", &worker_attach),
            ("detach_latency_ns", &worker_detach),
        ];
        for (metric, sets) in own {
            out.push(attach_cell(spec, mechanism.as_str(), params, metric, sets)?);
        }
        match floor_err {
            Some(why) => self.skipped.push((floor_name, why)),
            None if !floor_attach.is_empty() => {
                let floor_cells = [
                    ("attach_latency_ns", &floor_attach),
                    ("detach_latency_ns", &floor_detach),
                ];
                for (i, (metric, sets)) in floor_cells.into_iter().enumerate() {
                    let mut m = attach_cell(spec, &floor_name, params, metric, sets)?;
                    note_validity(
                        &mut m.cell,
                        "the C attach floor (workloads/c/attach_floor.c): BPF_LINK_CREATE and BPF_LINK_DETACH with \
                         raw bpf(2) and a two-instruction program, CLOCK_MONOTONIC_RAW less its read pair, runs \
                         alternating with the worker's"
                            .to_string(),
                    );
                    let ratio = out[i].cell.p50 / m.cell.p50;
                    if ratio.is_finite() {
                        note_validity(
                            &mut out[i].cell,
                            format!("median {ratio:.2}x the C floor's ({floor_name}, same subtree, alternating runs)"),
                        );
                    }
                    out.push(m);
                }
            }
            None => {}
        }
        Ok(out)
    }
}

/// The reason a cgroup-bpf tree on `hook` could not be built, with what to do about it.
///
/// On a kernel that lacks the attach type, the reason says which mechanism measures instead.
fn hook_refused(mechanism: KernelMechanism, hook: MeasuredHook, e: &CgroupBpfError) -> String {
    let (major, minor) = hook.min_kernel();
    let old = hookbench_sys::release::parse_release(&kernel_release()).is_some_and(|release| release < (major, minor));
    if old && hook == MeasuredHook::Getsockname4 {
        format!(
            "{}: {} needs Linux {major}.{minor} or later (this kernel: {}): cgroup-bpf-socket measures \
             cgroup/sock_create on socket() instead; {e}",
            mechanism.as_str(),
            hook.section(),
            kernel_release()
        )
    } else {
        format!("{}: {e}", mechanism.as_str())
    }
}

/// An attach or detach cell from one sample set per run (K = 1, no baseline).
fn attach_cell(
    spec: &CellSpec<'_>,
    mechanism: &str,
    params: Params,
    metric: &str,
    sets: &[SampleSet],
) -> Result<Measured, CellError> {
    let mut m = cell_from_sets(spec, NAME, mechanism, params, metric, sets, &[])?;
    m.cell.batch_k = Some(1);
    m.cell.throughput_hooks_per_sec = None;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh cell with `runs` recorded.
    fn recorded(runs: RunCount) -> hookbench_reports::Cell {
        let mut cell = super::super::blank_test_cell(
            include_str!("../../../suites/programs.toml"),
            "programs.toml",
            "cgroup-bpf",
        );
        record_run_count(&mut cell, &runs);
        cell
    }

    /// 1,000 calls of four programs, of which the kernel counted `observed` runs.
    fn counted(observed: u64) -> RunCount {
        RunCount::Counted {
            calls: 1000,
            expected: 4000,
            observed,
        }
    }

    #[test]
    fn run_counts_are_checked_and_their_absence_is_said_without_a_flag() {
        let c = recorded(counted(4000));
        assert_eq!(c.validity.program_runs, Some([4000, 4000]));
        assert!(c.validity.flags.is_empty(), "{:?}", c.validity.flags);
        assert!(c.validity.notes[0].contains("run_cnt"), "{:?}", c.validity.notes);

        let c = recorded(counted(3000));
        assert_eq!(c.validity.flags.len(), 1);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");

        let c = recorded(RunCount::Unavailable(
            "BPF_ENABLE_STATS (BPF_STATS_RUN_TIME) failed: EPERM".to_string(),
        ));
        assert!(c.validity.flags.is_empty());
        assert_eq!(c.validity.program_runs, None);
        assert!(
            c.validity.notes[0].starts_with("programs ran: not checked by run_cnt: BPF_ENABLE_STATS"),
            "{:?}",
            c.validity.notes
        );
    }
}
