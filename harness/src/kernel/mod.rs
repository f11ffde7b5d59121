//! The `kernel` backend: the mechanisms that shipped, measured on the running kernel in exec'd
//! worker processes, each cell interleaved with its own baseline.
//!
//! Seccomp filters and Landlock layers belong to the task that installs them and cannot be
//! removed, cgroup-bpf and `lsm_cgroup` programs run for the tasks of a cgroup: each measurement
//! runs in a fresh `hookbench worker KIND '<request>'` process (exec'd, never a fork of the
//! harness), pinned to the run's worker CPU and timed with the harness's clock through the one
//! measurement crate. A hook cell's repetitions alternate with its baseline's (the same trigger
//! with no program: an empty chain, an empty cgroup path), in a seeded order within each pair.
//! One file per mechanism family: [`seccomp`], [`landlock`], [`cgroup_bpf`], [`lsm`], [`setup`].
//!
//! BPF LSM programs (`lsm-cgroup`, `lsm-global`, `lsm-global-unmarked`) run behind a BPF
//! trampoline: where the kernel refuses trampolines, where `bpf` is not an active LSM (the
//! programs would attach and never run) or, for `lsm_cgroup`, before Linux 6.0, their cells are
//! skipped with the reason.

mod cgroup_bpf;
mod landlock;
mod lsm;
mod seccomp;
mod setup;

use crate::backend::{Backend, CellError, CellSpec, Measured, Timing};
use crate::suite::{AxisLimit, Metric};
use hookbench_model::{ModelKind, Params};
use hookbench_workloads::cgroupfs::RunTree;
use hookbench_workloads::landlock::LANDLOCK_MAX_NUM_LAYERS;
use hookbench_workloads::lsm::MAX_GLOBAL_PROGRAMS;
use hookbench_workloads::lsm::{bpf_lsm_active, lsm_cgroup_kernel_ok};
use hookbench_workloads::seccomp::{max_filters, FilterBody};
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

/// The kernel backend's mechanisms, with the DESIGN.md model each realises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelMechanism {
    /// A stack of classic-BPF seccomp filters that load a syscall argument: the kernel's action
    /// cache cannot prove their result, so every filter of the chain runs on every syscall
    /// (`struct seccomp_filter`'s `prev` list, kernel/seccomp.c `seccomp_run_filters`).
    SeccompArgLoad,
    /// A stack of filters whose result depends only on the syscall number and arch: the action
    /// cache (`seccomp_cache_check_allow`) skips the whole chain.
    SeccompNrOnly,
    /// Argument-loading filters timed on `socket(AF_INET, SOCK_DGRAM)`, the trigger of
    /// `cgroup/sock_create` programs: the same-trigger comparison with cgroup-bpf-socket.
    SeccompSocket,
    /// Argument-loading filters timed on `getsockname()` of one bound AF_INET UDP socket, the
    /// trigger of `cgroup/getsockname4` programs: claim 2's like-with-like peer of cgroup-bpf
    /// (the smallest filter the action cache cannot skip against the null program, one syscall).
    SeccompGetsockname,
    /// The kernel selftest's own method (tools/testing/selftests/seccomp/seccomp_benchmark.c),
    /// in one worker: getppid() natively, under one and two number-only (cacheable) filters,
    /// then under a third and a fourth argument-loading (full) filter; its native, entry and
    /// per-filter split is the peer of the fitted one.
    SeccompSelftestSplit,
    /// A Landlock domain of N stacked layers (`landlock_restrict_self`), timed on `open()` of an
    /// allowed file `depth` directories down: every layer is checked for every path component
    /// (security/landlock/fs.c `is_access_to_paths_allowed`).
    Landlock,
    /// N `cgroup/getsockname4` programs (`BPF_CGROUP_INET4_GETSOCKNAME`, Linux 5.8+) attached
    /// with `BPF_F_ALLOW_MULTI` over a path of `depth` cgroups (program i at level i % depth)
    /// plus `foreign` programs on other attach types, timed on `getsockname()` of a socket made
    /// by a task in the deepest cgroup: `inet_getname()` runs the socket's cgroup's
    /// `bpf.effective[CGROUP_INET4_GETSOCKNAME]` (kernel/bpf/cgroup.c
    /// `__cgroup_bpf_run_filter_sock_addr`). The cheap trigger, batched.
    CgroupBpf,
    /// The same with `cgroup/sock_create` programs (`BPF_CGROUP_INET_SOCK_CREATE`) timed on
    /// `socket()` (`inet_create()`): the second trigger, one call per sample, about 1 us each.
    CgroupBpfSocket,
    /// N `lsm_cgroup/socket_create` programs (`BPF_LSM_CGROUP`, Linux >= 6.0) over a path of
    /// `depth` cgroups, timed on `socket()` from the leaf: the shim
    /// `__cgroup_bpf_run_lsm_current` runs the cgroup's effective array behind the hook's BPF
    /// trampoline. Needs trampolines and `bpf` an active LSM.
    LsmCgroup,
    /// N global `lsm/socket_create` programs (`BPF_LSM_MAC`, run for every task), each checking
    /// its task storage (the worker marked itself) before its body; timed on `socket()` from the
    /// marked worker, which attaches them for as long as it measures. At most
    /// `BPF_MAX_TRAMP_LINKS` (38).
    LsmGlobal,
    /// The same N global programs timed from a worker that is *not* marked: what every other
    /// task of the machine pays per `socket()`.
    LsmGlobalUnmarked,
    /// Set-up and tear-down of C cgroups against the floor: a plain mkdir/rmdir loop.
    SetupCgroups,
    /// Set-up and tear-down of T idle tasks spread over cgroups against the floor: fork + write
    /// to `cgroup.procs`, then kill + reap.
    SetupTasks,
}

impl KernelMechanism {
    /// Every kernel mechanism of this version.
    pub const ALL: [KernelMechanism; 13] = [
        KernelMechanism::SeccompArgLoad,
        KernelMechanism::SeccompNrOnly,
        KernelMechanism::SeccompSocket,
        KernelMechanism::SeccompGetsockname,
        KernelMechanism::SeccompSelftestSplit,
        KernelMechanism::Landlock,
        KernelMechanism::CgroupBpf,
        KernelMechanism::CgroupBpfSocket,
        KernelMechanism::LsmCgroup,
        KernelMechanism::LsmGlobal,
        KernelMechanism::LsmGlobalUnmarked,
        KernelMechanism::SetupCgroups,
        KernelMechanism::SetupTasks,
    ];

    /// The results name, e.g. "seccomp-arg-load".
    pub fn as_str(self) -> &'static str {
        match self {
            KernelMechanism::SeccompArgLoad => "seccomp-arg-load",
            KernelMechanism::SeccompNrOnly => "seccomp-nr-only",
            KernelMechanism::SeccompSocket => "seccomp-socket",
            KernelMechanism::SeccompGetsockname => "seccomp-getsockname",
            KernelMechanism::SeccompSelftestSplit => "seccomp-selftest-split",
            KernelMechanism::Landlock => "landlock",
            KernelMechanism::CgroupBpf => "cgroup-bpf",
            KernelMechanism::CgroupBpfSocket => "cgroup-bpf-socket",
            KernelMechanism::LsmCgroup => "lsm-cgroup",
            KernelMechanism::LsmGlobal => "lsm-global",
            KernelMechanism::LsmGlobalUnmarked => "lsm-global-unmarked",
            KernelMechanism::SetupCgroups => "setup-cgroups",
            KernelMechanism::SetupTasks => "setup-tasks",
        }
    }

    /// The dispatch model the mechanism realises: seccomp stacks and Landlock domains are
    /// per-task chains, cgroup-bpf and `lsm_cgroup` are per-cgroup effective arrays, global BPF
    /// LSM programs that each check whether they apply (task storage) are global filters.
    pub fn model(self) -> ModelKind {
        match self {
            KernelMechanism::CgroupBpf
            | KernelMechanism::CgroupBpfSocket
            | KernelMechanism::LsmCgroup
            | KernelMechanism::SetupCgroups => ModelKind::CgroupEffective,
            KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => ModelKind::GlobalFilter,
            _ => ModelKind::TaskChain,
        }
    }

    /// Whether the mechanism is a BPF LSM one (needs trampolines and the `bpf` LSM).
    fn is_lsm(self) -> bool {
        matches!(
            self,
            KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked
        )
    }

    /// Whether the mechanism is one of the seccomp ones.
    fn is_seccomp(self) -> bool {
        matches!(
            self,
            KernelMechanism::SeccompArgLoad
                | KernelMechanism::SeccompNrOnly
                | KernelMechanism::SeccompSocket
                | KernelMechanism::SeccompGetsockname
                | KernelMechanism::SeccompSelftestSplit
        )
    }

    /// Whether the mechanism is one of the cgroup-bpf ones (cgroup-bpf, cgroup-bpf-socket).
    fn is_cgroup_bpf(self) -> bool {
        matches!(self, KernelMechanism::CgroupBpf | KernelMechanism::CgroupBpfSocket)
    }
}

/// Checks a `[backend.kernel]` mechanism name of a suite; returns its model.
pub fn kernel_mechanism(name: &str) -> Result<ModelKind, String> {
    KernelMechanism::ALL
        .into_iter()
        .find(|m| m.as_str() == name)
        .map(KernelMechanism::model)
        .ok_or_else(|| {
            format!(
                "unknown mechanism '{name}': expected one of {}",
                KernelMechanism::ALL.map(KernelMechanism::as_str).join(", ")
            )
        })
}

/// The limit a `hook_latency_ns` point of kernel `mechanism` goes beyond, if any: Landlock's
/// `LANDLOCK_MAX_NUM_LAYERS` (16 layers), the seccomp instruction budget
/// ([`max_filters`], `MAX_INSNS_PER_PATH`), `BPF_CGROUP_MAX_PROGS` (64 programs per cgroup and
/// attach type, with program `i` at level `i % depth` and foreign program `j` on foreign attach
/// type `j % 3` at level `j % depth`), and a BPF trampoline's `BPF_MAX_TRAMP_LINKS` (38 global
/// `lsm` programs). The kernel refuses such a point whatever the machine, so suites must stay
/// inside these limits (checked when a suite is parsed). Other metrics install or attach a fixed
/// number of programs and have none; an unknown mechanism has none either.
pub fn point_limit(mechanism: &str, metric: Metric, p: &Params) -> Option<AxisLimit> {
    let mechanism = KernelMechanism::ALL.into_iter().find(|m| m.as_str() == mechanism)?;
    if metric != Metric::HookLatency {
        return None;
    }
    let cap = hookbench_model::BPF_CGROUP_MAX_PROGS as u32;
    let depth = p.depth.max(1);
    let limit = |axis: &'static str, max: u32, why: String| {
        (p.axis(axis).unwrap_or(0) > max).then_some(AxisLimit { axis, max, why })
    };
    let per_cgroup = |max: u32| {
        format!(
            "the path of depth = {depth} cgroups holds at most {max} programs on one attach type: \
             BPF_CGROUP_MAX_PROGS = {cap} per cgroup and attach type (kernel/bpf/cgroup.c: __cgroup_bpf_attach \
             returns E2BIG)"
        )
    };
    match mechanism {
        KernelMechanism::Landlock => limit(
            "programs",
            LANDLOCK_MAX_NUM_LAYERS,
            format!(
                "a Landlock domain stacks at most LANDLOCK_MAX_NUM_LAYERS = {LANDLOCK_MAX_NUM_LAYERS} layers \
                 (security/landlock/limits.h; landlock_restrict_self returns E2BIG beyond)"
            ),
        ),
        KernelMechanism::CgroupBpf | KernelMechanism::CgroupBpfSocket | KernelMechanism::LsmCgroup => {
            let programs = limit("programs", cap * depth, per_cgroup(cap * depth));
            // Foreign program j sits on attach type j % 3 at level j % depth: each of the
            // lcm(3, depth) placements takes every lcm-th program.
            let types = hookbench_workloads::cgroup_bpf::FOREIGN_ATTACH_TYPES;
            let lcm = types * depth / gcd(types, depth);
            let foreign = || {
                limit(
                    "foreign",
                    cap * lcm,
                    format!(
                        "{} foreign programs spread over {types} foreign attach types; {}",
                        cap * lcm,
                        per_cgroup(cap * lcm)
                    ),
                )
            };
            programs.or_else(|| mechanism.is_cgroup_bpf().then(foreign).flatten())
        }
        KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => limit(
            "programs",
            MAX_GLOBAL_PROGRAMS,
            format!(
                "a BPF trampoline holds at most BPF_MAX_TRAMP_LINKS = {MAX_GLOBAL_PROGRAMS} programs \
                 (kernel/bpf/trampoline.c: bpf_trampoline_link_prog returns E2BIG)"
            ),
        ),
        KernelMechanism::SeccompArgLoad
        | KernelMechanism::SeccompNrOnly
        | KernelMechanism::SeccompSocket
        | KernelMechanism::SeccompGetsockname => {
            let body = mechanism.seccomp().map(|(body, _)| body).unwrap_or(FilterBody::ArgLoad);
            limit(
                "programs",
                max_filters(body),
                format!(
                    "a task's filters may hold at most MAX_INSNS_PER_PATH instructions in all, {} of these filters \
                     (kernel/seccomp.c: seccomp_attach_filter returns ENOMEM beyond)",
                    max_filters(body)
                ),
            )
        }
        KernelMechanism::SeccompSelftestSplit | KernelMechanism::SetupCgroups | KernelMechanism::SetupTasks => None,
    }
}

/// Greatest common divisor (Euclid).
fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
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
        let (what, support) = match mechanism {
            KernelMechanism::Landlock => ("Landlock", &self.support.landlock),
            KernelMechanism::CgroupBpf
            | KernelMechanism::CgroupBpfSocket
            | KernelMechanism::SetupCgroups
            | KernelMechanism::SetupTasks => ("cgroup v2 trees", &self.support.cgroup_bpf),
            KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => {
                ("BPF LSM programs", &self.support.trampolines)
            }
            _ => ("seccomp filters", &self.support.seccomp),
        };
        let skip = |reason: String| CellError::Skip(format!("{what} not available here: {reason}"));
        support.clone().map_err(skip)?;
        if mechanism.is_lsm() {
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
            m if m.is_seccomp() => self.seccomp_hook_cell(m, spec),
            KernelMechanism::Landlock => self.landlock_hook_cell(spec),
            m if m.is_cgroup_bpf() => self.cgroup_bpf_hook_cell(m, spec),
            m if m.is_lsm() => self.lsm_hook_cell(m, spec),
            m => Err(CellError::Skip(format!(
                "{}: not a hook mechanism; it belongs in the setup suites",
                m.as_str()
            ))),
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
            KernelMechanism::Landlock => self.landlock_install_cells(spec),
            m if m.is_seccomp() => self.seccomp_install_cells(m, spec),
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
        let mechanism = KernelMechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == spec.mechanism.name)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("unknown kernel mechanism {}", spec.mechanism.name)))?;
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
    use crate::suite::Suite;

    const LSM_SUITE: &str = include_str!("../../../suites/lsm.toml");

    #[test]
    fn lsm_mechanisms_name_their_models() {
        assert_eq!(kernel_mechanism("lsm-cgroup"), Ok(ModelKind::CgroupEffective));
        assert_eq!(kernel_mechanism("lsm-global"), Ok(ModelKind::GlobalFilter));
        assert_eq!(kernel_mechanism("lsm-global-unmarked"), Ok(ModelKind::GlobalFilter));
        assert_eq!(kernel_mechanism("seccomp-selftest-split"), Ok(ModelKind::TaskChain));
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let names: Vec<&str> = suite.mechanisms_for(NAME).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"]);
        assert!(suite.mechanisms_for("model").is_empty());
    }

    /// The getsockname mechanisms are declared with their models and triggers, and the suites
    /// name them where claim 1, claim 2 and claim 4 need them.
    #[test]
    fn getsockname_mechanisms_are_declared_and_in_the_suites() {
        assert_eq!(kernel_mechanism("cgroup-bpf"), Ok(ModelKind::CgroupEffective));
        assert_eq!(kernel_mechanism("cgroup-bpf-socket"), Ok(ModelKind::CgroupEffective));
        assert_eq!(kernel_mechanism("seccomp-getsockname"), Ok(ModelKind::TaskChain));
        for m in KernelMechanism::ALL {
            assert_eq!(kernel_mechanism(m.as_str()), Ok(m.model()), "{}", m.as_str());
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
