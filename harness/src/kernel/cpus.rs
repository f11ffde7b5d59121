//! Many-CPU cells of the kernel backend: P tasks pinned to P CPUs fire getsockname() at once.
//!
//! The `scaling` suite's `cpus` axis on the running kernel (`seccomp-cpus-own`,
//! `seccomp-cpus-shared`, `cgroup-bpf-cpus-own`, `cgroup-bpf-cpus-shared`). Each repetition runs
//! a cpus worker (`hookbench worker cpus`, [`hookbench_workloads::cpus`]): an exec'd process
//! that forks P tasks, one pinned to each of P CPUs, released together, each timing its own
//! batches of `getsockname()`. Own: each task has its own chain of N filters or its own cgroup
//! with N programs; shared: all run under one chain inherited from the worker (one refcounted
//! `struct seccomp_filter` list) or in one cgroup (one effective array). The baseline is the same
//! P tasks with no filter or program, the repetitions interleaved
//! ([`crate::backend::interleaved`]). The cell pools every CPU's samples (per-call latency on one
//! CPU, raw), keeps each CPU's own percentiles (`per_cpu`) and the throughput summed over CPUs.
//!
//! What the kernel shares between the CPUs: the shared chain's filters (read on every call, a
//! reference taken only at fork and exit) and the shared effective array (read under RCU, no
//! write per call); the own cases share nothing but the syscall path. Whether that shows is the
//! per-program slope at P against P = 1, own against shared (evidence-full.txt's `sharing`
//! lines). P above the CPUs this process may use is skipped with the limit named. The tasks live
//! in a cgroup tree of the run's subtree made for the cell and torn down after it.

use super::{every_node_runs, family_part, KernelBackend, KernelMechanism, NAME};
use crate::backend::{cell_from_sets, interleaved, note_validity, worker_failure, CellError, CellSpec, Cells};
use hookbench_model::Params;
use hookbench_reports::{CpuLatency, ValidityFlag};
use hookbench_workloads::cgroup_bpf::wide_subtree;
use hookbench_workloads::cgroupfs::RunTree;
use hookbench_workloads::cpus::{CpusChain, CpusReport, CpusRequest, CpusWorker, Sharing};
use std::path::PathBuf;

/// Most repetitions of a many-CPU cell, whatever the suite asks (each forks P tasks twice).
pub const MAX_CPUS_REPETITIONS: usize = 3;

/// Untimed `getsockname()` calls per task in the run-count pass of a cgroup-bpf cell.
pub const CPUS_COUNT_FIRES: u64 = 1000;

impl KernelMechanism {
    /// What the tasks of a many-CPU mechanism carry and whether they share it.
    pub(super) fn cpus_chain(self) -> Option<(CpusChain, Sharing)> {
        match self {
            KernelMechanism::SeccompCpusOwn => Some((CpusChain::Seccomp, Sharing::Own)),
            KernelMechanism::SeccompCpusShared => Some((CpusChain::Seccomp, Sharing::Shared)),
            KernelMechanism::CgroupBpfCpusOwn => Some((CpusChain::CgroupBpf, Sharing::Own)),
            KernelMechanism::CgroupBpfCpusShared => Some((CpusChain::CgroupBpf, Sharing::Shared)),
            _ => None,
        }
    }
}

/// The P CPUs of a cell: the run's worker CPU first, then the other allowed CPUs in order.
///
/// Errors: the reason, naming the limit, when fewer than P CPUs are allowed.
pub(super) fn choose_cpus(p: u32, allowed: &[usize], first: Option<u32>, online: usize) -> Result<Vec<u32>, String> {
    if p as usize > allowed.len() {
        return Err(format!(
            "cpus = {p} but this process may run on {} CPU(s) ({online} online; sched_getaffinity): one task \
             per CPU; run on a machine with more CPUs or without a taskset",
            allowed.len()
        ));
    }
    let mut cpus: Vec<u32> = first.filter(|c| allowed.contains(&(*c as usize))).into_iter().collect();
    cpus.extend(
        allowed
            .iter()
            .filter_map(|&c| u32::try_from(c).ok())
            .filter(|c| Some(*c) != first),
    );
    cpus.truncate(p as usize);
    Ok(cpus)
}

impl KernelBackend {
    /// A many-CPU hook cell: P pinned tasks with N filters or programs, against none.
    ///
    /// See the module documentation. The cell's `tasks` is P (`cgroups` P when own, 1 when
    /// shared, for cgroup-bpf).
    pub(super) fn cpus_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let (chain, sharing) = family_part(mechanism, mechanism.cpus_chain(), "many-CPU")?;
        let p = spec.params;
        if p.working_set != 1 || p.foreign != 0 {
            return Err(CellError::Skip(format!(
                "{}: one task per CPU with every program on the hook: working_set = {}, foreign = {} are not \
                 measured by this version",
                mechanism.as_str(),
                p.working_set,
                p.foreign
            )));
        }
        let allowed = hookbench_measure::pin::allowed_cpus()
            .map_err(|e| CellError::Skip(format!("{}: {e}", mechanism.as_str())))?;
        let online = crate::env::cpu::online_cpus(&mut Vec::new());
        let cpus = choose_cpus(p.cpus, &allowed, self.timing.cpu, online)
            .map_err(|why| CellError::Skip(format!("{}: {why}", mechanism.as_str())))?;
        let cgroups = chain == CpusChain::CgroupBpf || self.support.cgroup_bpf.is_ok();
        let mut tree = if cgroups {
            let root = self.run_tree()?.root().to_path_buf();
            Some(
                RunTree::create_under(&root)
                    .map_err(|e| CellError::Skip(format!("{}: making the cell's cgroups: {e}", mechanism.as_str())))?,
            )
        } else {
            None
        };
        let made = tree.as_mut().map(|t| -> Result<(PathBuf, Option<PathBuf>), String> {
            let home = t.child("home").map_err(|e| e.to_string())?;
            let slots = (chain == CpusChain::CgroupBpf)
                .then(|| wide_subtree(t, p.cpus).map(|w| w.top))
                .transpose()
                .map_err(|e| e.to_string())?;
            Ok((home, slots))
        });
        let measured = match made {
            Some(Err(e)) => Err(CellError::Skip(format!(
                "{}: making the cell's cgroups: {e}",
                mechanism.as_str()
            ))),
            Some(Ok((home, slots))) => self.cpus_runs(chain, sharing, &cpus, spec, Some(home), slots),
            None => self.cpus_runs(chain, sharing, &cpus, spec, None, None),
        };
        if let Some(t) = tree {
            if let Err(e) = t.teardown() {
                eprintln!("hookbench: warning: tearing down a many-CPU cell's cgroups: {e}; run `hookbench cleanup`");
            }
        }
        let (base, cell) = measured?;
        let first = cell
            .first()
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("no cpus worker ran")))?;
        let sets = |r: &[CpusReport]| -> Vec<hookbench_measure::SampleSet> {
            r.iter()
                .flat_map(|r| r.tasks.iter().map(|t| t.samples.clone()))
                .collect()
        };
        let params = Params {
            tasks: p.cpus,
            cgroups: match (chain, sharing) {
                (CpusChain::CgroupBpf, Sharing::Own) => p.cpus,
                (CpusChain::CgroupBpf, Sharing::Shared) => 1,
                _ => 0,
            },
            ..p
        };
        let mut m = cell_from_sets(
            spec,
            NAME,
            mechanism.as_str(),
            params,
            "hook_latency_ns",
            &sets(&cell),
            &sets(&base),
        )?;
        m.cell.accounting = Some(every_node_runs(u64::from(p.programs)));
        m.cell.per_cpu = per_cpu(&cpus, &cell, &base);
        m.cell.throughput_hooks_per_sec = Some(m.cell.per_cpu.iter().map(|c| c.throughput_hooks_per_sec).sum());
        check_sharing(&mut m.cell, chain, sharing, first, p.programs);
        Ok(vec![m])
    }

    /// The interleaved cpus workers of a cell: the baseline reports, the cell reports.
    fn cpus_runs(
        &self,
        chain: CpusChain,
        sharing: Sharing,
        cpus: &[u32],
        spec: &CellSpec<'_>,
        home: Option<PathBuf>,
        slots: Option<PathBuf>,
    ) -> Result<(Vec<CpusReport>, Vec<CpusReport>), CellError> {
        let p = spec.params;
        let mut counted = false;
        let reps = spec.repetitions.clamp(1, MAX_CPUS_REPETITIONS);
        interleaved(spec.seed, reps, |baseline| {
            let count = !baseline && !counted && chain == CpusChain::CgroupBpf && p.programs > 0;
            counted |= count;
            let req = CpusRequest {
                chain,
                sharing,
                cpus: cpus.to_vec(),
                programs: if baseline { 0 } else { p.programs },
                home: home.clone(),
                slots: slots.clone(),
                timing: self.timing_for(spec),
                count_fires: count.then_some(CPUS_COUNT_FIRES),
            };
            hookbench_workloads::worker::spawn::<CpusWorker>(&self.exe, &req).map_err(|e| worker_failure("cpus", e))
        })
    }
}

/// Each CPU's percentiles and throughput over the repetitions, with its baseline's median.
fn per_cpu(cpus: &[u32], cell: &[CpusReport], base: &[CpusReport]) -> Vec<CpuLatency> {
    let values = |r: &[CpusReport], cpu: u32| -> Vec<f64> {
        r.iter()
            .flat_map(|r| r.tasks.iter().filter(|t| t.cpu == cpu))
            .flat_map(|t| t.samples.values_ns.iter().copied())
            .collect()
    };
    cpus.iter()
        .map(|&cpu| {
            let v = values(cell, cpu);
            let s = hookbench_measure::Summary::from_values_ns(&v);
            let b = values(base, cpu);
            let bs = (!b.is_empty()).then(|| hookbench_measure::Summary::from_values_ns(&b));
            CpuLatency {
                cpu,
                samples: v.len() as u64,
                mean: s.mean_ns,
                p50: s.p50_ns,
                p99: s.p99_ns,
                baseline_p50: bs.map(|b| b.p50_ns),
                throughput_hooks_per_sec: if s.mean_ns > 0.0 { 1e9 / s.mean_ns } else { 0.0 },
            }
        })
        .collect()
}

/// Records what the first cell worker checked: filters, one or P effective arrays, program runs.
fn check_sharing(cell: &mut hookbench_reports::Cell, chain: CpusChain, sharing: Sharing, r: &CpusReport, n: u32) {
    let p = r.tasks.len();
    let flag = |cell: &mut hookbench_reports::Cell, why: String| {
        cell.validity.flags.push(ValidityFlag {
            code: "programs-not-run".into(),
            why,
        })
    };
    match chain {
        CpusChain::Seccomp => {
            let seen: Vec<Option<u32>> = r.tasks.iter().map(|t| t.seccomp_filters).collect();
            if seen.iter().all(|s| *s == Some(n)) {
                let how = if sharing == Sharing::Shared {
                    format!(
                        "inherited from the worker, which installed them (its Seccomp_filters: {})",
                        r.installer_filters.map_or("unknown".into(), |f| f.to_string())
                    )
                } else {
                    "each installed by the task itself".to_string()
                };
                note_validity(
                    cell,
                    format!("filters: each of the {p} tasks showed Seccomp_filters: {n}, {how}"),
                );
            } else {
                flag(
                    cell,
                    format!("the tasks showed Seccomp_filters {seen:?}, {n} expected each"),
                );
            }
        }
        CpusChain::CgroupBpf => {
            let mut arrays: Vec<&Vec<u32>> = r.effective_ids.iter().collect();
            arrays.sort();
            arrays.dedup();
            let expect_arrays = if sharing == Sharing::Shared || n == 0 { 1 } else { p };
            let cgroups: std::collections::BTreeSet<&str> = r.tasks.iter().map(|t| t.cgroup.as_str()).collect();
            let expect_cgroups = if sharing == Sharing::Shared { 1 } else { p };
            if arrays.len() == expect_arrays
                && cgroups.len() == expect_cgroups
                && r.effective_ids.iter().all(|a| a.len() == n as usize)
            {
                note_validity(
                    cell,
                    format!(
                        "effective arrays: the {p} tasks were in {} cgroup(s) whose getsockname4 effective arrays \
                         held {n} programs each, {} distinct array(s) (BPF_PROG_QUERY, BPF_F_QUERY_EFFECTIVE)",
                        cgroups.len(),
                        arrays.len()
                    ),
                );
            } else {
                flag(
                    cell,
                    format!(
                        "the {p} tasks were in {} cgroup(s) with {} distinct effective array(s) of sizes {:?}; \
                         {expect_cgroups} cgroup(s), {expect_arrays} array(s) of {n} expected",
                        cgroups.len(),
                        arrays.len(),
                        r.effective_ids.iter().map(Vec::len).collect::<Vec<_>>()
                    ),
                );
            }
            match &r.run_counts {
                Some(Ok(sets)) => {
                    let expected: u64 = sets.iter().map(|s| s.expected).sum();
                    let observed: u64 = sets.iter().map(|s| s.observed).sum();
                    crate::backend::check_program_runs(cell, expected, observed, "cgroup-bpf run_cnt per set");
                    let bad: Vec<String> = sets
                        .iter()
                        .filter(|s| s.expected != s.observed)
                        .map(|s| format!("tasks {:?}: {} runs, {} expected", s.tasks, s.observed, s.expected))
                        .collect();
                    if bad.is_empty() {
                        note_validity(
                            cell,
                            format!(
                                "programs ran: {} set(s) of {n} programs, each counted exactly its tasks' {} untimed \
                                 calls x {n} (BPF_ENABLE_STATS, run_cnt)",
                                sets.len(),
                                CPUS_COUNT_FIRES
                            ),
                        );
                    } else if !cell.validity.flags.iter().any(|f| f.code == "programs-not-run") {
                        flag(cell, format!("program runs per set differ: {}", bad.join("; ")));
                    }
                }
                Some(Err(why)) => note_validity(cell, format!("programs ran: not checked by run_cnt: {why}")),
                None => {}
            }
        }
    }
    let migrated: u64 = r.tasks.iter().map(|t| t.samples.cpu_migrations).sum();
    note_validity(
        cell,
        format!(
            "{p} tasks pinned to CPUs {:?}, released together; each kept firing untimed until all had timed \
             ({migrated} CPU migrations in the first worker); set-up {:.2} s",
            r.tasks.iter().map(|t| t.cpu).collect::<Vec<_>>(),
            r.setup_s
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_beyond_the_allowed_ones_are_refused_naming_the_limit_and_the_worker_cpu_comes_first() {
        let e = choose_cpus(2, &[0], Some(0), 2).expect_err("one CPU allowed");
        assert!(
            e.contains("cpus = 2") && e.contains("1 CPU(s)") && e.contains("2 online"),
            "{e}"
        );
        assert_eq!(choose_cpus(2, &[0, 1, 2], Some(2), 3), Ok(vec![2, 0]));
        assert_eq!(choose_cpus(1, &[0, 1], Some(1), 2), Ok(vec![1]));
        assert_eq!(choose_cpus(2, &[0, 1], None, 2), Ok(vec![0, 1]));
        assert_eq!(
            KernelMechanism::CgroupBpfCpusShared.cpus_chain(),
            Some((CpusChain::CgroupBpf, Sharing::Shared))
        );
        assert_eq!(KernelMechanism::CgroupBpf.cpus_chain(), None);
    }
}
