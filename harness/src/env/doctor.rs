//! What `hookbench doctor` prints: each capability and what it means for the backends.
//!
//! What each mechanism family needs of the machine is said once here, in [`FAMILIES`]; which
//! mechanism belongs to which family is the registry's ([`crate::mechanism::REGISTRY`]).

use super::{CgroupLayout, Environment, Probe};
use crate::mechanism::Family;

/// A family of mechanisms that need the same of the machine, and whether this process has it.
///
/// One of `hookbench doctor`'s `kernel:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFamily {
    /// The family, e.g. "seccomp", "BPF LSM".
    pub name: &'static str,
    /// The registered mechanisms it covers (the registry's, in its order).
    pub mechanisms: Vec<&'static str>,
    /// What it needs, in words (kernel options, privileges, boot parameters).
    pub needs: &'static str,
    /// Whether it needs root.
    pub root: bool,
    /// Whether this process can run the family: `Ok` with what was found, else what is missing.
    ///
    /// What was found is short (e.g. "ABI 7") or empty.
    pub status: Result<String, String>,
}

/// What a family of mechanisms needs of the machine, whatever this machine has.
struct FamilySpec {
    family: Family,
    needs: &'static str,
    root: bool,
}

/// The kernel backend's mechanism families and the kmod backend, in `hookbench doctor`'s order.
///
/// Every family but the model's (which needs nothing), each once.
const FAMILIES: [FamilySpec; 6] = [
    FamilySpec {
        family: Family::Seccomp,
        needs: "seccomp filters (CONFIG_SECCOMP_FILTER) and no_new_privs, which each worker sets for itself: \
                no root",
        root: false,
    },
    FamilySpec {
        family: Family::Landlock,
        needs: "Landlock ABI >= 1 (CONFIG_SECURITY_LANDLOCK, landlock in lsm=): no root",
        root: false,
    },
    FamilySpec {
        family: Family::CgroupBpf,
        needs: "root (CAP_SYS_ADMIN and CAP_BPF), a cgroup v2 mount and bpf(); cgroup-bpf also Linux >= 5.8 \
                (cgroup/getsockname4)",
        root: true,
    },
    FamilySpec {
        family: Family::BpfLsm,
        needs: "what cgroup-bpf needs, BPF trampolines (CONFIG_BPF_LSM, a kernel that allows them), bpf among the \
                active LSMs (lsm=...,bpf); lsm-cgroup also Linux >= 6.0",
        root: true,
    },
    FamilySpec {
        family: Family::RawTracepoint,
        needs: "what cgroup-bpf needs (raw_tp/sys_enter programs, no BPF trampoline); the program runs for every \
                task while a cell measures",
        root: true,
    },
    FamilySpec {
        family: Family::Kmod,
        needs: "root and hookbench.ko loaded (/dev/hookbench)",
        root: true,
    },
];

impl Environment {
    /// The mechanism families with what each needs and whether this process has it.
    ///
    /// The kernel backend's families and the kmod backend: seccomp and Landlock need no root,
    /// the cgroup and BPF ones do (the same checks `hookbench run` makes before it measures).
    pub fn kernel_families(&self) -> Vec<KernelFamily> {
        // A short value (an ABI version) is worth repeating; a long one is on its own line.
        let probe = |p: &Probe| {
            if p.available {
                Ok(p.value.clone().filter(|v| v.len() <= 40).unwrap_or_default())
            } else {
                Err(p.to_string())
            }
        };
        let lsm = {
            let mut missing: Vec<String> = self.cgroup_bpf_support().err().into_iter().collect();
            if self.privileged && !self.bpf_trampolines.available {
                missing.push(format!("BPF trampolines {}", self.bpf_trampolines));
            }
            match self.bpf_lsm_active() {
                Some(true) => {}
                Some(false) => missing.push(format!(
                    "bpf is not an active LSM ({}): boot with lsm=...,bpf",
                    self.lsm_list
                )),
                None => missing.push(format!("active LSMs unknown: {}", self.lsm_list)),
            }
            if missing.is_empty() {
                Ok(String::new())
            } else {
                Err(missing.join("; "))
            }
        };
        // In the order of FAMILIES.
        let statuses: [Result<String, String>; FAMILIES.len()] = [
            probe(&self.seccomp).map(|_| String::new()),
            probe(&self.landlock_abi),
            self.cgroup_bpf_support().map(|()| String::new()),
            lsm,
            self.cgroup_bpf_support().map(|()| String::new()),
            match self.kmod.value_if_available() {
                Some(_) => Ok(String::new()),
                None => Err(probe_short(&self.kmod)),
            },
        ];
        FAMILIES
            .iter()
            .zip(statuses)
            .map(|(f, status)| KernelFamily {
                name: f.family.as_str(),
                mechanisms: f.family.mechanisms(),
                needs: f.needs,
                root: f.root,
                status,
            })
            .collect()
    }

    /// Lines for `hookbench doctor`: `(label, value)`, one per capability, and what it means.
    ///
    /// Each says what the capability means for hookbench's backends (`model`, `kernel`, `kmod`).
    pub fn doctor_lines(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |label: &str, value: String| out.push((label.to_owned(), value));

        push(
            "kernel",
            format!("{} {} ({})", self.kernel_release, self.kernel_version, self.machine),
        );
        push(
            "host",
            format!(
                "{}; {}; {} CPUs online, {} allowed; {:.1} GiB",
                self.hostname.as_deref().unwrap_or("(hostname unknown)"),
                self.cpu_model.as_deref().unwrap_or("(CPU model unknown)"),
                self.nr_cpus,
                self.allowed_cpus,
                self.memory_bytes as f64 / (1u64 << 30) as f64
            ),
        );
        push(
            "virtualization",
            noted(
                &self.virtualization,
                "timings include hypervisor effects; take final numbers on bare metal",
                "bare metal assumed",
            ),
        );
        if let Some(u) = &self.uml {
            push(
                "uml",
                format!(
                    "User-Mode Linux {} on {}: native CPU, {} CPU, BPF bodies {}; syscalls are {}",
                    u.release, u.host, u.cpus, u.bpf_bodies, u.syscalls
                ),
            );
        }
        if let Some(e) = &self.emulated {
            push(
                "emulated",
                format!("{e}: timings are not comparable with bare metal (use them for correctness only)"),
            );
        }
        let families = self.kernel_families();
        let names = |pick: &dyn Fn(&KernelFamily) -> bool| {
            families
                .iter()
                .filter(|f| pick(f))
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let without_root = names(&|f| !f.root && f.status.is_ok());
        let unprivileged = format!(
            "{}; {} need root (see the kernel: lines)",
            if without_root.is_empty() {
                "the kernel backend has nothing it can measure without root".to_string()
            } else {
                format!("the kernel backend measures {without_root} without root")
            },
            names(&|f| f.root)
        );
        push(
            "root",
            if self.privileged {
                "yes".to_owned()
            } else if self.euid == 0 {
                format!(
                    "euid 0 but neither CAP_SYS_ADMIN nor CAP_BPF effective (CapEff {}): {unprivileged}",
                    self.cap_effective_hex.as_deref().unwrap_or("unknown")
                )
            } else {
                format!("no (euid {}): {unprivileged}", self.euid)
            },
        );
        for f in &families {
            let mechanisms = f.mechanisms.join(", ");
            push(
                &format!("kernel: {}", f.name),
                match &f.status {
                    Ok(v) if v.is_empty() => format!("yes for this user: {mechanisms}; needs {}", f.needs),
                    Ok(v) => format!("yes for this user ({v}): {mechanisms}; needs {}", f.needs),
                    Err(why) => format!("NO for this user: {mechanisms}; needs {}; here: {why}", f.needs),
                },
            );
        }
        push(
            "cgroup v2",
            match &self.cgroup2_mount {
                Some(m) => format!(
                    "{m} ({} layout){}",
                    self.cgroup_layout,
                    if self.cgroup_layout == CgroupLayout::Hybrid {
                        "; cgroup-bpf trees are built in the v2 hierarchy only"
                    } else {
                        ""
                    }
                ),
                None => format!(
                    "absent ({} layout): cgroup-effective scenarios on the kernel backend will be skipped",
                    self.cgroup_layout
                ),
            },
        );
        if let Some(own) = &self.own_cgroup_v2 {
            push("own cgroup", own.clone());
        }
        push(
            "cgroup limits",
            format!(
                "max.depth {}, max.descendants {} (bounds the depth and cgroups axes)",
                probe_short(&self.cgroup_max_depth),
                probe_short(&self.cgroup_max_descendants)
            ),
        );
        push(
            "pid_max",
            format!("{} (bounds the tasks axis)", probe_short(&self.pid_max)),
        );
        push(
            "seccomp",
            noted(
                &self.seccomp,
                "task-chain on the kernel backend: seccomp filter stacks",
                "seccomp task-chain scenarios will be skipped",
            ),
        );
        push(
            "Landlock",
            noted(
                &self.landlock_abi,
                "per-task Landlock domains on the kernel backend",
                "Landlock scenarios will be skipped",
            ),
        );
        push(
            "BPF",
            noted(
                &self.bpf,
                "cgroup-bpf effective arrays on the kernel backend",
                "all BPF scenarios on the kernel backend will be skipped",
            ),
        );
        push(
            "BPF JIT",
            match self.bpf_jit.value_if_available() {
                Some("0") => {
                    "disabled (bpf_jit_enable=0): programs are interpreted, per-program costs are inflated".to_owned()
                }
                Some(v) => format!("enabled (bpf_jit_enable={v})"),
                None => self.bpf_jit.to_string(),
            },
        );
        push(
            "unprivileged BPF",
            match self.unprivileged_bpf_disabled.value_if_available() {
                Some("0") => "allowed (unprivileged_bpf_disabled=0)".to_owned(),
                Some(v) => {
                    format!("disabled (unprivileged_bpf_disabled={v}): BPF scenarios need root")
                }
                None => self.unprivileged_bpf_disabled.to_string(),
            },
        );
        push(
            "BPF trampolines",
            noted(&self.bpf_trampolines, "lsm, lsm_cgroup and fentry programs run on the kernel backend where loaded", "lsm, lsm_cgroup and fentry programs cannot run on this kernel; a kernel that allows trampolines is needed for them"),
        );
        push(
            "LSMs",
            match self.bpf_lsm_active() {
                Some(true) => format!("{} (bpf LSM active: lsm programs run when attached)", self.lsm_list),
                Some(false) => format!(
                    "{} (bpf is not an active LSM: lsm programs would attach but never run; boot with lsm=...,bpf)",
                    self.lsm_list
                ),
                None => self.lsm_list.to_string(),
            },
        );
        push(
            "perf counters",
            noted(
                &self.perf_counters,
                "cycle counts recorded beside wall-clock latency",
                "cycles and instructions not recorded; latencies come from the clock only",
            ),
        );
        push("perf_event_paranoid", probe_short(&self.perf_event_paranoid));
        push("hookbench.ko (kmod backend)", probe_short(&self.kmod));
        push(
            "cpufreq governor",
            match self.governor.value_if_available() {
                Some("performance") => "performance".to_owned(),
                Some(g) => {
                    format!("{g} (not 'performance': frequency scaling adds variance; set the performance governor)")
                }
                None => self.governor.to_string(),
            },
        );
        push(
            "TSC",
            match self.tsc {
                Some(t) => format!(
                    "constant_tsc {}, nonstop_tsc {}",
                    yes_no(t.constant_tsc),
                    yes_no(t.nonstop_tsc)
                ),
                None => "unknown (no x86 flags line in /proc/cpuinfo)".to_owned(),
            },
        );
        let affected: Vec<&(String, String)> = self
            .mitigations
            .iter()
            .filter(|(_, s)| s.as_str() != "Not affected")
            .collect();
        push(
            "mitigations",
            if self.mitigations.is_empty() {
                "unknown (/sys/devices/system/cpu/vulnerabilities unreadable)".to_owned()
            } else {
                format!(
                    "{} entries, {} affected (syscall-entry mitigations add to every triggered hook)",
                    self.mitigations.len(),
                    affected.len()
                )
            },
        );
        for (name, status) in affected {
            push(&format!("  {name}"), status.clone());
        }
        push(
            "kernel config",
            if self.kernel_config.available {
                let opts: Vec<String> = self
                    .kernel_config_options
                    .iter()
                    .map(|(k, v)| format!("{}={v}", k.trim_start_matches("CONFIG_")))
                    .collect();
                format!(
                    "{} from {}",
                    opts.join(" "),
                    self.kernel_config.value.as_deref().unwrap_or("?")
                )
            } else {
                self.kernel_config.to_string()
            },
        );
        for n in &self.notes {
            push("note", n.clone());
        }
        out
    }
}

/// The probe's text with what it means for hookbench in parentheses, `if_yes` or `if_absent`.
fn noted(p: &Probe, if_yes: &str, if_absent: &str) -> String {
    format!("{p} ({})", if p.available { if_yes } else { if_absent })
}

/// `yes` or `no`.
fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A probe's value or `absent: reason`, without the `yes (...)` wrapper.
pub(super) fn probe_short(p: &Probe) -> String {
    match p.value_if_available() {
        Some(v) => v.to_owned(),
        None => p.to_string(),
    }
}
