//! The `kernel` backend: the mechanisms that shipped, measured on the running kernel.
//!
//! Each is measured in exec'd worker processes, each cell interleaved with its own baseline.
//!
//! Seccomp filters and Landlock layers belong to the task that installs them and cannot be
//! removed, cgroup-bpf and `lsm_cgroup` programs run for the tasks of a cgroup: each measurement
//! runs in a fresh `hookbench worker KIND '<request>'` process (exec'd, never a fork of the
//! harness), pinned to the run's worker CPU and timed with the harness's clock through the one
//! measurement crate. A hook cell's repetitions alternate with its baseline's (the same trigger
//! with no program: an empty chain, an empty cgroup path), in a seeded order within each pair.
//! One file per mechanism family: [`seccomp`], [`landlock`], [`cgroup_bpf`], [`lsm`], [`rawtp`],
//! [`setup`]; [`working_set`] holds the rings of W tasks of claim 6 (seccomp and cgroup-bpf),
//! [`cpus`] the P tasks on P CPUs of the `scaling` suite (seccomp and cgroup-bpf), and the
//! metadata cells of every family (claim 5) are in [`metadata`].
//!
//! BPF LSM programs (`lsm-cgroup`, `lsm-global`, `lsm-global-unmarked`) run behind a BPF
//! trampoline: where the kernel refuses trampolines, where `bpf` is not an active LSM (the
//! programs would attach and never run) or, for `lsm_cgroup`, before Linux 6.0, their cells are
//! skipped with the reason.

mod cgroup_bpf;
mod cpus;
mod landlock;
mod lsm;
mod metadata;
mod rawtp;
mod seccomp;
mod setup;
mod working_set;

use crate::backend::{cell_from_sets, Backend, CellError, CellSpec, Cells, Measured, Timing};
pub use crate::mechanism::KernelMechanism;
use crate::mechanism::{Family, Impl, Metric};
use hookbench_measure::SampleSet;
use hookbench_model::Params;
use hookbench_reports::Accounting;
use hookbench_workloads::cgroupfs::RunTree;
use hookbench_workloads::lsm::{bpf_lsm_active, lsm_cgroup_kernel_ok};
use std::collections::HashSet;
use std::path::PathBuf;
pub use working_set::check_plans as check_working_set_plans;

/// Name of this backend in the results.
pub const NAME: &str = "kernel";

/// The cap on the samples per repetition a kernel cell asks for, whatever the suite says.
///
/// The model's profiles ask for thousands of sub-microsecond samples; a repetition also lasts
/// at least [`Timing::kernel_min_duration_ns`], which raises the count for cheap triggers.
pub const KERNEL_MAX_SAMPLES: usize = 2000;

/// Samples per repetition a kernel cell of `spec` asks for at least.
fn kernel_samples(spec: &CellSpec<'_>) -> usize {
    spec.samples.clamp(1, KERNEL_MAX_SAMPLES)
}

/// A `hook_latency_ns` cell of `mechanism`, one task in `cgroups` cgroups, against its baseline.
fn one_task_hook_cell(
    spec: &CellSpec<'_>,
    mechanism: KernelMechanism,
    cgroups: u32,
    cell: &[SampleSet],
    base: &[SampleSet],
) -> Result<Measured, CellError> {
    let params = Params {
        tasks: 1,
        cgroups,
        ..spec.params
    };
    cell_from_sets(spec, NAME, mechanism.as_str(), params, "hook_latency_ns", cell, base)
}

/// The accounting of a hook that visits `n` nodes and runs one program at each.
///
/// No cgroup handle is compared and no map is looked up.
fn every_node_runs(n: u64) -> Accounting {
    Accounting {
        nodes_visited: n,
        programs_run: n,
        handles_checked: 0,
        map_lookups: 0,
    }
}

/// `part` of `mechanism` as its family file reads it, or a fatal error naming the `family`.
///
/// Errors: [`CellError::Fatal`] when `part` is `None`: the family dispatch sent `mechanism` to
/// the wrong file, a bug rather than bad input.
fn family_part<T>(mechanism: KernelMechanism, part: Option<T>, family: &str) -> Result<T, CellError> {
    part.ok_or_else(|| CellError::Fatal(anyhow::anyhow!("{} is not a {family} mechanism", mechanism.as_str())))
}

/// What the machine offers the kernel backend, from the environment probe.
///
/// `Err(reason)` for a mechanism the kernel lacks.
#[derive(Debug, Clone)]
pub struct KernelSupport {
    /// Seccomp filters can be installed.
    pub seccomp: Result<(), String>,
    /// Landlock is enabled.
    pub landlock: Result<(), String>,
    /// cgroup-bpf programs can be loaded and attached (root, a cgroup v2 mount, BPF).
    pub cgroup_bpf: Result<(), String>,
    /// BPF trampolines (lsm, lsm_cgroup, fentry programs) are allowed; the probe's result.
    pub trampolines: Result<(), String>,
}

/// The kernel backend.
pub struct KernelBackend {
    exe: PathBuf,
    support: KernelSupport,
    timing: Timing,
    scratch: PathBuf,
    /// This run's own cgroup subtree, made at the first cgroup cell and torn down on drop.
    run: Option<RunTree>,
    /// Whether `bpf` is an active LSM, checked at the first BPF LSM cell.
    bpf_lsm: Option<Result<(), String>>,
    /// Mechanisms measured once per suite (the selftest split), by (suite, mechanism).
    once: HashSet<(String, KernelMechanism)>,
    /// Derived cells of the last measurement that could not be measured (a C floor):
    /// `(mechanism, reason)`, handed to the runner by [`Backend::take_skipped`].
    skipped: Vec<(String, String)>,
    /// The C attach floor installed in `scratch`, or why it cannot run; set at first use.
    attach_floor: Option<Result<PathBuf, String>>,
    /// The machine's task, cgroup and memory limits, read at the first working-set cell.
    ring_limits: Option<hookbench_workloads::ring::MachineLimits>,
    /// The cgroups the working-set cells share, made at the first one.
    rings: Option<working_set::RingCgroups>,
}

impl KernelBackend {
    /// A kernel backend whose workers are `exe` (this binary), timed as `timing` says.
    ///
    /// The machine offers `support`. Landlock workers build their directory chains under a fresh
    /// directory in the system's temporary directory, removed when the backend is dropped.
    pub fn new(exe: PathBuf, support: KernelSupport, timing: Timing) -> KernelBackend {
        let scratch = std::env::temp_dir().join(format!(
            "hookbench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        KernelBackend {
            exe,
            support,
            timing,
            scratch,
            run: None,
            bpf_lsm: None,
            once: HashSet::new(),
            skipped: Vec::new(),
            attach_floor: None,
            ring_limits: None,
            rings: None,
        }
    }

    fn check_support(&mut self, mechanism: KernelMechanism) -> Result<(), CellError> {
        let family = mechanism.family();
        let (what, support) = match family {
            Family::Landlock => ("Landlock", &self.support.landlock),
            Family::CgroupBpf => ("cgroup v2 trees", &self.support.cgroup_bpf),
            Family::BpfLsm => ("BPF LSM programs", &self.support.trampolines),
            Family::RawTracepoint => ("raw tracepoint programs and cgroup v2 trees", &self.support.cgroup_bpf),
            Family::Seccomp | Family::Model | Family::Kmod => ("seccomp filters", &self.support.seccomp),
        };
        let skip = |reason: String| CellError::Skip(format!("{what} not available here: {reason}"));
        support.clone().map_err(skip)?;
        if family == Family::BpfLsm {
            // Trampolines first: where they are refused that is the reason, whatever the rest.
            self.support.cgroup_bpf.clone().map_err(skip)?;
            self.bpf_lsm.get_or_insert_with(bpf_lsm_active).clone().map_err(skip)?;
            if mechanism == KernelMechanism::LsmCgroup {
                lsm_cgroup_kernel_ok().map_err(skip)?;
            }
        }
        Ok(())
    }

    /// This run's cgroup subtree ([`crate::backend::lazy_run_tree`]).
    fn run_tree(&mut self) -> Result<&mut RunTree, CellError> {
        crate::backend::lazy_run_tree(&mut self.run)
    }

    /// A worker's timing request for a cell of `spec`.
    fn timing_for(&self, spec: &CellSpec<'_>) -> hookbench_measure::TimingRequest {
        self.timing
            .request(kernel_samples(spec), self.timing.kernel_min_duration_ns)
    }

    /// Refuses what a one-task, one-CPU hook cell of `mechanism` does not measure.
    fn one_task_one_cpu(mechanism: KernelMechanism, spec: &CellSpec<'_>, foreign_ok: bool) -> Result<(), CellError> {
        let p = spec.params;
        if p.working_set != 1 || p.cpus != 1 || (!foreign_ok && p.foreign != 0) {
            return Err(CellError::Skip(format!(
                "{} cells measure one task on one CPU{}: working_set = {}, cpus = {}, foreign = {} are not \
                 measured by this version",
                mechanism.as_str(),
                if foreign_ok {
                    ""
                } else {
                    " with every program on the hook"
                },
                p.working_set,
                p.cpus,
                p.foreign
            )));
        }
        Ok(())
    }

    /// The hook cells of `mechanism` at `spec`'s point, from its family's file.
    ///
    /// Every family's hook cell measures one task on one CPU (cgroup-bpf also with foreign
    /// programs): other points are skipped here, before the family builds anything. The
    /// working-set mechanisms rotate W tasks on one CPU instead ([`working_set`]), the many-CPU
    /// ones pin P tasks to P CPUs ([`cpus`]).
    fn hook_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        type HookCell = fn(&mut KernelBackend, KernelMechanism, &CellSpec<'_>) -> Cells;
        if mechanism == KernelMechanism::SeccompSelftestSplit {
            if !self.once.insert((spec.suite.name.clone(), mechanism)) {
                // Measured at the suite's first point; the other points add nothing.
                return Ok(Vec::new());
            }
            return self.selftest_split_cells(spec);
        }
        if mechanism.ring_chain().is_some() {
            return self.working_set_cell(mechanism, spec);
        }
        if mechanism.cpus_chain().is_some() {
            return self.cpus_cell(mechanism, spec);
        }
        let foreign_ok = mechanism.sweeps_foreign();
        let cell: HookCell = match mechanism.family() {
            Family::Seccomp => Self::seccomp_hook_cell,
            Family::Landlock => Self::landlock_hook_cell,
            Family::CgroupBpf if mechanism.is_cgroup_bpf() => Self::cgroup_bpf_hook_cell,
            Family::BpfLsm => Self::lsm_hook_cell,
            Family::RawTracepoint => Self::rawtp_hook_cell,
            _ => {
                return Err(CellError::Skip(format!(
                    "{}: not a hook mechanism; it belongs in the setup suites",
                    mechanism.as_str()
                )))
            }
        };
        Self::one_task_one_cpu(mechanism, spec, foreign_ok)?;
        cell(self, mechanism, spec)
    }

    fn attach_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        match mechanism {
            m if m.is_cgroup_bpf() || m == KernelMechanism::LsmCgroup => self.cgroup_attach_cells(m, spec),
            KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => Err(CellError::Skip(format!(
                "{}: attaching a global lsm program regenerates the hook's trampoline and touches no cgroup, so \
                 it does not vary with descendants; not measured by this version",
                mechanism.as_str()
            ))),
            m if m.family() == Family::Landlock => self.landlock_install_cells(spec),
            m if m.family() == Family::Seccomp => self.seccomp_install_cells(m, spec),
            m => Err(CellError::Skip(format!(
                "{}: has no attach cost to measure",
                m.as_str()
            ))),
        }
    }
}

impl Drop for KernelBackend {
    /// Tears down this run's cgroup subtree and removes the scratch directory.
    ///
    /// Tearing down kills any worker left in the subtree; the scratch directory holds Landlock
    /// chains and the C attach floor.
    fn drop(&mut self) {
        if let Some(rings) = self.rings.take() {
            if let Err(e) = rings.teardown() {
                eprintln!("hookbench: warning: tearing down the working-set cells' cgroups: {e}");
            }
        }
        if let Some(run) = self.run.take() {
            if let Err(e) = run.teardown() {
                eprintln!("hookbench: warning: tearing down this run's cgroups: {e}; run `hookbench cleanup`");
            }
        }
        if self.scratch.exists() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn take_skipped(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.skipped)
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Cells {
        self.skipped.clear();
        let mechanism = spec.implementation(NAME, Impl::kernel)?;
        self.check_support(mechanism)?;
        match spec.suite.metric {
            Metric::HookLatency => self.hook_cells(mechanism, spec),
            Metric::AttachLatency => self.attach_cells(mechanism, spec),
            Metric::SetupSeconds => self.setup_cells(mechanism, spec),
            Metric::MetadataBytes => match mechanism {
                KernelMechanism::CgroupBpf => self.cgroup_bpf_metadata_cell(spec),
                KernelMechanism::SeccompShared | KernelMechanism::SeccompOwn => {
                    self.seccomp_metadata_cell(mechanism, spec)
                }
                _ => Err(CellError::Skip(format!(
                    "{}: kernel-side metadata is measured for cgroup-bpf, seccomp-shared and seccomp-own only",
                    mechanism.as_str()
                ))),
            },
        }
    }
}

/// A `hook_latency_ns` cell named `mechanism`, of the first kernel mechanism of suite `text`.
///
/// For the families' tests of what a cell records: its figures are those of the values 1 and 2 ns.
#[cfg(test)]
fn blank_test_cell(text: &str, file: &str, mechanism: &str) -> hookbench_reports::Cell {
    let suite = crate::suite::Suite::parse(text, file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let first = suite.mechanisms_for(NAME)[0].clone();
    let spec = CellSpec {
        suite: &suite,
        mechanism: &first,
        params: Params::default(),
        samples: 1,
        repetitions: 1,
        seed: 0,
    };
    let s = crate::measure::stats::Summary::from_values_ns(&[1.0, 2.0]);
    crate::backend::base_cell(&spec, NAME, mechanism, "hook_latency_ns", "ns", Params::default(), &s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::AxisLimit;
    use crate::suite::Suite;
    use hookbench_model::{ModelKind, Params};
    use hookbench_workloads::seccomp::{max_filters, FilterBody};

    /// The registry's limit of kernel mechanism `name` at `p`.
    fn point_limit(name: &str, metric: Metric, p: &Params) -> Option<AxisLimit> {
        crate::mechanism::find("kernel", name).ok()?.limit(metric, p)
    }

    const LSM_SUITE: &str = include_str!("../../../suites/lsm.toml");

    /// The registry declares every kernel mechanism with the model its variant says.
    ///
    /// The ones the LSM and getsockname comparisons rest on are also checked by name against the
    /// model those comparisons need.
    #[test]
    fn kernel_mechanisms_name_their_models() {
        let named = [
            ("lsm-cgroup", ModelKind::CgroupEffective),
            ("lsm-global", ModelKind::GlobalFilter),
            ("lsm-global-unmarked", ModelKind::GlobalFilter),
            ("seccomp-selftest-split", ModelKind::TaskChain),
            ("cgroup-bpf", ModelKind::CgroupEffective),
            ("cgroup-bpf-socket", ModelKind::CgroupEffective),
            ("seccomp-getsockname", ModelKind::TaskChain),
        ];
        let every = KernelMechanism::ALL.iter().map(|m| (m.as_str(), m.model()));
        for (name, model) in named.into_iter().chain(every) {
            assert_eq!(
                crate::mechanism::find("kernel", name).map(|m| m.model),
                Ok(model),
                "{name}"
            );
        }
    }

    #[test]
    fn the_lsm_suite_names_the_lsm_mechanisms() {
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let names: Vec<&str> = suite.mechanisms_for(NAME).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"]);
        assert!(suite.mechanisms_for("model").is_empty());
    }

    /// The getsockname mechanisms are declared with their triggers and limits, and in the suites.
    ///
    /// The suites name them where claim 1, claim 2 and claim 4 need them; their models are
    /// checked in [`kernel_mechanisms_name_their_models`].
    #[test]
    fn getsockname_mechanisms_are_declared_and_in_the_suites() {
        let names: HashSet<&str> = KernelMechanism::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names.len(), KernelMechanism::ALL.len(), "names are distinct");
        // cgroup-bpf and seccomp-getsockname share getsockname(); the socket pair shares socket().
        use hookbench_workloads::trigger::Trigger;
        assert_eq!(
            KernelMechanism::CgroupBpf.cgroup_hook().map(|(_, t)| t),
            Some(Trigger::Getsockname)
        );
        assert_eq!(
            KernelMechanism::SeccompGetsockname.seccomp(),
            Some((FilterBody::ArgLoad, Trigger::Getsockname))
        );
        assert_eq!(
            KernelMechanism::CgroupBpfSocket.cgroup_hook().map(|(_, t)| t),
            KernelMechanism::SeccompSocket.seccomp().map(|(_, t)| t)
        );
        let kernel = |text: &str, file: &str| -> Vec<String> {
            let suite = Suite::parse(text, file).expect("suite parses");
            suite.mechanisms_for(NAME).iter().map(|m| m.name.clone()).collect()
        };
        let programs = kernel(include_str!("../../../suites/programs.toml"), "programs.toml");
        assert_eq!(
            programs,
            [
                "seccomp-getsockname",
                "seccomp-socket",
                "cgroup-bpf",
                "cgroup-bpf-socket",
                "landlock",
                "lsm-cgroup",
                "lsm-global"
            ]
        );
        assert_eq!(
            kernel(include_str!("../../../suites/foreign.toml"), "foreign.toml"),
            [
                "cgroup-bpf",
                "seccomp-foreign-nr-first",
                "seccomp-foreign-arg-first",
                "seccomp-foreign-cached",
                "landlock-foreign-net"
            ]
        );
        assert!(kernel(include_str!("../../../suites/attach.toml"), "attach.toml").contains(&"cgroup-bpf".to_string()));
        // The same limits as cgroup-bpf's.
        let at = Params {
            programs: 129,
            depth: 2,
            ..Params::default()
        };
        assert_eq!(
            point_limit("cgroup-bpf-socket", Metric::HookLatency, &at).map(|l| l.max),
            Some(128)
        );
        let n = max_filters(FilterBody::ArgLoad);
        let over = Params {
            programs: n + 1,
            ..Params::default()
        };
        assert_eq!(
            point_limit("seccomp-getsockname", Metric::HookLatency, &over).map(|l| l.max),
            Some(n)
        );
    }

    fn support_of(env: &crate::env::Environment) -> KernelSupport {
        let available = |p: &crate::env::Probe| {
            if p.available {
                Ok(())
            } else {
                Err(p.reason.clone().unwrap_or_else(|| "not available".to_string()))
            }
        };
        KernelSupport {
            seccomp: available(&env.seccomp),
            landlock: available(&env.landlock_abi),
            cgroup_bpf: if env.privileged && env.cgroup2_mount.is_some() {
                available(&env.bpf)
            } else {
                Err("needs root and a cgroup v2 mount".to_string())
            },
            trampolines: available(&env.bpf_trampolines),
        }
    }

    /// Where the kernel refuses BPF trampolines, every BPF LSM cell is skipped with the reason.
    ///
    /// The reason is the probe's (this project's development host: EPERM), and the skip comes
    /// before anything is loaded or created.
    #[test]
    fn lsm_cells_are_skipped_with_the_trampoline_probes_reason() {
        let env = crate::env::Environment::probe();
        if env.bpf_trampolines.available {
            eprintln!(
                "SKIPPED lsm_cells_are_skipped_with_the_trampoline_probes_reason: this kernel allows trampolines \
                 ({}); the lsm integration test measures them",
                env.bpf_trampolines
            );
            return;
        }
        let reason = env.bpf_trampolines.reason.clone().unwrap_or_default();
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let exe = PathBuf::from("/nonexistent/hookbench");
        let timing = Timing::new(hookbench_measure::Clock::monotonic_raw().info());
        let mut backend = KernelBackend::new(exe, support_of(&env), timing);
        for mechanism in suite.mechanisms_for(NAME) {
            let spec = CellSpec {
                suite: &suite,
                mechanism,
                params: Params {
                    programs: 8,
                    ..suite.plan("smoke").expect("smoke").points[0]
                },
                samples: 10,
                repetitions: 1,
                seed: 0,
            };
            match backend.measure(&spec) {
                Err(CellError::Skip(why)) => {
                    eprintln!("{}: {why}", mechanism.name);
                    assert!(
                        why.starts_with("BPF LSM programs not available here: ") && why.contains(&reason),
                        "{why}"
                    );
                    if reason.contains("EPERM") {
                        assert!(why.contains("refused (EPERM)"), "{why}");
                    }
                }
                Err(CellError::Fatal(e)) => panic!("{}: fatal: {e:#}", mechanism.name),
                Ok(cells) => panic!("{}: measured without trampolines: {cells:?}", mechanism.name),
            }
        }
        // Nothing was created for them.
        assert!(backend.run.is_none());
    }

    #[test]
    fn point_limits_follow_the_kernels_constants() {
        let at = |programs: u32, foreign: u32, depth: u32| Params {
            programs,
            foreign,
            depth,
            ..Params::default()
        };
        let hook = Metric::HookLatency;
        let l = point_limit("landlock", hook, &at(17, 0, 1)).expect("17 layers");
        assert_eq!((l.axis, l.max), ("programs", 16));
        assert!(l.why.contains("LANDLOCK_MAX_NUM_LAYERS = 16"), "{}", l.why);
        assert!(point_limit("landlock", hook, &at(16, 0, 1)).is_none());
        // Installs do not follow the programs axis.
        assert!(point_limit("landlock", Metric::AttachLatency, &at(64, 0, 1)).is_none());
        // Network-only layers share the 16 with the filesystem ones.
        assert!(point_limit("landlock-foreign-net", hook, &at(4, 12, 1)).is_none());
        let l = point_limit("landlock-foreign-net", hook, &at(4, 13, 1)).expect("17 layers");
        assert_eq!((l.axis, l.max), ("foreign", 12));
        assert!(
            l.why.contains("LANDLOCK_MAX_NUM_LAYERS = 16") && l.why.contains("12 network-only layers fit"),
            "{}",
            l.why
        );
        assert_eq!(
            point_limit("landlock-foreign-net", hook, &at(10, 7, 1)).map(|l| l.max),
            Some(6)
        );
        let l = point_limit("landlock-foreign-net", hook, &at(17, 0, 1)).expect("17 fs layers");
        assert_eq!(l.axis, "programs");
        // 64 programs per cgroup and attach type, spread over the path.
        assert!(point_limit("cgroup-bpf", hook, &at(128, 0, 2)).is_none());
        let l = point_limit("lsm-cgroup", hook, &at(129, 0, 2)).expect("65 on level 0");
        assert_eq!((l.axis, l.max), ("programs", 128));
        assert!(l.why.contains("BPF_CGROUP_MAX_PROGS = 64"), "{}", l.why);
        // Foreign programs: 3 attach types x 2 levels = 6 placements of 64.
        assert!(point_limit("cgroup-bpf", hook, &at(4, 384, 2)).is_none());
        let l = point_limit("cgroup-bpf", hook, &at(4, 385, 2)).expect("65 on one placement");
        assert_eq!((l.axis, l.max), ("foreign", 384));
        // depth 3: foreign attach type and level move together (lcm(3, 3) = 3 placements).
        assert_eq!(
            point_limit("cgroup-bpf", hook, &at(0, 193, 3)).map(|l| l.max),
            Some(192)
        );
        let l = point_limit("lsm-global", hook, &at(39, 0, 1)).expect("39 links");
        assert!(l.why.contains("BPF_MAX_TRAMP_LINKS = 38"), "{}", l.why);
        assert!(point_limit("lsm-global-unmarked", hook, &at(38, 0, 1)).is_none());
        let n = max_filters(FilterBody::ArgLoad);
        assert!(point_limit("seccomp-socket", hook, &at(n, 0, 1)).is_none());
        assert_eq!(
            point_limit("seccomp-arg-load", hook, &at(n + 1, 0, 1)).map(|l| l.max),
            Some(n)
        );
        assert!(point_limit("setup-tasks", Metric::SetupSeconds, &at(0, 0, 1)).is_none());
    }
}
