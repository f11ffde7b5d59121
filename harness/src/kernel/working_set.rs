//! Working-set cells of the kernel backend: W tasks on one CPU take turns on getsockname().
//!
//! Claim 6 on the running kernel (`seccomp-working-set`, `cgroup-bpf-working-set`). Each
//! repetition runs a ring worker (`hookbench worker ring`, `hookbench_workloads::ring`): an
//! exec'd process that forks W tasks, each with its own chain of N argument-loading seccomp
//! filters or in its own cgroup with N null `cgroup/getsockname4` programs, and lets them take
//! turns timing one `getsockname()` each, so that the CPU's caches hold W tasks' metadata. Its
//! baseline is the same ring with no filter or program, the repetitions interleaved
//! ([`crate::backend::interleaved`]). The workers live in a cgroup tree of the run's subtree
//! (when this machine has cgroup v2), made at the first such cell and kept for the run
//! ([`RingCgroups`]): `ring`, the workers' home, and for cgroup-bpf one `<top>/0..W` per W, the
//! tasks' cgroups (their programs go with the tasks, so a set serves every cell of its W).
//! Before anything is made, the point is checked against the machine's limits read at the first
//! such cell (pids, `cgroup.max.descendants`, memory:
//! [`hookbench_workloads::ring::ring_limit`]); a point beyond them is skipped naming the limit.
//! A user's suite file that plans such a point is refused before the run ([`check_plans`]).

use super::{every_node_runs, family_part, KernelBackend, KernelMechanism, NAME};
use crate::backend::{cell_from_sets, interleaved, note_validity, worker_failure, CellError, CellSpec, Cells};
use crate::error::UsageError;
use crate::suite::Suite;
use hookbench_model::Params;
use hookbench_reports::{ValidityFlag, WorkingSetBytes};
use hookbench_sys::cache::CacheSizes;
use hookbench_workloads::cgroup_bpf::wide_subtree;
use hookbench_workloads::cgroupfs::{Cgroup2, RunTree};
use hookbench_workloads::ring::{
    kernel_footprint, ring_limit, MachineLimits, RingChain, RingProbe, RingReport, RingRequest, RingRunCount,
    RingWorker, KERNEL_METHOD,
};
use std::collections::BTreeMap;

/// Most repetitions of a working-set cell, whatever the suite asks.
///
/// Each repetition makes W tasks (and W x N filters or programs) twice, cell and baseline.
pub const MAX_RING_REPETITIONS: usize = 3;

/// Untimed `getsockname()` calls per task in the run-count pass of a cgroup-bpf ring.
pub const RING_COUNT_FIRES: u64 = 10;

impl KernelMechanism {
    /// What each task of a working-set mechanism carries, `None` for the others.
    pub(super) fn ring_chain(self) -> Option<RingChain> {
        match self {
            KernelMechanism::SeccompWorkingSet => Some(RingChain::Seccomp),
            KernelMechanism::CgroupBpfWorkingSet => Some(RingChain::CgroupBpf),
            _ => None,
        }
    }
}

/// The limits a point of a working-set mechanism goes beyond on this machine, in words.
fn beyond(mechanism: KernelMechanism, p: &Params, limits: &MachineLimits) -> Option<String> {
    let chain = mechanism.ring_chain()?;
    let l = ring_limit(chain, p.working_set, p.programs, limits)?;
    Some(format!(
        "{}: working_set = {} with programs = {} goes beyond a limit of this machine: {}; {} = {} fits",
        mechanism.as_str(),
        p.working_set,
        p.programs,
        l.why,
        l.axis,
        l.max
    ))
}

/// The machine's limits now, under its cgroup2 mount if there is one.
fn read_limits() -> MachineLimits {
    MachineLimits::read(Cgroup2::detect().ok().as_ref().map(Cgroup2::mount))
}

/// Refuses a user's suite file whose working-set points go beyond this machine's limits.
///
/// The limits are read once, up front, before anything runs. A shipped suite is not refused:
/// its points beyond a limit are skipped at run time with the limit named, as its multi-CPU
/// points are on a smaller machine.
///
/// Errors: [`UsageError`] naming the suite, the point and the limit (exit code 2).
pub fn check_plans(suites: &[Suite], profile: &str) -> Result<(), UsageError> {
    check_plans_with(suites, profile, read_limits)
}

/// [`check_plans`] against the limits `read` gives (called once, at the first ring planned).
fn check_plans_with(suites: &[Suite], profile: &str, read: impl Fn() -> MachineLimits) -> Result<(), UsageError> {
    let mut limits: Option<MachineLimits> = None;
    for s in suites.iter().filter(|s| !s.source.starts_with("embedded:")) {
        let Ok(plan) = s.plan(profile) else { continue };
        for m in s.mechanisms_for(NAME) {
            let Some(k) = crate::mechanism::find(NAME, &m.name)
                .ok()
                .and_then(|i| i.implementation.kernel())
            else {
                continue;
            };
            if k.ring_chain().is_none() {
                continue;
            }
            let limits = limits.get_or_insert_with(&read);
            for p in plan.points.iter().filter(|p| m.admits(p)) {
                let p = s.params_for(NAME, p);
                if let Some(why) = beyond(k, &p, limits) {
                    return Err(UsageError::new(format!(
                        "suite '{}' ({}), profile {profile}: {why}; add `max.{}.working_set = N` under \
                         [backend.kernel] or sweep less",
                        s.name, s.source, m.name
                    )));
                }
            }
        }
    }
    Ok(())
}

impl KernelBackend {
    /// A working-set hook cell: W tasks in turn with N filters or programs each, against none.
    ///
    /// See the module documentation. The cell's `tasks` is W (`cgroups` W too for cgroup-bpf);
    /// its `working_set` holds the bytes a rotation reads beside the L2 and last-level caches.
    pub(super) fn working_set_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let chain = family_part(mechanism, mechanism.ring_chain(), "working-set")?;
        let p = spec.params;
        if p.cpus != 1 || p.foreign != 0 {
            return Err(CellError::Skip(format!(
                "{}: the ring runs on one CPU with every program on the hook: cpus = {}, foreign = {} are not \
                 measured by this version",
                mechanism.as_str(),
                p.cpus,
                p.foreign
            )));
        }
        let limits = self.ring_limits.get_or_insert_with(read_limits);
        if let Some(why) = beyond(mechanism, &p, limits) {
            return Err(CellError::Skip(why));
        }
        let (w, n) = (p.working_set, p.programs);
        let (home, slots) = if chain == RingChain::CgroupBpf || self.support.cgroup_bpf.is_ok() {
            let (home, slots) = self
                .ring_cgroups(chain, w)
                .map_err(|e| CellError::Skip(format!("{}: building the rings' cgroups: {e}", mechanism.as_str())))?;
            (Some(home), slots)
        } else {
            (None, None)
        };
        let (base, cell, last) = self.rings(chain, spec, home, slots)?;
        let params = Params {
            tasks: w,
            cgroups: if chain == RingChain::CgroupBpf { w } else { 0 },
            ..p
        };
        let mut m = cell_from_sets(spec, NAME, mechanism.as_str(), params, "hook_latency_ns", &cell, &base)?;
        m.cell.accounting = Some(every_node_runs(u64::from(n)));
        check_ring(&mut m.cell, &last, n);
        let pair_ns = cell
            .iter()
            .chain(&base)
            .map(|s| s.clock_overhead_ns)
            .fold(0.0, f64::max);
        one_call_per_turn(&mut m.cell, pair_ns);
        let caches = CacheSizes::read();
        let fp = kernel_footprint(chain);
        m.cell.working_set = Some(WorkingSetBytes {
            bytes: fp.bytes(w, n),
            per_slot_bytes: fp.slot_bytes(n),
            method: KERNEL_METHOD.to_string(),
            l2_bytes: caches.l2_bytes,
            llc_bytes: caches.llc_bytes,
        });
        Ok(vec![m])
    }

    /// The workers' home and, for cgroup-bpf, the W tasks' cgroups `<slots>/0..W`.
    ///
    /// They are made at first use in one tree of the run's subtree, [`RingCgroups`], and kept
    /// for the run: the rings' programs go with their tasks, so a set of W cgroups serves every
    /// cell of that W. The limits read up front count what is made here.
    fn ring_cgroups(
        &mut self,
        chain: RingChain,
        w: u32,
    ) -> Result<(std::path::PathBuf, Option<std::path::PathBuf>), String> {
        if self.rings.is_none() {
            let mut tree =
                RunTree::create_under(self.run_tree().map_err(|e| e.to_string())?.root()).map_err(|e| e.to_string())?;
            let home = tree.child("ring").map_err(|e| e.to_string())?;
            self.count_cgroups(2);
            self.rings = Some(RingCgroups {
                tree,
                home,
                slots: BTreeMap::new(),
            });
        }
        let made = match (chain, self.rings.as_mut()) {
            (RingChain::CgroupBpf, Some(r)) if !r.slots.contains_key(&w) => {
                let top = wide_subtree(&mut r.tree, w).map_err(|e| e.to_string())?.top;
                r.slots.insert(w, top);
                true
            }
            _ => false,
        };
        if made {
            self.count_cgroups(u64::from(w) + 1);
        }
        let r = self.rings.as_ref().ok_or("the rings' cgroups are missing")?;
        let slots = (chain == RingChain::CgroupBpf)
            .then(|| r.slots.get(&w).cloned())
            .flatten();
        Ok((r.home.clone(), slots))
    }

    /// Adds `n` cgroups made for the rings to the descendants the limits read up front saw.
    fn count_cgroups(&mut self, n: u64) {
        if let Some((_, _, current)) = self.ring_limits.as_mut().and_then(|l| l.descendants.as_mut()) {
            *current += n;
        }
    }

    /// The interleaved rings of a cell: baseline sets, cell sets, the first cell ring's report.
    fn rings(
        &self,
        chain: RingChain,
        spec: &CellSpec<'_>,
        home: Option<std::path::PathBuf>,
        slots: Option<std::path::PathBuf>,
    ) -> Result<
        (
            Vec<hookbench_measure::SampleSet>,
            Vec<hookbench_measure::SampleSet>,
            RingReport,
        ),
        CellError,
    > {
        let p = spec.params;
        let mut first: Option<RingReport> = None;
        let reps = spec.repetitions.clamp(1, MAX_RING_REPETITIONS);
        let (base, cell) = interleaved(spec.seed, reps, |baseline| {
            let count = !baseline && first.is_none() && chain == RingChain::CgroupBpf && p.programs > 0;
            let req = RingRequest {
                chain,
                tasks: p.working_set,
                programs: if baseline { 0 } else { p.programs },
                home: home.clone(),
                slots: slots.clone(),
                timing: self.timing_for(spec),
                seed: spec.seed,
                count_fires: count.then_some(RING_COUNT_FIRES),
                probe: !baseline && first.is_none() && chain == RingChain::Seccomp && p.programs > 0,
            };
            let r = hookbench_workloads::worker::spawn::<RingWorker>(&self.exe, &req)
                .map_err(|e| worker_failure("ring", e))?;
            let samples = r.samples.clone();
            if !baseline && first.is_none() {
                first = Some(r);
            }
            Ok(samples)
        })?;
        let first = first.ok_or_else(|| CellError::Fatal(anyhow::anyhow!("no cell ring ran")))?;
        Ok((base, cell, first))
    }
}

/// The cgroups every working-set cell of a run shares, torn down with the run.
///
/// `tree` is made inside the run's subtree; `home` is the ring workers' cgroup (every ring task
/// of a seccomp ring is born there), `slots[W]` the parent of `0..W`, one cgroup per task of a
/// cgroup-bpf ring of W tasks.
pub(super) struct RingCgroups {
    tree: RunTree,
    home: std::path::PathBuf,
    slots: BTreeMap<u32, std::path::PathBuf>,
}

impl RingCgroups {
    /// Kills what is left in the tree and removes it (before the run's subtree goes).
    pub(super) fn teardown(self) -> Result<(), String> {
        self.tree.teardown().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Records in `cell` what the ring checked: the programs' runs, the filters, one hook per turn.
fn check_ring(cell: &mut hookbench_reports::Cell, first: &RingReport, programs: u32) {
    match &first.run_count {
        Some(RingRunCount::Counted {
            calls,
            expected,
            observed,
        }) => super::cgroup_bpf::record_run_count(
            cell,
            &super::cgroup_bpf::RunCount::Counted {
                calls: *calls,
                expected: *expected,
                observed: *observed,
            },
        ),
        Some(RingRunCount::Unavailable(why)) => {
            super::cgroup_bpf::record_run_count(cell, &super::cgroup_bpf::RunCount::Unavailable(why.clone()))
        }
        None => {}
    }
    if let Some(probe) = &first.probe {
        check_ring_probe(cell, probe, programs);
    }
    if let Some([lo, hi]) = first.seccomp_filters {
        if lo == programs && hi == programs {
            note_validity(
                cell,
                format!("filters installed: every task's /proc/PID/status showed Seccomp_filters: {programs}"),
            );
        } else {
            cell.validity.flags.push(ValidityFlag {
                code: "programs-not-run".into(),
                why: format!("the tasks showed Seccomp_filters: {lo} to {hi}, {programs} expected"),
            });
        }
    }
    note_validity(
        cell,
        format!(
            "one getsockname() per turn of {} tasks taking turns on one CPU (K = 1 by design: a batch would \
             warm the caches), {} warm-up turns discarded, {} timed per ring; set-up {:.2} s",
            first.tasks, first.warmup_turns, first.timed_turns, first.setup_s
        ),
    );
}

/// Records what the first cell ring's probe pass found; flags the cell when a filter failed.
///
/// Every task's chain of `programs` argument-loading filters must answer in full; on the
/// timed `getsockname()` they all run, as the action cache cannot prove an argument load.
fn check_ring_probe(cell: &mut hookbench_reports::Cell, probe: &RingProbe, programs: u32) {
    if probe.filters == programs && probe.complete_tasks == probe.tasks {
        note_validity(
            cell,
            format!(
                "filters answered: after the timed turns each of the {programs} filters of each of the {} tasks' \
                 chains, asked one at a time (getpeername with the argument only it matches), returned its own \
                 SECCOMP_RET_ERRNO data: every task's chain is whole and evaluates (first ring of the cell; \
                 classic BPF has no run counter, so the timed calls' runs are not counted)",
                probe.tasks
            ),
        );
    } else {
        let miss = probe
            .first_miss
            .map(|(task, m)| {
                format!(
                    "; task {task}'s filter {} answered errno {} instead of {}",
                    m.index, m.got, m.expected
                )
            })
            .unwrap_or_default();
        cell.validity.flags.push(ValidityFlag {
            code: "programs-not-run".into(),
            why: format!(
                "the chains' probe failed: {} of {} tasks' chains answered in full ({} of {programs} filters \
                 probed){miss}",
                probe.complete_tasks, probe.tasks, probe.filters
            ),
        });
    }
    super::seccomp::record_cache(
        cell,
        [probe.cache_skips_trigger],
        super::seccomp::CacheExpect::Walks(
            "each filter loads args[0], so seccomp_is_const_allow cannot prove its result and \
             seccomp_cache_prepare_bitmap clears getsockname's bit; seccomp_run_filters walks the whole chain",
        ),
    );
}

/// Drops an `expensive-clock` flag raised only for the clock pair's share of one call.
///
/// The ring times one call per turn on purpose (a batch would warm the caches) and the pair,
/// `clock_pair_ns` at most, is subtracted from every sample; a slow clock stays flagged.
fn one_call_per_turn(cell: &mut hookbench_reports::Cell, clock_pair_ns: f64) {
    if clock_pair_ns > crate::backend::EXPENSIVE_CLOCK_NS {
        return;
    }
    let before = cell.validity.flags.len();
    cell.validity.flags.retain(|f| f.code != "expensive-clock");
    if cell.validity.flags.len() < before {
        note_validity(
            cell,
            format!(
                "the clock pair ({clock_pair_ns:.1} ns) is more than 5% of one call; not flagged: the ring times one \
                 call per turn on purpose and subtracts the pair from every sample"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbench_workloads::taskpool::PidsReading;

    /// Limits with room for anything but `pids.max` = 1000 (of which 100 in use).
    fn tight() -> MachineLimits {
        MachineLimits {
            pids: vec![PidsReading {
                dir: std::path::PathBuf::from("/sys/fs/cgroup/job"),
                hierarchy: "v2",
                max: Some(1000),
                current: 100,
            }],
            ..MachineLimits::default()
        }
    }

    fn suite(source: &str) -> Suite {
        Suite::parse(include_str!("../../../suites/working-set.toml"), source).expect("working-set suite")
    }

    #[test]
    fn a_users_suite_beyond_the_machines_limits_is_refused_naming_the_limit() {
        let e = check_plans_with(&[suite("my-suite.toml")], "quick", tight).expect_err("4096 tasks > pids.max");
        let e = e.to_string();
        assert!(e.contains("pids.max of /sys/fs/cgroup/job (v2) is 1000"), "{e}");
        assert!(
            e.contains("working_set = 4096") && e.contains("working_set = 899 fits"),
            "{e}"
        );
        assert!(e.contains("max.") && e.contains("working-set.working_set = N"), "{e}");
        // The shipped suite is not refused: its points beyond a limit are skipped at run time.
        assert!(check_plans_with(&[suite("embedded:working-set.toml")], "quick", tight).is_ok());
        assert!(check_plans_with(&[suite("my-suite.toml")], "quick", MachineLimits::default).is_ok());
        // The kernel plan of the quick profile: W = 1 and 4096 (16384 is the model's), N <= 16.
        let s = suite("my-suite.toml");
        let m = &s.mechanisms_for(NAME)[0];
        let plan = s.plan("quick").expect("quick");
        let kernel: std::collections::BTreeSet<(u32, u32)> = plan
            .points
            .iter()
            .filter(|p| m.admits(p))
            .map(|p| (p.working_set, p.programs))
            .collect();
        let ws: std::collections::BTreeSet<u32> = kernel.iter().map(|k| k.0).collect();
        let ns: std::collections::BTreeSet<u32> = kernel.iter().map(|k| k.1).collect();
        assert_eq!(ws.into_iter().collect::<Vec<_>>(), [1, 4096]);
        assert_eq!(ns.into_iter().collect::<Vec<_>>(), [0, 4, 8, 16]);
        assert_eq!(s.params_for(NAME, &plan.points[0]).body, hookbench_model::Body::Null);
    }

    #[test]
    fn the_rings_kernel_limits_are_per_task_and_on_the_tasks() {
        let limit = |name: &str, working_set: u32, programs: u32| {
            let p = Params {
                working_set,
                programs,
                ..Params::default()
            };
            let m = crate::mechanism::find(NAME, name).expect("registered");
            m.limit(crate::mechanism::Metric::HookLatency, &p)
                .map(|l| (l.axis, l.max))
        };
        assert_eq!(limit("seccomp-working-set", 10_000, 16), None);
        assert_eq!(limit("seccomp-working-set", 4, 1928), Some(("programs", 1927)));
        assert_eq!(limit("cgroup-bpf-working-set", 4, 65), Some(("programs", 64)));
        assert_eq!(
            limit("cgroup-bpf-working-set", 100_001, 4),
            Some(("working_set", 100_000))
        );
        assert_eq!(
            KernelMechanism::SeccompWorkingSet.ring_chain(),
            Some(RingChain::Seccomp)
        );
        assert_eq!(KernelMechanism::CgroupBpf.ring_chain(), None);
    }

    /// A blank `seccomp-working-set` cell of a ring of `working_set` tasks of 4 filters each.
    fn ring_cell(working_set: u32) -> hookbench_reports::Cell {
        serde_json::from_value(serde_json::json!({
            "id": "x", "suite": "working-set", "backend": "kernel", "model": "task-chain",
            "mechanism": "seccomp-working-set", "metric": "hook_latency_ns", "unit": "ns",
            "params": {"programs": 4, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                       "working_set": working_set, "cpus": 1, "body": "null"},
            "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
            "p999": 1.0, "max": 1.0
        }))
        .expect("cell")
    }

    #[test]
    fn a_cheap_clocks_share_is_noted_not_flagged_and_a_slow_clock_stays_flagged() {
        let cell = || {
            let mut c = ring_cell(1);
            c.validity.flags.push(ValidityFlag {
                code: "expensive-clock".into(),
                why: "the clock-read pair (20.0 ns) took 10.0% of a sample (limit 5%)".into(),
            });
            c
        };
        let mut c = cell();
        one_call_per_turn(&mut c, 20.0);
        assert!(c.validity.flags.is_empty());
        assert!(
            c.validity.notes[0].contains("one call per turn"),
            "{:?}",
            c.validity.notes
        );
        let mut c = cell();
        one_call_per_turn(&mut c, 150.0);
        assert_eq!(c.validity.flags.len(), 1);
        assert!(c.validity.notes.is_empty());
    }

    #[test]
    fn a_ring_whose_chains_do_not_all_answer_their_probe_is_flagged() {
        let blank = || ring_cell(8);
        let whole = RingProbe {
            tasks: 8,
            filters: 4,
            complete_tasks: 8,
            first_miss: None,
            cache_skips_trigger: None,
        };
        let mut c = blank();
        check_ring_probe(&mut c, &whole, 4);
        assert!(c.validity.flags.is_empty(), "{:?}", c.validity.flags);
        assert!(c.validity.notes[0].contains("each of the 4 filters of each of the 8 tasks"));
        assert!(c.validity.notes[1].contains("not available"), "{:?}", c.validity.notes);
        // Task 5's filter 3 left out of its chain.
        let mut c = blank();
        let miss = RingProbe {
            complete_tasks: 7,
            first_miss: Some((
                5,
                hookbench_workloads::seccomp::ProbeMiss {
                    index: 3,
                    expected: 1027,
                    got: libc::EBADF,
                },
            )),
            ..whole.clone()
        };
        check_ring_probe(&mut c, &miss, 4);
        assert_eq!(c.validity.flags.len(), 1);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
        assert!(
            c.validity.flags[0].why.contains("7 of 8 tasks"),
            "{}",
            c.validity.flags[0].why
        );
        assert!(c.validity.flags[0].why.contains("task 5's filter 3 answered errno 9"));
        // Chains probed shorter than the cell's N, or a cache that skips them: flagged.
        let mut c = blank();
        check_ring_probe(&mut c, &whole, 5);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
        let mut c = blank();
        let cached = RingProbe {
            cache_skips_trigger: Some(true),
            ..whole
        };
        check_ring_probe(&mut c, &cached, 4);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
    }
}
