//! seccomp cells of the kernel backend: filter chains, the selftest's steps, filter installs.
//!
//! Filter chains are timed on a syscall against the native syscall; the kernel selftest's own
//! native/entry/per-filter steps are measured as it measures them.

use super::{every_node_runs, family_part, kernel_samples, one_task_hook_cell, KernelBackend, KernelMechanism, NAME};
use crate::backend::{cell_from_sets, interleaved, note_validity, worker_failure, CellError, CellSpec, Cells};
use hookbench_measure::SampleSet;
use hookbench_model::Params;
use hookbench_reports::{Cell, ValidityFlag};
use hookbench_workloads::seccomp::{
    max_filters, ChainProbe, FilterBody, SeccompReport, SeccompRequest, SeccompStep, SeccompWorker,
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
    ///
    /// With `probe`, its chain is a probed one and it asks every filter for its answer after
    /// the timed calls.
    fn seccomp_worker(
        &self,
        steps: Vec<SeccompStep>,
        trigger: Trigger,
        spec: &CellSpec<'_>,
        timed: Timed,
        probe: bool,
    ) -> Result<SeccompReport, CellError> {
        let req = SeccompRequest {
            steps,
            trigger,
            timing: self.timing_for(spec),
            installs_only: timed == Timed::Installs,
            time_last_only: timed == Timed::LastStep,
            spec_allow: true,
            probe,
        };
        hookbench_workloads::worker::spawn::<SeccompWorker>(&self.exe, &req).map_err(|e| worker_failure("seccomp", e))
    }

    /// The samples of one worker that builds its chain by `steps`, timed on `trigger` at the end.
    ///
    /// With `probe`, also what probing its chain found.
    fn seccomp_samples(
        &self,
        steps: Vec<SeccompStep>,
        trigger: Trigger,
        spec: &CellSpec<'_>,
        probe: bool,
    ) -> Result<(SampleSet, Option<ChainProbe>), CellError> {
        let report = self.seccomp_worker(steps, trigger, spec, Timed::LastStep, probe)?;
        let samples = report
            .steps
            .into_iter()
            .last()
            .and_then(|s| s.samples)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the seccomp worker returned no samples")))?;
        Ok((samples, report.probe))
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
            self.seccomp_samples(vec![SeccompStep { body, add }], trigger, spec, false)
                .map(|(samples, _)| samples)
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
            self.seccomp_samples(steps, trigger, spec, !baseline)
        })?;
        let (base, base_probes): (Vec<SampleSet>, Vec<_>) = base.into_iter().unzip();
        let (cell, probes): (Vec<SampleSet>, Vec<_>) = cell.into_iter().unzip();
        debug_assert!(base_probes.iter().all(Option::is_none));
        let spec_programs = CellSpec {
            params: Params { programs, ..p },
            ..spec.clone()
        };
        let mut m = one_task_hook_cell(&spec_programs, mechanism, 0, &cell, &base)?;
        let expect = foreign_cache_expectation(foreign_body, programs, p.foreign);
        let runs = match expect {
            CacheExpect::Walks(_) => u64::from(programs) + u64::from(p.foreign),
            CacheExpect::Skips(_) => 0,
        };
        m.cell.accounting = Some(every_node_runs(runs));
        record_probes(&mut m.cell, &probes, programs + p.foreign, expect);
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
            let report = self.seccomp_worker(steps.clone(), Trigger::Getppid, spec, Timed::EveryStep, false)?;
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
            let report = self.seccomp_worker(
                vec![SeccompStep { body, add: n }],
                trigger,
                spec,
                Timed::Installs,
                false,
            )?;
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

/// What the action cache does with the timed syscall under a chain, and the kernel's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CacheExpect {
    /// It cannot skip: every filter of the chain runs on the timed syscall.
    Walks(&'static str),
    /// It skips the whole chain: no filter runs on the timed syscall.
    Skips(&'static str),
}

/// The action cache's verdict on claim 1's timed `getsockname()` under a foreign chain.
///
/// From kernel/seccomp.c: `seccomp_cache_prepare_bitmap` emulates each new filter for every
/// syscall number with `seccomp_is_const_allow`, which gives up (the bit is cleared) at the first
/// load of anything but `nr` or `arch` and at any instruction it does not know (`tax`); each
/// filter's bitmap starts from its predecessor's, and `seccomp_run_filters` checks only the
/// newest filter's bitmap before walking every filter (`for (; f; f = f->prev)`, no early exit).
pub(super) fn foreign_cache_expectation(foreign: FilterBody, on_hook: u32, foreign_filters: u32) -> CacheExpect {
    if foreign == FilterBody::ForeignArgFirst && foreign_filters > 0 {
        CacheExpect::Walks(
            "each foreign filter loads args[0] before its number check, so seccomp_is_const_allow gives up \
             for every syscall and seccomp_cache_prepare_bitmap clears getsockname's bit (the on-hook \
             filters' argument loads clear it too); seccomp_run_filters walks the whole chain",
        )
    } else if on_hook > 0 {
        CacheExpect::Walks(
            "the on-hook filters load args[0] for getsockname, so seccomp_is_const_allow cannot prove \
             their result and seccomp_cache_prepare_bitmap clears getsockname's bit; every later filter's \
             bitmap starts from that one, so seccomp_run_filters walks the whole chain",
        )
    } else {
        CacheExpect::Skips(
            "each filter decides getsockname from nr and arch alone (number first), so \
             seccomp_is_const_allow proves a constant ALLOW, seccomp_cache_prepare_bitmap keeps the bit \
             and seccomp_run_filters returns before running any filter",
        )
    }
}

/// Records what probing the measured workers' chains found, and what the action cache does.
///
/// `probes` has one entry per measured worker; `filters` is the chain's length. The cell is
/// flagged `programs-not-run` when a worker's filter did not give its own answer (or a worker
/// did not probe), or when /proc/PID/seccomp_cache shows the cache skipping a chain that should
/// run; `cache-differs` when it shows the chain running where the cache should skip it.
pub(super) fn record_probes(cell: &mut Cell, probes: &[Option<ChainProbe>], filters: u32, expect: CacheExpect) {
    if filters == 0 {
        note_validity(
            cell,
            "programs ran: no filter in the chain, nothing to probe".to_string(),
        );
        return;
    }
    let mut failed = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        match p {
            None => failed.push(format!("worker {i} did not probe its chain")),
            Some(p) if p.probed != filters || p.answered != filters => failed.push(format!(
                "worker {i}: {} of {filters} filters answered their probe ({} probed){}",
                p.answered,
                p.probed,
                p.first_miss
                    .map(|m| format!(
                        "; filter {} answered errno {} instead of {}",
                        m.index, m.got, m.expected
                    ))
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    if failed.is_empty() {
        note_validity(
            cell,
            format!(
                "filters answered: after the timed calls each of the {filters} filters, asked one at a time \
                 (getpeername with the argument only it matches), returned its own SECCOMP_RET_ERRNO data in all \
                 {} measured workers: every filter is installed and evaluates (classic BPF has no run counter, \
                 so the timed calls' runs are not counted)",
                probes.len()
            ),
        );
    } else {
        cell.validity.flags.push(ValidityFlag {
            code: "programs-not-run".into(),
            why: format!("the chain's probe failed: {}", failed.join("; ")),
        });
    }
    record_cache(cell, probes.iter().flatten().map(|p| p.cache_skips_trigger), expect);
}

/// Records the action cache's expected verdict on the timed syscall, checked where it is shown.
///
/// `observed` has one entry per chain whose /proc/PID/seccomp_cache was looked at (`None`: the
/// kernel does not show it).
pub(super) fn record_cache(cell: &mut Cell, observed: impl IntoIterator<Item = Option<bool>>, expect: CacheExpect) {
    let (skips, why) = match expect {
        CacheExpect::Walks(why) => (false, why),
        CacheExpect::Skips(why) => (true, why),
    };
    let seen: Vec<bool> = observed.into_iter().flatten().collect();
    let verdict = if skips {
        "the action cache is expected to skip every filter on the timed syscall"
    } else {
        "every filter runs on the timed syscall"
    };
    let shown = if seen.is_empty() {
        "not observed: /proc/PID/seccomp_cache is not available (CONFIG_SECCOMP_CACHE_DEBUG off)".to_string()
    } else if seen.iter().all(|&s| s == skips) {
        format!(
            "/proc/PID/seccomp_cache of {} chain(s) shows the timed syscall {}",
            seen.len(),
            if skips { "ALLOW (cached)" } else { "FILTER (run)" }
        )
    } else {
        let (code, what) = if skips {
            (
                "cache-differs",
                "FILTER (the chain runs) where the cache should skip it",
            )
        } else {
            (
                "programs-not-run",
                "ALLOW (the cache skips the chain) where every filter should run",
            )
        };
        cell.validity.flags.push(ValidityFlag {
            code: code.into(),
            why: format!("/proc/PID/seccomp_cache shows the timed syscall {what}"),
        });
        "checked: see the flag".to_string()
    };
    note_validity(cell, format!("{verdict}: {why}; {shown}"));
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
    use hookbench_workloads::seccomp::ProbeMiss;

    /// A fresh claim-1 cell with `probes` of a chain of `filters` recorded.
    fn probed(probes: &[Option<ChainProbe>], filters: u32, expect: CacheExpect) -> Cell {
        let mut cell = super::super::blank_test_cell(
            include_str!("../../../suites/foreign.toml"),
            "foreign.toml",
            "seccomp-foreign-arg-first",
        );
        record_probes(&mut cell, probes, filters, expect);
        cell
    }

    /// A worker's probe: `answered` of `probed` filters, filter 2 the first miss if any.
    fn probe(probed: u32, answered: u32, cache: Option<bool>) -> Option<ChainProbe> {
        Some(ChainProbe {
            probed,
            answered,
            first_miss: (answered < probed).then_some(ProbeMiss {
                index: 2,
                expected: 1026,
                got: libc::EBADF,
            }),
            cache_skips_trigger: cache,
        })
    }

    #[test]
    fn a_chain_whose_filters_all_answer_passes_and_says_what_it_proved() {
        let walks = foreign_cache_expectation(FilterBody::ForeignArgFirst, 0, 4);
        assert!(matches!(walks, CacheExpect::Walks(w) if w.starts_with("each foreign filter loads args[0]")));
        let c = probed(&[probe(4, 4, None), probe(4, 4, None)], 4, walks);
        assert!(c.validity.flags.is_empty(), "{:?}", c.validity.flags);
        assert!(
            c.validity.notes[0].contains("each of the 4 filters"),
            "{:?}",
            c.validity.notes
        );
        assert!(
            c.validity.notes[0].contains("in all 2 measured workers"),
            "{:?}",
            c.validity.notes
        );
        assert!(c.validity.notes[1].starts_with("every filter runs on the timed syscall"));
        assert!(c.validity.notes[1].contains("seccomp_is_const_allow"));
        assert!(c.validity.notes[1].contains("not available"), "{:?}", c.validity.notes);
        // The cache shown, as expected.
        let c = probed(&[probe(4, 4, Some(false))], 4, walks);
        assert!(c.validity.flags.is_empty());
        assert!(c.validity.notes[1].contains("shows the timed syscall FILTER"));
    }

    #[test]
    fn a_chain_with_a_filter_left_out_or_unprobed_is_flagged() {
        let walks = foreign_cache_expectation(FilterBody::ForeignNrFirst, 2, 4);
        // One worker's filter 2 did not answer.
        let c = probed(&[probe(6, 6, None), probe(6, 5, None)], 6, walks);
        assert_eq!(c.validity.flags.len(), 1, "{:?}", c.validity.flags);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
        assert!(
            c.validity.flags[0].why.contains("worker 1: 5 of 6")
                && c.validity.flags[0]
                    .why
                    .contains("filter 2 answered errno 9 instead of 1026"),
            "{}",
            c.validity.flags[0].why
        );
        // A chain shorter than asked (a filter left out of the request) is flagged too.
        let c = probed(&[probe(5, 5, None)], 6, walks);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
        // A worker that did not probe.
        let c = probed(&[None], 6, walks);
        assert!(c.validity.flags[0].why.contains("did not probe"));
    }

    #[test]
    fn the_cache_shown_against_the_shape_is_flagged() {
        let skips = foreign_cache_expectation(FilterBody::ForeignNrFirst, 0, 4);
        assert!(matches!(skips, CacheExpect::Skips(_)));
        let c = probed(&[probe(4, 4, Some(true))], 4, skips);
        assert!(c.validity.flags.is_empty());
        assert!(c.validity.notes[1].starts_with("the action cache is expected to skip"));
        let c = probed(&[probe(4, 4, Some(false))], 4, skips);
        assert_eq!(c.validity.flags[0].code, "cache-differs");
        let walks = foreign_cache_expectation(FilterBody::ForeignArgFirst, 0, 4);
        let c = probed(&[probe(4, 4, Some(true))], 4, walks);
        assert_eq!(c.validity.flags[0].code, "programs-not-run");
        // Number-first behind on-hook argument loads: the chain runs.
        assert!(matches!(
            foreign_cache_expectation(FilterBody::ForeignNrFirst, 1, 4),
            CacheExpect::Walks(_)
        ));
        // No filter at all: nothing to probe, no flag.
        let c = probed(&[probe(0, 0, None)], 0, skips);
        assert!(c.validity.flags.is_empty() && c.validity.notes[0].contains("nothing to probe"));
    }

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
