//! cgroup-bpf cells of the kernel backend: effective arrays timed from the leaf of a cgroup
//! path against the same path with no program, attach/detach at a cgroup with K descendants,
//! and the kernel memory of effective arrays.

use super::{kernel_samples, KernelBackend, KernelMechanism, NAME};
use crate::backend::{
    cell_from_sets, check_program_runs, interleaved, plain_cell, worker_failure, CellError, CellSpec, Measured,
};
use hookbench_measure::SampleSet;
use hookbench_model::{Body, Params};
use hookbench_reports::Accounting;
use hookbench_workloads::cgroup_bpf::{
    wide_subtree, AttachBench, CgroupBpfError, CgroupBpfTree, CgroupProgram, WideSubtree,
};
use hookbench_workloads::lsm::LsmAttachBench;
use hookbench_workloads::sock_worker::{SockReport, SockRequest, SockWorker};
use hookbench_workloads::trigger::Trigger;
use std::path::Path;

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
        };
        hookbench_workloads::worker::spawn::<SockWorker>(&self.exe, &req).map_err(|e| worker_failure("socket", e))
    }

    /// A hook cell: N `cgroup/sock_create` programs (and `foreign` ones on other attach types)
    /// over a path of `depth` cgroups, against a path of the same depth with none; workers in
    /// the two leaves alternate. With the counter body every program must have run once per
    /// `socket()` of the cell's workers, and no foreign one ever.
    pub(super) fn cgroup_bpf_hook_cell(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let mechanism = KernelMechanism::CgroupBpf;
        Self::one_task_one_cpu(mechanism, spec, true)?;
        let p = spec.params;
        let depth = p.depth.max(1);
        let run = self.run_tree()?;
        let empty = CgroupBpfTree::build(run, depth, 0, 0, p.body).map_err(|e| CellError::Skip(e.to_string()))?;
        let tree = CgroupBpfTree::build(run, depth, p.programs, p.foreign, p.body)
            .map_err(|e| CellError::Skip(e.to_string()))?;
        let mut calls = 0u64;
        let (base, cell) = interleaved(
            spec.seed,
            spec.repetitions,
            |baseline| -> Result<SampleSet, CellError> {
                if baseline {
                    Ok(self.sock_worker(empty.leaf(), Trigger::Socket, None, spec)?.samples)
                } else {
                    let r = self.sock_worker(tree.leaf(), Trigger::Socket, None, spec)?;
                    calls += r.calls;
                    Ok(r.samples)
                }
            },
        )?;
        let counters = if p.body == Body::Counter {
            Some(
                tree.counter_sums()
                    .map_err(|e| CellError::Skip(format!("cgroup-bpf: reading the counter programs: {e}")))?,
            )
        } else {
            None
        };
        drop((tree, empty));
        let params = Params {
            tasks: 1,
            cgroups: depth,
            ..p
        };
        let mut m = cell_from_sets(spec, NAME, mechanism.as_str(), params, "hook_latency_ns", &cell, &base)?;
        if let Some((own, foreign)) = counters {
            let expected = calls * u64::from(p.programs);
            let observed = own + foreign;
            check_program_runs(&mut m.cell, expected, observed, "cgroup-bpf counter bodies");
        }
        m.cell.accounting = Some(Accounting {
            nodes_visited: u64::from(p.programs),
            programs_run: u64::from(p.programs),
            handles_checked: 0,
            map_lookups: 0,
        });
        Ok(vec![m])
    }

    /// A subtree with `p.cgroups` descendants to attach at, and an attach bench for one program
    /// of `p.body` (cgroup-bpf's or, with [`LsmAttachBench`], `lsm_cgroup`'s) that keeps one link
    /// in a sibling cgroup (so the kernel's one-off work of a hook's first program, the static
    /// key or the trampoline shim, stays done).
    fn attach_point<P: CgroupProgram>(&mut self, p: &Params) -> Result<(WideSubtree, AttachBench<P>), CellError> {
        let skip = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let run = self.run_tree()?;
        let sub = wide_subtree(run, p.cgroups).map_err(skip)?;
        let keeper = wide_subtree(run, 0).map_err(skip)?;
        let mut bench = AttachBench::<P>::new(p.body).map_err(skip)?;
        bench.keep_attached_at(&keeper.top).map_err(skip)?;
        Ok((sub, bench))
    }

    /// Attach and detach latency of one `cgroup/sock_create` program (cgroup-bpf) or one
    /// `lsm_cgroup/socket_create` program (lsm-cgroup) at the top of a subtree with `cgroups`
    /// descendants (ALLOW_MULTI, so every descendant's effective array is recomputed), with the
    /// same program kept attached in a sibling cgroup so that the kernel's one-off work of a
    /// first program is not part of the figure.
    pub(super) fn cgroup_attach_cells(
        &mut self,
        mechanism: KernelMechanism,
        spec: &CellSpec<'_>,
    ) -> Result<Vec<Measured>, CellError> {
        if mechanism == KernelMechanism::LsmCgroup {
            let (sub, bench): (WideSubtree, LsmAttachBench) = self.attach_point(&spec.params)?;
            time_cgroup_attach(mechanism, spec, &sub, bench)
        } else {
            let (sub, bench): (WideSubtree, AttachBench) = self.attach_point(&spec.params)?;
            time_cgroup_attach(mechanism, spec, &sub, bench)
        }
    }

    /// Kernel memory of cgroup-bpf's dispatch metadata, measured as a delta of the slab total
    /// (/proc/meminfo `Slab:`) before and after attaching `programs` links at the top of a
    /// subtree of `cgroups` descendants with ALLOW_MULTI (every descendant gets a new effective
    /// array: `bpf_prog_array_alloc` in `compute_effective_progs`). Each repetition is one
    /// sample; the fit over `cgroups` is the figure to read (bytes per cgroup).
    pub(super) fn cgroup_bpf_metadata_cell(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        let programs = p.programs.clamp(1, 64);
        let (sub, mut bench): (WideSubtree, AttachBench) = self.attach_point(&p)?;
        let fail = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let mut deltas = Vec::with_capacity(spec.repetitions.max(3));
        for _ in 0..spec.repetitions.max(3) {
            let before = slab_bytes()?;
            for _ in 0..programs {
                bench.attach_one_at(&sub.top).map_err(fail)?;
            }
            let after = slab_bytes()?;
            while let Some(r) = bench.detach_last() {
                r.map_err(fail)?;
            }
            deltas.push((after - before) as f64);
        }
        drop(bench);
        // `hooks` and `tasks` do not enter (one attach type, no tasks) but stay in the params so
        // every point of the suite's sweep keeps its own cell id.
        let params = Params { programs, ..p };
        let m = plain_cell(
            spec,
            NAME,
            KernelMechanism::CgroupBpf.as_str(),
            params,
            "metadata_bytes",
            "bytes",
            &[deltas],
        )?;
        Ok(vec![m])
    }
}

/// [`KernelBackend::cgroup_attach_cells`] with the subtree and bench of one kind of program.
fn time_cgroup_attach<P: CgroupProgram>(
    mechanism: KernelMechanism,
    spec: &CellSpec<'_>,
    sub: &WideSubtree,
    mut bench: AttachBench<P>,
) -> Result<Vec<Measured>, CellError> {
    let fail = |e: CgroupBpfError| CellError::Skip(e.to_string());
    let samples = kernel_samples(spec);
    let warmup = (samples / 10).clamp(1, 20);
    for _ in 0..warmup {
        bench.attach_one_at(&sub.top).map_err(fail)?;
        if let Some(r) = bench.detach_last() {
            r.map_err(fail)?;
        }
    }
    let (mut attach, mut detach): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    for _ in 0..spec.repetitions.max(1) {
        let (mut a, mut d) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        for _ in 0..samples {
            a.push(bench.attach_one_at(&sub.top).map_err(fail)?.as_nanos() as f64);
            match bench.detach_last() {
                Some(r) => d.push(r.map_err(fail)?.as_nanos() as f64),
                None => return Err(CellError::Fatal(anyhow::anyhow!("attach left nothing to detach"))),
            }
        }
        attach.push(a);
        detach.push(d);
    }
    drop(bench);
    let params = Params {
        tasks: 0,
        ..spec.params
    };
    let mut out = Vec::with_capacity(2);
    for (metric, reps) in [("attach_latency_ns", &attach), ("detach_latency_ns", &detach)] {
        let mut m = plain_cell(spec, NAME, mechanism.as_str(), params, metric, "ns", reps)?;
        m.cell.batch_k = Some(1);
        out.push(m);
    }
    Ok(out)
}

/// The kernel's slab memory now, bytes (`Slab:` of /proc/meminfo, which the kernel gives in kB).
fn slab_bytes() -> Result<i64, CellError> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| CellError::Skip(format!("cannot read /proc/meminfo: {e}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| CellError::Skip("no Slab: line in /proc/meminfo".to_string()))
}
