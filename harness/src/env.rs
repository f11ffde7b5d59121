//! Environment probes: what the running machine and kernel offer to hookbench's backends, each with the reason when absent.
//!
//! [`Environment::probe`] records the kernel, CPU, cgroup layout and the kernel mechanisms the
//! `kernel` backend needs (seccomp, Landlock, BPF, BPF trampolines, cgroup v2), plus the
//! measurement conditions (perf counters, cpufreq governor, TSC flags, CPU vulnerability
//! mitigations). It never fails: every field records its own failure, and every capability that is
//! absent carries the reason (the errno and what it means), never a silent zero.
//!
//! Probing is side-effect free: every file descriptor is closed, the BPF programs it loads to test
//! availability are never attached and are freed when their fd is closed.
//!
//! The pure parsers ([`find_cgroup2_mount`], [`cgroup_layout`], [`parse_btf_func_id`],
//! [`parse_kernel_config`]) are public so that they can be tested on hand-written input.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------------------------

/// The outcome of probing one capability: available (with an optional value, e.g. an ABI
/// version) or absent with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Whether the capability is present and usable by this process.
    pub available: bool,
    /// What was found (a version, a setting, the source file), if anything.
    pub value: Option<String>,
    /// Why the capability is absent (errno and meaning); `None` when available.
    pub reason: Option<String>,
}

impl Probe {
    /// An available capability with the value found (e.g. `"ABI 6"`).
    pub fn yes(value: impl Into<String>) -> Probe {
        Probe {
            available: true,
            value: Some(value.into()),
            reason: None,
        }
    }

    /// An available capability with nothing more to say.
    pub fn yes_bare() -> Probe {
        Probe {
            available: true,
            value: None,
            reason: None,
        }
    }

    /// A probe result read from a file written before the probe existed.
    pub fn unknown() -> Probe {
        Probe::absent("not probed by the hookbench that wrote this file")
    }

    /// An absent capability and the reason (errno and what it means).
    pub fn absent(reason: impl Into<String>) -> Probe {
        Probe {
            available: false,
            value: None,
            reason: Some(reason.into()),
        }
    }

    /// An absent capability that still has something to report (e.g. a setting read).
    pub fn absent_with_value(value: impl Into<String>, reason: impl Into<String>) -> Probe {
        Probe {
            available: false,
            value: Some(value.into()),
            reason: Some(reason.into()),
        }
    }

    /// The value when available, else `None`.
    pub fn value_if_available(&self) -> Option<&str> {
        if self.available {
            self.value.as_deref()
        } else {
            None
        }
    }
}

impl fmt::Display for Probe {
    /// `yes`, `yes (ABI 6)` or `absent: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.available {
            match &self.value {
                Some(v) => write!(f, "yes ({v})"),
                None => write!(f, "yes"),
            }
        } else {
            let reason = self.reason.as_deref().unwrap_or("no reason recorded");
            write!(f, "absent: {reason}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

/// How cgroup hierarchies are mounted (from `/proc/self/mountinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupLayout {
    /// Only cgroup v2 (`cgroup2`) is mounted.
    Unified,
    /// cgroup v2 is mounted beside cgroup v1 (`cgroup`) hierarchies (e.g. systemd's hybrid mode,
    /// v2 at `/sys/fs/cgroup/unified`).
    Hybrid,
    /// Only cgroup v1 hierarchies are mounted.
    Legacy,
    /// No cgroup filesystem is mounted.
    None,
}

impl fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupLayout::Unified => "unified",
            CgroupLayout::Hybrid => "hybrid",
            CgroupLayout::Legacy => "legacy",
            CgroupLayout::None => "none",
        })
    }
}

/// TSC flags from the `flags` line of `/proc/cpuinfo` (x86 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TscFlags {
    /// `constant_tsc`: the TSC ticks at a constant rate regardless of frequency changes.
    pub constant_tsc: bool,
    /// `nonstop_tsc`: the TSC keeps ticking in deep C-states.
    pub nonstop_tsc: bool,
}

/// Everything hookbench records about the machine and kernel a run happened on.
///
/// Scalar fields that cannot really fail (CPU counts, memory) are plain values; if one did fail,
/// the failure is listed in [`Environment::notes`]. Every `Option` field that is `None` also has
/// a note saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Kernel release, `uname -r` (`utsname.release`).
    pub kernel_release: String,
    /// Kernel build version string, `uname -v` (`utsname.version`).
    pub kernel_version: String,
    /// Machine architecture, `uname -m` (`utsname.machine`).
    pub machine: String,
    /// Host name (gethostname).
    pub hostname: Option<String>,
    /// CPU model: `model name` of the first processor in `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Online CPUs, `sysconf(_SC_NPROCESSORS_ONLN)`.
    pub nr_cpus: usize,
    /// CPUs this process may run on, the count of `sched_getaffinity(0)`.
    pub allowed_cpus: usize,
    /// Physical memory in bytes, `sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE)`.
    pub memory_bytes: u64,
    /// Effective user id (geteuid).
    pub euid: u32,
    /// Effective capability mask, `CapEff` of `/proc/self/status` (hex as printed there).
    pub cap_effective_hex: Option<String>,
    /// euid is 0 AND CAP_SYS_ADMIN (21) or CAP_BPF (39) is in the effective set: the `kernel`
    /// backend can run.
    pub privileged: bool,
    /// Mount point of the cgroup v2 hierarchy (fstype `cgroup2` in `/proc/self/mountinfo`).
    pub cgroup2_mount: Option<String>,
    /// Mount points of cgroup v1 hierarchies (fstype `cgroup`).
    pub cgroup_v1_mounts: Vec<String>,
    /// Whether cgroups are mounted unified (v2 only), hybrid (v1 + v2), legacy (v1) or not at all.
    pub cgroup_layout: CgroupLayout,
    /// This process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`), relative to the
    /// cgroup2 mount.
    pub own_cgroup_v2: Option<String>,
    /// `cgroup.max.depth` of the cgroup v2 root (`max` = unlimited).
    pub cgroup_max_depth: Probe,
    /// `cgroup.max.descendants` of the cgroup v2 root (`max` = unlimited).
    pub cgroup_max_descendants: Probe,
    /// `/proc/sys/kernel/pid_max`: the ceiling on tasks a scenario can create.
    pub pid_max: Probe,
    /// seccomp filters (per-task chain mechanism): `prctl(PR_GET_SECCOMP)`, the actions the
    /// `seccomp(SECCOMP_GET_ACTION_AVAIL)` syscall accepts, `/proc/sys/kernel/seccomp/actions_avail`
    /// and `Seccomp_filters` of `/proc/self/status` (kernel/seccomp.c).
    pub seccomp: Probe,
    /// Landlock ABI version: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    /// (security/landlock/syscalls.c); value `ABI <n>`.
    pub landlock_abi: Probe,
    /// `bpf(BPF_PROG_LOAD)` of a 2-instruction BPF_PROG_TYPE_SOCKET_FILTER program
    /// (kernel/bpf/syscall.c: bpf_prog_load).
    pub bpf: Probe,
    /// `/proc/sys/net/core/bpf_jit_enable` (0 = interpreter, 1 = JIT, 2 = JIT with debug).
    pub bpf_jit: Probe,
    /// `/proc/sys/kernel/unprivileged_bpf_disabled` (0 = allowed, 1 = disabled for good,
    /// 2 = disabled, root may re-enable).
    pub unprivileged_bpf_disabled: Probe,
    /// BPF trampolines: loads of BPF_PROG_TYPE_LSM (BPF_LSM_MAC, BPF_LSM_CGROUP) and
    /// BPF_PROG_TYPE_TRACING (BPF_TRACE_FENTRY) programs attached by BTF id to
    /// `bpf_lsm_file_open` (found in `/sys/kernel/btf/vmlinux`); kernel/bpf/syscall.c:
    /// bpf_prog_load, kernel/bpf/verifier.c: bpf_check_attach_target.
    pub bpf_trampolines: Probe,
    /// Active LSMs, in order: `<securityfs>/lsm`, else the `lsm_list_modules` syscall
    /// (security/lsm_syscalls.c).
    pub lsm_list: Probe,
    /// A hardware CPU-cycles perf counter for the current thread (perf_event_open,
    /// PERF_TYPE_HARDWARE / PERF_COUNT_HW_CPU_CYCLES).
    pub perf_counters: Probe,
    /// `/proc/sys/kernel/perf_event_paranoid`.
    pub perf_event_paranoid: Probe,
    /// CPU vulnerability status, one `(name, status)` per file of
    /// `/sys/devices/system/cpu/vulnerabilities/`, sorted by name.
    pub mitigations: Vec<(String, String)>,
    /// cpufreq governor of cpu0, `/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor`.
    pub governor: Probe,
    /// TSC flags from `/proc/cpuinfo` (`None` on non-x86 or when unreadable; see notes).
    pub tsc: Option<TscFlags>,
    /// Running under a hypervisor: the `hypervisor` CPU flag of `/proc/cpuinfo`, with
    /// `/sys/class/dmi/id/sys_vendor` and `product_name` when readable.
    pub virtualization: Probe,
    /// hookbench.ko (`/dev/hookbench`, the kmod backend): its ABI version and limits when loaded
    /// and usable, else why not (not loaded, not root, ABI mismatch).
    #[serde(default = "Probe::unknown")]
    pub kmod: Probe,
    /// Set when the CPU is emulated (qemu TCG), whose timings are not comparable with bare metal:
    /// what said so (the hookbench rig's `hookbench_rig.emulated=1` on the kernel command line,
    /// or a `QEMU TCG` CPU model); `None` on real or hardware-virtualized CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
    /// Where the kernel configuration was read from (`/proc/config.gz` or
    /// `/boot/config-<release>`), or why it could not be.
    pub kernel_config: Probe,
    /// Selected kernel options (`CONFIG_BPF_LSM`, ...) and their values (`y`, `m`, `not set`),
    /// empty when [`Environment::kernel_config`] is absent.
    pub kernel_config_options: Vec<(String, String)>,
    /// Wall time `Environment::probe` took, in microseconds.
    pub probe_duration_us: u64,
    /// Failures met while probing plain-valued or `Option` fields (why a field is `None` or a
    /// fallback).
    pub notes: Vec<String>,
}

/// A family of mechanisms that need the same of the machine (`hookbench doctor`'s `kernel:`
/// lines): what they need, and whether this process has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFamily {
    /// The family, e.g. "seccomp", "BPF LSM".
    pub name: &'static str,
    /// The kernel backend's mechanisms it covers (or "the kmod backend").
    pub mechanisms: &'static [&'static str],
    /// What it needs, in words (kernel options, privileges, boot parameters).
    pub needs: &'static str,
    /// Whether it needs root.
    pub root: bool,
    /// `Ok` with what was found (e.g. "ABI 7", or empty) when this process can run it, else
    /// everything that is missing.
    pub status: Result<String, String>,
}

/// Kernel options whose values hookbench records (see [`Environment::kernel_config_options`]).
pub const KERNEL_CONFIG_OPTIONS: &[&str] = &[
    "CONFIG_BPF_LSM",
    "CONFIG_SECURITY_LANDLOCK",
    "CONFIG_CGROUP_BPF",
    "CONFIG_SECCOMP_FILTER",
    "CONFIG_BPF_JIT",
    "CONFIG_DEBUG_INFO_BTF",
];

/// The kernel function whose BTF id the trampoline probe attaches to (a BPF LSM hook stub
/// generated by `LSM_HOOK` in kernel/bpf/bpf_lsm.c).
pub const TRAMPOLINE_PROBE_FUNC: &str = "bpf_lsm_file_open";

impl Environment {
    /// Probe the running machine. Never fails; each field records its own failure. Side-effect
    /// free (every fd closed, nothing left loaded) and fast (well under 200 ms).
    pub fn probe() -> Environment {
        let start = Instant::now();
        let mut notes = Vec::new();

        // uname
        let (kernel_release, kernel_version, machine) = match nix::sys::utsname::uname() {
            Ok(u) => (
                u.release().to_string_lossy().into_owned(),
                u.version().to_string_lossy().into_owned(),
                u.machine().to_string_lossy().into_owned(),
            ),
            Err(e) => {
                notes.push(format!("uname failed: {}", errno_text(e as i32)));
                (String::new(), String::new(), String::new())
            }
        };

        let hostname = match hostname::get() {
            Ok(h) => Some(h.to_string_lossy().into_owned()),
            Err(e) => {
                notes.push(format!("gethostname failed: {}", io_text(&e)));
                None
            }
        };

        // /proc/cpuinfo
        let cpuinfo = match std::fs::read_to_string("/proc/cpuinfo") {
            Ok(t) => Some(t),
            Err(e) => {
                notes.push(format!("cannot read /proc/cpuinfo: {}", io_text(&e)));
                None
            }
        };
        let cpu_model = cpuinfo
            .as_deref()
            .and_then(|t| cpuinfo_field(t, "model name"))
            .map(str::to_owned);
        if cpu_model.is_none() && cpuinfo.is_some() {
            notes.push("no \"model name\" line in /proc/cpuinfo (not x86?)".to_owned());
        }
        let flags: Option<Vec<&str>> = cpuinfo
            .as_deref()
            .and_then(|t| cpuinfo_field(t, "flags"))
            .map(|f| f.split_whitespace().collect());
        let tsc = flags.as_ref().map(|f| TscFlags {
            constant_tsc: f.contains(&"constant_tsc"),
            nonstop_tsc: f.contains(&"nonstop_tsc"),
        });
        if tsc.is_none() && cpuinfo.is_some() {
            notes.push("no x86 \"flags\" line in /proc/cpuinfo: TSC flags unknown".to_owned());
        }

        let nr_cpus = online_cpus(&mut notes);
        let allowed_cpus = allowed_cpus(&mut notes, nr_cpus);
        let memory_bytes = physical_memory_bytes(&mut notes);

        // credentials
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let status = match std::fs::read_to_string("/proc/self/status") {
            Ok(t) => Some(t),
            Err(e) => {
                notes.push(format!("cannot read /proc/self/status: {}", io_text(&e)));
                None
            }
        };
        let cap_effective_hex = status
            .as_deref()
            .and_then(|s| status_field(s, "CapEff"))
            .map(str::to_owned);
        let cap_eff = cap_effective_hex
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        if cap_eff.is_none() && status.is_some() {
            notes.push("no parsable CapEff line in /proc/self/status: capabilities unknown".to_owned());
        }
        let has_cap = |bit: u32| cap_eff.map(|c| c & (1u64 << bit) != 0).unwrap_or(false);
        let privileged = euid == 0 && (has_cap(CAP_SYS_ADMIN) || has_cap(CAP_BPF));

        // cgroups
        let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(t) => Some(t),
            Err(e) => {
                notes.push(format!("cannot read /proc/self/mountinfo: {}", io_text(&e)));
                None
            }
        };
        let mi = mountinfo.as_deref().unwrap_or("");
        let cgroup2_mount = find_cgroup2_mount(mi);
        if cgroup2_mount.is_none() && mountinfo.is_some() {
            notes.push("no cgroup2 line in /proc/self/mountinfo: cgroup v2 not mounted".to_owned());
        }
        let cgroup_v1_mounts: Vec<String> = parse_mountinfo(mi)
            .filter(|m| m.fstype == "cgroup")
            .map(|m| m.mount_point.to_string_lossy().into_owned())
            .collect();
        let cgroup_layout = cgroup_layout(mi);
        let own_cgroup_v2 = match std::fs::read_to_string("/proc/self/cgroup") {
            Ok(t) => {
                let p = t.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_owned);
                if p.is_none() {
                    notes.push("no \"0::\" line in /proc/self/cgroup: not in a cgroup v2 hierarchy".to_owned());
                }
                p
            }
            Err(e) => {
                notes.push(format!("cannot read /proc/self/cgroup: {}", io_text(&e)));
                None
            }
        };
        let (cgroup_max_depth, cgroup_max_descendants) = match &cgroup2_mount {
            Some(m) => (
                read_setting(
                    &format!("{m}/cgroup.max.depth"),
                    "cgroup.max.depth is not on the root cgroup of this kernel (root is unlimited)",
                ),
                read_setting(
                    &format!("{m}/cgroup.max.descendants"),
                    "cgroup.max.descendants is not on the root cgroup of this kernel (root is unlimited)",
                ),
            ),
            None => (Probe::absent("no cgroup v2 mount"), Probe::absent("no cgroup v2 mount")),
        };
        let pid_max = read_setting("/proc/sys/kernel/pid_max", "procfs not mounted at /proc?");

        // security mechanisms
        let seccomp = probe_seccomp(status.as_deref());
        let landlock_abi = probe_landlock();
        let bpf = probe_bpf();
        let bpf_jit = read_setting(
            "/proc/sys/net/core/bpf_jit_enable",
            "kernel built without CONFIG_BPF_JIT",
        );
        let unprivileged_bpf_disabled = read_setting(
            "/proc/sys/kernel/unprivileged_bpf_disabled",
            "kernel built without CONFIG_BPF_SYSCALL",
        );
        let bpf_trampolines = probe_trampolines(&bpf);
        let lsm_list = probe_lsm_list(mi);

        // measurement conditions
        let perf_event_paranoid = read_setting(
            "/proc/sys/kernel/perf_event_paranoid",
            "kernel built without CONFIG_PERF_EVENTS",
        );
        let perf_counters = probe_perf(&perf_event_paranoid);
        let mitigations = read_mitigations(&mut notes);
        let governor = read_setting(
            "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "no cpufreq driver for cpu0 (usual in VMs): the CPU frequency is not under this kernel's control",
        );
        let virtualization = probe_virtualization(flags.as_deref());
        let kmod = match crate::kmod_backend::probe() {
            Ok(v) => Probe::yes(v),
            Err(reason) => Probe::absent(reason),
        };
        let emulated = detect_emulation(
            &std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            cpu_model.as_deref(),
        );
        let (kernel_config, kernel_config_options) = probe_kernel_config(&kernel_release);

        let probe_duration_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Environment {
            kernel_release,
            kernel_version,
            machine,
            hostname,
            cpu_model,
            nr_cpus,
            allowed_cpus,
            memory_bytes,
            euid,
            cap_effective_hex,
            privileged,
            cgroup2_mount,
            cgroup_v1_mounts,
            cgroup_layout,
            own_cgroup_v2,
            cgroup_max_depth,
            cgroup_max_descendants,
            pid_max,
            seccomp,
            landlock_abi,
            bpf,
            bpf_jit,
            unprivileged_bpf_disabled,
            bpf_trampolines,
            lsm_list,
            perf_counters,
            perf_event_paranoid,
            mitigations,
            governor,
            tsc,
            virtualization,
            kmod,
            emulated,
            kernel_config,
            kernel_config_options,
            probe_duration_us,
            notes,
        }
    }

    /// The Landlock ABI version as a number, when Landlock is available.
    pub fn landlock_abi_version(&self) -> Option<u32> {
        self.landlock_abi
            .value_if_available()
            .and_then(|v| v.strip_prefix("ABI "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Whether `bpf` is among the active LSMs (BPF_PROG_TYPE_LSM programs only run if so).
    pub fn bpf_lsm_active(&self) -> Option<bool> {
        self.lsm_list
            .value_if_available()
            .map(|v| v.split(',').any(|m| m.trim() == "bpf"))
    }

    /// Whether this process can load and attach cgroup-bpf programs and build cgroup trees (the
    /// kernel backend's `cgroup-bpf` and set-up mechanisms): `Err` lists everything missing of
    /// root (CAP_SYS_ADMIN and CAP_BPF), a cgroup v2 mount and `bpf()`.
    pub fn cgroup_bpf_support(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        if !self.privileged {
            missing.push(format!(
                "needs root (CAP_SYS_ADMIN and CAP_BPF) to load and attach cgroup programs (euid {})",
                self.euid
            ));
        }
        if self.cgroup2_mount.is_none() {
            missing.push("no cgroup v2 mount in /proc/self/mountinfo".to_string());
        }
        // Without root, bpf() fails for that reason; say it once.
        if self.privileged && !self.bpf.available {
            missing.push(format!("BPF {}", self.bpf));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }

    /// The kernel backend's mechanism families (and the kmod backend), each with what it needs
    /// of the machine and whether this process has it: seccomp and Landlock need no root, the
    /// cgroup and BPF ones do (the same checks `hookbench run` makes before it measures).
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
        vec![
            KernelFamily {
                name: "seccomp",
                mechanisms: &[
                    "seccomp-arg-load",
                    "seccomp-nr-only",
                    "seccomp-socket",
                    "seccomp-getsockname",
                    "seccomp-selftest-split",
                ],
                needs: "seccomp filters (CONFIG_SECCOMP_FILTER) and no_new_privs, which each worker sets for \
                        itself: no root",
                root: false,
                status: probe(&self.seccomp).map(|_| String::new()),
            },
            KernelFamily {
                name: "Landlock",
                mechanisms: &["landlock"],
                needs: "Landlock ABI >= 1 (CONFIG_SECURITY_LANDLOCK, landlock in lsm=): no root",
                root: false,
                status: probe(&self.landlock_abi),
            },
            KernelFamily {
                name: "cgroup-bpf",
                mechanisms: &["cgroup-bpf", "cgroup-bpf-socket", "setup-cgroups", "setup-tasks"],
                needs: "root (CAP_SYS_ADMIN and CAP_BPF), a cgroup v2 mount and bpf(); cgroup-bpf also Linux >= 5.8 \
                        (cgroup/getsockname4)",
                root: true,
                status: self.cgroup_bpf_support().map(|()| String::new()),
            },
            KernelFamily {
                name: "BPF LSM",
                mechanisms: &["lsm-cgroup", "lsm-global", "lsm-global-unmarked"],
                needs: "what cgroup-bpf needs, BPF trampolines (CONFIG_BPF_LSM, a kernel that allows them), bpf among \
                        the active LSMs (lsm=...,bpf); lsm-cgroup also Linux >= 6.0",
                root: true,
                status: lsm,
            },
            KernelFamily {
                name: "kmod",
                mechanisms: &["the kmod backend"],
                needs: "root and hookbench.ko loaded (/dev/hookbench)",
                root: true,
                status: match self.kmod.value_if_available() {
                    Some(_) => Ok(String::new()),
                    None => Err(probe_short(&self.kmod)),
                },
            },
        ]
    }

    /// Lines for `hookbench doctor`: `(label, value)`, one per capability, each saying what it
    /// means for hookbench's backends (`model`, `kernel`, `kmod`).
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
            if self.virtualization.available {
                format!(
                    "{} (timings include hypervisor effects; take final numbers on bare metal)",
                    self.virtualization
                )
            } else {
                format!("{} (bare metal assumed)", self.virtualization)
            },
        );
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
            if self.seccomp.available {
                format!(
                    "{} (task-chain on the kernel backend: seccomp filter stacks)",
                    self.seccomp
                )
            } else {
                format!("{} (seccomp task-chain scenarios will be skipped)", self.seccomp)
            },
        );
        push(
            "Landlock",
            if self.landlock_abi.available {
                format!(
                    "{} (per-task Landlock domains on the kernel backend)",
                    self.landlock_abi
                )
            } else {
                format!("{} (Landlock scenarios will be skipped)", self.landlock_abi)
            },
        );
        push(
            "BPF",
            if self.bpf.available {
                format!("{} (cgroup-bpf effective arrays on the kernel backend)", self.bpf)
            } else {
                format!("{} (all BPF scenarios on the kernel backend will be skipped)", self.bpf)
            },
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
            if self.bpf_trampolines.available {
                format!(
                    "{} (lsm, lsm_cgroup and fentry programs run on the kernel backend where loaded)",
                    self.bpf_trampolines
                )
            } else {
                format!(
                    "{} (lsm, lsm_cgroup and fentry programs cannot run on this kernel; a kernel that allows trampolines is needed for them)",
                    self.bpf_trampolines
                )
            },
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
            if self.perf_counters.available {
                format!(
                    "{} (cycle counts recorded beside wall-clock latency)",
                    self.perf_counters
                )
            } else {
                format!(
                    "{} (cycles and instructions not recorded; latencies come from the clock only)",
                    self.perf_counters
                )
            },
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

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A probe's value or `absent: reason`, without the `yes (...)` wrapper.
fn probe_short(p: &Probe) -> String {
    match p.value_if_available() {
        Some(v) => v.to_owned(),
        None => p.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// errno helpers
// ---------------------------------------------------------------------------------------------

/// Linux's kernel-internal ENOTSUPP (include/linux/errno.h), leaked by BPF to userspace.
const ENOTSUPP: i32 = 524;

/// `EPERM (Operation not permitted)`-style text for an errno.
fn errno_text(errno: i32) -> String {
    if errno == ENOTSUPP {
        return "ENOTSUPP (524, kernel-internal: operation not supported)".to_owned();
    }
    let e = nix::errno::Errno::from_raw(errno);
    format!("{e:?} ({})", e.desc())
}

fn io_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(n),
        None => e.to_string(),
    }
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Read a one-line setting file; absent with the errno (and `enoent_meaning` on ENOENT).
fn read_setting(path: &str, enoent_meaning: &str) -> Probe {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let v = t.trim();
            if v.is_empty() {
                Probe::absent(format!("{path} is empty"))
            } else {
                Probe::yes(v)
            }
        }
        Err(e) => {
            let meaning = match e.raw_os_error() {
                Some(libc::ENOENT) => format!(": {enoent_meaning}"),
                Some(libc::EACCES) | Some(libc::EPERM) => ": not readable by this user".to_owned(),
                _ => String::new(),
            };
            Probe::absent(format!("cannot read {path}: {}{meaning}", io_text(&e)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU, memory, credentials
// ---------------------------------------------------------------------------------------------

/// Capability bit numbers (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// First `key : value` line of a `/proc/cpuinfo`-style text.
fn cpuinfo_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `Key:\tvalue` line of `/proc/self/status`.
fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

fn online_cpus(notes: &mut Vec<String>) -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n >= 1 {
        return usize::try_from(n).unwrap_or(1);
    }
    notes.push(format!(
        "sysconf(_SC_NPROCESSORS_ONLN) failed: {}; nr_cpus set to 1",
        errno_text(last_errno())
    ));
    1
}

fn allowed_cpus(notes: &mut Vec<String>, fallback: usize) -> usize {
    // SAFETY: cpu_set_t is plain data; the size passed is its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r == 0 {
        // SAFETY: `set` was filled by the kernel.
        let n = unsafe { libc::CPU_COUNT(&set) };
        if let Ok(n) = usize::try_from(n) {
            if n >= 1 {
                return n;
            }
        }
    }
    notes.push(format!(
        "sched_getaffinity failed: {} (EINVAL: more than {} CPUs); allowed_cpus set to nr_cpus",
        errno_text(last_errno()),
        libc::CPU_SETSIZE
    ));
    fallback
}

fn physical_memory_bytes(notes: &mut Vec<String>) -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    match (u64::try_from(pages), u64::try_from(page)) {
        (Ok(p), Ok(s)) if p > 0 && s > 0 => p.saturating_mul(s),
        _ => {
            notes.push(format!(
                "sysconf(_SC_PHYS_PAGES/_SC_PAGESIZE) failed: {}; memory_bytes unknown (0)",
                errno_text(last_errno())
            ));
            0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mountinfo
// ---------------------------------------------------------------------------------------------

use hookbench_workloads::cgroupfs::parse_mountinfo;

/// Mount point of the cgroup v2 hierarchy in the text of `/proc/self/mountinfo`, as text: see
/// `hookbench_workloads::cgroupfs::find_cgroup2_mount` (the one parser; the root mount of the
/// hierarchy is preferred over a bind mount of a subtree; never assumes `/sys/fs/cgroup`).
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<String> {
    hookbench_workloads::cgroupfs::find_cgroup2_mount(mountinfo).map(|p| p.to_string_lossy().into_owned())
}

/// Classify the cgroup layout from the text of `/proc/self/mountinfo`: `cgroup2` and `cgroup`
/// (v1) mounts both present = hybrid, only v2 = unified, only v1 = legacy.
pub fn cgroup_layout(mountinfo: &str) -> CgroupLayout {
    let (mut v1, mut v2) = (false, false);
    for m in parse_mountinfo(mountinfo) {
        match m.fstype.as_str() {
            "cgroup2" => v2 = true,
            "cgroup" => v1 = true,
            _ => {}
        }
    }
    match (v1, v2) {
        (true, true) => CgroupLayout::Hybrid,
        (false, true) => CgroupLayout::Unified,
        (true, false) => CgroupLayout::Legacy,
        (false, false) => CgroupLayout::None,
    }
}

// ---------------------------------------------------------------------------------------------
// seccomp, Landlock
// ---------------------------------------------------------------------------------------------

/// seccomp return actions (include/uapi/linux/seccomp.h) and their names as in
/// `/proc/sys/kernel/seccomp/actions_avail`.
const SECCOMP_ACTIONS: &[(u32, &str)] = &[
    (0x8000_0000, "kill_process"),
    (0x0000_0000, "kill_thread"),
    (0x0003_0000, "trap"),
    (0x0005_0000, "errno"),
    (0x7fc0_0000, "user_notif"),
    (0x7ff0_0000, "trace"),
    (0x7ffc_0000, "log"),
    (0x7fff_0000, "allow"),
];

fn probe_seccomp(status: Option<&str>) -> Probe {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    if mode < 0 {
        let e = last_errno();
        return Probe::absent(format!(
            "prctl(PR_GET_SECCOMP) failed: {}{}",
            errno_text(e),
            if e == libc::EINVAL {
                ": kernel built without CONFIG_SECCOMP"
            } else {
                ""
            }
        ));
    }
    let mut avail = Vec::new();
    let mut refused = Vec::new();
    for &(action, name) in SECCOMP_ACTIONS {
        // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer, which is valid.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0u32,
                &action as *const u32,
            )
        };
        if r == 0 {
            avail.push(name);
        } else {
            let e = last_errno();
            if e == libc::ENOSYS {
                return Probe::absent(format!(
                    "seccomp(SECCOMP_GET_ACTION_AVAIL) failed: {}: no seccomp syscall (kernel older than 3.17)",
                    errno_text(e)
                ));
            }
            // EOPNOTSUPP: this action is unknown to the kernel; EINVAL: no GET_ACTION_AVAIL (< 4.14).
            refused.push(format!("{name}: {}", errno_text(e)));
        }
    }
    let mode_text = match mode {
        0 => "mode 0 (this process is not filtered)".to_owned(),
        1 => "mode 1 (strict)".to_owned(),
        2 => {
            let n = status.and_then(|s| status_field(s, "Seccomp_filters")).unwrap_or("?");
            format!("mode 2 (this process already runs under {n} filter(s): its chain is not empty)")
        }
        m => format!("mode {m}"),
    };
    let file = match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(t) => t.trim().to_owned(),
        Err(e) => format!("unreadable ({})", io_text(&e)),
    };
    if !avail.contains(&"allow") {
        return Probe::absent_with_value(
            format!("{mode_text}; actions_avail {file}"),
            format!(
                "seccomp filters unusable: SECCOMP_GET_ACTION_AVAIL refused {}",
                refused.join(", ")
            ),
        );
    }
    let mut v = format!("{mode_text}; actions {}; actions_avail {file}", avail.join(" "));
    if !refused.is_empty() {
        v.push_str(&format!("; refused {}", refused.join(", ")));
    }
    Probe::yes(v)
}

/// `LANDLOCK_CREATE_RULESET_VERSION` (include/uapi/linux/landlock.h).
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;

fn probe_landlock() -> Probe {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the kernel reads no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r >= 0 {
        return Probe::yes(format!("ABI {r}"));
    }
    let e = last_errno();
    let meaning = match e {
        libc::ENOSYS => ": kernel built without CONFIG_SECURITY_LANDLOCK (no landlock_create_ruleset syscall)",
        libc::EOPNOTSUPP => ": Landlock is built in but not enabled at boot (add landlock to lsm= / CONFIG_LSM)",
        libc::EINVAL => ": kernel does not know LANDLOCK_CREATE_RULESET_VERSION",
        _ => "",
    };
    Probe::absent(format!(
        "landlock_create_ruleset(NULL, 0, VERSION) failed: {}{meaning}",
        errno_text(e)
    ))
}

// ---------------------------------------------------------------------------------------------
// BPF
// ---------------------------------------------------------------------------------------------

/// bpf(2) command (include/uapi/linux/bpf.h: enum bpf_cmd).
const BPF_PROG_LOAD: libc::c_long = 5;
/// enum bpf_prog_type values.
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_PROG_TYPE_LSM: u32 = 29;
/// enum bpf_attach_type values.
const BPF_TRACE_FENTRY: u32 = 24;
const BPF_LSM_MAC: u32 = 27;
const BPF_LSM_CGROUP: u32 = 43;

/// `struct bpf_insn` (include/uapi/linux/bpf.h); `regs` is dst_reg:4 | src_reg:4.
#[repr(C)]
#[derive(Clone, Copy)]
struct BpfInsn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// `mov r0, 0; exit` (BPF_ALU64|BPF_MOV|BPF_K, BPF_JMP|BPF_EXIT).
const RETURN_ZERO: [BpfInsn; 2] = [
    BpfInsn {
        code: 0xb7,
        regs: 0,
        off: 0,
        imm: 0,
    },
    BpfInsn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    },
];

/// The BPF_PROG_LOAD part of `union bpf_attr`, up to and including `core_relo_cnt`
/// (include/uapi/linux/bpf.h); the kernel zero-extends shorter attrs.
#[repr(C, align(8))]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    core_relo_cnt: u32,
}

const _: () = assert!(std::mem::size_of::<BpfProgLoadAttr>() == 120);

/// Why a BPF_PROG_LOAD failed: errno and the verifier log (empty when the kernel refused the
/// load before the verifier ran).
struct LoadFailure {
    errno: i32,
    log: String,
}

impl LoadFailure {
    /// `EPERM (...) before the verifier ran` or `EINVAL (...); verifier: <first line>`.
    fn describe(&self) -> String {
        let lines: Vec<&str> = self.log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        match lines.as_slice() {
            [] => format!("{} before the verifier ran", errno_text(self.errno)),
            [only] => format!("{}; verifier: {}", errno_text(self.errno), clip(only)),
            [first, .., last] => format!(
                "{}; verifier: {} ... {}",
                errno_text(self.errno),
                clip(first),
                clip(last)
            ),
        }
    }

    fn verifier_ran(&self) -> bool {
        self.log.trim().chars().next().is_some()
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 160;
    if s.len() <= MAX {
        s.to_owned()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

/// Load `mov r0,0; exit` as `prog_type`, close the fd at once. Nothing is attached.
fn bpf_prog_load(prog_type: u32, expected_attach_type: u32, attach_btf_id: u32) -> Result<(), LoadFailure> {
    bpf_prog_load_insns(prog_type, expected_attach_type, attach_btf_id, &RETURN_ZERO)
}

/// Load `insns` as `prog_type` with a verifier log, close the fd at once.
fn bpf_prog_load_insns(
    prog_type: u32,
    expected_attach_type: u32,
    attach_btf_id: u32,
    insns: &[BpfInsn],
) -> Result<(), LoadFailure> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..15].copy_from_slice(b"hookbench_probe");
    let mut attr = BpfProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type,
        attach_btf_id,
        ..Default::default()
    };
    // SAFETY: attr points to a valid, fully initialised BpfProgLoadAttr of the size passed; the
    // pointers inside it (insns, license, log_buf) outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &mut attr as *mut BpfProgLoadAttr,
            std::mem::size_of::<BpfProgLoadAttr>() as u32,
        )
    };
    if fd >= 0 {
        let fd = i32::try_from(fd).map_err(|_| LoadFailure {
            errno: libc::EBADF,
            log: String::new(),
        })?;
        // SAFETY: the kernel just returned this fd to us; we own it and close it on drop.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        return Ok(());
    }
    let errno = last_errno();
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    Err(LoadFailure {
        errno,
        log: String::from_utf8_lossy(&log[..end]).into_owned(),
    })
}

fn probe_bpf() -> Probe {
    match bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, 0, 0) {
        Ok(()) => Probe::yes("socket filter loaded"),
        Err(f) => {
            let meaning = match f.errno {
                libc::ENOSYS => ": kernel built without CONFIG_BPF_SYSCALL",
                libc::EPERM | libc::EACCES if !f.verifier_ran() => {
                    ": not permitted (needs CAP_BPF or CAP_SYS_ADMIN when unprivileged_bpf_disabled != 0, or lockdown)"
                }
                _ => "",
            };
            Probe::absent(format!(
                "bpf(BPF_PROG_LOAD, SOCKET_FILTER) failed: {}{meaning}",
                f.describe()
            ))
        }
    }
}

fn describe_trampoline_failure(f: &LoadFailure) -> String {
    let meaning = if f.verifier_ran() {
        ""
    } else {
        match f.errno {
            libc::EPERM => " (refused by the kernel's checks in bpf_prog_load)",
            libc::EINVAL => " (attributes rejected: program or attach type unknown to this kernel)",
            libc::ENOENT => " (BTF id not found)",
            libc::E2BIG => " (bpf_attr larger than this kernel knows)",
            ENOTSUPP => " (no trampoline support: arch or JIT lacks it)",
            _ => "",
        }
    };
    format!("{}{meaning}", f.describe())
}

fn probe_trampolines(bpf: &Probe) -> Probe {
    let path = "/sys/kernel/btf/vmlinux";
    let btf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let meaning = if e.raw_os_error() == Some(libc::ENOENT) {
                ": kernel built without CONFIG_DEBUG_INFO_BTF, so nothing can attach by BTF id"
            } else {
                ""
            };
            return Probe::absent(format!("cannot read {path}: {}{meaning}", io_text(&e)));
        }
    };
    let id = match parse_btf_func_id(&btf, TRAMPOLINE_PROBE_FUNC) {
        Ok(id) => id,
        Err(BtfError::NotFound(_)) => {
            return Probe::absent(format!(
                "{TRAMPOLINE_PROBE_FUNC} not in {path}: kernel built without CONFIG_BPF_LSM"
            ))
        }
        Err(e) => return Probe::absent(format!("cannot parse {path}: {e}")),
    };
    if !bpf.available {
        return Probe::absent(format!("BPF program loads fail: {bpf}"));
    }
    let attempts = [
        ("lsm", BPF_PROG_TYPE_LSM, BPF_LSM_MAC),
        ("lsm_cgroup", BPF_PROG_TYPE_LSM, BPF_LSM_CGROUP),
        ("fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY),
    ];
    let mut loaded = Vec::new();
    let mut failed: Vec<(&str, LoadFailure)> = Vec::new();
    for (name, prog_type, attach) in attempts {
        match bpf_prog_load(prog_type, attach, id) {
            Ok(()) => loaded.push(name),
            Err(f) => failed.push((name, f)),
        }
    }
    let failures: Vec<String> = failed
        .iter()
        .map(|(n, f)| format!("{n}: {}", describe_trampoline_failure(f)))
        .collect();
    let target = format!("{TRAMPOLINE_PROBE_FUNC}, BTF id {id}");
    if !loaded.is_empty() {
        let mut v = format!("{} loaded on {target}", loaded.join(", "));
        if !failures.is_empty() {
            v.push_str(&format!("; refused: {}", failures.join("; ")));
        }
        return Probe::yes(v);
    }
    let all_eperm_early = failed.iter().all(|(_, f)| f.errno == libc::EPERM && !f.verifier_ran());
    if all_eperm_early {
        Probe::absent(format!(
            "BPF trampolines refused (EPERM) by this kernel: lsm, lsm_cgroup and fentry loads on {target} \
             got EPERM before the verifier ran"
        ))
    } else {
        Probe::absent(format!(
            "BPF trampoline loads failed on {target}: {}",
            failures.join("; ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// BTF
// ---------------------------------------------------------------------------------------------

/// Why [`parse_btf_func_id`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// Fewer bytes than a BTF header (24).
    #[error("BTF blob too short ({len} bytes)")]
    TooShort {
        /// Blob length in bytes.
        len: usize,
    },
    /// The first two bytes are not 0xeB9F in either byte order.
    #[error("bad BTF magic {0:#06x}")]
    BadMagic(u16),
    /// A BTF version other than 1.
    #[error("unsupported BTF version {0}")]
    UnsupportedVersion(u8),
    /// `hdr_len`, or a section's offset/length, points outside the blob.
    #[error("BTF {section} out of bounds")]
    OutOfBounds {
        /// `header`, `type section` or `string section`.
        section: &'static str,
    },
    /// A type record runs past the end of the type section.
    #[error("BTF type {id} truncated")]
    Truncated {
        /// Type id of the truncated record.
        id: u32,
    },
    /// A kind this parser does not know (so its trailing data cannot be skipped).
    #[error("BTF type {id} has unknown kind {kind}")]
    UnknownKind {
        /// Type id.
        id: u32,
        /// The `kind` bits of `info`.
        kind: u32,
    },
    /// A `name_off` beyond the string section.
    #[error("BTF type {id} name offset {offset} outside the string section")]
    BadStringOffset {
        /// Type id.
        id: u32,
        /// The offending `name_off`.
        offset: u32,
    },
    /// No BTF_KIND_FUNC with that name.
    #[error("no BTF_KIND_FUNC named {0}")]
    NotFound(String),
}

/// BTF kinds (include/uapi/linux/btf.h).
const BTF_KIND_FUNC: u32 = 12;

/// Bytes following the 12-byte `struct btf_type` for `kind` with `vlen` entries
/// (include/uapi/linux/btf.h; kernel/bpf/btf.c: btf_type_size).
fn btf_trailing_bytes(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 => 4,                                      // INT: u32 encoding
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0, // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
        3 => 12,                                     // ARRAY: struct btf_array
        4 | 5 => 12 * vlen,                          // STRUCT UNION: struct btf_member
        6 => 8 * vlen,                               // ENUM: struct btf_enum
        13 => 8 * vlen,                              // FUNC_PROTO: struct btf_param
        14 => 4,                                     // VAR: struct btf_var
        15 => 12 * vlen,                             // DATASEC: struct btf_var_secinfo
        17 => 4,                                     // DECL_TAG: struct btf_decl_tag
        19 => 12 * vlen,                             // ENUM64: struct btf_enum64
        _ => return None,
    })
}

/// The type id of the BTF_KIND_FUNC called `name` in a raw BTF blob such as
/// `/sys/kernel/btf/vmlinux` (header, type section, string section; either byte order).
pub fn parse_btf_func_id(btf: &[u8], name: &str) -> Result<u32, BtfError> {
    const HDR: usize = 24;
    if btf.len() < HDR {
        return Err(BtfError::TooShort { len: btf.len() });
    }
    let little = match (btf[0], btf[1]) {
        (0x9f, 0xeb) => true,
        (0xeb, 0x9f) => false,
        (a, b) => return Err(BtfError::BadMagic(u16::from_le_bytes([a, b]))),
    };
    if btf[2] != 1 {
        return Err(BtfError::UnsupportedVersion(btf[2]));
    }
    let u32_at = |buf: &[u8], off: usize| -> Option<u32> {
        let b: [u8; 4] = buf.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let hdr = |off: usize| {
        u32_at(btf, off)
            .map(|v| v as usize)
            .ok_or(BtfError::TooShort { len: btf.len() })
    };
    let (hdr_len, type_off, type_len, str_off, str_len) = (hdr(4)?, hdr(8)?, hdr(12)?, hdr(16)?, hdr(20)?);
    if hdr_len < HDR || hdr_len > btf.len() {
        return Err(BtfError::OutOfBounds { section: "header" });
    }
    let section = |off: usize, len: usize, what: &'static str| -> Result<&[u8], BtfError> {
        let start = hdr_len
            .checked_add(off)
            .ok_or(BtfError::OutOfBounds { section: what })?;
        let end = start.checked_add(len).ok_or(BtfError::OutOfBounds { section: what })?;
        btf.get(start..end).ok_or(BtfError::OutOfBounds { section: what })
    };
    let types = section(type_off, type_len, "type section")?;
    let strings = section(str_off, str_len, "string section")?;
    let wanted = name.as_bytes();

    let mut pos = 0usize;
    let mut id = 1u32; // type id 0 is void and not stored
    while pos < types.len() {
        let (name_off, info) = match (u32_at(types, pos), u32_at(types, pos + 4), u32_at(types, pos + 8)) {
            (Some(n), Some(i), Some(_size_or_type)) => (n, i),
            _ => return Err(BtfError::Truncated { id }),
        };
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra = btf_trailing_bytes(kind, vlen).ok_or(BtfError::UnknownKind { id, kind })?;
        if kind == BTF_KIND_FUNC {
            let s = strings
                .get(name_off as usize..)
                .ok_or(BtfError::BadStringOffset { id, offset: name_off })?;
            if s.len() > wanted.len() && s.starts_with(wanted) && s[wanted.len()] == 0 {
                return Ok(id);
            }
        }
        pos = pos
            .checked_add(12 + extra)
            .filter(|p| *p <= types.len())
            .ok_or(BtfError::Truncated { id })?;
        id = id.checked_add(1).ok_or(BtfError::Truncated { id })?;
    }
    Err(BtfError::NotFound(name.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// LSM list, perf, mitigations, virtualization, kernel config
// ---------------------------------------------------------------------------------------------

/// `lsm_list_modules` syscall number (same in the generic and x86_64 tables since 6.8).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_LSM_LIST_MODULES: libc::c_long = 461;

/// LSM ids (include/uapi/linux/lsm.h).
fn lsm_name(id: u64) -> String {
    match id {
        100 => "capability",
        101 => "selinux",
        102 => "smack",
        103 => "tomoyo",
        104 => "apparmor",
        105 => "yama",
        106 => "loadpin",
        107 => "safesetid",
        108 => "lockdown",
        109 => "bpf",
        110 => "landlock",
        111 => "ima",
        112 => "evm",
        113 => "ipe",
        other => return format!("lsm-id-{other}"),
    }
    .to_owned()
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn lsm_list_syscall() -> Result<String, String> {
    let mut ids = [0u64; 32];
    let mut size: u32 = std::mem::size_of_val(&ids) as u32;
    // SAFETY: ids has `size` writable bytes; size is a valid u32 the kernel updates.
    let r = unsafe { libc::syscall(SYS_LSM_LIST_MODULES, ids.as_mut_ptr(), &mut size as *mut u32, 0u32) };
    if r < 0 {
        let e = last_errno();
        let meaning = if e == libc::ENOSYS {
            " (kernel older than 6.8)"
        } else {
            ""
        };
        return Err(format!("lsm_list_modules failed: {}{meaning}", errno_text(e)));
    }
    let n = usize::try_from(r).unwrap_or(0).min(ids.len());
    Ok(ids[..n].iter().map(|&id| lsm_name(id)).collect::<Vec<_>>().join(","))
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn lsm_list_syscall() -> Result<String, String> {
    Err("lsm_list_modules syscall number not known for this architecture".to_owned())
}

fn probe_lsm_list(mountinfo: &str) -> Probe {
    let securityfs = parse_mountinfo(mountinfo)
        .find(|m| m.fstype == "securityfs")
        .map(|m| m.mount_point.to_string_lossy().into_owned());
    let file_reason = match &securityfs {
        Some(mp) => {
            let path = format!("{mp}/lsm");
            match std::fs::read_to_string(&path) {
                Ok(t) => return Probe::yes(t.trim().to_owned()),
                Err(e) => format!("cannot read {path}: {}", io_text(&e)),
            }
        }
        None => "securityfs not mounted (no securityfs line in /proc/self/mountinfo)".to_owned(),
    };
    match lsm_list_syscall() {
        Ok(list) => Probe::yes(list),
        Err(sys_reason) => Probe::absent(format!("{file_reason}; {sys_reason}")),
    }
}

fn probe_perf(paranoid: &Probe) -> Probe {
    use perf_event::events::Hardware;
    match perf_event::Builder::new(Hardware::CPU_CYCLES).build() {
        Ok(counter) => {
            drop(counter);
            Probe::yes("hardware cpu-cycles counter for this thread")
        }
        Err(e) => {
            let meaning = match e.raw_os_error() {
                Some(libc::ENOENT) => ": no such hardware event (no PMU exposed, e.g. a VM without vPMU)",
                Some(libc::EOPNOTSUPP) => ": the PMU does not support this event configuration",
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    ": not permitted by perf_event_paranoid / missing CAP_PERFMON"
                }
                Some(libc::ENODEV) => ": no PMU for this CPU",
                Some(libc::ENOSYS) => ": kernel built without CONFIG_PERF_EVENTS",
                _ => "",
            };
            Probe::absent(format!(
                "perf_event_open(HARDWARE, CPU_CYCLES) failed: {}{meaning}; perf_event_paranoid {}",
                io_text(&e),
                probe_short(paranoid)
            ))
        }
    }
}

fn read_mitigations(notes: &mut Vec<String>) -> Vec<(String, String)> {
    let dir = "/sys/devices/system/cpu/vulnerabilities";
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            notes.push(format!("cannot list {dir}: {}", io_text(&e)));
            return Vec::new();
        }
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let status = match std::fs::read_to_string(e.path()) {
                Ok(t) => t.trim().to_owned(),
                Err(err) => format!("unreadable: {}", io_text(&err)),
            };
            (name, status)
        })
        .collect();
    out.sort();
    out
}

/// Whether the CPU is emulated, from the kernel command line (the hookbench qemu rig passes
/// `hookbench_rig.emulated=1 hookbench_rig.accel=tcg`) and the CPU model (qemu's TCG models are
/// named "QEMU TCG CPU ..."); a description of what said so, or `None`.
pub fn detect_emulation(cmdline: &str, cpu_model: Option<&str>) -> Option<String> {
    let param = |name: &str| {
        cmdline
            .split_whitespace()
            .filter_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .next_back()
    };
    if param("hookbench_rig.emulated") == Some("1") {
        let accel = param("hookbench_rig.accel").unwrap_or("tcg");
        return Some(format!("qemu {accel} (hookbench rig guest)"));
    }
    cpu_model
        .filter(|m| m.contains("QEMU TCG"))
        .map(|m| format!("qemu tcg (CPU model '{m}')"))
}

fn probe_virtualization(flags: Option<&[&str]>) -> Probe {
    let dmi = |f: &str| -> Result<String, String> {
        let path = format!("/sys/class/dmi/id/{f}");
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(format!("{f} {}", t.trim())),
            Err(e) => Err(format!(
                "{}{}",
                io_text(&e),
                if e.raw_os_error() == Some(libc::ENOENT) {
                    ": no DMI tables, e.g. a microVM"
                } else {
                    ""
                }
            )),
        }
    };
    let dmi_text = match (dmi("sys_vendor"), dmi("product_name")) {
        (Ok(v), Ok(p)) => format!("{v}; {p}"),
        (Ok(v), Err(e)) => format!("{v}; product_name unreadable ({e})"),
        (Err(e), Ok(p)) => format!("sys_vendor unreadable ({e}); {p}"),
        (Err(a), Err(b)) if a == b => format!("/sys/class/dmi/id unreadable ({a})"),
        (Err(a), Err(b)) => format!("sys_vendor unreadable ({a}); product_name unreadable ({b})"),
    };
    match flags {
        Some(f) if f.contains(&"hypervisor") => Probe::yes(format!("hypervisor CPU flag; {dmi_text}")),
        Some(_) => Probe::absent_with_value(
            dmi_text,
            "no hypervisor flag in /proc/cpuinfo (bare metal, or a hypervisor hiding the CPUID bit)",
        ),
        None => Probe::absent_with_value(dmi_text, "no x86 flags line in /proc/cpuinfo: hypervisor flag unknown"),
    }
}

/// Values of `options` in a kernel `.config` text: `y`, `m`, a value, `not set` (for
/// `# CONFIG_X is not set`), or `missing` when the option does not appear at all (it does not
/// exist in that kernel version, or depends on something disabled).
pub fn parse_kernel_config(text: &str, options: &[&str]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|&opt| {
            let not_set = format!("# {opt} is not set");
            let value = text.lines().find_map(|l| {
                let l = l.trim();
                if l == not_set {
                    return Some("not set".to_owned());
                }
                l.strip_prefix(opt)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_owned())
            });
            (opt.to_owned(), value.unwrap_or_else(|| "missing".to_owned()))
        })
        .collect()
}

fn read_proc_config_gz(path: &str) -> Result<String, String> {
    // No gzip decoder among the harness's dependencies: use gzip(1). Side-effect free.
    match std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "gzip -dc {path} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run gzip to read {path}: {}", io_text(&e))),
    }
}

fn probe_kernel_config(release: &str) -> (Probe, Vec<(String, String)>) {
    let gz = "/proc/config.gz";
    let boot = format!("/boot/config-{release}");
    let gz_reason = if Path::new(gz).exists() {
        match read_proc_config_gz(gz) {
            Ok(text) => return (Probe::yes(gz), parse_kernel_config(&text, KERNEL_CONFIG_OPTIONS)),
            Err(r) => r,
        }
    } else {
        format!("{gz} absent (kernel built without CONFIG_IKCONFIG_PROC)")
    };
    match std::fs::read_to_string(&boot) {
        Ok(text) => (Probe::yes(boot), parse_kernel_config(&text, KERNEL_CONFIG_OPTIONS)),
        Err(e) => (
            Probe::absent(format!("{gz_reason}; cannot read {boot}: {}", io_text(&e))),
            Vec::new(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    const UNIFIED: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const NONE: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
23 27 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
";

    const LEGACY: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hybrid() {
        assert_eq!(find_cgroup2_mount(HYBRID).as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(cgroup_layout(HYBRID), CgroupLayout::Hybrid);
    }

    #[test]
    fn mountinfo_unified() {
        assert_eq!(find_cgroup2_mount(UNIFIED).as_deref(), Some("/sys/fs/cgroup"));
        assert_eq!(cgroup_layout(UNIFIED), CgroupLayout::Unified);
    }

    #[test]
    fn mountinfo_none_and_legacy() {
        assert_eq!(find_cgroup2_mount(NONE), None);
        assert_eq!(cgroup_layout(NONE), CgroupLayout::None);
        assert_eq!(find_cgroup2_mount(""), None);
        assert_eq!(find_cgroup2_mount(LEGACY), None);
        assert_eq!(cgroup_layout(LEGACY), CgroupLayout::Legacy);
    }

    #[test]
    fn mountinfo_escaped_spaces_and_many_optional_fields() {
        let mi = "50 23 0:40 / /mnt/my\\040cgroup\\134dir rw,relatime shared:1 master:2 propagate_from:3 - cgroup2 none rw\n";
        assert_eq!(find_cgroup2_mount(mi).as_deref(), Some("/mnt/my cgroup\\dir"));
        // A bind mount of a subtree comes first; the root mount is preferred.
        let mi2 = "\
60 23 0:40 /sub /bound\\011tab rw - cgroup2 cgroup2 rw
61 23 0:40 / /real rw - cgroup2 cgroup2 rw
";
        assert_eq!(find_cgroup2_mount(mi2).as_deref(), Some("/real"));
        let mi3 = "60 23 0:40 /sub /bound\\011tab rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi3).as_deref(), Some("/bound\ttab"));
        // Garbage lines are skipped; a "cgroup2" in the source field is not the fstype.
        let mi4 = "garbage\n70 1 0:1 / /x rw - tmpfs cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi4), None);
    }

    /// Builds a BTF blob in the given byte order.
    struct BtfBuilder {
        little: bool,
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl BtfBuilder {
        fn new(little: bool) -> Self {
            BtfBuilder {
                little,
                types: Vec::new(),
                strings: vec![0],
            }
        }
        fn word(&mut self, v: u32) {
            let b = if self.little { v.to_le_bytes() } else { v.to_be_bytes() };
            self.types.extend_from_slice(&b);
        }
        fn string(&mut self, s: &str) -> u32 {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        /// A type record plus `extra_words` words of trailing data.
        fn ty(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32, extra_words: usize) {
            let name_off = if name.is_empty() { 0 } else { self.string(name) };
            self.word(name_off);
            self.word((kind << 24) | vlen);
            self.word(size_or_type);
            for i in 0..extra_words {
                self.word(i as u32);
            }
        }
        fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let w = |v: u32| {
                if self.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                }
            };
            let magic: u16 = 0xeb9f;
            out.extend_from_slice(&if self.little {
                magic.to_le_bytes()
            } else {
                magic.to_be_bytes()
            });
            out.push(1); // version
            out.push(0); // flags
            out.extend_from_slice(&w(24)); // hdr_len
            out.extend_from_slice(&w(0)); // type_off
            out.extend_from_slice(&w(self.types.len() as u32));
            out.extend_from_slice(&w(self.types.len() as u32)); // str_off
            out.extend_from_slice(&w(self.strings.len() as u32));
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn sample_btf(little: bool) -> Vec<u8> {
        let mut b = BtfBuilder::new(little);
        b.ty("int", 1, 0, 4, 1); // 1 INT + u32
        b.ty("", 2, 0, 1, 0); // 2 PTR
        b.ty("arr", 3, 0, 0, 3); // 3 ARRAY + btf_array
        b.ty("s", 4, 2, 8, 6); // 4 STRUCT, 2 members
        b.ty("e", 6, 3, 4, 6); // 5 ENUM, 3 values
        b.ty("", 13, 2, 1, 4); // 6 FUNC_PROTO, 2 params
        b.ty("bpf_lsm_file_open_not", 12, 0, 6, 0); // 7 FUNC with a longer name
        b.ty("v", 14, 0, 1, 1); // 8 VAR
        b.ty(".data", 15, 1, 4, 3); // 9 DATASEC, 1 entry
        b.ty("f", 16, 0, 8, 0); // 10 FLOAT
        b.ty("tag", 17, 0, 7, 1); // 11 DECL_TAG
        b.ty("tt", 18, 0, 1, 0); // 12 TYPE_TAG
        b.ty("e64", 19, 2, 8, 6); // 13 ENUM64, 2 values
        b.ty("bpf_lsm_file_open", 12, 0, 6, 0); // 14 FUNC
        b.ty("other", 12, 0, 6, 0); // 15 FUNC
        b.build()
    }

    #[test]
    fn btf_parser_finds_funcs_in_both_byte_orders() {
        for little in [true, false] {
            let blob = sample_btf(little);
            assert_eq!(parse_btf_func_id(&blob, "bpf_lsm_file_open"), Ok(14));
            assert_eq!(parse_btf_func_id(&blob, "other"), Ok(15));
            assert_eq!(parse_btf_func_id(&blob, "bpf_lsm_file_open_not"), Ok(7));
            // Names of non-FUNC kinds do not match; prefixes do not match.
            assert_eq!(parse_btf_func_id(&blob, "int"), Err(BtfError::NotFound("int".into())));
            assert_eq!(
                parse_btf_func_id(&blob, "bpf_lsm"),
                Err(BtfError::NotFound("bpf_lsm".into()))
            );
        }
    }

    #[test]
    fn btf_parser_rejects_bad_input() {
        assert_eq!(parse_btf_func_id(&[0; 10], "x"), Err(BtfError::TooShort { len: 10 }));
        let mut blob = sample_btf(true);
        blob[0] = 0;
        assert!(matches!(parse_btf_func_id(&blob, "x"), Err(BtfError::BadMagic(_))));
        let mut blob = sample_btf(true);
        blob[2] = 2;
        assert_eq!(parse_btf_func_id(&blob, "x"), Err(BtfError::UnsupportedVersion(2)));
        // Section beyond the blob.
        let blob = sample_btf(true);
        let short = &blob[..blob.len() - 3];
        assert_eq!(
            parse_btf_func_id(short, "x"),
            Err(BtfError::OutOfBounds {
                section: "string section"
            })
        );
        // Unknown kind.
        let mut b = BtfBuilder::new(true);
        b.ty("int", 1, 0, 4, 1);
        b.ty("odd", 31, 0, 0, 0);
        assert_eq!(
            parse_btf_func_id(&b.build(), "x"),
            Err(BtfError::UnknownKind { id: 2, kind: 31 })
        );
        // Trailing data running past the type section.
        let mut b = BtfBuilder::new(true);
        b.ty("s", 4, 5, 8, 1); // claims 5 members, has 1/3 of one
        assert_eq!(parse_btf_func_id(&b.build(), "x"), Err(BtfError::Truncated { id: 1 }));
        // Name offset outside the strings.
        let mut b = BtfBuilder::new(true);
        b.word(9999);
        b.word(12 << 24);
        b.word(0);
        assert_eq!(
            parse_btf_func_id(&b.build(), "x"),
            Err(BtfError::BadStringOffset { id: 1, offset: 9999 })
        );
    }

    #[test]
    fn btf_parser_on_vmlinux() {
        let path = "/sys/kernel/btf/vmlinux";
        let Ok(blob) = std::fs::read(path) else {
            eprintln!("{path} unreadable; skipping");
            return;
        };
        match parse_btf_func_id(&blob, TRAMPOLINE_PROBE_FUNC) {
            Ok(id) => assert!(id > 0),
            // A kernel without CONFIG_BPF_LSM has no such function; the rest must parse.
            Err(e) => assert_eq!(e, BtfError::NotFound(TRAMPOLINE_PROBE_FUNC.into())),
        }
        // The whole type section parses: a name that cannot exist walks every type.
        assert_eq!(
            parse_btf_func_id(&blob, "no such function, surely"),
            Err(BtfError::NotFound("no such function, surely".into()))
        );
    }

    #[test]
    fn load_failure_text() {
        let early = LoadFailure {
            errno: libc::EPERM,
            log: String::new(),
        };
        assert!(!early.verifier_ran());
        assert!(early
            .describe()
            .starts_with("EPERM (Operation not permitted) before the verifier ran"));
        let late = LoadFailure {
            errno: libc::EACCES,
            log: "0: (95) exit\nR0 !read_ok\n".into(),
        };
        assert!(late.verifier_ran());
        assert_eq!(
            late.describe(),
            "EACCES (Permission denied); verifier: 0: (95) exit ... R0 !read_ok"
        );
        assert!(errno_text(ENOTSUPP).starts_with("ENOTSUPP"));
    }

    #[test]
    fn verifier_log_is_captured_when_the_verifier_runs() {
        // `exit` without setting r0: the verifier rejects it and says why.
        let bad = [BpfInsn {
            code: 0x95,
            regs: 0,
            off: 0,
            imm: 0,
        }];
        match bpf_prog_load_insns(BPF_PROG_TYPE_SOCKET_FILTER, 0, 0, &bad) {
            Ok(()) => panic!("a program that exits with r0 unset was accepted"),
            Err(f) if f.verifier_ran() => {
                assert!(f.log.contains("R0"), "log: {}", f.log);
                assert!(f.describe().contains("verifier:"));
            }
            // Unprivileged or no BPF: refused before the verifier; nothing more to check.
            Err(f) => eprintln!("BPF refused early: {}", f.describe()),
        }
    }

    #[test]
    fn probe_display() {
        assert_eq!(Probe::yes("ABI 6").to_string(), "yes (ABI 6)");
        assert_eq!(Probe::yes_bare().to_string(), "yes");
        assert_eq!(
            Probe::absent("ENOSYS (Function not implemented)").to_string(),
            "absent: ENOSYS (Function not implemented)"
        );
        assert_eq!(Probe::absent_with_value("x", "why").to_string(), "absent: why");
        let p: Probe = serde_json::from_str(&serde_json::to_string(&Probe::yes("v")).unwrap()).unwrap();
        assert_eq!(p, Probe::yes("v"));
    }

    #[test]
    fn kernel_config_parsing() {
        let text =
            "CONFIG_BPF_LSM=y\n# CONFIG_SECURITY_LANDLOCK is not set\nCONFIG_BPF_JIT=m\nCONFIG_LSM=\"landlock,bpf\"\n";
        let got = parse_kernel_config(
            text,
            &[
                "CONFIG_BPF_LSM",
                "CONFIG_SECURITY_LANDLOCK",
                "CONFIG_BPF_JIT",
                "CONFIG_LSM",
                "CONFIG_BPF",
            ],
        );
        assert_eq!(
            got,
            vec![
                ("CONFIG_BPF_LSM".into(), "y".into()),
                ("CONFIG_SECURITY_LANDLOCK".into(), "not set".into()),
                ("CONFIG_BPF_JIT".into(), "m".into()),
                ("CONFIG_LSM".into(), "landlock,bpf".into()),
                ("CONFIG_BPF".into(), "missing".into()),
            ]
        );
    }

    fn all_probes(env: &Environment) -> Vec<(&'static str, &Probe)> {
        vec![
            ("cgroup_max_depth", &env.cgroup_max_depth),
            ("cgroup_max_descendants", &env.cgroup_max_descendants),
            ("pid_max", &env.pid_max),
            ("seccomp", &env.seccomp),
            ("landlock_abi", &env.landlock_abi),
            ("bpf", &env.bpf),
            ("bpf_jit", &env.bpf_jit),
            ("unprivileged_bpf_disabled", &env.unprivileged_bpf_disabled),
            ("bpf_trampolines", &env.bpf_trampolines),
            ("lsm_list", &env.lsm_list),
            ("perf_counters", &env.perf_counters),
            ("perf_event_paranoid", &env.perf_event_paranoid),
            ("governor", &env.governor),
            ("virtualization", &env.virtualization),
            ("kernel_config", &env.kernel_config),
        ]
    }

    /// Serialises the tests that call `Environment::probe` (the fd test counts open fds).
    static PROBE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn probe_this_machine() {
        let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let start = Instant::now();
        let env = Environment::probe();
        let took = start.elapsed();
        for (label, value) in env.doctor_lines() {
            eprintln!("{label:>22}: {value}");
        }
        assert!(env.nr_cpus >= 1);
        assert!(env.allowed_cpus >= 1 && env.allowed_cpus <= env.nr_cpus.max(env.allowed_cpus));
        assert!(!env.kernel_release.is_empty());
        assert!(env.memory_bytes > 0);
        assert!(took.as_millis() < 200, "probe took {took:?}");

        // The cgroup2 mount agrees with the pure parser on the live mountinfo.
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(env.cgroup2_mount, find_cgroup2_mount(&mi));
        assert_eq!(env.cgroup_layout, cgroup_layout(&mi));
        if env.privileged
            && mi
                .lines()
                .any(|l| l.contains(" /sys/fs/cgroup/unified ") && l.contains(" - cgroup2 "))
        {
            assert_eq!(env.cgroup2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
        }

        // Perf counters: available, or a non-empty reason.
        assert!(env.perf_counters.available || env.perf_counters.reason.as_deref().is_some_and(|r| !r.is_empty()));

        // Every probe that is not available says why; available ones carry no reason.
        for (name, p) in all_probes(&env) {
            if p.available {
                assert!(p.reason.is_none(), "{name} available but has a reason");
            } else {
                assert!(
                    p.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "{name} absent without a reason"
                );
            }
        }
        if env.kernel_config.available {
            assert_eq!(env.kernel_config_options.len(), KERNEL_CONFIG_OPTIONS.len());
        }
        if env.landlock_abi.available {
            assert!(env.landlock_abi_version().is_some_and(|v| v >= 1));
        }

        // Serde round trip.
        let json = serde_json::to_string(&env).unwrap();
        let back: Environment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert!(json.contains("\"cgroup_layout\":\""));
    }

    #[test]
    fn doctor_says_what_each_mechanism_family_needs_and_that_seccomp_and_landlock_need_no_root() {
        let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut env = Environment::probe();
        env.privileged = false;
        env.euid = 65534;
        env.seccomp = Probe::yes("mode 0");
        env.landlock_abi = Probe::yes("ABI 7");
        env.cgroup2_mount = Some("/sys/fs/cgroup".to_string());
        env.bpf = Probe::absent("EPERM");
        env.lsm_list = Probe::yes("lockdown,capability,landlock,bpf");
        let families = env.kernel_families();
        let status = |name: &str| {
            families
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.status.clone())
                .unwrap_or_else(|| panic!("no family {name}"))
        };
        assert_eq!(status("seccomp"), Ok(String::new()));
        assert_eq!(status("Landlock"), Ok("ABI 7".to_string()));
        let why = status("cgroup-bpf").expect_err("needs root");
        assert!(
            why.contains("needs root") && why.contains("euid 65534") && !why.contains("EPERM"),
            "{why}"
        );
        assert!(status("BPF LSM").expect_err("needs root").contains("needs root"));
        let lines = env.doctor_lines();
        let line = |label: &str| {
            lines
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {label} line in {lines:?}"))
        };
        let root = line("root");
        assert!(
            root.contains("measures seccomp, Landlock without root") && !root.contains("model backend only"),
            "{root}"
        );
        assert!(line("kernel: seccomp").starts_with("yes for this user: seccomp-arg-load"));
        assert!(line("kernel: Landlock").starts_with("yes for this user (ABI 7): landlock; needs"));
        let cgroup_bpf = line("kernel: cgroup-bpf");
        assert!(
            cgroup_bpf.starts_with("NO for this user: cgroup-bpf") && cgroup_bpf.contains("here: needs root"),
            "{cgroup_bpf}"
        );
        // As root, with bpf not an active LSM: cgroup-bpf is there, BPF LSM says what to boot with.
        env.privileged = true;
        env.euid = 0;
        env.bpf = Probe::yes_bare();
        env.bpf_trampolines = Probe::yes_bare();
        env.lsm_list = Probe::yes("lockdown,capability,landlock");
        let families = env.kernel_families();
        assert!(families
            .iter()
            .find(|f| f.name == "cgroup-bpf")
            .is_some_and(|f| f.status.is_ok()));
        let lsm = families.iter().find(|f| f.name == "BPF LSM").expect("BPF LSM family");
        assert!(
            lsm.status.as_ref().expect_err("no bpf LSM").contains("lsm=...,bpf"),
            "{lsm:?}"
        );
        // Every kernel mechanism belongs to exactly one family.
        for m in crate::kernel::KernelMechanism::ALL {
            let owners = families.iter().filter(|f| f.mechanisms.contains(&m.as_str())).count();
            assert_eq!(owners, 1, "{}", m.as_str());
        }
    }

    #[test]
    fn probe_leaves_no_fds_open() {
        let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let count = || std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        let _ = Environment::probe(); // warm-up: lazily opened fds in libraries
                                      // Other tests of this binary open files on their own threads meanwhile: a probe that
                                      // leaks leaks every time, so one of five probes with no growth clears it.
        let mut seen = Vec::new();
        for _ in 0..5 {
            let before = count();
            let _ = Environment::probe();
            let after = count();
            if after <= before {
                return;
            }
            seen.push((before, after));
        }
        panic!("every probe left fds open: (before, after) = {seen:?}");
    }

    #[test]
    fn emulation_is_told_by_the_rig_or_the_cpu_model() {
        assert_eq!(
            detect_emulation("console=ttyS0 hookbench_rig.accel=tcg hookbench_rig.emulated=1", None).as_deref(),
            Some("qemu tcg (hookbench rig guest)")
        );
        assert_eq!(
            detect_emulation(
                "hookbench_rig.accel=kvm hookbench_rig.emulated=0",
                Some("Intel(R) Xeon(R)")
            ),
            None
        );
        assert!(detect_emulation("", Some("QEMU TCG CPU version 2.5+")).is_some_and(|e| e.contains("tcg")));
        assert_eq!(detect_emulation("quiet", Some("AMD EPYC 7763")), None);
    }
}
