//! Limits of the registry's mechanisms: points the kernel or hookbench.ko refuses on any machine.
//!
//! [`MechanismInfo::limit`](super::MechanismInfo::limit) reads them when a suite is parsed, so a
//! suite stays inside them (the kernel's limits are named in each message).

use super::{AxisLimit, Family, KernelMechanism, Metric};
use hookbench_model::{ModelKind, Params};
use hookbench_workloads::landlock::LANDLOCK_MAX_NUM_LAYERS;
use hookbench_workloads::lsm::MAX_GLOBAL_PROGRAMS;
use hookbench_workloads::metadata::{MAX_ATTACH_TYPES, MAX_TASKS};
use hookbench_workloads::seccomp::{
    kernel_len_insns, max_filters, FilterBody, FILTER_PENALTY_INSNS, MAX_INSNS_PER_PATH,
};

/// hookbench.ko's bound on a hook cell's working set (the uapi header's RUN).
///
/// At most HB_KMOD_MAX_WORKING_SET states; 1 for global-filter (one list per session) and for
/// the FIRE-ioctl mechanisms (a FIRE fires the caller's own state).
pub(super) fn kmod_limit(model: ModelKind, ioctl: bool, metric: Metric, p: &Params) -> Option<AxisLimit> {
    if metric != Metric::HookLatency {
        return None;
    }
    let (max, why) = if ioctl {
        (
            1,
            "a FIRE ioctl fires the calling task's own state; working sets are RUN's (the in-kernel loop)".into(),
        )
    } else if model == ModelKind::GlobalFilter {
        (
            1,
            "global-filter has one list per session, no per-task or per-cgroup state to copy".into(),
        )
    } else {
        let max = hookbench_kmod::abi::HB_KMOD_MAX_WORKING_SET;
        (
            max,
            format!("hookbench.ko's RUN fires at most HB_KMOD_MAX_WORKING_SET = {max} states"),
        )
    };
    (p.working_set > max).then_some(AxisLimit {
        axis: "working_set",
        max,
        why,
    })
}

/// The limit a point of kernel `mechanism` goes beyond for `metric`, if any.
///
/// `metadata_bytes` cells: [`metadata_limit`]. `hook_latency_ns` cells: Landlock's
/// `LANDLOCK_MAX_NUM_LAYERS` (16 layers, filesystem and network-only together), the seccomp instruction budget
/// ([`max_filters`], `MAX_INSNS_PER_PATH`), `BPF_CGROUP_MAX_PROGS` (64 programs per cgroup and
/// attach type, with program `i` at level `i % depth` and foreign program `j` on foreign attach
/// type `j % 3` at level `j % depth`), and a BPF trampoline's `BPF_MAX_TRAMP_LINKS` (38 global
/// `lsm` programs), and for the working-set rings the same per task with at most
/// `ring::MAX_TASKS` tasks. The kernel refuses such a point whatever the machine, so suites must
/// stay inside these limits (checked when a suite is parsed); the limits of this machine (pids,
/// cgroups, memory) are the kernel backend's, read before its first ring. Other metrics install
/// or attach a fixed number of programs and have none.
pub(super) fn kernel_limit(mechanism: KernelMechanism, metric: Metric, p: &Params) -> Option<AxisLimit> {
    match metric {
        Metric::HookLatency => {}
        Metric::MetadataBytes => return metadata_limit(mechanism, p),
        Metric::AttachLatency | Metric::SetupSeconds => return None,
    }
    let cap = hookbench_model::BPF_CGROUP_MAX_PROGS as u32;
    let depth = p.depth.max(1);
    let limit = |axis: &'static str, max: u32, why: String| {
        (p.axis(axis).unwrap_or(0) > max).then_some(AxisLimit { axis, max, why })
    };
    // The programs of one task of a many-task cell: its own seccomp chain, or its own cgroup
    // (`whose`: "a", "each task's").
    let per_task_programs = |seccomp: bool, whose: &str| {
        let (max_n, why) = if seccomp {
            let n = max_filters(FilterBody::ArgLoad);
            (
                n,
                format!("{whose} chain holds at most {n} of these filters (MAX_INSNS_PER_PATH)"),
            )
        } else {
            (
                cap,
                format!("{whose} cgroup holds at most BPF_CGROUP_MAX_PROGS = {cap} programs per attach type"),
            )
        };
        limit("programs", max_n, why)
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
        KernelMechanism::LandlockForeignNet => {
            let layers = |max: u32| {
                format!(
                    "a Landlock domain stacks at most LANDLOCK_MAX_NUM_LAYERS = {LANDLOCK_MAX_NUM_LAYERS} layers \
                     (security/landlock/limits.h; landlock_restrict_self returns E2BIG beyond): beside {} \
                     filesystem layers, {max} network-only layers fit",
                    p.programs
                )
            };
            limit("programs", LANDLOCK_MAX_NUM_LAYERS, layers(0)).or_else(|| {
                let max = LANDLOCK_MAX_NUM_LAYERS.saturating_sub(p.programs);
                limit("foreign", max, layers(max))
            })
        }
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
        KernelMechanism::SeccompForeignNrFirst
        | KernelMechanism::SeccompForeignArgFirst
        | KernelMechanism::SeccompForeignCached => {
            // The budget of the longest chain: on-hook filters (none for the cached shape) and
            // the foreign ones, each charged its kernel length + 4 (seccomp_attach_filter).
            let on_hook = if mechanism == KernelMechanism::SeccompForeignCached {
                0
            } else {
                p.programs
            };
            let per = |b: FilterBody| kernel_len_insns(b) + FILTER_PENALTY_INSNS;
            let foreign_body = if mechanism == KernelMechanism::SeccompForeignArgFirst {
                FilterBody::ForeignArgFirst
            } else {
                FilterBody::ForeignNrFirst
            };
            let room = MAX_INSNS_PER_PATH.saturating_sub(on_hook * per(FilterBody::ArgLoad));
            let max = room / per(foreign_body);
            limit(
                "foreign",
                max,
                format!(
                    "a task's filters may hold at most MAX_INSNS_PER_PATH = {MAX_INSNS_PER_PATH} instructions in \
                     all: beside {on_hook} on-hook filters, {max} {foreign_body} filters fit \
                     (kernel/seccomp.c: seccomp_attach_filter returns ENOMEM beyond)"
                ),
            )
        }
        KernelMechanism::SeccompCpusOwn
        | KernelMechanism::SeccompCpusShared
        | KernelMechanism::CgroupBpfCpusOwn
        | KernelMechanism::CgroupBpfCpusShared => {
            let max_p = hookbench_workloads::cpus::MAX_CPUS;
            limit(
                "cpus",
                max_p,
                format!("a cpus worker pins at most {max_p} tasks (hookbench_workloads::cpus::MAX_CPUS)"),
            )
            .or_else(|| per_task_programs(mechanism.family() == Family::Seccomp, "a"))
        }
        KernelMechanism::SeccompWorkingSet | KernelMechanism::CgroupBpfWorkingSet => {
            let max_w = hookbench_workloads::ring::MAX_TASKS;
            limit(
                "working_set",
                max_w,
                format!("a ring worker makes at most {max_w} tasks (hookbench_workloads::ring::MAX_TASKS)"),
            )
            .or_else(|| per_task_programs(mechanism == KernelMechanism::SeccompWorkingSet, "each task's"))
        }
        KernelMechanism::SeccompArgLoad
        | KernelMechanism::SeccompNrOnly
        | KernelMechanism::SeccompSocket
        | KernelMechanism::SeccompGetsockname => {
            // Both filter bodies have the same length, so the same budget.
            let body = FilterBody::ArgLoad;
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
        KernelMechanism::SeccompSelftestSplit
        | KernelMechanism::SetupCgroups
        | KernelMechanism::SetupTasks
        | KernelMechanism::RawtpHandleLoop
        | KernelMechanism::RawtpCgroupIdMap
        | KernelMechanism::RawtpHandleLoopOutside
        | KernelMechanism::RawtpCgroupIdMapOutside
        | KernelMechanism::SeccompShared
        | KernelMechanism::SeccompOwn => None,
    }
}

/// The limit a `metadata_bytes` point of kernel `mechanism` goes beyond, if any.
///
/// cgroup-bpf attaches one program on each of `hooks` attach types, and hookbench has programs
/// for [`MAX_ATTACH_TYPES`] of them; a seccomp task's chain holds at most [`max_filters`]
/// filters; a metadata worker creates at most [`MAX_TASKS`] tasks.
fn metadata_limit(mechanism: KernelMechanism, p: &Params) -> Option<AxisLimit> {
    let limit = |axis: &'static str, max: u32, why: String| {
        (p.axis(axis).unwrap_or(0) > max).then_some(AxisLimit { axis, max, why })
    };
    match mechanism {
        KernelMechanism::CgroupBpf => limit(
            "hooks",
            MAX_ATTACH_TYPES,
            format!(
                "the metadata cells attach one program on each of `hooks` cgroup-bpf attach types, and hookbench has \
                 programs for {MAX_ATTACH_TYPES}: getsockname4, sock_create, sysctl, getsockopt, dev \
                 (kernels/bpf/src/bpf/hookbench.bpf.c)"
            ),
        ),
        KernelMechanism::SeccompShared | KernelMechanism::SeccompOwn => {
            let n = max_filters(FilterBody::ArgLoad);
            limit(
                "programs",
                n,
                format!(
                    "a task's filters may hold at most MAX_INSNS_PER_PATH instructions in all, {n} of these filters \
                     (kernel/seccomp.c: seccomp_attach_filter returns ENOMEM beyond)"
                ),
            )
            .or_else(|| {
                limit(
                    "tasks",
                    MAX_TASKS,
                    format!("a metadata worker creates at most {MAX_TASKS} tasks"),
                )
            })
        }
        _ => None,
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
