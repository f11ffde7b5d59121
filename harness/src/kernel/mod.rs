//! The `kernel` backend: the mechanisms that shipped, measured on the running kernel in exec'd
//! worker processes, each cell interleaved with its own baseline.
//!
//! Seccomp filters and Landlock layers belong to the task that installs them and cannot be
//! removed, cgroup-bpf and `lsm_cgroup` programs run for the tasks of a cgroup: each measurement
//! runs in a fresh `hookbench worker KIND '<request>'` process (exec'd, never a fork of the
//! harness), pinned to the run's worker CPU and timed with the harness's clock through the one
//! measurement crate. A hook cell's repetitions alternate with its baseline's (the same trigger
//! with no program: an empty chain, an empty cgroup path), in a seeded order within each pair.
//! One file per mechanism family: [`seccomp`], [`landlock`], [`cgroup_bpf`], [`lsm`], [`rawtp`],
//! [`setup`].
//!
//! BPF LSM programs (`lsm-cgroup`, `lsm-global`, `lsm-global-unmarked`) run behind a BPF
//! trampoline: where the kernel refuses trampolines, where `bpf` is not an active LSM (the
//! programs would attach and never run) or, for `lsm_cgroup`, before Linux 6.0, their cells are
//! skipped with the reason.

mod cgroup_bpf;
mod landlock;
mod lsm;
mod rawtp;
mod seccomp;
mod setup;

use crate::backend::{Backend, CellError, CellSpec, Measured, Timing};
use crate::mechanism::Family;
pub use crate::mechanism::KernelMechanism;
use crate::mechanism::Metric;
use hookbench_workloads::cgroupfs::RunTree;
use hookbench_workloads::lsm::{bpf_lsm_active, lsm_cgroup_kernel_ok};
use std::collections::HashSet;
use std::path::PathBuf;

/// Name of this backend in the results.
pub const NAME: &str = "kernel";

/// Most samples per repetition a kernel cell asks for at least, whatever the suite says (the
/// model's profiles ask for thousands of sub-microsecond samples); a repetition also lasts at
/// least [`Timing::kernel_min_duration_ns`], which raises the count for cheap triggers.
pub const KERNEL_MAX_SAMPLES: usize = 2000;

/// Samples per repetition a kernel cell of `spec` asks for at least.
fn kernel_samples(spec: &CellSpec<'_>) -> usize {
    spec.samples.clamp(1, KERNEL_MAX_SAMPLES)
}

/// What the machine offers the kernel backend, from the environment probe: `Err(reason)` for a
/// mechanism the kernel lacks.
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
}

impl KernelBackend {
    /// A kernel backend whose workers are `exe` (this binary) timed as `timing` says, on a
    /// machine offering `support`. Landlock workers build their directory chains under a fresh
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

    fn hook_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        match mechanism {
            KernelMechanism::SeccompSelftestSplit => {
                if !self.once.insert((spec.suite.name.clone(), mechanism)) {
                    // Measured at the suite's first point; the other points add nothing.
                    return Ok(Vec::new());
                }
                self.selftest_split_cells(spec)
            }
            m => match m.family() {
                Family::Seccomp => self.seccomp_hook_cell(m, spec),
                Family::Landlock => self.landlock_hook_cell(spec),
                Family::CgroupBpf if m.is_cgroup_bpf() => self.cgroup_bpf_hook_cell(m, spec),
                Family::BpfLsm => self.lsm_hook_cell(m, spec),
                Family::RawTracepoint => self.rawtp_hook_cell(m, spec),
                _ => Err(CellError::Skip(format!(
                    "{}: not a hook mechanism; it belongs in the setup suites",
                    m.as_str()
                ))),
            },
        }
    }

    fn attach_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
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
    /// Tears down this run's cgroup subtree (killing any worker left in it) and removes the
    /// scratch directory (Landlock chains, the C attach floor).
    fn drop(&mut self) {
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

    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        self.skipped.clear();
        let mechanism = match crate::mechanism::find(NAME, &spec.mechanism.name).map(|m| m.implementation) {
            Ok(crate::mechanism::Impl::Kernel(k)) => k,
            _ => {
                return Err(CellError::Fatal(anyhow::anyhow!(
                    "unknown kernel mechanism {}",
                    spec.mechanism.name
                )))
            }
        };
        self.check_support(mechanism)?;
        match spec.suite.metric {
            Metric::HookLatency => self.hook_cells(mechanism, spec),
            Metric::AttachLatency => self.attach_cells(mechanism, spec),
            Metric::SetupSeconds => self.setup_cells(mechanism, spec),
            Metric::MetadataBytes if mechanism == KernelMechanism::CgroupBpf => self.cgroup_bpf_metadata_cell(spec),
            Metric::MetadataBytes => Err(CellError::Skip(format!(
                "{}: kernel-side metadata is measured for cgroup-bpf only in this version",
                mechanism.as_str()
            ))),
        }
    }
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

    #[test]
    fn lsm_mechanisms_name_their_models() {
        assert_eq!(
            crate::mechanism::find("kernel", "lsm-cgroup").map(|m| m.model),
            Ok(ModelKind::CgroupEffective)
        );
        assert_eq!(
            crate::mechanism::find("kernel", "lsm-global").map(|m| m.model),
            Ok(ModelKind::GlobalFilter)
        );
        assert_eq!(
            crate::mechanism::find("kernel", "lsm-global-unmarked").map(|m| m.model),
            Ok(ModelKind::GlobalFilter)
        );
        assert_eq!(
            crate::mechanism::find("kernel", "seccomp-selftest-split").map(|m| m.model),
            Ok(ModelKind::TaskChain)
        );
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let names: Vec<&str> = suite.mechanisms_for(NAME).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"]);
        assert!(suite.mechanisms_for("model").is_empty());
    }

    /// The getsockname mechanisms are declared with their models and triggers, and the suites
    /// name them where claim 1, claim 2 and claim 4 need them.
    #[test]
    fn getsockname_mechanisms_are_declared_and_in_the_suites() {
        assert_eq!(
            crate::mechanism::find("kernel", "cgroup-bpf").map(|m| m.model),
            Ok(ModelKind::CgroupEffective)
        );
        assert_eq!(
            crate::mechanism::find("kernel", "cgroup-bpf-socket").map(|m| m.model),
            Ok(ModelKind::CgroupEffective)
        );
        assert_eq!(
            crate::mechanism::find("kernel", "seccomp-getsockname").map(|m| m.model),
            Ok(ModelKind::TaskChain)
        );
        for m in KernelMechanism::ALL {
            assert_eq!(
                crate::mechanism::find("kernel", m.as_str()).map(|m| m.model),
                Ok(m.model()),
                "{}",
                m.as_str()
            );
        }
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
            ["cgroup-bpf"]
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

    /// Where the kernel refuses BPF trampolines (this project's development host: EPERM), every
    /// BPF LSM cell is skipped with the probe's reason, before anything is loaded or created.
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
