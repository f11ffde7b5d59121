//! The one registry of mechanisms: every mechanism of every backend, declared once.
//!
//! An entry holds the dispatch model the mechanism realises, what it times, which metrics it can
//! measure and its limits.
//!
//! Suites are checked against this table (a suite names mechanisms per backend, `suite.rs`
//! never looks into a backend), `hookbench list` and `doctor` read it, and each backend
//! finds its implementation from the entry's [`Impl`]. Adding a mechanism: an entry here (and,
//! for the kernel backend, a [`KernelMechanism`] variant beside it), its implementation in its
//! family's file (harness/src/kernel/<family>.rs, the model crate, kernels/kmod), and a suite
//! that names it (ARCHITECTURE.md has the checklist).

mod limits;

use hookbench_model::{Mechanism as ModelMechanism, ModelKind, Params};
use limits::{kernel_limit, kmod_limit};

/// What a suite measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Latency of one hook invocation against the same trigger with no program: `hook_latency_ns`.
    HookLatency,
    /// Latency of attaching one program, and of detaching it again: `attach_latency_ns`.
    ///
    /// The detach figures are `detach_latency_ns` cells.
    AttachLatency,
    /// Bytes of the dispatch metadata: `metadata_bytes`.
    MetadataBytes,
    /// Seconds to set a workload of C cgroups or T tasks up: `setup_seconds`.
    ///
    /// With `teardown_seconds` cells and the kernel's floor for the same syscalls.
    SetupSeconds,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 4] = [
        Metric::HookLatency,
        Metric::AttachLatency,
        Metric::MetadataBytes,
        Metric::SetupSeconds,
    ];

    /// The results name of the metric.
    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::HookLatency => "hook_latency_ns",
            Metric::AttachLatency => "attach_latency_ns",
            Metric::MetadataBytes => "metadata_bytes",
            Metric::SetupSeconds => "setup_seconds",
        }
    }

    /// The metric named `s`, if any.
    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A point beyond a limit of a mechanism, which the kernel refuses on every machine.
///
/// It holds the axis, the largest value allowed there, and the limit in words (its kernel name
/// and source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisLimit {
    /// The axis that goes beyond the limit, e.g. "programs".
    pub axis: &'static str,
    /// The largest value of `axis` the mechanism takes at this point.
    pub max: u32,
    /// The limit, e.g. "a Landlock domain stacks at most LANDLOCK_MAX_NUM_LAYERS = 16 layers".
    pub why: String,
}

/// The backends, by their results name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The userspace model of every dispatch model.
    Model,
    /// The mechanisms that shipped, on the running kernel.
    Kernel,
    /// hookbench.ko, every model inside the kernel.
    Kmod,
}

impl BackendKind {
    /// Every backend.
    pub const ALL: [BackendKind; 3] = [BackendKind::Model, BackendKind::Kernel, BackendKind::Kmod];

    /// The results name, e.g. "kernel".
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::Model => "model",
            BackendKind::Kernel => "kernel",
            BackendKind::Kmod => "kmod",
        }
    }
}

/// What a mechanism needs from the machine, by family (what `doctor` reports per family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Userspace: needs nothing.
    Model,
    /// seccomp filters: no root (no_new_privs).
    Seccomp,
    /// Landlock layers: no root, Landlock enabled.
    Landlock,
    /// cgroup v2 trees and cgroup-bpf programs: root and a cgroup v2 mount.
    CgroupBpf,
    /// BPF LSM programs: root, BPF trampolines and `bpf` in `lsm=`.
    BpfLsm,
    /// Global raw tracepoint programs on `sys_enter`: root, a cgroup v2 mount, no trampoline.
    RawTracepoint,
    /// hookbench.ko: root and the module loaded.
    Kmod,
}

impl Family {
    /// The family's name, e.g. "cgroup-bpf".
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Model => "model",
            Family::Seccomp => "seccomp",
            Family::Landlock => "Landlock",
            Family::CgroupBpf => "cgroup-bpf",
            Family::BpfLsm => "BPF LSM",
            Family::RawTracepoint => "raw tracepoint",
            Family::Kmod => "kmod",
        }
    }

    /// The names of the registered mechanisms of this family.
    pub fn mechanisms(self) -> Vec<&'static str> {
        REGISTRY.iter().filter(|m| m.family == self).map(|m| m.name).collect()
    }
}

/// How the backend implements a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// A world of the model crate.
    Model(ModelMechanism),
    /// A kernel mechanism (harness/src/kernel/).
    Kernel(KernelMechanism),
    /// A model inside hookbench.ko, fired by its in-kernel loop or by one ioctl per hook.
    Kmod {
        /// The model.
        model: ModelKind,
        /// One FIRE ioctl per hook (`<model>-ioctl`) instead of the in-kernel loop.
        ioctl: bool,
        /// The module's built-in null body (`<model>-builtin`) instead of BPF programs.
        builtin: bool,
    },
}

impl Impl {
    /// The kernel mechanism, if this is one.
    pub fn kernel(self) -> Option<KernelMechanism> {
        match self {
            Impl::Kernel(k) => Some(k),
            _ => None,
        }
    }

    /// The model world, if this is one.
    pub fn model(self) -> Option<ModelMechanism> {
        match self {
            Impl::Model(m) => Some(m),
            _ => None,
        }
    }
}

/// One mechanism: how a backend realises a dispatch model, declared once.
#[derive(Debug, Clone, Copy)]
pub struct MechanismInfo {
    /// The results name, e.g. "seccomp-arg-load".
    pub name: &'static str,
    /// The backend that measures it.
    pub backend: BackendKind,
    /// The dispatch model it realises (ARCHITECTURE.md, "Names").
    pub model: ModelKind,
    /// What it needs from the machine.
    pub family: Family,
    /// The metrics a suite may measure with it.
    pub metrics: &'static [Metric],
    /// What is timed, in one line (for `hookbench list` and the docs).
    pub times: &'static str,
    /// Its implementation.
    pub implementation: Impl,
}

impl MechanismInfo {
    /// The limit `p` goes beyond for `metric`, if any, so that a suite does not plan `p`.
    ///
    /// The kernel refuses such a point on every machine.
    pub fn limit(&self, metric: Metric, p: &Params) -> Option<AxisLimit> {
        match self.implementation {
            Impl::Kernel(k) => kernel_limit(k, metric, p),
            Impl::Kmod { model, ioctl, .. } => kmod_limit(model, ioctl, metric, p),
            Impl::Model(_) => None,
        }
    }
}

const HOOK: &[Metric] = &[Metric::HookLatency];
const HOOK_ATTACH: &[Metric] = &[Metric::HookLatency, Metric::AttachLatency];
const MODEL_ALL: &[Metric] = &[Metric::HookLatency, Metric::AttachLatency, Metric::MetadataBytes];
const CGROUP_BPF: &[Metric] = &[Metric::HookLatency, Metric::AttachLatency, Metric::MetadataBytes];
const SETUP: &[Metric] = &[Metric::SetupSeconds];
const METADATA: &[Metric] = &[Metric::MetadataBytes];

/// A model-backend entry.
const fn model(m: ModelMechanism, times: &'static str) -> MechanismInfo {
    MechanismInfo {
        name: m.as_str(),
        backend: BackendKind::Model,
        model: m.model(),
        family: Family::Model,
        metrics: MODEL_ALL,
        times,
        implementation: Impl::Model(m),
    }
}

/// A kernel-backend entry.
const fn kernel(k: KernelMechanism, family: Family, metrics: &'static [Metric], times: &'static str) -> MechanismInfo {
    MechanismInfo {
        name: k.as_str(),
        backend: BackendKind::Kernel,
        model: k.model(),
        family,
        metrics,
        times,
        implementation: Impl::Kernel(k),
    }
}

/// A kmod-backend entry.
const fn kmod(name: &'static str, model: ModelKind, ioctl: bool) -> MechanismInfo {
    MechanismInfo {
        name,
        backend: BackendKind::Kmod,
        model,
        family: Family::Kmod,
        metrics: if ioctl { HOOK } else { HOOK_ATTACH },
        times: if ioctl {
            "one FIRE ioctl per hook of hookbench.ko's synthetic hook, timed in userspace"
        } else {
            "hookbench.ko's in-kernel timed loop over its synthetic hook: pure dispatch"
        },
        implementation: Impl::Kmod {
            model,
            ioctl,
            builtin: false,
        },
    }
}

/// A kmod-backend entry whose measured programs are the module's built-in null body.
const fn kmod_builtin(name: &'static str, model: ModelKind) -> MechanismInfo {
    MechanismInfo {
        name,
        backend: BackendKind::Kmod,
        model,
        family: Family::Kmod,
        metrics: HOOK,
        times: "hookbench.ko's in-kernel timed loop with the module's built-in null body (a native call, \
                no BPF): pure dispatch, the same with or without a BPF JIT",
        implementation: Impl::Kmod {
            model,
            ioctl: false,
            builtin: true,
        },
    }
}

/// Every mechanism of this version, by backend.
///
/// A `static`, not a `const`: one table in the binary, so the entry [`find`] returns is the
/// registry's own (a `const` would be copied at every use).
pub static REGISTRY: [MechanismInfo; 46] = [
    model(
        ModelMechanism::ChainWalk,
        "walk every node of the task's chain, run the matching ones",
    ),
    model(
        ModelMechanism::HookIndex,
        "index the task's per-hook table, run that hook's list",
    ),
    model(
        ModelMechanism::EffectiveArray,
        "css_set -> cgroup -> effective[hook], run the array",
    ),
    model(
        ModelMechanism::HandleLoop,
        "every global program loops over its cgroup handles",
    ),
    model(
        ModelMechanism::CgroupIdMap,
        "one global program looks the cgroup id up in a map",
    ),
    kernel(
        KernelMechanism::SeccompArgLoad,
        Family::Seccomp,
        HOOK_ATTACH,
        "getppid() under N argument-loading filters (every filter runs)",
    ),
    kernel(
        KernelMechanism::SeccompNrOnly,
        Family::Seccomp,
        HOOK,
        "getppid() under N number-only filters (the action cache skips the chain)",
    ),
    kernel(
        KernelMechanism::SeccompSocket,
        Family::Seccomp,
        HOOK,
        "socket() under N argument-loading filters (cgroup-bpf-socket's trigger)",
    ),
    kernel(
        KernelMechanism::SeccompGetsockname,
        Family::Seccomp,
        HOOK,
        "getsockname() under N argument-loading filters (cgroup-bpf's trigger)",
    ),
    kernel(
        KernelMechanism::SeccompSelftestSplit,
        Family::Seccomp,
        HOOK,
        "the seccomp selftest's steps: native, 1-2 cached, 3rd-4th full filters",
    ),
    kernel(
        KernelMechanism::SeccompForeignNrFirst,
        Family::Seccomp,
        HOOK,
        "getsockname() under N arg-load filters + F number-first filters for getpeername",
    ),
    kernel(
        KernelMechanism::SeccompForeignArgFirst,
        Family::Seccomp,
        HOOK,
        "getsockname() under N arg-load filters + F argument-first filters for getpeername",
    ),
    kernel(
        KernelMechanism::SeccompForeignCached,
        Family::Seccomp,
        HOOK,
        "getsockname() under F number-first filters for getpeername only (cache skips all)",
    ),
    kernel(
        KernelMechanism::Landlock,
        Family::Landlock,
        HOOK_ATTACH,
        "open() of a file depth directories down under N Landlock layers",
    ),
    kernel(
        KernelMechanism::LandlockForeignNet,
        Family::Landlock,
        HOOK,
        "open() under N filesystem Landlock layers + F network-only layers stacked above them",
    ),
    kernel(
        KernelMechanism::CgroupBpf,
        Family::CgroupBpf,
        CGROUP_BPF,
        "getsockname() with N cgroup/getsockname4 programs over the cgroup path",
    ),
    kernel(
        KernelMechanism::CgroupBpfSocket,
        Family::CgroupBpf,
        HOOK,
        "socket() with N cgroup/sock_create programs over the cgroup path",
    ),
    kernel(
        KernelMechanism::LsmCgroup,
        Family::BpfLsm,
        HOOK_ATTACH,
        "socket() with N lsm_cgroup/socket_create programs over the cgroup path",
    ),
    kernel(
        KernelMechanism::LsmGlobal,
        Family::BpfLsm,
        HOOK_ATTACH,
        "socket() with N global lsm/socket_create programs checking task storage",
    ),
    kernel(
        KernelMechanism::LsmGlobalUnmarked,
        Family::BpfLsm,
        HOOK_ATTACH,
        "the same from a task the global programs do not apply to",
    ),
    kernel(
        KernelMechanism::RawtpHandleLoop,
        Family::RawTracepoint,
        HOOK,
        "getppid() in the last of H cgroups; a sys_enter program loops over their handles",
    ),
    kernel(
        KernelMechanism::RawtpCgroupIdMap,
        Family::RawTracepoint,
        HOOK,
        "getppid() in one of H cgroups; a sys_enter program looks its id up in a map",
    ),
    kernel(
        KernelMechanism::RawtpHandleLoopOutside,
        Family::RawTracepoint,
        HOOK,
        "the handle loop from a task in none of the H handles (every other task)",
    ),
    kernel(
        KernelMechanism::RawtpCgroupIdMapOutside,
        Family::RawTracepoint,
        HOOK,
        "the cgroup-id map from a task in none of the H cgroups (every other task)",
    ),
    kernel(
        KernelMechanism::SetupCgroups,
        Family::CgroupBpf,
        SETUP,
        "set-up and tear-down of C cgroups against the mkdir/rmdir floor and C",
    ),
    kernel(
        KernelMechanism::SetupTasks,
        Family::CgroupBpf,
        SETUP,
        "set-up and tear-down of T tasks against the fork/procs/kill floor and C",
    ),
    kernel(
        KernelMechanism::SeccompWorkingSet,
        Family::Seccomp,
        HOOK,
        "getsockname() by W tasks in turn on one CPU, each with N argument-loading filters",
    ),
    kernel(
        KernelMechanism::CgroupBpfWorkingSet,
        Family::CgroupBpf,
        HOOK,
        "getsockname() by W tasks in turn on one CPU, each in a cgroup with N programs",
    ),
    kernel(
        KernelMechanism::SeccompShared,
        Family::Seccomp,
        METADATA,
        "kernel bytes of T tasks forked after their parent installed N filters",
    ),
    kernel(
        KernelMechanism::SeccompOwn,
        Family::Seccomp,
        METADATA,
        "kernel bytes of T tasks that each installed N filters of their own",
    ),
    kernel(
        KernelMechanism::SeccompCpusOwn,
        Family::Seccomp,
        HOOK,
        "getsockname() by P tasks pinned to P CPUs at once, each with its own N filters",
    ),
    kernel(
        KernelMechanism::SeccompCpusShared,
        Family::Seccomp,
        HOOK,
        "getsockname() by P tasks pinned to P CPUs at once, all under one inherited chain of N",
    ),
    kernel(
        KernelMechanism::CgroupBpfCpusOwn,
        Family::CgroupBpf,
        HOOK,
        "getsockname() by P tasks pinned to P CPUs at once, each in its own cgroup with N programs",
    ),
    kernel(
        KernelMechanism::CgroupBpfCpusShared,
        Family::CgroupBpf,
        HOOK,
        "getsockname() by P tasks pinned to P CPUs at once, all in one cgroup with N programs",
    ),
    kmod("task-chain", ModelKind::TaskChain, false),
    kmod("task-hook-array", ModelKind::TaskHookArray, false),
    kmod("cgroup-effective", ModelKind::CgroupEffective, false),
    kmod("global-filter", ModelKind::GlobalFilter, false),
    kmod("task-chain-ioctl", ModelKind::TaskChain, true),
    kmod("task-hook-array-ioctl", ModelKind::TaskHookArray, true),
    kmod("cgroup-effective-ioctl", ModelKind::CgroupEffective, true),
    kmod("global-filter-ioctl", ModelKind::GlobalFilter, true),
    kmod_builtin("task-chain-builtin", ModelKind::TaskChain),
    kmod_builtin("task-hook-array-builtin", ModelKind::TaskHookArray),
    kmod_builtin("cgroup-effective-builtin", ModelKind::CgroupEffective),
    kmod_builtin("global-filter-builtin", ModelKind::GlobalFilter),
];

/// The mechanism `name` of `backend`.
///
/// Errors: the backend is unknown, or it has no such mechanism (the message lists its names).
pub fn find(backend: &str, name: &str) -> Result<&'static MechanismInfo, String> {
    let Some(b) = BackendKind::ALL.into_iter().find(|b| b.as_str() == backend) else {
        return Err(format!(
            "unknown backend '{backend}': this version of hookbench has {}",
            BackendKind::ALL.map(|b| format!("[backend.{}]", b.as_str())).join(", ")
        ));
    };
    REGISTRY
        .iter()
        .find(|m| m.backend == b && m.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = REGISTRY.iter().filter(|m| m.backend == b).map(|m| m.name).collect();
            format!("unknown mechanism '{name}': expected one of {}", names.join(", "))
        })
}

/// The kernel backend's mechanisms, with the dispatch model (ARCHITECTURE.md) each realises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelMechanism {
    /// A stack of classic-BPF seccomp filters that load a syscall argument, all run every time.
    ///
    /// The kernel's action cache cannot prove their result, so every filter of the chain runs on
    /// every syscall (`struct seccomp_filter`'s `prev` list, kernel/seccomp.c
    /// `seccomp_run_filters`).
    SeccompArgLoad,
    /// A stack of filters whose result depends only on the syscall number and arch.
    ///
    /// The action cache (`seccomp_cache_check_allow`) skips the whole chain.
    SeccompNrOnly,
    /// Argument-loading filters timed on `socket(AF_INET, SOCK_DGRAM)`, cgroup-bpf-socket's peer.
    ///
    /// `socket()` is the trigger of `cgroup/sock_create` programs: the same-trigger comparison.
    SeccompSocket,
    /// Argument-loading filters timed on `getsockname()`: claim 2's like-with-like peer.
    ///
    /// `getsockname()` of one bound AF_INET UDP socket is the trigger of `cgroup/getsockname4`
    /// programs: the smallest filter the action cache cannot skip against the null program, on
    /// one syscall.
    SeccompGetsockname,
    /// The kernel selftest's own method, in one worker: the peer of the fitted per-filter split.
    ///
    /// As tools/testing/selftests/seccomp/seccomp_benchmark.c does: getppid() natively, under one
    /// and two number-only (cacheable) filters, then under a third and a fourth argument-loading
    /// (full) filter, split into native, entry and per-filter costs.
    SeccompSelftestSplit,
    /// Claim 1's task chain on the kernel: on-hook filters plus filters for another syscall.
    ///
    /// `programs` argument-loading filters on `getsockname()` plus `foreign` filters for another
    /// syscall in libseccomp's shape (number checked first).
    ///
    /// The on-hook filters keep the action cache off for the syscall, so the foreign filters run
    /// too (kernel/seccomp.c `seccomp_cache_check_allow` reads one bitmap for the whole chain).
    SeccompForeignNrFirst,
    /// The same with the foreign filters loading `args[0]` before the number check.
    ///
    /// The cache could not skip them even without on-hook filters.
    SeccompForeignArgFirst,
    /// `foreign` number-first filters for another syscall alone, which the action cache skips.
    ///
    /// With no on-hook filter the cache proves `getsockname()` allowed by the whole chain.
    SeccompForeignCached,
    /// A Landlock domain of N stacked layers (`landlock_restrict_self`), timed on `open()`.
    ///
    /// The file opened is allowed, `depth` directories down: every layer is checked for every
    /// path component (security/landlock/fs.c `is_access_to_paths_allowed`).
    Landlock,
    /// Claim 1's Landlock chain: `programs` filesystem layers plus `foreign` network-only layers.
    ///
    /// The foreign layers handle only `LANDLOCK_ACCESS_NET_BIND_TCP | CONNECT_TCP` (ABI 4+) and
    /// are stacked above the filesystem ones; timed on the same `open()` as `landlock`. The fs
    /// hook tests each of them twice (`landlock_get_applicable_subject`, then
    /// `landlock_init_layer_masks`) and never looks a rule up for them (workloads' landlock.rs).
    LandlockForeignNet,
    /// N `cgroup/getsockname4` programs over a path of cgroups, timed on `getsockname()`.
    ///
    /// `BPF_CGROUP_INET4_GETSOCKNAME` (Linux 5.8+) programs attached with `BPF_F_ALLOW_MULTI`
    /// over a path of `depth` cgroups (program i at level i % depth) plus `foreign` programs on
    /// other attach types, timed on `getsockname()` of a socket made by a task in the deepest
    /// cgroup: `inet_getname()` runs the socket's cgroup's
    /// `bpf.effective[CGROUP_INET4_GETSOCKNAME]` (kernel/bpf/cgroup.c
    /// `__cgroup_bpf_run_filter_sock_addr`). The cheap trigger, batched.
    CgroupBpf,
    /// The same with `cgroup/sock_create` programs (`BPF_CGROUP_INET_SOCK_CREATE`) on `socket()`.
    ///
    /// `socket()` (`inet_create()`) is the second trigger: one call per sample, about 1 us each.
    CgroupBpfSocket,
    /// N `lsm_cgroup/socket_create` programs (`BPF_LSM_CGROUP`) over a path of cgroups.
    ///
    /// The path has `depth` cgroups; timed on `socket()` from the leaf: the shim
    /// `__cgroup_bpf_run_lsm_current` runs the cgroup's effective array behind the hook's BPF
    /// trampoline. Needs Linux >= 6.0, trampolines and `bpf` an active LSM.
    LsmCgroup,
    /// N global `lsm/socket_create` programs (`BPF_LSM_MAC`) that each check whether they apply.
    ///
    /// They run for every task. Each checks its task storage (the worker marked itself) before
    /// its body; timed on `socket()` from the marked worker, which attaches them for as long as
    /// it measures. At most `BPF_MAX_TRAMP_LINKS` (38).
    LsmGlobal,
    /// The same N global programs timed from a worker that is *not* marked.
    ///
    /// This is what every other task of the machine pays per `socket()`.
    LsmGlobalUnmarked,
    /// One global raw tracepoint program on `sys_enter` that loops over H cgroup handles.
    ///
    /// RFC v2 patch 09/10's shape: `bpf_current_task_under_cgroup` on each entry of a
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`, timed on `getppid()` (the only syscall it acts on) from a
    /// worker in the last handle, where the loop matches at its end. H = the `cgroups` axis.
    RawtpHandleLoop,
    /// The same program with one `bpf_get_current_cgroup_id()` lookup in a hash map of H ids.
    RawtpCgroupIdMap,
    /// The handle loop timed from a worker in none of the handles: every other task's price.
    RawtpHandleLoopOutside,
    /// The cgroup-id map timed from a worker in none of the H cgroups: every other task's price.
    RawtpCgroupIdMapOutside,
    /// Set-up and tear-down of C cgroups against the floor: a plain mkdir/rmdir loop.
    SetupCgroups,
    /// Set-up and tear-down of T idle tasks spread over cgroups against the floor.
    ///
    /// Set-up is fork and a write to `cgroup.procs`; tear-down is kill and reap.
    SetupTasks,
    /// W tasks on one CPU take turns on `getsockname()`, each with its own chain of N filters.
    ///
    /// The argument-loading filters of `seccomp-getsockname`, one chain per task: between two
    /// turns of a task the CPU ran the W - 1 others, so with thousands of tasks the walk finds
    /// its nodes cold (claim 6; `hookbench worker ring`).
    SeccompWorkingSet,
    /// W tasks on one CPU take turns on `getsockname()`, each in its own cgroup with N programs.
    ///
    /// Null `cgroup/getsockname4` programs as `cgroup-bpf`'s, one cgroup and one set of programs
    /// per task: the effective array's side of claim 6 (`hookbench worker ring`).
    CgroupBpfWorkingSet,
    /// Kernel bytes of T idle tasks forked after their parent installed N seccomp filters.
    ///
    /// The chain is shared across fork (`copy_seccomp` takes a reference): claim 5's per-task
    /// side, against the same tasks forked without filters.
    SeccompShared,
    /// Kernel bytes of T idle tasks that each installed the same N seccomp filters themselves.
    ///
    /// Nothing is shared: every task has its own `struct seccomp_filter`s and programs, the
    /// reference that shows what sharing saves.
    SeccompOwn,
    /// P tasks pinned to P CPUs fire `getsockname()` at once, each with its own N filters.
    ///
    /// The `scaling` suite's `cpus` axis for the task chain: nothing of the chain is shared
    /// between CPUs (`hookbench worker cpus`).
    SeccompCpusOwn,
    /// The same P tasks under one chain of N filters their parent installed before the fork.
    ///
    /// Every task points at the same `struct seccomp_filter`s (`copy_seccomp` takes a reference;
    /// the walk reads them, it takes no reference per call).
    SeccompCpusShared,
    /// P pinned tasks fire `getsockname()` at once, each in its own cgroup with N programs.
    ///
    /// P effective arrays and P x N programs: nothing of the dispatch is shared between CPUs.
    CgroupBpfCpusOwn,
    /// The same P tasks all in one cgroup with N programs: one effective array read on P CPUs.
    ///
    /// The array is read under RCU (`bpf_prog_run_array_cg`), with no write per call.
    CgroupBpfCpusShared,
}

impl KernelMechanism {
    /// Every kernel mechanism of this version.
    pub const ALL: [KernelMechanism; 29] = [
        KernelMechanism::SeccompArgLoad,
        KernelMechanism::SeccompNrOnly,
        KernelMechanism::SeccompSocket,
        KernelMechanism::SeccompGetsockname,
        KernelMechanism::SeccompSelftestSplit,
        KernelMechanism::SeccompForeignNrFirst,
        KernelMechanism::SeccompForeignArgFirst,
        KernelMechanism::SeccompForeignCached,
        KernelMechanism::Landlock,
        KernelMechanism::LandlockForeignNet,
        KernelMechanism::CgroupBpf,
        KernelMechanism::CgroupBpfSocket,
        KernelMechanism::LsmCgroup,
        KernelMechanism::LsmGlobal,
        KernelMechanism::LsmGlobalUnmarked,
        KernelMechanism::RawtpHandleLoop,
        KernelMechanism::RawtpCgroupIdMap,
        KernelMechanism::RawtpHandleLoopOutside,
        KernelMechanism::RawtpCgroupIdMapOutside,
        KernelMechanism::SetupCgroups,
        KernelMechanism::SetupTasks,
        KernelMechanism::SeccompWorkingSet,
        KernelMechanism::CgroupBpfWorkingSet,
        KernelMechanism::SeccompShared,
        KernelMechanism::SeccompOwn,
        KernelMechanism::SeccompCpusOwn,
        KernelMechanism::SeccompCpusShared,
        KernelMechanism::CgroupBpfCpusOwn,
        KernelMechanism::CgroupBpfCpusShared,
    ];

    /// The results name, e.g. "seccomp-arg-load".
    pub const fn as_str(self) -> &'static str {
        match self {
            KernelMechanism::SeccompArgLoad => "seccomp-arg-load",
            KernelMechanism::SeccompNrOnly => "seccomp-nr-only",
            KernelMechanism::SeccompSocket => "seccomp-socket",
            KernelMechanism::SeccompGetsockname => "seccomp-getsockname",
            KernelMechanism::SeccompSelftestSplit => "seccomp-selftest-split",
            KernelMechanism::SeccompForeignNrFirst => "seccomp-foreign-nr-first",
            KernelMechanism::SeccompForeignArgFirst => "seccomp-foreign-arg-first",
            KernelMechanism::SeccompForeignCached => "seccomp-foreign-cached",
            KernelMechanism::Landlock => "landlock",
            KernelMechanism::LandlockForeignNet => "landlock-foreign-net",
            KernelMechanism::CgroupBpf => "cgroup-bpf",
            KernelMechanism::CgroupBpfSocket => "cgroup-bpf-socket",
            KernelMechanism::LsmCgroup => "lsm-cgroup",
            KernelMechanism::LsmGlobal => "lsm-global",
            KernelMechanism::LsmGlobalUnmarked => "lsm-global-unmarked",
            KernelMechanism::RawtpHandleLoop => "rawtp-handle-loop",
            KernelMechanism::RawtpCgroupIdMap => "rawtp-cgroup-id-map",
            KernelMechanism::RawtpHandleLoopOutside => "rawtp-handle-loop-outside",
            KernelMechanism::RawtpCgroupIdMapOutside => "rawtp-cgroup-id-map-outside",
            KernelMechanism::SetupCgroups => "setup-cgroups",
            KernelMechanism::SetupTasks => "setup-tasks",
            KernelMechanism::SeccompWorkingSet => "seccomp-working-set",
            KernelMechanism::CgroupBpfWorkingSet => "cgroup-bpf-working-set",
            KernelMechanism::SeccompShared => "seccomp-shared",
            KernelMechanism::SeccompOwn => "seccomp-own",
            KernelMechanism::SeccompCpusOwn => "seccomp-cpus-own",
            KernelMechanism::SeccompCpusShared => "seccomp-cpus-shared",
            KernelMechanism::CgroupBpfCpusOwn => "cgroup-bpf-cpus-own",
            KernelMechanism::CgroupBpfCpusShared => "cgroup-bpf-cpus-shared",
        }
    }

    /// The dispatch model the mechanism realises.
    ///
    /// Seccomp stacks and Landlock domains are per-task chains, cgroup-bpf and `lsm_cgroup` are
    /// per-cgroup effective arrays, global BPF LSM programs that each check whether they apply
    /// (task storage) are global filters.
    pub const fn model(self) -> ModelKind {
        match self {
            KernelMechanism::CgroupBpf
            | KernelMechanism::CgroupBpfSocket
            | KernelMechanism::LsmCgroup
            | KernelMechanism::SetupCgroups
            | KernelMechanism::CgroupBpfWorkingSet
            | KernelMechanism::CgroupBpfCpusOwn
            | KernelMechanism::CgroupBpfCpusShared => ModelKind::CgroupEffective,
            KernelMechanism::LsmGlobal
            | KernelMechanism::LsmGlobalUnmarked
            | KernelMechanism::RawtpHandleLoop
            | KernelMechanism::RawtpCgroupIdMap
            | KernelMechanism::RawtpHandleLoopOutside
            | KernelMechanism::RawtpCgroupIdMapOutside => ModelKind::GlobalFilter,
            _ => ModelKind::TaskChain,
        }
    }

    /// The mechanism's family, from its registry entry.
    ///
    /// The family says what it needs and which file of harness/src/kernel/ implements it.
    pub fn family(self) -> Family {
        REGISTRY
            .iter()
            .find(|m| m.implementation == Impl::Kernel(self))
            .map_or(Family::CgroupBpf, |m| m.family)
    }

    /// Whether the mechanism is one of the cgroup-bpf hooks (cgroup-bpf, cgroup-bpf-socket).
    pub fn is_cgroup_bpf(self) -> bool {
        matches!(self, KernelMechanism::CgroupBpf | KernelMechanism::CgroupBpfSocket)
    }

    /// Whether its hook cells measure the `foreign` axis (programs for other hooks).
    pub fn sweeps_foreign(self) -> bool {
        self.is_cgroup_bpf()
            || matches!(
                self,
                KernelMechanism::SeccompForeignNrFirst
                    | KernelMechanism::SeccompForeignArgFirst
                    | KernelMechanism::SeccompForeignCached
                    | KernelMechanism::LandlockForeignNet
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mechanism_is_declared_once_and_found_by_its_backend() {
        for (i, m) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[i + 1..]
                    .iter()
                    .all(|o| (o.backend, o.name) != (m.backend, m.name)),
                "{} declared twice",
                m.name
            );
            assert!(std::ptr::eq(find(m.backend.as_str(), m.name).expect("found"), m));
            assert!(!m.metrics.is_empty() && !m.times.is_empty(), "{}", m.name);
        }
        for k in KernelMechanism::ALL {
            let m = find("kernel", k.as_str()).expect("every kernel variant is registered");
            assert_eq!((m.implementation, m.model), (Impl::Kernel(k), k.model()));
        }
        for m in ModelMechanism::ALL {
            assert_eq!(find("model", m.as_str()).expect("registered").model, m.model());
        }
        for k in REGISTRY.iter().filter(|m| m.backend == BackendKind::Kmod) {
            let Impl::Kmod { model, ioctl, builtin } = k.implementation else {
                panic!("{}", k.name)
            };
            let want = match (ioctl, builtin) {
                (true, _) => format!("{}-ioctl", model.as_str()),
                (false, true) => format!("{}-builtin", model.as_str()),
                (false, false) => model.as_str().to_string(),
            };
            assert_eq!(k.name, want);
        }
        assert_eq!(find("model", "chain-walk").map(|m| m.model), Ok(ModelKind::TaskChain));
        let e = find("kernel", "chain-walk").expect_err("a model name on the kernel");
        assert!(e.contains("seccomp-arg-load") && e.contains("'chain-walk'"), "{e}");
        let e = find("cloud", "x").expect_err("no such backend");
        assert!(e.contains("[backend.kmod]"), "{e}");
        assert_eq!(Family::Seccomp.mechanisms()[0], "seccomp-arg-load");
    }

    #[test]
    fn kmod_working_sets_stop_at_the_modules_bound_and_need_the_in_kernel_loop() {
        let at = |w: u32| Params {
            working_set: w,
            ..Params::default()
        };
        let limit = |name: &str, w: u32| {
            find("kmod", name)
                .expect("registered")
                .limit(Metric::HookLatency, &at(w))
                .map(|l| (l.axis, l.max))
        };
        let max = hookbench_kmod::abi::HB_KMOD_MAX_WORKING_SET;
        assert_eq!(limit("task-chain", 4096), None);
        assert_eq!(limit("cgroup-effective-builtin", max), None);
        assert_eq!(limit("task-chain", max + 1), Some(("working_set", max)));
        assert_eq!(limit("global-filter", 2), Some(("working_set", 1)));
        assert_eq!(limit("task-chain-ioctl", 2), Some(("working_set", 1)));
        assert_eq!(limit("global-filter", 1), None);
        let attach = find("kmod", "task-chain").expect("registered");
        assert!(attach.limit(Metric::AttachLatency, &at(max + 1)).is_none());
    }
}
